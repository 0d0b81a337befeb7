"""The language-model recipe of §4.2 (Zaremba et al. 2014): state, schedule, init, loss."""

import dataclasses
import json
import math
import pathlib

import keras
import numpy as np
import pytest

from nas_tf.training import child as child_training
from nas_tf import children
from nas_tf import config as config_lib
from nas_tf.training import final as ft
from nas_tf import tasks
from nas_tf.training import lm as lm_training
from nas_tf import specs as specs_lib
from nas_tf.data import ptb

ROOT = pathlib.Path(__file__).resolve().parent.parent
VOCAB = 50


def _model(cell="lstm", units=8, seed=0, init_scale=0.1, **kwargs):
  keras.utils.set_random_seed(seed)
  return children.build_language_model(cell, VOCAB, units, num_layers=2,
                                       init_scale=init_scale, return_state=True, **kwargs)


def _stream(n=2000, seed=0):
  return np.random.default_rng(seed).integers(0, VOCAB, size=n).astype(np.int32)


def test_carried_state_equals_one_long_window():
  """Evaluating windows in order with the state carried == one window per row."""
  ids = _stream()
  model = _model(init_scale=1.0)  # wide weights: the state visibly changes the outputs
  short = ptb.make_lm_windows(ids, batch_size=4, num_steps=5)
  n = short[0].shape[0]
  # The same tokens as one window of n * 5 steps per row.
  long = (np.concatenate(list(short[0]), axis=1)[None],
          np.concatenate(list(short[1]), axis=1)[None])
  carried = lm_training.evaluate_model(model, short, carry_state=True)
  whole = lm_training.evaluate_model(model, long, carry_state=True)
  reset = lm_training.evaluate_model(model, short, carry_state=False)
  assert carried == pytest.approx(whole, rel=1e-5)
  assert abs(carried - reset) > 1e-3  # the state matters, so the test can tell
  # Each evaluation pass starts from zero state: a second pass gives the same value.
  assert lm_training.evaluate_model(model, short, carry_state=True) == pytest.approx(carried)


def test_return_state_model_has_the_plain_models_weights_and_outputs():
  plain = children.build_language_model("lstm", VOCAB, 8, init_scale=0.1)
  stateful = _model()
  assert [w.shape for w in plain.get_weights()] == [w.shape for w in stateful.get_weights()]
  plain.set_weights(stateful.get_weights())
  tokens = keras.ops.convert_to_tensor(_stream(30).reshape(3, 10))
  zeros = lm_training.zero_states(stateful, 3)
  assert len(zeros) == 4  # two layers x [h, c]
  np.testing.assert_allclose(plain(tokens), stateful([tokens, *zeros])[0], atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "nascell", specs_lib.nascell_spec()])
def test_uniform_init_bounds_every_matrix(cell):
  model = _model(cell)
  for w in model.weights:
    values = np.asarray(w)
    if values.ndim == 2:  # embeddings, kernels, softmax
      assert np.abs(values).max() <= 0.1 + 1e-7, w.path
      assert values.std() > 0.03, w.path  # really U(-0.1, 0.1), not zeros
  # None keeps Keras' defaults (Glorot kernels are wider than 0.1 here).
  keras.utils.set_random_seed(0)
  default = children.build_language_model("lstm", VOCAB, 8)
  assert max(np.abs(np.asarray(w)).max() for w in default.weights if w.ndim == 2) > 0.1


def test_decay_schedules():
  recipe = lm_training.LMRecipe(lr_decay_start=2, lr_decay_factor=0.5)
  assert [recipe.learning_rate_at(e) for e in range(5)] == [1, 1, 0.5, 0.25, 0.125]
  assert recipe.learning_rate_at(3, base=0.25) == 0.25 * 0.25
  config = ft.FinalTrainingConfig(task="ptb", data_dir="x", output_dir="y", epochs=4,
                                  lr_schedule="decay_after", lr_decay_start=1,
                                  lr_decay_factor=0.8)
  assert [ft.epoch_learning_rate(config, e, 1.0) for e in range(3)] == pytest.approx(
      [1, 0.8, 0.64])
  step = ft.FinalTrainingConfig(task="ptb", data_dir="x", output_dir="y", epochs=4,
                                lr_schedule="step", lr_decay_every=2, lr_decay_factor=0.1)
  assert [ft.epoch_learning_rate(step, e, 1.0) for e in range(4)] == pytest.approx(
      [1, 1, 0.1, 0.1])


