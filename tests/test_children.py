"""Tests for nas_tf.children: the child networks of Zoph & Le 2017 (§3.3, §4.1, §4.2)."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from nas_tf import children
from nas_tf import search_space
from nas_tf import specs

L = specs.ConvLayer


def _spec(*layers):
  return specs.CNNSpec(tuple(layers))


def _submodel(model, layer_names):
  return keras.Model(model.input, [model.get_layer(n).output for n in layer_names])


def _random_specs(n, seed=0, **space_kwargs):
  space = search_space.CNNSearchSpace(**space_kwargs)
  rng = np.random.default_rng(seed)
  return [space.sample(rng) for _ in range(n)]


# ---------------------------------------------------------------------------------------
# CNN children (§3.3).


def test_cnn_output_shape_and_logits():
  spec = _random_specs(1, seed=1, strides=(1, 2))[0]
  model = children.build_cnn(spec, input_shape=(20, 16, 1), num_classes=7)
  out = model(np.random.rand(2, 20, 16, 1).astype("float32"))
  assert out.shape == (2, 7)
  assert model.get_layer("logits").activation is keras.activations.linear


def test_cnn_skip_wiring_concat_widths_and_dangling_layers_reach_classifier():
  spec = _spec(L(3, 3, 8),                    # 0 <- image
               L(3, 3, 16, inputs=(0,)),      # 1 <- 0, feeds nothing: dangling.
               L(1, 1, 4, inputs=(0,)),       # 2 <- 0
               L(3, 1, 5, inputs=(0, 2)),     # 3 <- 0, 2: concat 8 + 4.
               L(1, 3, 6, inputs=(0, 2, 3)))  # 4 <- 0, 2, 3: concat 8 + 4 + 5.
  assert spec.dangling() == [1, 4]
  model = children.build_cnn(spec)
  names = {l.name for l in model.layers}
  # One input: no concat op at all (lean graph).
  assert "layer_1_concat" not in names and "layer_2_concat" not in names
  assert model.get_layer("layer_3_concat").output.shape == (None, 32, 32, 12)
  assert model.get_layer("layer_4_concat").output.shape == (None, 32, 32, 17)
  assert model.get_layer("layer_3_conv").kernel.shape == (3, 1, 12, 5)
  # Dangling layers 1 (16 ch) and 4 (6 ch) form the classifier input.
  assert model.get_layer("final_concat").output.shape == (None, 32, 32, 22)
  assert model.get_layer("logits").kernel.shape == (22, 10)
  # And layer 1 really influences the logits.
  x = tf.random.normal((2, 32, 32, 3))
  kernel = model.get_layer("layer_1_conv").kernel
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(x, training=True) ** 2)
  assert float(tf.reduce_max(tf.abs(tape.gradient(loss, kernel)))) > 0


def test_cnn_layer_without_inputs_reads_the_image():
  spec = _spec(L(3, 3, 8), L(3, 3, 8, inputs=(0,)), L(5, 5, 4), L(1, 1, 4, inputs=(1, 2)))
  model = children.build_cnn(spec, input_shape=(16, 16, 3))
  assert model.get_layer("layer_2_conv").kernel.shape == (5, 5, 3, 4)
  assert model.get_layer("layer_2_conv").input is model.inputs[0]
  assert model.get_layer("layer_3_concat").output.shape == (None, 16, 16, 12)


def test_cnn_zero_pads_smaller_maps_bottom_right():
  # Layer 0: stride 3 -> 11x11x4; layer 1: stride 1 -> 32x32x3; layer 2 concatenates them.
  spec = _spec(L(3, 3, 4, stride=3), L(3, 3, 3), L(1, 1, 2, inputs=(0, 1)))
  model = children.build_cnn(spec)
  sub = _submodel(model, ["layer_0_relu", "layer_1_relu", "layer_2_concat"])
  x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
  small, big, merged = (np.asarray(t) for t in sub(x, training=True))
  assert small.shape == (2, 11, 11, 4) and merged.shape == (2, 32, 32, 7)
  np.testing.assert_array_equal(merged[:, :11, :11, :4], small)
  assert np.all(merged[:, 11:, :, :4] == 0) and np.all(merged[:, :, 11:, :4] == 0)
  np.testing.assert_array_equal(merged[..., 4:], big)
  assert model.get_layer("pad_0_to_32x32").output.shape == (None, 32, 32, 4)


def test_cnn_pad_shared_and_skipped_when_sizes_match():
  # Layer 0 is padded to 32x32 for layers 2 and 3 (and the head): one pad op serves all.
  spec = _spec(L(3, 3, 4, stride=2), L(3, 3, 3), L(1, 1, 2, inputs=(0, 1)),
               L(1, 1, 2, inputs=(0, 1, 2)))
  model = children.build_cnn(spec)
  pads = [l.name for l in model.layers if isinstance(l, keras.layers.ZeroPadding2D)]
  assert pads == ["pad_0_to_32x32"]
  chain = _spec(L(3, 3, 4), L(3, 3, 4, inputs=(0,)), L(3, 3, 4, inputs=(1,)))
  model = children.build_cnn(chain)
  kinds = {type(l) for l in model.layers}
  assert keras.layers.ZeroPadding2D not in kinds and keras.layers.Concatenate not in kinds
  assert len(model.layers) == 1 + 3 * 3 + 2  # Input, 3 x (conv, bn, relu), pool, logits.


def test_cnn_pooling_layers():
  spec = _spec(L(3, 3, 8), L(3, 3, 99, stride=2, inputs=(0,), op="max_pool"),
               L(5, 1, 99, inputs=(0, 1), op="avg_pool"))
  model = children.build_cnn(spec)
  sub = _submodel(model, ["layer_0_relu", "layer_1_max_pool", "layer_2_avg_pool"])
  x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
  l0, l1, l2 = (np.asarray(t) for t in sub(x, training=True))
  assert l1.shape == (2, 16, 16, 8)  # Channel count unchanged, num_filters ignored.
  assert l2.shape == (2, 32, 32, 16)
  expected = tf.nn.max_pool2d(l0, ksize=(3, 3), strides=2, padding="SAME")
  np.testing.assert_allclose(l1, expected, rtol=1e-6)


def test_estimate_cnn_cost_matches_built_model():
  rand = (_random_specs(4, seed=3, strides=(1, 2, 3)) +
          _random_specs(3, seed=4, num_layers=5, strides=(1, 2, 3),
                        layer_ops=specs.LAYER_OPS))
  for spec in rand:
    for shape, classes in (((32, 32, 3), 10), ((28, 24, 1), 4)):
      model = children.build_cnn(spec, input_shape=shape, num_classes=classes)
      params, elements = children.estimate_cnn_cost(spec, shape, classes)
      assert params == model.count_params(), spec.describe()
      produced = sum(int(np.prod(l.output.shape[1:])) for l in model.layers[1:])
      assert elements == produced, spec.describe()


def test_cnn_reduced_proxy_scales_widths_and_resolution():
  """EcoNAS' reductions: filters x 0.5 (rounded, at least 1, pools untouched) and a
  32x32 image seen at 16x16 by the first conv, by area averaging; the caps count the
  reduced network."""
  spec = _spec(L(3, 3, 24, stride=2), L(3, 3, 5, inputs=(0,)),
               L(3, 3, 7, inputs=(1,), op="max_pool"), L(1, 1, 1, inputs=(1, 2)))
  model = children.build_cnn(spec, input_shape=(32, 32, 3), num_classes=4,
                             width_multiplier=0.5, image_size=16)
  assert [model.get_layer(f"layer_{i}_conv").filters for i in (0, 1, 3)] == [12, 2, 1]
  assert model.get_layer("layer_0_conv").input.shape[1:] == (16, 16, 3)
  assert model.get_layer("layer_0_conv").output.shape[1:] == (8, 8, 12)
  params, _ = children.estimate_cnn_cost(children.scale_widths(spec, 0.5), (16, 16, 3), 4)
  assert params == model.count_params()
  image = np.arange(32 * 32 * 3, dtype="float32").reshape(1, 32, 32, 3)
  resized = _submodel(model, ["resize"])(image).numpy()
  np.testing.assert_allclose(resized[0, 0, 0], image[0, :2, :2].mean(axis=(0, 1)), rtol=1e-6)
  assert children.scale_widths(spec, 1.0) is spec
  full = children.build_cnn(spec, input_shape=(32, 32, 3), num_classes=4)
  assert "resize" not in [l.name for l in full.layers]
  with pytest.raises(ValueError, match="width_multiplier must be > 0, got 0"):
    children.build_cnn(spec, width_multiplier=0)


def test_estimate_cnn_macs_by_hand_and_against_the_built_model():
  """Multiply-accumulates: a strided conv, a concat of a conv and a pool, a 1x1 conv."""
  spec = _spec(L(3, 3, 24, stride=2), L(3, 3, 5, inputs=(0,)),
               L(3, 3, 7, inputs=(1,), op="max_pool"), L(1, 1, 1, inputs=(1, 2)))
  by_hand = (16 * 16 * 9 * 3 * 24     # layer 0: 32x32x3 -> 16x16x24, stride 2
             + 16 * 16 * 9 * 24 * 5   # layer 1
             + 0                      # layer 2: a pool
             + 16 * 16 * 1 * 10 * 1   # layer 3 reads the concat of 1 (5) and 2 (5)
             + 1 * 4)                 # logits: one channel, four classes
  assert children.estimate_cnn_macs(spec, (32, 32, 3), 4) == by_hand == 444_932
  for spec in _random_specs(4, seed=5, strides=(1, 2, 3), layer_ops=specs.LAYER_OPS):
    model = children.build_cnn(spec, input_shape=(28, 24, 1), num_classes=6)
    counted = sum(int(np.prod(l.output.shape[1:3])) * int(np.prod(l.kernel.shape))
                  for l in model.layers if isinstance(l, keras.layers.Conv2D))
    counted += int(np.prod(model.get_layer("logits").kernel.shape))
    assert children.estimate_cnn_macs(spec, (28, 24, 1), 6) == counted, spec.describe()


def test_the_compute_cap_counts_the_full_network_not_its_reduced_proxy():
  spec = _spec(L(3, 3, 24, stride=2), L(3, 3, 5, inputs=(0,)))
  macs = children.estimate_cnn_macs(spec)
  with pytest.raises(children.ChildTooLargeError,
                     match=f"{macs:,} multiply-accumulates per example > max_macs=1,000"):
    children.build_cnn(spec, max_macs=1000, width_multiplier=0.5, image_size=8)
  assert children.build_cnn(spec, max_macs=macs).count_params() > 0


def test_guard_raises_before_building(monkeypatch):
  spec = _spec(L(7, 7, 64), L(7, 7, 64, inputs=(0,)))
  params, elements = children.estimate_cnn_cost(spec)

  def must_not_build(*args, **kwargs):
    raise AssertionError("a layer was built before the size check")

  monkeypatch.setattr(children.cnn.keras, "Input", must_not_build)
  with pytest.raises(children.ChildTooLargeError, match=f"{params:,}.*max_params=1,000"):
    children.build_cnn(spec, max_params=1000)
  with pytest.raises(children.ChildTooLargeError, match="max_activation_elements=10"):
    children.build_cnn(spec, max_activation_elements=10)
  monkeypatch.undo()
  model = children.build_cnn(spec, max_params=params, max_activation_elements=elements)
  assert model.count_params() == params


def test_weight_decay_regularizes_every_kernel():
  spec = _spec(L(3, 3, 4), L(3, 3, 4, inputs=(0,)), L(3, 3, 4, inputs=(0,), op="max_pool"))
  model = children.build_cnn(spec, weight_decay=1e-4)
  model(np.zeros((1, 32, 32, 3), "float32"))
  assert len(model.losses) == 3  # Two conv kernels and the logits kernel.
  assert not children.build_cnn(spec).losses
  # The paper's weight decay: the penalty is wd * sum(w^2) / 2, so its gradient is wd * w
  # (TF's wd * l2_loss(w)), not Keras' L2(wd) with gradient 2 wd w.
  kernels = [w for w in model.weights if w.path.endswith("kernel")]
  expected = 1e-4 * sum(float(np.sum(np.square(np.asarray(w)))) for w in kernels) / 2
  assert float(sum(float(l) for l in model.losses)) == pytest.approx(expected, rel=1e-5)


def test_random_cnn_child_learns():
  keras.utils.set_random_seed(0)
  spec = _random_specs(1, seed=7, num_layers=4, num_filters=(8, 12), strides=(1, 2))[0]
  model = children.build_cnn(spec, input_shape=(12, 12, 3), num_classes=3)
  rng = np.random.default_rng(0)
  x = rng.normal(size=(128, 12, 12, 3)).astype("float32")
  x += rng.normal(size=(128, 1, 1, 3)).astype("float32")  # Per-image colour shift.
  y = np.argmax(x.mean(axis=(1, 2)), axis=-1)  # Label: the dominant channel.
  model.compile(optimizer=keras.optimizers.Adam(1e-2),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  history = model.fit(x, y, batch_size=64, epochs=12, verbose=0).history["loss"]
  assert history[-1] < 0.6 * history[0], history


# ---------------------------------------------------------------------------------------
# Language-model children (§4.2).

VOCAB = 12
LM_CELLS = {"lstm": "lstm", "nascell": "nascell", "tree": specs.nascell_spec(),
            "tree_base2": specs.lstm_like_base2_spec()}


@pytest.mark.parametrize("cell", list(LM_CELLS.values()), ids=list(LM_CELLS))
def test_lm_shapes_for_every_cell_kind(cell):
  model = children.build_language_model(cell, VOCAB, 6, num_layers=2, embedding_dim=5,
                                        input_dropout=0.2, hidden_dropout=0.2,
                                        output_dropout=0.2)
  tokens = np.random.default_rng(0).integers(0, VOCAB, size=(3, 7))
  assert model(tokens).shape == (3, 7, VOCAB)
  assert model(tokens, training=True).shape == (3, 7, VOCAB)
  assert model.get_layer("rnn_1").output.shape == (None, None, 6)
  names = {l.name for l in model.layers}
  assert {"input_dropout", "hidden_dropout_1", "output_dropout", "logits"} <= names


@pytest.mark.parametrize("name,forget_bias", [("lstm", 0.0), ("lstm_forget_bias", 1.0)])
def test_the_papers_lstm_has_no_forget_bias_and_keras_default_has_one(name, forget_bias):
  """'lstm' is Zaremba et al.'s LSTM (every bias starts at 0, like a searched cell's);
  'lstm_forget_bias' is Keras' default, whose forget gate (the second quarter) starts at 1."""
  model = children.build_language_model(name, VOCAB, 4, num_layers=1, init_scale=0.1)
  bias = model.get_layer("rnn_0").cell.bias.numpy()
  np.testing.assert_array_equal(bias[4:8], np.full(4, forget_bias))
  np.testing.assert_array_equal(np.delete(bias, range(4, 8)), np.zeros(12))


