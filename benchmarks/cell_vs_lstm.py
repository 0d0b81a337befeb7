#!/usr/bin/env python3
"""Found cell vs the paper's NASCell vs LSTM on Penn Treebank (paper §4.2, Table 2 in small).

Each cell goes into the same 2-layer language model; hidden sizes are chosen so that every
model has (as nearly as possible) the parameter count of the LSTM model, and every model
gets the same training budget (same batches, steps, optimiser). Reports validation and
test perplexity side by side.

  python benchmarks/cell_vs_lstm.py --data_dir=../shared/data/ptb \
      --results=benchmarks/results/runs/ptb-rl-seed0
"""

import json
import math
import os
import pathlib
import sys
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import keras  # pylint: disable=g-import-not-at-top

from nas_tf import children, data, specs  # pylint: disable=g-import-not-at-top
from nas_tf.results import ResultsLog  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data_dir", str(_ROOT / "testdata" / "ptb"), "PTB directory.")
_RESULTS = flags.DEFINE_list("results", [], "Search output dirs; the best cell of all is used.")
_UNITS = flags.DEFINE_integer("lstm_units", 64, "LSTM hidden size; sets the parameter budget.")
_TRAIN_TOKENS = flags.DEFINE_integer("train_tokens", 300_000, "Training tokens (budget).")
_EPOCHS = flags.DEFINE_integer("epochs", 1, "Passes over those tokens.")
_BATCH = flags.DEFINE_integer("batch_size", 20, "Batch size.")
_BPTT = flags.DEFINE_integer("num_steps", 35, "Truncated-BPTT length.")
_LR = flags.DEFINE_float("lr", 3e-3, "Adam learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Initialisation seed.")


def best_found_cell(result_dirs):
  ranked = []
  for d in result_dirs:
    ranked += ResultsLog(os.path.join(d, "results.jsonl"), repair=False).ranking()
  if not ranked:
    return None, None
  best = max(ranked, key=lambda r: r["reward"])
  return specs.from_dict(best["spec"]), best


def train_one(name, cell, units, ptb):
  keras.utils.set_random_seed(_SEED.value)
  model = children.build_language_model(cell, len(ptb.vocab), units, num_layers=2)
  model.compile(keras.optimizers.Adam(_LR.value, global_clipnorm=5.0),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  steps = max(1, _TRAIN_TOKENS.value // (_BATCH.value * _BPTT.value))
  train = ptb.batches("train", _BATCH.value, _BPTT.value).take(steps)
  start = time.monotonic()
  model.fit(train, epochs=_EPOCHS.value, verbose=0)
  seconds = time.monotonic() - start
  ppl = {split: math.exp(model.evaluate(ptb.batches(split, _BATCH.value, _BPTT.value),
                                        verbose=0)) for split in ("valid", "test")}
  out = {"cell": name, "units": units, "params": int(model.count_params()),
         "train_steps": steps * _EPOCHS.value, "train_seconds": seconds,
         "val_perplexity": ppl["valid"], "test_perplexity": ppl["test"]}
  logging.info("%s", out)
  keras.backend.clear_session()
  return out


def main(argv):
  del argv
  ptb = data.load_ptb(_DATA.value)
  vocab = len(ptb.vocab)
  target = children.count_params_lm("lstm", vocab, _UNITS.value, num_layers=2)
  found, record = best_found_cell(_RESULTS.value)
  candidates = [("lstm", "lstm"), ("nascell", "nascell")]
  if found is not None:
    candidates.append(("found", found))
  rows = []
  for name, cell in candidates:
    units = (_UNITS.value if name == "lstm" else
             children.units_for_param_budget(cell, vocab, target, num_layers=2))
    rows.append(train_one(name, cell, units, ptb))
  summary = {"param_target": target, "found_record": record and {
      k: record[k] for k in ("reward", "describe", "val_metric", "step", "index")},
             "data_dir": _DATA.value, "rows": rows}
  out = _ROOT / "benchmarks" / "results" / "cell_vs_lstm.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(summary, indent=1))
  print("\n| cell | units | params | train steps | train s | val ppl | test ppl |\n"
        "|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['cell']} | {r['units']} | {r['params']:,} | {r['train_steps']} | "
          f"{r['train_seconds']:.0f} | {r['val_perplexity']:.1f} | {r['test_perplexity']:.1f} |")


if __name__ == "__main__":
  app.run(main)
