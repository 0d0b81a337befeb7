#!/usr/bin/env python3
"""Weight-sharing (ENAS, Pham et al. 2018) vs independent evaluation (Zoph & Le 2017) on PTB.

Two measurements, both with the same child size (``--lm_units``, ``--lm_layers``,
batch, BPTT length, ``--train_tokens``):

1. Cost: seconds of one shared-weight epoch (every batch with a freshly sampled cell,
   ENAS §2.2) vs one independent child's training epoch (what the paper pays per child,
   build + 1 epoch + validation). ENAS's claim is that one shared epoch costs about one
   child epoch while it trains all children at once.
2. Quality at equal wall clock (small scale, one seed: a smoke-level comparison, not a
   result): a shared RL search runs ``--shared_steps`` controller steps; its wall time W
   then buys independent RL search and random search as many children as fit in W
   (from the measured child cost). The shared search's derived cell, and the best cells
   of the other two, are then retrained from scratch for ``--retrain_epochs`` and
   compared on validation perplexity.

  python benchmarks/shared_vs_independent.py --data_dir=../shared/data/ptb

Writes ``benchmarks/results/shared_vs_independent.json`` and prints a markdown table.
"""

import json
import os
import pathlib
import shutil
import sys
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf import specs as specs_lib  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data_dir", str(_ROOT / "testdata" / "ptb"), "PTB directory.")
_UNITS = flags.DEFINE_integer("lm_units", 32, "Hidden size of children and shared model.")
_LAYERS = flags.DEFINE_integer("lm_layers", 1, "Recurrent layers.")
_TRAIN = flags.DEFINE_integer("train_tokens", 30_000, "Training tokens (one epoch).")
_EVAL = flags.DEFINE_integer("eval_tokens", 5_000, "Validation tokens for rewards/retrain.")
_BASE = flags.DEFINE_integer("base", 8, "Leaves of the cell tree.")
_SHARED_STEPS = flags.DEFINE_integer("shared_steps", 12, "Controller steps of the shared run.")
_TRAIN_BATCHES = flags.DEFINE_integer("train_batches", 25, "Shared batches per controller step.")
_M = flags.DEFINE_integer("children_per_step", 4, "m: architectures per controller step.")
_RETRAIN = flags.DEFINE_integer("retrain_epochs", 2, "Epochs when retraining found cells.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every run.")
_RUNS = flags.DEFINE_string("runs_dir", str(_ROOT / "benchmarks" / "results" / "runs" /
                                            "shared_vs_independent"),
                            "Search directories (deleted at start: timings need fresh runs).")


def child_config(epochs=1):
  return config_lib.ChildTrainingConfig(
      epochs=epochs, batch_size=20, optimizer="adam", learning_rate=3e-3, weight_decay=0.0,
      clipnorm=5.0, lm_units=_UNITS.value, lm_layers=_LAYERS.value, num_steps=20,
      max_train_examples=_TRAIN.value, max_eval_examples=_EVAL.value)


def search_config(name, search="rl", evaluation="independent", max_children=8):
  return config_lib.SearchConfig(
      task="ptb", data_dir=_DATA.value, output_dir=os.path.join(_RUNS.value, name),
      search=search, evaluation=evaluation, max_children=max_children,
      children_per_step=_M.value, seed=_SEED.value,
      space={"kind": "rnn", "base": _BASE.value, "combinations": ["add", "elem_mult"],
             "activations": ["identity", "tanh", "sigmoid", "relu"]},
      controller=config_lib.ControllerConfig(learning_rate=0.02),
      child=child_config(), runtime=config_lib.RuntimeConfig(isolation="inline"),
      shared=config_lib.SharedTrainingConfig(train_batches=_TRAIN_BATCHES.value,
                                             learning_rate=3e-3, derive_samples=8))