@pytest.mark.parametrize("cell", ["lstm", specs.nascell_spec()], ids=["lstm", "tree"])
def test_unrolled_lm_is_the_same_function_and_state(cell):
  """unroll=True writes the time loop out; outputs, final states and gradients agree."""
  kwargs = dict(num_layers=2, init_scale=0.1, return_state=True)
  keras.utils.set_random_seed(0)
  looped = children.build_language_model(cell, VOCAB, 6, **kwargs)
  unrolled = children.build_language_model(cell, VOCAB, 6, unroll=True, **kwargs)
  unrolled.set_weights(looped.get_weights())
  assert unrolled.get_layer("rnn_1").unroll and not looped.get_layer("rnn_1").unroll
  rng = np.random.default_rng(1)
  tokens = rng.integers(0, VOCAB, size=(3, 7)).astype("int32")
  states = [rng.normal(size=(3, 6)).astype("float32") for _ in looped.inputs[1:]]
  results = []
  for model in (looped, unrolled):
    variables = model.trainable_variables
    with tf.GradientTape() as tape:
      outputs = model([tokens, *states])
      loss = tf.reduce_sum(outputs[0] ** 2)
    results.append(([o.numpy() for o in outputs],
                    [tf.convert_to_tensor(g).numpy()
                     for g in tape.gradient(loss, variables)]))
  for a, b in zip(*[r[0] + r[1] for r in results]):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lm_cell_choices():
  from nas_tf import cells
  model = children.build_language_model("nascell", VOCAB, 4, num_layers=1)
  assert isinstance(model.get_layer("rnn_0").cell, cells.NASCell)
  model = children.build_language_model(specs.lstm_like_base2_spec(), VOCAB, 4)
  assert isinstance(model.get_layer("rnn_1").cell, cells.TreeCell)
  model = children.build_language_model(keras.layers.GRUCell, VOCAB, 4)
  assert isinstance(model.get_layer("rnn_0").cell, keras.layers.GRUCell)
  assert model.get_layer("rnn_0").cell is not model.get_layer("rnn_1").cell
  # No dropout layers at rate 0.
  assert not any(isinstance(l, keras.layers.Dropout) for l in model.layers)
  with pytest.raises(ValueError, match="unknown cell"):
    children.build_language_model("gru", VOCAB, 4)


