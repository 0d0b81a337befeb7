#!/usr/bin/env python3
"""A user's own Keras model on real CIFAR-10: nas_tf's strategies against KerasTuner's.

The space is a ``build_model(hp)`` as a KerasTuner user writes it (about 40 lines, with
conditional blocks): 1-3 stages, each with its convolution type, width and kernel, an
optional residual connection; dropout and the learning rate. The same function, data
and trial budget go to nas_tf's ``KerasSearch`` (rl, evolution, bo, random) and to
KerasTuner's own RandomSearch, BayesianOptimization and Hyperband. Each search's best
trial is then retrained longer and scored once on the test set.

  pip install -e ".[benchmarks]"    # KerasTuner's BayesianOptimization needs scikit-learn
  python benchmarks/hypermodel_cifar10.py --seeds=1 --max_trials=12      # resumable
  python benchmarks/hypermodel_cifar10.py --analyze

Data: ``../shared/data/cifar10-jpeg.tar.gz``; a seeded draw of ``--train_images`` of the
45,000 training images for the trials, 5,000 held-out training images for validation
(the objective), the 10,000 test images only for the retrained winner. One row per
(method, seed) in ``benchmarks/results/hypermodel_cifar10.json``.
"""

import contextlib
import json
import os
import pathlib
import re
import sys
import tempfile
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_DATA = flags.DEFINE_string("data", str(_ROOT.parent / "shared" / "data" /
                                        "cifar10-jpeg.tar.gz"), "CIFAR-10 source.")
_OUT = flags.DEFINE_string("output", str(_ROOT / "benchmarks" / "results" /
                                         "hypermodel_cifar10.json"), "Results file.")
_METHODS = flags.DEFINE_list(
    "methods", ["nas_tf-rl", "nas_tf-evolution", "nas_tf-bo", "nas_tf-random",
                "kt-random", "kt-bayesian", "kt-hyperband", "nas_tf-random+hyperband",
                "nas_tf-rl+successive_halving", "nas_tf-random+none",
                "nas_tf-random+successive_halving", "nas_tf-rl+none"],
    "Searches to run; nas_tf-STRATEGY+PRUNER trains each trial up to --pruned_epochs with "
    "that pruner (early stopping, as KerasTuner's Hyperband does); +none trains every "
    "trial to --pruned_epochs: the unpruned arm that benchmarks/pruning.py sets against "
    "a pruned one (random search samples the same trials whatever the pruner). +none "
    "rows are not retrained (their runs are kept for that comparison).")
_SEEDS = flags.DEFINE_integer("seeds", 1, "Seeds 0..N-1 per method.")
_TRIALS = flags.DEFINE_integer("max_trials", 12, "Trials per search (Hyperband: its own "
                               "schedule with max_epochs = --epochs; trials reported).")
_EPOCHS = flags.DEFINE_integer("epochs", 2, "Epochs per trial.")
_PRUNED_EPOCHS = flags.DEFINE_integer("pruned_epochs", 6, "Epochs a trial of a pruned "
                                      "nas_tf search may reach (KerasTuner Hyperband's "
                                      "max_epochs is --epochs x 3).")
_TRAIN = flags.DEFINE_integer("train_images", 10000, "Training images for the trials.")
_RETRAIN_EPOCHS = flags.DEFINE_integer("retrain_epochs", 8, "Epochs of the best's retraining.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only print the table.")
_RUNS = flags.DEFINE_string(
    "runs_dir", str(_ROOT / "benchmarks" / "results" / "runs" / "hypermodel_cifar10"),
    "Where nas_tf methods' search directories are kept (a killed search resumes there; "
    "benchmarks/pruning.py reads them); '' = a temporary directory.")
_CLUSTER = flags.DEFINE_string(
    "cluster", "", "Train nas_tf's trials on a tf.distribute cluster ('localhost:N'); "
    "its rows are named METHOD@CLUSTER.")


