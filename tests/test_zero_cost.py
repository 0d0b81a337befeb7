"""Training-free scores (nas_tf.zero_cost): each checked against its definition by hand."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from nas_tf import children
from nas_tf import specs
from nas_tf import zero_cost


def _mlp(seed=0):
  keras.utils.set_random_seed(seed)
  x = keras.Input(shape=(2,))
  h = keras.layers.Dense(3, use_bias=False, name="hidden")(x)
  h = keras.layers.ReLU(name="relu")(h)
  y = keras.layers.Dense(2, use_bias=False, name="logits")(h)
  return keras.Model(x, y)


def test_agreement_logdet_is_the_log_determinant_of_the_agreement_counts():
  # Two images that disagree on both units: K = [[2, 0], [0, 2]].
  assert zero_cost.agreement_logdet(np.array([[1, 0], [0, 1]])) == pytest.approx(
      2 * math.log(2))
  # K[i, j] = units - Hamming distance of codes i and j (Mellor et al. 2021, §3).
  codes = np.random.default_rng(0).integers(0, 2, size=(5, 40))
  hamming = (codes[:, None, :] != codes[None, :, :]).sum(-1)
  want = np.linalg.slogdet(40.0 - hamming)[1]
  assert zero_cost.agreement_logdet(codes) == pytest.approx(want)
  # Two images with the same code cannot be told apart: K is singular.
  assert zero_cost.agreement_logdet(np.array([[1, 0, 1], [1, 0, 1]])) == float("-inf")


def test_naswot_reads_the_relu_codes_of_the_batch():
  model = _mlp()
  x = tf.constant(np.random.default_rng(1).normal(size=(4, 2)), tf.float32)
  w = model.get_layer("hidden").kernel.numpy()
  codes = (x.numpy() @ w) > 0
  assert zero_cost.naswot(model, x) == pytest.approx(zero_cost.agreement_logdet(codes))


def test_naswot_sums_the_agreement_of_every_relu_layer():
  keras.utils.set_random_seed(1)
  x_in = keras.Input(shape=(3,))
  h1 = keras.layers.ReLU()(keras.layers.Dense(4, use_bias=False, name="d1")(x_in))
  h2 = keras.layers.ReLU()(keras.layers.Dense(5, use_bias=False, name="d2")(h1))
  model = keras.Model(x_in, keras.layers.Dense(2)(h2))
  x = np.random.default_rng(5).normal(size=(6, 3)).astype(np.float32)
  a1 = np.maximum(x @ model.get_layer("d1").kernel.numpy(), 0)
  a2 = a1 @ model.get_layer("d2").kernel.numpy()
  codes = np.concatenate([a1 > 0, a2 > 0], axis=1)  # all 9 units of both layers
  assert zero_cost.naswot(model, tf.constant(x)) == pytest.approx(
      zero_cost.agreement_logdet(codes), rel=1e-9)


def test_naswot_needs_relu_layers():
  x = keras.Input(shape=(2,))
  with pytest.raises(ValueError, match="needs ReLU layers"):
    zero_cost.naswot(keras.Model(x, keras.layers.Dense(2)(x)), tf.ones((2, 2)))


def test_synflow_is_twice_the_path_sum_for_two_layers_and_restores_the_weights():
  model = _mlp()
  w1 = model.get_layer("hidden").kernel.numpy()
  w2 = model.get_layer("logits").kernel.numpy()
  # R = 1^T |W1| |W2| 1; each weight appears in its paths once, so
  # sum(theta * dR/dtheta) = R per layer: 2R for two layers.
  r = np.ones(2) @ np.abs(w1) @ np.abs(w2) @ np.ones(2)
  assert zero_cost.synflow(model) == pytest.approx(math.log(2 * r), rel=1e-6)
  np.testing.assert_array_equal(model.get_layer("hidden").kernel.numpy(), w1)
  np.testing.assert_array_equal(model.get_layer("logits").kernel.numpy(), w2)


def test_grad_norm_and_snip_match_the_analytic_softmax_gradient():
  keras.utils.set_random_seed(0)
  x_in = keras.Input(shape=(3,))
  model = keras.Model(x_in, keras.layers.Dense(2, use_bias=False)(x_in))
  x = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
  y = np.array([0, 1, 1, 0, 1])
  w = model.trainable_weights[0].numpy()
  logits = x @ w
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  grad = x.T @ (p - np.eye(2)[y]) / len(y)  # d mean CE / dW
  norm, snip = zero_cost.grad_norm_and_snip(model, tf.constant(x), tf.constant(y))
  assert norm == pytest.approx(np.linalg.norm(grad), rel=1e-5)
  assert snip == pytest.approx(np.abs(w * grad).sum(), rel=1e-5)


def test_score_model_on_a_cnn_child_is_deterministic_per_seed():
  spec = specs.CNNSpec(layers=(specs.ConvLayer(3, 3, 8), specs.ConvLayer(1, 3, 8, 2, (0,))))
  images = tf.constant(np.random.default_rng(3).normal(size=(16, 8, 8, 3)), tf.float32)
  labels = tf.constant(np.arange(16) % 10)

  def scores(seed):
    keras.utils.set_random_seed(seed)
    model = children.build_cnn(spec, input_shape=(8, 8, 3), num_classes=10)
    out = zero_cost.score_model(model, images, labels)
    keras.backend.clear_session()
    return out

  a, b = scores(0), scores(0)
  assert set(a) == set(zero_cost.SCORES) | {"seconds"}
  for name in zero_cost.SCORES:
    assert np.isfinite(a[name]) and a[name] == b[name], name
  assert a["num_params"] == children.estimate_cnn_cost(spec, (8, 8, 3))[0]
  with pytest.raises(ValueError, match="unknown zero-cost scores"):
    zero_cost.score_model(None, images, labels, scores=("flops",))


def test_a_zero_cost_search_rewards_the_score_and_resumes_from_its_config(tmp_path):
  """Slow: a short CIFAR-10 search on testdata, scored without training (~15 s)."""
  import json  # pylint: disable=g-import-not-at-top
  import nas_tf  # pylint: disable=g-import-not-at-top
  from nas_tf import api  # pylint: disable=g-import-not-at-top
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  out = str(tmp_path / "run")
  config = api.make_config("cifar10", output_dir=out, evaluation="zero_cost", search="random",
                           max_children=3, settings={"zero_cost.score": "naswot",
                                                     "zero_cost.batch_size": 8})
  assert api.make_config("cifar10", evaluation="zero_cost").output_dir.endswith(
      "cifar10-rl-seed0-zero_cost-tiny")
  result = nas_tf.run_search(config)
  records = list(result.records)
  assert len(records) == 3
  for r in records:
    assert r["status"] == "ok" and r["evaluation"] == "zero_cost"
    assert r["metrics"]["zero_cost_score"] == "naswot"
    assert r["reward"] == r["metrics"]["zero_cost"] > 0
  # What a rerun reads back: the settings of this evaluation are saved with the run.
  with open(tmp_path / "run" / "config.json") as f:
    saved = config_lib.SearchConfig.from_dict(json.load(f))
  assert saved.zero_cost == config_lib.ZeroCostConfig(score="naswot", batch_size=8)
  # ... and only with it: an ordinary search's config.json has no zero_cost section.
  assert "zero_cost" not in api.make_config("cifar10").to_dict()


def test_zero_cost_evaluation_is_refused_where_it_cannot_score(tmp_path):
  from nas_tf import api  # pylint: disable=g-import-not-at-top
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from nas_tf import search  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="scores conv networks.*'ptb'.*--task=cifar10"):
    search.run(api.make_config("ptb", output_dir=str(tmp_path / "p"), evaluation="zero_cost"))
  with pytest.raises(ValueError, match="zero_cost score must be one of.*'flops'"):
    config_lib.ZeroCostConfig(score="flops")
  with pytest.raises(ValueError, match="apply only with evaluation='zero_cost'"):
    api.make_config("cifar10", settings={"zero_cost.score": "snip"})
  with pytest.raises(ValueError, match="no trained model to time"):
    api.make_config("cifar10", evaluation="zero_cost",
                    settings={"child.measure_latency": True})



def test_weight_scores_sum_over_kernels_only():
  """BatchNorm's gamma/beta and biases are not prunable weights: with a BatchNorm between
  two kernels, synflow still counts each kernel's path sum once (2R), and grad_norm is the
  sum of the two kernels' gradient norms."""
  keras.utils.set_random_seed(0)
  x_in = keras.Input(shape=(2,))
  h = keras.layers.Dense(3, use_bias=False, name="hidden")(x_in)
  h = keras.layers.BatchNormalization(name="bn", epsilon=0.0)(h)
  h = keras.layers.ReLU()(h)
  model = keras.Model(x_in, keras.layers.Dense(2, name="logits")(h))  # with a bias
  w1 = model.get_layer("hidden").kernel.numpy()
  w2 = model.get_layer("logits").kernel.numpy()
  r = np.ones(2) @ np.abs(w1) @ np.abs(w2) @ np.ones(2)  # fresh BN (eps 0): identity
  assert zero_cost.synflow(model) == pytest.approx(math.log(2 * r), rel=1e-6)
  x = tf.constant(np.random.default_rng(4).normal(size=(6, 2)), tf.float32)
  y = tf.constant([0, 1, 0, 1, 1, 0])
  with tf.GradientTape() as tape:
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=y, logits=model(x, training=True)))
  kernels = [model.get_layer("hidden").kernel, model.get_layer("logits").kernel]
  g1, g2 = tape.gradient(loss, kernels)
  norm, snip = zero_cost.grad_norm_and_snip(model, x, y)
  assert norm == pytest.approx(float(tf.norm(g1) + tf.norm(g2)), rel=1e-5)
  assert snip == pytest.approx(float(tf.reduce_sum(tf.abs(g1 * kernels[0]))
                                     + tf.reduce_sum(tf.abs(g2 * kernels[1]))), rel=1e-5)