def _one_update(reduction):
  model = _model()
  before = [np.asarray(w) for w in model.trainable_weights]
  windows = ptb.make_lm_windows(_stream(200), batch_size=2, num_steps=6)
  windows = (windows[0][:1], windows[1][:1])
  recipe = lm_training.LMRecipe(learning_rate=0.05, clipnorm=0.0, loss_reduction=reduction)
  out = lm_training.train_lm(lambda: _model(), windows, {}, 1, recipe, VOCAB,
                             progress_seconds=0)
  return [np.asarray(w) - b for w, b in zip(out["model"].trainable_weights, before)]


def test_summed_loss_is_num_steps_times_the_mean_gradient():
  """Zaremba's loss sums over the window: one SGD step moves num_steps times further."""
  summed, mean = _one_update("sum"), _one_update("mean")
  moved = [k for k, d in enumerate(mean) if np.abs(d).max() > 1e-9]
  assert moved
  for k in moved:
    # float32 weights near 0.1 resolve steps to ~1e-8: compare at that resolution.
    np.testing.assert_allclose(summed[k], 6 * mean[k], rtol=1e-3,
                               atol=2e-7 + 1e-3 * np.abs(summed[k]).max())


def test_divergence_restarts_at_a_lower_rate_then_gives_up():
  windows = ptb.make_lm_windows(_stream(400), batch_size=2, num_steps=5)
  # A huge rate with no clipping blows the loss up; each restart is 1e-3 x lower.
  recipe = lm_training.LMRecipe(learning_rate=1e6, clipnorm=0.0, divergence_retries=2,
                                retry_lr_factor=1e-3, divergence_margin=0.5)
  out = lm_training.train_lm(lambda: _model(), windows, {"val": windows}, 1, recipe, VOCAB,
                             progress_seconds=0)
  assert out["diverged"] is None and out["model"] is not None
  assert out["attempts"] >= 2 and out["learning_rate"] == pytest.approx(
      1e6 * 1e-3 ** (out["attempts"] - 1))
  assert math.isfinite(out["history"]["val_loss"][-1])
  # The failed attempts' time counts: each built a model and took a first step.
  assert out["phases"]["build"] > 0 and out["phases"]["first_step"] > 0
  stubborn = lm_training.LMRecipe(learning_rate=1e6, clipnorm=0.0, divergence_retries=0,
                                  divergence_margin=0.5)
  out = lm_training.train_lm(lambda: _model(), windows, {}, 1, stubborn, VOCAB,
                             progress_seconds=0)
  assert out["model"] is None and out["attempts"] == 1 and "training loss" in out["diverged"]
  assert out["phases"]["first_step"] > 0


_REAL_STEPS = lm_training._Steps  # pylint: disable=protected-access


def _run_losses(monkeypatch, losses, recipe):
  """train_lm on 6 windows whose steps report ``losses``."""
  losses = iter(losses)

  class Steps(_REAL_STEPS):
    def __init__(self, model, optimizer, recipe):
      super().__init__(model, optimizer, recipe)
      real = self.train_step
      self.train_step = lambda x, y, s: (next(losses), real(x, y, s)[1], 0.0)

  windows = ptb.make_lm_windows(_stream(400), batch_size=2, num_steps=5)
  windows = (windows[0][:6], windows[1][:6])
  monkeypatch.setattr(lm_training, "_Steps", Steps)
  return lm_training.train_lm(lambda: _model(), windows, {}, 1, recipe, VOCAB,
                              progress_seconds=0)


def test_one_early_spike_is_not_a_divergence(monkeypatch):
  """A single window above uniform (normal at lr 1 early on) does not restart training."""
  # The unigram check is off: this is about the divergence test alone (6 windows of a
  # random stream are too few to say what the unigram model is).
  recipe = lm_training.LMRecipe(divergence_window=3, divergence_margin=1.0, unigram_check=0)
  # log(50) + 1 = 4.9: one spike, then fine
  out = _run_losses(monkeypatch, [3.0, 6.0, 3.5, 3.4, 3.3, 3.2], recipe)
  assert out["attempts"] == 1 and out["diverged"] is None


