"""nas_tf: Neural Architecture Search with Reinforcement Learning on TensorFlow 2 / Keras 3.

Implements Zoph & Le, "Neural Architecture Search with Reinforcement Learning", ICLR 2017.
The package is organised along the one-way data flow of the method:

    config -> search_space -> controller -> specs -> children -> training
           -> rewards -> reinforce -> controller

Import submodules explicitly (``from nas_tf import specs``); this file stays light so that
``import nas_tf`` does not pull in TensorFlow.
"""

__version__ = "0.1.0"

# The Python API (nas_tf.api), reachable as nas_tf.run_search etc. without importing
# TensorFlow until it is used (PEP 562). Loaded by name, not imported: nas_tf.api
# depends on the whole package, which depends on this file (in BUILD, code that calls
# nas_tf.run_search depends on the ":api" target).
_API = ("run_search", "load_results", "make_config", "SearchResult")
# A user's build_model(hp) searched as KerasTuner's Tuner would (nas_tf.hypermodel).
_HYPERMODEL = ("KerasSearch",)


def __getattr__(name):
  if name in _API or name in _HYPERMODEL:
    import importlib  # pylint: disable=g-import-not-at-top
    module = "nas_tf.api" if name in _API else "nas_tf.hypermodel"
    return getattr(importlib.import_module(module), name)
  raise AttributeError(f"module 'nas_tf' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_API) + list(_HYPERMODEL))
