"""The child optimisers of the paper (§4.1 Nesterov momentum; §4.2 plain SGD) and their
learning-rate schedules, by name: one construction for search children and nas_train."""

from __future__ import annotations

import keras
import tensorflow as tf

OPTIMIZERS = ("momentum", "sgd", "adam")


def build_optimizer(name: str, learning_rate, momentum: float = 0.9, clipnorm: float = 0.0,
                    weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
  """'momentum' (Nesterov, the paper's CIFAR-10 choice), 'sgd' or 'adam'.

  Args:
    name: One of :data:`OPTIMIZERS`.
    learning_rate: A float or a Keras schedule.
    momentum: For 'momentum'.
    clipnorm: Global gradient-norm clip applied by the optimiser (0 = none).
    weight_decay: The optimiser's decoupled decay (0 = none; kernels can carry L2
      regularisers instead).

  Raises:
    ValueError: an unknown ``name``.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
  kwargs = {"learning_rate": learning_rate}
  if clipnorm:
    kwargs["global_clipnorm"] = clipnorm
  if weight_decay:
    kwargs["weight_decay"] = weight_decay
  if name == "adam":
    return keras.optimizers.Adam(**kwargs)
  if name == "momentum":
    kwargs.update(momentum=momentum, nesterov=True)
  return keras.optimizers.SGD(**kwargs)


def learning_rate_schedule(config, steps_per_epoch: int):
  """The rate of ``config`` (a child or final-training config) in optimiser steps.

  'constant'; 'cosine' (to 0 over ``epochs * steps_per_epoch`` steps); otherwise a step
  decay by ``lr_decay_factor`` every ``lr_decay_every`` epochs. Per-step schedules
  resume exactly from the optimiser's iteration count (Keras' BackupAndRestore).
  """
  if config.lr_schedule == "constant":
    return config.learning_rate
  total = config.epochs * steps_per_epoch
  if config.lr_schedule == "cosine":
    return keras.optimizers.schedules.CosineDecay(config.learning_rate, total)
  # PiecewiseConstantDecay switches after a boundary (step > b), hence the -1: the
  # first step of epoch lr_decay_every + 1 already uses the decayed rate.
  every = config.lr_decay_every * steps_per_epoch
  boundaries = [b - 1 for b in range(every, total, every)]
  if not boundaries:
    return config.learning_rate
  values = [config.learning_rate * config.lr_decay_factor ** k
            for k in range(len(boundaries) + 1)]
  return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(config, steps_per_epoch: int,
                   weight_decay: float = 0.0) -> keras.optimizers.Optimizer:
  """The optimiser a child or final-training ``config`` asks for, with its schedule."""
  return build_optimizer(config.optimizer, learning_rate_schedule(config, steps_per_epoch),
                         config.momentum, config.clipnorm, weight_decay)


def functional_optimizer(name: str, momentum: float = 0.9, clipnorm: float = 0.0):
  """:func:`build_optimizer`'s update rules as pure tensor maths, for stateless training.

  A closure scheduled on a tf.distribute worker carries its weights and optimiser state
  as tensors (so a retry is an exact re-run), and Keras 3's TensorFlow optimizers refuse
  ``stateless_apply`` there; these are the same updates (tests compare them with Keras').

  Returns:
    ``(init(weights) -> state, apply(state, grads, weights, step, lr) -> (weights,
    state))``; ``step`` is 0-based, ``lr`` the rate of this step.
  """
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")

  def init(weights):
    if name == "sgd":
      return []
    slots = [tf.zeros_like(w) for w in weights]
    return slots if name == "momentum" else slots + [tf.zeros_like(w) for w in weights]

  def apply(state, grads, weights, step, lr):
    if clipnorm:
      grads, _ = tf.clip_by_global_norm(grads, clipnorm)
    if name == "sgd":
      return [w - lr * g for w, g in zip(weights, grads)], state
    if name == "momentum":
      # Keras SGD(nesterov=True): m <- mom*m - lr*g; w <- w + mom*m - lr*g.
      new_m = [momentum * m - lr * g for m, g in zip(state, grads)]
      return [w + momentum * m - lr * g for w, m, g in zip(weights, new_m, grads)], new_m
    n = len(weights)
    b1, b2, eps = 0.9, 0.999, 1e-7  # Keras Adam's defaults
    t = tf.cast(step + 1, tf.float32)
    lr_t = lr * tf.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)
    ms = [b1 * m + (1 - b1) * g for m, g in zip(state[:n], grads)]
    vs = [b2 * v + (1 - b2) * tf.square(g) for v, g in zip(state[n:], grads)]
    new_w = [w - lr_t * m / (tf.sqrt(v) + eps) for w, m, v in zip(weights, ms, vs)]
    return new_w, ms + vs

  return init, apply
