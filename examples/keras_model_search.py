#!/usr/bin/env python3
"""Your own Keras model, searched by the paper's controller: a KerasTuner build function.

The function below is what a KerasTuner user writes (``hp.Int``, ``hp.Choice``,
``hp.Boolean``, ``hp.Float``), with a loop and a branch whose hyperparameters exist only
for some values of others; nothing in it knows nas_tf. ``KerasSearch`` finds the space by
calling it, and the controller (``--search=rl``) takes a decision only when it exists.
The data is generated (no download): 16 features, the label is the sign pattern of two of
them, which a wide enough first layer separates.

  python examples/keras_model_search.py --output_dir=/tmp/my-model --search=rl --max_trials=12

Running it again with the same --output_dir resumes (a larger --max_trials extends).
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

_OUT = flags.DEFINE_string("output_dir", "/tmp/nas_tf-keras-model", "The run's directory.")
_SEARCH = flags.DEFINE_enum("search", "rl", ["rl", "random", "evolution", "bo"],
                            "Search strategy.")
_TRIALS = flags.DEFINE_integer("max_trials", 12, "Models built and trained.")
_EPOCHS = flags.DEFINE_integer("epochs", 4, "Epochs per trial.")


def build_model(hp):
  """A KerasTuner hypermodel: 1-3 dense stages, each with optional dropout."""
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.Sequential([keras.Input((16,))])
  for i in range(hp.Int("stages", 1, 3)):
    model.add(keras.layers.Dense(hp.Choice(f"units_{i}", [8, 32, 128]),
                                 activation=hp.Choice(f"activation_{i}", ["relu", "tanh"])))
    if hp.Boolean(f"dropout_{i}"):
      model.add(keras.layers.Dropout(hp.Float(f"rate_{i}", 0.1, 0.5, step=0.2)))
  model.add(keras.layers.Dense(4))
  model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-2, sampling="log")),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model


def make_data(n: int, seed: int):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 16)).astype("float32")
  return x, (2 * (x[:, 3] > 0) + (x[:, 7] * x[:, 3] > 0)).astype("int32")


def main(argv):
  del argv
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  with cli.quiet_tensorflow():  # TensorFlow's start-up lines, as the binaries drop them
    search_my_model()


def search_my_model():
  from nas_tf.hypermodel import KerasSearch  # pylint: disable=g-import-not-at-top
  x, y = make_data(2000, 0)
  x_val, y_val = make_data(500, 1)
  search = KerasSearch(build_model, objective="val_accuracy", search=_SEARCH.value,
                       max_trials=_TRIALS.value, output_dir=_OUT.value)
  search.search(x, y, validation_data=(x_val, y_val), epochs=_EPOCHS.value, batch_size=64)
  search.results_summary(5)
  logging.info("Best hyperparameters: %s", search.get_best_hyperparameters()[0].values)


if __name__ == "__main__":
  app.run(main)
