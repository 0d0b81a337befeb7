"""Inference latency of a child model on this machine (for resource-aware search).

MnasNet (Tan et al. 2019) measures latency on the target device rather than counting
operations, because FLOPs predict speed poorly across operations. Here the device is the
machine the search runs on: one batch-1 forward pass in inference mode, traced once,
timed after warm-up, the median of ``repeats`` (robust to the other processes sharing
the cores).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf


def measure(model, example, repeats: int = 20, warmup: int = 3) -> float:
  """Median wall time in milliseconds of ``model(example, training=False)``.

  Args:
    model: A Keras model (or any callable taking ``training``).
    example: One input batch (batch 1 for latency), a tensor or a list of tensors.
    repeats: Timed calls; the median is returned.
    warmup: Untimed calls first (tracing, allocation).

  Returns:
    Milliseconds.
  """
  if repeats < 1 or warmup < 1:
    raise ValueError(f"repeats and warmup must be >= 1, got {repeats!r}, {warmup!r}")
  forward = tf.function(lambda x: model(x, training=False))
  for _ in range(warmup):
    _block(forward(example))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    _block(forward(example))
    times.append(time.perf_counter() - start)
  return float(np.median(times) * 1000.0)


def _block(outputs) -> None:
  # Eager results are ready when returned; reading one value makes that explicit on
  # asynchronous devices too.
  first = tf.nest.flatten(outputs)[0]
  first.numpy()


def input_example(model) -> tf.Tensor:
  """A batch-1 zero input of a one-input ``model``, in its declared shape and dtype."""
  spec = model.inputs[0]
  return tf.zeros((1, *[int(d) for d in spec.shape[1:]]), spec.dtype)


def lm_example(model, num_steps: int) -> list:
  """One window of ``num_steps`` tokens (batch 1) and zero states, for a language model
  built with ``return_state=True``."""
  tokens = tf.zeros((1, num_steps), tf.int32)
  return [tokens] + [tf.zeros((1, int(t.shape[-1])), tf.float32) for t in model.inputs[1:]]


__all__ = ["measure", "input_example", "lm_example"]
