#!/usr/bin/env python3
"""A found cell in a bidirectional text classifier (the transfer use of §4.2).

  python examples/found_cell_text_classifier.py                    # paper's cell
  python examples/found_cell_text_classifier.py --cell=found_cell  # a nas_export directory

The task is synthetic so the example needs no data: sequences of random tokens, labelled
1 when the "positive" token occurs more often than the "negative" one. A cell that
can count learns it well above chance within a few epochs on a CPU.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout

if __name__ == "__main__":  # TensorFlow's start-up noise out of stderr, as in bin/
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  cli.start_noise_filter()

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import cells, specs  # pylint: disable=g-import-not-at-top

_CELL = flags.DEFINE_string("cell", None, "Export dir or spec JSON; default: the paper's "
                            "PTB cell (Figure 8).")
_UNITS = flags.DEFINE_integer("units", 16, "Cell width (each direction).")
_EPOCHS = flags.DEFINE_integer("epochs", 6, "Training epochs.")
_EXAMPLES = flags.DEFINE_integer("examples", 1200, "Synthetic training examples.")

VOCAB, LENGTH, POSITIVE, NEGATIVE = 20, 24, 1, 2


def make_data(n, rng):
  """Random token sequences; label = more POSITIVE than NEGATIVE tokens."""
  tokens = rng.integers(3, VOCAB, size=(n, LENGTH))
  marks = rng.choice([0, POSITIVE, NEGATIVE], p=[0.7, 0.15, 0.15], size=(n, LENGTH))
  tokens = np.where(marks > 0, marks, tokens).astype("int32")
  labels = ((tokens == POSITIVE).sum(1) > (tokens == NEGATIVE).sum(1)).astype("int32")
  return tokens, labels


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  rng = np.random.default_rng(0)
  x_train, y_train = make_data(_EXAMPLES.value, rng)
  x_test, y_test = make_data(400, rng)
  source = _CELL.value or specs.nascell_spec()
  tokens = keras.Input((None,), dtype="int32")
  h = keras.layers.Embedding(VOCAB, 16)(tokens)
  # One fresh cell per direction: Bidirectional copies the layer for the backward pass.
  h = keras.layers.Bidirectional(keras.layers.RNN(cells.load_cell(source, _UNITS.value)))(h)
  logits = keras.layers.Dense(2)(h)
  model = keras.Model(tokens, logits)
  model.compile(keras.optimizers.Adam(1e-2),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  model.fit(x_train, y_train, batch_size=32, epochs=_EPOCHS.value, verbose=2,
            validation_split=0.1)
  _, accuracy = model.evaluate(x_test, y_test, verbose=0)
  logging.info("Test accuracy %.3f (majority class %.3f)", accuracy,
               max(y_test.mean(), 1 - y_test.mean()))


if __name__ == "__main__":
  app.run(main)
