"""Final training of a found architecture on the bundled testdata (both tasks)."""

import dataclasses
import json
import math
import os
import pathlib

import keras
import launch
import pytest

from nas_tf.training import final as ft
from nas_tf.training import optimizers
from nas_tf import tasks
from nas_tf import specs as specs_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "bin" / "nas_train"
CNN = specs_lib.CNNSpec(layers=(specs_lib.ConvLayer(3, 3, 8),
                                specs_lib.ConvLayer(3, 3, 8, stride=2, inputs=(0,)),
                                specs_lib.ConvLayer(1, 1, 8, inputs=(0, 1))))


def _config(task, tmp_path, **overrides):
  settings = tasks.get(task).final_defaults(tiny=True)
  settings.update(overrides)
  data = ROOT / "testdata" / ("ptb" if task == "ptb" else "cifar10/png")
  return ft.FinalTrainingConfig(task=task, data_dir=str(data),
                                output_dir=str(tmp_path / task), **settings)


def _check_outputs(config, metric):
  metrics = json.loads((pathlib.Path(config.output_dir) / "metrics.json").read_text())
  for split in ("val", "test"):
    assert math.isfinite(metrics[f"{split}_{metric}"]), metrics
  assert metrics["epochs_run"] == config.epochs and metrics["best_epoch"] >= 1
  out = pathlib.Path(config.output_dir)
  assert (out / "checkpoints" / "best.weights.h5").is_file()
  assert (out / "model.keras").is_file() and (out / "tensorboard").is_dir()
  assert not (out / "backup").exists()  # Removed once training completes.
  return metrics


def test_ptb_final_training_writes_finite_perplexities(tmp_path):
  config = _config("ptb", tmp_path, lm_units=8, steps_per_epoch=8, lr_schedule="step",
                   lr_decay_every=1, lr_decay_factor=0.5, early_stopping_patience=3)
  metrics = tasks.get(config.task).train_final(specs_lib.nascell_spec(), config)
  assert metrics == _check_outputs(config, "perplexity")
  assert 1 < metrics["val_perplexity"] < 10_000
  assert metrics["unigram_val_perplexity"] > 1  # the bar the model is judged against
  model = keras.saving.load_model(os.path.join(config.output_dir, "model.keras"))
  assert model.get_layer("tied_embedding") is not None  # Shared embeddings (§4.2).


def test_a_dead_cell_is_trained_with_a_warning_that_says_so(tmp_path, monkeypatch):
  # Base 2: both leaves multiply x W by h U + b (0 from the zero state), and so does the
  # root: exactly 0 with no gradient at every step (specs.dead_cell_reason).
  dead = specs_lib.RNNCellSpec(
      nodes=(specs_lib.TreeNode("elem_mult", "identity"), specs_lib.TreeNode("elem_mult", "tanh"),
             specs_lib.TreeNode("elem_mult", "identity")),
      inject_node=0, inject_combination="add", inject_activation="identity", cell_index=2)
  warnings = []
  monkeypatch.setattr(ft.logging, "warning", lambda msg, *a: warnings.append(msg % a))
  config = _config("ptb", tmp_path, lm_units=8, steps_per_epoch=4, epochs=1)
  metrics = tasks.get("ptb").train_final(dead, config)
  assert any(w.startswith("dead cell:") and "unigram" in w for w in warnings), warnings
  assert math.isfinite(metrics["val_perplexity"])  # trained all the same, as asked
  warnings.clear()
  tasks.get("ptb").train_final(specs_lib.nascell_spec(), _config("ptb", tmp_path / "n",
                                                                 lm_units=8, steps_per_epoch=4,
                                                                 epochs=1))
  assert not any(w.startswith("dead cell:") for w in warnings)


def test_cifar10_final_training_writes_finite_accuracies(tmp_path):
  config = _config("cifar10", tmp_path, dropout=0.2)
  metrics = tasks.get(config.task).train_final(CNN, config)
  _check_outputs(config, "accuracy")
  assert 0 <= metrics["val_accuracy"] <= 1 and 0 <= metrics["test_accuracy"] <= 1
  assert metrics["num_params"] > 0 and len(metrics["history"]["val_accuracy"]) == 2
  # The curve as it arrived, one row per epoch: the same values as the final history.
  rows = json.loads((pathlib.Path(config.output_dir) / "history.json").read_text())
  assert [r["epoch"] for r in rows] == [1, 2]
  assert [r["val_accuracy"] for r in rows] == pytest.approx(metrics["history"]["val_accuracy"])
  assert all(r["seconds"] > 0 for r in rows)