def test_the_once_limit_starts_with_the_second_window(monkeypatch):
  """The first loss is the initial weights': above 2 log(V) + 1 it restarts nothing."""
  recipe = lm_training.LMRecipe(divergence_window=6, divergence_margin=1.0, unigram_check=0,
                                divergence_retries=1)
  once = 2 * math.log(VOCAB) + 1.0  # 8.8
  out = _run_losses(monkeypatch, [once + 3, 3.0, 3.5, 3.4, 3.3, 3.2], recipe)
  assert out["attempts"] == 1 and out["diverged"] is None
  out = _run_losses(monkeypatch, [3.0, once + 3] + [3.0] * 10, recipe)
  assert out["attempts"] == 2 and "at epoch 1 step 2" in out["restarts"][0]


def test_recipe_learns_and_child_metrics_report_it():
  """On the PTB excerpt the recipe beats the unigram model of the same text."""
  data = ptb.load_ptb(ROOT / "testdata" / "ptb")
  config = config_lib.ChildTrainingConfig(epochs=2, batch_size=8, optimizer="sgd",
                                          learning_rate=1.0, clipnorm=5.0, lm_units=16,
                                          num_steps=10, weight_decay=0.0)
  out = child_training.train_and_evaluate("lstm", data, config, seed=0)
  assert out["status"] == "ok", out
  assert out["attempts"] == 1 and out["lr_used"] == 1.0
  assert len(out["val_perplexity_history"]) == 2
  valid = data.split("valid")
  counts = np.bincount(data.split("train"), minlength=len(data.vocab)) + 1.0
  unigram = float(np.exp(-np.mean(np.log(counts[valid] / counts.sum()))))
  assert out["val_perplexity"] < unigram, (out, unigram)
  # Where its time went: every phase measured, together no more than the child's time.
  phases = out["phase_seconds"]
  assert set(phases) == {"build", "first_step", "train", "eval"}
  assert all(v > 0 for v in phases.values()), phases
  assert sum(phases.values()) <= out["train_seconds"]
  assert 0 < out["train_cpu_seconds"]  # this process's CPU meanwhile (threads summed)


def _train_until_killed_after_first_save(config, monkeypatch):
  """Final training of the LSTM, killed right after its first backup is written."""
  save = ft._LMBackup.save  # pylint: disable=protected-access

  def save_then_die(self, epoch, *args):
    save(self, epoch, *args)
    raise KeyboardInterrupt("killed after the first saved epoch")

  with monkeypatch.context() as patch:
    patch.setattr(ft._LMBackup, "save", save_then_die)  # pylint: disable=protected-access
    with pytest.raises(KeyboardInterrupt):
      tasks.get(config.task).train_final("lstm", config)


def test_final_lm_training_resumes_after_an_interruption(tmp_path, monkeypatch):
  settings = tasks.get("ptb").final_defaults(tiny=True)
  settings.update(lm_units=8, steps_per_epoch=4, epochs=2)
  config = ft.FinalTrainingConfig(task="ptb", data_dir=str(ROOT / "testdata" / "ptb"),
                                  output_dir=str(tmp_path / "lm"), **settings)
  _train_until_killed_after_first_save(config, monkeypatch)
  state = json.loads((tmp_path / "lm" / "backup" / "state.json").read_text())
  assert state["epoch"] == 1
  metrics = tasks.get(config.task).train_final("lstm", config)
  assert metrics["epochs_run"] == 2 and metrics["history"]["loss"][0] == state["history"][
      "loss"][0]
  assert metrics["history"]["lr"] == [1.0, 0.5]  # decay_after 1 epoch (tiny preset)
  assert metrics["spec"] == {"cell": "lstm"} and not (tmp_path / "lm" / "backup").exists()
  model = keras.saving.load_model(tmp_path / "lm" / "model.keras")
  assert len(model.inputs) == 1  # the plain tokens -> logits model is what is saved


