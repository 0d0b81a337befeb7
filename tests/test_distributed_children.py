"""The closure trainer of distributed children follows lm_training's recipe rules.

No cluster here: the closures are run in this process by a stand-in coordinator, which
is what ``ClusterCoordinator.schedule`` + ``fetch`` amount to for one worker.
"""

import math
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from nas_tf.training import child as child_training
from nas_tf import config as config_lib
from nas_tf.training import closures as dc
from nas_tf.training import lm as lm_training
from nas_tf import specs as specs_lib
from nas_tf.data import ptb

ROOT = pathlib.Path(__file__).resolve().parent.parent
VOCAB = 10000  # PTB's: uniform guessing is log(10000) = 9.2 nats


def _run_checks(losses, unigram, recipe, steps_per_epoch, check_unigram=True):
  """Feeds ``losses`` (one per step, epochs of ``steps_per_epoch``) through ``lm_checks``.

  Returns ``(abort, value, step)`` at the first abort (1-based step), or ``(0, None, None)``.
  """
  checks = dc.lm_checks(recipe, VOCAB, steps_per_epoch, unigram)
  recent = excess = tf.zeros([recipe.divergence_window])
  for step, loss in enumerate(losses):
    epoch, k = divmod(step, steps_per_epoch)
    if k == 0:
      excess = tf.zeros([recipe.divergence_window])  # the step loop's buffer is per epoch
    abort, value, recent, excess = checks(
        tf.constant(loss, tf.float32), k % len(unigram), tf.constant(k), tf.constant(epoch),
        tf.constant(step, tf.int64), recent, excess, tf.constant(check_unigram))
    if int(abort) != dc.ABORT_NONE:
      return int(abort), float(value), step + 1
  return dc.ABORT_NONE, None, None


UNIGRAM = np.linspace(4.0, 5.0, 60).astype(np.float32)  # per-window unigram xent
RECIPE = lm_training.LMRecipe()  # window 20, unigram check at 1/3, margin 0.5, limits
PERSISTENT = math.log(VOCAB) + RECIPE.divergence_margin
SPIKE = 2 * math.log(VOCAB) + RECIPE.divergence_margin


def test_unigram_check_fires_once_at_a_third_of_the_first_epoch():
  abort, value, step = _run_checks(UNIGRAM + 0.8, UNIGRAM, RECIPE, 60)
  assert (abort, step) == (dc.ABORT_NOT_LEARNING, 20)  # max(window 20, ceil(60 / 3))
  assert value == pytest.approx(0.8, abs=1e-5)
  # Under the margin, switched off (the last attempt), or later than the check: no abort.
  assert _run_checks(UNIGRAM + 0.4, UNIGRAM, RECIPE, 60)[0] == dc.ABORT_NONE
  assert _run_checks(UNIGRAM + 0.8, UNIGRAM, RECIPE, 60, check_unigram=False)[0] == 0
  late = np.concatenate([UNIGRAM[:20], UNIGRAM[20:] + 3.0])
  assert _run_checks(late, UNIGRAM, RECIPE, 60)[0] == dc.ABORT_NONE
  # A longer epoch moves the check to a third of it.
  long_epoch = np.tile(UNIGRAM, 2) + 0.8
  assert _run_checks(long_epoch, UNIGRAM, RECIPE, 120)[2] == 40


def test_divergence_rules_match_train_lm():
  # A persistent loss above uniform guessing: once the window is full.
  abort, value, step = _run_checks([PERSISTENT + 0.5] * 30, UNIGRAM, RECIPE, 60,
                                   check_unigram=False)
  assert (abort, step) == (dc.ABORT_DIVERGED, 20)
  assert value == pytest.approx(PERSISTENT + 0.5, rel=1e-5)
  # One spike far above it, and a NaN: at once, the offending loss reported.
  losses = [4.0] * 5 + [SPIKE + 1.0] + [4.0] * 5
  assert _run_checks(losses, UNIGRAM, RECIPE, 60)[::2] == (dc.ABORT_DIVERGED, 6)
  assert _run_checks(losses, UNIGRAM, RECIPE, 60)[1] == pytest.approx(SPIKE + 1.0)
  assert _run_checks([4.0, float("nan")], UNIGRAM, RECIPE, 60)[::2] == (dc.ABORT_DIVERGED, 2)
  # The first window's loss is the initial weights': the once-limit starts at the second.
  assert _run_checks([SPIKE + 1.0] + [4.0] * 30, UNIGRAM, RECIPE, 60,
                    check_unigram=False)[0] == dc.ABORT_NONE
  # A single early spike below the once-limit is not a divergence (mean of few windows).
  assert _run_checks([PERSISTENT + 2] + [4.0] * 40, UNIGRAM, RECIPE, 60)[0] == 0
  # The recent-loss window spans epochs, as train_lm's deque does: 10 bad steps at the
  # end of epoch 1 and 10 at the start of epoch 2 make a full bad window.
  losses = [4.0] * 20 + [PERSISTENT + 0.5] * 20
  assert _run_checks(losses, UNIGRAM, RECIPE, 30, check_unigram=False)[::2] == (
      dc.ABORT_DIVERGED, 39)


