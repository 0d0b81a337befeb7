"""REINFORCE with an exponential-moving-average baseline (paper §3.2, Williams 1992).

The controller's parameters follow

    (1/m) sum_k sum_t grad log P(a_t | a_{<t}) (R_k - b)

where ``b`` is an exponential moving average of past rewards. This module sees only
tensors and floats: log-probabilities, entropies and rewards. It never imports the
controller or the child builder.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class EMABaseline:
  """``b <- decay * b + (1 - decay) * mean(rewards)``; the first batch initialises ``b``.

  Before the first update there is no baseline yet, so the first controller step uses
  its own batch's mean reward as ``b``: its advantages are centred, not zero (with m = 1
  they are zero and the first step does not move the controller).

  Attributes:
    decay: Weight of the old value (the paper's setting is not given; 0.95 is common).
    value: Current baseline, ``None`` before the first update.
  """

  decay: float = 0.95
  value: float | None = None

  def __post_init__(self):
    if not 0.0 <= self.decay < 1.0:
      raise ValueError(f"decay must lie in [0, 1), got {self.decay!r}")

  def advantages(self, rewards: Sequence[float]) -> np.ndarray:
    """``R_k - b`` with the baseline as it stands (the batch mean before any update)."""
    r = np.asarray(rewards, dtype=np.float64)
    b = float(np.mean(r)) if self.value is None else self.value
    return r - b

  def update(self, rewards: Sequence[float]) -> float:
    """Folds a batch of rewards into the baseline; returns the new value."""
    mean = float(np.mean(np.asarray(rewards, dtype=np.float64)))
    self.value = mean if self.value is None else self.decay * self.value + (1 - self.decay) * mean
    return self.value

  def to_dict(self) -> dict:
    return {"decay": self.decay, "value": self.value}


def reinforce_loss(log_probs, advantages, entropies=None, entropy_weight: float = 0.0):
  """The surrogate loss whose gradient is the REINFORCE estimate (§3.2).

  ``loss = -(1/m) sum_k A_k log P(a^k) - entropy_weight * mean_k H_k``; minimising it
  raises the probability of architectures with positive advantage ``A_k = R_k - b``.

  Args:
    log_probs: float tensor ``[m]``, total log-probability of each architecture.
    advantages: ``[m]`` rewards minus baseline (treated as constants).
    entropies: Optional ``[m]`` entropies for the exploration bonus.
    entropy_weight: Weight of the entropy bonus (0 disables it).
  """
  log_probs = tf.convert_to_tensor(log_probs, tf.float32)
  adv = tf.stop_gradient(tf.cast(tf.convert_to_tensor(advantages), tf.float32))
  loss = -tf.reduce_mean(adv * log_probs)
  if entropy_weight and entropies is not None:
    loss -= entropy_weight * tf.reduce_mean(tf.convert_to_tensor(entropies, tf.float32))
  return loss


def reinforce_step(log_prob_fn, variables, optimizer, advantages, entropy_weight: float = 0.0,
                   apply: bool = True):
  """One policy-gradient step.

  Args:
    log_prob_fn: Zero-argument callable returning ``(log_probs, entropies)`` tensors for
      the batch of sampled architectures, computed from ``variables`` (teacher forcing).
    variables: The trainable variables to update.
    optimizer: A Keras optimizer.
    advantages: ``[m]`` ``R_k - b``.
    entropy_weight: Entropy bonus weight.
    apply: If False, only return the gradients (for accumulation before an apply).

  Returns:
    ``(loss, grads)`` with ``loss`` a float.
  """
  with tf.GradientTape() as tape:
    log_probs, entropies = log_prob_fn()
    loss = reinforce_loss(log_probs, advantages, entropies, entropy_weight)
  grads = tape.gradient(loss, variables)
  grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]
  if apply:
    optimizer.apply(grads, variables)
  return float(loss), grads
