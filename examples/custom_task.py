#!/usr/bin/env python3
"""Your own task, searched without editing nas_tf: a recurrent cell for a toy sequence task.

The data is generated here (no download): sequences of random digits, labelled with the
first digit modulo ``NUM_CLASSES`` (chance: 0.25) -- the cell must carry it through the
whole sequence. The
child is our ``TreeCell`` inside a small Keras classifier; the task object says how to
score one and what its reward is. One ``tasks.register`` call makes it searchable by
any strategy (here regularized evolution) with the usual outputs, resume included.

  python examples/custom_task.py --output_dir=/tmp/first-digit --max_children=12
"""

import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf import search, tasks  # pylint: disable=g-import-not-at-top

_OUT = flags.DEFINE_string("output_dir", "/tmp/nas_tf-first-digit", "Results directory.")
_MAX = flags.DEFINE_integer("max_children", 12, "Architectures to evaluate.")
_SEARCH = flags.DEFINE_string("search", "evolution", "rl, random, evolution or bo.")

NUM_CLASSES, LENGTH = 4, 8


def first_digit_data(n: int, seed: int):
  """``n`` sequences of LENGTH digits in [0, 10) and their first digit mod NUM_CLASSES."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 10, size=(n, LENGTH))
  return x, x[:, 0] % NUM_CLASSES


class FirstDigitEvaluator:
  """Trains one small classifier per cell; ``evaluate(specs) -> [metrics]``."""

  def __init__(self, seed: int, epochs: int = 3):
    self.seed, self.epochs = seed, epochs
    self.train = first_digit_data(1500, seed)
    self.valid = first_digit_data(500, seed + 1)

  def evaluate(self, specs):
    import keras  # pylint: disable=g-import-not-at-top
    from nas_tf import cells  # pylint: disable=g-import-not-at-top
    out = []
    for spec in specs:
      t0 = time.monotonic()
      keras.utils.set_random_seed(self.seed)
      model = keras.Sequential([
          keras.Input((LENGTH,), dtype="int32"), keras.layers.Embedding(10, 16),
          keras.layers.RNN(cells.TreeCell(spec, 32)), keras.layers.Dense(NUM_CLASSES)])
      model.compile(keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
      history = model.fit(*self.train, validation_data=self.valid, epochs=self.epochs,
                          batch_size=64, verbose=0)
      out.append({"status": "ok", "val_accuracy": float(history.history["val_accuracy"][-1]),
                  "num_params": model.count_params(), "train_seconds": time.monotonic() - t0})
    return out

  def close(self, abort=False):
    del abort


class FirstDigitTask(tasks.Task):
  """Search a base-4 recurrent cell for the first-digit task; reward = validation accuracy."""

  name = "first_digit"
  space_kind = "rnn"
  metric = "val_accuracy"
  metric_label = "val_acc"
  higher_is_better = True

  def default_space(self):
    return {"kind": "rnn", "base": 4, "combinations": ["add", "elem_mult"],
            "activations": ["identity", "tanh", "sigmoid", "relu"]}

  def check_data(self, data_dir, bundled=False):
    pass  # the data is generated

  def make_evaluator(self, config):
    return FirstDigitEvaluator(config.seed)


def main(_):
  tasks.register(FirstDigitTask())  # the one line that makes --task=first_digit exist
  config = config_lib.SearchConfig(task="first_digit", data_dir="generated",
                                   output_dir=_OUT.value, search=_SEARCH.value,
                                   max_children=_MAX.value, children_per_step=2)
  summary = search.run(config)
  best = summary["best"]
  logging.info("best of %d cells: validation accuracy %.3f (chance %.3f): %s",
               summary["num_children"], best["val_metric"], 1 / NUM_CLASSES, best["describe"])


if __name__ == "__main__":
  app.run(main)
