r"""Found cells against hand-designed ones after full training: the table and the curves.

The paper's claims (Table 2 for Penn Treebank, Table 1 for CIFAR-10) are about fully
trained models, not about the search's one-epoch proxy. ``bin/nas_train`` writes each
training's per-epoch history as it goes (PTB: ``backup/state.json`` while it runs,
``metrics.json`` when done; CIFAR-10: ``history.json``, then ``metrics.json``). This
script reads a folder of such runs, named ``<model>-s<seed>``, and writes:

* ``<name>.json``: per run, the validation value of every epoch, the best epoch, the
  test value when the run is complete; per model, the test value's mean and sample SD
  (n-1) over the complete seeds;
* ``<name>.png``: validation perplexity (PTB) or accuracy (CIFAR-10) by epoch, one colour
  per model, one line style per seed, runs still in progress drawn dashed to where they
  are.

  python benchmarks/convergence.py --task=ptb \
      --runs_dir=benchmarks/results/runs/zaremba_small --name=convergence_ptb
  python benchmarks/convergence.py --task=cifar10 \
      --runs_dir=benchmarks/results/runs/cifar_final --name=convergence_cifar10
"""

import json
import math
import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_RESULTS = pathlib.Path(__file__).resolve().parent / "results"
_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Which kind of run is read.")
_RUNS = flags.DEFINE_string("runs_dir", str(_RESULTS / "runs" / "zaremba_small"),
                            "Folder of nas_train output directories named MODEL-sSEED.")
_NAME = flags.DEFINE_string("name", "convergence_ptb", "Output files "
                            "benchmarks/results/NAME.{json,png}.")
_SKIP = flags.DEFINE_list("skip", [], "Run directories to leave out (e.g. a one-epoch "
                          "acceptance run kept in the same folder).")

# What each task's history calls its validation value, whether lower is better, and
# what metrics.json calls the test value.
_TASKS = {"ptb": ("val_perplexity", True, "test_perplexity"),
          "cifar10": ("val_accuracy", False, "test_accuracy")}
_RUN_NAME = re.compile(r"^(?P<model>.+)-s(?P<seed>\d+)$")


def read_run(run_dir: pathlib.Path, task: str) -> dict:
  """One training's per-epoch validation values, best epoch and test value.

  Args:
    run_dir: A ``nas_train`` output directory named ``MODEL-sSEED``.
    task: ``ptb`` or ``cifar10``.

  Returns:
    ``{"model", "seed", "val", "best_epoch", "best_val", "test", "complete", "restarts",
    "seconds"}``; ``val[k]`` is epoch k+1's value. ``None`` when the directory holds no
    history yet (or its name is not ``MODEL-sSEED``).
  """
  match = _RUN_NAME.match(run_dir.name)
  if not match:
    return None
  key, lower_is_better, test_key = _TASKS[task]
  metrics_path = run_dir / "metrics.json"
  metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
  restarts, seconds = [], None
  if task == "ptb":
    if metrics is not None:
      val = list(metrics["history"][key])
      restarts = metrics.get("restarts") or []
      seconds = metrics.get("train_seconds")
    elif (run_dir / "backup" / "state.json").exists():
      # In progress: the resume state keeps the losses; perplexity is exp(mean loss).
      state = json.loads((run_dir / "backup" / "state.json").read_text())
      val = [math.exp(v) for v in state["history"]["val_loss"]]
      restarts = state.get("restarts") or []
      seconds = sum(state["history"].get("epoch_seconds") or []) or None
    else:
      return None
  else:
    history_path = run_dir / "history.json"
    if not history_path.exists():
      return None
    history = sorted(json.loads(history_path.read_text()), key=lambda h: h["epoch"])
    val = [h[key] for h in history]
    if any(h["epoch"] != k + 1 for k, h in enumerate(history)):
      raise ValueError(f"{history_path} skips an epoch: {[h['epoch'] for h in history]}")
    timed = [h.get("seconds") for h in history]
    seconds = sum(timed) if timed and all(t is not None for t in timed) else None
  if not val:
    return None
  finite = [v if v is not None and np.isfinite(v) else None for v in val]
  candidates = [(v, k) for k, v in enumerate(finite) if v is not None]
  best_val, best_k = (min if lower_is_better else max)(candidates) if candidates else (
      None, None)
  return {"model": match["model"], "seed": int(match["seed"]), "val": finite,
          "best_epoch": None if best_k is None else best_k + 1, "best_val": best_val,
          "test": metrics.get(test_key) if metrics else None,
          "complete": metrics is not None, "restarts": len(restarts), "seconds": seconds}


