"""Children trained inside one scheduled closure each, weights carried as tensors (paper §3.3).

The paper trains the ``m`` children of each controller replica in parallel on separate
machines. Here a child is one ``ClusterCoordinator.schedule`` closure: its Keras model is
built on the coordinator (so the architecture's cost caps apply before anything runs),
its initial weights are read out as tensors and passed in, and the whole training loop
runs on whichever worker picks the closure up via ``model.stateless_call``. Nothing of a
child lives on the parameter servers or in worker-side variables, so when a worker dies
the coordinator re-runs the closure elsewhere from the same initial weights and data:
the retry is an exact re-run and the reward is well defined.

Keras 3's TensorFlow optimizers refuse ``stateless_apply`` (it clashes with
``tf.distribute``), so a closure updates its weights with
:func:`nas_tf.training.optimizers.functional_optimizer`: Keras' SGD (Nesterov momentum) and Adam
update rules as tensor maths, tested step for step against Keras' own. The rate comes from
the schedule every path uses (:func:`nas_tf.training.optimizers.learning_rate_schedule`, and the LM
recipe's per-epoch decay), and the LM's divergence and unigram rules from the same
:class:`nas_tf.training.lm.LMRecipe` as ``lm_training.train_lm``.

The training data is materialised once per search as fixed batch arrays and sent to each
worker once as a per-worker dataset whose single element repeats forever: every
``next()`` yields the same arrays, so a child's batches do not depend on which worker
or which retry runs it.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from typing import Any, Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from nas_tf.training import child as child_training
from nas_tf import children
from nas_tf.training import lm as lm_training
from nas_tf.training import optimizers
from nas_tf.training import rungs as rungs_lib
from nas_tf import specs as specs_lib
from nas_tf.config import ChildTrainingConfig

# Keras model building touches process-wide state (the global seed, layer-name counters);
# replica threads build their children one at a time.
_BUILD_LOCK = threading.Lock()


@dataclasses.dataclass
class BatchArrays:
  """A task's training and validation batches as fixed arrays (one epoch each).

  Attributes:
    train_x, train_y: ``[num_batches, batch, ...]`` inputs and targets.
    train_w: ``[num_batches, batch]`` 1 for real examples, 0 for the padding of the
      last, short batch.
    val_x, val_y, val_w: The same for validation.
    sequence: Language-model windows (the LM recipe of :mod:`nas_tf.training.lm`), not
      classification batches.
    input_shape: One example's shape.
    num_classes: Classes, or the vocabulary size of a language model.
  """

  train_x: np.ndarray
  train_y: np.ndarray
  train_w: np.ndarray
  val_x: np.ndarray
  val_y: np.ndarray
  val_w: np.ndarray
  sequence: bool
  input_shape: tuple
  num_classes: int

  def tensors(self) -> tuple:
    return (self.train_x, self.train_y, self.train_w, self.val_x, self.val_y, self.val_w)


def _stack(dataset: tf.data.Dataset, batch_size: int):
  """Stacks a dataset of ``(x, y)`` batches, padding the last batch with weight 0."""
  xs, ys, ws = [], [], []
  for x, y in dataset.as_numpy_iterator():
    n = len(x)
    w = np.zeros([batch_size], np.float32)
    w[:n] = 1.0
    if n < batch_size:
      x = np.concatenate([x, np.zeros((batch_size - n,) + x.shape[1:], x.dtype)])
      y = np.concatenate([y, np.zeros((batch_size - n,) + y.shape[1:], y.dtype)])
    xs.append(x), ys.append(y), ws.append(w)
  if not xs:
    raise ValueError("no batches: the data split is smaller than one batch")
  return np.stack(xs), np.stack(ys), np.stack(ws)


def materialize(data, config: ChildTrainingConfig, seed: int,
                sequence: bool = False) -> BatchArrays:
  """One epoch of the batches ``child_training`` would use, as arrays.

  ``data``: a task's data; classification data has ``batched`` and ``class_names``, a
  language model's (``sequence``) ``batches`` and ``vocab``. Unlike the one-machine
  trainer, every epoch reuses the first epoch's shuffling and augmentation: a closure
  must be a pure function of its inputs to be retried exactly.
  """
  b = config.batch_size
  if not sequence:
    train = data.batched("train", b, seed=seed, num_examples=config.max_train_examples)
    val = data.batched("validation", b, num_examples=config.max_eval_examples)
    shape = tuple(int(d) for d in train.element_spec[0].shape[1:])
    num_classes = len(data.class_names)
  else:
    per_batch = b * config.num_steps

    def limited(split, max_tokens):
      ds = data.batches(split, b, config.num_steps)
      return ds if max_tokens is None else ds.take(max(1, -(-max_tokens // per_batch)))

    train, val = limited("train", config.max_train_examples), limited(
        "valid", config.max_eval_examples)
    shape, num_classes = (config.num_steps,), len(data.vocab)
  arrays = BatchArrays(*_stack(train, b), *_stack(val, b), sequence=sequence,
                       input_shape=shape, num_classes=num_classes)
  if sequence and not (arrays.train_w.all() and arrays.val_w.all()):
    # The LM loss (lm_training.window_loss) has no padding weights: it needs full windows.
    raise ValueError(f"language-model windows must fill every batch of {b}; got a short "
                     "one (fewer tokens than one batch of windows?)")
  return arrays


# -- one child -------------------------------------------------------------------------

def build_child(spec, arrays: BatchArrays, config: ChildTrainingConfig) -> keras.Model:
  """The child's Keras model, with the same builders and caps as ``child_training``."""
  if isinstance(spec, specs_lib.CNNSpec):
    return child_training.search_cnn(spec, arrays.input_shape, arrays.num_classes, config)
  if isinstance(spec, specs_lib.RNNCellSpec):
    # The recipe of child_training (nas_tf.training.lm): uniform init and a model that
    # hands its state on, so the closure can carry it across BPTT windows.
    return children.build_language_model(
        spec, vocab_size=arrays.num_classes, units=config.lm_units,
        num_layers=config.lm_layers, input_dropout=config.dropout,
        hidden_dropout=config.dropout, output_dropout=config.dropout,
        tie_embeddings=config.tie_embeddings, max_params=config.max_params,
        init_scale=config.init_scale, return_state=True)
  raise TypeError(f"spec must be a CNNSpec or RNNCellSpec, got {type(spec).__name__}")


