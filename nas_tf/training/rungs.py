"""Where a child reports during its training, and the bar it must clear there to go on.

A search with a pruner (:mod:`nas_tf.search.pruners`) hands every child a
:class:`RungPlan`: fractions of its training budget (the *rungs*) at which the trainer
measures the validation metric, and for each rung the worst value that still continues.
A child below the bar stops at once and its value at that rung is its result; a child
that clears it simply trains on, so a promoted child continues where it stood (weights,
optimiser, carried state, schedule) and nothing is kept between rungs but the numbers.

The plan is fixed before the child starts (the pruner decides it from children already
committed), so a child's run is a pure function of (spec, seed, plan): the same on a
worker process, in a cluster closure and on a resumed run.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence


@dataclasses.dataclass(frozen=True)
class RungPlan:
  """The rungs of one child and the bar at each.

  Attributes:
    resources: Fractions of the child's budget, ascending, each in (0, 1): where it is
      validated before the end (the end itself is its ordinary result).
    bounds: Per rung, the worst value that continues (None: no decision there).
    higher_is_better: Direction of the task's metric (accuracy up, perplexity down).
    bracket: The Hyperband bracket the child was given (None for other pruners).
    eval_fraction: Share of the validation windows a language model is measured on at
      a rung (the first ones; its final value uses all). A classifier's rungs fall on
      epoch ends, where it is validated on the whole split anyway.
  """

  resources: tuple = ()
  bounds: tuple = ()
  higher_is_better: bool = True
  bracket: Optional[int] = None
  eval_fraction: float = 1.0

  def __post_init__(self):
    object.__setattr__(self, "resources", tuple(float(r) for r in self.resources))
    object.__setattr__(self, "bounds", tuple(None if b is None else float(b)
                                             for b in self.bounds))
    if len(self.bounds) != len(self.resources):
      raise ValueError(f"a RungPlan needs one bound per rung, got resources "
                       f"{self.resources} and bounds {self.bounds}")
    if not 0 < self.eval_fraction <= 1:
      raise ValueError(f"eval_fraction must lie in (0, 1], got {self.eval_fraction!r}")
    if any(not 0 < r < 1 for r in self.resources) or list(self.resources) != sorted(
        set(self.resources)):
      raise ValueError(f"rung resources must be distinct, ascending fractions in (0, 1) "
                       f"of a child's budget, got {self.resources}")

  def continues(self, rung: int, value: float) -> bool:
    """Whether a child whose metric is ``value`` at rung ``rung`` trains on.

    A non-finite value stops it (it has diverged); ties with the bound continue.
    """
    if value is None or not math.isfinite(value):
      return False
    bound = self.bounds[rung]
    if bound is None:
      return True
    return value >= bound if self.higher_is_better else value <= bound

  def at_steps(self, total: int) -> list[int]:
    """The rungs as 1-based step counts of a ``total``-step budget; ``-1`` for a rung
    that falls on the last step or repeats an earlier one (it is not measured)."""
    out, seen = [], set()
    for r in self.resources:
      step = max(1, round(r * total))
      out.append(-1 if step >= total or step in seen else step)
      seen.add(step)
    return out

  def eval_windows(self, total: int) -> int:
    """How many of ``total`` validation windows a rung measures (at least one)."""
    return max(1, min(total, math.ceil(self.eval_fraction * total)))

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: Optional[dict]) -> Optional["RungPlan"]:
    return None if data is None else cls(**data)


def report(metrics: dict, plan: Optional[RungPlan], reached: Sequence) -> dict:
  """``metrics`` with the rung history: ``rungs`` (``[resource, value]`` per rung
  measured) and ``pruned_at`` (the resource where it stopped; None if it trained to the
  end). ``reached``: the ``(resource, value, continued)`` triples the trainer measured."""
  if plan is None:
    return metrics
  stopped = [r for r, _, go in reached if not go]
  return dict(metrics, rungs=[[float(r), float(v)] for r, v, _ in reached],
              pruned_at=stopped[0] if stopped else None, bracket=plan.bracket)
