"""Tests of the recurrent cells of paper §3.4: the maths first, then the Keras contract."""

import json
import math

import numpy as np
import pytest

import keras
import tensorflow as tf

from nas_tf import cells
from nas_tf import search_space
from nas_tf import specs

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seed():
  keras.utils.set_random_seed(1234)


# ----------------------------------------------------------------------------------------
# Independent numpy references.

_NP_COMB = {"add": np.add, "elem_mult": np.multiply, "max": np.maximum}
_NP_ACT = {"identity": lambda v: v, "tanh": np.tanh,
           "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
           "relu": lambda v: np.maximum(v, 0), "sin": np.sin}


def np_tree_step(spec, x, c_prev, h_prev, kernel, recurrent, bias):
  """One step of the tree semantics, evaluated recursively from the root.

  Written differently from the library on purpose (top-down with memoisation rather
  than a level-order loop) so the two do not share a mistake.
  """
  base = spec.base
  xw = np.split(x @ kernel, base, axis=-1)
  hw_full = h_prev @ recurrent + (0 if bias is None else bias)
  hw = np.split(hw_full, base, axis=-1)
  pre, out = {}, {}

  def value(node):
    if node in out:
      return out[node]
    n = spec.nodes[node]
    if node < base:
      p = _NP_COMB[n.combination](xw[node], hw[node])
    else:
      left, right = 2 * (node - base), 2 * (node - base) + 1
      p = _NP_COMB[n.combination](value(left), value(right))
    a = _NP_ACT[n.activation](p)
    if node == spec.inject_node:
      a = _NP_ACT[spec.inject_activation](_NP_COMB[spec.inject_combination](a, c_prev))
    pre[node], out[node] = p, a
    return a

  h = value(spec.num_nodes - 1)
  return pre[spec.cell_index], h


def np_tf_nascell_step(x, c_prev, m_prev, kernel, recurrent, bias, projection):
  """TensorFlow's NASCell equations written out gate by gate (paper Figure 8)."""
  sig = _NP_ACT["sigmoid"]
  relu = _NP_ACT["relu"]
  m_mat = m_prev @ recurrent + (0 if bias is None else bias)
  i = np.split(x @ kernel, 8, axis=-1)
  m = np.split(m_mat, 8, axis=-1)
  l1 = [sig(i[0] + m[0]), relu(i[1] + m[1]), sig(i[2] + m[2]), relu(i[3] * m[3]),
        np.tanh(i[4] + m[4]), sig(i[5] + m[5]), np.tanh(i[6] + m[6]), sig(i[7] + m[7])]
  l2_0 = np.tanh(l1[0] * l1[1])
  l2_1 = np.tanh(l1[2] + l1[3])
  l2_2 = np.tanh(l1[4] * l1[5])
  l2_3 = sig(l1[6] + l1[7])
  l2_0 = np.tanh(l2_0 + c_prev)  # Cell inject.
  new_c = l2_0 * l2_1
  l3_1 = np.tanh(l2_2 + l2_3)
  new_m = np.tanh(new_c * l3_1)
  if projection is not None:
    new_m = new_m @ projection
  return new_c, new_m


def run_rnn(cell, x):
  """Returns (sequence outputs, final c, final h) of RNN(cell) on x."""
  out, c, h = keras.layers.RNN(cell, return_sequences=True, return_state=True)(x)
  return np.asarray(out), np.asarray(c), np.asarray(h)


def np_unroll(step, x, c_size, h_size, *weights):
  batch = x.shape[0]
  c, h = np.zeros((batch, c_size)), np.zeros((batch, h_size))
  outs = []
  for t in range(x.shape[1]):
    c, h = step(x[:, t], c, h, *weights)
    outs.append(h)
  return np.stack(outs, axis=1), c, h


def random_inputs(shape, seed=0):
  return np.random.default_rng(seed).normal(size=shape).astype("float32")


# ----------------------------------------------------------------------------------------
# The maths.