def test_final_lm_training_restarts_lower_and_a_resume_keeps_the_lower_rate(
    tmp_path, monkeypatch):
  """nas_train restarts a diverging run at a lower rate, and a crash does not undo that.

  Slow: three small final trainings (a restart then a crash, the resume, a failure).
  """
  settings = tasks.get("ptb").final_defaults(tiny=True)
  # 1e4 without clipping diverges at once; the restart (x 1e-4) is the tiny preset's 1.0.
  settings.update(lm_units=8, steps_per_epoch=4, epochs=2, learning_rate=1e4, clipnorm=0.0,
                  retry_lr_factor=1e-4, divergence_retries=1, unroll=True)
  config = ft.FinalTrainingConfig(task="ptb", data_dir=str(ROOT / "testdata" / "ptb"),
                                  output_dir=str(tmp_path / "lm"), **settings)
  _train_until_killed_after_first_save(config, monkeypatch)
  attempt = json.loads((tmp_path / "lm" / "backup" / "attempt.json").read_text())
  assert attempt["learning_rate"] == pytest.approx(1.0) and len(attempt["restarts"]) == 1
  metrics = tasks.get(config.task).train_final("lstm", config)
  assert metrics["lr_used"] == pytest.approx(1.0) and metrics["attempts"] == 2
  assert metrics["restarts"] == attempt["restarts"] and metrics["epochs_run"] == 2
  assert metrics["history"]["lr"] == pytest.approx([1.0, 0.5])  # resumed, not restarted
  assert math.isfinite(metrics["val_perplexity"])
  # With no retries left the same divergence is an error that says what to change.
  stubborn = dataclasses.replace(config, output_dir=str(tmp_path / "stubborn"),
                                 divergence_retries=0)
  with pytest.raises(RuntimeError, match="--divergence_retries"):
    tasks.get(stubborn.task).train_final("lstm", stubborn)
  assert not (tmp_path / "stubborn" / "backup").exists()  # a rerun starts from its flags


def test_a_late_divergence_rolls_back_to_the_last_epoch_not_to_the_start(tmp_path,
                                                                       monkeypatch):
  """Epoch 2 of 3 diverges (its rate is made 1e4 without clipping); the run goes on from
  epoch 1's weights at a quarter of the rate instead of starting over."""
  settings = tasks.get("ptb").final_defaults(tiny=True)
  settings.update(lm_units=8, steps_per_epoch=4, epochs=3, clipnorm=0.0, divergence_retries=1)
  config = ft.FinalTrainingConfig(task="ptb", data_dir=str(ROOT / "testdata" / "ptb"),
                                  output_dir=str(tmp_path / "lm"), **settings)
  base = config.learning_rate
  monkeypatch.setattr(ft, "epoch_learning_rate",
                      lambda c, epoch, b: 1e4 if (epoch == 1 and b == base) else b)
  metrics = tasks.get(config.task).train_final("lstm", config)
  assert metrics["attempts"] == 2 and "at epoch 2" in metrics["restarts"][0]
  # Epoch 1 is the first attempt's (at the configured rate), epochs 2-3 the rollback's.
  assert metrics["history"]["lr"] == pytest.approx([base, base / 4, base / 4])
  assert metrics["epochs_run"] == 3 and math.isfinite(metrics["val_perplexity"])
  assert metrics["lr_used"] == pytest.approx(base / 4)


