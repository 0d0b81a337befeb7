"""What the CNN and language-model children share: the size-cap error, weight decay."""

from __future__ import annotations

import keras


class ChildTooLargeError(ValueError):
  """A child exceeds a size cap; the search records the trial as failed."""


def l2_weight_decay(weight_decay: float):
  """A Keras regulariser whose gradient is ``weight_decay * w`` (None for 0).

  The paper's weight decay 1e-4 (§4.1) is TensorFlow's ``1e-4 * tf.nn.l2_loss(w)`` =
  ``1e-4 * sum(w**2) / 2``; ``keras.regularizers.L2(1e-4)`` would double it.
  """
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
  return keras.regularizers.L2(weight_decay / 2) if weight_decay > 0 else None
