"""Convolutional child networks generated from specs (Zoph & Le 2017, §3.3 and §4.1).

:func:`build_cnn` turns a :class:`nas_tf.specs.CNNSpec` into a functional Keras model that
outputs logits. The rules follow §3.3 ("Increase architecture complexity with skip
connections and other layer types"):

* Each conv layer is Conv2D (no bias: BatchNorm's beta plays that role) -> BatchNorm ->
  ReLU; pooling layers (the §4.1 extension) pool with a ``filter_height x filter_width``
  window and keep their input's channel count.
* A layer's input is the depth-wise concatenation of the outputs of the earlier layers it
  names; a layer that names none reads the image.
* Feature maps of different spatial sizes are made compatible by zero padding the
  smaller ones to the largest height and width among them. Padding is added at the
  **bottom and right** only: with "same" padding a strided map's pixel ``(i, j)`` is
  centred near input pixel ``(s*i, s*j)``, so keeping the top-left corners aligned keeps
  pixel ``(0, 0)`` of every map over the same image region.
* Every layer whose output feeds no later layer is concatenated (same padding rule) into
  the final stage, followed by global average pooling and a Dense logits layer.

:func:`estimate_cnn_cost` computes the model's size analytically from the same plan that
drives the builder, so the search can reject a child (:class:`ChildTooLargeError`)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional, Sequence

import keras
from keras import ops

from nas_tf import specs
from nas_tf.children.common import ChildTooLargeError, l2_weight_decay


@dataclasses.dataclass(frozen=True)
class _LayerPlan:
  """Shapes of one layer, computed without TensorFlow.

  Attributes:
    sources: Indices of the layers feeding it (empty = the image).
    in_hw: Spatial size (height, width) of its (padded, concatenated) input.
    in_channels: Channels of that input.
    out_hw: Spatial size of its output.
    out_channels: Channels of its output.
  """

  sources: tuple[int, ...]
  in_hw: tuple[int, int]
  in_channels: int
  out_hw: tuple[int, int]
  out_channels: int


@dataclasses.dataclass(frozen=True)
class _CNNPlan:
  """The whole network's shapes; the single source of truth for build and estimate."""

  layers: tuple[_LayerPlan, ...]
  final_sources: tuple[int, ...]
  final_hw: tuple[int, int]
  final_channels: int
  # (source layer, target height, target width) for every distinct pad op: a layer
  # padded to the same size for several consumers is padded once.
  pads: tuple[tuple[int, int, int], ...]


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
  shape = tuple(input_shape)
  if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
    raise ValueError(f"input_shape must be (height, width, channels) of positive ints, "
                     f"got {input_shape!r}")
  return shape


def _merged_hw(plans: Sequence[_LayerPlan], sources: Sequence[int]) -> tuple[int, int]:
  """Spatial size after zero padding every source to the largest height and width."""
  return (max(plans[j].out_hw[0] for j in sources),
          max(plans[j].out_hw[1] for j in sources))


def _plan_cnn(spec: specs.CNNSpec, input_shape: Sequence[int]) -> _CNNPlan:
  """Propagates shapes through ``spec``; pure Python, used by builder and estimator."""
  if not isinstance(spec, specs.CNNSpec):
    raise TypeError(f"expected a CNNSpec, got {type(spec).__name__}")
  height, width, channels = _check_input_shape(input_shape)
  plans: list[_LayerPlan] = []
  pads: dict[tuple[int, int, int], None] = {}  # Ordered set.

  def note_pads(sources, hw):
    for j in sources:
      if plans[j].out_hw != hw:
        pads[(j, *hw)] = None

  for layer in spec.layers:
    if layer.inputs:
      in_hw = _merged_hw(plans, layer.inputs)
      in_channels = sum(plans[j].out_channels for j in layer.inputs)
      note_pads(layer.inputs, in_hw)
    else:
      in_hw, in_channels = (height, width), channels
    # "same" padding: output size is ceil(input / stride) for conv and pooling alike.
    out_hw = (math.ceil(in_hw[0] / layer.stride), math.ceil(in_hw[1] / layer.stride))
    out_channels = layer.num_filters if layer.op == "conv" else in_channels
    plans.append(_LayerPlan(layer.inputs, in_hw, in_channels, out_hw, out_channels))

  final_sources = tuple(spec.dangling())
  final_hw = _merged_hw(plans, final_sources)
  note_pads(final_sources, final_hw)
  final_channels = sum(plans[j].out_channels for j in final_sources)
  return _CNNPlan(tuple(plans), final_sources, final_hw, final_channels, tuple(pads))


