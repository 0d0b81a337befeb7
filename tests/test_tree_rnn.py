"""TreeRNN is keras.layers.RNN with the input projection hoisted: same maths, same API."""

import json

import numpy as np
import pytest

import keras
import tensorflow as tf

from nas_tf import cells
from nas_tf import search_space
from nas_tf import specs
from nas_tf.tree_rnn import TreeRNN


def _random(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _pair(make_cell, **kwargs):
  """keras.layers.RNN and TreeRNN around twin cells with the same weights."""
  plain, fast = keras.layers.RNN(make_cell(), **kwargs), TreeRNN(make_cell(), **kwargs)
  x = _random((3, 6, 5), seed=0)
  plain(x), fast(x)  # build
  fast.set_weights(plain.get_weights())
  return plain, fast


_CELLS = {
    "nascell_projected": lambda: cells.NASCell(4, projection=3, use_bias=True),
    "tree_base8": lambda: cells.TreeCell(
        search_space.RNNCellSearchSpace(base=8).sample(np.random.default_rng(7)), 4),
    "tree_base2": lambda: cells.TreeCell(specs.lstm_like_base2_spec(), 4),
}


@pytest.mark.parametrize("name", sorted(_CELLS))
def test_same_outputs_states_and_gradients_as_keras_rnn(name):
  plain, fast = _pair(_CELLS[name], return_sequences=True, return_state=True)
  x = tf.constant(_random((3, 6, 5), seed=1))
  initial = [tf.constant(_random((3, int(d)), seed=2 + i))
             for i, d in enumerate(plain.cell.state_size)]
  results = []
  for layer in (plain, fast):
    with tf.GradientTape() as tape:
      tape.watch(x)
      out, *states = layer(x, initial_state=initial)
      loss = tf.reduce_sum(out ** 2) + sum(tf.reduce_sum(s) for s in states)
    results.append((out, states, tape.gradient(loss, [x, *layer.trainable_weights])))
  (out_a, states_a, grads_a), (out_b, states_b, grads_b) = results
  np.testing.assert_allclose(out_b, out_a, atol=1e-5)
  for a, b in zip(states_a + grads_a, states_b + grads_b):
    np.testing.assert_allclose(b, a, atol=1e-4, rtol=1e-4)


def test_mask_and_go_backwards_match_keras_rnn():
  embed = keras.layers.Embedding(10, 5, mask_zero=True)
  tokens = np.array([[3, 5, 2, 0, 0], [4, 1, 7, 6, 9]])
  for kwargs in ({"return_sequences": True}, {"go_backwards": True}):
    plain, fast = _pair(_CELLS["tree_base8"], **kwargs)
    np.testing.assert_allclose(fast(embed(tokens)), plain(embed(tokens)), atol=1e-5)


def test_a_model_with_tree_rnn_saves_and_loads(tmp_path):
  inputs = keras.Input((6, 5))
  hidden = TreeRNN(cells.NASCell(4), return_sequences=True)(inputs)
  model = keras.Model(inputs, keras.layers.Dense(2)(hidden))
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.models.load_model(path)
  x = _random((2, 6, 5), seed=3)
  np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                             atol=1e-6)
  layer = loaded.layers[1]
  assert isinstance(layer, TreeRNN)
  assert isinstance(layer.cell, cells.NASCell)
  as_json = lambda config: json.loads(json.dumps(config))  # tuples become lists
  assert as_json(layer.get_config()) == as_json(model.layers[1].get_config())


def test_bad_arguments_say_what_is_wrong():
  with pytest.raises(TypeError, match="LSTMCell"):
    TreeRNN(keras.layers.LSTMCell(3))


def test_bidirectional_wraps_it_like_keras_rnn():
  x = _random((2, 5, 3), seed=4)
  plain = keras.layers.Bidirectional(keras.layers.RNN(cells.NASCell(4), return_sequences=True))
  fast = keras.layers.Bidirectional(TreeRNN(cells.NASCell(4), return_sequences=True))
  plain(x), fast(x)
  fast.set_weights(plain.get_weights())
  np.testing.assert_allclose(fast(x), plain(x), atol=1e-5)


def test_language_models_pick_tree_rnn_and_take_keras_rnn_on_request():
  from nas_tf import children  # pylint: disable=g-import-not-at-top
  spec = specs.nascell_spec()
  default = children.build_language_model(spec, vocab_size=11, units=4, num_layers=1,
                                          init_scale=0.1)
  plain = children.build_language_model(spec, vocab_size=11, units=4, num_layers=1,
                                        init_scale=0.1, recurrent_layer=keras.layers.RNN)
  assert type(default.get_layer("rnn_0")) is TreeRNN
  assert type(plain.get_layer("rnn_0")) is keras.layers.RNN
  plain.set_weights(default.get_weights())
  tokens = np.random.default_rng(0).integers(0, 11, size=(2, 5))
  np.testing.assert_allclose(plain(tokens), default(tokens), atol=1e-5)
  with pytest.raises(TypeError, match="recurrent_layer must be"):
    children.build_language_model(spec, vocab_size=11, units=4,
                                  recurrent_layer=keras.layers.LSTM(3))
