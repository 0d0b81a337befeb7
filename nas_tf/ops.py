"""Implementations of the named operations used by specs (paper §3.4 and §4.2).

Specs name operations by stable strings (:data:`nas_tf.specs.COMBINATIONS`,
:data:`nas_tf.specs.ACTIVATIONS`); this module maps the names to ``keras.ops`` functions
so that cells work on every Keras backend and inside ``tf.function``/XLA.
"""

from __future__ import annotations

from typing import Callable

from keras import ops

from nas_tf import specs

COMBINATION_FNS: dict[str, Callable] = {
    "add": ops.add,
    "elem_mult": ops.multiply,
    "max": ops.maximum,
}

ACTIVATION_FNS: dict[str, Callable] = {
    "identity": lambda x: x,
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "relu": ops.relu,
    "sin": ops.sin,
}

assert set(COMBINATION_FNS) == set(specs.COMBINATIONS), "ops and specs disagree"
assert set(ACTIVATION_FNS) == set(specs.ACTIVATIONS), "ops and specs disagree"


def combine(name: str, a, b):
  """Applies the combination called ``name`` to ``a`` and ``b``."""
  return COMBINATION_FNS[name](a, b)