def test_an_epoch_that_worsens_validation_is_undone_at_a_lower_rate(tmp_path, monkeypatch):
  """Validation perplexity 148 after epoch 1, then 245 (+65%, over the 10% margin): epoch
  2 is undone, the run goes on from epoch 1 at a quarter of the rate; with no restart
  left the same rise stands, with a warning."""
  settings = tasks.get("ptb").final_defaults(tiny=True)
  settings.update(lm_units=8, steps_per_epoch=4, epochs=3, divergence_retries=1)
  config = ft.FinalTrainingConfig(task="ptb", data_dir=str(ROOT / "testdata" / "ptb"),
                                  output_dir=str(tmp_path / "lm"), **settings)
  base = config.learning_rate
  real = lm_training.evaluate
  scripted = iter([5.0, 5.5, 4.9, 4.8])  # val loss after each epoch; then real passes
  monkeypatch.setattr(lm_training, "evaluate", lambda steps, windows, carry: next(
      scripted, None) or real(steps, windows, carry))
  metrics = tasks.get(config.task).train_final("lstm", config)
  assert metrics["attempts"] == 2 and metrics["restarts"][0].startswith(
      "validation perplexity 244.7 after epoch 2, 148.4 after the one before (limit: 10% "
      "worse) with lr")
  assert metrics["history"]["val_loss"] == pytest.approx([5.0, 4.9, 4.8])
  rates = [base, base / 4, base / 4]  # each epoch's base: the configured rate, then 1/4
  assert metrics["history"]["lr"] == pytest.approx(
      [ft.epoch_learning_rate(config, e, b) for e, b in enumerate(rates)])
  assert metrics["lr_used"] == pytest.approx(base / 4)
  # No restart left: the worse epoch is kept (and the best checkpoint is epoch 1's).
  scripted = iter([5.0, 5.5, 5.4])
  kept = tasks.get(config.task).train_final("lstm", dataclasses.replace(
      config, output_dir=str(tmp_path / "kept"), divergence_retries=0))
  assert kept["attempts"] == 1 and kept["history"]["val_loss"] == pytest.approx(
      [5.0, 5.5, 5.4]) and kept["best_epoch"] == 1


def test_a_failed_attempts_backup_is_never_resumed(tmp_path):
  """A crash between recording a restart and relabelling the old state resumes nothing
  old, and the stale state is deleted: a later restart cannot adopt it either."""
  backup_dir = tmp_path / "backup"
  backup_dir.mkdir()
  (backup_dir / "attempt.json").write_text(json.dumps(
      {"configured_lr": 1.0, "learning_rate": 0.25, "restarts": ["diverged"]}))
  (backup_dir / "state.json").write_text(json.dumps(
      {"epoch": 3, "learning_rate": 1.0, "history": {}}))
  backup = ft._LMBackup(str(backup_dir), 1.0)  # pylint: disable=protected-access
  assert (backup.base_lr, backup.restarts) == (0.25, ["diverged"])
  assert backup.restore(None, None) == (0, None)  # the lr-1 state is not this attempt's
  assert not (backup_dir / "state.json").exists()
  # Had it stayed, a restart of the new attempt before its first epoch must not adopt it.
  (backup_dir / "state.json").write_text(json.dumps(
      {"epoch": 3, "learning_rate": 1.0, "history": {}}))
  assert backup.restart(0.0625, ["diverged", "diverged again"]) == 0
  assert not (backup_dir / "state.json").exists()
  # Its own last epoch, though, is rolled back to at the new rate.
  (backup_dir / "state.json").write_text(json.dumps(
      {"epoch": 2, "learning_rate": 0.0625, "history": {}}))
  assert backup.restart(0.015625, ["d", "d", "d"]) == 2
  assert json.loads((backup_dir / "state.json").read_text())["learning_rate"] == 0.015625
  # A new --learning_rate makes the old attempts irrelevant.
  assert ft._LMBackup(str(backup_dir), 0.5).base_lr == 0.5  # pylint: disable=protected-access


def test_dead_cell_is_not_trained_and_gets_the_failure_reward(monkeypatch):
  """A provably dead cell (specs.dead_cell_reason) comes back 'degenerate' without training."""
  from nas_tf import rewards  # pylint: disable=g-import-not-at-top
  dead = specs_lib.RNNCellSpec(
      nodes=(specs_lib.TreeNode("elem_mult", "identity"),
             specs_lib.TreeNode("elem_mult", "tanh"),
             specs_lib.TreeNode("elem_mult", "identity")),
      inject_node=0, inject_combination="add", inject_activation="identity", cell_index=2)
  assert specs_lib.is_dead_cell(dead)

  def no_build(*args, **kwargs):
    raise AssertionError("a dead cell must not be built or trained")

  monkeypatch.setattr(children, "build_language_model", no_build)
  data = ptb.load_ptb(ROOT / "testdata" / "ptb")
  config = config_lib.ChildTrainingConfig(epochs=1, batch_size=8, lm_units=8, num_steps=10)
  out = child_training.train_and_evaluate(dead, data, config, seed=0)
  assert out["status"] == child_training.STATUS_DEGENERATE
  assert out["error"].startswith("dead cell:")
  assert out["train_seconds"] < 1.0
  assert "val_perplexity" not in out
  # No perplexity: the PTB reward is the failure reward (and the search scores every
  # status but 'ok' with it anyway).
  assert rewards.ptb_reward(out.get("val_perplexity", math.nan)) == rewards.FAILURE_REWARD
  assert json.loads(json.dumps(out)) == out  # strict JSON for the records