# Why a closure stopped early (the ``abort`` output of the train function).
ABORT_NONE, ABORT_DIVERGED, ABORT_NOT_LEARNING, ABORT_PRUNED = 0, 1, 2, 3
# A rung not measured (rung values are perplexities >= 1 or accuracies >= 0).
_UNMEASURED = -1.0


def lm_checks(recipe: lm_training.LMRecipe, vocab_size: int, steps_per_epoch: int,
              unigram: np.ndarray) -> Callable:
  """``lm_training.train_lm``'s divergence and unigram rules as tensor maths for a loop.

  Returns ``checks(loss, i, k, epoch, step, recent, excess, check_unigram) -> (abort,
  value, recent, excess)`` for the token-mean loss of window ``i`` (step ``k`` of
  ``epoch``, global step ``step``, all 0-based). ``recent`` and ``excess`` are
  ``[divergence_window]`` ring buffers threaded through the loop (zeros at the start;
  ``recent`` lives across epochs, as ``train_lm``'s deque does). ``unigram``: the unigram
  model's cross-entropy of each training window (``lm_training.unigram_xent``).
  """
  window = recipe.divergence_window
  persistent, spike = recipe.divergence_limits(vocab_size)
  check_step = recipe.unigram_check_step(steps_per_epoch)  # None: no unigram check
  unigram = tf.constant(np.asarray(unigram, np.float32))

  def checks(loss, i, k, epoch, step, recent, excess, check_unigram):
    step = tf.cast(step, tf.int64)
    recent = tf.tensor_scatter_nd_update(recent, [[tf.cast(step % window, tf.int32)]], [loss])
    mean = tf.reduce_sum(recent) / tf.cast(tf.minimum(step + 1, window), tf.float32)
    # The once-limit from the second window on: the first loss is the initial weights'.
    spiked = (loss > spike) & (step > 0)
    diverged = tf.logical_not(tf.math.is_finite(loss)) | spiked | (
        (step + 1 >= window) & (mean > persistent))
    abort = tf.where(diverged, ABORT_DIVERGED, ABORT_NONE)
    # The offending figure: the loss itself for a spike or a non-finite loss, else the mean.
    value = tf.where(tf.math.is_finite(loss) & tf.logical_not(spiked), mean, loss)
    if check_step is not None:
      excess = tf.tensor_scatter_nd_update(excess, [[tf.cast(k % window, tf.int32)]],
                                           [loss - tf.gather(unigram, i)])
      over = tf.reduce_mean(excess)
      worse = (check_unigram & tf.equal(epoch, 0) & tf.equal(k + 1, check_step)
               & (over > recipe.unigram_margin))
      abort = tf.where(diverged, abort, tf.where(worse, ABORT_NOT_LEARNING, abort))
      value = tf.where(diverged, value, tf.where(worse, over, value))
    return abort, value, recent, excess

  return checks