def test_the_epoch_log_keeps_earlier_epochs_across_a_resume(tmp_path):
  path = tmp_path / "history.json"
  first = ft.EpochLog(str(path), epochs=3, steps=2)
  first.on_epoch_begin(0)
  first.on_epoch_end(0, {"val_accuracy": 0.25, "accuracy": 0.5})
  resumed = ft.EpochLog(str(path), epochs=3, steps=2)  # a new process: from the file
  resumed.on_epoch_begin(1)
  resumed.on_epoch_end(1, {"val_accuracy": 0.5})
  resumed.on_epoch_end(1, {"val_accuracy": 0.75})  # an epoch run again replaces its row
  rows = json.loads(path.read_text())
  assert [(r["epoch"], r["val_accuracy"]) for r in rows] == [(1, 0.25), (2, 0.75)]


def test_the_hand_designed_baseline_trains_by_name_with_the_found_networks_recipe(tmp_path):
  """nas_train --cell=resnet20 --task=cifar10: He et al.'s ResNet-20, by name, through the
  classifier's final training (what §4.1 sets the found network against). Slow: a
  20-layer network is built, traced and trained (one epoch of 2 steps)."""
  config = _config("cifar10", tmp_path, epochs=1, steps_per_epoch=2)
  task = tasks.get("cifar10")
  task.check_spec("resnet20")
  with pytest.raises(ValueError, match="unknown baseline network 'resnet18'"):
    task.check_spec("resnet18")
  assert tasks.for_spec("resnet20") is task
  metrics = task.train_final("resnet20", config)
  _check_outputs(config, "accuracy")
  assert metrics["spec"] == {"cell": "resnet20"} and metrics["describe"] == (
      "baseline cell 'resnet20'")
  # He et al.'s count, by hand: a 3x3 stem conv (3 -> 16) and its batch norm; per stage of
  # width w (16, 32, 64), 3 blocks of two 3x3 convs and two batch norms, the first of
  # stages 2 and 3 reading w/2 channels and adding a 1x1 shortcut conv with batch norm;
  # then the classifier. Batch norm: 4 numbers a channel (2 trained, 2 statistics).
  stem = 3 * 3 * 3 * 16 + 4 * 16
  stages = 0
  for w in (16, 32, 64):
    first_in = w if w == 16 else w // 2
    stages += 9 * first_in * w + 5 * 9 * w * w  # the six 3x3 convs of the 3 blocks
    stages += 6 * 4 * w                          # their batch norms
    if w != 16:
      stages += first_in * w + 4 * w             # the 1x1 shortcut and its batch norm
  assert metrics["num_params"] == stem + stages + 64 * 10 + 10 == 274_042
  # nas_export --trained: the generic SavedModel of the trained network.
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from nas_tf.export import trained as export_trained  # pylint: disable=g-import-not-at-top
  manifest = export_trained.export_trained(task, config.output_dir, str(tmp_path / "x"))
  assert manifest["kind"] == "baseline" and manifest["describe"] == (
      "baseline cell 'resnet20'")  # as in metrics.json
  loaded = tf.saved_model.load(str(tmp_path / "x" / manifest["savedmodel"]))
  assert loaded.serve(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 10)


def test_a_finished_training_is_not_run_again(tmp_path, monkeypatch):
  """Rerunning a finished command returns its metrics; other settings are refused."""
  config = _config("ptb", tmp_path, lm_units=8, steps_per_epoch=4, epochs=1)
  task = tasks.get(config.task)
  metrics = task.train_final("lstm", config)
  model_bytes = (pathlib.Path(config.output_dir) / "model.keras").read_bytes()

  def no_data(*args, **kwargs):
    raise AssertionError("a finished training loaded its data again")

  monkeypatch.setattr(type(task), "load_data", no_data)
  moved = dataclasses.replace(config, output_dir=str(tmp_path / "moved"))
  os.rename(config.output_dir, moved.output_dir)
  assert task.train_final("lstm", moved) == metrics
  assert (pathlib.Path(moved.output_dir) / "model.keras").read_bytes() == model_bytes
  with pytest.raises(ValueError, match="epochs differ"):
    task.train_final("lstm", dataclasses.replace(moved, epochs=2))
  with pytest.raises(ValueError, match="spec differ"):
    task.train_final("nascell", moved)