def test_golden_base2_constant_weights():
  """Figure 5's base-2 cell by hand: kernel 0.1, recurrent 0.2, bias 0, units 2."""
  spec = specs.lstm_like_base2_spec()  # n0 tanh(+), n1 relu(*), n2 sigmoid(*); inject
  # relu(n0 + c) at node 0; c = pre(n1).
  cell = cells.TreeCell(spec, 2, kernel_initializer=keras.initializers.Constant(0.1),
                        recurrent_initializer=keras.initializers.Constant(0.2))
  x = np.array([[[1.0, 2.0], [1.0, 0.5], [1.0, 1.0]]], dtype="float32")
  sig = lambda v: 1 / (1 + math.exp(-v))
  # Step 1: xW = 0.1*3 = 0.3 per unit, hW = 0. pre1 = 0.3*0 = 0 so h1 = sigmoid(0).
  c1, h1 = 0.0, 0.5
  # Step 2: xW = 0.15, hW = 0.2*(0.5+0.5) = 0.2.
  c2 = 0.15 * 0.2
  h2 = sig(max(math.tanh(0.35) + c1, 0) * max(c2, 0))
  # Step 3: xW = 0.2, hW = 0.2*2*h2; the injection now adds a non-zero c2.
  hw3 = 0.4 * h2
  c3 = 0.2 * hw3
  h3 = sig(max(math.tanh(0.2 + hw3) + c2, 0) * max(c3, 0))
  np.testing.assert_allclose([c2, h2, c3, h3], [0.03, 0.5025227952, 0.0402018236,
                                                0.5041287548], atol=1e-9)
  for steps, (c_want, h_want) in [(1, (c1, h1)), (2, (c2, h2)), (3, (c3, h3))]:
    out, c, h = run_rnn(cell, x[:, :steps])
    np.testing.assert_allclose(c, np.full((1, 2), c_want), atol=1e-6)
    np.testing.assert_allclose(h, np.full((1, 2), h_want), atol=1e-6)
    np.testing.assert_allclose(out[:, -1], h, atol=0)


def _random_specs():
  rng = np.random.default_rng(7)
  wide = dict(combinations=("add", "elem_mult", "max"),
              activations=("identity", "tanh", "sigmoid", "relu", "sin"))
  out = [search_space.RNNCellSearchSpace(base=8).sample(rng) for _ in range(3)]
  out += [search_space.RNNCellSearchSpace(base=8, **wide).sample(rng) for _ in range(2)]
  out += [search_space.RNNCellSearchSpace(base=b, **wide).sample(rng)
          for b in (2, 2, 4, 4)]
  # Make sure the rarer paths are hit whatever the sampler draws: max and sin at a
  # leaf, inject and cell index at the root and at a leaf.
  nodes = [specs.TreeNode("max", "sin"), specs.TreeNode("add", "sin"),
           specs.TreeNode("max", "identity")]
  out.append(specs.RNNCellSpec(nodes=tuple(nodes), inject_node=2,
                               inject_combination="max", inject_activation="sin",
                               cell_index=0))
  return out


@pytest.mark.parametrize("spec", _random_specs(), ids=lambda s: f"b{s.base}")
def test_tree_cell_matches_numpy_reference(spec):
  units, dim = 3, 5
  cell = cells.TreeCell(spec, units, bias_initializer="random_normal")
  x = random_inputs((4, 6, dim))
  out, c, h = run_rnn(cell, x)
  kernel, recurrent, bias = (np.asarray(w) for w in cell.get_weights())
  assert kernel.shape == (dim, spec.base * units)
  assert recurrent.shape == (units, spec.base * units)
  assert bias.shape == (spec.base * units,)
  step = lambda xt, c_, h_: np_tree_step(spec, xt, c_, h_, kernel, recurrent, bias)
  want_out, want_c, want_h = np_unroll(step, x, units, units)
  np.testing.assert_allclose(out, want_out, atol=ATOL)
  np.testing.assert_allclose(c, want_c, atol=ATOL)
  np.testing.assert_allclose(h, want_h, atol=ATOL)


@pytest.mark.parametrize("use_bias", [False, True])
def test_nascell_equals_tree_cell_and_tf_equations(use_bias):
  units, dim = 4, 3
  x = random_inputs((5, 7, dim), seed=1)
  nas = cells.NASCell(units, use_bias=use_bias, bias_initializer="random_normal")
  tree = cells.TreeCell(specs.nascell_spec(), units, use_bias=use_bias)
  nas_out = run_rnn(nas, x)
  tree.build((None, dim))
  tree.set_weights(nas.get_weights())
  tree_out = run_rnn(tree, x)
  for a, b in zip(nas_out, tree_out):
    np.testing.assert_allclose(a, b, atol=1e-6)
  weights = [np.asarray(w) for w in nas.get_weights()] + ([] if use_bias else [None])
  step = lambda xt, c_, m_: np_tf_nascell_step(xt, c_, m_, *weights, None)
  for a, b in zip(nas_out, np_unroll(step, x, units, units)):
    np.testing.assert_allclose(a, b, atol=ATOL)