def make_train_fn(model: keras.Model, arrays: BatchArrays,
                  config: ChildTrainingConfig, higher_is_better: bool = True) -> Callable:
  """A ``tf.function(iterator, trainable, non_trainable, lr_scale, check_unigram, rung_at,
  rung_bound, rung_windows)``.

  It trains and validates, and returns per epoch the mean training loss and the
  validation metric (accuracy for CIFAR-10, mean token cross-entropy for PTB), the start
  and end timestamps, why it stopped early: ``abort`` (``ABORT_*``), ``abort_value``
  (the offending loss, or the excess over the unigram model, in nats/token) and
  ``abort_step`` (the global step, 1-based); and the value at each rung.

  Rungs (a pruner's :class:`nas_tf.training.rungs.RungPlan`, as in the one-machine
  trainers): ``rung_at`` holds each rung's 1-based global step (language models) or
  epoch (classifiers), -1 for none, and ``rung_bound`` the worst value that goes on (NaN:
  no bar). There the closure measures the validation perplexity (on the first
  ``rung_windows`` windows) or accuracy, and stops (``ABORT_PRUNED``) below the bar
  (``higher_is_better`` says which way is below).

  Language models follow ``nas_tf.training.lm`` (§4.2, Zaremba et al. 2014): the state is
  carried across BPTT windows (zero at every epoch and for validation), the loss is
  summed over the window with ``loss_reduction='sum'``, and the rate (times
  ``lr_scale``) decays per epoch after ``lr_decay_start``. The same checks as
  ``lm_training.train_lm`` run inside the graph: a non-finite or far-worse-than-uniform
  loss stops the closure as diverged, and with ``check_unigram`` a loss that stays more
  than ``unigram_margin`` above the unigram model's after ``unigram_check`` of the first
  epoch stops it as not learning. The restart at a lower rate is the caller's
  (:class:`ScheduledChild`): a closure is a pure function of its inputs, so a restart is
  another closure from the same initial weights.
  """
  is_lm = arrays.sequence
  num_train = arrays.train_x.shape[0]
  steps = config.steps_per_epoch or num_train
  opt_init, opt_apply = optimizers.functional_optimizer(config.optimizer, config.momentum,
                                                       config.clipnorm)
  ce = tf.nn.sparse_softmax_cross_entropy_with_logits
  state_dims = [int(t.shape[-1]) for t in model.inputs[1:]] if is_lm else []
  time_sum = is_lm and config.loss_reduction == "sum"
  if is_lm:
    recipe = child_training.lm_recipe(config)
    window = recipe.divergence_window
    checks = lm_checks(recipe, arrays.num_classes, steps,
                       lm_training.unigram_xent(arrays.train_y, arrays.num_classes))
  else:
    window = 1

    def checks(loss, i, k, epoch, step, recent, excess, check_unigram):
      del loss, i, k, epoch, step, check_unigram  # CNN children are not checked
      return tf.constant(ABORT_NONE), tf.constant(0.0), recent, excess

  def zero_states(batch):
    return [tf.zeros((batch, d)) for d in state_dims]

  def call(trainable, non_trainable, x, states, training):
    """``(logits, states, non_trainable, losses)`` for a CNN batch or an LM window."""
    out, non_trainable, losses = model.stateless_call(
        trainable, non_trainable, [x, *states] if is_lm else x, training=training,
        return_losses=True)
    if is_lm:
      return out[0], [tf.stop_gradient(h) for h in out[1:]], non_trainable, losses
    return out, states, non_trainable, losses

  def train_step(i, trainable, non_trainable, opt_state, step, states, lr, tx, ty, tw):
    with tf.GradientTape() as tape:
      tape.watch(trainable)
      logits, states, non_trainable, losses = call(trainable, non_trainable, tx[i], states,
                                                   True)
      if is_lm:  # the LM recipe's loss, as in this process (windows are never padded)
        loss, objective = lm_training.window_loss(ty[i], logits, time_sum)
      else:  # Keras' mean over the batch, less the padding of a short last batch
        w = tw[i]
        loss = tf.reduce_sum(ce(labels=tf.cast(ty[i], tf.int32), logits=logits) * w) / (
            tf.reduce_sum(w))
        objective = loss
      if losses:
        objective += tf.add_n(losses)
    grads = tape.gradient(objective, trainable)
    # Dense gradients: embedding gradients arrive as IndexedSlices.
    grads = [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g)
             for g, v in zip(grads, trainable)]
    trainable, opt_state = opt_apply(opt_state, grads, trainable, step, lr)
    return trainable, non_trainable, opt_state, states, loss

  def validate(trainable, non_trainable, vx, vy, vw):
    def body(j, num, den, states):
      logits, states, _, _ = call(trainable, non_trainable, vx[j], states, False)
      if is_lm:  # token cross-entropy summed, as lm_training.evaluate sums it
        num += tf.reduce_sum(lm_training.token_xent(vy[j], logits))
        return j + 1, num, den + tf.cast(tf.size(vy[j]), tf.float32), states
      hit = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                             tf.cast(vy[j], tf.int32)), tf.float32)
      num += tf.reduce_sum(hit * vw[j])
      return j + 1, num, den + tf.reduce_sum(vw[j]), states
    _, num, den, _ = tf.while_loop(
        lambda j, *_: j < tf.shape(vx)[0], body,
        (0, tf.constant(0.0), tf.constant(0.0), zero_states(tf.shape(vx)[1])))
    return num / den

  # The rates of the one-machine trainers: a classifier's per-step schedule is the very
  # Keras schedule object model.fit uses; a language model's rate decays per epoch by the
  # LM recipe's rule (times lr_scale after a restart).
  schedule = None if is_lm else optimizers.learning_rate_schedule(config, steps)

  def epoch_lr(epoch, lr_scale):
    if not is_lm:
      return tf.constant(config.learning_rate, tf.float32)
    return lm_training.decay_after(lr_scale * config.learning_rate, epoch,
                                   config.lr_decay_start, config.lr_decay_factor)

  def put(vector, index, value):
    return tf.tensor_scatter_nd_update(vector, [[index]], [value])

  def rung_check(position, measure, rung_at, rung_bound, rung_vals, abort, value):
    """At a rung (``position`` == its step or epoch): its value, and whether to stop."""
    hits = tf.equal(rung_at, tf.cast(position, tf.int64))

    def at_rung():
      r = tf.argmax(tf.cast(hits, tf.int32), output_type=tf.int32)
      v = measure()
      bound = tf.gather(rung_bound, r)
      better = v >= bound if higher_is_better else v <= bound
      go = tf.math.is_finite(v) & (tf.math.is_nan(bound) | better)
      return (put(rung_vals, r, v), tf.where(go, abort, ABORT_PRUNED),
              tf.where(go, value, v))

    return tf.cond(tf.reduce_any(hits) & tf.equal(abort, ABORT_NONE), at_rung,
                   lambda: (rung_vals, abort, value))

  def rung_value(val):
    """The rung's metric from ``validate``: perplexity for a language model."""
    return tf.exp(tf.minimum(val, 700.0)) if is_lm else val

  # Explicit while loops and no AutoGraph: AutoGraph would convert the Keras layers'
  # code too, and tracing (serial, on the coordinator) is what bounds how fast children
  # can be handed to the workers.
  @tf.function(autograph=False)
  def train(iterator, trainable, non_trainable, lr_scale, check_unigram, rung_at,
            rung_bound, rung_windows):
    tx, ty, tw, vx, vy, vw = next(iterator)
    with tf.control_dependencies([tx]):
      start = tf.timestamp()

    def epoch_body(epoch, trainable, non_trainable, opt_state, step, losses, vals, recent,
                   rung_vals, abort, value, at):
      lr = epoch_lr(epoch, lr_scale)

      def step_body(k, trainable, non_trainable, opt_state, step, total, states, recent,
                    excess, rung_vals, abort, value, at):
        step_lr = lr
        if callable(schedule):
          step_lr = tf.cast(schedule(step), tf.float32)
        i = step % num_train
        trainable, non_trainable, opt_state, states, loss = train_step(
            i, trainable, non_trainable, opt_state, step, states, step_lr, tx, ty, tw)
        abort, value, recent, excess = checks(loss, i, k, epoch, step, recent, excess,
                                              check_unigram)
        if is_lm:  # a language model's rungs fall on windows
          rung_vals, abort, value = rung_check(
              step + 1, lambda: rung_value(validate(
                  trainable, non_trainable, vx[:rung_windows], vy[:rung_windows],
                  vw[:rung_windows])), rung_at, rung_bound, rung_vals, abort, value)
        return (k + 1, trainable, non_trainable, opt_state, step + 1, total + loss, states,
                recent, excess, rung_vals, abort, value, step + 1)

      (k, trainable, non_trainable, opt_state, step, total, _, recent, _, rung_vals, abort,
       value, at) = tf.while_loop(
           lambda k, *rest: (k < steps) & tf.equal(rest[-3], ABORT_NONE), step_body,
           (0, trainable, non_trainable, opt_state, step, tf.constant(0.0),
            zero_states(tf.shape(tx)[1]), recent, tf.zeros([window]), rung_vals, abort,
            value, at))
      losses = put(losses, epoch, total / tf.cast(tf.maximum(k, 1), tf.float32))
      val = tf.cond(tf.equal(abort, ABORT_NONE),
                    lambda: validate(trainable, non_trainable, vx, vy, vw),
                    lambda: tf.constant(float("nan")))
      vals = put(vals, epoch, val)
      if not is_lm:  # a classifier's rungs fall on epoch ends
        rung_vals, abort, value = rung_check(epoch + 1, lambda: val, rung_at, rung_bound,
                                             rung_vals, abort, value)
      return (epoch + 1, trainable, non_trainable, opt_state, step, losses, vals, recent,
              rung_vals, abort, value, at)

    nan = tf.fill([config.epochs], float("nan"))
    loop_vars = (0, list(trainable), list(non_trainable), opt_init(trainable),
                 tf.constant(0, tf.int64), nan, nan, tf.zeros([window]),
                 tf.fill(tf.shape(rung_at), _UNMEASURED), tf.constant(ABORT_NONE),
                 tf.constant(0.0), tf.constant(0, tf.int64))
    out = tf.while_loop(lambda e, *rest: (e < config.epochs) & tf.equal(rest[-3], ABORT_NONE),
                        epoch_body, loop_vars)
    train_losses, val_metrics, _, rung_vals, abort, value, at = out[-7:]
    with tf.control_dependencies([train_losses, val_metrics]):
      end = tf.timestamp()
    return train_losses, val_metrics, start, end, abort, value, at, rung_vals

  return train


