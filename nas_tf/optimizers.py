"""The child optimisers of the paper (§4.1 Nesterov momentum; §4.2 plain SGD) and their
learning-rate schedules, by name: one construction for search children and nas_train."""

from __future__ import annotations

import keras

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
