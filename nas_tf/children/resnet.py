"""A hand-designed baseline for CIFAR-10: the ResNet of He et al. (2016), §4.2.

The paper's conv children are compared, after the final training, with a network a person
designed at a similar size (§4.1 compares with ResNets and DenseNets). This is He et al.'s
CIFAR ResNet: a 3x3 conv of ``width`` filters, three stages of ``n`` basic blocks (two 3x3
convs each, batch norm, ReLU after the addition) at ``width``, ``2 width`` and ``4 width``
filters, the first block of the second and third stages with stride 2, then global average
pooling and the classifier: ``6 n + 2`` weighted layers (ResNet-20: n = 3, width 16, about
0.27M parameters). A block whose shape changes adds a 1x1 stride-2 conv with batch norm on
its shortcut (their option B), so every shortcut is a layer Keras can save.
"""

from __future__ import annotations

from typing import Sequence

import keras

from nas_tf.children.common import l2_weight_decay

NAMED_NETWORKS = ("resnet20",)  # what nas_train --cell takes for CIFAR-10


def build_resnet(depth: int = 20, input_shape: Sequence[int] = (32, 32, 3),
                 num_classes: int = 10, weight_decay: float = 0.0, width: int = 16,
                 name: str = "resnet") -> keras.Model:
  """He et al.'s CIFAR ResNet of ``depth = 6 n + 2`` layers, logits out.

  Args:
    depth: Weighted layers, ``6 n + 2`` (20, 32, 44, 56, 110).
    input_shape: ``(height, width, channels)`` of one image.
    num_classes: Number of logits.
    weight_decay: As :func:`nas_tf.children.build_cnn`'s (the gradient gains
      ``weight_decay * w``), on every conv and Dense kernel.
    width: Filters of the first stage (16 in the paper); the others have 2x and 4x.
    name: Model name.
  """
  if depth < 8 or (depth - 2) % 6:
    raise ValueError(f"a CIFAR ResNet has 6 n + 2 layers (20, 32, 44, ...), got depth "
                     f"{depth!r}")
  if width < 1:
    raise ValueError(f"width must be >= 1, got {width!r}")
  blocks = (depth - 2) // 6

  def conv(x, filters, kernel, stride, label):
    return keras.layers.Conv2D(filters, kernel, strides=stride, padding="same",
                               use_bias=False, kernel_regularizer=l2_weight_decay(weight_decay),
                               name=f"{label}_conv")(x)

  def bn(x, label):
    return keras.layers.BatchNormalization(name=f"{label}_bn")(x)

  image = keras.Input(shape=tuple(input_shape), name="image")
  x = keras.layers.ReLU(name="stem_relu")(bn(conv(image, width, 3, 1, "stem"), "stem"))
  for stage in range(3):
    filters = width * 2 ** stage
    for block in range(blocks):
      label = f"stage{stage}_block{block}"
      stride = 2 if stage > 0 and block == 0 else 1
      y = keras.layers.ReLU(name=f"{label}_a_relu")(
          bn(conv(x, filters, 3, stride, f"{label}_a"), f"{label}_a"))
      y = bn(conv(y, filters, 3, 1, f"{label}_b"), f"{label}_b")
      shortcut = x
      if stride != 1 or x.shape[-1] != filters:
        shortcut = bn(conv(x, filters, 1, stride, f"{label}_shortcut"), f"{label}_shortcut")
      x = keras.layers.ReLU(name=f"{label}_relu")(
          keras.layers.Add(name=f"{label}_add")([y, shortcut]))
  x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
  logits = keras.layers.Dense(num_classes, kernel_regularizer=l2_weight_decay(weight_decay),
                              name="logits")(x)
  return keras.Model(image, logits, name=name)


def build_named(name: str, input_shape: Sequence[int], num_classes: int,
                weight_decay: float = 0.0) -> keras.Model:
  """One of :data:`NAMED_NETWORKS`."""
  if name == "resnet20":
    return build_resnet(20, input_shape, num_classes, weight_decay, name="resnet20")
  raise ValueError(f"unknown network {name!r}; use one of {NAMED_NETWORKS}")
