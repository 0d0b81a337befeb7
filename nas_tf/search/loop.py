"""The search loop, the only one: sample -> score children -> reward -> learn (paper §3).

Each step the sampler (:mod:`.samplers`: REINFORCE, random, evolution, BO) proposes
``m`` architectures; the evaluator (:mod:`.evaluators`: trained inline or in worker
processes, on a tf.distribute cluster, with shared weights, or looked up in a table)
scores them; the task (:mod:`nas_tf.tasks`) turns each child's metrics into a reward and
the sampler learns from the step's rewards. None of the three knows the others' insides.

K steps may be in flight at once (the replicas of the paper's distributed search, §3.3):
step ``s + K`` is sampled once step ``s`` is committed, and steps commit one at a time in
order, so sampling step ``s`` is a pure function of (sampler state after step ``s - K``,
seed, ``s``) -- with K = 1 the plain one-machine search -- and a run is reproducible.

Resume: state.json holds the committed step, the sampler's state and the tokens of steps
sampled but not committed; a rerun re-proposes exactly the interrupted children and reuses
those already in results.jsonl, training none twice. Files: :mod:`.outputs`.
"""

from __future__ import annotations

import collections
import contextlib
import os
import time
from typing import Any, Optional

from absl import logging

from nas_tf import tasks as tasks_lib
from nas_tf.config import SearchConfig
from nas_tf.results import spec_key
from nas_tf.search.log import ResultsLog, write_summary
from nas_tf.search import evaluators as evaluators_lib
from nas_tf.search import outputs
from nas_tf.search import pruners as pruners_lib
from nas_tf.search import records as records_lib
from nas_tf.search import samplers as samplers_lib
from nas_tf.search.samplers import base as samplers_base


def make_space(config: SearchConfig, task=None):
  """The search space of ``config`` (the task's default when ``config.space`` is empty),
  at the depth schedule's first depth."""
  task = task or tasks_lib.resolve(config.task)
  space = task.make_space(config.space)
  if hasattr(space, "with_num_layers"):
    space = space.with_num_layers(config.depth.start)
  return space


def run(config: SearchConfig, evaluator=None, cluster=None, num_replicas: int = 1,
        task=None) -> dict[str, Any]:
  """Runs (or resumes) a search; returns a summary dict.

  Args:
    config: The run's settings; ``config.output_dir`` receives every artifact.
    evaluator: Scores children: an :class:`~nas_tf.search.evaluators.Evaluator` or an
      object with ``evaluate``/``start`` (see :mod:`nas_tf.search.evaluators`); the
      caller closes it. By default :func:`~nas_tf.search.evaluators.choose` picks one
      (the task's own, the shared-weight one or the cluster's) and the run closes it.
    cluster: Optional ``nas_tf.cluster.ClusterConfig``; a mode other than 'local'
      trains children on a tf.distribute cluster with ``cluster.num_replicas`` steps in
      flight (paper §3.3); not with ``evaluator``.
    num_replicas: K, steps in flight at once (with an evaluator that trains concurrently).
    task: The :class:`nas_tf.tasks.Task`; by default the registered ``config.task``.

  Returns:
    ``{"best": record or None, "num_children": int, "num_evaluated": int,
    "output_dir": str}`` plus what the evaluator's ``finish`` adds (``derived``).
  """
  task = tasks_lib.for_evaluation(task or tasks_lib.resolve(config.task), config.evaluation)
  if cluster is not None and cluster.mode != "local":
    if evaluator is not None:
      raise ValueError("give an evaluator or a distributed cluster, not both (the cluster "
                       "brings its own evaluator)")
    num_replicas = cluster.num_replicas
  if evaluator is None:
    opened = evaluators_lib.choose(config, task, cluster)  # made (and closed) by the run
  else:
    opened = contextlib.nullcontext(evaluators_lib.as_evaluator(evaluator))  # the caller's
  new_dir = not os.path.exists(config.output_dir)
  new_run = not outputs.holds_a_run(config.output_dir)
  lock = outputs.prepare_output_dir(config)  # released however the run ends
  failed = False
  try:
    with opened as evaluator:
      search = _Search(config, task, evaluator, num_replicas)
      try:
        return search.run()
      except Exception as e:
        if _unreachable(evaluator, e):
          detail = " ".join(str(e).split())[:300]  # one line: gRPC errors span many
          raise RuntimeError(
              f"distributed search stopped at step {search.committed}: a parameter server "
              "or the cluster is unreachable; rerun the same command to resume from the "
              f"last checkpoint ({type(e).__name__}: {detail})") from e
        raise
  except Exception:
    failed = True
    raise
  finally:
    lock.release()
    if failed and new_run:
      outputs.discard_unstarted(config.output_dir, remove_dir=new_dir)


