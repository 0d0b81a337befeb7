"""Throughput of the input pipelines on the real data (paper §4.1 CIFAR-10, §4.2 PTB).

Usage (from the repository root)::

  python benchmarks/input_pipeline.py --data_dir=../shared/data [--cache_dir=/tmp/x]

Reports the split counts (45,000 / 5,000 / 10,000 images; 10,000 words and
929,589 / 73,760 / 82,430 tokens), the time to load CIFAR-10 from the JPEG archive cold
(read + decode) and warm (array cache), examples/s of the augmented training pipeline,
and tokens/s of PTB batching. The numbers are for this machine's CPUs only; a training
run overlaps the pipeline with the model, so it matters only if it is slower than the
model's step.
"""

import os
import pathlib
import sys
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from nas_tf import data  # pylint: disable=g-import-not-at-top

_DATA_DIR = flags.DEFINE_string("data_dir", "../shared/data",
                                "Directory with ptb/ and cifar10-jpeg.tar.gz.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None,
                                 "Extraction/array cache; default a fresh temp dir so that "
                                 "the cold load is really cold.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "CIFAR-10 batch size.")
_EPOCH_FRACTION = flags.DEFINE_float("epochs", 1.0, "CIFAR-10 training epochs to time.")
_PTB_BATCH = flags.DEFINE_integer("ptb_batch_size", 20, "PTB batch size.")
_PTB_STEPS = flags.DEFINE_integer("ptb_num_steps", 35, "PTB unroll length.")


def time_cifar(archive: str, cache_dir: str) -> None:
  start = time.perf_counter()
  cifar = data.load_cifar10(archive, cache_dir=cache_dir)
  cold = time.perf_counter() - start
  start = time.perf_counter()
  cifar = data.load_cifar10(archive, cache_dir=cache_dir)
  warm = time.perf_counter() - start
  print(f"CIFAR-10 counts: {cifar.num_examples}")
  print(f"CIFAR-10 load: cold (read archive + decode 60,000 JPEGs) {cold:.1f} s, "
        f"warm (array cache) {warm:.1f} s")
  assert cifar.num_examples == {"train": 45000, "validation": 5000, "test": 10000}, (
      cifar.num_examples)

  batches = int(_EPOCH_FRACTION.value * cifar.num_examples["train"]) // _BATCH_SIZE.value
  dataset = cifar.batched("train", _BATCH_SIZE.value)
  iterator = iter(dataset)
  next(iterator)  # The first batch pays for tracing and filling the shuffle buffer.
  start = time.perf_counter()
  count = 0
  for _ in range(batches - 1):
    images, _ = next(iterator)
    count += int(images.shape[0])
  elapsed = time.perf_counter() - start
  print(f"CIFAR-10 train pipeline (augment, shuffle, batch {_BATCH_SIZE.value}): "
        f"{count / elapsed:,.0f} examples/s over {count} examples")


def time_ptb(ptb_dir: str) -> None:
  start = time.perf_counter()
  ptb = data.load_ptb(ptb_dir)
  load = time.perf_counter() - start
  print(f"PTB: vocabulary {len(ptb.vocab)}, tokens train/valid/test "
        f"{len(ptb.train)}/{len(ptb.valid)}/{len(ptb.test)}; load {load:.1f} s")
  assert (len(ptb.vocab), len(ptb.train), len(ptb.valid), len(ptb.test)) == (
      10000, 929589, 73760, 82430)
  start = time.perf_counter()
  tokens = 0
  for inputs, _ in ptb.batches("train", _PTB_BATCH.value, _PTB_STEPS.value):
    tokens += int(inputs.shape[0]) * int(inputs.shape[1])
  elapsed = time.perf_counter() - start
  print(f"PTB train batching ({_PTB_BATCH.value}x{_PTB_STEPS.value}, one epoch incl. "
        f"dataset construction): {tokens / elapsed:,.0f} tokens/s")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  root = pathlib.Path(_DATA_DIR.value)
  time_ptb(str(root / "ptb"))
  if _CACHE_DIR.value:
    time_cifar(str(root / "cifar10-jpeg.tar.gz"), _CACHE_DIR.value)
  else:
    with tempfile.TemporaryDirectory() as cache_dir:
      time_cifar(str(root / "cifar10-jpeg.tar.gz"), cache_dir)


if __name__ == "__main__":
  app.run(main)
