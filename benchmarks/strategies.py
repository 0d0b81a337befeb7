#!/usr/bin/env python3
"""Which search strategy wins? Random, REINFORCE, evolution and BO on NAS-Bench-201.

Every strategy is the sampler ``bin/nas_search --search=NAME`` uses, driven through the
sampler protocol (sample -> look the cell up in the table -> update) without the output
files, so thousands of runs fit in minutes. For each (strategy, dataset, seed) the curve
is the *test* accuracy of the cell with the best *validation* accuracy seen after n
queries (the search never sees test accuracy). The analysis reports mean and 95%
interval over seeds against the exact expectation of random search (computed from the
table) and the best achievable value (the test accuracy of the best-validation cell).

  python benchmarks/strategies.py --data=../shared/data/nasbench201/nasbench201-12epoch.csv
  python benchmarks/strategies.py --analyze           # tables + plots from what has run
  # a controller variant (the tuning sweep), named so it sits beside the default:
  python benchmarks/strategies.py --strategies=rl --name=rl-lr3e-2 \
      --settings='{"controller": {"learning_rate": 0.03}}'

Runs append one JSON line each, as one gzip member, to ``--output_dir`` (default
``benchmarks/results/strategies_nasbench201/runs.jsonl.gz``, small enough to commit, so
a table can be re-analysed without a rerun); an interrupted benchmark resumes where it
stopped, and ``--analyze`` uses whatever has finished.
"""

import concurrent.futures
import gzip
import json
import multiprocessing
import os
import pathlib
import sys
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
from runs_file import RUNS, key as _key, read_runs  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data", str(_ROOT.parent / "shared" / "data" / "nasbench201" /
                                        "nasbench201-12epoch.csv"), "NAS-Bench-201 CSV.")
_OUT = flags.DEFINE_string("output_dir", str(_ROOT / "benchmarks" / "results" /
                                             "strategies_nasbench201"), "Results directory.")
_STRATEGIES = flags.DEFINE_list("strategies", ["random", "evolution", "rl", "bo"],
                                "Samplers to run (nas_tf.search.samplers names).")
_DATASETS = flags.DEFINE_list("datasets", ["cifar10", "cifar100", "imagenet"], "Columns.")
_SEEDS = flags.DEFINE_integer("seeds", 100, "Seeds per strategy and dataset.")
_FIRST_SEED = flags.DEFINE_integer("first_seed", 0, "First seed.")
_BUDGET = flags.DEFINE_integer("budget", 1000, "Queries per run.")
_M = flags.DEFINE_integer("children_per_step", 1, "m: proposals per sampler step.")
_NAME = flags.DEFINE_string("name", None, "Label of this variant (default: the strategy).")
_SETTINGS = flags.DEFINE_string("settings", "{}", "JSON overrides of SearchConfig sections, "
                                "e.g. {\"controller\": {\"learning_rate\": 0.01}}.")
_WORKERS = flags.DEFINE_integer("workers", 2, "Parallel processes.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only write tables and plots.")
CHECKPOINTS = (50, 150, 500, 1000)


def _config(strategy: str, settings: dict, seed: int):
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  cfg = config_lib.SearchConfig(task="nasbench201", data_dir="-", output_dir="-",
                                search=strategy, seed=seed)
  data = cfg.to_dict()
  for section, values in settings.items():
    if isinstance(values, dict):
      data.setdefault(section, {}).update(values)
    else:
      data[section] = values
  data["search"], data["seed"] = strategy, seed
  return config_lib.SearchConfig.from_dict(data)


def run_one(job: dict) -> dict:
  """One search: ``budget`` queries; the best-validation cell's test accuracy after each."""
  from nas_tf import search_space  # pylint: disable=g-import-not-at-top
  from nas_tf.search import samplers  # pylint: disable=g-import-not-at-top
  from nas_tf.tasks import nasbench201  # pylint: disable=g-import-not-at-top
  table = nasbench201.load_table(job["data"], job["dataset"])
  cfg = _config(job["strategy"], job["settings"], job["seed"])
  from nas_tf.search.samplers import base  # pylint: disable=g-import-not-at-top
  space = search_space.NB201SearchSpace()
  sampler = samplers.make_sampler(space, cfg)
  best_val, curve, step, t0 = -1.0, [], 0, time.monotonic()
  seen, replaced = set(), 0
  while len(curve) < job["budget"]:
    tokens, specs = sampler.sample(step, job["m"], None)
    if cfg.distinct and not sampler.dedupes_itself:  # the search loop's rule, m = K = 1
      tokens, specs, n_replaced = base.replace_seen(space, tokens, seen, [cfg.seed, step, 17])
      replaced += n_replaced
    n = min(job["m"], job["budget"] - len(curve))
    rewards = []
    for spec in specs[:n]:
      val, test, _ = table[spec.describe()]
      if val > best_val:
        best_val, best_test = val, test
      curve.append(best_test)
      rewards.append(val)
    sampler.update(step, tokens[:n], rewards, None)
    step += 1
  # Proposals that repeated an architecture and were replaced (the loop's rule, or BO's).
  replaced += getattr(sampler, "replaced", 0)
  return {k: job[k] for k in ("name", "strategy", "dataset", "seed", "budget", "m")} | {
      "replaced": replaced,
      "curve": [round(c, 6) for c in curve], "seconds": time.monotonic() - t0}


