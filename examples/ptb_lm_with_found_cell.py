#!/usr/bin/env python3
"""A Penn Treebank language model around a found cell (Zoph & Le 2017, §4.2).

  python examples/ptb_lm_with_found_cell.py                      # paper's cell, testdata
  python examples/ptb_lm_with_found_cell.py --cell=found_cell    # a nas_export directory

`load_cell` turns a spec (a nas_export directory, a spec.json, or the paper's NASCell
spec by default) into a fresh, trainable Keras RNN cell; everything else is plain Keras.
Runs in well under a minute on a CPU with the bundled testdata.
"""

import math
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

from nas_tf import cells, data, specs  # pylint: disable=g-import-not-at-top

_CELL = flags.DEFINE_string("cell", None, "Export dir or spec JSON; default: the paper's "
                            "PTB cell (Figure 8).")
_DATA_DIR = flags.DEFINE_string("data_dir", str(_ROOT / "testdata" / "ptb"), "PTB dir.")
_UNITS = flags.DEFINE_integer("units", 32, "Embedding and hidden size.")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Training epochs.")
_BATCH = flags.DEFINE_integer("batch_size", 16, "Parallel rows.")
_STEPS = flags.DEFINE_integer("num_steps", 20, "Truncated-BPTT length.")


def main(argv):
  del argv
  keras.utils.set_random_seed(0)
  ptb = data.load_ptb(_DATA_DIR.value)
  source = _CELL.value or specs.nascell_spec()
  units = _UNITS.value
  tokens = keras.Input((None,), dtype="int32")
  x = keras.layers.Embedding(ptb.vocab_size, units)(tokens)
  x = keras.layers.RNN(cells.load_cell(source, units=units), return_sequences=True)(x)
  x = keras.layers.Dropout(0.2)(x)
  logits = keras.layers.Dense(ptb.vocab_size)(x)
  model = keras.Model(tokens, logits)
  model.compile(keras.optimizers.Adam(3e-3, global_clipnorm=5.0),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  batches = lambda split: ptb.batches(split, _BATCH.value, _STEPS.value)
  model.fit(batches("train"), validation_data=batches("valid"), epochs=_EPOCHS.value,
            verbose=2)
  for split in ("valid", "test"):
    loss = model.evaluate(batches(split), verbose=0)
    logging.info("%s perplexity: %.1f", split, math.exp(loss))


if __name__ == "__main__":
  app.run(main)