def summarize(runs: list) -> dict:
  """Per model: its seeds, and the test value's mean and sample SD over complete runs."""
  models = {}
  for run in runs:
    models.setdefault(run["model"], []).append(run)
  out = {}
  for model, mine in models.items():
    tests = np.array([r["test"] for r in mine if r["complete"] and r["test"] is not None])
    out[model] = {
        "seeds": sorted(r["seed"] for r in mine),
        "complete_seeds": sorted(r["seed"] for r in mine if r["complete"]),
        "test_mean": float(tests.mean()) if tests.size else None,
        "test_sd": float(tests.std(ddof=1)) if tests.size > 1 else None}
  return out


def table(runs: list, task: str) -> str:
  """A markdown table: one row a run, epochs 1/2/4/5/last, best, test."""
  unit = "val ppl" if task == "ptb" else "val acc"
  lines = [f"| model | seed | epochs | {unit} by epoch 1 / 2 / 4 / 5 / last | best (epoch) "
           "| test | restarts |", "|---|---|---|---|---|---|---|"]
  fmt = (lambda v: f"{v:.1f}") if task == "ptb" else (lambda v: f"{v:.3f}")
  for r in runs:
    picks = [r["val"][k] if k < len(r["val"]) else None for k in (0, 1, 3, 4)]
    picks.append(r["val"][-1])
    by_epoch = " / ".join("–" if v is None else fmt(v) for v in picks)
    best = "–" if r["best_val"] is None else f"{fmt(r['best_val'])} ({r['best_epoch']})"
    test = fmt(r["test"]) if r["test"] is not None else "running"
    lines.append(f"| {r['model']} | {r['seed']} | {len(r['val'])} | {by_epoch} | {best} "
                 f"| {test} | {r['restarts']} |")
  return "\n".join(lines)


def plot(runs: list, task: str, path: pathlib.Path) -> None:
  """Validation value by epoch; colour = model, line style = seed, dashed = running."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  models = sorted({r["model"] for r in runs})
  colours = {m: plt.get_cmap("tab10")(k % 10) for k, m in enumerate(models)}
  styles = ["-", "-.", ":"]
  fig, ax = plt.subplots(figsize=(8, 5))
  for r in runs:
    epochs = [k + 1 for k, v in enumerate(r["val"]) if v is not None]
    values = [v for v in r["val"] if v is not None]
    ax.plot(epochs, values, color=colours[r["model"]], marker=".",
            linestyle=styles[r["seed"] % len(styles)] if r["complete"] else "--",
            label=f"{r['model']} s{r['seed']}" + ("" if r["complete"] else " (running)"))
  ax.set_xlabel("epoch")
  if task == "ptb":
    ax.set_yscale("log")
    ax.set_ylabel("validation perplexity (log scale)")
  else:
    ax.set_ylabel("validation accuracy")
  ax.grid(True, alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def collect(runs_dir: pathlib.Path, task: str, skip=()) -> list:
  """Every run under ``runs_dir`` with a history, by model then seed."""
  runs = [read_run(d, task) for d in sorted(runs_dir.iterdir())
          if d.is_dir() and d.name not in skip]
  return sorted((r for r in runs if r), key=lambda r: (r["model"], r["seed"]))


def main(argv):
  del argv
  runs = collect(pathlib.Path(_RUNS.value), _TASK.value, set(_SKIP.value))
  if not runs:
    raise SystemExit(f"No run with a history under {_RUNS.value}: nothing to summarise "
                     "(expected nas_train output directories named MODEL-sSEED).")
  out = {"task": _TASK.value, "runs_dir": _RUNS.value, "runs": runs,
         "models": summarize(runs)}
  (_RESULTS / f"{_NAME.value}.json").write_text(json.dumps(out, indent=1) + "\n")
  plot(runs, _TASK.value, _RESULTS / f"{_NAME.value}.png")
  logging.info("wrote %s.{json,png} (%d runs)", _RESULTS / _NAME.value, len(runs))
  print(table(runs, _TASK.value))


if __name__ == "__main__":
  app.run(main)