def _die_with_parent(parent_pid: int) -> None:
  from nas_tf import processes  # pylint: disable=g-import-not-at-top
  processes.watch_parent(parent_pid)


def run_all() -> None:
  out = pathlib.Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  path = out / RUNS
  done = {_key(r) for r in read_runs(out)}
  settings = json.loads(_SETTINGS.value)
  jobs = [dict(name=_NAME.value or s, strategy=s, dataset=d, seed=seed, budget=_BUDGET.value,
               m=_M.value, settings=settings, data=_DATA.value)
          for s in _STRATEGIES.value for d in _DATASETS.value
          for seed in range(_FIRST_SEED.value, _FIRST_SEED.value + _SEEDS.value)]
  jobs = [j for j in jobs if _key(j) not in done]
  logging.info("%d runs to do (%d already in %s)", len(jobs), len(done), path)
  ctx = multiprocessing.get_context("spawn")
  # Workers exit when this process dies (a killed benchmark left idle 1.3 GB workers).
  with concurrent.futures.ProcessPoolExecutor(_WORKERS.value, mp_context=ctx,
                                              initializer=_die_with_parent,
                                              initargs=(os.getpid(),)) as pool, \
       open(path, "ab") as f:
    for k, result in enumerate(pool.map(run_one, jobs, chunksize=1)):
      f.write(gzip.compress((json.dumps(result) + "\n").encode(), mtime=0))
      f.flush()
      if k % 20 == 0 or k == len(jobs) - 1:
        logging.info("%d/%d runs: %s %s seed %d, final %.4f (%.1f s)", k + 1, len(jobs),
                     result["name"], result["dataset"], result["seed"], result["curve"][-1],
                     result["seconds"])


def analyze() -> None:
  from nas_tf.tasks import nasbench201  # pylint: disable=g-import-not-at-top
  out = pathlib.Path(_OUT.value)
  runs = read_runs(out)
  summary, lines = {}, []
  for dataset in _DATASETS.value:
    table = nasbench201.load_table(_DATA.value, dataset)
    exact = nasbench201.expected_random_search(table, range(1, 1001))
    best = nasbench201.best_achievable(table)
    names = sorted({r["name"] for r in runs if r["dataset"] == dataset})
    summary[dataset] = {"best_achievable": best,
                        "exact_random": {n: exact[n] for n in CHECKPOINTS}, "strategies": {}}
    lines += [f"### {dataset}  (best achievable {100 * best:.2f})", "",
              "| strategy | seeds | " + " | ".join(f"n={n}" for n in CHECKPOINTS) +
              " | replaced proposals per run |",
              "|---|---|" + "---|" * len(CHECKPOINTS) + "---|",
              "| exact random | - | " + " | ".join(f"{100 * exact[n]:.2f}"
                                                    for n in CHECKPOINTS) + " | - |"]
    curves = {}
    for name in names:
      rs = [r for r in runs if r["dataset"] == dataset and r["name"] == name]
      length = min(len(r["curve"]) for r in rs)
      c = np.array([r["curve"][:length] for r in rs])
      mean, half = c.mean(0), 1.96 * c.std(0, ddof=1) / np.sqrt(len(rs)) if len(rs) > 1 \
          else np.zeros(length)
      curves[name] = (mean, half)
      cells = {n: (float(mean[n - 1]), float(half[n - 1])) for n in CHECKPOINTS if n <= length}
      counted = [r["replaced"] for r in rs if "replaced" in r]  # runs that counted them
      replaced = float(np.mean(counted)) if counted else None
      summary[dataset]["strategies"][name] = {"seeds": len(rs), "at": cells,
                                              "replaced_per_run": replaced}
      lines.append(f"| {name} | {len(rs)} | " + " | ".join(
          f"{100 * cells[n][0]:.2f} ± {100 * cells[n][1]:.2f}" if n in cells else "-"
          for n in CHECKPOINTS) + f" | {'-' if replaced is None else f'{replaced:.1f}'} |")
    lines.append("")
    _plot(out / f"curves-{dataset}.png", dataset, curves, exact, best)
  (out / "summary.json").write_text(json.dumps(summary, indent=1))
  (out / "table.md").write_text("\n".join(lines) + "\n")
  logging.info("Wrote %s:\n%s", out / "table.md", "\n".join(lines))


def _plot(path, dataset, curves, exact, best) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(7, 4.5))
  n = np.arange(1, 1001)
  ax.plot(n, [100 * exact[i] for i in n], "k--", lw=1, label="random (exact)")
  ax.axhline(100 * best, color="grey", lw=0.8, ls=":", label="best achievable")
  for name, (mean, half) in curves.items():
    x = np.arange(1, len(mean) + 1)
    ax.plot(x, 100 * mean, label=name)
    ax.fill_between(x, 100 * (mean - half), 100 * (mean + half), alpha=0.2)
  ax.set_xscale("log")
  ax.set_xlim(10, 1000)
  lo = 100 * exact[10]
  ax.set_ylim(lo, 100 * best + 0.3)
  ax.set_xlabel("queries")
  ax.set_ylabel("test accuracy of best-validation cell (%)")
  ax.set_title(f"NAS-Bench-201 (12-epoch table), {dataset}: mean and 95% interval")
  ax.legend(loc="lower right", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(_):
  if not _ANALYZE.value:
    run_all()
  analyze()


if __name__ == "__main__":
  app.run(main)
