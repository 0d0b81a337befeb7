"""A search's output directory: lock, config check, state.json, checkpoints, summaries.

Everything a run produces lives in ``output_dir``:

* ``config.json`` -- the :class:`SearchConfig` (a rerun must match it to resume);
* ``results.jsonl`` -- one record per sampled child (spec, tokens, reward, metrics,
  status, step); the source of truth for the evaluation cache and for resuming;
* ``state.json`` + ``checkpoints/`` -- the step, the sampler's state (e.g. the EMA
  baseline, an evolution population, a BO history), the steps sampled but not yet
  committed, and a TF checkpoint of whatever the sampler and evaluator hold in variables
  (controller, its optimiser and accumulators; shared weights), written after every step;
* ``best.json``, ``summary.txt`` -- the best architecture and a readable ranking;
* ``tensorboard/`` -- reward, baseline, entropy, best-so-far and depth per step.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
from typing import Callable, Optional

from absl import logging
import numpy as np

from nas_tf.config import SearchConfig
from nas_tf.results import atomic_write_text, dumps
from nas_tf.search.log import ResultsLog, remove_stale_temporaries, write_summary

CONFIG_FILE = "config.json"
STATE_FILE = "state.json"
# One JSON line per committed controller step: its scalars (reward statistics, the
# sampler's baseline / entropy / loss, depth), for reports. A step redone after a resume
# appears again; the last line of a step wins.
STEPS_FILE = "steps.jsonl"
CHECKPOINT_DIR = "checkpoints"
LOCK_FILE = ".lock"
# Fields that may change between a run and its resume (a larger budget, another machine).
_RESUMABLE_CHANGES = ("max_children", "runtime", "output_dir", "data_dir", "cache_dir")
# Sections read by one search strategy only: another strategy's run resumes whatever
# they hold (a field added to one of them must not strand a run of another strategy
# whose config.json lacks it). Strategy -> the section it reads.
_STRATEGY_SECTIONS = {"rl": "controller", "evolution": "evolution", "bo": "bo"}


class ConfigMismatchError(ValueError):
  """The output directory holds a search with a different configuration."""


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


def _differences(old: dict, new: dict, keys) -> list[str]:
  """``section.field: saved -> now`` for each differing field (a section's fields apart)."""
  out = []
  for key in keys:
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
              if a.get(k) != b.get(k)]
    else:
      out.append(f"{key}: {a!r} -> {b!r}")
  return out


def holds_a_run(output_dir: str) -> bool:
  """Whether a search has already started in ``output_dir`` (its config.json is there)."""
  return os.path.exists(os.path.join(output_dir, CONFIG_FILE))


def discard_unstarted(output_dir: str, remove_dir: bool) -> bool:
  """Removes what a search that failed before logging a child wrote in ``output_dir``.

  A setup error (data in the wrong format, a task that cannot train) would otherwise
  leave a config.json behind, and the directory would look like a run that a later
  command with other settings is refused to resume. Only for a directory that held no
  run before (``holds_a_run`` was False) and whose results log is still empty; with
  ``remove_dir`` the directory goes too when nothing else is in it. Call it after the
  lock is released. Returns whether it discarded anything.
  """
  log = os.path.join(output_dir, "results.jsonl")
  if os.path.exists(log) and os.path.getsize(log) > 0:
    return False
  for name in (CONFIG_FILE, STATE_FILE, STEPS_FILE, LOCK_FILE, "results.jsonl"):
    path = os.path.join(output_dir, name)
    if os.path.exists(path):
      os.remove(path)
  for name in ("tensorboard", CHECKPOINT_DIR):
    shutil.rmtree(os.path.join(output_dir, name), ignore_errors=True)
  if remove_dir:
    try:
      os.rmdir(output_dir)
    except OSError:
      pass  # something else is there: keep it
  return True


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
      try:  # fields added since it was saved read as the behaviour the run had
        old = SearchConfig.from_dict(old).to_dict()
      except (TypeError, ValueError):
        pass  # a config of another version: compared as saved
      new = config.to_dict()
      unread = tuple(section for strategy, section in _STRATEGY_SECTIONS.items()
                     if strategy != new["search"])
      diff = sorted(k for k in set(old) | set(new)
                    if k not in _RESUMABLE_CHANGES + unread and old.get(k) != new.get(k))
      if new["max_children"] < old.get("max_children", 0):
        raise ConfigMismatchError(
            f"{config.output_dir} holds a search with max_children={old['max_children']}: "
            f"nothing to do for max_children={new['max_children']} (a budget cannot "
            "shrink; config.json is left as it was). Give a larger --max_children to "
            "extend it, or a new --output_dir")
      if diff:
        raise ConfigMismatchError(
            f"{config.output_dir} holds a search with different settings "
            f"({'; '.join(_differences(old, new, diff))}); rerun with the same flags to "
            "resume, or choose a new --output_dir")
    atomic_write_text(path, config.to_json())
  except BaseException:
    lock.release()  # a traceback would otherwise keep it (and the directory) locked
    raise
  return lock


