"""Your own Keras model as a search space: a KerasTuner ``build_model(hp)`` searched by
the paper's controller (or random, evolution, BO) with everything a search does around
it (results log, resume, lock, report).

``keras-tuner`` is an optional dependency (``pip install nas_tf[keras-tuner]``): its
``HyperParameters`` is the API the build function is written against.
"""

from nas_tf.hypermodel.search import HyperModelTask, KerasSearch
from nas_tf.hypermodel.space import discover, hyperparameters_for

__all__ = ["KerasSearch", "HyperModelTask", "discover", "hyperparameters_for"]
