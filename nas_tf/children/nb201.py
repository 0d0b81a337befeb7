"""NAS-Bench-201 networks as Keras models (Dong & Yang, ICLR 2020, §2 and Figure 1).

The tabular benchmark's accuracies come from this macro skeleton, so building it lets a
user train a cell found by ``--task=nasbench201`` for real, and lets the training-free
scores of :mod:`nas_tf.zero_cost` be checked against the benchmark's 15,625 trained cells.

* Stem: 3x3 convolution with ``channels`` filters, then BatchNorm.
* Three stages of ``cells_per_stage`` cells (``channels``, 2x and 4x filters), joined by
  a residual reduction block: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus a shortcut
  of 2x2 average pooling (stride 2) and a 1x1 convolution.
* Head: BatchNorm, ReLU, global average pooling, Dense logits.

A cell is a 4-node DAG: node 0 is the cell input, node ``j`` the sum over ``i < j`` of
``op(i -> j)(node i)``, node 3 the output. Operations: ``none`` (the edge is absent),
``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU, convolution without
bias, BatchNorm) and ``avg_pool_3x3`` (stride 1, the mean over the window's in-image
pixels). A node every one of whose edges is ``none`` is zero, as in the benchmark.
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import ops

from nas_tf import specs


@keras.saving.register_keras_serializable(package="nas_tf")
class Zero(keras.layers.Layer):
  """The output of a node whose every incoming edge is ``none``: zeros shaped like its input."""

  def call(self, inputs):
    return ops.zeros_like(inputs)

  def compute_output_shape(self, input_shape):
    return input_shape


def _relu_conv_bn(x, filters: int, kernel: int, stride: int, name: str):
  x = keras.layers.ReLU(name=f"{name}_relu")(x)
  padding = "same"
  if stride > 1:
    # The benchmark pads (k - 1) / 2 on every side; Keras' "same" at stride 2 on an even
    # size pads only bottom/right, which would shift the sampled grid by one pixel.
    x = keras.layers.ZeroPadding2D((kernel - 1) // 2, name=f"{name}_pad")(x)
    padding = "valid"
  x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                          name=f"{name}_conv")(x)
  return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def _edge(x, op: str, filters: int, name: str):
  if op == "skip_connect":
    return x
  if op == "nor_conv_1x1":
    return _relu_conv_bn(x, filters, 1, 1, name)
  if op == "nor_conv_3x3":
    return _relu_conv_bn(x, filters, 3, 1, name)
  if op == "avg_pool_3x3":
    # Keras' "same" average pooling divides by the in-image pixels of the window, as the
    # benchmark's count_include_pad=False does.
    return keras.layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
  raise ValueError(f"unknown NAS-Bench-201 operation {op!r}; expected one of "
                   f"{specs.NB201_OPS}")


def _cell(x, spec: specs.NB201CellSpec, filters: int, name: str):
  nodes = [x]
  for j in (1, 2, 3):
    terms = [_edge(nodes[i], op, filters, f"{name}_e{i}{j}_{op}")
             for op, (i, jj) in zip(spec.ops, specs.NB201_EDGES) if jj == j and op != "none"]
    if not terms:
      nodes.append(Zero(name=f"{name}_n{j}_zero")(x))
    elif len(terms) == 1:
      nodes.append(terms[0])
    else:
      nodes.append(keras.layers.Add(name=f"{name}_n{j}_sum")(terms))
  return nodes[3]


def _reduction(x, filters: int, name: str):
  y = _relu_conv_bn(x, filters, 3, 2, f"{name}_a")
  y = _relu_conv_bn(y, filters, 3, 1, f"{name}_b")
  shortcut = keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_short_pool")(x)
  shortcut = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_short_conv")(
      shortcut)
  return keras.layers.Add(name=f"{name}_sum")([shortcut, y])


def build_nb201(spec: specs.NB201CellSpec, input_shape: Sequence[int] = (32, 32, 3),
                num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5,
                name: str = "nb201") -> keras.Model:
  """The NAS-Bench-201 network of ``spec`` (the benchmark's: 16 channels, 5 cells a stage).

  Args:
    spec: The cell, repeated in every stage.
    input_shape: ``(height, width, channels)`` of one image (even height and width).
    num_classes: Logits (10 for CIFAR-10, 100 for CIFAR-100, 120 for ImageNet16-120).
    channels: Filters of the first stage; doubled at each reduction.
    cells_per_stage: Cells per stage (N in the benchmark's paper).
    name: Model name.

  Returns:
    A functional ``keras.Model`` from images to logits (no softmax).
  """
  if not isinstance(spec, specs.NB201CellSpec):
    raise TypeError(f"spec must be an NB201CellSpec, got {type(spec).__name__}")
  for arg, value in (("channels", channels), ("cells_per_stage", cells_per_stage),
                     ("num_classes", num_classes)):
    if not isinstance(value, int) or value <= 0:
      raise ValueError(f"{arg} must be a positive int, got {value!r}")
  image = keras.Input(shape=tuple(input_shape), name="image")
  x = keras.layers.Conv2D(channels, 3, padding="same", use_bias=False, name="stem_conv")(image)
  x = keras.layers.BatchNormalization(name="stem_bn")(x)
  for stage in range(3):
    filters = channels * 2 ** stage
    if stage:
      x = _reduction(x, filters, f"reduce{stage}")
    for c in range(cells_per_stage):
      x = _cell(x, spec, filters, f"s{stage}c{c}")
  x = keras.layers.BatchNormalization(name="head_bn")(x)
  x = keras.layers.ReLU(name="head_relu")(x)
  x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
  return keras.Model(image, keras.layers.Dense(num_classes, name="logits")(x), name=name)
