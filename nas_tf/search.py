"""The search loop: sample -> train children -> reward -> REINFORCE update (paper §3.2).

One controller step samples ``m`` architectures, trains each child, turns its validation
metric into a reward, and moves the controller with REINFORCE against an
exponential-moving-average baseline. ``search='random'`` replaces the controller with
uniform sampling over the same space and the same budget (the paper's sanity check).

Everything a run produces lives in ``output_dir``:

* ``config.json`` -- the :class:`SearchConfig` (a rerun must match it to resume);
* ``results.jsonl`` -- one record per sampled child (spec, tokens, reward, metrics,
  status, step); the source of truth for the evaluation cache and for resuming;
* ``state.json`` + ``checkpoints/`` -- controller, optimiser, gradient accumulators,
  baseline and step, written atomically after every step;
* ``best.json``, ``summary.txt`` -- the best architecture and a readable ranking;
* ``tensorboard/`` -- reward, baseline, entropy, best-so-far and depth per step.

Resuming: sampling at step ``s`` is a pure function of (controller weights after step
``s-1``, seed, ``s``), so a rerun after a crash re-samples exactly the children of the
interrupted step; those already in ``results.jsonl`` are reused, none is trained twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from typing import Any, Optional

from absl import logging
import numpy as np

from nas_tf import rewards as rewards_lib
from nas_tf import search_space as search_space_lib
from nas_tf.config import SearchConfig
from nas_tf.results import (ResultsLog, atomic_write_text, dumps, remove_stale_temporaries,
                            write_summary)

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"
# Fields that may change between a run and its resume (a larger budget, another machine).
_RESUMABLE_CHANGES = ("max_children", "runtime", "output_dir", "data_dir", "cache_dir")


class ConfigMismatchError(ValueError):
  """The output directory holds a search with a different configuration."""


def make_space(config: SearchConfig) -> search_space_lib.SearchSpace:
  """The search space of ``config`` (the paper's defaults when ``config.space`` is empty)."""
  if config.space:
    space = search_space_lib.space_from_dict(config.space)
  elif config.task == "ptb":
    space = search_space_lib.RNNCellSearchSpace()
  else:
    space = search_space_lib.CNNSearchSpace()
  if isinstance(space, search_space_lib.CNNSearchSpace):
    space = space.with_num_layers(config.depth.start)
  return space


class OutputDirLock:
  """An exclusive ``flock`` on ``OUTPUT_DIR/.lock``, held while a search runs there.

  Two searches writing one directory would log every child twice. The kernel drops an
  ``flock`` when its process dies, however it dies, so a killed search never leaves a
  stale lock behind. (Spawned workers do not inherit it: Python opens files
  non-inheritable.)
  """

  def __init__(self, output_dir: str):
    self.path = os.path.join(output_dir, LOCK_FILE)
    self._file = open(self.path, "a+")  # pylint: disable=consider-using-with
    try:
      fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      self._file.seek(0)
      holder = self._file.read().strip() or "unknown"
      self._file.close()
      raise RuntimeError(f"output_dir {output_dir!r} is in use by another search (pid "
                         f"{holder}); wait for it to finish, or choose another "
                         "--output_dir") from None
    self._file.seek(0)
    self._file.truncate()
    self._file.write(str(os.getpid()))
    self._file.flush()

  def release(self) -> None:
    if not self._file.closed:
      fcntl.flock(self._file, fcntl.LOCK_UN)
      self._file.close()

  def __del__(self):
    self.release()


def prepare_output_dir(config: SearchConfig) -> OutputDirLock:
  """Creates and locks ``output_dir``; writes ``config.json`` or checks it on resume.

  Returns the lock: keep it while the search runs (it is released when dropped).
  """
  try:
    os.makedirs(config.output_dir, exist_ok=True)
    probe = os.path.join(config.output_dir, ".write_test")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise PermissionError(f"cannot write to output_dir {config.output_dir!r}: {e}") from e
  lock = OutputDirLock(config.output_dir)
  try:
    if remove_stale_temporaries(config.output_dir):
      logging.info("Removed half-written temporary files of a killed run in %s",
                   config.output_dir)
    path = os.path.join(config.output_dir, CONFIG_FILE)
    if os.path.exists(path):
      with open(path) as f:
        old = json.load(f)
      new = config.to_dict()
      diff = sorted(k for k in set(old) | set(new)
                    if k not in _RESUMABLE_CHANGES and old.get(k) != new.get(k))
      if diff:
        raise ConfigMismatchError(
            f"{config.output_dir} holds a search with different settings "
            f"({', '.join(diff)}); rerun with the same flags to resume, or choose a new "
            "--output_dir")
    atomic_write_text(path, config.to_json())
  except BaseException:
    lock.release()  # a traceback would otherwise keep it (and the directory) locked
    raise
  return lock


class RandomSampler:
  """Uniform sampling over the space: the random-search baseline (paper §4, Figure 6)."""

  def __init__(self, space, seed: int):
    self.space = space
    self.seed = seed

  def sample(self, step: int, m: int, depth: Optional[int]):
    space = self.space if depth is None else self.space.with_num_layers(depth)
    rng = np.random.default_rng([self.seed, step])  # a pure function of (seed, step)
    tokens = [space.sample_tokens(rng) for _ in range(m)]
    return tokens, [space.decode(t) for t in tokens]

  def update(self, step, tokens, rewards, depth) -> dict:
    return {}

  def save(self, directory: str, step: int) -> Optional[str]:
    return None

  def restore(self, path: Optional[str]) -> None:
    pass


class RLSampler:
  """The controller RNN trained by REINFORCE with an EMA baseline (paper §3.2)."""

  def __init__(self, space, config: SearchConfig, baseline_value: Optional[float] = None):
    # TensorFlow is imported only when the controller is used: random search on a
    # process-isolated evaluator never needs it in the search process.
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from nas_tf import controller as controller_lib  # pylint: disable=g-import-not-at-top
    from nas_tf import reinforce  # pylint: disable=g-import-not-at-top
    self._tf, self._reinforce = tf, reinforce
    c = config.controller
    self.config = config
    self.controller = controller_lib.Controller(
        space, units=c.units, num_lstm_layers=c.num_lstm_layers, init_range=c.init_range,
        temperature=c.temperature, tanh_constant=c.tanh_constant, seed=config.seed,
        name="controller")
    self.optimizer = keras.optimizers.Adam(c.learning_rate)
    variables = self.controller.trainable_variables
    self.optimizer.build(variables)
    self.accumulators = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    self.accumulated = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.baseline = reinforce.EMABaseline(decay=c.baseline_decay, value=baseline_value)
    self._checkpoint = tf.train.Checkpoint(
        controller=self.controller, optimizer=self.optimizer,
        accumulators=self.accumulators, accumulated=self.accumulated)

  def sample(self, step: int, m: int, depth: Optional[int]):
    tokens, _, _ = self.controller.sample_tokens(
        m, seed=(self.config.seed, step), num_layers=depth)
    space = self.controller._space_at(depth)  # pylint: disable=protected-access
    tokens = [tuple(t) for t in tokens.numpy().tolist()]
    return tokens, [space.decode(t) for t in tokens]

  def update(self, step, tokens, rewards, depth) -> dict:
    tf = self._tf
    advantages = self.baseline.advantages(rewards)
    baseline_before = self.baseline.value
    self.baseline.update(rewards)
    token_matrix = tf.constant(np.asarray(tokens, dtype=np.int32))
    variables = self.controller.trainable_variables
    entropies = []

    def log_prob_fn():
      lp, ent = self.controller.log_prob_tokens(token_matrix, num_layers=depth)
      entropies.append(ent)
      return lp, ent

    loss, grads = self._reinforce.reinforce_step(
        log_prob_fn, variables, self.optimizer, advantages,
        entropy_weight=self.config.controller.entropy_weight, apply=False)
    for acc, g in zip(self.accumulators, grads):
      acc.assign_add(g)
    self.accumulated.assign_add(1)
    applied = int(self.accumulated.numpy()) >= self.config.controller.grad_accumulation
    if applied:
      n = float(self.accumulated.numpy())
      self.optimizer.apply([acc / n for acc in self.accumulators], variables)
      for acc in self.accumulators:
        acc.assign(tf.zeros_like(acc))
      self.accumulated.assign(0)
    return {"loss": loss, "baseline": self.baseline.value,
            "baseline_before": baseline_before, "applied": applied,
            "entropy": float(np.mean(entropies[-1].numpy()))}

  def save(self, directory: str, step: int) -> str:
    return self._checkpoint.write(os.path.join(directory, f"step-{step}"))

  def restore(self, path: Optional[str]) -> None:
    if path:
      self._checkpoint.read(path).assert_existing_objects_matched()


def load_state(output_dir: str, phases: tuple[str, ...], log: Optional[ResultsLog] = None,
               task: Optional[str] = None) -> dict:
  """state.json of a run (fresh defaults if none yet), checked against its results log.

  ``seconds`` accumulates over resumes: where the wall time goes (``phases``, e.g.
  controller vs children, plus ``total``), for the overhead benchmarks. With ``log``:
  a log holding fewer records than the committed steps had logged (a truncated or
  damaged results.jsonl) stops the run with one line, since those children's tokens are
  gone with them and the controller has already learned from them; otherwise
  best.json / summary.txt are rewritten from the log (``task``).
  """
  state = {"step": 0, "baseline": None, "checkpoint": None,
           "seconds": {**{p: 0.0 for p in phases}, "total": 0.0}}
  path = os.path.join(output_dir, STATE_FILE)
  if os.path.exists(path):
    with open(path) as f:
      state.update(json.load(f))
  ckpt = state["checkpoint"]
  if ckpt:
    # Stored relative to output_dir. Runs written before that stored an absolute path;
    # take its name inside this directory, never the (possibly other) original one.
    if os.path.isabs(ckpt):
      ckpt = os.path.join(CHECKPOINT_DIR, os.path.basename(ckpt))
    state["checkpoint"] = os.path.join(output_dir, ckpt)
    if not any(name.startswith(os.path.basename(ckpt) + ".") or
               name == os.path.basename(ckpt)
               for name in _listdir(os.path.dirname(state["checkpoint"]))):
      raise FileNotFoundError(
          f"{path} names checkpoint {ckpt!r}, which is not in {output_dir!r}: the run "
          "directory is incomplete; restore it, or choose a new --output_dir")
  if log is not None:
    expected = state.get("num_records")
    if expected is not None and len(log) < expected:
      raise RuntimeError(
          f"{log.path} holds {len(log)} records but {expected} were logged when controller "
          f"step {state['step']} was committed: the file was truncated or damaged. Restore "
          "it from a backup (nothing else is needed), or start over in a new --output_dir")
    if len(log) and task:
      write_summary(output_dir, log, task)
  return state


def _listdir(directory: str) -> list[str]:
  return os.listdir(directory) if os.path.isdir(directory) else []


def make_sampler(space, config: SearchConfig, state: dict):
  """The controller (``search='rl'``) or uniform sampler, with the saved baseline."""
  if config.search == "rl":
    return RLSampler(space, config, baseline_value=state["baseline"])
  return RandomSampler(space, config.seed)


def _make_evaluator(config: SearchConfig):
  from nas_tf import evaluation  # pylint: disable=g-import-not-at-top
  args = dict(task=config.task, data_dir=config.data_dir, child_config=config.child,
              seed=config.seed, cache_dir=config.cache_dir,
              validation_size=config.validation_size)
  rt = config.runtime
  if rt.isolation == "inline":
    return evaluation.InlineEvaluator(**args)
  return evaluation.ProcessEvaluator(**args, children_per_process=rt.children_per_process,
                                     parallel_children=rt.parallel_children,
                                     intra_op_threads=rt.intra_op_threads)


def _val_metric(task: str, metrics: dict) -> Optional[float]:
  key = "val_accuracy" if task == "cifar10" else "val_perplexity"
  value = metrics.get(key)
  return None if value is None else float(value)


class _TensorBoard:
  """Per-step scalars; a no-op if TensorBoard summaries cannot be written."""

  def __init__(self, logdir: str):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf = tf
    self._writer = tf.summary.create_file_writer(logdir)

  def write(self, step: int, scalars: dict) -> None:
    with self._writer.as_default(step=step):
      for name, value in scalars.items():
        if value is not None and np.isfinite(value):
          self._tf.summary.scalar(name, float(value))
    self._writer.flush()


def run(config: SearchConfig, evaluator=None, cluster=None) -> dict[str, Any]:
  """Runs (or resumes) a search; returns a summary dict.

  Args:
    config: The run's settings; ``config.output_dir`` receives every artifact.
    evaluator: Optional object with ``evaluate(specs) -> list[metrics]`` (and
      ``close()``); by default one is made from ``config.runtime``.
    cluster: Optional ``distributed_cluster.ClusterConfig``; a mode other than 'local'
      runs the same search on a tf.distribute cluster (paper §3.3, ``distributed.py``).

  Returns:
    ``{"best": record or None, "num_children": int, "num_evaluated": int,
    "output_dir": str}``.
  """
  if cluster is not None and cluster.mode != "local":
    from nas_tf import distributed  # pylint: disable=g-import-not-at-top
    return distributed.run(config, cluster)
  if config.evaluation == "shared":
    # Weight-sharing evaluation (Pham et al. 2018, ENAS): its own loop, same outputs.
    from nas_tf.shared import search as shared_search  # pylint: disable=g-import-not-at-top
    return shared_search.run(config)
  lock = prepare_output_dir(config)  # released however the run ends
  try:
    out = config.output_dir
    space = make_space(config)
    log = ResultsLog(os.path.join(out, "results.jsonl"))
    state = load_state(out, phases=("controller", "children"), log=log, task=config.task)
    sampler = make_sampler(space, config, state)
    sampler.restore(state["checkpoint"])
    if state["step"] or len(log):
      logging.info("Resuming %s at controller step %d with %d children already logged.",
                   out, state["step"], len(log))
    own_evaluator = evaluator is None
    evaluator = evaluator or _make_evaluator(config)
    parallel = max(1, getattr(evaluator, "parallel_children", 1))
    tensorboard = _TensorBoard(os.path.join(out, "tensorboard"))
    ckpt_dir = os.path.join(out, CHECKPOINT_DIR)
    m = config.children_per_step
    is_cnn = isinstance(space, search_space_lib.CNNSearchSpace)
    start_time, evaluated_now = time.monotonic(), 0
    try:
      for step in range(state["step"], config.num_steps):
        m_step = min(m, config.max_children - step * m)
        depth = config.depth.depth_at(step * m) if is_cnn else None
        step_start = time.monotonic()
        tokens, specs = sampler.sample(step, m, depth)
        controller_s = time.monotonic() - step_start
        step_rewards = []
        for first in range(0, m_step, parallel):
          chunk = range(first, min(m_step, first + parallel))
          todo = [k for k in chunk if log.get(step, k) is None
                  and log.cached(specs[k].to_json()) is None]
          # Identical specs within a chunk are trained once.
          unique = list({specs[k].to_json(): k for k in todo}.values())
          t0 = time.monotonic()
          fresh = (dict(zip(unique, evaluator.evaluate([specs[k] for k in unique])))
                   if unique else {})
          state["seconds"]["children"] += time.monotonic() - t0
          evaluated_now += len(fresh)
          for k in chunk:
            record = log.get(step, k)
            if record is None:
              metrics = fresh.get(k)
              cached = None if metrics is not None else log.cached(specs[k].to_json())
              record = _record(config, step, k, tokens[k], specs[k], depth, metrics, cached)
              log.append(record)
              _log_child(record, log, config, step, start_time, evaluated_now)
            step_rewards.append(record["reward"])
        check_not_all_broken(log, config)
        # The last step of a budget that is not a multiple of m still samples m (sampling
        # stays a pure function of the step) but trains and learns from only m_step.
        tokens = tokens[:m_step]
        t0 = time.monotonic()
        stats = sampler.update(step, tokens, step_rewards, depth)
        controller_s += time.monotonic() - t0
        tensorboard.write(step, step_scalars(step_rewards, stats, log, **{"search/depth": depth}))
        ckpt = sampler.save(ckpt_dir, step + 1)
        state["seconds"]["controller"] += controller_s
        state["seconds"]["total"] += time.monotonic() - step_start
        commit_step(out, log, config.task, ckpt, {
            "step": step + 1, "baseline": sampler_baseline(sampler), "checkpoint": ckpt,
            "seconds": state["seconds"]})
    except BaseException:
      if own_evaluator:  # Ctrl-C / SIGTERM / an error: do not wait for a running child
        evaluator.close(abort=True)
        own_evaluator = False
      raise
    finally:
      if own_evaluator:
        evaluator.close()
    best = log.best()
    if best:
      logging.info("Search done: %d children logged; best reward %.4f: %s", len(log),
                   best["reward"], best["describe"])
    return {"best": best, "num_children": len(log), "num_evaluated": evaluated_now,
            "output_dir": out}
  finally:
    lock.release()


def _record(config, step, index, tokens, spec, depth, metrics, cached) -> dict:
  """The results.jsonl record of one sampled child (``cached``: an earlier identical one)."""
  from_cache = metrics is None
  if from_cache:
    metrics = dict(cached["metrics"], status=cached["status"])
  status = metrics.get("status", "failed")
  if status == "ok" and not from_cache:
    status, why = rewards_lib.judge(config.task, metrics)
    if why:
      metrics = dict(metrics, error=why)
  reward = (rewards_lib.reward_for(config.task, metrics, config.child.reward_epochs)
            if status == "ok"
            else rewards_lib.FAILURE_REWARD)
  return {
      "step": step, "index": index, "search": config.search, "depth": depth,
      "spec": spec.to_dict(), "describe": spec.describe(), "tokens": list(tokens),
      "reward": reward, "status": status, "cached": from_cache,
      "val_metric": _val_metric(config.task, metrics),
      "num_params": metrics.get("num_params"), "train_seconds": metrics.get("train_seconds"),
      "metrics": {k: v for k, v in metrics.items() if k != "status"},
      "time": time.time(),
  }


def _log_child(record, log, config, step, start_time, evaluated_now) -> None:
  done = len(log)
  elapsed = time.monotonic() - start_time
  remaining = config.max_children - done
  eta = (elapsed / evaluated_now * remaining) if evaluated_now else float("nan")
  best = log.best()
  logging.info(
      "step %d/%d child %d: reward %.4f (%s, %s%s) | %d/%d children, best %.4f, ETA %s",
      step + 1, config.num_steps, record["index"] + 1, record["reward"], record["status"],
      "cached" if record["cached"] else f"{record['train_seconds'] or 0:.1f}s",
      "" if record["val_metric"] is None else f", val {record['val_metric']:.4g}",
      done, config.max_children, best["reward"] if best else float("nan"),
      "?" if not np.isfinite(eta) else time.strftime("%H:%M:%S", time.gmtime(eta)))


def step_scalars(rewards, stats: dict, log: ResultsLog, **extra) -> dict:
  """The TensorBoard scalars every search loop writes after a controller step."""
  best = log.best()
  return {"reward/mean": float(np.mean(rewards)), "reward/max": float(np.max(rewards)),
          "reward/best_so_far": best["reward"] if best else None,
          "controller/baseline": stats.get("baseline"),
          "controller/entropy": stats.get("entropy"), "controller/loss": stats.get("loss"),
          "search/children": float(len(log)), **extra}


def sampler_baseline(sampler) -> Optional[float]:
  """The EMA baseline of an RL sampler (None for random search)."""
  return getattr(getattr(sampler, "baseline", None), "value", None)


def commit_step(output_dir: str, log: ResultsLog, task: str, checkpoint: Optional[str],
                state: dict) -> None:
  """Ends a controller step: state.json (atomically, pointing at ``checkpoint``), then
  drops older checkpoints and refreshes best.json / summary.txt."""
  if state.get("checkpoint"):
    # Relative to the output dir: a moved or copied run resumes from its own checkpoint.
    state = dict(state, checkpoint=os.path.relpath(state["checkpoint"], output_dir))
  state = dict(state, num_records=len(log))  # resume checks the log still holds them
  atomic_write_text(os.path.join(output_dir, STATE_FILE), dumps(state, indent=2))
  _prune_checkpoints(os.path.join(output_dir, CHECKPOINT_DIR), keep=checkpoint)
  write_summary(output_dir, log, task)


def check_not_all_broken(log: ResultsLog, config: SearchConfig) -> None:
  """Stops a search whose children break for a reason the user must fix, with one line.

  Bad architectures fail one by one and are scored; but when every child of the first
  step raised (wrong data path, a subset larger than the data, a bug), or most children
  of the latest step are over the size caps (a child size the caps do not allow, e.g.
  the paper's ~20M-parameter LM under the default 5M cap), carrying on would only fill
  results.jsonl with failure rewards that teach the controller nothing.
  """
  first = [r for r in log if r["step"] == 0]
  if (len(first) == min(config.children_per_step, config.max_children)
      and all(r["status"] == "failed" for r in first) and len(log) == len(first)):
    errors = sorted({str(r["metrics"].get("error")) for r in first})
    raise RuntimeError(f"every child of the first step failed to train; this looks like a "
                       f"setup problem, not bad architectures. Errors: {'; '.join(errors)}")
  if not len(log):
    return
  last = max(r["step"] for r in log)
  step = [r for r in log if r["step"] == last]
  large = [r for r in step if r["status"] == "too_large"]
  if len(large) * 2 > len(step):
    error = str(large[0]["metrics"].get("error"))[:300]
    raise RuntimeError(
        f"{len(large)} of the {len(step)} children of step {last + 1} are over the size caps "
        f"({error}); raise the cap with --set=child.max_params=N (CNNs also "
        f"--set=child.max_activation_elements=N) or make children smaller (--lm_units, "
        f"--start_layers), then rerun the same command to resume")


def _prune_checkpoints(directory: str, keep: Optional[str]) -> None:
  """Deletes all but the latest checkpoint (the state file points at it)."""
  if not keep or not os.path.isdir(directory):
    return
  keep_prefix = os.path.basename(keep)
  for name in os.listdir(directory):
    if name.startswith("step-") and not name.startswith(keep_prefix + "."):
      path = os.path.join(directory, name)
      (shutil.rmtree if os.path.isdir(path) else os.remove)(path)
