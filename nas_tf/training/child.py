"""Train one child network and measure it (paper §4.1 CIFAR-10, §4.2 Penn Treebank).

``train_and_evaluate`` is a pure function of (spec, data, config, seed): it builds the
child, trains it, and returns a plain dict of metrics. It never raises for a bad child:
a child that cannot be built, is over the size caps, or diverges comes back with a
``status`` other than ``"ok"``, which the search turns into the failure reward.
"""

from __future__ import annotations

import math
import random
import time
import traceback
from typing import Any

from absl import logging
import keras
import numpy as np

from nas_tf import children
from nas_tf.training import latency
from nas_tf.training import lm as lm_training
from nas_tf.training import rungs as rungs_lib
from nas_tf import specs as specs_lib
from nas_tf.config import ChildTrainingConfig
from nas_tf.training.optimizers import make_optimizer


def seed_child(seed: int) -> None:
  """Seeds a child's initialisation, as ``keras.utils.set_random_seed`` does, but sets
  TensorFlow's global seed only when it changes.

  Setting it (even to the same value) clears the eager context's caches, so in a process
  shared with the controller (``isolation='inline'``) every child made the controller's
  next sample and update re-optimise their graphs, seconds each. Every random op of a
  child has an op-level seed (Keras' stateless initialisers and dropout draw theirs from
  Python's ``random``; the data pipelines are seeded explicitly), so what a child draws
  depends on the global seed's value, not on when it was set: the same numbers (the
  pinned-behaviour tests hold them). Not reset when the seed is unchanged: TensorFlow's
  counter for ops without a seed, and Keras' global generator for ``keras.random`` calls
  without one; a child must not make such calls (none does), or what it draws would
  depend on the children trained before it in the same process.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # (global seed, op seed) as TensorFlow derives them; reading it changes nothing.
  if tf.compat.v1.random.get_seed(0)[0] != seed % (2**31 - 1):
    keras.utils.set_random_seed(seed)
  else:
    random.seed(seed)
    np.random.seed(seed)

STATUS_OK = "ok"
STATUS_FAILED = "failed"        # the builder or training raised
STATUS_TOO_LARGE = "too_large"  # over max_params / max_activation_elements
STATUS_NAN = "nan"              # the loss diverged
STATUS_DEGENERATE = "degenerate"  # provably cannot learn (specs.dead_cell_reason): not trained


def _finite_history(history: dict) -> bool:
  return all(math.isfinite(v) for values in history.values() for v in values)


class _Progress(keras.callbacks.Callback):
  """One line per epoch once a child has trained longer than ``after`` seconds: a
  CIFAR-10 child can train for minutes, and silence looks like a hang."""

  def __init__(self, epochs: int, after: float = 20.0):
    super().__init__()
    self.epochs, self.after, self.start = epochs, after, time.monotonic()

  def on_epoch_end(self, epoch, logs=None):
    elapsed = time.monotonic() - self.start
    if elapsed >= self.after and epoch + 1 < self.epochs:
      logs = logs or {}
      logging.info("child: epoch %d/%d, val_accuracy %.4f, %.0f s (about %.0f s to go)",
                   epoch + 1, self.epochs, logs.get("val_accuracy", float("nan")), elapsed,
                   elapsed / (epoch + 1) * (self.epochs - epoch - 1))


class _Phases(keras.callbacks.Callback):
  """Seconds of the first training step (it traces the graph) and of the evaluations."""

  def __init__(self):
    super().__init__()
    self.seconds = {"first_step": 0.0, "eval": 0.0}
    self._t = None

  def on_train_batch_begin(self, batch, logs=None):
    if self._t is None:
      self._t = time.monotonic()

  def on_train_batch_end(self, batch, logs=None):
    if not self.seconds["first_step"]:
      self.seconds["first_step"] = time.monotonic() - self._t

  def on_test_begin(self, logs=None):
    self._eval_start = time.monotonic()

  def on_test_end(self, logs=None):
    self.seconds["eval"] += time.monotonic() - self._eval_start


class _Rungs(keras.callbacks.Callback):
  """A pruner's rungs at epoch ends: a classifier below a rung's bar stops there."""

  def __init__(self, plan: rungs_lib.RungPlan, epochs: int, metric: str = "val_accuracy"):
    super().__init__()
    self.plan, self.metric = plan, metric
    self.rung_at = {e: i for i, e in enumerate(plan.at_steps(epochs)) if e > 0}
    self.reached = []

  def on_epoch_end(self, epoch, logs=None):
    rung = self.rung_at.get(epoch + 1)
    if rung is None:
      return
    value = float((logs or {}).get(self.metric, float("nan")))
    go = self.plan.continues(rung, value)
    self.reached.append((self.plan.resources[rung], value, go))
    if not go:
      logging.info("child: stopped at rung %d (epoch %d/%d): %s %.4f, bar %.4f",
                   rung + 1, epoch + 1, self.params.get("epochs", 0), self.metric, value,
                   self.plan.bounds[rung])
      self.model.stop_training = True


def rung_callback(plan: rungs_lib.RungPlan | None, epochs: int,
                  metric: str = "val_accuracy") -> list:
  """``[callback]`` that applies a pruner's plan at epoch ends of ``model.fit`` (``[]``
  without a plan); the callback's ``reached`` lists ``(resource, value, continued)``."""
  return [] if plan is None else [_Rungs(plan, epochs, metric)]


