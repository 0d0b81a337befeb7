"""Weight-sharing evaluation (Pham et al. 2018, ENAS §2): sub-graphs equal standalone children,
the shared model learns, the shared search logs, resumes, and moves the controller."""

import json
import os
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from nas_tf import cells
from nas_tf import children
from nas_tf import search_space
from nas_tf.shared import rnn

ROOT = pathlib.Path(__file__).resolve().parent.parent
WIDE = dict(combinations=("add", "elem_mult", "max"),
            activations=("identity", "tanh", "sigmoid", "relu", "sin"))


def test_shared_cell_subgraph_equals_tree_cell():
  """Every sampled spec run in the shared cell equals TreeCell(spec) with copied weights."""
  keras.utils.set_random_seed(0)
  space = search_space.RNNCellSearchSpace(base=8, **WIDE)
  rng = np.random.default_rng(0)
  shared = rnn.SharedTreeCell(8, 6, space.combinations, space.activations,
                              bias_initializer="glorot_uniform")
  x = rng.normal(size=(3, 5, 4)).astype("float32")
  shared.build(x.shape)
  run = tf.function(lambda x, arch: shared(x, arch))
  for _ in range(5):
    spec = space.sample(rng)
    out, (c, h) = run(x, shared.encode(spec))
    cell = cells.TreeCell(spec, 6)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer.build(x.shape)
    want_out, want_c, want_h = layer(x)
    shared.copy_to(cell)
    want_out, want_c, want_h = layer(x)
    np.testing.assert_allclose(out, want_out, atol=1e-5)
    np.testing.assert_allclose(c, want_c, atol=1e-5)
    np.testing.assert_allclose(h, want_h, atol=1e-5)
  # One graph for all specs: the architecture is a tensor, not a Python value.
  assert run.experimental_get_tracing_count() == 1


def test_shared_lm_equals_child_lm():
  keras.utils.set_random_seed(1)
  space = search_space.RNNCellSearchSpace(base=4)
  lm = rnn.SharedLanguageModel(space, vocab_size=11, units=5, num_layers=2)
  lm.build()
  spec = space.sample(np.random.default_rng(3))
  tokens = np.random.default_rng(4).integers(0, 11, size=(2, 7)).astype("int32")
  logits, _ = lm(tokens, lm.rnn_0.encode(spec))
  child = children.build_language_model(spec, vocab_size=11, units=5, num_layers=2)
  lm.copy_to_child(child)
  np.testing.assert_allclose(logits, child(tokens), atol=1e-5)


def test_shared_lm_loss_falls_on_repeating_sequence():
  keras.utils.set_random_seed(2)
  space = search_space.RNNCellSearchSpace(base=2)
  lm = rnn.SharedLanguageModel(space, vocab_size=5, units=8, num_layers=1)
  lm.build()
  optimizer = keras.optimizers.Adam(0.03)
  seq = np.tile(np.arange(5, dtype="int32"), 8)[None].repeat(4, axis=0)
  x, y = seq[:, :-1], seq[:, 1:]
  rng = np.random.default_rng(0)

  @tf.function
  def step(arch):
    with tf.GradientTape() as tape:
      logits, _ = lm(x, arch)
      loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
          y, logits, from_logits=True))
    optimizer.apply(tape.gradient(loss, lm.trainable_variables), lm.trainable_variables)
    return loss

  losses = [float(step(np.asarray(space.sample_tokens(rng), np.int32))) for _ in range(60)]
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_shared_cnn_subgraph_equals_build_cnn():
  from nas_tf.shared import cnn  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(3)
  space = cnn.shared_space(search_space.CNNSearchSpace(
      num_layers=4, filter_heights=(1, 3, 5), filter_widths=(1, 3), num_filters=(8,)), 8)
  net = cnn.SharedConvNet(space, num_classes=10)
  net.build()
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 8, 8, 3)).astype("float32")
  run = tf.function(lambda x, arch: net(x, arch))
  for _ in range(4):
    spec = space.sample(rng)
    child = children.build_cnn(spec, input_shape=(8, 8, 3))
    net.copy_to_child(spec, child)
    # Batch statistics in both (see nas_tf.shared.cnn on batch normalisation).
    np.testing.assert_allclose(run(x, net.encode(spec)), child(x, training=True), atol=1e-4)
  assert run.experimental_get_tracing_count() == 1


