#!/usr/bin/env python3
"""RL vs random search at the same budget (paper §4, the sanity check of Figure 6).

Runs ``--search=rl`` and ``--search=random`` (or any ``--methods``) for several seeds with
the task's real-data preset (the same child proxy and budget for every method), then reports, against the number of children sampled, the best
reward so far and the mean of the top-1/5/15 distinct rewards (mean and spread across
seeds). Every run is an ordinary search directory, so an interrupted benchmark resumes.

  python benchmarks/rl_vs_random.py --task=ptb --data_dir=../shared/data/ptb
  python benchmarks/rl_vs_random.py --task=ptb --analyze_only   # tables/plot from runs

Writes ``benchmarks/results/rl_vs_random_<task>.json`` (or ``<name>.json``) and ``.png``
(if matplotlib is installed) and prints a markdown table for docs/RESULTS.md.
"""

import collections
import json
import os
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import rewards, tasks  # pylint: disable=g-import-not-at-top
from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Benchmark task.")
_DATA = flags.DEFINE_string("data_dir", None, "Real data (PTB dir or CIFAR-10 source).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds per method.")
_METHODS = flags.DEFINE_list("methods", ["rl", "random"], "Search strategies to compare "
                             "(--search values: rl, random, evolution, bo).")
_CHILDREN = flags.DEFINE_integer("max_children", 52, "Budget per run (every method).")
_SETTINGS = flags.DEFINE_string("settings", "{}", "JSON {\"section.field\": value} on top of "
                                "the task's real-data preset (the child proxy, m and the "
                                "controller lr are the preset's unless set here).")
_OUT = flags.DEFINE_string("runs_dir", str(_ROOT / "benchmarks" / "results" / "runs"),
                           "Where the search directories go (not committed).")
_NAME = flags.DEFINE_string("name", None, "Stem of the summary files in benchmarks/results "
                            "(default rl_vs_random_TASK), so that analyses of different "
                            "run sets do not overwrite each other.")
_ANALYZE = flags.DEFINE_boolean("analyze_only", False, "Only summarise existing runs.")
_TOPS = (1, 5, 15)


def run_dir(task, method, seed):
  return os.path.join(_OUT.value, f"{task}-{method}-seed{seed}")


def make_config(task, method, seed):
  """What ``bin/nas_search --task=TASK --data_dir=... --search=METHOD --seed=SEED`` runs:
  the task's real-data preset (child proxy, m, controller lr), one thread per child."""
  from nas_tf import api  # pylint: disable=g-import-not-at-top
  settings = {"runtime.intra_op_threads": 1, **json.loads(_SETTINGS.value)}
  return api.make_config(task, _DATA.value, run_dir(task, method, seed), settings=settings,
                         search=method, seed=seed, max_children=_CHILDREN.value)


def curves(records, n):
  """best-so-far and top-k means after each of the first n children (distinct specs)."""
  best, seen, out = -np.inf, {}, {"best": []} | {f"top{k}": [] for k in _TOPS}
  for r in records[:n]:
    key = json.dumps(r["spec"], sort_keys=True)
    seen[key] = r["reward"]
    best = max(best, r["reward"])
    out["best"].append(best)
    ranked = sorted(seen.values(), reverse=True)
    for k in _TOPS:
      out[f"top{k}"].append(float(np.mean(ranked[:k])))
  return out


# A child "learns" when it beats what ignores the architecture (Task.learned): the
# unigram model's validation perplexity on PTB or a 10-class guess on CIFAR-10.


