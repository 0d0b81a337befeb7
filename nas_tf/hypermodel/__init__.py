"""Your own Keras model as a search space: a KerasTuner ``build_model(hp)`` searched by
the paper's controller (or random, evolution, BO) with everything a search does around
it (results log, resume, lock, report).

``keras-tuner`` is an optional dependency (``pip install nas_tf[keras-tuner]``): its
``HyperParameters`` is the API the build function is written against.
"""

from nas_tf.hypermodel.search import HyperModelTask, KerasSearch
from nas_tf.hypermodel.space import discover, hyperparameters_for


def __getattr__(name):
  # The oracles subclass keras_tuner.Oracle: imported on use, so that the rest of this
  # package loads without KerasTuner until a build function is searched.
  if name in ("ControllerOracle", "EvolutionOracle", "SamplerOracle"):
    from nas_tf.hypermodel import oracle  # pylint: disable=g-import-not-at-top
    return getattr(oracle, name)
  raise AttributeError(f"module 'nas_tf.hypermodel' has no attribute {name!r}")


__all__ = ["KerasSearch", "HyperModelTask", "ControllerOracle", "EvolutionOracle",
           "discover", "hyperparameters_for"]
