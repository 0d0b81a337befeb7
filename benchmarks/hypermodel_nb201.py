#!/usr/bin/env python3
"""Is ``KerasSearch`` faithful? NAS-Bench-201 written as a ``build_model(hp)``.

The NAS-Bench-201 cell written the way a user writes a KerasTuner space: six
``hp.Choice`` over the five operations (one per edge, in the benchmark's edge order),
scored by a ``keras_tuner.HyperModel.fit`` that looks the cell up in the table instead of
training it. Every strategy then runs through ``nas_tf.hypermodel.KerasSearch`` (the
whole search: results.jsonl, state.json, the controller's checkpoints), and its curves
(the test accuracy of the best-validation cell after n trials) are set beside the
built-in ``nasbench201`` task's runs of ``benchmarks/strategies.py``, seed by seed.

  python benchmarks/hypermodel_nb201.py --seeds=10          # run (resumable)
  python benchmarks/hypermodel_nb201.py --analyze           # the table

The built-in side is ``benchmarks/strategies.py`` run for the same seeds with
KerasSearch's settings (REINFORCE: controller lr 0.01, one child per step, the §5 row
``rl-lr1e-2``), and the §5 table's 100-seed figures. Results (both sides' curves):
``benchmarks/results/hypermodel_nb201.json``.
"""

import json
import os
import pathlib
import sys
import subprocess
import tempfile
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
sys.path.insert(0, str(_ROOT / "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data", str(_ROOT.parent / "shared" / "data" / "nasbench201" /
                                        "nasbench201-12epoch.csv"), "NAS-Bench-201 CSV.")
_OUT = flags.DEFINE_string("output", str(_ROOT / "benchmarks" / "results" /
                                         "hypermodel_nb201.json"), "Results file.")
_STRATEGIES = flags.DEFINE_list("strategies", ["random", "rl", "evolution", "bo"],
                                "KerasSearch strategies.")
_SEEDS = flags.DEFINE_integer("seeds", 10, "Seeds 0..N-1 per strategy.")
_BUDGET = flags.DEFINE_integer("budget", 150, "Trials per search.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only print the table.")
# The built-in benchmark's row with the same settings as KerasSearch's defaults.
BUILTIN_NAME = {"rl": "rl-lr1e-2", "random": "random", "evolution": "evolution",
                "bo": "bo"}
CHECKPOINTS = (50, 150)


def _hypermodel(table: dict):
  import keras  # pylint: disable=g-import-not-at-top
  import keras_tuner  # pylint: disable=g-import-not-at-top
  from nas_tf import specs  # pylint: disable=g-import-not-at-top

  class NASBench201(keras_tuner.HyperModel):
    """The NAS-Bench-201 cell as a user would write it, scored by table lookup."""

    def build(self, hp):
      for i, j in specs.NB201_EDGES:
        hp.Choice(f"edge_{i}_{j}", list(specs.NB201_OPS))
      return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, **kwargs):
      del model, args, kwargs
      ops = [hp.get(f"edge_{i}_{j}") for i, j in specs.NB201_EDGES]
      val, test, _ = table[specs.NB201CellSpec(tuple(ops)).describe()]
      return {"val_accuracy": val, "test_accuracy": test}

  return NASBench201()


def run_one(strategy: str, seed: int, table: dict) -> dict:
  """One KerasSearch of ``budget`` trials; the best-validation cell's test accuracy after
  each trial, in the order the trials were sampled."""
  import keras_tuner  # pylint: disable=g-import-not-at-top
  from nas_tf.hypermodel import KerasSearch  # pylint: disable=g-import-not-at-top
  from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top
  t0 = time.monotonic()
  with tempfile.TemporaryDirectory() as out:
    search = KerasSearch(_hypermodel(table), keras_tuner.Objective("val_accuracy", "max"),
                         search=strategy, max_trials=_BUDGET.value, seed=seed,
                         output_dir=out, settings={
                             "runtime.commit_seconds": 5.0,
                             "distinct": False,  # as the built-in runs it is set against
                             # the built-in benchmark's evolution (KerasSearch's is 5 / 2)
                             "evolution.population_size": 20, "evolution.sample_size": 5})
    search.search(epochs=1)
    records = sorted(ResultsLog(os.path.join(out, "results.jsonl")).records,
                     key=lambda r: (r["step"], r["index"]))
  best_val, curve = -1.0, []
  for r in records:
    if r["val_metric"] > best_val:
      best_val, best_test = r["val_metric"], r["metrics"]["logged"]["test_accuracy"]
    curve.append(round(best_test, 6))
  return {"strategy": strategy, "seed": seed, "budget": _BUDGET.value, "curve": curve,
          "seconds": time.monotonic() - t0}