def test_nascell_projection():
  units, proj, dim = 6, 4, 3
  cell = cells.NASCell(units, projection=proj, use_bias=True,
                       bias_initializer="random_normal")
  assert cell.state_size == [units, proj] and cell.output_size == proj
  x = random_inputs((2, 5, dim), seed=2)
  out, c, m = run_rnn(cell, x)
  assert out.shape == (2, 5, proj) and c.shape == (2, units) and m.shape == (2, proj)
  names = {w.name: tuple(w.shape) for w in cell.weights}
  assert names == {"kernel": (dim, 8 * units), "recurrent_kernel": (proj, 8 * units),
                   "bias": (8 * units,), "projection_weights": (units, proj)}
  kernel, recurrent, bias, projection = (np.asarray(w) for w in cell.get_weights())
  step = lambda xt, c_, m_: np_tf_nascell_step(xt, c_, m_, kernel, recurrent, bias,
                                               projection)
  for a, b in zip((out, c, m), np_unroll(step, x, units, proj)):
    np.testing.assert_allclose(a, b, atol=ATOL)


# ----------------------------------------------------------------------------------------
# The Keras contract.

def _sequence_model(cell, dim=3, steps=5):
  inputs = keras.Input((steps, dim))
  hidden = keras.layers.RNN(cell)(inputs)
  return keras.Model(inputs, keras.layers.Dense(2)(hidden))


@pytest.mark.parametrize("make_cell", [
    lambda: cells.TreeCell(specs.nascell_spec(), 4, name="tree"),
    lambda: cells.NASCell(4, projection=3, use_bias=True, name="nas"),
], ids=["tree", "nas"])
def test_keras_save_and_reload(make_cell, tmp_path):
  model = _sequence_model(make_cell())
  x = random_inputs((2, 5, 3), seed=3)
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.models.load_model(path)
  np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
  original_cell, loaded_cell = model.layers[1].cell, loaded.layers[1].cell
  assert type(loaded_cell) is type(original_cell)
  assert loaded_cell.get_config() == original_cell.get_config()


def test_config_round_trip():
  spec = specs.lstm_like_base2_spec()
  cell = cells.TreeCell(spec, 7, use_bias=False, kernel_initializer="orthogonal",
                        name="my_cell")
  config = cell.get_config()
  assert config["spec"] == spec.to_dict() and config["name"] == "my_cell"
  json.dumps(config)  # The config must be plain JSON for the .keras format.
  clone = cells.TreeCell.from_config(config)
  assert clone.spec == spec and clone.units == 7 and not clone.use_bias
  assert clone.get_config() == config
  nas = cells.NASCell(5, projection=2)
  assert cells.NASCell.from_config(nas.get_config()).get_config() == nas.get_config()


def test_spec_accepts_dict_and_json():
  spec = specs.nascell_spec()
  for form in (spec, spec.to_dict(), spec.to_json()):
    assert cells.TreeCell(form, 2).spec == spec


def test_bidirectional_stacking_and_gradients():
  spec = search_space.RNNCellSearchSpace(base=4).sample(np.random.default_rng(3))
  inputs = keras.Input((6, 3))
  stacked = keras.layers.RNN([cells.TreeCell(specs.nascell_spec(), 4),
                              cells.NASCell(3, use_bias=True)], return_sequences=True)
  hidden = stacked(inputs)
  hidden = keras.layers.Bidirectional(keras.layers.RNN(cells.TreeCell(spec, 5)))(hidden)
  model = keras.Model(inputs, keras.layers.Dense(1)(hidden))
  assert model.output_shape == (None, 1)
  x = tf.constant(random_inputs((4, 6, 3), seed=4))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(x) ** 2)
  grads = tape.gradient(loss, model.trainable_weights)
  cell_weights = 0
  for w, g in zip(model.trainable_weights, grads):
    assert g is not None, w.path
    assert np.any(np.asarray(g) != 0), w.path
    cell_weights += w.name in ("kernel", "recurrent_kernel", "bias")
  # 2 stacked cells (3 + 3 weights) and 2 directions (3 + 3), plus the Dense layer's 2.
  assert cell_weights == 12 + 2


def test_masking_keeps_state():
  embed = keras.layers.Embedding(10, 3, mask_zero=True)
  rnn = keras.layers.RNN(cells.TreeCell(specs.nascell_spec(), 4), return_sequences=True,
                         return_state=True)
  padded = np.array([[3, 5, 2, 0, 0], [4, 1, 7, 6, 9]])
  out, c, h = rnn(embed(padded))
  short_out, short_c, short_h = rnn(embed(padded[:1, :3]))
  np.testing.assert_allclose(c[:1], short_c, atol=1e-6)
  np.testing.assert_allclose(h[:1], short_h, atol=1e-6)
  # Masked steps repeat the last real output.
  np.testing.assert_allclose(out[0, 3:], np.repeat(short_out[:, -1], 2, axis=0), atol=1e-6)
  assert not np.allclose(out[1, 3], out[1, 2])


