"""The Evaluator base class: the hooks the search loop calls and the capabilities it reads.

The loop never asks an evaluator what it happens to have: it reads the capabilities an
:class:`Evaluator` declares and calls its hooks, whose defaults do nothing. An object
that does not subclass it (``evaluate``/``start``/``close`` only, as user code may
write) is wrapped once by :func:`nas_tf.search.evaluators.as_evaluator`. The class sits
at the bottom of the package so that every evaluator subclasses it: the search's own,
a task's (a table lookup) and the zero-cost scorer.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Optional, Sequence


class Evaluator:
  """Scores the children of a step; override ``evaluate`` or ``start``.

  Attributes:
    parallel_children: Children the default ``start`` hands to ``evaluate`` at once.
    reuses_results: A spec logged earlier is not scored again (its record is copied);
      False where a score depends on when it is taken (shared weights move each step).
    record_extras: Keys added to every record of the run, e.g. ``{"evaluation":
      "shared"}``.
    fixed_depth: The depth of the space is the evaluator's (see ``adapt_space``), not
      the depth schedule's.
    on_cluster: Children run on a tf.distribute cluster: the sampler is built in
      ``sampler_scope()`` (its variables go to the parameter servers), the checkpoint is
      written by one traced function, and a lost server stops the run as unreachable
      (rerun to resume).
    trains_shared_weights: The loop calls ``before_step`` before every step and counts
      its time as the 'shared' phase; the sampler must be able to draw architectures.
    prunes_children: It trains children and honours a pruner's plans: ``evaluate`` and
      ``start`` take ``plans`` (one :class:`nas_tf.training.rungs.RungPlan` per spec)
      and the metrics carry the rung history. A search with a pruner needs it.
  """

  parallel_children: int = 1
  reuses_results: bool = True
  record_extras: dict = {}  # read-only: the loop copies it
  fixed_depth: bool = False
  on_cluster: bool = False
  trains_shared_weights: bool = False
  prunes_children: bool = False

  def evaluate(self, specs: Sequence, plans: Optional[Sequence] = None) -> list[dict]:
    """Scores ``specs``, blocking; returns one metrics dict per spec, in order.

    ``plans``: with ``prunes_children``, one rung plan per spec (None: no pruning).
    """
    raise NotImplementedError(f"{type(self).__name__} overrides neither evaluate nor start")

  def start(self, step: int, specs: Sequence,
            plans: Optional[Sequence] = None) -> list[Callable[[], dict]]:
    """Starts scoring the children of step ``step``; one blocking callable per spec.

    The default calls ``evaluate`` lazily on chunks of ``parallel_children`` specs (the
    chunk of child ``k`` is scored when ``k``'s callable is first called), so that
    records are logged as each chunk finishes. Override it to keep children in flight
    while other steps are sampled (the K replicas of the paper's §3.3).
    """
    del step
    specs, chunk = list(specs), max(1, self.parallel_children)
    results: dict[int, dict] = {}

    def result(k: int) -> dict:
      if k not in results:
        first = (k // chunk) * chunk
        batch = specs[first:first + chunk]
        if plans is None:
          scored = self.evaluate(batch)
        else:  # (only then: an evaluator without pruning need not take the argument)
          scored = self.evaluate(batch, plans=list(plans[first:first + chunk]))
        results.update(zip(range(first, first + len(batch)), scored))
      return results[k]

    return [lambda k=k: result(k) for k in range(len(specs))]

  def close(self, abort: bool = False) -> None:
    """Releases what the evaluator holds; with ``abort``, without waiting for children."""
    del abort

  def adapt_space(self, space):
    """The search space the evaluator can score (``space`` itself by default)."""
    return space

  def before_step(self, step: int, sampler, depth: Optional[int]) -> dict:
    """Runs before step ``step`` is sampled (``trains_shared_weights`` only); scalars."""
    del step, sampler, depth
    return {}

  def finish(self, sampler, depth: Optional[int], output_dir: str, ran: bool) -> dict:
    """Runs after the last step (``ran``: some step ran now); adds to the run's summary."""
    del sampler, depth, output_dir, ran
    return {}

  def checkpoint_items(self) -> dict:
    """TF objects saved with the sampler's at each checkpoint (called once the sampler
    exists)."""
    return {}

  def sampler_scope(self):
    """The context the sampler is built in (e.g. a ParameterServerStrategy scope)."""
    return contextlib.nullcontext()
