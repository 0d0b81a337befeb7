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
