"""The results format: reading ``results.jsonl``, ranking its records, strict JSON.

One JSON record per sampled child, appended by the search (:mod:`nas_tf.search.log`) as
soon as the child is done. Readers (the report, the Python API, export) use
:func:`read_records` and :func:`rank`; a half-written last line (the writer died
mid-write) is skipped, anything else malformed is an error that names the file and line.
"""

from __future__ import annotations

import json
import math
import os
import tempfile

from absl import logging

TMP_PREFIX = ".tmp-"
# A weight-sharing search's final architecture (ENAS §2.2): best of fresh samples scored
# on the full validation subset, preferred over the best record, whose rewards come
# from shared weights at different stages of their training.
DERIVED_FILE = "derived.json"


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


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


def read_records(path: str, repair: bool = False) -> list[dict]:
  """The records of a ``results.jsonl`` file, in the order they were logged.

  A half-written last line (the writer died mid-write) is dropped with a warning, and
  cut off the file when ``repair`` (only the search that owns the file may repair it);
  anything else malformed is an error that names the file and the line. A file that does
  not exist (yet) holds no records.
  """
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    raw = f.read()
  lines = raw.split(b"\n")
  records, good_bytes = [], 0
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
                        path, len(line), e)
        break
      raise ValueError(f"{path}:{number} is not a valid JSON record: {e}") from e
    records.append(record)
    good_bytes += len(line) + 1
  if repair and good_bytes < len(raw):
    with open(path, "r+b") as f:
      f.truncate(good_bytes)
  return records


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
    key = spec_key(r["spec"])
    if key not in seen:
      seen.add(key)
      out.append(r)
  return out


def spec_key(spec_dict: dict) -> str:
  return json.dumps(spec_dict, sort_keys=True)


# The costs a record can carry, each with how summaries and reports name it: measured
# (parameters, latency) or known from the spec (Task.costs: multiply-accumulates).
COSTS = {"num_params": "parameters", "latency_ms": "latency (ms, batch 1)",
         "macs": "multiply-accumulates per example"}


def pareto_front(records, cost_key: str = "num_params") -> list[dict]:
  """Distinct trained architectures that no other beats on both quality and cost.

  Quality is the task's reward before any cost term (``task_reward`` when a resource
  objective is on, else ``reward``): monotone in accuracy or perplexity for every task.
  Returned cheapest first, so quality rises along the list.
  """
  seen, points = set(), []
  for r in records:
    key = spec_key(r["spec"])
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