def _fit(model, train, validation, config: ChildTrainingConfig,
         extra_callbacks=()) -> tuple[dict, dict]:
  """Keras fit; returns the history and ``{first_step, eval, train}`` seconds (train: the
  rest of fit, i.e. the steady steps and the input pipeline they wait on)."""
  if config.steps_per_epoch is not None:
    train = train.repeat()
  phases, start = _Phases(), time.monotonic()
  history = model.fit(train, validation_data=validation, epochs=config.epochs,
                      steps_per_epoch=config.steps_per_epoch, verbose=0, shuffle=False,
                      callbacks=[keras.callbacks.TerminateOnNaN(), _Progress(config.epochs),
                                 phases, *extra_callbacks])
  seconds = dict(phases.seconds)
  seconds["train"] = time.monotonic() - start - seconds["first_step"] - seconds["eval"]
  return {k: [float(v) for v in vs] for k, vs in history.history.items()}, seconds


def _measure_latency(model, example, config: ChildTrainingConfig, out: dict) -> None:
  """``out["latency_ms"]`` when asked for; over ``max_latency_ms`` -> too large, untrained."""
  if not config.measure_latency:
    return
  out["latency_ms"] = latency.measure(model, example)
  if config.max_latency_ms is not None and out["latency_ms"] > config.max_latency_ms:
    raise children.ChildTooLargeError(
        f"inference latency {out['latency_ms']:.3g} ms (batch 1) is over max_latency_ms="
        f"{config.max_latency_ms:g}")


def search_cnn(spec: specs_lib.CNNSpec, input_shape, num_classes: int,
               config: ChildTrainingConfig) -> keras.Model:
  """The paper's conv child (§4.1) as a search trains it: the config's size caps and its
  reductions (``width_multiplier``, ``image_size``; the final training builds it whole)."""
  return children.build_cnn(spec, input_shape=tuple(input_shape), num_classes=num_classes,
                            weight_decay=config.weight_decay, max_params=config.max_params,
                            max_activation_elements=config.max_activation_elements,
                            width_multiplier=config.width_multiplier,
                            image_size=config.image_size, max_macs=config.max_macs)


def default_cnn_builder(spec: specs_lib.CNNSpec, data, config: ChildTrainingConfig):
  """:func:`search_cnn` for image data (``data.arrays`` / ``data.class_names``)."""
  image_shape = tuple(int(d) for d in data.arrays("train")[0].shape[1:])
  return search_cnn(spec, image_shape, len(data.class_names), config)