def _unreachable(evaluator: evaluators_lib.Evaluator, error) -> bool:
  if not evaluator.on_cluster:
    return False
  from nas_tf.search.evaluators import cluster as cluster_lib  # pylint: disable=g-import-not-at-top
  return cluster_lib.unreachable(error)


class _Search:
  """One run's loop state: the sampler, the log, the steps in flight."""

  def __init__(self, config: SearchConfig, task, evaluator: evaluators_lib.Evaluator,
               num_replicas: int):
    self.config, self.task, self.evaluator = config, task, evaluator
    self.num_replicas = max(1, int(num_replicas))
    out = config.output_dir
    self.space = space = evaluator.adapt_space(make_space(config, task))
    self.log = ResultsLog(os.path.join(out, "results.jsonl"))
    self.shared_weights = evaluator.trains_shared_weights
    self.state = outputs.load_state(
        out, phases=("controller", "children") + (("shared",) if self.shared_weights else ()),
        log=self.log, metric_label=task.metric_label)
    with evaluator.sampler_scope():  # on a cluster the controller's variables go to the ps
      self.sampler = samplers_lib.make_sampler(space, config, self.state)
    if self.shared_weights and not self.sampler.can_draw:
      raise ValueError(f"search={config.search!r} cannot drive evaluation="
                       f"{config.evaluation!r} (it proposes no architectures to train the "
                       "shared weights on); use --search=rl or --search=random")
    items = {**self.sampler.checkpoint_items(), **evaluator.checkpoint_items()}
    self.checkpoint = None
    if items:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      self.checkpoint = tf.train.Checkpoint(**items)
      if self.state["checkpoint"]:
        self.checkpoint.read(self.state["checkpoint"]).assert_existing_objects_matched()
      self._write_checkpoint = outputs.checkpoint_writer(
          self.checkpoint, traced=evaluator.on_cluster)
    self.committed = self.first_step = self.state["step"]
    if self.first_step or len(self.log):
      logging.info("Resuming %s at step %d with %d children already logged.", out,
                   self.first_step, len(self.log))
    self.tensorboard = outputs.TensorBoard(os.path.join(out, "tensorboard"))
    self.reuse = evaluator.reuses_results
    self.extras = dict(evaluator.record_extras)
    self.pruner = pruners_lib.make(config.pruner, task.higher_is_better, config.seed)
    if self.pruner is not None and not evaluator.prunes_children:
      raise ValueError(f"pruner={config.pruner.kind!r} needs children trained by the "
                       f"package; {type(evaluator).__name__} does not stop children at "
                       "rungs (use --pruner=none)")
    self.evaluated_now, self.start_time = 0, time.monotonic()
    self.proposed: dict[int, set] = {}  # step in flight -> its architectures
    # config.distinct: the architectures of steps 0..sampled_through (their records).
    self.sampled: set[str] = set()
    self.sampled_through = -1
    self.summarized = self.written = float("-inf")

  def _depth(self, step: int) -> Optional[int]:
    if not hasattr(self.space, "num_layers"):
      return None
    if self.evaluator.fixed_depth:
      return self.space.num_layers
    return self.config.depth.depth_at(step * self.config.children_per_step)

  def _m_step(self, step: int) -> int:
    m = self.config.children_per_step
    return min(m, self.config.max_children - step * m)

  def _launch(self, step: int, tokens=None) -> dict:
    """Samples step ``step`` (or re-decodes its saved tokens) and starts its children.

    The last step of a budget that is not a multiple of m still samples m (sampling
    stays a pure function of the step) but scores and learns from only ``m_step``.
    """
    t0, depth = time.monotonic(), self._depth(step)
    scalars = {"search/depth": depth}
    if self.shared_weights:
      scalars.update(self.evaluator.before_step(step, self.sampler, depth))
      self.state["seconds"]["shared"] += time.monotonic() - t0
    t1 = time.monotonic()
    if tokens is None:
      tokens, specs = self.sampler.sample(step, self.config.children_per_step, depth)
      if self.config.distinct and not self.sampler.dedupes_itself:
        tokens, specs, scalars["search/replaced"] = self._distinct(step, tokens, depth)
    else:
      tokens = [tuple(t) for t in tokens]
      specs = [self.sampler.space_at(depth).decode(t) for t in tokens]
    self.proposed[step] = {spec.to_json() for spec in specs}
    self.sampler.expect_update(depth, self._m_step(step))
    controller_s = time.monotonic() - t1
    todo = {}  # spec json -> the first index that scores it (identical specs score once)
    # child -> the child of this step that scores its spec: a copy takes that child's
    # record, whatever its status (not only a cacheable one).
    first_of = {}
    for k in range(self._m_step(step)):
      key = specs[k].to_json()
      if self.log.at(step, k) is None and not (self.reuse and self.log.cached(key)):
        first_of[k] = todo.setdefault(key if self.reuse else k, k)
    firsts = sorted(todo.values())
    plans = None
    if self.pruner is not None:
      # Bars from the steps committed before this one was sampled (step - K and
      # earlier): the same on a resumed run, whatever the timing of the children.
      reports = pruners_lib.rung_reports(self.log, step - self.num_replicas + 1)
      m = self.config.children_per_step
      plans = [self.pruner.plan(reports, step * m + k) for k in firsts]
    started = self.evaluator.start(step, [specs[k] for k in firsts],
                                   **({} if plans is None else {"plans": plans}))
    waits = dict(zip(firsts, started))
    return {"step": step, "tokens": tokens, "specs": specs, "depth": depth, "waits": waits,
            "first_of": first_of, "scalars": scalars, "controller_s": controller_s,
            "start": t0}

  def _distinct(self, step: int, tokens, depth):
    """``config.distinct``: proposals of architectures sampled before become their
    nearest unseen ones. "Before" is what every run knows when it samples step s: the
    records of steps up to s - K (committed) and the proposals of the steps in flight,
    so a resumed run replaces exactly as the uninterrupted one did."""
    while self.sampled_through < step - self.num_replicas:  # steps committed since
      self.sampled_through += 1
      s = self.sampled_through
      self.sampled.update(spec_key(self.log.at(s, k)["spec"]) for k in range(self._m_step(s)))
    seen = set(self.sampled)
    for s in range(step - self.num_replicas + 1, step):
      if s in self.proposed:
        seen |= self.proposed[s]
    return samplers_base.replace_seen(self.sampler.space_at(depth), tokens, seen,
                                      [self.config.seed, step, 17])

  def _collect(self, item: dict) -> list[float]:
    """Waits for a step's children in order, logging each record as it arrives."""
    step, tokens, specs = item["step"], item["tokens"], item["specs"]
    t0 = time.monotonic()
    for k in range(self._m_step(step)):
      metrics = item["waits"][k]() if k in item["waits"] else None
      if self.log.at(step, k) is not None:
        continue
      cached = None
      if metrics is None:
        cached = (self.log.cached(specs[k].to_json())
                  or self.log.at(step, item["first_of"][k] if k in item["first_of"] else k))
      record = records_lib.make_record(self.task, self.config, step, k, tokens[k], specs[k],
                                       item["depth"], metrics, cached, self.extras)
      self.log.append(record)
      self.evaluated_now += metrics is not None
      records_lib.log_child(record, self.log, self.config, self.start_time,
                            self.evaluated_now)
    self.state["seconds"]["children"] += time.monotonic() - t0
    logged = [self.log.at(step, k) for k in range(self._m_step(step))]
    if any(list(r["tokens"]) != list(tokens[k]) for k, r in enumerate(logged)):
      raise RuntimeError(f"results.jsonl holds other children for step {step} than were "
                         "sampled; was this output_dir resumed with other settings?")
    return [r["reward"] for r in logged]

  def _commit(self, item: dict, rewards: list[float], in_flight) -> None:
    """The sampler's update for the step, its scalars, checkpoint and state.json."""
    step = item["step"]
    self.proposed.pop(step, None)
    records_lib.check_not_all_broken(self.log, self.config)
    t0 = time.monotonic()
    stats = self.sampler.update(step, list(item["tokens"][:len(rewards)]), rewards,
                                item["depth"])
    controller_s = item["controller_s"] + time.monotonic() - t0
    scalars = records_lib.step_scalars(rewards, stats, self.log, **item["scalars"])
    self.tensorboard.write(step, scalars)
    outputs.append_step(self.config.output_dir, step, scalars)
    seconds = self.state["seconds"]
    seconds["controller"] += controller_s
    seconds["total"] += time.monotonic() - item["start"]
    self.committed = step + 1
    now, last = time.monotonic(), step + 1 >= self.config.num_steps
    if not (last or now - self.written >= self.config.runtime.commit_seconds):
      return  # a resumed run re-proposes this step and reuses its logged children
    self.written = now
    ckpt = None
    if self.checkpoint is not None:
      ckpt = self._write_checkpoint(os.path.join(self.config.output_dir,
                                                 outputs.CHECKPOINT_DIR, f"step-{step + 1}"))
    sampler_state = self.sampler.state()
    pending = {str(i["step"]): [list(t) for t in i["tokens"]] for i in in_flight}
    self.state.update(step=step + 1, checkpoint=ckpt, sampler=sampler_state,
                      baseline=sampler_state.get("baseline"), pending=pending)
    if self.num_replicas > 1:
      self.state["num_replicas"] = self.num_replicas
    # best.json / summary.txt are views of the log: rewritten at most every 2 s (a step
    # of a table lookup takes milliseconds) and after the last step.
    summaries = now - self.summarized >= 2.0 or last
    outputs.commit_step(self.config.output_dir, self.log, self.task.metric_label, ckpt,
                        self.state, summaries=summaries)
    if summaries:
      self.summarized = now

  def run(self) -> dict[str, Any]:
    config, k_rep = self.config, self.num_replicas
    pending = {int(s): t for s, t in (self.state.get("pending") or {}).items()}
    in_flight = collections.deque()
    for step in range(self.first_step, min(self.first_step + k_rep, config.num_steps)):
      in_flight.append(self._launch(step, pending[step] if step in pending else None))
    try:
      while in_flight:
        item = in_flight.popleft()
        rewards = self._collect(item)
        self._commit(item, rewards, in_flight)
        nxt = item["step"] + k_rep
        if nxt < config.num_steps:
          in_flight.append(self._launch(nxt))
    finally:
      self.tensorboard.close()
      if len(self.log):
        write_summary(config.output_dir, self.log, self.task.metric_label)
    summary = self.evaluator.finish(self.sampler, self._depth(config.num_steps - 1),
                                    config.output_dir, ran=self.first_step < config.num_steps)
    best = self.log.best()
    if best:
      logging.info("Search done: %d children logged; best reward %.4f: %s", len(self.log),
                   best["reward"], best["describe"])
    return {"best": best, "num_children": len(self.log), "num_evaluated": self.evaluated_now,
            "output_dir": config.output_dir, **summary}