def estimate_cnn_cost(spec: specs.CNNSpec, input_shape: Sequence[int] = (32, 32, 3),
                      num_classes: int = 10) -> tuple[int, int]:
  """Size of the model :func:`build_cnn` would build, without building it (§3.3).

  Args:
    spec: The architecture.
    input_shape: ``(height, width, channels)`` of one image.
    num_classes: Width of the logits layer.

  Returns:
    ``(num_params, activation_elements)``. ``num_params`` equals the built model's
    ``count_params()`` (trainable and non-trainable weights, i.e. including the
    BatchNorm moving statistics). ``activation_elements`` is the number of scalars, per
    example, in every tensor the graph produces (pads, concats, conv, BatchNorm, ReLU,
    pooling, global pooling and logits outputs; not the image itself): a proxy for the
    memory the backward pass keeps, multiply by batch size and 4 bytes for float32.
  """
  plan = _plan_cnn(spec, input_shape)
  params = 0
  elements = 0
  for layer, lp in zip(spec.layers, plan.layers):
    if len(lp.sources) > 1:
      elements += lp.in_hw[0] * lp.in_hw[1] * lp.in_channels  # The concat.
    out_elements = lp.out_hw[0] * lp.out_hw[1] * lp.out_channels
    if layer.op == "conv":
      params += layer.filter_height * layer.filter_width * lp.in_channels * lp.out_channels
      params += 4 * lp.out_channels  # BatchNorm gamma, beta, moving mean, moving variance.
      elements += 3 * out_elements  # Conv, BatchNorm and ReLU outputs.
    else:
      elements += out_elements
  for j, h, w in plan.pads:
    elements += h * w * plan.layers[j].out_channels
  if len(plan.final_sources) > 1:
    elements += plan.final_hw[0] * plan.final_hw[1] * plan.final_channels
  params += plan.final_channels * num_classes + num_classes
  elements += plan.final_channels + num_classes  # Global pooling and logits.
  return params, elements


def estimate_cnn_macs(spec: specs.CNNSpec, input_shape: Sequence[int] = (32, 32, 3),
                      num_classes: int = 10) -> int:
  """Multiply-accumulates of one forward pass of one example (the usual "FLOPs" of
  papers that count a fused multiply-add once): every conv's
  ``out_h * out_w * k_h * k_w * in_channels * out_channels`` plus the logits layer's
  ``channels * num_classes``. BatchNorm, ReLU, pooling, pads and concats are not counted
  (they are memory-bound and small next to the convs). For a size-matched comparison
  with a hand-designed network: He et al.'s ResNet-20 costs about 41M on 32x32 images.
  """
  plan = _plan_cnn(spec, input_shape)
  macs = 0
  for layer, lp in zip(spec.layers, plan.layers):
    if layer.op == "conv":
      macs += (lp.out_hw[0] * lp.out_hw[1] * layer.filter_height * layer.filter_width
               * lp.in_channels * lp.out_channels)
  return macs + plan.final_channels * num_classes


def _check_caps(spec, input_shape, num_classes, max_params=None,
                max_activation_elements=None, max_macs=None):
  problems = []
  if max_params is not None or max_activation_elements is not None:
    params, elements = estimate_cnn_cost(spec, input_shape, num_classes)
    if max_params is not None and params > max_params:
      problems.append(f"{params:,} parameters > max_params={max_params:,}")
    if max_activation_elements is not None and elements > max_activation_elements:
      problems.append(f"{elements:,} activation elements per example > "
                      f"max_activation_elements={max_activation_elements:,}")
  if max_macs is not None:
    macs = estimate_cnn_macs(spec, input_shape, num_classes)
    if macs > max_macs:
      problems.append(f"{macs:,} multiply-accumulates per example > max_macs={max_macs:,}")
  if problems:
    raise ChildTooLargeError(
        f"child too large: {'; '.join(problems)} (input {tuple(input_shape)}, "
        f"spec {spec.describe()})")


def scale_widths(spec: specs.CNNSpec, width_multiplier: float) -> specs.CNNSpec:
  """``spec`` with every conv layer's filters times ``width_multiplier`` (rounded, at
  least 1); the same spec at 1."""
  if not width_multiplier > 0:
    raise ValueError(f"width_multiplier must be > 0, got {width_multiplier!r}")
  if width_multiplier == 1:
    return spec
  return specs.CNNSpec(tuple(
      dataclasses.replace(l, num_filters=max(1, round(l.num_filters * width_multiplier)))
      if l.op == "conv" else l for l in spec.layers))


