"""The child optimisers of the paper (§4.1 Nesterov momentum; §4.2 plain SGD), by name."""

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
