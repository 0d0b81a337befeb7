"""A ``build_model(hp)`` as a token space: KerasTuner's hyperparameters as value lists.

The space is discovered the way KerasTuner discovers it, by calling the function with a
fresh ``HyperParameters``: every ``hp.Choice`` / ``hp.Int`` / ``hp.Boolean`` / ``hp.Fixed``
/ ``hp.Float`` it asks for becomes one decision of the controller, in the order asked,
with the values it may take (:class:`nas_tf.search_space.HyperSpace`). Ranges become
lists: ``hp.Int`` every ``step`` (or every factor ``step`` with ``sampling='log'``),
``hp.Float`` every ``step`` when it has one, else :data:`FLOAT_VALUES` values spread
evenly (on a log scale with ``sampling='log'``).

Conditional hyperparameters (``hp.conditional_scope``, ``parent_name``), and spaces whose
hyperparameters change with the values of others (``for i in range(hp.Int(...))``), are
refused with the name of the first one found: the controller does not skip inactive
decisions yet.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from nas_tf import search_space as search_space_lib
from nas_tf import specs as specs_lib

FLOAT_VALUES = 10  # values of an hp.Float without a step
MAX_VALUES = 1000  # values of one hyperparameter, at most


def _kt():
  try:
    import keras_tuner  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("searching a build_model(hp) needs KerasTuner: pip install "
                      "'nas_tf[keras-tuner]' (or keras-tuner)") from None
  return keras_tuner


def _tidy(x: float) -> float:
  return float(f"{x:.6g}")


def values_of(p) -> tuple:
  """The values a KerasTuner hyperparameter may take, as a tuple of JSON scalars."""
  kind, c = type(p).__name__, p.get_config()
  if kind == "Choice":
    out = tuple(c["values"])
  elif kind == "Boolean":
    out = (False, True)
  elif kind == "Fixed":
    out = (c["value"],)
  elif kind == "Int":
    lo, hi, step = int(c["min_value"]), int(c["max_value"]), int(c.get("step") or 1)
    if c.get("sampling") == "log" and step > 1:
      out, v = [], lo
      while v <= hi:
        out.append(v)
        v *= step
      out = tuple(out)
    else:
      out = tuple(range(lo, hi + 1, step))
  elif kind == "Float":
    lo, hi, step = float(c["min_value"]), float(c["max_value"]), c.get("step")
    log = c.get("sampling") == "log"
    if step:
      n = (int(math.floor(math.log(hi / lo) / math.log(step) + 1e-9)) + 1 if log
           else int(math.floor((hi - lo) / step + 1e-9)) + 1)
      if n > MAX_VALUES:
        raise ValueError(f"hp.Float {p.name!r} has {n:,} steps between {lo} and {hi}; "
                         f"at most {MAX_VALUES} (use a larger step)")
      out = tuple(_tidy(lo * step ** k if log else lo + k * step) for k in range(n))
    else:
      grid = np.geomspace(lo, hi, FLOAT_VALUES) if log else np.linspace(lo, hi, FLOAT_VALUES)
      out = tuple(dict.fromkeys(_tidy(v) for v in grid))
  else:
    raise ValueError(f"hyperparameter {p.name!r} is a {kind}, which nas_tf cannot search "
                     "(use Choice, Int, Float, Boolean or Fixed)")
  if not out or len(out) > MAX_VALUES:
    raise ValueError(f"hyperparameter {p.name!r} has {len(out):,} values; it needs 1 to "
                     f"{MAX_VALUES} (a range with a larger step?)")
  return out


def _names_asked(build_model: Callable, hp) -> list[str]:
  """The hyperparameters ``build_model`` asks for when called with ``hp``."""
  import keras  # pylint: disable=g-import-not-at-top
  fresh = _kt().HyperParameters()
  fresh.values.update(hp.values)
  for p in hp.space:
    fresh._register(p)  # pylint: disable=protected-access (KerasTuner's own way to copy)
  fresh.values.update(hp.values)
  asked = []
  original = fresh._retrieve  # pylint: disable=protected-access

  def retrieve(hyperparameter):
    asked.append(hyperparameter.name)
    return original(hyperparameter)

  fresh._retrieve = retrieve  # pylint: disable=protected-access
  try:
    build_model(fresh)
  finally:
    keras.backend.clear_session(free_memory=False)
  return asked


def discover(build_model: Callable):
  """``(HyperSpace, HyperParameters)`` of ``build_model``; raises ValueError with one line
  for a space it cannot search (none, conditional, or changing with the values)."""
  kt = _kt()
  import keras  # pylint: disable=g-import-not-at-top
  hp = kt.HyperParameters()
  try:
    build_model(hp)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"build_model(hp) raised on its first call: {type(e).__name__}: "
                     f"{e}") from e
  finally:
    keras.backend.clear_session(free_memory=False)
  if not hp.space:
    raise ValueError("build_model(hp) asked for no hyperparameter: there is nothing to "
                     "search (use hp.Choice, hp.Int, hp.Float, hp.Boolean)")
  for p in hp.space:
    if p.conditions:
      raise ValueError(f"hyperparameter {p.name!r} is conditional; nas_tf searches "
                       "unconditional spaces only for now")
  space = search_space_lib.HyperSpace(tuple((p.name, values_of(p)) for p in hp.space))
  names = [p.name for p in hp.space]
  # The same hyperparameters whatever the values: try each one's extreme values.
  for p, (_, values) in zip(hp.space, space.hyperparameters):
    for value in {values[0], values[-1]}:
      trial = kt.HyperParameters()
      for q in hp.space:
        trial._register(q)  # pylint: disable=protected-access
      trial.values[p.name] = value
      try:
        asked = _names_asked(build_model, trial)
      except Exception:  # pylint: disable=broad-except
        continue  # a value the function cannot build: a failed trial later, not a space
      extra = [n for n in asked if n not in names]
      if extra:
        raise ValueError(f"hyperparameter {extra[0]!r} appears only when {p.name!r} = "
                         f"{value!r}: spaces that change with the values are not "
                         "searchable yet")
  return space, hp


def hyperparameters_for(spec: specs_lib.HyperParameterSpec, base):
  """A KerasTuner ``HyperParameters`` holding ``spec``'s values (``base``: the
  discovered one), to call the build function with."""
  hp = _kt().HyperParameters()
  for p in base.space:
    hp._register(p)  # pylint: disable=protected-access
  hp.values.update(spec.as_dict())
  return hp
