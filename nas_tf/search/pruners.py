"""Which children stop early: the bars of the median rule, successive halving, Hyperband.

A pruner turns the rung values of children already committed into a
:class:`~nas_tf.training.rungs.RungPlan` for each new child: the rungs it is validated at
and the worst value that goes on at each. The trainer applies the plan as it goes
(:mod:`nas_tf.training.rungs`); the pruner never sees a child in training. Because every
bar is fixed when the child's step is sampled, from the records of steps committed by
then, decisions are the same whether children run inline, in worker processes or on a
cluster, and a resumed run makes the same ones as an uninterrupted run.

The rules, for a child whose value at a rung is ``v`` among the ``n`` earlier values
there (each needs ``warmup_children`` earlier values before it decides anything):

* median (Golovin et al. 2017, Google Vizier's median stopping rule): go on if ``v`` is
  at least as good as the median of the earlier values;
* successive halving, asynchronous (Li et al. 2020, ASHA; as Optuna's
  ``SuccessiveHalvingPruner``): go on if ``v`` is among the best
  ``max(1, (n + 1) // eta)`` of the ``n + 1`` values, its own included;
* Hyperband (Li et al. 2018): each child is given a bracket (a deterministic draw,
  weighted by Hyperband's bracket sizes); bracket ``b`` is successive halving from rung
  ``b`` on, among the children of that bracket only; the last bracket is never stopped.

``observe`` has no bar: every child is measured at every rung and trains to the end, so
a run records the curves on which any rule can be replayed offline
(``benchmarks/pruning_replay.py``) before a live run spends a search on it.
"""

from __future__ import annotations

import math
import random
from typing import Iterable, Optional

from nas_tf.config import PrunerConfig
from nas_tf.training.rungs import RungPlan


def ladder(config: PrunerConfig) -> list[float]:
  """The rungs ``min_resource * eta ** i`` below the full budget, as fractions."""
  out, r = [], config.min_resource
  while r < 1 - 1e-9:
    out.append(r)
    r *= config.reduction_factor
  return out


def _key(resource: float) -> float:
  return round(float(resource), 9)


def rung_reports(records: Iterable[dict], before_step: int) -> list[tuple]:
  """``(bracket, {resource: value})`` of every child logged at a step below
  ``before_step`` that measured rungs (finite values only)."""
  out = []
  for r in records:
    metrics = r.get("metrics") or {}
    if r["step"] >= before_step or not metrics.get("rungs"):
      continue
    values = {_key(res): float(v) for res, v in metrics["rungs"]
              if v is not None and math.isfinite(float(v))}
    out.append((metrics.get("bracket"), values))
  return out


class Pruner:
  """Plans the rungs of each child from the rung values of the children before it.

  Args:
    config: The run's pruner settings (``kind`` not 'none').
    higher_is_better: Direction of the task's metric.
    seed: The run's seed (Hyperband's bracket draws).
  """

  def __init__(self, config: PrunerConfig, higher_is_better: bool, seed: int = 0):
    if config.kind == "none":
      raise ValueError("Pruner needs a pruner kind other than 'none'")
    self.config, self.higher_is_better, self.seed = config, higher_is_better, seed
    self.rungs = ladder(config)
    num = len(self.rungs) + 1
    self.num_brackets = (min(num, config.num_brackets) if config.num_brackets else num)
    # Hyperband's bracket sizes: a bracket with s rungs gets ceil((s_max + 1) / (s + 1))
    # * eta ** s children per round (Li et al. 2018, Algorithm 1), s_max = the ladder.
    s_max, eta = len(self.rungs), config.reduction_factor
    self.bracket_weights = [math.ceil((s_max + 1) / (s_max - b + 1)) * eta ** (s_max - b)
                            for b in range(self.num_brackets)]

  def bracket_of(self, child_number: int) -> Optional[int]:
    """The Hyperband bracket of the ``child_number``-th child of the run (None otherwise)."""
    if self.config.kind != "hyperband":
      return None
    draw = random.Random(f"nas_tf-hyperband-{self.seed}-{child_number}").random()
    total, acc = sum(self.bracket_weights), 0.0
    for b, w in enumerate(self.bracket_weights):
      acc += w / total
      if draw < acc:
        return b
    return self.num_brackets - 1

  def plan(self, reports: list[tuple], child_number: int) -> RungPlan:
    """The plan of one child; ``reports``: :func:`rung_reports` of the run so far."""
    bracket = self.bracket_of(child_number)
    rungs = self.rungs if bracket is None else self.rungs[bracket:]
    bounds = []
    for resource in rungs:
      earlier = [values[_key(resource)] for b, values in reports
                 if _key(resource) in values and (bracket is None or b == bracket)]
      bounds.append(self.bound(earlier))
    return RungPlan(resources=tuple(rungs), bounds=tuple(bounds),
                    higher_is_better=self.higher_is_better, bracket=bracket,
                    eval_fraction=self.config.rung_validation)

  def bound(self, earlier: list[float]) -> Optional[float]:
    """The worst value that goes on, given the ``earlier`` values at a rung."""
    n = len(earlier)
    if self.config.kind == "observe" or n == 0 or n < self.config.warmup_children:
      return None
    best_first = sorted(earlier, reverse=self.higher_is_better)
    if self.config.kind == "median":
      mid = n // 2
      if n % 2:
        return best_first[mid]
      return (best_first[mid - 1] + best_first[mid]) / 2
    # Successive halving (and each Hyperband bracket): the child goes on if it is among
    # the best k of the n + 1 values, its own included, i.e. if no more than k - 1
    # earlier values beat it: at least as good as the k-th best earlier value.
    k = max(1, (n + 1) // self.config.reduction_factor)
    return best_first[k - 1]


def make(config: PrunerConfig, higher_is_better: bool, seed: int = 0) -> Optional[Pruner]:
  """The run's pruner, or None for ``kind='none'``."""
  return None if config.kind == "none" else Pruner(config, higher_is_better, seed)
