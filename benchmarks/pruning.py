#!/usr/bin/env python3
"""Early stopping of children against full training, at equal child-training seconds.

Compares search runs with a pruner against runs without one, pairwise by seed. With
``--search=random`` the two runs of a seed sample the very same architectures in the same
order (sampling is a pure function of the seed), so the comparison is child for child:

* children per CPU-hour (child-training seconds on the workers, summed);
* at equal seconds: the best value of the pruned run (children trained to the end)
  against the best value the unpruned run had reached after as many seconds;
* where the unpruned run covers the pruned run's children: how many of the full proxy's
  top 5 the pruner let train to the end, and what the rung values predict (Spearman's
  rho between a child's first-rung value and its full-proxy value; how often the full
  value is better than the rung value, i.e. whether a stopped child's reward is always
  a pessimistic one).

  python benchmarks/pruning.py --pairs=PRUNED_RUN:UNPRUNED_RUN[,...] --name=pruning_ptb

Writes ``benchmarks/results/<name>.json`` and prints a markdown table for docs/RESULTS.md.
Runs are ordinary search directories (``bin/nas_search --pruner=...``); commands in
docs/RESULTS.md, "Early stopping".
"""

import json
import math
import os
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))

from absl import app, flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import tasks  # pylint: disable=g-import-not-at-top
from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top

_PAIRS = flags.DEFINE_list("pairs", [], "PRUNED_DIR:UNPRUNED_DIR, one per seed.")
_NAME = flags.DEFINE_string("name", "pruning_ptb", "Stem of benchmarks/results/<name>.json.")
_TOP = 5


def _records(path):
  return ResultsLog(os.path.join(path, "results.jsonl")).records


def _finite(v):
  return v is not None and math.isfinite(float(v))


def _lower_is_better(run_dir) -> bool:
  """The direction of the run's task metric (perplexity: lower; accuracy: higher): what
  its trials say they were scored on (a ``KerasSearch`` run, whose build function cannot
  be loaded here), else its task's."""
  for r in _records(run_dir):
    scored_on = r.get("metrics", {}).get("scored_on")
    if scored_on:
      return not scored_on["higher_is_better"]
  config = json.loads(pathlib.Path(run_dir, "config.json").read_text())
  return not tasks.resolve(config["task"]).higher_is_better


def _best(records, lower=True):
  values = [r["val_metric"] for r in records if r["status"] == "ok"
            and r.get("pruned_at") is None and _finite(r["val_metric"])]
  return (min(values) if lower else max(values)) if values else None


def _spearman(a, b):
  ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
  return float(np.corrcoef(ra, rb)[0, 1])


def _cost(records):
  """Each child's cost in seconds: its training CPU time where every record of both runs
  has one (it does not grow when other jobs share the cores), else the wall clock."""
  if all(r["metrics"].get("train_cpu_seconds") is not None for r in records):
    return [r["metrics"]["train_cpu_seconds"] for r in records], "cpu"
  return [r["train_seconds"] or 0 for r in records], "wall"


