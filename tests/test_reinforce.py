"""Rewards and the REINFORCE arithmetic against hand computation (paper §3.2, §4)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from nas_tf import reinforce, rewards, tasks


def test_cifar_reward_is_cube_of_max_of_last_five():
  accs = [0.9, 0.1, 0.5, 0.6, 0.55, 0.7, 0.65]  # last five: 0.5..0.65 -> max 0.7
  assert rewards.cifar_reward(accs) == pytest.approx(0.7 ** 3)
  assert rewards.cifar_reward([0.3, 0.4]) == pytest.approx(0.4 ** 3)
  assert rewards.cifar_reward([float("nan"), 0.2]) == pytest.approx(0.008)
  assert rewards.cifar_reward([]) == rewards.FAILURE_REWARD
  assert rewards.cifar_reward([float("nan")]) == rewards.FAILURE_REWARD
  with pytest.raises(ValueError, match="1.5"):
    rewards.cifar_reward([1.5])


def test_ptb_reward():
  assert rewards.ptb_reward(80.0) == pytest.approx(80.0 / 6400.0)
  assert rewards.ptb_reward(62.4, c=80) == pytest.approx(0.020545693)
  for bad in (float("nan"), float("inf"), 0.0, -3.0, None):
    assert rewards.ptb_reward(bad) == rewards.FAILURE_REWARD
  assert tasks.get("ptb").reward({"val_perplexity": 40.0}) == pytest.approx(0.05)
  assert tasks.get("cifar10").reward({"val_accuracy_history": [0.5]}) == 0.125
  assert tasks.get("ptb").reward({}) == rewards.FAILURE_REWARD
  # A diverged child with a huge but finite perplexity: p ** 2 would overflow.
  assert 0.0 <= rewards.ptb_reward(6.5e200) < 1e-300
  # reward_epochs is the CIFAR-10 window: max of the last N epochs, cubed.
  history = {"val_accuracy_history": [0.9, 0.5, 0.6]}
  assert tasks.get("cifar10").reward(history, _Child(2)) == pytest.approx(0.6 ** 3)
  assert tasks.get("cifar10").reward(history, _Child(3)) == pytest.approx(0.9 ** 3)
  with pytest.raises(ValueError, match="'imagenet'.*registered tasks"):
    tasks.get("imagenet")


def test_learned_is_beating_the_label_frequencies():
  from nas_tf.training import lm as lm_training  # pylint: disable=g-import-not-at-top
  ptb, cifar, nb = (tasks.get(n) for n in ("ptb", "cifar10", "nasbench201"))
  assert ptb.learned(686.9) and not ptb.learned(687.0)
  assert cifar.learned(0.13) and not cifar.learned(0.11)
  for bad in (None, float("nan")):
    assert not ptb.learned(bad) and not cifar.learned(bad) and not nb.learned(bad)
  assert nb.learned(0.05)  # a table's accuracy has no bar: every finite value counts
  # The PTB bar is the unigram model's perplexity: uniform words give the vocabulary size.
  words = np.arange(100) % 10
  assert lm_training.unigram_perplexity(words, words, 10) == pytest.approx(10.0)


class _Child:
  """The one field of ChildTrainingConfig a CIFAR-10 reward reads."""

  def __init__(self, reward_epochs):
    self.reward_epochs = reward_epochs


def test_tasks_judge_divergence():
  ptb = tasks.get("ptb")
  assert ptb.judge({"val_perplexity": 120.0}) == ("ok", None)
  status, why = ptb.judge({"val_perplexity": 3e4, "vocab_size": 10_000})
  assert status == "nan" and "3e+04" in why  # above e x vocabulary size
  assert ptb.judge({"val_perplexity": float("inf")})[0] == "nan"
  assert tasks.get("cifar10").judge({"val_accuracy": float("nan")})[0] == "nan"
  nb = tasks.get("nasbench201")
  assert nb.reward({"val_accuracy": 0.9}) == 0.9 and nb.higher_is_better


def test_failure_reward_is_the_worst():
  assert rewards.FAILURE_REWARD <= min(rewards.cifar_reward([0.0]), rewards.ptb_reward(1e9))


def test_ema_baseline_arithmetic():
  b = reinforce.EMABaseline(decay=0.9)
  np.testing.assert_allclose(b.advantages([1.0, 3.0]), [-1.0, 1.0])  # before any update
  assert b.update([1.0, 3.0]) == pytest.approx(2.0)
  assert b.update([4.0]) == pytest.approx(0.9 * 2.0 + 0.1 * 4.0)
  np.testing.assert_allclose(b.advantages([3.0]), [3.0 - 2.2])
  assert b.to_dict() == {"decay": 0.9, "value": pytest.approx(2.2)}
  with pytest.raises(ValueError, match="1.0"):
    reinforce.EMABaseline(decay=1.0)


def test_reinforce_loss_gradient_matches_formula():
  # d loss / d logp_k = -A_k / m ; entropy bonus subtracts w * mean(H).
  logp = tf.Variable([-1.0, -2.0, -3.0])
  ent = tf.Variable([0.5, 0.5, 0.5])
  adv = np.array([1.0, -2.0, 0.5])
  with tf.GradientTape() as tape:
    loss = reinforce.reinforce_loss(logp, adv, ent, entropy_weight=0.1)
  g_logp, g_ent = tape.gradient(loss, [logp, ent])
  np.testing.assert_allclose(g_logp.numpy(), -adv / 3, rtol=1e-6)
  np.testing.assert_allclose(g_ent.numpy(), [-0.1 / 3] * 3, rtol=1e-6)
  expected = -np.mean(adv * np.array([-1.0, -2.0, -3.0])) - 0.1 * 0.5
  assert float(loss) == pytest.approx(expected)


def test_reinforce_step_on_a_bandit():
  """A 3-armed softmax bandit: the best arm's probability rises under REINFORCE."""
  import keras
  logits = tf.Variable(tf.zeros([3]))
  payoff = np.array([0.1, 0.9, 0.3])
  opt = keras.optimizers.SGD(0.5)
  baseline = reinforce.EMABaseline(0.8)
  rng = np.random.default_rng(0)
  for _ in range(100):
    probs = tf.nn.softmax(logits).numpy()
    arms = rng.choice(3, size=16, p=probs)
    r = payoff[arms]
    adv = baseline.advantages(r)
    baseline.update(r)
    reinforce.reinforce_step(
        lambda: (tf.gather(tf.nn.log_softmax(logits), arms), tf.zeros([16])),
        [logits], opt, adv)
  assert int(tf.argmax(logits)) == 1
  assert float(tf.nn.softmax(logits)[1]) > 0.8
