"""A ``build_model(hp)`` as a token space: KerasTuner's hyperparameters as value lists.

The space is discovered the way KerasTuner discovers it, by calling the function with a
fresh ``HyperParameters``: every ``hp.Choice`` / ``hp.Int`` / ``hp.Boolean`` / ``hp.Fixed``
/ ``hp.Float`` it asks for becomes one decision of the controller, in the order asked,
with the values it may take (:class:`nas_tf.search_space.HyperSpace`). Ranges become
lists: ``hp.Int`` every ``step`` (or every factor ``step`` with ``sampling='log'``),
``hp.Float`` every ``step`` when it has one, else :data:`FLOAT_VALUES` values spread
evenly (on a log scale with ``sampling='log'``).

Conditional hyperparameters are found the same way: KerasTuner's own
(``hp.conditional_scope``, ``parent_name``) and those a branch or a loop of the function
asks for only under some values of an earlier one (``for i in range(hp.Int(...))``).
The controller takes such a decision only when its condition holds
(:class:`nas_tf.search_space.CategoricalSlot`'s ``active_when``).
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import numpy as np

from nas_tf import search_space as search_space_lib
from nas_tf import specs as specs_lib

FLOAT_VALUES = 10  # values of an hp.Float without a step
MAX_VALUES = 1000  # values of one hyperparameter, at most


def require_keras_tuner():
  try:
    import keras_tuner  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError("searching a build_model(hp) needs KerasTuner: pip install "
                      "'nas_tf[keras-tuner]' (or keras-tuner)") from None
  return keras_tuner


def build_function(hypermodel) -> Callable:
  """The ``hp -> model`` function of a function or a ``keras_tuner.HyperModel``."""
  build = getattr(hypermodel, "build", None)
  return build if callable(build) else hypermodel


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


MAX_BUILDS = 500  # calls of build_model while discovering its space


def explicit_conditions(p) -> tuple:
  """KerasTuner's own conditions of ``p`` (``conditional_scope``, ``parent_name``)."""
  out = []
  for c in p.conditions:
    config = c.get_config()
    if type(c).__name__ != "Parent":
      raise ValueError(f"hyperparameter {p.name!r} has a {type(c).__name__} condition; "
                       "only Parent conditions (conditional_scope, parent_name) are searchable")
    out.append((config["name"], tuple(config["values"])))
  return tuple(out)


class _Explorer:
  """Calls ``build_model`` with chosen values and records what it asks for, in order."""

  def __init__(self, build_model: Callable):
    self.build_model, self.builds = build_model, 0
    self.known: dict = {}  # name -> KerasTuner hyperparameter, in order of discovery

  def ask(self, assignment: dict) -> list[str]:
    """The names ``build_model`` asks for when ``assignment`` fixes some values (the
    others at their defaults); registers the hyperparameters seen for the first time."""
    import keras  # pylint: disable=g-import-not-at-top
    self.builds += 1
    if self.builds > MAX_BUILDS:
      raise ValueError(f"build_model's space needs more than {MAX_BUILDS} calls to "
                       "discover; give ranges fewer values (hp.Float with a step, ...)")
    hp = require_keras_tuner().HyperParameters()
    for q in self.known.values():
      hp._register(q)  # pylint: disable=protected-access
    hp.values.update(assignment)
    asked = []
    retrieve = hp._retrieve  # pylint: disable=protected-access

    def recording(hyperparameter):
      asked.append(hyperparameter.name)
      return retrieve(hyperparameter)

    hp._retrieve = recording  # pylint: disable=protected-access
    try:
      self.build_model(hp)
    finally:
      keras.backend.clear_session(free_memory=False)
    for q in hp.space:
      self.known.setdefault(q.name, q)
    return list(dict.fromkeys(asked))