def build_cnn(spec: specs.CNNSpec, input_shape: Sequence[int] = (32, 32, 3),
              num_classes: int = 10, weight_decay: float = 0.0,
              max_params: Optional[int] = None,
              max_activation_elements: Optional[int] = None,
              name: str = "cnn_child", width_multiplier: float = 1.0,
              image_size: Optional[int] = None,
              max_macs: Optional[int] = None) -> keras.Model:
  """Builds the convolutional child network described by ``spec`` (paper §3.3, §4.1).

  Layer names are stable: ``layer_{i}_concat``, ``layer_{i}_conv``, ``layer_{i}_bn``,
  ``layer_{i}_relu`` or ``layer_{i}_max_pool``/``layer_{i}_avg_pool``; pads are
  ``pad_{j}_to_{h}x{w}`` (layer ``j``'s output padded bottom/right); the head is
  ``final_concat`` (only with several dangling layers), ``global_pool`` and ``logits``.
  No op is added where it would be an identity (no pad when sizes match, no concat for a
  single input), so the graph costs what a hand-written model of it would.

  Args:
    spec: The architecture.
    input_shape: ``(height, width, channels)`` of one image.
    num_classes: Number of logits.
    weight_decay: Weight decay of every conv and Dense kernel as the paper (and TF's
      ``weight_decay * tf.nn.l2_loss(w)``) means it: the gradient gains
      ``weight_decay * w``. Keras' ``L2(l)`` adds ``l * sum(w**2)``, whose gradient is
      ``2 l w``, so the regulariser is ``L2(weight_decay / 2)``. 0 disables it.
    max_params: Optional cap on :func:`estimate_cnn_cost`'s parameter count.
    max_activation_elements: Optional cap on its per-example activation count.
    name: Model name.
    width_multiplier: Every conv layer's filters times this (at least 1): a reduced
      proxy of the network (EcoNAS, Zhou et al. 2020, "channels"); 1 = as specified.
    image_size: Images are resized (area averaging) to ``image_size`` x ``image_size``
      by the model's first layer, ``resize``, before the first conv (EcoNAS'
      "resolution"); None = as given.
    max_macs: Optional cap on :func:`estimate_cnn_macs` (compute per example), checked
      on the network as given (before ``width_multiplier`` and ``image_size``): a reduced
      proxy of a network is admitted exactly when the full network is.

  Returns:
    A functional ``keras.Model`` mapping images ``[batch, h, w, c]`` to logits
    ``[batch, num_classes]`` (no softmax: train with ``from_logits=True``).

  Raises:
    ChildTooLargeError: A cap is exceeded; raised before any layer is created.
  """
  input_shape = _check_input_shape(input_shape)
  if max_macs is not None:
    _check_caps(spec, input_shape, num_classes, max_macs=max_macs)  # the full network
  spec = scale_widths(spec, width_multiplier)
  if image_size is not None and int(image_size) < 1:
    raise ValueError(f"image_size must be >= 1 or None, got {image_size!r}")
  body_shape = (input_shape if image_size is None
                else (int(image_size), int(image_size), input_shape[2]))
  _check_caps(spec, body_shape, num_classes, max_params, max_activation_elements)
  plan = _plan_cnn(spec, body_shape)

  def regularizer():
    return l2_weight_decay(weight_decay)

  image = keras.Input(shape=input_shape, name="image")
  body_input = image if body_shape == input_shape else keras.layers.Resizing(
      body_shape[0], body_shape[1], interpolation="area", name="resize")(image)
  outputs: list = []
  padded: dict[tuple[int, int, int], object] = {}

  def at_size(j, hw):
    """Layer ``j``'s output zero padded (bottom/right) to ``hw``, sharing pad ops."""
    dh, dw = hw[0] - plan.layers[j].out_hw[0], hw[1] - plan.layers[j].out_hw[1]
    if dh == 0 and dw == 0:
      return outputs[j]
    key = (j, *hw)
    if key not in padded:
      padded[key] = keras.layers.ZeroPadding2D(
          ((0, dh), (0, dw)), name=f"pad_{j}_to_{hw[0]}x{hw[1]}")(outputs[j])
    return padded[key]

  def merge(sources, hw, concat_name):
    tensors = [at_size(j, hw) for j in sources]
    if len(tensors) == 1:
      return tensors[0]
    return keras.layers.Concatenate(axis=-1, name=concat_name)(tensors)

  for i, (layer, lp) in enumerate(zip(spec.layers, plan.layers)):
    x = merge(lp.sources, lp.in_hw, f"layer_{i}_concat") if lp.sources else body_input
    if layer.op == "conv":
      x = keras.layers.Conv2D(
          layer.num_filters, (layer.filter_height, layer.filter_width),
          strides=layer.stride, padding="same", use_bias=False,
          kernel_regularizer=regularizer(), name=f"layer_{i}_conv")(x)
      x = keras.layers.BatchNormalization(name=f"layer_{i}_bn")(x)
      x = keras.layers.ReLU(name=f"layer_{i}_relu")(x)
    else:
      pool = (keras.layers.MaxPooling2D if layer.op == "max_pool"
              else keras.layers.AveragePooling2D)
      x = pool(pool_size=(layer.filter_height, layer.filter_width), strides=layer.stride,
               padding="same", name=f"layer_{i}_{layer.op}")(x)
    outputs.append(x)

  x = merge(plan.final_sources, plan.final_hw, "final_concat")
  x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
  logits = keras.layers.Dense(num_classes, kernel_regularizer=regularizer(),
                              name="logits")(x)
  return keras.Model(image, logits, name=name)
