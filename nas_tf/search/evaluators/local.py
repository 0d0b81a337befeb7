"""Children trained on this machine, so that a long search keeps flat memory.

Two evaluators share one interface, ``evaluate(specs) -> list[metrics dict]``:

* :class:`InlineEvaluator` trains children in the calling process (fast start; tests).
* :class:`ProcessEvaluator` trains them in worker processes that load the data
  once and are recycled after ``children_per_process`` children, so whatever TensorFlow
  keeps per model (graphs, caches, allocator pools) is returned to the OS with the
  process. ``parallel_children`` workers train children of one step side by side.

Specs cross the process boundary as JSON strings; metrics come back as plain dicts.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import os
from typing import Sequence

from absl import logging

from nas_tf.training import child as child_training
from nas_tf import processes
from nas_tf import specs as specs_lib
from nas_tf.config import ChildTrainingConfig
from nas_tf.evaluator import Evaluator
from nas_tf.training.rungs import RungPlan


@functools.lru_cache(maxsize=2)
def _task_data(task, data_dir: str, seed: int, cache_dir: str | None,
               validation_size: int | None):
  # Per-process cache: a worker loads its data once, not once per child.
  return task.load_data(data_dir, seed=seed, cache_dir=cache_dir,
                        validation_size=validation_size)


class InlineEvaluator(Evaluator):
  """Trains children one after another in this process.

  Args:
    task: A :class:`nas_tf.tasks.TrainedChildTask` (it loads the data and trains each
      child; it crosses to worker processes as its reference, ``task.ref``).
    data_dir: The task's data.
    child_config: How each child trains.
    seed: Data split seed and child initialisation seed.
    cache_dir: Where archives are extracted.
    validation_size: CIFAR-10 held-out images (None = the paper's 5,000).
  """

  prunes_children = True

  def __init__(self, task, data_dir: str, child_config: ChildTrainingConfig,
               seed: int = 0, cache_dir: str | None = None,
               validation_size: int | None = None):
    self.task = task
    self.data_dir = data_dir
    self.child_config = child_config
    self.seed = seed
    self.cache_dir = cache_dir
    self.validation_size = validation_size

  def _data(self):
    return _task_data(self.task, self.data_dir, self.seed, self.cache_dir,
                      self.validation_size)

  def evaluate(self, specs: Sequence, plans: Sequence | None = None) -> list[dict]:
    data = self._data()
    plans = plans or [None] * len(specs)
    return [self.task.train_child(s, data, self.child_config, seed=self.seed,
                                  **({} if p is None else {"rungs": p}))
            for s, p in zip(specs, plans)]

  def close(self, abort: bool = False) -> None:
    del abort  # nothing runs outside this process

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def _worker_init(intra_op_threads: int, parent_pid: int | None = None,
                 verbosity: int | None = None) -> None:
  if parent_pid is not None:
    processes.watch_parent(parent_pid)
  if verbosity is not None:
    # A new process starts at absl's default (warnings only): without this the
    # child's progress and data-loading lines would never reach the user.
    logging.use_absl_handler()  # the parent's line format (I1128 12:00:00.000 ...)
    logging.set_verbosity(verbosity)
  if intra_op_threads:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.threading.set_intra_op_parallelism_threads(intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _worker_evaluate(spec_json: str, task, data_dir: str, child_config: dict,
                     seed: int, cache_dir: str | None, validation_size: int | None,
                     plan: dict | None = None) -> dict:
  data = _task_data(task, data_dir, seed, cache_dir, validation_size)
  spec = specs_lib.from_json(spec_json)
  rungs = {} if plan is None else {"rungs": RungPlan.from_dict(plan)}
  return task.train_child(spec, data, ChildTrainingConfig(**child_config), seed=seed,
                          **rungs)


def _worker_prepare(task, data_dir: str, seed: int, cache_dir: str | None,
                    validation_size: int | None) -> None:
  _task_data(task, data_dir, seed, cache_dir, validation_size)


class ProcessEvaluator(InlineEvaluator):
  """Trains children in recycled worker processes (see module docstring).

  Extra args:
    children_per_process: A worker exits after this many children (memory stays flat;
      a first worker's start-up task counts as one of them).
    parallel_children: Number of worker processes.
    intra_op_threads: TensorFlow intra-op threads per worker (0 = default).
  """

  def __init__(self, *args, children_per_process: int = 25, parallel_children: int = 1,
               intra_op_threads: int = 0, **kwargs):
    super().__init__(*args, **kwargs)
    self.children_per_process = children_per_process
    self.parallel_children = parallel_children  # the capability: one child per worker
    self.intra_op_threads = intra_op_threads
    self._pool = self._make_pool()

  def _make_pool(self) -> concurrent.futures.ProcessPoolExecutor:
    # Not 'fork': forking a process that already runs TensorFlow threads can deadlock,
    # and a fresh runtime is the point of the isolation (nas_tf.processes).
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=self.parallel_children, mp_context=processes.context(),
        max_tasks_per_child=self.children_per_process, initializer=_worker_init,
        initargs=(self.intra_op_threads, os.getpid(), logging.get_verbosity()))
    # Start the workers now: their start-up (an interpreter, TensorFlow, the task's data;
    # seconds) then overlaps the controller's first tracing in this process instead of
    # following it. Each submit starts at most one worker, so one task per worker. A
    # failure here is not reported: the first child meets it again and is recorded.
    # (Not when a worker lives for one child: the task would be its whole life.)
    if self.children_per_process > 1:
      for _ in range(self.parallel_children):
        pool.submit(_worker_prepare, self.task, self.data_dir, self.seed, self.cache_dir,
                    self.validation_size)
    return pool

  def _submit_all(self, specs: Sequence, plans: Sequence) -> list:
    child = dataclasses.asdict(self.child_config)
    return [self._pool.submit(_worker_evaluate, s.to_json(), self.task, self.data_dir,
                              child, self.seed, self.cache_dir, self.validation_size,
                              None if p is None else p.to_dict())
            for s, p in zip(specs, plans)]

  def evaluate(self, specs: Sequence, plans: Sequence | None = None) -> list[dict]:
    plans = plans or [None] * len(specs)
    try:
      futures = self._submit_all(specs, plans)
    except concurrent.futures.process.BrokenProcessPool:
      # A worker died between steps (e.g. while starting up): a new pool, once.
      self._restart()
      futures = self._submit_all(specs, plans)
    results, broken = [], False
    for f in futures:
      try:
        results.append(f.result())
      except concurrent.futures.process.BrokenProcessPool as e:
        # A worker died (out of memory, killed): the child gets a failed record (as does
        # every other child of that pool), and the pool is rebuilt, once, so that the
        # search goes on.
        results.append({"status": child_training.STATUS_FAILED,
                        "error": f"worker process died: {e}", "train_seconds": 0.0})
        broken = True
    if broken:
      self._restart()
    return results

  def _restart(self) -> None:
    self._pool.shutdown(wait=False, cancel_futures=True)
    self._pool = self._make_pool()

  def close(self, abort: bool = False) -> None:
    """Stops the workers: after their current child, or at once with ``abort``.

    An aborted search (Ctrl-C, SIGTERM) must not wait for a child that may train for
    minutes: its workers are killed, and the child is trained again on resume.
    """
    if abort:
      for process in list(getattr(self._pool, "_processes", {}).values()):
        process.kill()
    self._pool.shutdown(wait=not abort, cancel_futures=True)


def make(config, task) -> InlineEvaluator:
  """The evaluator that trains ``task``'s children here, as ``config.runtime`` asks:
  in this process (``isolation='inline'``) or in recycled worker processes."""
  args = dict(task=task, data_dir=config.data_dir, child_config=config.child,
              seed=config.seed, cache_dir=config.cache_dir,
              validation_size=config.validation_size)
  rt = config.runtime
  if rt.isolation == "inline":
    return InlineEvaluator(**args)
  return ProcessEvaluator(**args, children_per_process=rt.children_per_process,
                          parallel_children=rt.parallel_children,
                          intra_op_threads=rt.intra_op_threads)
