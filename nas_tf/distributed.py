"""Distributed search: K controller replicas, children on workers, controller on a PS (§3.3).

Paper §3.3: the controller's weights live on a parameter server of ``S`` shards; ``K``
controller replicas each sample ``m`` children that train in parallel, and send their
gradients to the parameter server (for PTB applied after 10 accumulate). Here:

* the controller, its Adam slots and gradient accumulators are created under
  ``ParameterServerStrategy.scope()`` and so live on the ps tasks, whole variables
  round-robin (``distributed_cluster``);
* each replica is a thread of the chief: it takes a controller step's ``m`` sampled
  children, schedules one closure per child on the workers (``distributed_children``),
  fetches their rewards, and then commits its REINFORCE update;
* commits happen one at a time in step order. Keras 3 optimizers are not safe under
  concurrent updates (``optimizer.iterations`` loses increments), and an ordered commit
  also keeps the run reproducible: the commit of step ``s`` applies its gradient and then
  samples step ``s + K`` from the weights it leaves. Sampling at step ``s`` is thus a pure
  function of (controller weights after step ``s - K``, seed, ``s``) -- with K = 1 exactly
  the one-machine search -- and up to K steps (K*m children) are in flight at once, the
  bounded staleness of the paper's asynchronous replicas.

The run writes what ``search.run`` writes (config.json, results.jsonl, state.json,
checkpoints/, best.json, summary.txt, tensorboard/) with the same records and rewards.
state.json also holds ``pending``: the tokens of steps already sampled but not yet
committed, so that a rerun after a crash re-trains exactly those children (those already
in results.jsonl are reused, none is logged twice).

Fault tolerance comes from the coordinator: a closure whose worker dies is re-run on
another worker from the same inputs, and its child is logged once, when its reward is
fetched. A lost parameter server or chief stops the run with an error; rerunning the
same command resumes from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, Callable, Optional

from absl import logging

from nas_tf import search
from nas_tf import search_space as search_space_lib
from nas_tf.config import SearchConfig
from nas_tf.distributed_cluster import Cluster, ClusterConfig, open_cluster
from nas_tf.results import ResultsLog

# (step, tokens, specs, depth, m_step) -> one metrics dict per child, in order.
TrainFn = Callable[[int, list, list, Optional[int], int], list]


class _Aborted(Exception):
  """Another replica failed; this one stops waiting."""


class ReplicaSearch:
  """K replica threads with ordered commits; the children trainer is pluggable.

  Args:
    config: The search.
    sampler: ``search.RLSampler`` (built under the strategy's scope) or ``RandomSampler``.
    num_replicas: K.
    state: The loaded state.json dict (step, baseline, checkpoint, pending).
    log: The run's ResultsLog.
    schedule_children: ``(step, specs) -> list of zero-arg callables`` that block and
      return each child's metrics (a closure fetched from the cluster, or a fake).
  """

  def __init__(self, config: SearchConfig, sampler, num_replicas: int, state: dict,
               log: ResultsLog, schedule_children):
    self.config, self.sampler, self.num_replicas = config, sampler, num_replicas
    self.log, self.schedule_children = log, schedule_children
    self.space = search.make_space(config)
    self.is_cnn = isinstance(self.space, search_space_lib.CNNSearchSpace)
    out = config.output_dir
    self.state_path = os.path.join(out, search.STATE_FILE)
    self.ckpt_dir = os.path.join(out, search.CHECKPOINT_DIR)
    self.tensorboard = search._TensorBoard(os.path.join(out, "tensorboard"))  # pylint: disable=protected-access
    self.committed = self.first_step = state["step"]
    # Keys other code keeps in state.json (e.g. timings) are carried through unchanged.
    self.extra_state = {k: v for k, v in state.items()
                        if k not in ("step", "baseline", "checkpoint", "pending", "num_replicas")}
    self.cond = threading.Condition()
    self.log_lock = threading.Lock()
    self.error: Optional[BaseException] = None
    self.evaluated_now = 0
    self.start_time = time.monotonic()
    self.samples: dict[int, tuple] = {}
    pending = {int(k): v for k, v in (state.get("pending") or {}).items()}
    for step in range(self.committed, min(self.committed + num_replicas, config.num_steps)):
      self.samples[step] = self._sample(step, pending.get(step))

  def _depth(self, step: int) -> Optional[int]:
    return self.config.depth.depth_at(step * self.config.children_per_step) if self.is_cnn \
        else None

  def _sample(self, step: int, tokens=None) -> tuple:
    depth = self._depth(step)
    if tokens is None:
      tokens, specs = self.sampler.sample(step, self.config.children_per_step, depth)
    else:
      space = self.space.with_num_layers(depth) if self.is_cnn else self.space
      tokens = [tuple(t) for t in tokens]
      specs = [space.decode(t) for t in tokens]
    return tokens, specs, depth

  def _wait(self, predicate) -> None:
    with self.cond:
      while not predicate():
        if self.error is not None:
          raise _Aborted()
        self.cond.wait(timeout=1.0)
      if self.error is not None:
        raise _Aborted()

  # -- one replica ----------------------------------------------------------------------

  def _replica(self, r: int) -> None:
    config, k_rep = self.config, self.num_replicas
    try:
      for step in range(self.first_step + r, config.num_steps, k_rep):
        self._wait(lambda s=step: s in self.samples)
        with self.cond:
          tokens, specs, depth = self.samples[step]
        rewards = self._train_step(step, tokens, specs, depth)
        self._wait(lambda s=step: self.committed == s)
        with self.cond:
          self._commit(step, tokens, rewards, depth)
          self.cond.notify_all()
    except _Aborted:
      pass
    except BaseException as e:  # pylint: disable=broad-except
      with self.cond:
        if self.error is None:
          self.error = e
        self.cond.notify_all()

  def _train_step(self, step, tokens, specs, depth) -> list[float]:
    config, m = self.config, self.config.children_per_step
    m_step = min(m, config.max_children - step * m)
    todo = {}  # spec json -> first index that trains it (identical specs train once)
    with self.log_lock:
      for k in range(m_step):
        key = specs[k].to_json()
        if self.log.get(step, k) is None and self.log.cached(key) is None:
          todo.setdefault(key, k)
    firsts = sorted(todo.values())
    waits = dict(zip(firsts, self.schedule_children(step, [specs[k] for k in firsts])))
    for k in range(m_step):
      metrics = waits[k]() if k in waits else None
      with self.log_lock:
        if self.log.get(step, k) is not None:
          continue
        cached = None if metrics is not None else self.log.cached(specs[k].to_json())
        record = search._record(config, step, k, tokens[k], specs[k], depth, metrics, cached)  # pylint: disable=protected-access
        self.log.append(record)
        self.evaluated_now += metrics is not None
        search._log_child(record, self.log, config, step, self.start_time, self.evaluated_now)  # pylint: disable=protected-access
    with self.log_lock:
      records = [self.log.get(step, k) for k in range(m_step)]
    if any(list(r["tokens"]) != list(tokens[k]) for k, r in enumerate(records)):
      raise RuntimeError(f"results.jsonl holds other children for step {step} than were "
                         "sampled; was this output_dir resumed with other settings?")
    return [r["reward"] for r in records]

  def _commit(self, step, tokens, rewards, depth) -> None:
    """The REINFORCE update of ``step``, then sampling ``step + K``; one at a time, in order."""
    config = self.config
    with self.log_lock:
      search.check_not_all_broken(self.log, config)
    stats = self.sampler.update(step, list(tokens[:len(rewards)]), rewards, depth)
    nxt = step + self.num_replicas
    if nxt < config.num_steps:
      self.samples[nxt] = self._sample(nxt)
    del self.samples[step]
    with self.log_lock:
      scalars = search.step_scalars(rewards, stats, self.log, **{"search/depth": depth})
    self.tensorboard.write(step, scalars)
    ckpt = self.sampler.save(self.ckpt_dir, step + 1)
    pending = {str(s): [list(t) for t in v[0]] for s, v in sorted(self.samples.items())}
    with self.log_lock:
      search.commit_step(config.output_dir, self.log, config.task, ckpt, dict(
          self.extra_state, step=step + 1, baseline=search.sampler_baseline(self.sampler),
          checkpoint=ckpt, pending=pending, num_replicas=self.num_replicas))
    self.committed = step + 1
    logging.info("committed controller step %d/%d (replica %d)", step + 1, config.num_steps,
                 step % self.num_replicas)

  def run(self) -> None:
    """Runs the replicas to the end of the budget; re-raises the first replica error."""
    threads = [threading.Thread(target=self._replica, args=(r,), name=f"replica-{r}",
                                daemon=True) for r in range(self.num_replicas)]
    for t in threads:
      t.start()
    try:
      for t in threads:
        while t.is_alive():
          t.join(timeout=0.5)  # a timed join keeps Ctrl-C deliverable
    except BaseException as e:
      with self.cond:
        self.error = self.error or e
        self.cond.notify_all()
      raise
    if self.error is not None:
      raise self.error


def run_on_cluster(config: SearchConfig, cluster: Optional[Cluster], num_replicas: int = 1,
                   data=None, schedule_children=None) -> dict[str, Any]:
  """Runs (or resumes) a search on a connected cluster; returns what ``search.run`` does.

  Args:
    config: The search; ``config.children_per_step`` is each replica's m.
    cluster: Strategy + coordinator (``distributed_cluster``); None only with a
      ``schedule_children`` that needs no cluster (tests of the replica logic).
    num_replicas: K controller replicas.
    data: Task data (``child_training.load_task_data`` output); loaded if None.
    schedule_children: Override of how children are trained (tests); by default one
      closure per child on the cluster's workers.
  """
  if getattr(config, "evaluation", "independent") != "independent":
    raise ValueError("a distributed search trains every child on its own (paper §3.3); "
                     f"evaluation={config.evaluation!r} runs only with --cluster=local")
  lock = search.prepare_output_dir(config)  # released however the run ends
  try:
    out = config.output_dir
    log = ResultsLog(os.path.join(out, "results.jsonl"))
    state = {"pending": {}, **search.load_state(out, phases=(), log=log, task=config.task)}
    space = search.make_space(config)
    # Under the scope the controller, Adam slots and accumulators go to the ps tasks.
    with cluster.strategy.scope() if cluster else contextlib.nullcontext():
      sampler = search.make_sampler(space, config, state)
    sampler.restore(state["checkpoint"])
    if state["step"] or len(log):
      logging.info("Resuming %s at controller step %d with %d children already logged.",
                   out, state["step"], len(log))
    if schedule_children is None:
      schedule_children = _cluster_trainer(config, cluster, data)
    replicas = ReplicaSearch(config, sampler, num_replicas, state, log, schedule_children)
    try:
      replicas.run()
    except Exception as e:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      if isinstance(e, (tf.errors.UnavailableError, tf.errors.CancelledError,
                        tf.errors.AbortedError)):
        detail = " ".join(str(e).split())[:300]  # one line: gRPC errors span many
        raise RuntimeError(
            f"distributed search stopped at controller step {replicas.committed}: a parameter "
            "server or the cluster is unreachable; rerun the same command to resume from the "
            f"last checkpoint ({type(e).__name__}: {detail})") from e
      raise
    best = log.best()
    if best:
      logging.info("Search done: %d children logged; best reward %.4f: %s", len(log),
                   best["reward"], best["describe"])
    return {"best": best, "num_children": len(log), "num_evaluated": replicas.evaluated_now,
            "output_dir": out}
  finally:
    lock.release()


def _cluster_trainer(config: SearchConfig, cluster: Cluster, data):
  """``schedule_children`` that trains each child as one closure on the workers."""
  from nas_tf import child_training  # pylint: disable=g-import-not-at-top
  from nas_tf import distributed_children as dc  # pylint: disable=g-import-not-at-top
  if data is None:
    data = child_training.load_task_data(config.task, config.data_dir, seed=config.seed,
                                         cache_dir=config.cache_dir,
                                         validation_size=config.validation_size)
  arrays = dc.materialize(config.task, data, config.child, config.seed)
  iterator = dc.per_worker_iterator(cluster.coordinator, arrays)

  def schedule_children(step, specs):
    del step
    handles = dc.schedule_children(cluster.coordinator, iterator, specs, arrays,
                                   config.child, config.seed)
    return [h.result for h in handles]

  return schedule_children


def run(config: SearchConfig, cluster_config: ClusterConfig) -> dict[str, Any]:
  """``search.run`` for the 'localhost' and 'tf_config' modes: opens the cluster once."""
  with open_cluster(cluster_config) as cluster:
    return run_on_cluster(config, cluster, num_replicas=cluster_config.num_replicas)