def builtin_runs(strategy: str, seeds: int) -> list[dict]:
  """The built-in task's runs (``benchmarks/strategies.py``, the sampler driven on the
  table directly) with KerasSearch's settings, seeds 0..N-1, CIFAR-10."""
  import runs_file  # pylint: disable=g-import-not-at-top
  settings = {"controller": {"learning_rate": 0.01}} if strategy == "rl" else {}
  with tempfile.TemporaryDirectory() as out:
    subprocess.run([sys.executable, str(_ROOT / "benchmarks" / "strategies.py"),
                    f"--data={_DATA.value}", f"--output_dir={out}", "--datasets=cifar10",
                    f"--strategies={strategy}", f"--name={BUILTIN_NAME[strategy]}",
                    f"--seeds={seeds}", f"--budget={_BUDGET.value}", "--workers=1",
                    f"--settings={json.dumps(settings)}"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return runs_file.read_runs(pathlib.Path(out))


def _read() -> list[dict]:
  path = pathlib.Path(_OUT.value)
  return json.loads(path.read_text())["runs"] if path.exists() else []


def analyze() -> str:
  path = pathlib.Path(_OUT.value)
  data = json.loads(path.read_text()) if path.exists() else {"runs": [], "builtin": []}
  results = _ROOT / "benchmarks" / "results"
  summary = json.loads((results / "strategies_nasbench201" / "summary.json").read_text())[
      "cifar10"]["strategies"]
  # Evolution's tournaments draw with replacement (the default since): its 100 seeds.
  summary["evolution"] = json.loads(
      (results / "strategies_nasbench201_replacement" / "summary.json").read_text())[
          "cifar10"]["strategies"]["evolution"]
  # BO proposes distinct architectures by default: its 100 seeds.
  summary["bo"] = json.loads(
      (results / "strategies_nasbench201_bo_distinct" / "summary.json").read_text())[
          "cifar10"]["strategies"]["bo-distinct"]
  builtin = {(r["strategy"], r["seed"]): r["curve"] for r in data["builtin"]}
  lines = ["| strategy | seeds | n | KerasSearch | built-in, same seeds | built-in, "
           "100 seeds (§5) | curves identical |", "|---|---|---|---|---|---|---|"]
  for strategy in _STRATEGIES.value:
    mine = [r for r in data["runs"] if r["strategy"] == strategy]
    if not mine:
      continue
    same = [builtin.get((strategy, r["seed"])) for r in mine]
    identical = sum(c == r["curve"] for c, r in zip(same, mine))
    for n in CHECKPOINTS:
      def stat(curves):
        v = 100 * np.array([c[n - 1] for c in curves if c is not None])
        if len(v) < 2:
          return "-"
        return f"{v.mean():.2f} ± {1.96 * v.std(ddof=1) / np.sqrt(len(v)):.2f}"
      mean, half = summary[BUILTIN_NAME[strategy]]["at"][str(n)]
      lines.append(f"| {strategy} | {len(mine)} | {n} | {stat([r['curve'] for r in mine])}"
                   f" | {stat(same)} | {100 * mean:.2f} ± {100 * half:.2f} | "
                   f"{identical}/{len(mine)} |")
  return "\n".join(lines) + ("\n\n± : 1.96 SE (n-1), a 95% interval only at many seeds; "
                             "the §5 column as in benchmarks/results/strategies_nasbench201.")


def main(argv):
  del argv
  if not _ANALYZE.value:
    from nas_tf.tasks import nasbench201  # pylint: disable=g-import-not-at-top
    table = nasbench201.load_table(_DATA.value, "cifar10")
    path = pathlib.Path(_OUT.value)
    data = (json.loads(path.read_text()) if path.exists()
            else {"data": os.path.basename(_DATA.value), "dataset": "cifar10",
                  "budget": _BUDGET.value, "runs": [], "builtin": []})
    for strategy in _STRATEGIES.value:
      have = {r["seed"] for r in data["builtin"] if r["strategy"] == strategy}
      if not set(range(_SEEDS.value)) <= have:
        data["builtin"] = [r for r in data["builtin"] if r["strategy"] != strategy] + [
            {"strategy": strategy, "seed": r["seed"], "curve": r["curve"]}
            for r in builtin_runs(strategy, _SEEDS.value)]
      done = {r["seed"] for r in data["runs"] if r["strategy"] == strategy}
      for seed in range(_SEEDS.value):
        if seed in done:
          continue
        data["runs"].append(run_one(strategy, seed, table))
        logging.info("%s seed %d: %.2f after %d trials (%.0f s)", strategy, seed,
                     100 * data["runs"][-1]["curve"][-1], _BUDGET.value,
                     data["runs"][-1]["seconds"])
        path.write_text(json.dumps(data) + "\n")
      path.write_text(json.dumps(data) + "\n")
  print(analyze())


if __name__ == "__main__":
  app.run(main)