def test_the_evaluator_is_reproducible_without_touching_tensorflows_global_state(
    monkeypatch):
  """It shares its process with the controller: a global reseed or clear_session would
  drop the controller's optimised graphs (seconds per step), so neither may be called."""
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top

  def forbidden(*args, **kwargs):
    raise AssertionError("the zero-cost evaluator must not reset TensorFlow's state")

  releases = []
  monkeypatch.setattr(keras.utils, "set_random_seed", forbidden)
  monkeypatch.setattr(keras.backend, "clear_session", lambda: releases.append(1))
  monkeypatch.setattr(tf.random, "set_seed", forbidden)
  spec = specs.CNNSpec(layers=(specs.ConvLayer(3, 3, 8), specs.ConvLayer(1, 3, 8, 2, (0,))))
  evaluator = zero_cost.ZeroCostEvaluator(
      config_lib.ZeroCostConfig(), config_lib.ChildTrainingConfig(), load_data=None, seed=3)
  first, again = evaluator.evaluate([spec, spec])
  assert first["status"] == "ok" and first["zero_cost_score"] == "synflow"
  assert first["zero_cost"] == again["zero_cost"] and np.isfinite(first["zero_cost"])
  assert not releases  # caches are released only every release_every (200) children
  every_two = zero_cost.ZeroCostEvaluator(
      config_lib.ZeroCostConfig(release_every=2), config_lib.ChildTrainingConfig(),
      load_data=None, seed=3)
  assert [r["zero_cost"] for r in every_two.evaluate([spec] * 5)] == [first["zero_cost"]] * 5
  assert len(releases) == 2  # after the 2nd and the 4th child
  too_big = zero_cost.ZeroCostEvaluator(
      config_lib.ZeroCostConfig(), config_lib.ChildTrainingConfig(max_params=100),
      load_data=None).evaluate([spec])[0]
  assert too_big["status"] == "too_large" and "max_params" in too_big["error"]
  over_budget = zero_cost.ZeroCostEvaluator(
      config_lib.ZeroCostConfig(), config_lib.ChildTrainingConfig(max_macs=1000),
      load_data=None).evaluate([spec])[0]
  assert over_budget["status"] == "too_large" and "max_macs=1,000" in over_budget["error"]


