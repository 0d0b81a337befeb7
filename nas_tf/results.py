"""The search's results log (``results.jsonl``), its evaluation cache, and summaries.

One JSON record per sampled child, appended and flushed to disk as soon as the child is
done, so a crash loses at most the child in training. A half-written last line (the
process died mid-write) is cut off on load; anything else malformed is an error that
names the file and line, never silently dropped.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import Iterator, Optional

from absl import logging

# Every status a child's metrics can have: all depend on the spec alone (and the seed),
# so an identical spec sampled later reuses the record ("degenerate": a dead cell, or a
# non-finite zero-cost score).
CACHEABLE_STATUSES = ("ok", "failed", "too_large", "nan", "degenerate")


TMP_PREFIX = ".tmp-"


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


def remove_stale_temporaries(directory: str) -> int:
  """Deletes ``.tmp-*`` files an atomic write killed mid-way left in ``directory``.

  Only safe while nothing else writes there (the search holds the directory's lock).
  Returns how many were removed.
  """
  removed = 0
  for name in os.listdir(directory):
    if name.startswith(TMP_PREFIX):
      os.remove(os.path.join(directory, name))
      removed += 1
  return removed


def atomic_write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` so that readers see the old or the new file, never half."""
  directory = os.path.dirname(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX + os.path.basename(path))
  try:
    # mkstemp makes the file 0600; give it the mode any file written here gets (the
    # umask's), so state.json and best.json read like results.jsonl.
    os.fchmod(fd, 0o666 & ~_umask())
    with os.fdopen(fd, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def strict(value):
  """``value`` with every NaN/inf float replaced by None: strict JSON for any reader.

  Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON (jq, JavaScript,
  pandas' strict readers reject them). A record's ``status`` says why a metric is missing.
  """
  if isinstance(value, float):
    return value if math.isfinite(value) else None
  if isinstance(value, dict):
    return {k: strict(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [strict(v) for v in value]
  return value


def dumps(value, **kwargs) -> str:
  """``json.dumps`` of :func:`strict` ``(value)``; raises if anything non-finite is left."""
  return json.dumps(strict(value), allow_nan=False, **kwargs)


def read_jsonl_by(path, key: str) -> dict:
  """``{record[key]: record}`` of a JSON-lines file (empty if it does not exist).

  For append-only study files (benchmarks): a half-written last line after a kill is
  skipped, and a key written twice keeps its last record.
  """
  out = {}
  if not os.path.exists(path):
    return out
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue  # a half-written last line after a kill
      out[record[key]] = record
  return out


class ResultsLog:
  """Append-only log of child records with lookups by (step, index) and by spec.

  Args:
    path: The ``results.jsonl`` file (created if missing).
    repair: Cut off a half-written last line (True for the search; False to only read).
  """

  def __init__(self, path: str, repair: bool = True):
    self.path = path
    self.records: list[dict] = []
    self._by_key: dict[tuple[int, int], dict] = {}
    self._by_spec: dict[str, dict] = {}
    if os.path.exists(path):
      self._load(repair)

  def _load(self, repair: bool) -> None:
    with open(self.path, "rb") as f:
      raw = f.read()
    lines = raw.split(b"\n")
    good_bytes = 0
    for number, line in enumerate(lines, start=1):
      is_last = number == len(lines)
      if not line.strip():
        good_bytes += len(line) + (0 if is_last else 1)
        continue
      try:
        record = json.loads(line)
        if is_last:  # a complete record always ends with a newline
          raise ValueError("no trailing newline")
      except ValueError as e:
        if is_last or (number == len(lines) - 1 and not lines[-1]):
          logging.warning("%s: dropping a half-written last record (%d bytes): %s",
                          self.path, len(line), e)
          break
        raise ValueError(f"{self.path}:{number} is not a valid JSON record: {e}") from e
      self._index(record)
      good_bytes += len(line) + 1
    if repair and good_bytes < len(raw):
      with open(self.path, "r+b") as f:
        f.truncate(good_bytes)

  def _index(self, record: dict) -> None:
    self.records.append(record)
    self._by_key[(record["step"], record["index"])] = record
    if not record.get("cached") and record.get("status") in CACHEABLE_STATUSES:
      self._by_spec.setdefault(_spec_key(record["spec"]), record)

  def __len__(self) -> int:
    return len(self.records)

  def __iter__(self) -> Iterator[dict]:
    return iter(self.records)

  def at(self, step: int, index: int) -> Optional[dict]:
    """The record of child ``index`` of controller step ``step``, if logged."""
    return self._by_key.get((step, index))

  def cached(self, spec_json: str) -> Optional[dict]:
    """The first trained record of an identical spec, if any."""
    return self._by_spec.get(_spec_key(json.loads(spec_json)))

  def append(self, record: dict) -> None:
    if (record["step"], record["index"]) in self._by_key:
      raise ValueError(f"child {record['step']}/{record['index']} is already logged")
    line = dumps(record, sort_keys=True) + "\n"
    with open(self.path, "a") as f:
      f.write(line)
      f.flush()
      os.fsync(f.fileno())
    self._index(json.loads(line))  # what a resumed run will read back

  def best(self, n: int = 1):
    """Top-``n`` distinct specs by reward (one record if n == 1, else a list)."""
    ranked = self.ranking()
    if n == 1:
      return ranked[0] if ranked else None
    return ranked[:n]

  def ranking(self) -> list[dict]:
    """Distinct specs, best reward first (ties: the earlier child first)."""
    return rank(self.records)


def reached(record: dict) -> float:
  """The fraction of its training budget a child trained (below 1: a pruner stopped it)."""
  stopped = record.get("pruned_at")
  return 1.0 if stopped is None else float(stopped)


def rank(records) -> list[dict]:
  """Distinct specs of ``records``: those that trained furthest first (a pruner's stopped
  children last), then best reward first (ties: the earlier child first)."""
  seen, out = set(), []
  for r in sorted(records, key=lambda r: (-reached(r), -r["reward"], r["step"],
                                          r["index"])):
    key = _spec_key(r["spec"])
    if key not in seen:
      seen.add(key)
      out.append(r)
  return out


def _spec_key(spec_dict: dict) -> str:
  return json.dumps(spec_dict, sort_keys=True)


def pareto_front(records, cost_key: str = "num_params") -> list[dict]:
  """Distinct trained architectures that no other beats on both quality and cost.

  Quality is the task's reward before any cost term (``task_reward`` when a resource
  objective is on, else ``reward``): monotone in accuracy or perplexity for every task.
  Returned cheapest first, so quality rises along the list.
  """
  seen, points = set(), []
  for r in records:
    key = _spec_key(r["spec"])
    cost = r.get(cost_key)
    if r.get("status") != "ok" or cost is None or key in seen:
      continue
    seen.add(key)
    points.append((float(cost), -float(r.get("task_reward", r["reward"])), r))
  front, best = [], float("-inf")
  for cost, neg_quality, r in sorted(points, key=lambda p: (p[0], p[1])):
    if -neg_quality > best:
      front.append(r)
      best = -neg_quality
  return front


def write_summary(output_dir: str, log: ResultsLog, metric_label: str = "val",
                  top: int = 10) -> None:
  """Writes ``best.json`` (the best record) and ``summary.txt`` (a readable top list).

  Steps and children are counted from 1 in summary.txt, as in the progress log (the
  records' ``step`` / ``index`` fields count from 0).

  ``metric_label``: the column name of the records' ``val_metric`` (the task's).
  """
  ranked = log.ranking()
  if not ranked:
    return
  atomic_write_text(os.path.join(output_dir, "best.json"),
                    dumps(ranked[0], indent=2, sort_keys=True))
  metric = metric_label
  statuses = {}
  for r in log:
    statuses[r["status"]] = statuses.get(r["status"], 0) + 1
  lines = [f"{len(log)} children sampled, {len(ranked)} distinct; status counts: "
           + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items()))]
  stopped = sum(reached(r) < 1 for r in log)
  if stopped:
    lines.append(f"{stopped} stopped early by the pruner (ranked after those trained to "
                 "the end; 'at' = the fraction of the budget they trained)")
  lines += ["", f"rank  reward    {metric:>9}  params    step/child  architecture"]
  for rank, r in enumerate(ranked[:top], start=1):
    val = "-" if r["val_metric"] is None else f"{r['val_metric']:.4g}"
    params = "-" if r["num_params"] is None else str(r["num_params"])
    at = "" if reached(r) == 1 else f"(at {reached(r):.3g}) "
    lines.append(f"{rank:>4}  {r['reward']:.5f}  {val:>9}  {params:>9}  "
                 f"{r['step'] + 1:>5}/{r['index'] + 1:<4}  {at}{r['describe']}")
  for cost_key, label in (("num_params", "parameters"), ("latency_ms", "latency (ms)")):
    front = pareto_front(log, cost_key)
    if len(front) < 2:
      continue  # one point is no trade-off (or the cost was not measured)
    lines += ["", f"Pareto front, {metric} vs {label} (no architecture is better on both):"]
    for r in front:
      val = "-" if r["val_metric"] is None else f"{r['val_metric']:.4g}"
      cost = (f"{int(r[cost_key]):>11,}" if cost_key == "num_params"
              else f"{r[cost_key]:>8.3g} ms")
      lines.append(f"  {cost}  {metric} {val:>9}  reward {r['reward']:.5f}  "
                   f"{r['step'] + 1:>5}/{r['index'] + 1:<4}  {r['describe'][:80]}")
  atomic_write_text(os.path.join(output_dir, "summary.txt"), "\n".join(lines) + "\n")
