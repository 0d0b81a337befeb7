"""The shared convolutional network of the macro search space (Pham et al. 2018, ENAS §2.3).

ENAS's macro space fixes the depth and the channel count and lets each layer choose an
operation and its skip inputs; every (layer, operation) pair owns its weights, shared by
all architectures that pick it. Our space (Zoph & Le 2017, §3.1, §3.3) chooses per layer
a filter height and width, a filter count and (by anchor attention) the earlier layers
whose concatenated outputs are the layer's input. The shared variant here:

* fixes ``num_filters`` to one value ``F`` (:func:`shared_space`; the token has a single
  choice, so tokens, specs and log-probabilities stay consistent) and supports only
  stride 1 and the conv op (every map keeps the image size, so every sub-graph has the
  same shapes, as in ENAS's macro space between its fixed pooling layers);
* gives layer ``i`` one kernel per (filter height, filter width) pair, of shape
  ``[fh, fw, C + i * F, F]`` (``C`` image channels): its input is the concatenation
  ``[image, out_0, ..., out_{i-1}]`` with the blocks the spec does not use zeroed, which
  is exactly the child's conv on the concatenation of its chosen inputs (zero channels
  add nothing); the image block is used only by a layer with no inputs;
* runs only the chosen kernel (``tf.switch_case``), then batch normalisation with batch
  statistics and a per-layer scale and offset, then ReLU;
* concatenates the dangling layers (zeroing the rest), global-average-pools and applies
  one Dense over all ``L * F`` channels.

So the standalone child ``build_cnn(spec)`` with the selected weight slices copied in
(:meth:`SharedConvNet.copy_to_child`) gives the same logits when its batch normalisation
runs on batch statistics (``training=True``). Batch statistics are used for rewards too
(ENAS does the same): moving averages would mix statistics of different sub-graphs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from nas_tf import search_space as search_space_lib
from nas_tf import specs as specs_lib
from nas_tf.shared import training as shared_training

BN_EPSILON = 1e-3  # keras.layers.BatchNormalization's default, as in the children


def shared_space(space: search_space_lib.CNNSearchSpace,
                 filters: int) -> search_space_lib.CNNSearchSpace:
  """``space`` with ``num_filters`` fixed to ``filters`` (ENAS's fixed channel count).

  Raises:
    ValueError: the space has several strides, pooling ops or even filter sizes, which
      the fixed-shape shared network does not support.
  """
  if space.strides != (1,):
    raise ValueError(f"shared CNN evaluation supports stride 1 only, got strides "
                     f"{space.strides!r}")
  if space.layer_ops != ("conv",):
    raise ValueError(f"shared CNN evaluation supports the conv op only, got layer_ops "
                     f"{space.layer_ops!r}")
  even = [k for k in space.filter_heights + space.filter_widths if k % 2 == 0]
  if even:
    raise ValueError(f"shared CNN evaluation needs odd filter sizes, got {even!r}")
  if space.num_filters != (filters,):
    logging.warning("Shared CNN evaluation fixes num_filters to %d (the space had %s).",
                    filters, space.num_filters)
  return dataclasses.replace(space, num_filters=(filters,))


@keras.saving.register_keras_serializable(package="nas_tf")
class SharedConvNet(keras.layers.Layer):
  """Every child of a fixed-depth CNN space as a sub-graph of one network (ENAS §2.3).

  Args:
    space: A ``CNNSearchSpace`` (or its dict) accepted by :func:`shared_space`, whose
      ``num_layers`` is the depth and ``num_filters[0]`` the channel count.
    num_classes: Number of logits.
    image_channels: Channels of the input images.
    **kwargs: Passed to ``keras.layers.Layer``.

  Call arguments:
    images: ``[batch, height, width, image_channels]``.
    arch: int ``[num_tokens]``, a spec's tokens in the space's order.

  Returns:
    Logits ``[batch, num_classes]``.
  """

  def __init__(self, space, num_classes: int = 10, image_channels: int = 3, **kwargs):
    super().__init__(**kwargs)
    if isinstance(space, dict):
      space = search_space_lib.space_from_dict(space)
    if not isinstance(space, search_space_lib.CNNSearchSpace):
      raise TypeError(f"space must be a CNNSearchSpace, got {space!r}")
    if len(space.num_filters) != 1:
      raise ValueError(f"the space must fix num_filters (see shared_space), got "
                       f"{space.num_filters!r}")
    for name, value in (("num_classes", num_classes), ("image_channels", image_channels)):
      if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    self.space = shared_space(space, space.num_filters[0])
    self.num_classes = num_classes
    self.image_channels = image_channels
    self.filters = space.num_filters[0]
    self.kernel_sizes = [(h, w) for h in space.filter_heights for w in space.filter_widths]
    # Where each layer's decisions sit in the token vector, asked of the space (the only
    # module that knows token order).
    self._height_at = self.space.positions("filter_height")
    self._width_at = self.space.positions("filter_width")
    self._anchor_at = self.space.positions("anchor")

  def build(self, input_shape=None):
    f, c = self.filters, self.image_channels
    for i in range(self.space.num_layers):
      for h, w in self.kernel_sizes:
        # Attributes, not a list: tf.train.Checkpoint follows a Keras 3 layer's attributes.
        setattr(self, f"kernel_{i}_{h}x{w}", self.add_weight(
            shape=(h, w, c + i * f, f), name=f"layer_{i}_kernel_{h}x{w}",
            initializer="glorot_uniform"))
      setattr(self, f"gamma_{i}", self.add_weight(shape=(f,), name=f"layer_{i}_gamma",
                                                  initializer="ones"))
      setattr(self, f"beta_{i}", self.add_weight(shape=(f,), name=f"layer_{i}_beta",
                                                 initializer="zeros"))
    self.logits_kernel = self.add_weight(shape=(self.space.num_layers * f, self.num_classes),
                                         name="logits_kernel", initializer="glorot_uniform")
    self.logits_bias = self.add_weight(shape=(self.num_classes,), name="logits_bias",
                                       initializer="zeros")
    self.built = True

  def encode(self, spec: specs_lib.CNNSpec) -> np.ndarray:
    """The ``arch`` tensor of ``spec`` (its tokens in this space)."""
    return np.asarray(self.space.encode(spec), dtype=np.int32)

  def _bits(self, arch, i):
    """float [i]: which earlier layers feed layer ``i``."""
    start = self._anchor_at[i]
    return tf.cast(arch[start:start + i], tf.float32)

  def call(self, images, arch):
    arch = tf.cast(tf.convert_to_tensor(arch), tf.int32)
    num_w = len(self.space.filter_widths)
    outputs, used = [], tf.zeros([self.space.num_layers])
    for i in range(self.space.num_layers):
      bits = self._bits(arch, i)
      no_input = tf.cast(tf.reduce_sum(bits) == 0, images.dtype)
      blocks = [images * no_input] + [outputs[j] * bits[j] for j in range(i)]
      x = tf.concat(blocks, axis=-1) if len(blocks) > 1 else blocks[0]
      used += tf.pad(bits, [[0, self.space.num_layers - i]])
      which = arch[self._height_at[i]] * num_w + arch[self._width_at[i]]
      branches = [self._conv_fn(x, getattr(self, f"kernel_{i}_{h}x{w}"))
                  for h, w in self.kernel_sizes]
      x = tf.switch_case(which, branches)
      mean, variance = tf.nn.moments(x, axes=[0, 1, 2])
      x = tf.nn.batch_normalization(x, mean, variance, getattr(self, f"beta_{i}"),
                                    getattr(self, f"gamma_{i}"), BN_EPSILON)
      outputs.append(tf.nn.relu(x))
    dangling = tf.cast(used == 0, images.dtype)
    x = tf.concat([o * dangling[j] for j, o in enumerate(outputs)], axis=-1)
    x = tf.reduce_mean(x, axis=[1, 2])
    return tf.matmul(x, self.logits_kernel) + self.logits_bias

  @staticmethod
  def _conv_fn(x, kernel):
    return lambda: tf.nn.conv2d(x, kernel, strides=1, padding="SAME")

  def copy_to_child(self, spec: specs_lib.CNNSpec, child: keras.Model) -> keras.Model:
    """Copies the weight slices of ``spec`` into ``build_cnn(spec, ...)``."""
    f, c = self.filters, self.image_channels
    for i, layer in enumerate(spec.layers):
      kernel = getattr(self, f"kernel_{i}_{layer.filter_height}x{layer.filter_width}")
      rows = (list(range(c)) if not layer.inputs else
              [c + j * f + k for j in layer.inputs for k in range(f)])
      child.get_layer(f"layer_{i}_conv").kernel.assign(tf.gather(kernel, rows, axis=2))
      bn = child.get_layer(f"layer_{i}_bn")
      bn.gamma.assign(getattr(self, f"gamma_{i}"))
      bn.beta.assign(getattr(self, f"beta_{i}"))
    rows = [j * f + k for j in spec.dangling() for k in range(f)]
    dense = child.get_layer("logits")
    dense.kernel.assign(tf.gather(self.logits_kernel, rows, axis=0))
    dense.bias.assign(self.logits_bias)
    return child

  def get_config(self) -> dict:
    config = super().get_config()
    config.update(space=self.space.to_dict(), num_classes=self.num_classes,
                  image_channels=self.image_channels)
    return config


class CNNSharedTrainer:
  """The shared CIFAR-10 network, its optimiser and input pipelines (ENAS §2.2-2.3).

  Same interface as :class:`nas_tf.shared.training.RNNSharedTrainer`. Training batches come
  from the child pipeline (augmented, seeded); a resumed run restarts it at the step's
  batch position, so resumes see the same data order.
  """

  def __init__(self, config, space: search_space_lib.CNNSearchSpace, data):
    c = config.child
    self.config = config
    self.data = data  # the task's (Task.load_data)
    image_shape = tuple(int(d) for d in self.data.train.element_spec[0].shape)
    self.valid = list(self.data.batched("validation", c.batch_size,
                                        num_examples=config.child.max_eval_examples))
    self.model = SharedConvNet(space, num_classes=len(self.data.class_names),
                               image_channels=image_shape[-1], name="shared_cnn")
    self.model.build()
    self.optimizer = shared_training.make_shared_optimizer(config)
    self.optimizer.build(self.model.trainable_variables)
    self.shared_params = int(sum(np.prod(v.shape) for v in self.model.trainable_variables))
    self._image_shape = image_shape
    self._iterator, self._position = None, None
    self._train_step = tf.function(self._train_step_fn)
    self._eval_step = tf.function(self._eval_step_fn)

  def num_params(self, spec: specs_lib.CNNSpec) -> int:
    """Parameters of the standalone child of ``spec`` (the record's ``num_params``)."""
    from nas_tf import children  # pylint: disable=g-import-not-at-top
    return children.estimate_cnn_cost(spec, self._image_shape,
                                      self.model.num_classes)[0]

  def _train_step_fn(self, x, y, arch):
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
          y, self.model(x, arch), from_logits=True))
      if self.config.child.weight_decay:
        # wd * l2_loss(w) = wd * sum(w^2) / 2: gradient wd * w, as the independent
        # children (children.l2_weight_decay) and the paper mean weight decay.
        loss += self.config.child.weight_decay * tf.add_n(
            [tf.nn.l2_loss(v) for v in variables if "kernel" in v.name])
    return shared_training.apply_if_finite(self.optimizer, loss,
                                         tape.gradient(loss, variables), variables)

  def _eval_step_fn(self, x, y, arch):
    predictions = tf.argmax(self.model(x, arch), axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(predictions, tf.cast(y, tf.int32)), tf.float32))

  def _batches(self, first_batch: int):
    if self._position != first_batch:
      ds = self.data.batched("train", self.config.child.batch_size, seed=self.config.seed,
                             num_examples=self.config.child.max_train_examples,
                             drop_remainder=True).repeat()
      self._iterator = iter(ds.skip(first_batch))
      self._position = first_batch
    return self._iterator

  def train(self, archs: np.ndarray, first_batch: int) -> float:
    it = self._batches(first_batch)
    losses = []
    for arch in archs:
      x, y = next(it)
      losses.append(float(self._train_step(x, y, tf.constant(arch, tf.int32))))
    self._position = first_batch + len(archs)
    return shared_training.mean_finite(losses)

  def evaluate(self, arch, first_batch: int, num_batches: Optional[int]) -> dict:
    n = len(self.valid) if num_batches is None else min(num_batches, len(self.valid))
    first = 0 if num_batches is None else first_batch % len(self.valid)
    arch = tf.constant(arch, tf.int32)
    correct, total = 0.0, 0
    for j in range(n):
      x, y = self.valid[(first + j) % len(self.valid)]
      correct += float(self._eval_step(x, y, arch))
      total += int(y.shape[0])
    acc = correct / total
    ok = math.isfinite(acc)
    return {"status": "ok" if ok else "nan", "val_accuracy": acc,
            "val_accuracy_history": [acc], "error": None}