@pytest.mark.parametrize("cell", ["lstm", specs.nascell_spec()], ids=["lstm", "tree"])
def test_lm_tied_embeddings_share_one_variable(cell):
  units = 8
  untied = children.build_language_model(cell, VOCAB, units)
  tied = children.build_language_model(cell, VOCAB, units, tie_embeddings=True)
  assert untied.count_params() - tied.count_params() == VOCAB * units
  matrices = [w for w in tied.weights if w.shape == (VOCAB, units)]
  assert len(matrices) == 1
  # The one matrix gets gradient through both the lookup and the logits.
  layer = tied.get_layer("tied_embedding")
  tokens = np.array([[1, 2, 3]])
  with tf.GradientTape() as tape:
    logit0 = tied(tokens)[..., 0]  # Only token 0's logit.
  grad = tf.convert_to_tensor(tape.gradient(logit0, layer.embeddings))
  assert float(tf.reduce_sum(tf.abs(grad[0]))) > 0  # Row 0: output side only.
  assert float(tf.reduce_sum(tf.abs(grad[1]))) > 0  # Row 1: input side.
  assert float(tf.reduce_sum(tf.abs(grad[5]))) == 0  # Unused token.


def test_lm_tied_embeddings_with_projection_when_widths_differ():
  from nas_tf import cells
  model = children.build_language_model(lambda u: cells.NASCell(u, projection=3), VOCAB,
                                        8, embedding_dim=5, tie_embeddings=True)
  assert model.get_layer("tie_projection").kernel.shape == (3, 5)
  assert model(np.zeros((2, 4), "int32")).shape == (2, 4, VOCAB)