def run_row(task, records) -> dict:
  """Statuses, best metric and learners of one run, overall and by half (first/second)."""
  def learns(r):
    return r["status"] == "ok" and tasks.get(task).learned(r.get("val_metric"))
  halves = (records[:len(records) // 2], records[len(records) // 2:])
  if any(r.get("evaluation") == "zero_cost" for r in records):
    learns = None  # the metric is a score at initialisation: nothing was learned
  ok = [r["val_metric"] for r in records if r["status"] == "ok" and r.get("val_metric")]
  return {"n": len(records),
          "statuses": dict(collections.Counter(r["status"] for r in records)),
          "best_val_metric": (min(ok) if task == "ptb" else max(ok)) if ok else None,
          "learners": sum(map(learns, records)) if learns else None,
          "learners_by_half": [sum(map(learns, h)) for h in halves] if learns else None,
          "failed_by_half": [sum(r["status"] != "ok" for r in h) for h in halves],
          "mean_reward_by_half": [float(np.mean([r["reward"] for r in h])) for h in halves]}


def analyze(task):
  n = _CHILDREN.value
  summary = {"task": task, "budget": n, "seeds": _SEEDS.value, "methods": {}, "runs": {}}
  for method in _METHODS.value:
    per_seed = []
    for seed in _SEEDS.value:
      path = os.path.join(run_dir(task, method, seed), "results.jsonl")
      if os.path.exists(path):
        recs = ResultsLog(path, repair=False).records
        if len(recs) >= n:
          per_seed.append(curves(recs, n))
          summary["runs"][f"{method}-seed{seed}"] = row = run_row(task, recs[:n])
          print(f"{method} seed {seed}: {row}")
          if "child" not in summary:
            with open(os.path.join(run_dir(task, method, seed), "config.json")) as f:
              config = json.load(f)
            summary["child"] = config["child"]
            summary["evaluation"] = config.get("evaluation", "independent")
            if "zero_cost" in config:
              summary["zero_cost"] = config["zero_cost"]
    if not per_seed:
      continue
    stats = {}
    for key in per_seed[0]:
      arr = np.asarray([c[key] for c in per_seed])
      # Sample SD (n-1), the one convention of docs/RESULTS.md; 0 for a single seed.
      std = arr.std(0, ddof=1) if len(arr) > 1 else np.zeros(arr.shape[1:])
      stats[key] = {"mean": arr.mean(0).tolist(), "std": std.tolist(),
                    "final_per_seed": arr[:, -1].tolist()}
    summary["methods"][method] = {"num_seeds": len(per_seed), **stats}
  out = _ROOT / "benchmarks" / "results" / f"{_NAME.value or f'rl_vs_random_{task}'}.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(summary, indent=1))
  print(f"\n| method | seeds | best reward | mean top-5 | mean top-15 |\n|---|---|---|---|---|")
  for method, s in summary["methods"].items():
    cell = lambda k: f"{s[k]['mean'][-1]:.3g} ± {s[k]['std'][-1]:.2g}"
    print(f"| {method} | {s['num_seeds']} | {cell('best')} | {cell('top5')} | {cell('top15')} |")
  _plot(summary, out.with_suffix(".png"))
  return summary


def _plot(summary, path):
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    logging.warning("matplotlib is not installed: no plot written")
    return
  fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
  for ax, key in zip(axes, ("best", "top5", "top15")):
    for method, s in summary["methods"].items():
      mean, std = np.asarray(s[key]["mean"]), np.asarray(s[key]["std"])
      x = np.arange(1, len(mean) + 1)
      ax.plot(x, mean, label=f"{method} ({s['num_seeds']} seeds)")
      ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.set_title({"best": "best reward so far", "top5": "mean of top-5",
                  "top15": "mean of top-15"}[key])
    ax.set_xlabel("children sampled")
  axes[0].set_ylabel("reward")
  axes[0].legend()
  fig.suptitle(f"{' vs '.join(summary['methods'])} search, {summary['task']} proxy (mean ± SD over seeds, n-1)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main(argv):
  del argv
  if not _ANALYZE.value:
    if not _DATA.value:
      sys.exit("rl_vs_random: error: --data_dir is required to run searches")
    from nas_tf import search  # pylint: disable=g-import-not-at-top
    for seed in _SEEDS.value:  # interleave methods so a partial run is still a fair pair
      for method in _METHODS.value:
        logging.info("=== %s %s seed %s ===", _TASK.value, method, seed)
        search.run(make_config(_TASK.value, method, int(seed)))
  analyze(_TASK.value)


if __name__ == "__main__":
  app.run(main)