def load_state(output_dir: str, phases: tuple[str, ...], log: Optional[ResultsLog] = None,
               metric_label: Optional[str] = None) -> dict:
  """state.json of a run (fresh defaults if none yet), checked against its results log.

  ``seconds`` accumulates over resumes: where the wall time goes (``phases``, e.g.
  controller vs children, plus ``total``), for the overhead benchmarks. With ``log``:
  a log holding fewer records than the committed steps had logged (a truncated or
  damaged results.jsonl) stops the run with one line, since those children's tokens are
  gone with them and the controller has already learned from them; otherwise
  best.json / summary.txt are rewritten from the log (``metric_label``: the task's
  validation metric, as named in summary.txt).
  """
  state = {"step": 0, "baseline": None, "checkpoint": None, "sampler": None, "pending": {},
           "seconds": {**{p: 0.0 for p in phases}, "total": 0.0}}
  path = os.path.join(output_dir, STATE_FILE)
  if os.path.exists(path):
    with open(path) as f:
      try:
        state.update(json.load(f))
      except ValueError as e:
        # Written atomically, so damage is from outside (an editor, a copy cut short).
        raise ValueError(
            f"{path} is not valid JSON ({e}): it holds the run's step and sampler state. "
            f"Restore it from a backup, or move {output_dir} aside and start the search "
            "again (its results.jsonl and checkpoints/ stay readable)") from None
  ckpt = state["checkpoint"]
  if ckpt:
    # Stored relative to output_dir; an absolute path (older runs) is taken by its name
    # inside this directory, never the (possibly other) original one.
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
    if len(log) and metric_label:
      write_summary(output_dir, log, metric_label)
  return state


def _listdir(directory: str) -> list[str]:
  return os.listdir(directory) if os.path.isdir(directory) else []


class TensorBoard:
  """Per-step scalars in a TensorBoard event file, flushed at most every
  ``flush_seconds`` and on :meth:`flush`.

  Written with TensorBoard's own protocol buffers and record format, not TensorFlow's
  summary ops: a search whose sampler and evaluator need no TensorFlow (random search,
  evolution or BO on a table) then never imports it, which took 3-9 s of each run's
  start-up. Flushing after every step cost more than a whole table-lookup step; the
  curves are a view of results.jsonl (the source of truth), so seconds of delay lose
  nothing.
  """

  def __init__(self, logdir: str, flush_seconds: float = 5.0):
    # pylint: disable=g-import-not-at-top
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
    # pylint: enable=g-import-not-at-top
    self._event, self._summary = event_pb2.Event, summary_pb2.Summary
    os.makedirs(logdir, exist_ok=True)
    # A new file per writer, named as TensorFlow names its own (TensorBoard reads every
    # "*tfevents*" file of the directory in order, so a resumed run adds one).
    name = (f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}."
            f"{os.getpid()}.{id(self)}.v2")
    self._file = open(os.path.join(logdir, name), "wb")  # pylint: disable=consider-using-with
    self._records = RecordWriter(self._file)
    self._records.write(self._event(wall_time=time.time(),
                                    file_version="brain.Event:2").SerializeToString())
    self._flush_seconds, self._flushed = flush_seconds, time.monotonic()

  def write(self, step: int, scalars: dict) -> None:
    values = [self._summary.Value(tag=name, simple_value=float(value))
              for name, value in scalars.items()
              if value is not None and np.isfinite(value)]
    if values:
      self._records.write(self._event(wall_time=time.time(), step=step,
                                      summary=self._summary(value=values)).SerializeToString())
    if time.monotonic() - self._flushed >= self._flush_seconds:
      self.flush()

  def flush(self) -> None:
    self._file.flush()
    self._flushed = time.monotonic()

  def close(self) -> None:
    """Flushes and closes the file (idempotent)."""
    if not self._file.closed:
      self._file.close()


