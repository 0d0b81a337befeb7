"""The search's results log: ``results.jsonl`` appended child by child, and its summary.

One JSON record per sampled child, appended and flushed to disk as soon as the child is
done, so a crash loses at most the child in training; on resume a half-written last line
is cut off (:func:`nas_tf.results.read_records`). The log is also the evaluation cache
(an identical spec is not trained twice) and writes ``best.json`` / ``summary.txt``.
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Optional

from nas_tf.results import (COSTS, TMP_PREFIX, atomic_write_text, dumps, pareto_front, rank,
                            reached, read_records, spec_key)

# Every status a child's metrics can have: all depend on the spec alone (and the seed),
# so an identical spec sampled later reuses the record ("degenerate": a dead cell, or a
# non-finite zero-cost score).
CACHEABLE_STATUSES = ("ok", "failed", "too_large", "nan", "degenerate")


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
    for record in read_records(path, repair):
      self._index(record)

  def _index(self, record: dict) -> None:
    self.records.append(record)
    self._by_key[(record["step"], record["index"])] = record
    if not record.get("cached") and record.get("status") in CACHEABLE_STATUSES:
      self._by_spec.setdefault(spec_key(record["spec"]), record)

  def __len__(self) -> int:
    return len(self.records)

  def __iter__(self) -> Iterator[dict]:
    return iter(self.records)

  def at(self, step: int, index: int) -> Optional[dict]:
    """The record of child ``index`` of controller step ``step``, if logged."""
    return self._by_key.get((step, index))

  def cached(self, spec_json: str) -> Optional[dict]:
    """The first trained record of an identical spec, if any."""
    return self._by_spec.get(spec_key(json.loads(spec_json)))

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
  for cost_key, label in COSTS.items():
    front = pareto_front(log, cost_key)
    if len(front) < 2:
      continue  # one point is no trade-off (or the cost was not measured)
    lines += ["", f"Pareto front, {metric} vs {label} (no architecture is better on both):"]
    for r in front:
      val = "-" if r["val_metric"] is None else f"{r['val_metric']:.4g}"
      cost = (f"{r[cost_key]:>8.3g} ms" if cost_key == "latency_ms"
              else f"{int(r[cost_key]):>11,}")
      lines.append(f"  {cost}  {metric} {val:>9}  reward {r['reward']:.5f}  "
                   f"{r['step'] + 1:>5}/{r['index'] + 1:<4}  {r['describe'][:80]}")
  atomic_write_text(os.path.join(output_dir, "summary.txt"), "\n".join(lines) + "\n")