def measure_cost(data):
  """Seconds of one shared epoch and of one independent child (build, 1 epoch, val)."""
  from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
  from nas_tf import search  # pylint: disable=g-import-not-at-top
  from nas_tf.shared import training as shared_training  # pylint: disable=g-import-not-at-top
  config = search_config("cost", evaluation="shared")
  space = search.make_space(config)
  rng = np.random.default_rng(_SEED.value)
  child_seconds = []
  for _ in range(2):
    metrics = child_training.train_and_evaluate(space.sample(rng), data, child_config())
    child_seconds.append(metrics["train_seconds"])
  # The child's pure training-epoch time too (second fit epoch: no build, no tracing).
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf import children  # pylint: disable=g-import-not-at-top
  c = child_config()
  model = children.build_language_model(space.sample(rng), len(data.vocab), c.lm_units,
                                        num_layers=c.lm_layers)
  model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(
      from_logits=True))
  train = data.batches("train", c.batch_size, c.num_steps).take(
      -(-c.max_train_examples // (c.batch_size * c.num_steps)))
  model.fit(train, epochs=1, verbose=0)
  t0 = time.monotonic()
  model.fit(train, epochs=1, verbose=0)
  child_fit_epoch = time.monotonic() - t0
  trainer = shared_training.RNNSharedTrainer(config, space, data=data)
  n = trainer.num_train_batches
  archs = np.asarray([space.sample_tokens(rng) for _ in range(n)], np.int32)
  t0 = time.monotonic()
  trainer.train(archs[:1], 0)  # traces the step once
  trace_s = time.monotonic() - t0
  t0 = time.monotonic()
  trainer.train(archs, 0)
  shared_epoch = time.monotonic() - t0
  t0 = time.monotonic()
  trainer.evaluate(archs[0], 0, None)
  shared_eval = time.monotonic() - t0
  return {"train_batches_per_epoch": n, "child_seconds": child_seconds,
          "child_epoch_s": float(np.mean(child_seconds)),
          "child_fit_epoch_only_s": child_fit_epoch,
          "ratio_shared_epoch_to_child_fit_epoch": shared_epoch / child_fit_epoch,
          "shared_trace_s": trace_s,
          "shared_epoch_s": shared_epoch, "shared_full_validation_s": shared_eval,
          "ratio_shared_epoch_to_child": shared_epoch / float(np.mean(child_seconds))}


def retrain(spec_dict, data):
  from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
  metrics = child_training.train_and_evaluate(specs_lib.from_dict(spec_dict), data,
                                              child_config(_RETRAIN.value), seed=_SEED.value)
  return metrics["val_perplexity"]


def main(argv):
  del argv
  from nas_tf import data as data_lib  # pylint: disable=g-import-not-at-top
  from nas_tf import search  # pylint: disable=g-import-not-at-top
  shutil.rmtree(_RUNS.value, ignore_errors=True)
  data = data_lib.load_ptb(_DATA.value)
  cost = measure_cost(data)
  logging.info("cost: %s", cost)

  t0 = time.monotonic()
  shared = search.run(search_config("shared-rl", evaluation="shared",
                                    max_children=_SHARED_STEPS.value * _M.value))
  wall = time.monotonic() - t0
  budget = max(_M.value, int(wall // cost["child_epoch_s"]))
  logging.info("shared search: %.0f s -> %d independent children fit", wall, budget)
  found = {"shared-rl (derived)": shared["derived"]["spec"],
           "shared-rl (best logged)": shared["best"]["spec"]}
  walls = {"shared-rl (derived)": wall, "shared-rl (best logged)": wall}
  for method in ("rl", "random"):
    t0 = time.monotonic()
    result = search.run(search_config(f"independent-{method}", search=method,
                                      max_children=budget))
    walls[f"independent-{method}"] = time.monotonic() - t0
    found[f"independent-{method}"] = result["best"]["spec"]
  rows = {}
  for name, spec in found.items():
    rows[name] = {"search_wall_s": walls[name], "retrained_val_ppl": retrain(spec, data),
                  "describe": specs_lib.from_dict(spec).describe()}
    logging.info("%s: %s", name, rows[name])
  out = {"flags": {f: flags.FLAGS[f].value for f in (
      "data_dir", "lm_units", "lm_layers", "train_tokens", "eval_tokens", "base",
      "shared_steps", "train_batches", "children_per_step", "retrain_epochs", "seed")},
         "cost": cost, "independent_children_budget": budget, "results": rows}
  path = _ROOT / "benchmarks" / "results" / "shared_vs_independent.json"
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(out, indent=1))
  print(f"\nshared epoch {cost['shared_epoch_s']:.1f} s vs child epoch "
        f"{cost['child_epoch_s']:.1f} s (ratio {cost['ratio_shared_epoch_to_child']:.2f}; "
        f"{cost['train_batches_per_epoch']} batches); vs the child's bare fit epoch "
        f"{cost['child_fit_epoch_only_s']:.1f} s (ratio "
        f"{cost['ratio_shared_epoch_to_child_fit_epoch']:.2f})\n")
  print("| method | search wall (s) | retrained val ppl |\n|---|---|---|")
  for name, r in rows.items():
    print(f"| {name} | {r['search_wall_s']:.0f} | {r['retrained_val_ppl']:.1f} |")


if __name__ == "__main__":
  app.run(main)
