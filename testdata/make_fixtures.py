"""Regenerates the committed data fixtures under testdata/ (deterministic).

Run from the repository root::

  python testdata/make_fixtures.py [--ptb_dir=../shared/data/ptb]

Outputs:

* ``testdata/ptb/ptb.{train,valid,test}.txt`` -- the first 300 / 60 / 60 lines of the real
  PTB files (skipped with a message when the real files are absent, so the committed
  excerpts stay as they are).
* ``testdata/cifar10/`` -- a tiny synthetic CIFAR-10 (4 train + 2 test images per class)
  in all the layouts the loader accepts, holding exactly the same images:

  - ``cifar-10-batches-py/`` (pickles, shuffled order as in the real release),
  - ``cifar-10-batches-bin/`` (binary records, same order as the pickles),
  - ``png/{train,test}/<class>/NNNN.png`` (lossless, so pixels equal the pickles),
  - ``cifar10-jpeg-mini.tar.gz`` (``cifar10-jpeg/{train,test}/<class>/NNNN.jpg``, quality
    75 like the real archive; lossy, so tests compare with a tolerance).

Images are smooth colour gradients plus mild noise rather than pure noise, so that JPEG
stays close to the original pixels and tolerances can be tight.
"""

import gzip
import io
import os
import pathlib
import pickle
import shutil
import sys
import tarfile

from absl import app
from absl import flags
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # pylint: disable=g-import-not-at-top

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from nas_tf.data.cifar10 import CLASS_NAMES  # pylint: disable=g-import-not-at-top

_PTB_DIR = flags.DEFINE_string("ptb_dir", str(HERE.parent.parent / "shared/data/ptb"),
                               "Directory of the real PTB files to excerpt.")

PTB_LINES = {"train": 300, "valid": 60, "test": 60}
TRAIN_PER_CLASS = 4
TEST_PER_CLASS = 2
NUM_TRAIN_BATCHES = 5


def make_images(rng: np.random.RandomState, label: int, count: int) -> np.ndarray:
  """Smooth images whose colours depend on the class, plus noise; uint8 [count,32,32,3]."""
  yy, xx = np.mgrid[0:32, 0:32].astype(np.float64) / 31.0
  images = []
  for _ in range(count):
    base = rng.uniform(20, 235, size=3)
    slope = rng.uniform(-60, 60, size=(2, 3))
    image = (base + yy[..., None] * slope[0] + xx[..., None] * slope[1]
             + 25 * np.sin(2 * np.pi * (label + 1) * xx / 4)[..., None]
             + rng.normal(0, 4, size=(32, 32, 3)))
    images.append(np.clip(np.round(image), 0, 255).astype(np.uint8))
  return np.stack(images)


def make_split(rng, per_class):
  images = np.concatenate([make_images(rng, c, per_class) for c in range(len(CLASS_NAMES))])
  labels = np.repeat(np.arange(len(CLASS_NAMES)), per_class).astype(np.int64)
  return images, labels


def to_rows(images: np.ndarray) -> np.ndarray:
  """HWC images -> release rows (1024 R, 1024 G, 1024 B bytes)."""
  return images.transpose(0, 3, 1, 2).reshape(len(images), -1)


def write_pickle(path, obj):
  with open(path, "wb") as f:
    # Protocol 2 like the release (pickled by Python 2); keys are bytes as when the
    # release is loaded with encoding="bytes".
    pickle.dump(obj, f, protocol=2)


def write_ptb(out_dir: pathlib.Path):
  src = pathlib.Path(_PTB_DIR.value)
  if not (src / "ptb.train.txt").is_file():
    print(f"{src} has no PTB files; keeping the committed excerpts")
    return
  out_dir.mkdir(parents=True, exist_ok=True)
  for split, num_lines in PTB_LINES.items():
    with open(src / f"ptb.{split}.txt", encoding="utf-8") as f:
      lines = [next(f) for _ in range(num_lines)]
    (out_dir / f"ptb.{split}.txt").write_text("".join(lines), encoding="utf-8")


def write_cifar(out_dir: pathlib.Path):
  if out_dir.exists():
    shutil.rmtree(out_dir)
  out_dir.mkdir(parents=True)
  rng = np.random.RandomState(0)
  splits = {"train": make_split(rng, TRAIN_PER_CLASS), "test": make_split(rng, TEST_PER_CLASS)}
  # Image-folder file names record the class-major index, so tests can map back.
  names = {s: [f"{i:04d}" for i in range(len(labels))] for s, (_, labels) in splits.items()}
  # The releases store images in random order; mimic that with a fixed permutation.
  orders = {s: rng.permutation(len(labels)) for s, (_, labels) in splits.items()}

  py_dir = out_dir / "cifar-10-batches-py"
  bin_dir = out_dir / "cifar-10-batches-bin"
  py_dir.mkdir()
  bin_dir.mkdir()
  write_pickle(py_dir / "batches.meta",
               {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072,
                b"num_cases_per_batch": len(splits["train"][1]) // NUM_TRAIN_BATCHES})
  (bin_dir / "batches.meta.txt").write_text("\n".join(CLASS_NAMES) + "\n\n")
  batches = {"test_batch": ("test", orders["test"])}
  for i, chunk in enumerate(np.array_split(orders["train"], NUM_TRAIN_BATCHES)):
    batches[f"data_batch_{i + 1}"] = ("train", chunk)
  for batch_name, (split, index) in batches.items():
    images, labels = splits[split]
    rows = to_rows(images[index])
    write_pickle(py_dir / batch_name, {
        b"batch_label": batch_name.encode(), b"labels": [int(v) for v in labels[index]],
        b"data": rows, b"filenames": [f"{names[split][i]}.png".encode() for i in index]})
    records = np.concatenate([labels[index].astype(np.uint8)[:, None], rows], axis=1)
    records.tofile(bin_dir / f"{batch_name}.bin")

  tar_buffer = io.BytesIO()
  with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    def add(name, data=None):
      info = tarfile.TarInfo(name)
      info.mtime = 0  # Fixed metadata keeps the archive byte-identical across runs.
      info.mode = 0o644 if data is not None else 0o755
      info.type = tarfile.REGTYPE if data is not None else tarfile.DIRTYPE
      info.size = len(data) if data is not None else 0
      tar.addfile(info, io.BytesIO(data) if data is not None else None)
    add("cifar10-jpeg")
    for split, (images, labels) in splits.items():
      add(f"cifar10-jpeg/{split}")
      for label, class_name in enumerate(CLASS_NAMES):
        class_dir = out_dir / "png" / split / class_name
        class_dir.mkdir(parents=True)
        add(f"cifar10-jpeg/{split}/{class_name}")
        for i in np.flatnonzero(labels == label):
          png = tf.io.encode_png(images[i]).numpy()
          (class_dir / f"{names[split][i]}.png").write_bytes(png)
          jpeg = tf.io.encode_jpeg(images[i], quality=75).numpy()
          add(f"cifar10-jpeg/{split}/{class_name}/{names[split][i]}.jpg", jpeg)
  with open(out_dir / "cifar10-jpeg-mini.tar.gz", "wb") as f:
    with gzip.GzipFile(filename="", fileobj=f, mode="wb", mtime=0) as gz:
      gz.write(tar_buffer.getvalue())


def main(argv):
  del argv
  write_ptb(HERE / "ptb")
  write_cifar(HERE / "cifar10")
  total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
  print(f"testdata/ is {total / 1024:.0f} KiB")


if __name__ == "__main__":
  app.run(main)