class _InProcessCoordinator:
  """``schedule(fn, args).fetch()`` runs ``fn`` here; counts the closures."""

  def __init__(self):
    self.scheduled = []

  def schedule(self, fn, args):
    self.scheduled.append(args)
    out = fn(*args)

    class Remote:
      def fetch(self):
        return tf.nest.map_structure(lambda t: t.numpy(), out)
    return Remote()


def _lm_child(config, plan=None):
  data = ptb.load_ptb(ROOT / "testdata" / "ptb")
  arrays = dc.materialize(data, config, seed=0, sequence=True)
  coordinator = _InProcessCoordinator()
  iterator = iter(tf.data.Dataset.from_tensors(arrays.tensors()).repeat())
  [child] = dc.schedule_children(coordinator, iterator, [specs_lib.lstm_like_base2_spec()], arrays,
                                 config, seed=0, plans=None if plan is None else [plan])
  return child.result(), coordinator


def _lm_config(**overrides):
  base = dict(epochs=1, batch_size=4, num_steps=10, lm_units=16, lm_layers=1,
              optimizer="sgd", learning_rate=1.0, clipnorm=5.0, max_train_examples=2400,
              max_eval_examples=400)
  return config_lib.ChildTrainingConfig(**{**base, **overrides})


def test_a_diverging_child_restarts_at_lower_rates_then_is_reported_diverged():
  out, coordinator = _lm_child(_lm_config(learning_rate=1e4, clipnorm=0.0))
  assert out["status"] == "nan" and out["attempts"] == 3, out
  assert len(coordinator.scheduled) == 3
  # Each restart from the same initial weights, at 0.25x the rate; the last one unchecked.
  first, *rest = coordinator.scheduled
  for args in rest:
    for a, b in zip(first[1], args[1]):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert [float(a[3]) for a in coordinator.scheduled] == [1.0, 0.25, 0.0625]
  assert [bool(a[4]) for a in coordinator.scheduled] == [True, True, False]
  assert out["lr_used"] == pytest.approx(625.0)
  assert len(out["restarts"]) == 2 and all("diverged" in r for r in out["restarts"])
  assert "diverged" in out["error"]


def test_restart_decisions_and_result_match_the_in_process_trainer():
  """The same child, config and seed through child_training: same attempts, same rate.

  On the excerpt both restart twice on the unigram check (1.21, then 0.88 nats above it).
  """
  config = _lm_config()
  out, coordinator = _lm_child(config)
  data = ptb.load_ptb(ROOT / "testdata" / "ptb")
  local = child_training.train_and_evaluate(specs_lib.lstm_like_base2_spec(), data, config,
                                            seed=0)
  assert out["status"] == local["status"] == "ok", (out, local)
  assert out["attempts"] == local["attempts"] == len(coordinator.scheduled)
  assert out["lr_used"] == local["lr_used"]
  assert out["val_perplexity"] == pytest.approx(local["val_perplexity"], rel=1e-3)


def test_a_closure_measures_the_same_rungs_and_stops_where_the_local_trainer_stops():
  """A pruner's plan inside the closure's graph: the one-machine trainer's rung values,
  a promoted child that simply trains on, and a stop at the first rung it misses.

  Slow: seven short LSTM trainings (closure and local, three plans and a plain child),
  each compiled anew; the pairs must share data and seed to compare digit for digit.
  """
  from nas_tf.training.rungs import RungPlan  # pylint: disable=g-import-not-at-top
  config = _lm_config(divergence_retries=0)
  data = ptb.load_ptb(ROOT / "testdata" / "ptb")
  spec = specs_lib.lstm_like_base2_spec()
  open_plan = RungPlan(resources=(0.25, 0.5), bounds=(None, None), higher_is_better=False)
  plain, _ = _lm_child(config)
  promoted, _ = _lm_child(config, open_plan)
  local = child_training.train_and_evaluate(spec, data, config, seed=0, rungs=open_plan)
  assert promoted["pruned_at"] is None and promoted["status"] == "ok"
  assert promoted["val_perplexity"] == pytest.approx(plain["val_perplexity"], rel=1e-5)
  np.testing.assert_allclose(np.array(promoted["rungs"]), np.array(local["rungs"]),
                             rtol=1e-3)
  second = promoted["rungs"][1][1]
  shut = RungPlan(resources=(0.25, 0.5), bounds=(None, second - 1.0),
                  higher_is_better=False)
  stopped, coordinator = _lm_child(config, shut)
  assert len(coordinator.scheduled) == 1  # stopping is not a divergence: no restart
  assert stopped["status"] == "ok" and stopped["pruned_at"] == 0.5
  assert stopped["val_perplexity"] == pytest.approx(second, rel=1e-5)
  assert [v for _, v in stopped["rungs"]] == pytest.approx(
      [v for _, v in promoted["rungs"]], rel=1e-5)
  # Rungs measured on the first half of the validation windows, in both trainers.
  half = RungPlan(resources=(0.25, 0.5), bounds=(None, None), higher_is_better=False,
                  eval_fraction=0.5)
  on_half, _ = _lm_child(config, half)
  local_half = child_training.train_and_evaluate(spec, data, config, seed=0, rungs=half)
  np.testing.assert_allclose(np.array(on_half["rungs"]), np.array(local_half["rungs"]),
                             rtol=1e-3)
  assert on_half["rungs"][0][1] != pytest.approx(promoted["rungs"][0][1], rel=1e-3)
  assert on_half["val_perplexity"] == pytest.approx(plain["val_perplexity"], rel=1e-5)
