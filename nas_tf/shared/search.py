"""The weight-sharing search loop, ``evaluation='shared'`` (Pham et al. 2018, ENAS §2.2).

ENAS alternates two phases with the controller and REINFORCE of Zoph & Le (2017, §3.2):

(a) shared-weight training: ``shared.train_batches`` training minibatches, each run with
    one architecture sampled from the controller (ENAS §2.2, "training the shared
    parameters ω"), the carried recurrent state reset at the start of the phase;
(b) a controller step: ``m`` architectures are sampled, each is scored *with the shared
    weights* on ``shared.eval_batches`` validation minibatches (reward ``c / ppl^2`` on
    PTB, accuracy cubed on CIFAR-10, :mod:`nas_tf.rewards`), and REINFORCE moves the
    controller against the EMA baseline (ENAS §2.2, "training the controller θ").

It writes what :func:`nas_tf.search.run` writes -- ``config.json``, ``results.jsonl``
(one record per sampled child, ``"evaluation": "shared"``), ``state.json``, one
``checkpoints/step-N`` (shared weights + their optimiser + controller + its optimiser
and accumulators), ``best.json``, ``summary.txt``, ``tensorboard/`` -- plus
``derived.json``: after the last step ``shared.derive_samples`` architectures are sampled
and the best on the validation subset is kept (ENAS §2.2, "deriving architectures").
Specs are the ordinary spec format, so a found cell is exported and retrained like any
other.

Resuming: sampling and data positions are pure functions of (seed, step), and the
checkpoint holds the state after the last finished step, so a rerun repeats the
interrupted step and reuses the children it had already logged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from nas_tf import child_training
from nas_tf import lm_training
from nas_tf import search as search_lib
from nas_tf import search_space as search_space_lib
from nas_tf.config import SearchConfig
from nas_tf.results import ResultsLog, atomic_write_text

DERIVED_FILE = "derived.json"
# The independent loop's record format and helpers, shared so both write the same files.
# pylint: disable=protected-access
_record = search_lib._record
_val_metric = search_lib._val_metric
_log_child = search_lib._log_child
_prune_checkpoints = search_lib._prune_checkpoints
_TensorBoard = search_lib._TensorBoard
# pylint: enable=protected-access


def make_shared_optimizer(config: SearchConfig):
  """The shared weights' optimiser, built like a child's from ``config.shared``."""
  s = config.shared
  return child_training.make_optimizer(dataclasses.replace(
      config.child, optimizer=s.optimizer, learning_rate=s.learning_rate,
      clipnorm=s.clipnorm))


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
               data=None):
    from nas_tf import data as data_lib  # pylint: disable=g-import-not-at-top
    from nas_tf.data import ptb  # pylint: disable=g-import-not-at-top
    from nas_tf.shared import rnn  # pylint: disable=g-import-not-at-top
    c = config.child
    data = data or data_lib.load_ptb(config.data_dir)
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
    return _mean_finite(losses)

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


def _mean_finite(losses) -> float:
  """Mean over the batches that were applied; logs how many were skipped."""
  finite = [l for l in losses if math.isfinite(l)]
  if len(finite) < len(losses):
    logging.info("Skipped %d of %d shared batches with a non-finite loss.",
                 len(losses) - len(finite), len(losses))
  return float(np.mean(finite)) if finite else float("nan")


def _make_trainer(config: SearchConfig, space):
  if config.task == "ptb":
    return RNNSharedTrainer(config, space)
  from nas_tf.shared import cnn  # pylint: disable=g-import-not-at-top
  return cnn.CNNSharedTrainer(config, space)


def _space(config: SearchConfig):
  space = search_lib.make_space(config)
  if isinstance(space, search_space_lib.CNNSearchSpace):
    from nas_tf.shared import cnn  # pylint: disable=g-import-not-at-top
    space = cnn.shared_space(space, config.shared.cnn_filters)
  return space


def _sampler_space(sampler, depth):
  space = (sampler.controller.space if isinstance(sampler, search_lib.RLSampler)
           else sampler.space)
  return space if depth is None else space.with_num_layers(depth)


def _training_archs(sampler, config: SearchConfig, step: int, depth) -> np.ndarray:
  """Architectures of one shared-weight phase, a pure function of (seed, step)."""
  n = config.shared.train_batches
  if isinstance(sampler, search_lib.RLSampler):
    # A seed pair no controller step uses ((seed, step) is step's own sample).
    tokens, _, _ = sampler.controller.sample_tokens(n, seed=(config.seed, -1 - step),
                                                    num_layers=depth)
    return tokens.numpy()
  space = _sampler_space(sampler, depth)
  rng = np.random.default_rng([config.seed, step, 1])
  return np.asarray([space.sample_tokens(rng) for _ in range(n)], dtype=np.int32)


def _checkpoint(trainer, sampler) -> tf.train.Checkpoint:
  parts = {"shared_model": trainer.model, "shared_optimizer": trainer.optimizer}
  if isinstance(sampler, search_lib.RLSampler):
    parts.update(controller=sampler.controller, optimizer=sampler.optimizer,
                 accumulators=sampler.accumulators, accumulated=sampler.accumulated)
  return tf.train.Checkpoint(**parts)


def derive(trainer, sampler, config: SearchConfig, depth, out: str) -> dict:
  """Samples ``derive_samples`` architectures; keeps the best on validation (ENAS §2.2)."""
  n = config.shared.derive_samples
  space = _sampler_space(sampler, depth)
  if isinstance(sampler, search_lib.RLSampler):
    tokens, _, _ = sampler.controller.sample_tokens(n, seed=(config.seed, -(10**6)),
                                                    num_layers=depth)
    tokens = tokens.numpy()
  else:
    rng = np.random.default_rng([config.seed, 10**6])
    tokens = np.asarray([space.sample_tokens(rng) for _ in range(n)], dtype=np.int32)
  candidates = []
  for t in tokens:
    metrics = trainer.evaluate(t, 0, None)
    spec = space.decode(t)
    reward = _record(config, -1, 0, t.tolist(), spec, depth, metrics, None)["reward"]
    candidates.append({"spec": spec.to_dict(), "describe": spec.describe(),
                       "tokens": t.tolist(), "reward": reward,
                       "val_metric": _val_metric(config.task, metrics)})
  best = max(candidates, key=lambda r: r["reward"])
  result = dict(best, evaluation="shared", candidates=candidates)
  atomic_write_text(os.path.join(out, DERIVED_FILE), json.dumps(result, indent=2))
  logging.info("Derived architecture (best of %d on validation, reward %.5f): %s", n,
               best["reward"], best["describe"])
  return result


def run(config: SearchConfig) -> dict[str, Any]:
  """Runs (or resumes) a weight-sharing search; returns the summary of ``search.run``.

  The summary also has ``"derived"``: the content of ``derived.json``.
  """
  lock = search_lib.prepare_output_dir(config)  # released however the run ends
  try:
    out = config.output_dir
    space = _space(config)
    log = ResultsLog(os.path.join(out, "results.jsonl"))
    state = search_lib.load_state(out, phases=("shared", "controller"), log=log,
                                  task=config.task)
    sampler = search_lib.make_sampler(space, config, state)
    trainer = _make_trainer(config, space)
    checkpoint = _checkpoint(trainer, sampler)
    if state["checkpoint"]:
      checkpoint.read(state["checkpoint"]).assert_existing_objects_matched()
      logging.info("Resuming shared search %s at step %d (%d children logged).", out,
                   state["step"], len(log))
    tensorboard = _TensorBoard(os.path.join(out, "tensorboard"))
    ckpt_dir = os.path.join(out, search_lib.CHECKPOINT_DIR)
    m, s = config.children_per_step, config.shared
    depth = getattr(space, "num_layers", None)  # the shared CNN has a fixed depth
    start_time, evaluated_now = time.monotonic(), 0
    for step in range(state["step"], config.num_steps):
      step_start = time.monotonic()
      m_step = min(m, config.max_children - step * m)
      archs = _training_archs(sampler, config, step, depth)
      t0 = time.monotonic()
      train_loss = trainer.train(archs, step * s.train_batches)
      state["seconds"]["shared"] += time.monotonic() - t0
      tokens, specs = sampler.sample(step, m, depth)
      step_rewards = []
      for k in range(m_step):
        record = log.get(step, k)
        if record is None:
          t0 = time.monotonic()
          metrics = trainer.evaluate(np.asarray(tokens[k], np.int32), step * s.eval_batches,
                                     s.eval_batches)
          metrics.update(num_params=trainer.num_params(specs[k]),
                         train_seconds=time.monotonic() - t0, shared_train_loss=train_loss,
                         shared_params=trainer.shared_params)
          record = _record(config, step, k, tokens[k], specs[k], depth, metrics, None)
          record["evaluation"] = "shared"
          log.append(record)
          evaluated_now += 1
          _log_child(record, log, config, step, start_time, evaluated_now)
        step_rewards.append(record["reward"])
      t0 = time.monotonic()
      stats = sampler.update(step, list(tokens[:m_step]), step_rewards, depth)
      state["seconds"]["controller"] += time.monotonic() - t0
      tensorboard.write(step, search_lib.step_scalars(
          step_rewards, stats, log, **{"shared/train_loss": train_loss}))
      ckpt = checkpoint.write(os.path.join(ckpt_dir, f"step-{step + 1}"))
      state["seconds"]["total"] += time.monotonic() - step_start
      search_lib.commit_step(out, log, config.task, ckpt, {
          "step": step + 1, "baseline": search_lib.sampler_baseline(sampler),
          "checkpoint": ckpt, "seconds": state["seconds"]})
    derived_path = os.path.join(out, DERIVED_FILE)
    if os.path.exists(derived_path) and state["step"] >= config.num_steps:
      with open(derived_path) as f:
        derived = json.load(f)
    else:
      derived = derive(trainer, sampler, config, depth, out)
    best = log.best()
    if best:
      logging.info("Shared search done: %d children logged; best reward %.4f: %s", len(log),
                   best["reward"], best["describe"])
    return {"best": best, "num_children": len(log), "num_evaluated": evaluated_now,
            "output_dir": out, "derived": derived}
  finally:
    lock.release()