class ScheduledChild:
  """One child: built here, trained on a worker; ``result()`` is its metrics dict.

  A language model whose closure stops as diverged or not learning is scheduled again
  from the same initial weights at ``retry_lr_factor`` times the rate, at most
  ``divergence_retries`` times, the last attempt without the unigram check: the rules
  and records (``attempts``, ``lr_used``, ``restarts``) of ``lm_training.train_lm``.
  """

  def __init__(self, schedule: Optional[Callable], num_params: int,
               config: ChildTrainingConfig, sequence: bool, started: float,
               failed: dict | None = None, num_classes: int = 10,
               plan: Optional[rungs_lib.RungPlan] = None):
    self._schedule, self._failed, self.plan = schedule, failed, plan
    self.num_params, self.config, self.sequence = num_params, config, sequence
    self.started, self.num_classes = started, num_classes
    self._recipe = child_training.lm_recipe(config) if sequence else None
    self._retries = self._recipe.divergence_retries if sequence else 0
    self._lr_scale = 1.0
    self._remote = None if failed is not None else schedule(1.0, self._retries > 0)

  def result(self) -> dict[str, Any]:
    """Blocks until the closure is done (retried on another worker if one died)."""
    if self._failed is not None:
      return self._failed
    restarts, seconds, first_start = [], 0.0, None
    for attempt in range(self._retries + 1):
      train_losses, val_metrics, start, end, abort, value, at, rung_vals = (
          self._remote.fetch())
      seconds += float(end - start)
      first_start = float(start) if first_start is None else first_start
      if int(abort) in (ABORT_NONE, ABORT_PRUNED) or attempt == self._retries:
        break
      lr = self.config.learning_rate * self._lr_scale
      restarts.append(self._abort_message(int(abort), float(value), int(at), lr))
      self._lr_scale *= self._recipe.retry_lr_factor
      self._remote = self._schedule(self._lr_scale, attempt + 1 < self._retries)
    out: dict[str, Any] = {"status": "ok", "error": None, "num_params": self.num_params,
                           "worker_start": first_start, "worker_end": float(end)}
    pruned = int(abort) == ABORT_PRUNED
    # The epochs it trained (all, unless a pruner stopped it).
    trained = int(np.sum(np.isfinite(train_losses))) if pruned else len(train_losses)
    values = [float(v) for v in np.concatenate([train_losses[:trained],
                                                val_metrics[:trained]])]
    if not self.sequence:
      history = [float(v) for v in val_metrics[:trained]]
      out["val_accuracy_history"] = history
      out["val_accuracy"] = max(history[-self.config.reward_epochs:])
    else:
      # Stopped mid-epoch at a rung: the rung's perplexity is its result.
      val_loss = math.log(float(value)) if pruned else float(val_metrics[-1])
      values = values[:-1] + [val_loss] if pruned else values
      lr_used = self.config.learning_rate * self._lr_scale
      out.update(val_loss=val_loss, val_perplexity=lm_training.perplexity(val_loss),
                 vocab_size=self.num_classes, attempts=attempt + 1, lr_used=lr_used,
                 restarts=restarts)
      if int(abort) not in (ABORT_NONE, ABORT_PRUNED):
        out.update(status="nan",
                   error=self._abort_message(int(abort), float(value), int(at), lr_used))
    if out["status"] == "ok" and not all(math.isfinite(v) for v in values):
      out.update(status="nan", error="loss became NaN or inf during training")
    # Time on the workers (every attempt; the last, successful try of each); queueing
    # shows in wall_seconds.
    out["train_seconds"] = seconds
    out["wall_seconds"] = time.monotonic() - self.started
    if self.plan is not None:
      measured = [i for i, v in enumerate(rung_vals) if float(v) != _UNMEASURED]
      out = rungs_lib.report(out, self.plan, [
          (self.plan.resources[i], float(rung_vals[i]), not (pruned and i == measured[-1]))
          for i in measured])
    return out

  def _abort_message(self, abort: int, value: float, at: int, lr: float) -> str:
    if abort == ABORT_NOT_LEARNING:
      return (f"training loss {value:.3g} nats/token above the unigram model's over the "
              f"{self._recipe.divergence_window} windows up to step {at} (limit "
              f"{self._recipe.unigram_margin:.3g}) with lr {lr:.4g}")
    return f"diverged: training loss {value:.4g} nats/token at step {at} with lr {lr:.4g}"


