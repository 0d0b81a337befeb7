"""Training speed of NASCell against Keras' LSTM in a PTB-style language model.

The paper (§4.2) trains its found cell in the Penn Treebank setup of Zaremba et al.:
Embedding -> two recurrent layers -> softmax over a 10k vocabulary, batch 20, 35 steps
unrolled. This benchmark builds that model twice, once with ``nas_tf.cells.NASCell`` and
once with ``keras.layers.LSTM`` of the same hidden size, and times training steps of
both in one process on synthetic tokens (no data dependency). Runs are interleaved
(NAS, LSTM, NAS, LSTM, ...) so that load from other processes hits both alike, warm-up
steps (tracing, XLA compilation) are excluded, and the median over repeats is reported.

Example:
  python benchmarks/cell_speed.py --hidden_size=200 --repeats=5 --steps=10
"""

import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from absl import app
from absl import flags
import numpy as np

FLAGS = flags.FLAGS
flags.DEFINE_integer("hidden_size", 200, "Units of both recurrent layers (and embedding).")
flags.DEFINE_integer("vocab_size", 10000, "Vocabulary size (PTB: 10000).")
flags.DEFINE_integer("batch_size", 20, "Sequences per batch (PTB small: 20).")
flags.DEFINE_integer("num_steps", 35, "Unrolled time steps (PTB: 35).")
flags.DEFINE_integer("num_layers", 2, "Stacked recurrent layers.")
flags.DEFINE_integer("warmup", 2, "Untimed steps per configuration before timing.")
flags.DEFINE_integer("steps", 10, "Timed train steps per repeat.")
flags.DEFINE_integer("repeats", 3, "Interleaved repeats; the median is reported.")
flags.DEFINE_list("jit", ["off", "on"], "jit_compile settings to time: off, on.")
flags.DEFINE_integer("intra_op_threads", 0, "TF intra-op threads (0: TF default).")
flags.DEFINE_integer("inter_op_threads", 0, "TF inter-op threads (0: TF default).")
flags.DEFINE_integer("seed", 0, "Seed for weights and synthetic tokens.")


def build_model(kind, jit_compile):
  """The PTB language model with ``kind`` in ("nas", "lstm") recurrent layers."""
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf import cells  # pylint: disable=g-import-not-at-top

  tokens = keras.Input((FLAGS.num_steps,), batch_size=FLAGS.batch_size, dtype="int32")
  x = keras.layers.Embedding(FLAGS.vocab_size, FLAGS.hidden_size)(tokens)
  for _ in range(FLAGS.num_layers):
    if kind == "nas":
      x = keras.layers.RNN(cells.NASCell(FLAGS.hidden_size), return_sequences=True)(x)
    else:
      x = keras.layers.LSTM(FLAGS.hidden_size, return_sequences=True)(x)
  logits = keras.layers.Dense(FLAGS.vocab_size)(x)
  model = keras.Model(tokens, logits, name=f"ptb_{kind}")
  model.compile(optimizer=keras.optimizers.SGD(1.0),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit_compile)
  return model


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top

  # Thread pools must be set before TensorFlow runs its first op.
  tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
  tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
  keras.utils.set_random_seed(FLAGS.seed)

  rng = np.random.default_rng(FLAGS.seed)
  shape = (FLAGS.batch_size, FLAGS.num_steps)
  # A few distinct batches so no step is a pure repeat of the last one.
  batches = [(rng.integers(0, FLAGS.vocab_size, shape, dtype=np.int32),
              rng.integers(0, FLAGS.vocab_size, shape, dtype=np.int32))
             for _ in range(4)]

  configs = [(kind, jit == "on") for jit in FLAGS.jit for kind in ("nas", "lstm")]
  models = {}
  for kind, jit in configs:
    model = build_model(kind, jit)
    start = time.perf_counter()
    for i in range(FLAGS.warmup):
      model.train_on_batch(*batches[i % len(batches)])
    print(f"built {model.name} jit={jit}: {model.count_params():,} params, warm-up "
          f"{time.perf_counter() - start:.1f}s", flush=True)
    models[(kind, jit)] = model

  words_per_step = FLAGS.batch_size * FLAGS.num_steps
  rates = {key: [] for key in configs}
  for repeat in range(FLAGS.repeats):
    for key in configs:
      model = models[key]
      start = time.perf_counter()
      for i in range(FLAGS.steps):
        loss = model.train_on_batch(*batches[i % len(batches)])
      # train_on_batch returns a Python float, so the last step has finished here.
      elapsed = time.perf_counter() - start
      rates[key].append(FLAGS.steps * words_per_step / elapsed)
    print(f"repeat {repeat + 1}/{FLAGS.repeats} done (last loss {float(loss):.3f})",
          flush=True)

  print()
  print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}; threads: intra_op="
        f"{tf.config.threading.get_intra_op_parallelism_threads()} inter_op="
        f"{tf.config.threading.get_inter_op_parallelism_threads()} (0 = TF default), "
        f"os.cpu_count()={os.cpu_count()}")
  print(f"hidden={FLAGS.hidden_size} vocab={FLAGS.vocab_size} batch={FLAGS.batch_size} "
        f"num_steps={FLAGS.num_steps} layers={FLAGS.num_layers} timed steps="
        f"{FLAGS.steps} x {FLAGS.repeats} repeats (median, words/s = batch*num_steps/s)")
  print(f"{'jit_compile':<12}{'NASCell w/s':>14}{'LSTM w/s':>14}{'NAS/LSTM':>10}"
        f"{'NAS spread':>16}{'LSTM spread':>16}")
  for jit in sorted({j for _, j in configs}):
    nas, lstm = rates[("nas", jit)], rates[("lstm", jit)]
    nas_med, lstm_med = statistics.median(nas), statistics.median(lstm)
    spread = lambda r: f"{min(r):.0f}-{max(r):.0f}"
    print(f"{'on' if jit else 'off':<12}{nas_med:>14.0f}{lstm_med:>14.0f}"
          f"{nas_med / lstm_med:>10.2f}{spread(nas):>16}{spread(lstm):>16}")


if __name__ == "__main__":
  app.run(main)