def test_lm_keras_save_and_reload(tmp_path):
  model = children.build_language_model(specs.nascell_spec(), VOCAB, 6, tie_embeddings=True,
                                        input_dropout=0.3, output_dropout=0.3)
  model.compile(optimizer="adam", metrics=[children.Perplexity()],
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  tokens = np.random.default_rng(1).integers(0, VOCAB, size=(2, 5))
  model.train_on_batch(tokens, tokens)  # Builds the optimizer so it is saved too.
  path = tmp_path / "lm.keras"
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_allclose(loaded(tokens), model(tokens), atol=1e-6)
  assert loaded.count_params() == model.count_params()
  assert len(loaded.weights) == len(model.weights)
  result = loaded.evaluate(tokens, tokens, verbose=0, return_dict=True)
  np.testing.assert_allclose(result["perplexity"], np.exp(result["loss"]), rtol=1e-4)


def test_perplexity_metric_maths():
  logits = np.random.default_rng(2).normal(size=(2, 3, 4)).astype("float32")
  labels = np.array([[0, 1, 2], [3, 0, 1]])
  weights = np.array([[1, 1, 0], [1, 0, 1]], "float32")
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  nll = -np.take_along_axis(logp, labels[..., None], -1)[..., 0]
  metric = children.Perplexity()
  metric.update_state(labels[:1], logits[:1])
  metric.update_state(labels[1:], logits[1:])
  np.testing.assert_allclose(float(metric.result()), np.exp(nll.mean()), rtol=1e-5)
  metric.reset_state()
  metric.update_state(labels, logits, sample_weight=weights)
  np.testing.assert_allclose(float(metric.result()),
                             np.exp((nll * weights).sum() / weights.sum()), rtol=1e-5)
  assert children.Perplexity.from_config(metric.get_config()).name == "perplexity"


@pytest.mark.parametrize("cell,tie,lr,epochs", [
    ("lstm", False, 2e-2, 25), ("nascell", False, 2e-2, 25),
    (specs.nascell_spec(), False, 2e-2, 25),
    # Tied embeddings start from a plateau (small uniform init on both sides of the
    # logits), so they need a larger step to leave it within a test's budget.
    ("lstm", True, 5e-2, 60)], ids=["lstm", "nascell", "tree", "lstm_tied"])
def test_lm_learns_a_repeating_sequence(cell, tie, lr, epochs):
  keras.utils.set_random_seed(0)
  period = 5
  stream = np.tile(np.arange(period), 40)
  starts = np.arange(0, len(stream) - 11, 3)
  x = np.stack([stream[s:s + 10] for s in starts])
  y = np.stack([stream[s + 1:s + 11] for s in starts])
  model = children.build_language_model(cell, VOCAB, 16, num_layers=1, tie_embeddings=tie)
  model.compile(optimizer=keras.optimizers.Adam(lr),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=[children.Perplexity()])
  history = model.fit(x, y, batch_size=len(x), epochs=epochs, verbose=0).history
  assert history["perplexity"][0] > 6
  assert history["perplexity"][-1] < 2.0, history["perplexity"]
  assert history["loss"][-1] < 0.3 * history["loss"][0]


def test_lm_param_guard_and_budget():
  params = children.count_params_lm("lstm", VOCAB, 8)
  with pytest.raises(children.ChildTooLargeError, match=f"{params:,} parameters"):
    children.build_language_model("lstm", VOCAB, 8, max_params=params - 1)
  children.build_language_model("lstm", VOCAB, 8, max_params=params)
  for cell, kwargs in (("lstm", {}), (specs.lstm_like_base2_spec(), {"tie_embeddings": True})):
    target = 5000
    units = children.units_for_param_budget(cell, 100, target, **kwargs)
    err = [abs(children.count_params_lm(cell, 100, u, **kwargs) - target)
           for u in (units - 1, units, units + 1)]
    assert err[1] <= err[0] and err[1] <= err[2], (units, err)


def test_seed_child_sets_tensorflows_seed_once_and_gives_the_same_weights(monkeypatch):
  """Inline children share their process with the controller: re-setting TensorFlow's
  global seed per child (which clears the eager caches) must be skipped when it is
  already right, without changing what a child draws."""
  from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top

  def build():
    return children.build_language_model(specs.nascell_spec(), vocab_size=20, units=4,
                                         num_layers=1, init_scale=0.1)

  def shuffled():
    return list(tf.data.Dataset.range(50).shuffle(50, seed=1).as_numpy_iterator())

  keras.utils.set_random_seed(11)
  reference = [w.numpy() for w in build().weights]
  order = shuffled()
  real, sets = tf.random.set_seed, []
  monkeypatch.setattr(tf.random, "set_seed", lambda s: (sets.append(s), real(s))[1])
  keras.utils.set_random_seed(5)  # another seed in between
  child_training.seed_child(11)
  child_training.seed_child(11)
  again = [w.numpy() for w in build().weights]
  assert sets == [5, 11]  # once when the seed changed, not again
  for a, b in zip(reference, again):
    np.testing.assert_array_equal(a, b)
  assert shuffled() == order  # op-seeded pipelines: the same order