def append_step(output_dir: str, step: int, scalars: dict) -> None:
  """Adds the scalars of a committed step to ``steps.jsonl`` (a view, like TensorBoard)."""
  values = {k: (float(v) if v is not None and np.isfinite(v) else None)
            for k, v in scalars.items()}
  with open(os.path.join(output_dir, STEPS_FILE), "a") as f:
    f.write(dumps({"step": step, "time": time.time(), **values}, sort_keys=True) + "\n")


def commit_step(output_dir: str, log: ResultsLog, metric_label: str,
                checkpoint: Optional[str], state: dict, summaries: bool = True) -> None:
  """Ends a controller step: state.json (atomically, pointing at ``checkpoint``), then
  drops older checkpoints and (with ``summaries``) refreshes best.json / summary.txt."""
  if state.get("checkpoint"):
    # Relative to the output dir: a moved or copied run resumes from its own checkpoint.
    state = dict(state, checkpoint=os.path.relpath(state["checkpoint"], output_dir))
  state = dict(state, num_records=len(log))  # resume checks the log still holds them
  atomic_write_text(os.path.join(output_dir, STATE_FILE), dumps(state, indent=2))
  _prune_checkpoints(os.path.join(output_dir, CHECKPOINT_DIR), keep=checkpoint)
  if summaries:
    write_summary(output_dir, log, metric_label)


def _prune_checkpoints(directory: str, keep: Optional[str]) -> None:
  """Deletes all but the latest checkpoint (the state file points at it)."""
  if not keep or not os.path.isdir(directory):
    return
  keep_prefix = os.path.basename(keep)
  for name in os.listdir(directory):
    if name.startswith("step-") and not name.startswith(keep_prefix + "."):
      path = os.path.join(directory, name)
      (shutil.rmtree if os.path.isdir(path) else os.remove)(path)


def checkpoint_writer(checkpoint, traced: bool) -> Callable[[str], str]:
  """``write(prefix) -> path``: writes ``checkpoint`` (a ``tf.train.Checkpoint``) there.

  ``traced`` is for a controller on parameter servers (paper §3.3). Its variables sit on
  other tasks than the chief, and an eager ``Checkpoint.write`` then traces a new
  multi-device save function at every call (TensorFlow's ``MultiDeviceSaver.save``).
  Each one is instantiated on every parameter server and never freed there: +0.8 MB per
  server per write in a micro-benchmark, and the servers of a 200-child search grew
  +127 MB per 100 samples (docs/RESULTS.md §3). Traced once here, the save is one
  function for the whole search, and it is faster. A trace fixes the object graph it
  saves, so the writer traces again if the checkpoint's objects change (today every one
  exists before the first write); the eager write stays the default elsewhere.
  """
  if not traced:
    return checkpoint.write
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  traced_objects = None  # how many objects the checkpoint had when write.traced was made

  def write(prefix: str) -> str:
    nonlocal traced_objects
    objects = len(tf.train.TrackableView(checkpoint).descendants())
    if objects != traced_objects:
      traced_objects = objects
      write.traced = tf.function(checkpoint.write, autograph=False)  # tests read it
    # The eager write creates the directory; inside a graph the save ops do not.
    tf.io.gfile.makedirs(os.path.dirname(prefix) or ".")
    return write.traced(tf.constant(prefix)).numpy().decode()

  return write