def _rung_tensors(plan: Optional[rungs_lib.RungPlan], arrays: BatchArrays,
                  config: ChildTrainingConfig) -> tuple:
  """``(rung_at, rung_bound, rung_windows)`` of the train function for ``plan`` (empty:
  no rungs)."""
  num_val = arrays.val_x.shape[0]
  if plan is None:
    return tf.constant([], tf.int64), tf.constant([], tf.float32), tf.constant(num_val)
  # As the one-machine trainers count: windows of the whole run for a language model
  # (lm_training.train_lm), epochs for a classifier (child_training's callback).
  total = config.epochs * (config.steps_per_epoch or arrays.train_x.shape[0])
  at = plan.at_steps(total if arrays.sequence else config.epochs)
  bounds = [float("nan") if b is None else b for b in plan.bounds]
  return (tf.constant(at, tf.int64), tf.constant(bounds, tf.float32),
          tf.constant(plan.eval_windows(num_val)))


def _prepare(spec, arrays: BatchArrays, config: ChildTrainingConfig, seed: int, build,
             higher_is_better: bool = True):
  """Builds ``spec``'s model and traces its closure: ``(fn, args, num_params)`` or a failure.

  A child that cannot be built (over the caps, or the builder raises) never reaches a
  worker: it comes back at once with status 'too_large' or 'failed', as in
  ``child_training.train_and_evaluate``.
  """
  if isinstance(spec, specs_lib.RNNCellSpec):
    reason = specs_lib.dead_cell_reason(spec)
    if reason is not None:  # as child_training: it would only learn the unigram model
      return {"status": "degenerate", "error": reason, "train_seconds": 0.0}
  with _BUILD_LOCK:
    try:
      # The same initial weights on every (re)try; the coordinator runs the controller
      # too, so TensorFlow's seed is set only when it changes (see seed_child).
      child_training.seed_child(seed)
      model = build(spec)
    except children.ChildTooLargeError as e:
      return {"status": "too_large", "error": str(e), "train_seconds": 0.0}
    except Exception as e:  # pylint: disable=broad-except
      return {"status": "failed", "error": f"{type(e).__name__}: {e}", "train_seconds": 0.0}
    trainable = [tf.convert_to_tensor(v.value) for v in model.trainable_variables]
    non_trainable = [tf.convert_to_tensor(v.value) for v in model.non_trainable_variables]
    # Traced here, before anything is scheduled, so that the m children of a step are
    # handed to the workers together instead of one trace apart.
    iterator_spec = tf.data.IteratorSpec(tuple(
        tf.TensorSpec(a.shape, tf.as_dtype(a.dtype)) for a in arrays.tensors()))
    fn = make_train_fn(model, arrays, config, higher_is_better).get_concrete_function(
        iterator_spec, trainable, non_trainable, tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.bool), tf.TensorSpec([None], tf.int64),
        tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int32))
  return fn, (trainable, non_trainable), int(model.count_params())