def test_jit_compile_matches_eager():
  model = _sequence_model(cells.TreeCell(specs.nascell_spec(), 4))
  x = tf.constant(random_inputs((3, 5, 3), seed=5))
  eager = model(x)
  compiled = tf.function(lambda v: model(v), jit_compile=True)(x)
  graph = tf.function(lambda v: model(v))(x)
  np.testing.assert_allclose(compiled, eager, atol=1e-5)
  np.testing.assert_allclose(graph, eager, atol=1e-6)


def test_initial_state():
  cell = cells.NASCell(5, projection=2)
  c, m = cell.get_initial_state(batch_size=3)
  assert c.shape == (3, 5) and m.shape == (3, 2)


# ----------------------------------------------------------------------------------------
# load_cell and bad arguments.

def test_load_cell_forms(tmp_path):
  spec = specs.lstm_like_base2_spec()
  (tmp_path / "spec.json").write_text(spec.to_json())
  for source in (spec, spec.to_dict(), spec.to_json(), tmp_path, str(tmp_path),
                 tmp_path / "spec.json", str(tmp_path / "spec.json")):
    cell = cells.load_cell(source, 3, use_bias=False)
    assert isinstance(cell, cells.TreeCell) and cell.spec == spec and cell.trainable
    assert cell.units == 3 and not cell.use_bias


def test_load_cell_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.json"):
    cells.load_cell(tmp_path / "missing.json", 3)
  with pytest.raises(FileNotFoundError, match="spec.json"):
    cells.load_cell(tmp_path, 3)
  cnn = specs.CNNSpec(layers=(specs.ConvLayer(3, 3, 8),))
  (tmp_path / "cnn.json").write_text(cnn.to_json())
  with pytest.raises(specs.SpecError, match="'cnn'"):
    cells.load_cell(tmp_path / "cnn.json", 3)
  with pytest.raises(specs.SpecError, match="'cnn'"):
    cells.load_cell(cnn.to_dict(), 3)


@pytest.mark.parametrize("units", [0, -3, 2.5, "8", True, None])
def test_bad_units(units):
  with pytest.raises(ValueError, match=f"units.*{units!r}"):
    cells.TreeCell(specs.nascell_spec(), units)
  with pytest.raises(ValueError, match=f"units.*{units!r}"):
    cells.NASCell(units)


def test_bad_args():
  with pytest.raises(ValueError, match="projection.*0"):
    cells.NASCell(4, projection=0)
  with pytest.raises(ValueError, match="use_bias.*'yes'"):
    cells.TreeCell(specs.nascell_spec(), 4, use_bias="yes")
  with pytest.raises(specs.SpecError, match="'cnn'"):
    cells.TreeCell(specs.CNNSpec(layers=(specs.ConvLayer(3, 3, 8),)), 4)
  with pytest.raises(specs.SpecError, match="JSON"):
    cells.TreeCell("{not json", 4)
  with pytest.raises(specs.SpecError, match="nodes"):
    cells.TreeCell({"kind": "rnn", "nodes": [], "inject_node": 0,
                    "inject_combination": "add", "inject_activation": "tanh",
                    "cell_index": 0}, 4)
  with pytest.raises(TypeError, match="int: 42"):
    cells.TreeCell(42, 4)


# ----------------------------------------------------------------------------------------
# specs.dead_cell_reason against the real cell.


def _output_and_gradients(spec, steps=8):
  """Max |h_t| over a zero-state run and max |gradient| of a loss on every h_t."""
  cell = cells.TreeCell(spec, 3)
  rnn = keras.layers.RNN(cell, return_sequences=True)
  x = tf.constant(random_inputs((4, steps, 5)))
  rnn(x)  # build
  probe = tf.constant(random_inputs((4, steps, 3), seed=1))
  with tf.GradientTape() as tape:
    out = rnn(x)
    loss = tf.reduce_sum(out * probe)
  grads = tape.gradient(loss, cell.trainable_variables)
  return (float(tf.reduce_max(tf.abs(out))),
          max(float(tf.reduce_max(tf.abs(g))) for g in grads))


def test_dead_cell_analysis_matches_the_cell():
  """Dead by the analysis <=> the cell's output and every weight gradient are exactly 0."""
  rng = np.random.default_rng(0)
  seen = {True: 0, False: 0}
  for base in (2, 4):
    space = search_space.RNNCellSearchSpace(
        base=base, activations=("identity", "tanh", "sigmoid", "relu", "sin"))
    for _ in range(25):
      spec = space.sample(rng)
      dead = specs.is_dead_cell(spec)
      out, grad = _output_and_gradients(spec)
      assert (out == 0.0 and grad == 0.0) is dead, (spec.describe(), out, grad)
      seen[dead] += 1
  assert seen[True] >= 3 and seen[False] >= 10, seen