def test_unigram_xent_is_the_frequency_model_of_each_window():
  targets = np.array([[[0, 0], [0, 1]], [[1, 1], [2, 2]]])  # 2 windows, batch 2, 2 steps
  # counts 0:3, 1:3, 2:2 of 8 tokens.
  expected = [-(3 * math.log(3 / 8) + math.log(3 / 8)) / 4,
              -(2 * math.log(3 / 8) + 2 * math.log(2 / 8)) / 4]
  np.testing.assert_allclose(lm_training.unigram_xent(targets, 5), expected)


def _unigram_check_run(monkeypatch, loss_for_lr, epochs=1, **recipe_kwargs):
  """Trains on 60 windows whose steps report ``loss_for_lr(lr, unigram xent of the window)``."""
  windows = ptb.make_lm_windows(_stream(2000), batch_size=2, num_steps=5)
  windows = (windows[0][:60], windows[1][:60])
  counts = np.bincount(windows[1].ravel(), minlength=VOCAB)
  log_p = np.log(np.maximum(counts, 1) / counts.sum())

  class Steps(lm_training._Steps):  # pylint: disable=protected-access
    def __init__(self, model, optimizer, recipe):
      super().__init__(model, optimizer, recipe)
      real = self.train_step

      def step(x, y, s):
        unigram = float(-log_p[y.numpy()].mean())
        return (loss_for_lr(float(optimizer.learning_rate), unigram), real(x, y, s)[1], 0.0)

      self.train_step = step

  monkeypatch.setattr(lm_training, "_Steps", Steps)
  recipe = lm_training.LMRecipe(divergence_window=10, **recipe_kwargs)
  return lm_training.train_lm(lambda: _model(), windows, {}, epochs, recipe, VOCAB,
                              progress_seconds=0)


def test_loss_above_the_unigram_restarts_at_a_lower_rate(monkeypatch):
  # 0.8 nats above the unigram at lr 1 (below the uniform-guess limit of log(50) + 1), on it at lr 0.25: one restart.
  out = _unigram_check_run(monkeypatch, lambda lr, u: u + (0.8 if lr > 0.5 else 0.0))
  assert out["attempts"] == 2 and out["learning_rate"] == pytest.approx(0.25)
  assert out["diverged"] is None and out["model"] is not None
  assert len(out["restarts"]) == 1 and "above the unigram" in out["restarts"][0]
  # Checked once, at a third of the 60 windows: the loss was averaged over windows 11-20.
  assert "windows 11-20" in out["restarts"][0]


def test_the_last_attempt_is_not_checked_against_the_unigram(monkeypatch):
  out = _unigram_check_run(monkeypatch, lambda lr, u: u + 0.8, divergence_retries=2)
  assert out["attempts"] == 3 and out["learning_rate"] == pytest.approx(1 / 16)
  assert out["model"] is not None and out["diverged"] is None
  assert len(out["restarts"]) == 2


@pytest.mark.parametrize("excess, unigram_check, attempts", [
    (0.4, 1 / 3, 1),  # on the plateau, below the margin: a slow learner keeps its rate
    (0.8, 0.0, 1),    # the check is off
    (0.8, 0.5, 2),    # checked at window 30 instead
])
def test_unigram_check_margin_and_switch(monkeypatch, excess, unigram_check, attempts):
  out = _unigram_check_run(monkeypatch, lambda lr, u: u + (excess if lr > 0.5 else 0.0),
                           unigram_check=unigram_check)
  assert out["attempts"] == attempts and len(out["restarts"]) == attempts - 1
  if attempts == 2:
    assert "windows 21-30" in out["restarts"][0]


