"""Search strategies behind one protocol (:mod:`.base`), made by name.

``rl`` (the paper's controller and REINFORCE), ``random`` (its baseline), ``evolution``
(regularized evolution, Real et al. 2019) and ``bo`` (Optuna's TPE). A new strategy is a
module with a :class:`~nas_tf.search.samplers.base.Sampler` subclass plus one entry in
:data:`SAMPLERS`.
"""

from __future__ import annotations

import importlib

from nas_tf.search.samplers.base import Sampler

# search name -> (module, class); modules are imported on use (rl needs TensorFlow,
# bo needs Optuna).
SAMPLERS = {
    "rl": ("nas_tf.search.samplers.rl", "RLSampler"),
    "random": ("nas_tf.search.samplers.random", "RandomSampler"),
    "evolution": ("nas_tf.search.samplers.evolution", "EvolutionSampler"),
    "bo": ("nas_tf.search.samplers.bo", "BOSampler"),
}


def sampler_class(name: str) -> type:
  if name not in SAMPLERS:
    raise ValueError(f"unknown search {name!r}; known: {sorted(SAMPLERS)}")
  module, cls = SAMPLERS[name]
  return getattr(importlib.import_module(module), cls)


def make_sampler(space, config, state: dict | None = None) -> Sampler:
  """The sampler ``config.search`` names, restored from ``state`` (a state.json dict)."""
  sampler = sampler_class(config.search)(space, config)
  sampler.restore(saved_sampler_state(state or {}))
  return sampler


def saved_sampler_state(state: dict) -> dict:
  """The sampler's part of state.json (runs before the seams kept only ``baseline``)."""
  saved = dict(state.get("sampler") or {})
  if state.get("baseline") is not None:
    saved.setdefault("baseline", state["baseline"])
  return saved


__all__ = ["Sampler", "SAMPLERS", "make_sampler", "sampler_class", "saved_sampler_state"]