def discover(build_model: Callable):
  """``(HyperSpace, HyperParameters)`` of ``build_model``, conditions included.

  The function is called with defaults, then with every value of every hyperparameter
  (in the context where that hyperparameter was first seen), until no call shows a new
  one. A hyperparameter asked for under only some values of an earlier one depends on
  it (``for i in range(hp.Int("stages", 1, 3))``: ``width_2`` exists when stages = 3);
  KerasTuner's own conditions are kept as they are. Raises ValueError with one line for
  a space it cannot search.
  """
  explorer = _Explorer(build_model)
  try:
    order = explorer.ask({})
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"build_model(hp) raised on its first call: {type(e).__name__}: "
                     f"{e}") from e
  if not order:
    raise ValueError("build_model(hp) asked for no hyperparameter: there is nothing to "
                     "search (use hp.Choice, hp.Int, hp.Float, hp.Boolean)")
  context = {name: {} for name in order}  # the values under which each was first seen
  seen: dict = {}  # (name, value) -> names asked with that value (in its context)
  queue = list(order)
  while queue:
    name = queue.pop(0)
    for value in values_of(explorer.known[name]):
      assignment = {**context[name], name: value}
      try:
        asked = explorer.ask(assignment)
      except Exception:  # pylint: disable=broad-except
        continue  # a value the function cannot build: a failed trial later, not a space
      seen[(name, value)] = set(asked)
      for k, new in enumerate(asked):
        if new not in context:
          context[new] = assignment
          queue.append(new)
          # Right after the last name asked before it that is already placed.
          before = [a for a in asked[:k] if a in order]
          order.insert(order.index(before[-1]) + 1 if before else len(order), new)
  entries = []
  for k, name in enumerate(order):
    p = explorer.known[name]
    conditions = list(explicit_conditions(p))
    for parent in order[:k]:
      if parent in {c for c, _ in conditions}:
        continue
      when = tuple(v for v in values_of(explorer.known[parent])
                   if name in seen.get((parent, v), set()))
      tried = [v for v in values_of(explorer.known[parent]) if (parent, v) in seen]
      if when and len(when) < len(tried):
        conditions.append((parent, when))
    entries.append((name, values_of(p), tuple(conditions)))
  space = search_space_lib.HyperSpace(tuple(entries))
  base = require_keras_tuner().HyperParameters()
  for name in order:
    base._register(explorer.known[name])  # pylint: disable=protected-access
  return space, base


@functools.lru_cache(maxsize=8)
def discover_once(hypermodel):
  """:func:`discover` of a build function or ``keras_tuner.HyperModel``, once per
  hypermodel per process (a resumed or extended search, and each ``KerasSearch.search``
  call, reuse the space found the first time)."""
  return discover(build_function(hypermodel))


def hyperparameters_for(spec: specs_lib.HyperParameterSpec, base):
  """A KerasTuner ``HyperParameters`` holding ``spec``'s values (``base``: the
  discovered one), to call the build function with."""
  hp = require_keras_tuner().HyperParameters()
  for p in base.space:
    hp._register(p)  # pylint: disable=protected-access
  hp.values.update(spec.as_dict())
  return hp


def summary(space: search_space_lib.HyperSpace, title: str = "build_model") -> str:
  """What the controller will decide, one line per hyperparameter, in its order: values,
  condition, and which decisions share a softmax (KerasTuner's
  ``search_space_summary``, with the size of the space)."""
  entries = space.hyperparameters
  conditional = sum(1 for _, _, c in entries if c)
  lines = [f"Search space of {title}: {len(entries)} hyperparameters "
           f"({conditional} conditional), {space.num_configurations():,} configurations"]
  first_of_kind: dict = {}
  for (name, values, conditions), slot in zip(entries, space.schema()):
    shown = ", ".join(map(repr, values[:8])) + (f", ... ({len(values)} values)"
                                                if len(values) > 8 else "")
    notes = [f"when {parent} in ({', '.join(map(repr, allowed))})"
             for parent, allowed in conditions]
    owner = first_of_kind.setdefault(slot.key, name)
    if owner != name:
      notes.append(f"one softmax with {owner}")
    lines.append(f"  {name}: {shown}" + (f"   [{'; '.join(notes)}]" if notes else ""))
  return "\n".join(lines)