def _learns_then(after, at=40):
  """At lr 1: 0.8 nats below the unigram model, then ``after`` from window ``at`` on;
  at lower rates: 0.8 below throughout."""
  def loss(lr, u, calls=[0]):  # pylint: disable=dangerous-default-value
    calls[0] += 1
    return u + (after if lr > 0.5 and (calls[0] - 1) % 60 >= at else -0.8)
  return loss


@pytest.mark.parametrize("after, margin, attempts", [
    (0.3, 0.5, 2),    # learned, then rose above the unigram model: restarted at lr 0.25
    (0.3, None, 1),   # the watch is off (search children)
    (-0.1, 0.5, 1),   # rose by 0.7 but stayed below the unigram model: still learning
    (0.3, 1.5, 1),    # above it, but less than the margin above its best
])
def test_a_run_that_learns_then_collapses_restarts(monkeypatch, after, margin, attempts):
  out = _unigram_check_run(monkeypatch, _learns_then(after), collapse_margin=margin)
  assert out["attempts"] == attempts and out["diverged"] is None
  if attempts == 2:
    assert out["learning_rate"] == pytest.approx(0.25)
    # Window 41 is the first at 0.3 above: the 10-window mean passes zero at window 48.
    assert "windows 39-48 of epoch 1, after -0.8" in out["restarts"][0]


def test_a_collapse_in_a_later_epoch_restarts(monkeypatch):
  calls = [0]

  def loss(lr, u):
    calls[0] += 1
    return u + (0.3 if lr > 0.5 and calls[0] > 70 else -0.8)  # from epoch 2, window 11
  out = _unigram_check_run(monkeypatch, loss, epochs=2, collapse_margin=0.5)
  assert out["attempts"] == 2 and "of epoch 2, after -0.8" in out["restarts"][0]
  assert len(out["history"]["loss"]) == 2  # the restart trained both epochs at lr 0.25


def test_recipe_rejects_bad_unigram_check():
  with pytest.raises(ValueError, match="unigram_check"):
    lm_training.LMRecipe(unigram_check=1.0)
  with pytest.raises(ValueError, match="unigram_margin"):
    lm_training.LMRecipe(unigram_margin=0.0)
  with pytest.raises(ValueError, match="collapse_margin must be > 0 or None, got -1"):
    lm_training.LMRecipe(collapse_margin=-1)


def test_unigram_perplexity_is_the_bar_of_word_frequencies():
  train = np.array([[0, 0, 1, 1]])
  assert lm_training.unigram_perplexity(train, np.array([0, 1]), 3) == pytest.approx(2.0)
  # An unseen word counts once: p = 1/4, so perplexity 4 on it alone.
  assert lm_training.unigram_perplexity(train, np.array([2]), 3) == pytest.approx(4.0)


def test_one_trace_per_child_is_not_reported_as_frequent_retracing(monkeypatch):
  """Children of one worker process each trace their own steps: TensorFlow must not warn."""
  import logging  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # pylint: disable-next=g-import-not-at-top
  from tensorflow.python.eager.polymorphic_function import polymorphic_function as pf
  # TensorFlow warns at most twice per code object and process: earlier tests of this
  # worker must not have used the warnings up, or this test could not fail.
  monkeypatch.setattr(pf, "_frequent_tracing_detector_manager",
                      type(pf._frequent_tracing_detector_manager)())  # pylint: disable=protected-access
  records = []
  handler = logging.Handler()
  handler.emit = records.append
  tf.get_logger().addHandler(handler)
  windows = ptb.make_lm_windows(_stream(200), batch_size=2, num_steps=6)
  windows = (windows[0][:2], windows[1][:2])
  recipe = lm_training.LMRecipe(learning_rate=0.05)
  try:
    for seed in range(6):  # the detector warns at 5 traces of one code object
      lm_training.train_lm(lambda s=seed: _model(units=4, seed=s), windows, {}, 1, recipe,
                           VOCAB, progress_seconds=0)
  finally:
    tf.get_logger().removeHandler(handler)
  assert not [r for r in records if "retracing" in r.getMessage()]
