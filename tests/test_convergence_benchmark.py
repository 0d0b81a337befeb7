"""benchmarks/convergence.py: reading finished and running trainings, the per-model summary."""

import json
import math

import pytest


@pytest.fixture(scope="module")
def conv(load_benchmark):
  return load_benchmark("convergence")


def _ptb_done(path, val, test, restarts=()):
  path.mkdir(parents=True)
  (path / "metrics.json").write_text(json.dumps({
      "history": {"val_perplexity": val, "loss": [0.0] * len(val)},
      "test_perplexity": test, "restarts": list(restarts), "train_seconds": 10.0}))


def test_ptb_runs_finished_and_running(conv, tmp_path):
  _ptb_done(tmp_path / "lstm-s0", [180.0, 140.0, 120.0], 113.0)
  _ptb_done(tmp_path / "lstm-s1", [182.0, 141.0, 121.0], 115.0)
  _ptb_done(tmp_path / "found-s0", [200.0, 350.0, float("nan")], 190.0, restarts=["x"])
  running = tmp_path / "nascell-s0" / "backup"
  running.mkdir(parents=True)
  (running / "state.json").write_text(json.dumps({"epoch": 2, "history": {
      "val_loss": [math.log(236.0), math.log(175.0)], "epoch_seconds": [5.0, 7.0]}}))
  (tmp_path / "lstm-epoch1").mkdir()  # not MODEL-sSEED: ignored
  (tmp_path / "empty-s3").mkdir()     # no history yet: ignored
  runs = conv.collect(tmp_path, "ptb")
  assert [(r["model"], r["seed"]) for r in runs] == [
      ("found", 0), ("lstm", 0), ("lstm", 1), ("nascell", 0)]
  found, _, _, nascell = runs
  # Lower is better; a non-finite epoch is kept as a gap, never the best.
  assert found["best_val"] == 200.0 and found["best_epoch"] == 1
  assert found["val"][2] is None and found["restarts"] == 1
  assert nascell["val"] == pytest.approx([236.0, 175.0])
  assert not nascell["complete"] and nascell["test"] is None and nascell["seconds"] == 12.0
  models = conv.summarize(runs)
  assert models["lstm"]["test_mean"] == pytest.approx(114.0)
  assert models["lstm"]["test_sd"] == pytest.approx(2 ** 0.5)   # n-1
  assert models["found"]["test_sd"] is None                     # one seed: no SD
  assert models["nascell"]["test_mean"] is None and models["nascell"]["complete_seeds"] == []
  assert "| nascell | 0 | 2 | 236.0 / 175.0 / – / – / 175.0 | 175.0 (2) | running | 0 |" in (
      conv.table(runs, "ptb"))
  conv.plot(runs, "ptb", tmp_path / "curves.png")
  assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_cifar_history_higher_is_better_and_gaps_are_errors(conv, tmp_path):
  run = tmp_path / "resnet20-s1"
  run.mkdir()
  (run / "history.json").write_text(json.dumps(
      [{"epoch": 2, "val_accuracy": 0.6, "seconds": 3.0},
       {"epoch": 1, "val_accuracy": 0.4, "seconds": 2.0},
       {"epoch": 3, "val_accuracy": 0.55, "seconds": 4.0}]))
  (r,) = conv.collect(tmp_path, "cifar10")
  assert r["val"] == [0.4, 0.6, 0.55] and r["best_epoch"] == 2 and r["seconds"] == 9.0
  assert not r["complete"]
  (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.71}))
  (r,) = conv.collect(tmp_path, "cifar10")
  assert r["complete"] and r["test"] == 0.71
  (run / "history.json").write_text(json.dumps([{"epoch": 1, "val_accuracy": 0.4},
                                                {"epoch": 3, "val_accuracy": 0.5}]))
  with pytest.raises(ValueError, match=r"skips an epoch: \[1, 3\]"):
    conv.collect(tmp_path, "cifar10")