def test_shared_cnn_rejects_unsupported_space():
  from nas_tf.shared import cnn  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="stride 1 only"):
    cnn.shared_space(search_space.CNNSearchSpace(strides=(1, 2)), 16)
  with pytest.raises(ValueError, match="odd filter sizes"):
    cnn.shared_space(search_space.CNNSearchSpace(filter_heights=(2, 3)), 16)


def test_controller_moves_towards_the_rewarded_architecture():
  """REINFORCE sign sanity with the sampler the shared loop uses (Zoph & Le §3.2)."""
  from nas_tf.search.samplers import rl  # pylint: disable=g-import-not-at-top
  space = search_space.RNNCellSearchSpace(base=2)
  config = _search_config("unused", max_children=2)
  sampler = rl.RLSampler(space, config)
  tokens, _ = sampler.sample(0, 2, None)
  before, _ = sampler.controller.log_prob_tokens(np.asarray(tokens))
  sampler.update(0, tokens, [1.0, 0.0], None)
  after, _ = sampler.controller.log_prob_tokens(np.asarray(tokens))
  assert after[0] > before[0] and after[1] < before[1]


def _search_config(out, **kw):
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  base = dict(
      task="ptb", data_dir=str(ROOT / "testdata" / "ptb"), output_dir=str(out),
      max_children=4, children_per_step=2, evaluation="shared",
      space={"kind": "rnn", "base": 2, "combinations": ["add", "elem_mult"],
             "activations": ["identity", "tanh", "sigmoid", "relu"]},
      child=config_lib.ChildTrainingConfig(batch_size=4, num_steps=8, lm_units=8,
                                           lm_layers=1),
      controller=config_lib.ControllerConfig(learning_rate=0.05),
      shared=config_lib.SharedTrainingConfig(train_batches=3, derive_samples=2))
  base.update(kw)
  return config_lib.SearchConfig(**base)


def test_shared_search_end_to_end_and_resume(tmp_path):
  from nas_tf import export  # pylint: disable=g-import-not-at-top
  from nas_tf import search  # pylint: disable=g-import-not-at-top
  from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top
  out = tmp_path / "out"
  summary = search.run(_search_config(out))
  records = ResultsLog(str(out / "results.jsonl")).records
  assert len(records) == summary["num_children"] == 4
  assert all(r["evaluation"] == "shared" and r["status"] == "ok" and r["reward"] > 0
             for r in records)
  for name in ("config.json", "state.json", "best.json", "summary.txt", "derived.json"):
    assert (out / name).exists(), name
  state = json.loads((out / "state.json").read_text())
  assert state["step"] == 2 and os.path.exists(out / (state["checkpoint"] + ".index"))
  # The found cell is an ordinary spec: it exports like one from an independent search.
  # The best of a weight-sharing search is the derived architecture (ENAS §2.2), which
  # nas_train and nas_export take from the run directory; rank 2 on is the records'.
  derived = json.loads((out / "derived.json").read_text())
  assert export.select_record(str(out))["spec"] == derived["spec"]
  assert export.select_record(str(out), 2) in records
  # A larger budget resumes from the checkpoint and appends, never re-logs.
  summary = search.run(_search_config(out, max_children=8))
  keys = [(r["step"], r["index"]) for r in ResultsLog(str(out / "results.jsonl"))]
  assert len(keys) == len(set(keys)) == 8 and summary["num_evaluated"] == 4
  assert json.loads((out / "state.json").read_text())["step"] == 4
  # Rerunning a finished search does nothing.
  assert search.run(_search_config(out, max_children=8))["num_evaluated"] == 0


def test_non_finite_shared_step_is_skipped():
  """One diverging cell must not poison the weights all children share."""
  from nas_tf.shared import training as shared_training  # pylint: disable=g-import-not-at-top
  v = tf.Variable([1.0, 2.0])
  optimizer = keras.optimizers.SGD(0.1)
  optimizer.build([v])
  step = tf.function(lambda loss, g: shared_training.apply_if_finite(optimizer, loss, [g], [v]))
  step(tf.constant(float("nan")), tf.constant([1.0, 1.0]))
  step(tf.constant(1.0), tf.constant([float("inf"), 1.0]))
  np.testing.assert_allclose(v.numpy(), [1.0, 2.0])
  step(tf.constant(1.0), tf.constant([1.0, 1.0]))
  np.testing.assert_allclose(v.numpy(), [0.9, 1.9])
