#!/usr/bin/env python3
"""Found cells vs the paper's NASCell vs LSTM on Penn Treebank (paper §4.2, Table 2 in small).

Every cell is trained by the command a user runs, ``bin/nas_train`` (the §4.2 recipe of
``nas_tf.training.lm``: uniform +-0.1, SGD lr 1 on the summed loss, clip 5, state carried),
in the same 2-layer model with the same data, batches, steps and seeds. Hidden sizes are
chosen so that every model has (as nearly as possible) the parameter count of the LSTM
model at ``--lstm_units``. Found cells are the best-ranked architectures of search output
directories. Each (cell, seed) run is an ordinary ``nas_train`` output directory, so an
interrupted benchmark resumes; the table is the mean and range over seeds.

  python benchmarks/cell_vs_lstm.py --data_dir=../shared/data/ptb \
      --found=rl:benchmarks/results/runs/ptb-rl-seed0,random:benchmarks/results/runs/ptb-random-seed1
  python benchmarks/cell_vs_lstm.py --analyze   # the table from the runs on disk

Writes ``benchmarks/results/cell_vs_lstm.json`` and prints a markdown table.
"""

import json
import os
import pathlib
import statistics
import subprocess
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data_dir", str(_ROOT.parent / "shared" / "data" / "ptb"),
                            "PTB directory.")
_FOUND = flags.DEFINE_list("found", [], "NAME:SEARCH_DIR pairs; the best-ranked cell of each "
                           "search is trained as found:NAME.")
_BASELINES = flags.DEFINE_list("baselines", ["lstm", "nascell"], "Baseline cells trained "
                                "beside the found ones (empty: found cells only, e.g. to add "
                                "cells to a table whose baselines are already trained).")
_UNITS = flags.DEFINE_integer("lstm_units", 200, "LSTM hidden size; sets the parameter budget.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1"], "Seeds (initialisation and batches order).")
_EPOCHS = flags.DEFINE_integer("epochs", 1, "Epochs of the full training split.")
_BPTT = flags.DEFINE_integer("num_steps", 20, "Truncated-BPTT length.")
_LR = flags.DEFINE_float("learning_rate", None, "Initial rate of every cell trained "
                         "(default: nas_train's, 1); name the runs apart with --found.")
_THREADS = flags.DEFINE_integer("threads", 1, "TF intra-op threads per training.")
_RUNS = flags.DEFINE_string("runs_dir", str(_ROOT / "benchmarks" / "results" / "runs" /
                                            "cell_vs_lstm"), "Where the runs go.")
_OUT_JSON = flags.DEFINE_string("out", str(_ROOT / "benchmarks" / "results" /
                                           "cell_vs_lstm.json"), "The figures (JSON).")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only summarise the runs on disk.")


def _candidates():
  """(name, nas_train flags naming the cell, the cell for the parameter count)."""
  from nas_tf import specs  # pylint: disable=g-import-not-at-top
  from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top
  chosen = [(name, [f"--cell={name}"], name) for name in _BASELINES.value]
  for pair in _FOUND.value:
    name, _, directory = pair.partition(":")
    ranked = ResultsLog(os.path.join(directory, "results.jsonl"), repair=False).ranking()
    if not ranked:
      raise app.UsageError(f"{directory} has no ranked architecture (see --found)")
    chosen.append((f"found:{name}", [f"--spec={directory}", "--rank=1"],
                   specs.from_dict(ranked[0]["spec"])))
  return chosen


def _units(cell, target: int, vocab: int) -> int:
  from nas_tf import children  # pylint: disable=g-import-not-at-top
  return children.units_for_param_budget(cell, vocab, target, num_layers=2)


def main(argv):
  del argv
  from nas_tf import children, data  # pylint: disable=g-import-not-at-top
  runs = pathlib.Path(_RUNS.value)
  if not _ANALYZE.value:
    vocab = len(data.load_ptb(_DATA.value).vocab)
    target = children.count_params_lm("lstm", vocab, _UNITS.value, num_layers=2)
    plan = [(name, flags_, _UNITS.value if cell == "lstm" else _units(cell, target, vocab))
            for name, flags_, cell in _candidates()]
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(_THREADS.value),
               TF_NUM_INTEROP_THREADS=str(_THREADS.value))
    for seed in _SEEDS.value:  # seed-major: a stopped run still has every cell once
      for name, cell_flags, units in plan:
        out = runs / f"{name.replace(':', '-')}-s{seed}"
        if (out / "metrics.json").exists():
          continue
        # nas_train applies the search's restart rule itself (lm_training.LMRecipe: a run
        # that diverges, or stays worse than the unigram model, restarts from scratch at
        # a quarter of the rate, twice at most) and records the rate it ended with.
        args = [sys.executable, str(_ROOT / "bin" / "nas_train"), *cell_flags, "--task=ptb",
                f"--data_dir={_DATA.value}", f"--units={units}", f"--epochs={_EPOCHS.value}",
                "--batch_size=20", f"--num_steps={_BPTT.value}", "--dropout=0",
                f"--seed={seed}", f"--output_dir={out}"] + (
                    [f"--learning_rate={_LR.value}"] if _LR.value is not None else [])
        logging.info("training %s (units %d), seed %s: %s", name, units, seed, " ".join(args))
        runs.mkdir(parents=True, exist_ok=True)
        with open(runs / "training.log", "a") as log:
          done = subprocess.run(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode != 0:
          logging.warning("%s seed %s failed (see %s)", name, seed, runs / "training.log")
  rows = {}
  for path in sorted(runs.glob("*/metrics.json")):
    name, _, seed = path.parent.name.rpartition("-s")
    m = json.loads(path.read_text())
    config = json.loads((path.parent / "final_config.json").read_text())
    rows.setdefault(name, []).append({
        "seed": int(seed), "units": config.get("lm_units", config.get("units")),
        "params": m["num_params"],
        "val_perplexity": m["val_perplexity"], "test_perplexity": m["test_perplexity"],
        "train_seconds": m["train_seconds"], "describe": m["describe"],
        "learning_rate": m.get("lr_used", config["learning_rate"]),
        "attempts": m.get("attempts", 1)})
  out = _OUT_JSON.value and pathlib.Path(_OUT_JSON.value)
  out and out.write_text(json.dumps({"lstm_units": _UNITS.value, "epochs": _EPOCHS.value,
                             "num_steps": _BPTT.value, "rows": rows}, indent=1) + "\n")
  print("\n| cell | units | params | seeds | val ppl, mean (range) | test ppl, mean (range) | "
        "train s (mean) | lr |\n|---|---|---|---|---|---|---|---|")
  for name, rs in rows.items():
    span = lambda key: (f"{statistics.mean(r[key] for r in rs):.1f} "
                        f"({min(r[key] for r in rs):.1f}-{max(r[key] for r in rs):.1f})")
    print(f"| {name} | {rs[0]['units']} | {rs[0]['params']:,} | {len(rs)} | {span('val_perplexity')} | "
          f"{span('test_perplexity')} | {statistics.mean(r['train_seconds'] for r in rs):.0f} | "
          f"{', '.join(format(r['learning_rate'], 'g') for r in rs)} |")


if __name__ == "__main__":
  app.run(main)
