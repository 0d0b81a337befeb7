#!/usr/bin/env python3
"""Your own Keras model, searched by the paper's controller: a KerasTuner build function.

The function below is what a KerasTuner user writes (``hp.Int``, ``hp.Choice``,
``hp.Boolean``, ``hp.Float``), with a loop and a branch whose hyperparameters exist only
for some values of others; nothing in it knows nas_tf. ``KerasSearch`` finds the space by
calling it, and the controller (``--search=rl``) takes a decision only when it exists.
The data is generated (no download): 16 features, the label is the sign pattern of two of
them, which a wide enough first layer separates.

  python examples/keras_model_search.py --output_dir=/tmp/my-model --search=rl --max_trials=12
  python examples/keras_model_search.py --front_end=keras_tuner --output_dir=/tmp/kt --search=rl

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
_FRONT_END = flags.DEFINE_enum(
    "front_end", "kerassearch", ["kerassearch", "keras_tuner"],
    "kerassearch: nas_tf's KerasSearch; keras_tuner: a keras_tuner.Tuner whose oracle is "
    "the paper's controller (--search=rl) or regularized evolution (--search=evolution).")


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
  x, y = make_data(2000, 0)
  validation = make_data(500, 1)
  if _FRONT_END.value == "keras_tuner":
    if _SEARCH.value not in ("rl", "evolution"):
      raise app.UsageError("--front_end=keras_tuner takes --search=rl or evolution "
                           "(KerasTuner has its own random and Bayesian oracles)")
    tune_with_keras_tuner(x, y, validation)
  else:
    search_my_model(x, y, validation)


def search_my_model(x, y, validation):
  """nas_tf's front end: KerasSearch (resume, report, results.jsonl, every strategy)."""
  from nas_tf.hypermodel import KerasSearch  # pylint: disable=g-import-not-at-top
  search = KerasSearch(build_model, objective="val_accuracy", search=_SEARCH.value,
                       max_trials=_TRIALS.value, output_dir=_OUT.value)
  search.search(x, y, validation_data=validation, epochs=_EPOCHS.value, batch_size=64)
  search.results_summary(5)
  logging.info("Best hyperparameters: %s", search.get_best_hyperparameters()[0].values)


def tune_with_keras_tuner(x, y, validation):
  """KerasTuner's own front end with the paper's controller as its oracle: one line
  changes (the oracle); a rerun with the same directory resumes it."""
  import keras_tuner  # pylint: disable=g-import-not-at-top
  from nas_tf import hypermodel  # pylint: disable=g-import-not-at-top
  oracle_class = (hypermodel.ControllerOracle if _SEARCH.value == "rl"
                  else hypermodel.EvolutionOracle)
  oracle = oracle_class(
      objective="val_accuracy", max_trials=_TRIALS.value, hypermodel=build_model, seed=0)
  tuner = keras_tuner.Tuner(oracle=oracle, hypermodel=build_model, directory=_OUT.value,
                            project_name=f"nas_tf-{_SEARCH.value}")
  tuner.search(x, y, validation_data=validation, epochs=_EPOCHS.value, batch_size=64,
               verbose=0)
  tuner.results_summary(5)


if __name__ == "__main__":
  app.run(main)