def _train_classifier(build, data, config: ChildTrainingConfig, seed: int, out: dict,
                      plan: rungs_lib.RungPlan | None = None) -> dict:
  """Trains a classifier child with ``model.fit`` (the CIFAR-10 recipe of §4.1).

  ``build()`` returns the uncompiled model (logits out); ``data`` has
  ``batched(split, batch_size, seed=, num_examples=)`` and ``arrays(split)``.
  """
  built = time.monotonic()
  model = build()
  out["num_params"] = int(model.count_params())
  _measure_latency(model, latency.input_example(model), config, out)
  num_train = len(data.arrays("train")[1])
  if config.max_train_examples is not None:
    num_train = min(num_train, config.max_train_examples)
  steps = config.steps_per_epoch or math.ceil(num_train / config.batch_size)
  model.compile(optimizer=make_optimizer(config, steps),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  train = data.batched("train", config.batch_size, seed=seed,
                       num_examples=config.max_train_examples)
  validation = data.batched("validation", config.batch_size,
                            num_examples=config.max_eval_examples)
  build_seconds = time.monotonic() - built  # (with latency, when measured)
  rung_watch = rung_callback(plan, config.epochs)
  history, phases = _fit(model, train, validation, config, rung_watch)
  out = {"num_params": int(model.count_params()), "history": history,
         "phase_seconds": {"build": build_seconds, **phases}}
  val = history.get("val_accuracy", [])
  out["val_accuracy_history"] = val
  out["val_accuracy"] = max(val[-config.reward_epochs:]) if val else float("nan")
  if plan is not None:
    out = rungs_lib.report(out, plan, rung_watch[0].reached)
  return out


def lm_recipe(config: ChildTrainingConfig, **final) -> lm_training.LMRecipe:
  """The language-model recipe (§4.2, Zaremba et al. 2014) a config asks for.

  Search children (here, in worker processes and in cluster closures) and ``nas_train``
  take their recipe from here; ``final``: what only a final training sets (its resumed
  rate and retries left, decoupled weight decay, the collapse watch).
  """
  return lm_training.LMRecipe(**{
      "optimizer": config.optimizer, "learning_rate": config.learning_rate,
      "momentum": config.momentum, "clipnorm": config.clipnorm,
      "lr_decay_start": config.lr_decay_start, "lr_decay_factor": config.lr_decay_factor,
      "loss_reduction": config.loss_reduction, "carry_state": config.carry_state,
      "divergence_retries": config.divergence_retries, **final})


def lm_windows(data, split: str, batch_size: int, num_steps: int,
               max_tokens: int | None = None):
  """``(inputs, targets)`` windows of a PTB split, the first ``max_tokens`` worth of them."""
  inputs, targets = data.batch_arrays(split, batch_size, num_steps)
  if max_tokens is not None:
    keep = max(1, -(-max_tokens // (batch_size * num_steps)))
    inputs, targets = inputs[:keep], targets[:keep]
  return inputs, targets


def _train_lm(spec: specs_lib.RNNCellSpec, data, config: ChildTrainingConfig, seed: int,
              out: dict, plan: rungs_lib.RungPlan | None = None) -> dict:
  vocab_size = len(data.vocab)

  def model_fn():
    seed_child(seed)  # every restart starts from the same weights
    return children.build_language_model(
        spec, vocab_size=vocab_size, units=config.lm_units, num_layers=config.lm_layers,
        input_dropout=config.dropout, hidden_dropout=config.dropout,
        output_dropout=config.dropout, tie_embeddings=config.tie_embeddings,
        max_params=config.max_params, init_scale=config.init_scale, return_state=True)

  if config.measure_latency:
    # A model of its own (model_fn reseeds, so training starts from the same weights).
    model = model_fn()
    out["num_params"] = int(model.count_params())
    _measure_latency(model, latency.lm_example(model, config.num_steps), config, out)
  train = lm_windows(data, "train", config.batch_size, config.num_steps,
                     config.max_train_examples)
  validation = lm_windows(data, "valid", config.batch_size, config.num_steps,
                          config.max_eval_examples)
  out = lm_training.train_lm(model_fn, train, {"val": validation}, config.epochs,
                             lm_recipe(config), vocab_size,
                             steps_per_epoch=config.steps_per_epoch, log_prefix="child: ",
                             rungs=plan)
  metrics = {"attempts": out["attempts"], "lr_used": out["learning_rate"],
             "restarts": out["restarts"], "vocab_size": vocab_size,
             "phase_seconds": out["phases"]}
  if out["model"] is None:
    # Every attempt diverged: the record says so and gets the failure reward.
    metrics.update(history={"loss": [float("nan")]}, val_loss=float("nan"),
                   val_perplexity=float("nan"), diverged=out["diverged"])
    return metrics
  history = out["history"]
  val_loss = history["val_loss"][-1]
  metrics.update(num_params=int(out["model"].count_params()), history=history,
                 val_loss=val_loss, val_perplexity=lm_training.perplexity(val_loss),
                 val_perplexity_history=[lm_training.perplexity(v)
                                         for v in history["val_loss"]])
  return rungs_lib.report(metrics, plan, out["rungs"])


def train_and_evaluate(spec, data, config: ChildTrainingConfig, seed: int = 0,
                       build=None, rungs: rungs_lib.RungPlan | None = None
                       ) -> dict[str, Any]:
  """Builds, trains and validates one child; never raises for a bad architecture.

  A dead cell (:func:`nas_tf.specs.dead_cell_reason`: its output is exactly 0 with a zero
  gradient forever, so the model can only learn the unigram) is not trained: it comes
  back at once with status ``degenerate`` and the reason, and gets the failure reward.

  Args:
    spec: Without ``build``, an ``RNNCellSpec`` or a named cell
      (:data:`nas_tf.children.NAMED_CELLS`) is a language model on PTB-like data (the
      recipe of §4.2); any other architecture is a classifier trained by ``model.fit``
      (§4.1).
    data: The task's data (``Task.load_data``).
    config: Child training settings.
    seed: Seeds weight initialisation, shuffling and augmentation.
    build: ``() -> keras.Model`` of a classifier child (``Task.build_child``); default:
      the paper's conv network for a ``CNNSpec`` on image data.
    rungs: A pruner's plan (:class:`nas_tf.training.rungs.RungPlan`): the child is
      validated at its rungs (a language model after that fraction of its windows, a
      classifier at the nearest epoch end) and stops at a rung whose bar it misses; its
      metrics are then those of that rung.

  Returns:
    A dict with ``status`` (ok / failed / too_large / nan / degenerate), ``train_seconds``
    (wall clock), ``train_cpu_seconds`` (CPU time of this process meanwhile: in a worker
    process, the child's own; unlike the wall clock it does not grow when other jobs
    share the cores), ``num_params`` (when built), ``latency_ms`` (when measured:
    ``measure_latency``),
    ``error`` (text, when not ok) and the task's validation
    metrics: ``val_accuracy_history`` and ``val_accuracy`` (CIFAR-10) or
    ``val_perplexity`` (PTB); with ``rungs``, also ``rungs`` (``[resource, value]`` per
    rung measured), ``pruned_at`` (None if it trained to the end) and ``bracket``.
  """
  start, cpu_start = time.monotonic(), time.process_time()
  seed_child(seed)
  out: dict[str, Any] = {"status": STATUS_OK, "error": None}
  if isinstance(spec, specs_lib.RNNCellSpec):
    # Training it would only reproduce the unigram model (measured on PTB: the same
    # perplexity to 7 digits for every dead cell), at the full cost of a child.
    reason = specs_lib.dead_cell_reason(spec)
    if reason is not None:
      logging.info("child not trained: %s", reason)
      return {"status": STATUS_DEGENERATE, "error": reason,
              "train_seconds": time.monotonic() - start,
              "train_cpu_seconds": time.process_time() - cpu_start}
  try:
    if build is None and (isinstance(spec, specs_lib.RNNCellSpec)
                          or spec in children.NAMED_CELLS):
      out.update(_train_lm(spec, data, config, seed, out, rungs))
    else:
      if build is None:
        if not isinstance(spec, specs_lib.CNNSpec):
          raise TypeError(f"a {type(spec).__name__} child needs build= (its task's "
                          f"build_child), got {spec!r}")
        build = lambda: default_cnn_builder(spec, data, config)  # pylint: disable=unnecessary-lambda-assignment
      out.update(_train_classifier(build, data, config, seed, out, rungs))
    if not _finite_history(out["history"]):
      out["status"] = STATUS_NAN
      out["error"] = out.pop("diverged", None) or "loss became NaN or inf during training"
  except children.ChildTooLargeError as e:
    out.update(status=STATUS_TOO_LARGE, error=str(e))
  except Exception as e:  # pylint: disable=broad-except
    # A child that breaks must not stop a search of hundreds; keep the traceback in the
    # record so that a bug in the builder is visible, not silently scored.
    logging.warning("child failed: %s\n%s", e, traceback.format_exc())
    out.update(status=STATUS_FAILED, error=f"{type(e).__name__}: {e}")
  finally:
    keras.backend.clear_session()
  out["train_seconds"] = time.monotonic() - start
  out["train_cpu_seconds"] = time.process_time() - cpu_start
  out.pop("history", None)
  return out
