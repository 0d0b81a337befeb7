"""Controller maths: analytic entropies/log-probs, teacher forcing, seeding, learning."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from nas_tf import controller as controller_lib
from nas_tf import reinforce
from nas_tf import search_space as ss
from nas_tf import specs


def _zero_weights(c):
  for w in c.weights:
    if "seed" not in w.path:
      w.assign(tf.zeros_like(w))


def _uniform_log_size(space):
  """sum over slots of log(#choices), with log 2 per skip decision."""
  total = 0.0
  for slot in space.schema():
    if isinstance(slot, ss.AnchorSlot):
      total += slot.width * np.log(2)
    else:
      total += np.log(slot.num_choices)
  return total


@pytest.mark.parametrize("space", [ss.CNNSearchSpace(num_layers=4, strides=(1, 2, 3)),
                                   ss.RNNCellSearchSpace(base=4)], ids=["cnn", "rnn"])
def test_zero_logits_give_uniform_policy(space):
  c = controller_lib.Controller(space)
  _zero_weights(c)
  _, log_probs, entropies = c.sample(5, seed=3)
  expected = _uniform_log_size(space)
  np.testing.assert_allclose(entropies.numpy(), expected, rtol=1e-5)
  np.testing.assert_allclose(log_probs.numpy(), -expected, rtol=1e-5)
  if isinstance(space, ss.CNNSearchSpace):
    # 0+1+2+3 skip decisions, each log 2.
    skips = sum(s.width for s in space.schema() if isinstance(s, ss.AnchorSlot))
    assert skips == 6


def test_log_prob_of_sample_equals_teacher_forcing():
  for space in (ss.CNNSearchSpace(), ss.RNNCellSearchSpace()):
    c = controller_lib.Controller(space)
    specs_, lp, ent = c.sample(6, seed=11)
    lp2, ent2 = c.log_prob(specs_)
    np.testing.assert_allclose(lp.numpy(), lp2.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent.numpy(), ent2.numpy(), rtol=1e-5, atol=1e-5)


def test_one_loop_teacher_forcing_equals_the_unrolled_walk_with_gradients(monkeypatch):
  """The categorical-only fast path (one time loop) is the unrolled walk's maths."""
  # base 4: at the one-loop threshold, and a cheaper unrolled trace than base 8.
  assert len(ss.RNNCellSearchSpace(base=4).schema()) >= controller_lib._ONE_LOOP_MIN_SLOTS  # pylint: disable=protected-access
  for space in (ss.RNNCellSearchSpace(base=4), ss.NB201SearchSpace()):
    c = controller_lib.Controller(space, seed=3)
    tokens, _, _ = c.sample_tokens(5, seed=7)
    advantages = tf.constant([1.0, -2.0, 0.5, 3.0, -1.0])
    results = []
    for fast in (True, False):
      with tf.GradientTape() as tape:
        if fast:
          lp, ent = c._teacher_force(space, tokens)  # pylint: disable=protected-access
        else:
          _, lp, ent = c._run(space, 5, tokens=tokens)  # pylint: disable=protected-access
        loss = -tf.reduce_sum(advantages * lp) - 0.1 * tf.reduce_sum(ent)
      grads = tape.gradient(loss, c.trainable_variables)
      # None (unrolled) or zeros (one loop): a weight no loss term reads, e.g. the
      # embedding of a token type that only ever comes last.
      results.append((lp, ent, [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
                                for g, v in zip(grads, c.trainable_variables)]))
    (lp, ent, grads), (lp2, ent2, grads2) = results
    np.testing.assert_allclose(lp.numpy(), lp2.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ent.numpy(), ent2.numpy(), rtol=1e-5, atol=1e-5)
    assert len(grads) == len(grads2)
    for g, g2, v in zip(grads, grads2, c.trainable_variables):
      np.testing.assert_allclose(g.numpy(), g2.numpy(), rtol=1e-4, atol=1e-6, err_msg=v.path)
    # log_prob_tokens takes the one loop for long schemas only (NAS-Bench-201: 6 slots).
    calls = []
    real = controller_lib.Controller._teacher_force  # pylint: disable=protected-access
    monkeypatch.setattr(controller_lib.Controller, "_teacher_force",
                        lambda self, *args: calls.append(1) or real(self, *args))
    np.testing.assert_allclose(c.log_prob_tokens(tokens)[0].numpy(), lp.numpy(), rtol=1e-5)
    assert len(calls) == (len(space.schema()) >= controller_lib._ONE_LOOP_MIN_SLOTS)  # pylint: disable=protected-access
    monkeypatch.undo()


def test_initial_weights_in_paper_range_and_named():
  c = controller_lib.Controller(ss.CNNSearchSpace())
  for w in c.trainable_weights:
    assert np.all(np.abs(w.numpy()) <= 0.08 + 1e-7), w.path
  names = {w.path.split("/", 1)[1] for w in c.weights}
  assert {"anchor_v", "softmax_w_filter_height", "lstm_1/kernel"} <= names
  assert c.units == 35 and len(c._lstm_cells) == 2


def test_sampling_is_seedable_and_varies():
  c = controller_lib.Controller(ss.RNNCellSearchSpace())
  a, _, _ = c.sample(4, seed=5)
  b, _, _ = c.sample(4, seed=5)
  d, _, _ = c.sample(4, seed=6)
  assert a == b and a != d
  # Unseeded draws advance the controller's own seed state.
  e, _, _ = c.sample(4)
  f, _, _ = c.sample(4)
  assert e != f


def test_depth_schedule_reuses_weights():
  c = controller_lib.Controller(ss.CNNSearchSpace(num_layers=6))
  n_weights = len(c.weights)
  deep, lp, _ = c.sample(2, seed=0, num_layers=8)
  assert all(s.num_layers == 8 for s in deep)
  lp2, _ = c.log_prob(deep)
  np.testing.assert_allclose(lp.numpy(), lp2.numpy(), rtol=1e-5)
  assert len(c.weights) == n_weights
  with pytest.raises(ValueError, match="share a depth"):
    c.log_prob([deep[0], c.sample(1, seed=0)[0][0]])
  # Sampling again at a depth already seen reuses its graph (once per depth, not per step).
  traced = c._run.experimental_get_tracing_count()  # pylint: disable=protected-access
  for step in range(3):
    c.sample_tokens(2, seed=(0, step), num_layers=8)
  assert c._run.experimental_get_tracing_count() == traced  # pylint: disable=protected-access


def test_config_round_trip_and_checkpoint(tmp_path):
  c = controller_lib.Controller(ss.CNNSearchSpace(strides=(1, 2)), tanh_constant=2.5)
  c2 = controller_lib.Controller.from_config(c.get_config())
  assert c2.space == c.space and c2.tanh_constant == 2.5
  ckpt = tf.train.Checkpoint(controller=c)
  path = ckpt.write(str(tmp_path / "ckpt"))
  tf.train.Checkpoint(controller=c2).read(path).assert_consumed()
  for a, b in zip(c.weights, c2.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
  s1, lp1, _ = c.sample(3, seed=9)
  s2, lp2, _ = c2.sample(3, seed=9)
  assert s1 == s2
  np.testing.assert_allclose(lp1.numpy(), lp2.numpy(), rtol=1e-6)


def test_bad_arguments():
  with pytest.raises(ValueError, match="units must be a positive int, got 0"):
    controller_lib.Controller(ss.RNNCellSearchSpace(), units=0)
  with pytest.raises(TypeError, match="space"):
    controller_lib.Controller("cnn")
  c = controller_lib.Controller(ss.RNNCellSearchSpace(base=2))
  with pytest.raises(ValueError, match="only applies to a CNN"):
    c.sample(1, num_layers=3)
  with pytest.raises(ValueError, match="m must be a positive int"):
    c.sample(0)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_reinforce_gradient_sign(sign):
  """Positive advantage raises the sampled architecture's probability; negative lowers it."""
  c = controller_lib.Controller(ss.RNNCellSearchSpace(base=2))
  specs_, lp_before, _ = c.sample(1, seed=1)
  opt = keras.optimizers.SGD(0.1)
  reinforce.reinforce_step(lambda: c.log_prob(specs_), c.trainable_variables, opt,
                           advantages=[sign])
  lp_after, _ = c.log_prob(specs_)
  delta = float(lp_after[0] - lp_before[0])
  assert delta * sign > 0.05, delta


def test_toy_reinforce_learns_target():
  """Reward = fraction of tokens equal to a target spec's: the target becomes likely."""
  space = ss.RNNCellSearchSpace(base=2)
  target = np.asarray(space.encode(specs.lstm_like_base2_spec()))
  keras.utils.set_random_seed(0)
  c = controller_lib.Controller(space)
  opt = keras.optimizers.Adam(0.02)
  baseline = reinforce.EMABaseline(decay=0.9)
  lp0, _ = c.log_prob([specs.lstm_like_base2_spec()])
  chance = -space.log_num_architectures()

  # One traced step: an eager Keras optimizer step costs ~0.3 s of Python, 80 of them
  # were most of this test's time. The maths is reinforce_step's either way.
  @tf.function
  def step_fn(tokens, adv):
    # A small entropy bonus keeps single tokens from collapsing onto a wrong choice
    # before the partial-credit reward can correct them.
    reinforce.reinforce_step(lambda: c.log_prob_tokens(tokens), c.trainable_variables, opt,
                             adv, entropy_weight=0.05)

  for step in range(80):
    tokens, _, _ = c.sample_tokens(8, seed=step)
    rewards = (tokens.numpy() == target).mean(axis=1)
    adv = baseline.advantages(rewards)
    baseline.update(rewards)
    step_fn(tokens, tf.constant(adv, tf.float32))
  lp1, _ = c.log_prob([specs.lstm_like_base2_spec()])
  assert float(lp0[0]) == pytest.approx(chance, abs=0.5)
  # From about e^-11 (chance) to well above it: at least e^5 times more likely.
  assert float(lp1[0]) > float(lp0[0]) + 5.0, (float(lp0[0]), float(lp1[0]))


def test_seeded_initialisation_is_reproducible_and_distinct_per_weight():
  a = controller_lib.Controller(ss.CNNSearchSpace(), seed=7)
  b = controller_lib.Controller(ss.CNNSearchSpace(), seed=7)
  c = controller_lib.Controller(ss.CNNSearchSpace(), seed=8)
  for wa, wb in zip(a.weights, b.weights):
    np.testing.assert_array_equal(wa.numpy(), wb.numpy())
  assert not np.array_equal(a.weights[0].numpy(), c.weights[0].numpy())
  # Weights of equal shape must not be copies of each other.
  w = {x.path.split("/", 1)[1]: x.numpy() for x in a.weights}
  assert not np.array_equal(w["anchor_w_prev"], w["anchor_w_curr"])


def test_written_out_lstm_step_equals_the_keras_cells():
  """The controller's step is LSTMCell's fused step on the cells' weights: exactly equal."""
  c = controller_lib.Controller(ss.RNNCellSearchSpace(base=2), seed=4)
  rng = np.random.default_rng(0)
  x = tf.constant(rng.normal(size=(3, c.units)), tf.float32)
  states = [[tf.constant(rng.normal(size=(3, c.units)), tf.float32) for _ in range(2)]
            for _ in range(c.num_lstm_layers)]
  out, new_states = c._step(x, states)  # pylint: disable=protected-access
  expected = x
  for cell, state in zip(c._lstm_cells, states):  # pylint: disable=protected-access
    expected, state = cell(expected, state)
    for got, want in zip(new_states.pop(0), state):
      np.testing.assert_array_equal(got.numpy(), want.numpy())
  np.testing.assert_array_equal(out.numpy(), expected.numpy())
