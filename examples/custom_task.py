#!/usr/bin/env python3
"""Your own task, searched without editing nas_tf: a recurrent cell for a toy sequence task.

The data is generated here (no download): sequences of random digits, labelled with the
first digit modulo ``NUM_CLASSES`` (chance: 0.25) -- the cell must carry it through the
whole sequence. The child is our ``TreeCell`` inside a small Keras classifier. The task
says what its data and its network are; nas_tf does the rest with the code it uses for
its own tasks: the search (any strategy, resume included), the final training, the
export with trained weights and a cluster run. ``TASK`` is what ``--task`` names:

  bin/nas_search --task=examples/custom_task.py:TASK --data_dir=generated \
      --output_dir=/tmp/first-digit --search=evolution --max_children=12
  bin/nas_train --spec=/tmp/first-digit --data_dir=generated --output_dir=/tmp/fd-final
  bin/nas_export --trained=/tmp/fd-final --export_dir=/tmp/fd-export

or from Python, as below:

  python examples/custom_task.py --output_dir=/tmp/first-digit --max_children=12
"""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

if __name__ == "__main__":  # TensorFlow's start-up noise out of stderr, as in bin/
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  cli.start_noise_filter()

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf import search, tasks  # pylint: disable=g-import-not-at-top

NUM_CLASSES, LENGTH = 4, 8


def first_digit_data(n: int, seed: int):
  """``n`` sequences of LENGTH digits in [0, 10) and their first digit mod NUM_CLASSES."""
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 10, size=(n, LENGTH)).astype(np.int32)
  return x, x[:, 0] % NUM_CLASSES


class FirstDigitTask(tasks.TrainedChildTask):
  """Search a base-4 recurrent cell for the first-digit task; reward = validation accuracy."""

  name = "first_digit"
  space_kind = "rnn"
  metric = "val_accuracy"
  metric_label = "val_acc"
  higher_is_better = True
  # Search children: 6 epochs with Adam, enough for a cell that can carry the digit to
  # reach 1.0 while most cells stay near chance (0.25-0.33); nas_train: the same.
  presets = {k: {"max_children": 12, "children_per_step": 2, "child.epochs": 6,
                 "child.batch_size": 64, "child.optimizer": "adam",
                 "child.learning_rate": 3e-3, "child.reward_epochs": 1}
             for k in ("tiny", "real")}
  final_presets = {k: {"epochs": 6, "batch_size": 64, "optimizer": "adam",
                       "learning_rate": 3e-3, "lr_schedule": "constant",
                       "weight_decay": 0.0}
                   for k in ("tiny", "real")}

  def default_space(self):
    return {"kind": "rnn", "base": 4, "combinations": ["add", "elem_mult"],
            "activations": ["identity", "tanh", "sigmoid", "relu"]}

  def check_data(self, data_dir, bundled=False):
    pass  # the data is generated

  def load_data(self, data_dir, seed=0, cache_dir=None, validation_size=None):
    from nas_tf import data  # pylint: disable=g-import-not-at-top
    return data.ArrayData(first_digit_data(1500, seed), first_digit_data(500, seed + 1),
                          first_digit_data(500, seed + 2))

  def build_child(self, spec, data, config, final=False):
    import keras  # pylint: disable=g-import-not-at-top
    from nas_tf import cells  # pylint: disable=g-import-not-at-top
    return keras.Sequential([
        keras.Input((LENGTH,), dtype="int32"), keras.layers.Embedding(10, 16),
        keras.layers.RNN(cells.TreeCell(spec, 32)), keras.layers.Dense(NUM_CLASSES)],
        name="first_digit")


TASK = FirstDigitTask()


def main(_):
  flag = flags.FLAGS
  # Registered under its name for this process; worker processes load it again from
  # this file (its reference), as --task=examples/custom_task.py:TASK would.
  TASK.ref = f"{os.path.abspath(__file__)}:TASK"
  tasks.register(TASK)
  config = config_lib.SearchConfig(task=TASK.ref, data_dir="generated",
                                   output_dir=flag.output_dir, search=flag.search,
                                   max_children=flag.max_children, children_per_step=2,
                                   child=config_lib.ChildTrainingConfig(
                                       epochs=6, batch_size=64, optimizer="adam",
                                       learning_rate=3e-3, reward_epochs=1))
  summary = search.run(config)
  best = summary["best"]
  logging.info("best of %d cells: validation accuracy %.3f (chance %.3f): %s",
               summary["num_children"], best["val_metric"], 1 / NUM_CLASSES, best["describe"])


if __name__ == "__main__":
  # Flags only when run as a program: --task=examples/custom_task.py:TASK imports this
  # file into nas_search, nas_train and nas_export, which have flags of their own.
  flags.DEFINE_string("output_dir", "/tmp/nas_tf-first-digit", "Results directory.")
  flags.DEFINE_integer("max_children", 12, "Architectures to evaluate.")
  flags.DEFINE_string("search", "evolution", "rl, random, evolution or bo.")
  app.run(main)
