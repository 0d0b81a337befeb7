#!/usr/bin/env python3
"""RL vs random search at the same budget (paper §4, the sanity check of Figure 6).

Runs ``--search=rl`` and ``--search=random`` for several seeds with identical child
training and budget, then reports, against the number of children sampled, the best
reward so far and the mean of the top-1/5/15 distinct rewards (mean and spread across
seeds). Every run is an ordinary search directory, so an interrupted benchmark resumes.

  python benchmarks/rl_vs_random.py --task=ptb --data_dir=../shared/data/ptb
  python benchmarks/rl_vs_random.py --task=ptb --analyze_only   # tables/plot from runs

Writes ``benchmarks/results/rl_vs_random_<task>.json`` and ``.png`` (if matplotlib is
installed) and prints a markdown table for docs/RESULTS.md.
"""

import json
import os
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf.results import ResultsLog  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Benchmark task.")
_DATA = flags.DEFINE_string("data_dir", None, "Real data (PTB dir or CIFAR-10 source).")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds per method.")
_CHILDREN = flags.DEFINE_integer("max_children", 30, "Budget per run (both methods).")
_M = flags.DEFINE_integer("children_per_step", 3, "m: children per controller step.")
_CTRL_LR = flags.DEFINE_float("controller_lr", 0.02, "Controller Adam lr (scaled up from the "
                              "paper's 5e-4/6e-4 because the budget is ~400x smaller).")
_ENTROPY = flags.DEFINE_float("entropy_weight", 0.0, "Controller entropy bonus.")
_OUT = flags.DEFINE_string("runs_dir", str(_ROOT / "benchmarks" / "results" / "runs"),
                           "Where the search directories go (not committed).")
_ANALYZE = flags.DEFINE_boolean("analyze_only", False, "Only summarise existing runs.")
_TOPS = (1, 5, 15)


def child_config(task):
  """The proxy child training: small, fixed, identical for both methods."""
  if task == "ptb":
    return config_lib.ChildTrainingConfig(
        epochs=1, batch_size=20, optimizer="adam", learning_rate=3e-3, weight_decay=0.0,
        lm_units=32, num_steps=20, max_train_examples=40_000, max_eval_examples=10_000)
  return config_lib.ChildTrainingConfig(
      epochs=3, batch_size=64, optimizer="momentum", learning_rate=0.05, weight_decay=1e-4,
      max_train_examples=2_000, max_eval_examples=1_000, reward_epochs=3)


def run_dir(task, method, seed):
  return os.path.join(_OUT.value, f"{task}-{method}-seed{seed}")


def make_config(task, method, seed):
  space = ({"kind": "rnn", "base": 8, "combinations": ["add", "elem_mult"],
            "activations": ["identity", "tanh", "sigmoid", "relu"]} if task == "ptb" else
           {"kind": "cnn", "strides": [1, 2, 3], "layer_ops": ["conv"]})
  return config_lib.SearchConfig(
      task=task, data_dir=_DATA.value, output_dir=run_dir(task, method, seed),
      search=method, max_children=_CHILDREN.value, children_per_step=_M.value, seed=seed,
      validation_size=None, space=space,
      depth=config_lib.DepthSchedule(start=4, increment=0),
      controller=config_lib.ControllerConfig(learning_rate=_CTRL_LR.value,
                                             entropy_weight=_ENTROPY.value),
      child=child_config(task), runtime=config_lib.RuntimeConfig(isolation="process"))


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


def analyze(task):
  n = _CHILDREN.value
  summary = {"task": task, "budget": n, "seeds": _SEEDS.value,
             "child_config": child_config(task).__dict__, "methods": {}}
  for method in ("rl", "random"):
    per_seed = []
    for seed in _SEEDS.value:
      path = os.path.join(run_dir(task, method, seed), "results.jsonl")
      if os.path.exists(path):
        recs = ResultsLog(path, repair=False).records
        if len(recs) >= n:
          per_seed.append(curves(recs, n))
    if not per_seed:
      continue
    stats = {}
    for key in per_seed[0]:
      arr = np.asarray([c[key] for c in per_seed])
      stats[key] = {"mean": arr.mean(0).tolist(), "std": arr.std(0).tolist(),
                    "final_per_seed": arr[:, -1].tolist()}
    summary["methods"][method] = {"num_seeds": len(per_seed), **stats}
  out = _ROOT / "benchmarks" / "results" / f"rl_vs_random_{task}.json"
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
  fig.suptitle(f"RL vs random search, {summary['task']} proxy (mean ± std over seeds)")
  fig.tight_layout()
  fig.savefig(path, dpi=110)


def main(argv):
  del argv
  if not _ANALYZE.value:
    if not _DATA.value:
      sys.exit("rl_vs_random: error: --data_dir is required to run searches")
    from nas_tf import search  # pylint: disable=g-import-not-at-top
    for seed in _SEEDS.value:  # interleave methods so a partial run is still a fair pair
      for method in ("rl", "random"):
        logging.info("=== %s %s seed %s ===", _TASK.value, method, seed)
        search.run(make_config(_TASK.value, method, int(seed)))
  analyze(_TASK.value)


if __name__ == "__main__":
  app.run(main)