def schedule_children(coordinator, iterator, specs, arrays: BatchArrays,
                      config: ChildTrainingConfig, seed: int,
                      build: Optional[Callable] = None,
                      plans: Optional[list] = None) -> list[ScheduledChild]:
  """Builds the children of ``specs`` here and schedules one closure each on the workers.

  ``build(spec) -> keras.Model``: the task's child network (``Task.build_child``);
  default :func:`build_child`. ``plans``: a pruner's rung plan per spec (None: none).
  """
  started = time.monotonic()
  build = build or (lambda spec: build_child(spec, arrays, config))
  plans = plans or [None] * len(specs)
  higher = [True if p is None else p.higher_is_better for p in plans]
  prepared = [_prepare(s, arrays, config, seed, build, h) for s, h in zip(specs, higher)]
  out = []
  for p, plan in zip(prepared, plans):
    if isinstance(p, dict):
      out.append(ScheduledChild(None, 0, config, arrays.sequence, started, failed=p))
    else:
      fn, (trainable, non_trainable), num_params = p

      def schedule(lr_scale, check_unigram, fn=fn, weights=(trainable, non_trainable),
                   rungs=_rung_tensors(plan, arrays, config)):
        return coordinator.schedule(fn, args=(iterator, *weights, tf.constant(lr_scale),
                                              tf.constant(check_unigram), *rungs))
      out.append(ScheduledChild(schedule, num_params, config, arrays.sequence, started,
                                num_classes=arrays.num_classes, plan=plan))
  return out


def per_worker_iterator(coordinator, arrays: BatchArrays):
  """Ships the batch arrays to every worker once; ``next()`` always yields all of them."""
  tensors = arrays.tensors()

  def dataset_fn():
    return tf.data.Dataset.from_tensors(tensors).repeat()

  return iter(coordinator.create_per_worker_dataset(dataset_fn))