def compare(pruned_dir: str, full_dir: str) -> dict:
  """The figures of one seed, in the direction of the task's metric."""
  pruned, full = _records(pruned_dir), _records(full_dir)
  costs, clock = _cost(pruned + full)
  cost_p, cost_f = costs[:len(pruned)], costs[len(pruned):]
  lower = _lower_is_better(full_dir)
  sign = 1.0 if lower else -1.0  # sign * value: lower is better
  seconds_p, seconds_f = sum(cost_p), sum(cost_f)
  cumulative, prefix = 0.0, []
  for r, cost in zip(full, cost_f):  # the unpruned run after as many child-training seconds
    cumulative += cost
    if cumulative > seconds_p:
      break
    prefix.append(r)
  out = {
      "pruned_run": os.path.relpath(pruned_dir, _ROOT),
      "full_run": os.path.relpath(full_dir, _ROOT),
      "children": {"pruned": len(pruned), "full": len(full)},
      "seconds": {"pruned": seconds_p, "full": seconds_f, "clock": clock},
      "children_per_hour": {"pruned": len(pruned) / seconds_p * 3600,
                            "full": len(full) / seconds_f * 3600},
      "stopped": sum(r.get("pruned_at") is not None for r in pruned),
      "stopped_at": sorted({r["pruned_at"] for r in pruned if r.get("pruned_at")}),
      "metric": "lower is better" if lower else "higher is better",
      "best_at_equal_seconds": {"pruned": _best(pruned, lower), "full": _best(prefix, lower),
                                "full_children_in_those_seconds": len(prefix)},
  }
  out["speedup"] = out["children_per_hour"]["pruned"] / out["children_per_hour"]["full"]
  # Child for child where both runs sampled the same architectures (random search).
  same = [(p, f) for p, f in zip(pruned, full) if p["tokens"] == f["tokens"]]
  out["same_children"] = len(same)
  if same:
    ranked = sorted((f for _, f in same if f["status"] == "ok" and _finite(f["val_metric"])),
                    key=lambda f: sign * f["val_metric"])
    top = {(f["step"], f["index"]) for f in ranked[:_TOP]}
    kept = [p for p, f in same if (f["step"], f["index"]) in top
            and p.get("pruned_at") is None and p["status"] == "ok"]
    out["full_top5_kept"] = len(kept)
    out["full_top5"] = [
        {"child": f["step"] * len({r["index"] for r in full}) + f["index"] + 1,
         "full_value": f["val_metric"], "pruned_at": p.get("pruned_at"),
         "value_in_pruned_run": p["val_metric"]}
        for p, f in same if (f["step"], f["index"]) in top]
    pairs = [(p["metrics"]["rungs"][0][1], f["val_metric"]) for p, f in same
             if p["status"] == "ok" and f["status"] == "ok" and p["metrics"].get("rungs")
             and _finite(p["metrics"]["rungs"][0][1]) and _finite(f["val_metric"])]
    if len(pairs) > 2:
      first, final = np.array(pairs).T
      out["first_rung_vs_full"] = {"n": len(pairs), "spearman": _spearman(first, final),
                                   "full_better_than_rung": float(np.mean(
                                       sign * final < sign * first))}
  ends = [(r["metrics"]["rungs"], r["val_metric"]) for r in pruned
          if r.get("pruned_at") is None and r["status"] == "ok" and r["metrics"].get("rungs")]
  out["finished_children_end_better_than_every_rung"] = (
      sum(all(_finite(v) and sign * end < sign * v for _, v in rungs)
          for rungs, end in ends), len(ends))
  return out


def _fmt(v, digits=None):
  """Fixed ``digits`` where given; a metric with four significant figures (a perplexity
  of 447.7 and an accuracy of 0.4392 alike)."""
  if v is None:
    return "-"
  return f"{v:.{digits}f}" if digits is not None else f"{v:.4g}"


def main(argv):
  del argv
  seeds = [compare(*pair.split(":")) for pair in _PAIRS.value]
  path = _ROOT / "benchmarks" / "results" / f"{_NAME.value}.json"
  path.write_text(json.dumps({"pairs": seeds}, indent=2) + "\n")
  print("| run | children (pruned / full) | stopped | children per CPU-hour (pruned / "
        "full, x) | best val metric at equal seconds (pruned / full, full children) | "
        "full top 5 kept | rho(first rung, full) |")
  print("|---|---|---|---|---|---|---|")
  for s in seeds:
    b = s["best_at_equal_seconds"]
    rho = s.get("first_rung_vs_full", {}).get("spearman")
    kept = s.get("full_top5_kept")
    print(f"| {pathlib.Path(s['pruned_run']).name} | {s['children']['pruned']} / "
          f"{s['children']['full']} | {s['stopped']} | "
          f"{_fmt(s['children_per_hour']['pruned'], 0)} / "
          f"{_fmt(s['children_per_hour']['full'], 0)} ({s['speedup']:.2f}x) | "
          f"{_fmt(b['pruned'])} / {_fmt(b['full'])} ({b['full_children_in_those_seconds']}) | "
          f"{'-' if kept is None else kept} | {_fmt(rho, 2)} |")
  print(f"\nwritten {os.path.relpath(path, _ROOT)}")


if __name__ == "__main__":
  app.run(main)
