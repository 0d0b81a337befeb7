"""The Evaluator protocol: where and how the children of a step are scored.

The loop sees an evaluator only through:

* ``evaluate(specs) -> [metrics]`` -- score children, blocking; or
* ``start(step, specs) -> [callable]`` -- start scoring them and return one zero-argument
  callable per child that blocks for its metrics (children of up to K steps in flight:
  the replicas of the paper's distributed search, §3.3);
* ``close(abort=False)``.

Optional attributes and hooks (absent means the default):

* ``parallel_children`` (1): children :func:`start_children` hands to ``evaluate`` at once;
* ``reuses_results`` (True): an identical spec logged earlier is not scored again;
* ``record_extras`` ({}): keys added to every record (e.g. ``evaluation: shared``);
* ``fixed_depth`` (False): the space's depth is the evaluator's, not the schedule's;
* ``adapt_space(space) -> space``; ``before_step(step, sampler, depth) -> scalars``
  (weight sharing trains its shared weights here); ``finish(sampler, depth, output_dir)
  -> dict`` (added to the run's summary); ``checkpoint_items() -> dict`` (TF objects
  saved with the step); ``sampler_scope()`` (a context the sampler is built in, e.g.
  a ParameterServerStrategy scope).

Evaluators: the task's own (``Task.make_evaluator``: trained children inline or in
worker processes, or a table lookup), :mod:`.shared` (weight sharing, ENAS),
:mod:`.cluster` (tf.distribute workers), :class:`FunctionEvaluator` (tests, user code).
"""

from __future__ import annotations

from typing import Callable, Sequence


def start_children(evaluator, step: int, specs: Sequence) -> list[Callable[[], dict]]:
  """One blocking callable per spec, for any evaluator.

  Uses ``evaluator.start`` when it has one; otherwise the callables call ``evaluate``
  lazily on chunks of ``parallel_children`` specs (the chunk of child ``k`` is scored
  when ``k``'s callable is first called), so records are logged as each chunk finishes.
  """
  if hasattr(evaluator, "start"):
    return list(evaluator.start(step, list(specs)))
  chunk = max(1, getattr(evaluator, "parallel_children", 1))
  results: dict[int, dict] = {}

  def result(k: int) -> dict:
    if k not in results:
      first = (k // chunk) * chunk
      batch = list(specs[first:first + chunk])
      results.update(zip(range(first, first + len(batch)), evaluator.evaluate(batch)))
    return results[k]

  return [lambda k=k: result(k) for k in range(len(specs))]


class FunctionEvaluator:
  """An evaluator from a function ``specs -> [callable]`` (or ``specs -> [metrics]``).

  Args:
    start_fn: Called with a step's specs; returns one zero-argument callable per spec
      that returns its metrics (so children may run concurrently), or the metrics.
  """

  def __init__(self, start_fn: Callable[[list], list]):
    self.start_fn = start_fn

  def start(self, step: int, specs: list) -> list:
    del step
    out = self.start_fn(specs)
    return [o if callable(o) else (lambda o=o: o) for o in out]

  def close(self, abort: bool = False) -> None:
    del abort