def test_learning_rate_schedules():
  config = ft.FinalTrainingConfig(task="ptb", data_dir="x", output_dir="y", epochs=5,
                                  learning_rate=1.0, lr_schedule="step", lr_decay_every=2,
                                  lr_decay_factor=0.5)
  step = optimizers.learning_rate_schedule(config, steps_per_epoch=10)
  assert [float(step(s)) for s in (0, 19, 20, 39, 40, 49)] == [1, 1, .5, .5, .25, .25]
  cosine = optimizers.learning_rate_schedule(
      ft.FinalTrainingConfig(task="ptb", data_dir="x", output_dir="y", epochs=5,
                             learning_rate=1.0, lr_schedule="cosine"), steps_per_epoch=10)
  assert float(cosine(0)) == 1.0 and float(cosine(50)) == pytest.approx(0.0, abs=1e-6)


def test_bad_input_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="task 'ptb' trains 'rnn' architectures, but this is a 'cnn'"):
    tasks.get("ptb").train_final(CNN, _config("ptb", tmp_path))
  with pytest.raises(ValueError, match="task 'cifar10' trains 'cnn' architectures"):
    tasks.get("cifar10").train_final(specs_lib.nascell_spec(), _config("cifar10", tmp_path))
  with pytest.raises(ValueError, match="lr_schedule must be one of.*'linear'"):
    _config("ptb", tmp_path, lr_schedule="linear")
  with pytest.raises(ValueError, match=r"collapse_margin must be >= 0 \(0 = off\), got -0.5"):
    _config("ptb", tmp_path, collapse_margin=-0.5)
  with pytest.raises(FileNotFoundError, match="does not exist"):
    tasks.get("cifar10").train_final(CNN, dataclasses.replace(_config("cifar10", tmp_path),
                                            data_dir=str(tmp_path / "none")))


def test_binary_trains_a_search_result_and_rejects_the_other_task(tmp_path):
  """Slow: two nas_train processes side by side (a CNN training, and a refusal)."""
  spec_file = tmp_path / "cnn.json"
  spec_file.write_text(CNN.to_json())
  ok = launch.Popen(
      [BIN, f"--spec={spec_file}", f"--output_dir={tmp_path / 'ok'}",
       "--epochs=1", "--steps_per_epoch=2"], stdout=launch.DEVNULL, stderr=launch.PIPE, text=True)
  bad = launch.run([BIN, f"--spec={spec_file}", "--task=ptb",
                        f"--output_dir={tmp_path / 'bad'}"], capture_output=True,
                       text=True, timeout=120)
  stderr = ok.communicate(timeout=180)[1]
  assert ok.returncode == 0, stderr[-2000:]
  metrics = json.loads((tmp_path / "ok" / "metrics.json").read_text())
  assert metrics["task"] == "cifar10" and math.isfinite(metrics["test_accuracy"])
  assert bad.returncode != 0 and "Traceback" not in bad.stderr
  last = bad.stderr.strip().splitlines()[-1]
  assert last.startswith("nas_train: error: task 'ptb' trains 'rnn' architectures"), last


def test_a_cell_stuck_at_the_unigram_model_is_told_a_rate_it_has_not_tried():
  once = ft.unigram_warning(700.0, 686.9, lr_used=1.0, retry_factor=0.25, attempts=1)
  assert "at lr 1." in once and "--learning_rate=0.25 " in once
  # After two restarts (1 -> 0.25 -> 0.0625) the advice is the next rate down, not 0.25.
  late = ft.unigram_warning(700.0, 686.9, lr_used=0.0625, retry_factor=0.25, attempts=3)
  assert "after 2 restart(s)" in late and "--learning_rate=0.01562 " in late
