"""Classification data held as arrays: the data protocol of trained-child tasks.

A :class:`nas_tf.tasks.TrainedChildTask` that classifies (``cifar10``, or a task of a
user's own) gives its children data with ``arrays(split)``, ``batched(split, ...)`` and
``class_names``; :class:`ArrayData` is that protocol for data already in memory, so a
new task's ``load_data`` is one line. Splits: 'train', 'validation', 'test'.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

SPLITS = ("train", "validation", "test")


class ArrayData:
  """``(inputs, labels)`` arrays per split, batched (and shuffled) on demand.

  Args:
    train, validation, test: ``(inputs [N, ...], labels int [N])`` of each split.
    class_names: One name per label; default ``["0", "1", ...]`` up to the largest label.
  """

  def __init__(self, train, validation, test, class_names: Optional[Sequence[str]] = None):
    self._arrays = {}
    for split, (x, y) in zip(SPLITS, (train, validation, test)):
      x, y = np.asarray(x), np.asarray(y, dtype=np.int32)
      if len(x) != len(y) or not len(y):
        raise ValueError(f"{split}: inputs and labels must be non-empty and of one length, "
                         f"got {len(x)} and {len(y)}")
      self._arrays[split] = (x, y)
    top = max(int(y.max()) for _, y in self._arrays.values())
    self.class_names = list(class_names or [str(k) for k in range(top + 1)])
    if top >= len(self.class_names):
      raise ValueError(f"label {top} has no class name (class_names has "
                       f"{len(self.class_names)})")
    self.num_examples = {s: len(y) for s, (_, y) in self._arrays.items()}

  def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(inputs, labels)`` of ``split``."""
    if split not in self._arrays:
      raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return self._arrays[split]

  def batched(self, split: str, batch_size: int, augment: Optional[bool] = None,
              shuffle: Optional[bool] = None, seed: int = 0,
              num_examples: Optional[int] = None) -> tf.data.Dataset:
    """Batches of ``split`` (its first ``num_examples``), shuffled each epoch for 'train'.

    ``augment`` is accepted for the protocol and ignored: arrays have no augmentation.
    """
    del augment
    x, y = self.arrays(split)
    if num_examples is not None:
      x, y = x[:num_examples], y[:num_examples]
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if split == "train" if shuffle is None else shuffle:
      ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


__all__ = ["ArrayData"]
