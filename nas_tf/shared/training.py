"""Training and scoring with shared weights (Pham et al. 2018, ENAS §2.2).

:class:`RNNSharedTrainer` (here) and :class:`nas_tf.shared.cnn.CNNSharedTrainer` hold one
over-parameterised model, its optimiser and data positions; ``train(archs, first_batch)``
runs one shared-weight phase, one sampled architecture per minibatch, and
``evaluate(arch, first_batch, num_batches)`` scores one architecture with the shared
weights. The search loop drives them through
:class:`nas_tf.search.evaluators.shared.SharedEvaluator`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf

from nas_tf.training import lm as lm_training
from nas_tf.training import optimizers
from nas_tf import search_space as search_space_lib
from nas_tf.config import SearchConfig


def make_shared_optimizer(config: SearchConfig):
  """The shared weights' optimiser, built like a child's from ``config.shared``."""
  s = config.shared
  # A constant rate: the shared weights train for as long as the search runs.
  return optimizers.make_optimizer(dataclasses.replace(
      config.child, optimizer=s.optimizer, learning_rate=s.learning_rate,
      clipnorm=s.clipnorm, lr_schedule="constant"), steps_per_epoch=1)


def apply_if_finite(optimizer, loss, grads, variables):
  """Applies ``grads`` unless the loss or a gradient is NaN/inf; returns the loss.

  Some cells of the space are unstable (unbounded ``identity``/``relu`` chains of
  ``elem_mult``); trained alone such a child just fails, but one NaN step would poison
  the weights every other child shares. So the batch is skipped instead; the returned
  loss stays non-finite, which the caller counts.
  """
  finite = tf.math.is_finite(loss) & tf.math.is_finite(tf.linalg.global_norm(grads))

  def apply():
    optimizer.apply(grads, variables)
    return tf.constant(True)

  tf.cond(finite, apply, lambda: tf.constant(False))
  return loss


class RNNSharedTrainer:
  """The shared PTB language model, its optimiser and data positions (ENAS §2.1-2.2).

  Sized like an independent child (``config.child``: lm_units, lm_layers, batch_size,
  num_steps, max_train_examples, max_eval_examples), so one pass of :meth:`train` over
  the training tokens costs about one child epoch.
  """

  def __init__(self, config: SearchConfig, space: search_space_lib.RNNCellSearchSpace,
               data):
    from nas_tf.data import ptb  # pylint: disable=g-import-not-at-top
    from nas_tf.shared import rnn  # pylint: disable=g-import-not-at-top
    c = config.child
    train_ids, valid_ids = data.train, data.valid
    if c.max_train_examples is not None:
      train_ids = train_ids[:c.max_train_examples]
    if c.max_eval_examples is not None:
      valid_ids = valid_ids[:c.max_eval_examples]
    self.train_x, self.train_y = ptb.make_lm_windows(train_ids, c.batch_size, c.num_steps)
    self.valid_x, self.valid_y = ptb.make_lm_windows(valid_ids, c.batch_size, c.num_steps)
    self.config = config
    self.model = rnn.SharedLanguageModel(space, vocab_size=len(data.vocab),
                                         units=c.lm_units, num_layers=c.lm_layers,
                                         name="shared_lm")
    self.model.build()
    self.optimizer = make_shared_optimizer(config)
    self.optimizer.build(self.model.trainable_variables)
    self.shared_params = int(sum(np.prod(v.shape) for v in self.model.trainable_variables))
    self._train_step = tf.function(self._train_step_fn)
    self._eval_step = tf.function(self._eval_step_fn)

  def num_params(self, spec) -> int:
    """Parameters of the standalone child: every cell shares the whole model's."""
    del spec  # only the leaves have weights, and every cell has all of them
    return self.shared_params

  @property
  def num_train_batches(self) -> int:
    return len(self.train_x)

  def _loss(self, x, y, arch, states):
    logits, states = self.model(x, arch, states)
    loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
        y, logits, from_logits=True))
    return loss, states

  def _train_step_fn(self, x, y, arch, states):
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      loss, states = self._loss(x, y, arch, states)
    grads = tape.gradient(loss, variables)
    return apply_if_finite(self.optimizer, loss, grads, variables), states

  def _eval_step_fn(self, x, y, arch, states):
    return self._loss(x, y, arch, states)

  def train(self, archs: np.ndarray, first_batch: int) -> float:
    """One shared-weight phase: batch ``first_batch + j`` with architecture ``archs[j]``."""
    states = self.model.initial_states(self.config.child.batch_size)
    losses = []
    for j, arch in enumerate(archs):
      b = (first_batch + j) % len(self.train_x)
      if b == 0:  # a new pass over the stream: the carried state would be meaningless
        states = self.model.initial_states(self.config.child.batch_size)
      loss, states = self._train_step(self.train_x[b], self.train_y[b],
                                      tf.constant(arch, tf.int32), states)
      if not math.isfinite(float(loss)):
        # The carried state of a diverged cell would poison the next batch.
        states = self.model.initial_states(self.config.child.batch_size)
      losses.append(float(loss))
    return mean_finite(losses)

  def evaluate(self, arch, first_batch: int, num_batches: Optional[int]) -> dict:
    """Metrics of one architecture with the shared weights on validation batches.

    ``num_batches`` consecutive batches from ``first_batch`` (None = the whole subset).
    """
    n = len(self.valid_x) if num_batches is None else min(num_batches, len(self.valid_x))
    first = 0 if num_batches is None else first_batch % len(self.valid_x)
    states = self.model.initial_states(self.config.child.batch_size)
    arch = tf.constant(arch, tf.int32)
    total = 0.0
    for j in range(n):
      b = (first + j) % len(self.valid_x)
      if b == 0 and j:
        states = self.model.initial_states(self.config.child.batch_size)
      loss, states = self._eval_step(self.valid_x[b], self.valid_y[b], arch, states)
      total += float(loss)
    val_loss = total / n
    ok = math.isfinite(val_loss)
    return {"status": "ok" if ok else "nan", "val_loss": val_loss,
            "val_perplexity": lm_training.perplexity(val_loss),
            "vocab_size": int(self.model.vocab_size),
            "error": None if ok else "shared-weight loss is NaN or inf"}


def mean_finite(losses) -> float:
  """Mean over the batches that were applied; logs how many were skipped."""
  finite = [l for l in losses if math.isfinite(l)]
  if len(finite) < len(losses):
    logging.info("Skipped %d of %d shared batches with a non-finite loss.",
                 len(losses) - len(finite), len(losses))
  return float(np.mean(finite)) if finite else float("nan")