def test_data_free_scores_build_the_tasks_number_of_classes():
  """synflow needs no images, so the class count comes from the task, not the data."""
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  spec = specs.CNNSpec(layers=(specs.ConvLayer(3, 3, 8),))
  scored = {n: zero_cost.ZeroCostEvaluator(
      config_lib.ZeroCostConfig(), config_lib.ChildTrainingConfig(), load_data=None,
      num_classes=n).evaluate([spec])[0] for n in (10, 100)}
  # The classifier's kernel and bias grow by 8 x 90 + 90 weights.
  assert scored[100]["num_params"] - scored[10]["num_params"] == 8 * 90 + 90
  assert scored[100]["zero_cost"] != scored[10]["zero_cost"]
  # None: counted from the data (loaded once, for this purpose only).
  loads = []

  class Data:
    class_names = ["a", "b", "c"]

  counted = zero_cost.ZeroCostEvaluator(
      config_lib.ZeroCostConfig(), config_lib.ChildTrainingConfig(),
      load_data=lambda: loads.append(1) or Data(), num_classes=None).evaluate([spec] * 2)
  assert loads == [1]
  assert counted[0]["num_params"] - scored[10]["num_params"] == -(8 * 7 + 7)
  with pytest.raises(ValueError, match="num_classes must be an int >= 2 or None, got 1"):
    zero_cost.ZeroCostEvaluator(config_lib.ZeroCostConfig(), config_lib.ChildTrainingConfig(),
                                load_data=None, num_classes=1)
