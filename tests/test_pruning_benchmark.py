"""benchmarks/pruning.py: a pruned run against an unpruned one, in the task's direction and
by CPU seconds where the records carry them."""

import json

import pytest


@pytest.fixture(scope="module")
def pruning(load_benchmark):
  return load_benchmark("pruning")


def _run(path, task, children):
  """children: (val_metric, wall s, cpu s or None, pruned_at or None, first-rung value)."""
  path.mkdir()
  (path / "config.json").write_text(json.dumps({"task": task}))
  with open(path / "results.jsonl", "w") as f:
    for k, (value, wall, cpu, pruned_at, rung) in enumerate(children):
      metrics = {"rungs": [[0.5, rung]]}
      if cpu is not None:
        metrics["train_cpu_seconds"] = cpu
      f.write(json.dumps({"step": k, "index": 0, "tokens": [k], "status": "ok",
                          "spec": {"kind": "hp", "values": [["k", k]], "version": 1},
                          "val_metric": value, "reward": value, "train_seconds": wall,
                          "pruned_at": pruned_at, "metrics": metrics}) + "\n")


def test_accuracy_is_higher_is_better_and_cpu_seconds_are_the_cost(pruning, tmp_path):
  # Same architectures (random search): the pruner stopped the 2nd and 4th at half.
  full = [(0.60, 100, 10, None, 0.40), (0.50, 100, 10, None, 0.30),
          (0.70, 100, 10, None, 0.45), (0.40, 100, 10, None, 0.20)]
  pruned = [(0.60, 300, 10, None, 0.40), (0.30, 150, 5, 0.5, 0.30),
            (0.70, 300, 10, None, 0.45), (0.20, 150, 5, 0.5, 0.20)]
  _run(tmp_path / "full", "cifar10", full)
  _run(tmp_path / "pruned", "cifar10", pruned)
  out = pruning.compare(str(tmp_path / "pruned"), str(tmp_path / "full"))
  assert out["metric"] == "higher is better"
  # CPU seconds: 30 against 40 (the wall clock, 900 against 400, grew with the load).
  assert out["seconds"] == {"pruned": 30, "full": 40, "clock": "cpu"}
  assert out["speedup"] == pytest.approx(40 / 30)
  # The best trained to the end within 30 CPU-s of the full run: its first three.
  assert out["best_at_equal_seconds"] == {"pruned": 0.70, "full": 0.70,
                                          "full_children_in_those_seconds": 3}
  assert out["full_top5_kept"] == 2  # of the 4 (all in the top 5), the 2 not stopped
  # Every full value is better (higher) than its first rung's.
  assert out["first_rung_vs_full"]["full_better_than_rung"] == 1.0


def test_without_cpu_seconds_the_wall_clock_is_the_cost(pruning, tmp_path):
  _run(tmp_path / "full", "ptb", [(450.0, 40, None, None, 900.0), (500.0, 40, None, None,
                                                                    800.0)])
  _run(tmp_path / "pruned", "ptb", [(450.0, 40, None, None, 900.0), (800.0, 10, None, 0.5,
                                                                     800.0)])
  out = pruning.compare(str(tmp_path / "pruned"), str(tmp_path / "full"))
  assert out["metric"] == "lower is better" and out["seconds"]["clock"] == "wall"
  assert out["best_at_equal_seconds"]["pruned"] == 450.0
  assert out["speedup"] == pytest.approx((2 / 50) / (2 / 80))


def _dense(hp):
  import keras  # pylint: disable=g-import-not-at-top
  model = keras.Sequential([keras.Input((4,)),
                            keras.layers.Dense(hp.Choice("units", [2, 8, 32]),
                                               activation=hp.Choice("act", ["relu", "tanh"])),
                            keras.layers.Dense(1)])
  model.compile(keras.optimizers.SGD(hp.Choice("lr", [0.001, 0.05])), "mse")
  return model


def test_keras_search_runs_compare_trial_for_trial_in_their_objectives_direction(
    pruning, tmp_path):
  """Two KerasSearch runs (random search, with and without a pruner) as the CIFAR-10
  user-space study makes them: the same trials, val_loss read as lower-is-better from
  what the trials were scored on (the build function's task cannot be loaded here)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from nas_tf import KerasSearch  # pylint: disable=g-import-not-at-top
  x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
  y = x @ np.array([1.0, -2.0, 0.5, 0.0], "float32")
  for name, kind in (("full", "none"), ("pruned", "successive_halving")):
    search = KerasSearch(_dense, objective="val_loss", search="random", max_trials=8,
                         seed=3, output_dir=str(tmp_path / name), report=False,
                         settings={"pruner.kind": kind})  # KerasSearch's warm-up: 3
    search.search(x[:192], y[:192], validation_data=(x[192:], y[192:]), epochs=3,
                  batch_size=32, verbose=0)
  summary = search.results_summary(8).splitlines()  # the pruned run's
  assert "stopped" not in summary[1] and "(stopped after 1 of 3 epochs)" in summary[-1]
  full, pruned = (pruning._records(str(tmp_path / n)) for n in ("full", "pruned"))
  assert [r["spec"] for r in full] == [r["spec"] for r in pruned]
  out = pruning.compare(str(tmp_path / "pruned"), str(tmp_path / "full"))
  assert out["metric"] == "lower is better" and out["seconds"]["clock"] == "cpu"
  assert out["children"] == {"pruned": 8, "full": 8}
  assert out["stopped"] == sum(r.get("pruned_at") is not None for r in pruned) >= 1