def build_model(hp):
  """A user's CIFAR-10 convnet space, written for KerasTuner."""
  import keras  # pylint: disable=g-import-not-at-top
  inputs = keras.Input((32, 32, 3))
  x = keras.layers.Rescaling(1 / 255.0)(inputs)
  for i in range(hp.Int("stages", 1, 3)):
    filters = hp.Choice(f"filters_{i}", [16, 32, 64])
    kernel = hp.Choice(f"kernel_{i}", [3, 5])
    if hp.Choice(f"conv_{i}", ["conv", "separable"]) == "conv":
      y = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
    else:
      y = keras.layers.SeparableConv2D(filters, kernel, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization()(y)
    y = keras.layers.ReLU()(y)
    if hp.Boolean(f"residual_{i}"):
      shortcut = keras.layers.Conv2D(filters, 1, use_bias=False)(x)
      y = keras.layers.Add()([y, shortcut])
    x = keras.layers.MaxPooling2D()(y)
  x = keras.layers.GlobalAveragePooling2D()(x)
  x = keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5, step=0.25))(x)
  outputs = keras.layers.Dense(10)(x)
  model = keras.Model(inputs, outputs)
  model.compile(keras.optimizers.Adam(hp.Float("lr", 3e-4, 1e-2, sampling="log")),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model


def load_data(seed: int = 0) -> dict:
  """Trials' training draw, the validation hold-out and the test set (uint8 images)."""
  from nas_tf.data import cifar10  # pylint: disable=g-import-not-at-top
  arrays = cifar10.load_cifar10_arrays(_DATA.value, cache_dir=cifar10.default_cache_dir())
  order = np.random.default_rng(seed).permutation(len(arrays["train_labels"]))
  val, rest = order[:5000], order[5000:]
  pick = rest[:_TRAIN.value]
  return {"x": arrays["train_images"][pick], "y": arrays["train_labels"][pick],
          "val": (arrays["train_images"][val], arrays["train_labels"][val]),
          "rest": (arrays["train_images"][rest], arrays["train_labels"][rest]),
          "test": (arrays["test_images"], arrays["test_labels"])}


def _kt_search(method: str, seed: int, data: dict, directory: str):
  import keras_tuner  # pylint: disable=g-import-not-at-top
  kwargs = dict(objective="val_accuracy", seed=seed, directory=directory,
                project_name=method, overwrite=True)
  if method == "kt-random":
    tuner = keras_tuner.RandomSearch(build_model, max_trials=_TRIALS.value, **kwargs)
  elif method == "kt-bayesian":
    tuner = keras_tuner.BayesianOptimization(build_model, max_trials=_TRIALS.value,
                                             **kwargs)
  else:
    tuner = keras_tuner.Hyperband(build_model, max_epochs=_EPOCHS.value * 3, factor=3,
                                  **kwargs)
  tuner.search(data["x"], data["y"], validation_data=data["val"], epochs=_EPOCHS.value,
               batch_size=64, verbose=0)
  trials = [t for t in tuner.oracle.trials.values() if t.score is not None]
  best = tuner.oracle.get_best_trials(1)[0]
  epochs = sum(int(t.hyperparameters.values.get("tuner/epochs", _EPOCHS.value)) -
               int(t.hyperparameters.values.get("tuner/initial_epoch", 0)) for t in trials)
  hp = {k: v for k, v in best.hyperparameters.values.items() if not k.startswith("tuner/")}
  return best.score, hp, len(trials), epochs


def _nas_tf_search(method: str, seed: int, data: dict, directory: str):
  from nas_tf import results  # pylint: disable=g-import-not-at-top
  from nas_tf.hypermodel import KerasSearch  # pylint: disable=g-import-not-at-top
  strategy, _, pruner = method.split("@")[0].split("-", 1)[1].partition("+")
  epochs = _PRUNED_EPOCHS.value if pruner else _EPOCHS.value
  search = KerasSearch(build_model, objective="val_accuracy", search=strategy,
                       max_trials=_TRIALS.value, seed=seed, output_dir=directory,
                       cluster=_CLUSTER.value or None, report=False,
                       # The study's rows were made with repeats (KerasSearch's default
                       # before every trial was distinct); kept so that they compare.
                       settings={"distinct": False,
                                 **({"pruner.kind": pruner} if pruner else {})})
  search.search(data["x"], data["y"], validation_data=data["val"], epochs=epochs,
                batch_size=64)
  best = search._ranked()[0]  # pylint: disable=protected-access
  hp = search.get_best_hyperparameters(1)[0].values
  records = results.read_records(os.path.join(directory, "results.jsonl"))
  trials = [{"val": r["val_metric"], "seconds": r["train_seconds"], "hp": r["spec"],
             "cpu_seconds": r["metrics"].get("train_cpu_seconds"),
             "epochs": len(r["metrics"].get("val_accuracy_history") or [])}
            for r in sorted(records, key=lambda r: r["step"])]
  return (best["val_metric"], dict(hp), _TRIALS.value, sum(t["epochs"] for t in trials),
          trials)


def retrain(hp_values: dict, data: dict, seed: int) -> float:
  """The best trial's model trained on all 40,000 non-held-out images, test accuracy."""
  import keras  # pylint: disable=g-import-not-at-top
  import keras_tuner  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  hp = keras_tuner.HyperParameters()
  build_model(hp)  # registers the space; then the winner's values
  hp.values.update(hp_values)
  model = build_model(hp)
  if not _RETRAIN_EPOCHS.value:
    return None  # --retrain_epochs=0: the search alone
  model.fit(*data["rest"], epochs=_RETRAIN_EPOCHS.value, batch_size=64, verbose=0)
  return float(model.evaluate(*data["test"], verbose=0, return_dict=True)["accuracy"])


def analyze() -> str:
  path = pathlib.Path(_OUT.value)
  rows = json.loads(path.read_text())["rows"] if path.exists() else []
  lines = ["| method | seeds | trials | trial epochs | best val acc | retrained test acc "
           "| search s |", "|---|---|---|---|---|---|---|"]
  seen = list(_METHODS.value)
  seen += [r["method"] for r in rows if r["method"] not in seen]  # e.g. METHOD@CLUSTER
  for method in dict.fromkeys(seen):
    mine = [r for r in rows if r["method"] == method]
    if not mine:
      continue
    def fmt(key, scale=100):
      v = np.array([np.nan if r[key] is None else r[key] for r in mine], float) * scale
      if np.isnan(v).all():
        return "–"
      return f"{v.mean():.1f}" + (f" ± {v.std(ddof=1):.1f}" if len(v) > 1 else "")
    lines.append(f"| {method} | {len(mine)} | {fmt('trials', 1)} | {fmt('epochs', 1)} | "
                 f"{fmt('best_val')} | {fmt('test_accuracy')} | {fmt('search_seconds', 1)} |")
  return "\n".join(lines) + "\n\n± : sample SD over seeds (n-1)."


def main(argv):
  del argv
  if not _ANALYZE.value:
    path = pathlib.Path(_OUT.value)
    out = json.loads(path.read_text()) if path.exists() else {
        "settings": {"train_images": _TRAIN.value, "epochs": _EPOCHS.value,
                     "max_trials": _TRIALS.value, "retrain_epochs": _RETRAIN_EPOCHS.value},
        "rows": []}
    done = {(r["method"], r["seed"]) for r in out["rows"]}
    data = None
    for seed in range(_SEEDS.value):
      for method in _METHODS.value:
        row_name = f"{method}@{_CLUSTER.value}" if (
            _CLUSTER.value and method.startswith("nas_tf-")) else method
        if (row_name, seed) in done:
          continue
        data = data if data is not None else load_data()
        t0 = time.monotonic()
        run = _kt_search if method.startswith("kt-") else _nas_tf_search
        kept = run is _nas_tf_search and _RUNS.value  # nas_tf runs are kept for pruning.py
        with (contextlib.nullcontext(os.path.join(
                  _RUNS.value, re.sub(r"[^\w.+-]+", "_", f"{row_name}-seed{seed}")))
              if kept else tempfile.TemporaryDirectory()) as directory:
          best_val, hp, trials, epochs, *per_trial = run(method, seed, data, directory)
        seconds = time.monotonic() - t0
        test = None if method.endswith("+none") else retrain(hp, data, seed)
        row = {"method": row_name, "seed": seed, "best_val": best_val, "hp": hp,
               "trials": trials, "epochs": epochs, "search_seconds": seconds,
               "test_accuracy": test}
        if per_trial:
          row["per_trial"] = per_trial[0]
        out["rows"].append(row)
        logging.info("%s seed %d: best val %.4f, retrained test %s (%d trials, %.0f s)",
                     row_name, seed, best_val, test, trials, seconds)
        path.write_text(json.dumps(out, indent=1) + "\n")
  print(analyze())


if __name__ == "__main__":
  app.run(main)
