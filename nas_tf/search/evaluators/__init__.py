"""Evaluators: where and how the children of a step are scored.

An evaluator is an :class:`nas_tf.evaluator.Evaluator` (the protocol, kept at the bottom
of the package so that any evaluator, a task's own included, can subclass it). It scores children with
``evaluate(specs) -> [metrics]`` (blocking), or ``start(step, specs) -> [callable]``:
one zero-argument callable per child that blocks for its metrics, so that the children
of up to K steps are in flight at once (the replicas of the paper's distributed search,
§3.3); ``close(abort=False)`` releases it. It declares what it can do, and the loop
reads only these declarations (defaults in brackets):

* ``parallel_children`` (1): children the default ``start`` hands to ``evaluate`` at once;
* ``reuses_results`` (True): an identical spec logged earlier is not scored again;
* ``record_extras`` ({}): keys added to every record (e.g. ``evaluation: shared``);
* ``fixed_depth`` (False): the space's depth is the evaluator's, not the schedule's;
* ``on_cluster`` (False): the sampler is built in ``sampler_scope()``, the checkpoint is
  written by one traced function, a lost server is reported as unreachable;
* ``trains_shared_weights`` (False): ``before_step`` runs before every step, its time
  counted as the 'shared' phase.

Hooks, which do nothing by default: ``adapt_space(space) -> space``;
``before_step(step, sampler, depth) -> scalars`` (weight sharing trains its shared
weights here); ``finish(sampler, depth, output_dir, ran) -> dict`` (added to the run's
summary); ``checkpoint_items() -> dict`` (TF objects saved with the step);
``sampler_scope()`` (a context the sampler is built in, e.g. a ParameterServerStrategy
scope).

An object that does not subclass :class:`Evaluator` but has ``evaluate`` or ``start``
(and ``close``) works too: the loop wraps it once with :func:`as_evaluator`, which takes
its declared capabilities and hooks where it has them, the defaults elsewhere (a hook
alone declares nothing: ``before_step`` runs only with ``trains_shared_weights = True``).

:func:`choose` picks the evaluator of a search that is given none: :mod:`.cluster`
(tf.distribute workers) for a cluster, :mod:`.shared` (weight sharing, ENAS) for
``evaluation='shared'``, else the task's own (``Task.make_evaluator``: a table lookup, a
zero-cost score) or, for a task whose children the package trains, :mod:`.local`'s (in
this process or in recycled worker processes). :class:`FunctionEvaluator` makes one from
a function (tests, user code).
"""

from __future__ import annotations

import contextlib
from typing import Callable

from nas_tf.config import SearchConfig
from nas_tf.evaluator import Evaluator


def choose(config: SearchConfig, task, cluster=None) -> contextlib.AbstractContextManager:
  """The evaluator of a search that is given none, as a context that opens and closes it.

  The settings are checked now; the evaluator is made (and a cluster opened) on entry.
  On exit it is closed, at once (``abort``) if an exception, Ctrl-C or SIGTERM ends the
  run: a running child is not waited for, and is trained again on resume.

  Args:
    config: The search; ``config.evaluation`` picks weight sharing or trained children.
    task: The :class:`nas_tf.tasks.Task` (its ``make_evaluator`` gives its own; a task
      whose children the package trains gets :func:`local.make`'s).
    cluster: Optional ``nas_tf.cluster.ClusterConfig``; a mode other than 'local'
      trains every child on the cluster's workers (paper §3.3).

  Raises:
    ValueError: a cluster with an evaluation other than 'independent' or with a task
      whose children the package does not train; shared weights for a space other than
      the paper's.
  """
  if cluster is not None and cluster.mode != "local":
    if config.evaluation != "independent":
      raise ValueError("a distributed search trains every child on its own (paper §3.3); "
                       f"evaluation={config.evaluation!r} runs only with --cluster=local")
    if not task.trains_children:
      raise ValueError(f"task {task.name!r} scores its children without training them: "
                       "a cluster has nothing to run; use --cluster=local")
    from nas_tf.search.evaluators import cluster as cluster_lib  # pylint: disable=g-import-not-at-top
    return cluster_lib.open_evaluator(config, cluster, task)  # the cluster closes with it
  if config.evaluation == "shared":
    if not task.paper_space:
      raise ValueError(f"evaluation='shared' trains one model holding every architecture "
                       f"of the paper's spaces (ptb, cifar10); task {task.name!r} searches "
                       "another space: use --evaluation=independent")
    from nas_tf.search.evaluators import shared  # pylint: disable=g-import-not-at-top
    return _owned(lambda: shared.SharedEvaluator(config, task))
  def own_or_local():
    made = task.make_evaluator(config)
    if made is not None:
      return made
    from nas_tf.search.evaluators import local  # pylint: disable=g-import-not-at-top
    return local.make(config, task)  # the package trains the task's children here

  return _owned(own_or_local)


@contextlib.contextmanager
def _owned(make: Callable[[], object]):
  evaluator = as_evaluator(make())
  try:
    yield evaluator
  except BaseException:
    evaluator.close(abort=True)
    raise
  evaluator.close()


class FunctionEvaluator(Evaluator):
  """An evaluator from a function ``specs -> [callable]`` (or ``specs -> [metrics]``).

  Args:
    start_fn: Called with a step's specs; returns one zero-argument callable per spec
      that returns its metrics (so children may run concurrently), or the metrics.
  """

  def __init__(self, start_fn: Callable[[list], list]):
    self.start_fn = start_fn

  def start(self, step: int, specs: list, plans=None) -> list:
    del step, plans  # (prunes_children is False: the loop passes no plans)
    out = self.start_fn(specs)
    return [o if callable(o) else (lambda o=o: o) for o in out]


_DECLARED = ("parallel_children", "reuses_results", "record_extras", "fixed_depth",
             "on_cluster", "trains_shared_weights", "prunes_children")
_HOOKS = ("evaluate", "start", "adapt_space", "before_step", "finish", "checkpoint_items",
          "sampler_scope")


class _Adapter(Evaluator):
  """An object with ``evaluate`` or ``start`` seen as an :class:`Evaluator`: its own
  attributes and hooks where it has them, the defaults elsewhere."""

  def __init__(self, inner):
    self.inner = inner
    # What it declares, and the hooks it has; a hook is never read as a capability (a
    # sampler_scope alone does not make a cluster evaluator).
    for name in _DECLARED + _HOOKS:
      if hasattr(inner, name):
        setattr(self, name, getattr(inner, name))

  def close(self, abort: bool = False) -> None:
    close = getattr(self.inner, "close", None)
    if close is None:
      return
    # ``close()`` unless aborting: some objects' ``close`` takes no argument.
    if abort:
      close(abort=True)
    else:
      close()


def as_evaluator(evaluator) -> Evaluator:
  """``evaluator`` itself if an :class:`Evaluator`, else wrapped in one (once)."""
  return evaluator if isinstance(evaluator, Evaluator) else _Adapter(evaluator)


__all__ = ["Evaluator", "FunctionEvaluator", "as_evaluator", "choose"]
