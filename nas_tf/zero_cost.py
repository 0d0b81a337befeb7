"""Training-free scores of a convolutional child at initialisation ("zero-cost proxies").

A proxy child training costs minutes; these scores cost one or two forward/backward passes
on one batch. They come from the literature that followed the paper and are measured
here, like the trained proxies, by how they rank architectures against a longer training
(``benchmarks/proxy_fidelity.py --only=zero_cost``), never assumed to work:

* ``naswot`` (Mellor et al., "Neural Architecture Search without Training", ICML 2021):
  each image of a batch gets a binary code, which ReLU units it activates. A network
  that gives different images dissimilar codes can tell them apart before training.
  Score: ``log |K|`` with ``K[i, j]`` the number of units on which images ``i`` and ``j``
  agree (``C C^T + (1 - C)(1 - C)^T``).
* ``synflow`` (Tanaka et al. 2020, used for NAS by Abdelfattah et al., ICLR 2021): with
  every weight replaced by its absolute value and an all-ones input, ``R = sum(logits)``;
  the score is ``sum(theta * dR/dtheta)``, data-free. Reported as its natural log: it
  grows multiplicatively with depth and width.
* ``grad_norm``: the sum over layers of the L2 norm of each kernel's loss gradient on one
  labelled batch (Abdelfattah et al.'s variant).
* ``snip`` (Lee et al. 2019): ``sum |theta * dL/dtheta|`` on one labelled batch.
* ``num_params``: the parameter count, the baseline every score must beat.

The sums run over the prunable weights, as in those papers: the kernels of convolution
and Dense layers, not biases or BatchNorm's scale and offset. BatchNorm: ``naswot``,
``grad_norm`` and ``snip`` run the model in training mode (batch statistics, as at the
first step of training); ``synflow`` in inference mode, where a
fresh BatchNorm (moving mean 0, variance 1) is a near identity, so that the network stays
the positive linear map the score assumes.

:class:`ZeroCostEvaluator` scores a search's children this way (``--evaluation=zero_cost``;
the task's reward becomes the score, :class:`nas_tf.tasks.at_init.ZeroCostTask`).
"""

from __future__ import annotations

import math
import numbers
import random
import time
import traceback
from typing import Optional, Sequence

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from nas_tf import specs as specs_lib
from nas_tf.config import ZERO_COST_SCORES as SCORES
from nas_tf.config import ZeroCostConfig
from nas_tf.evaluator import Evaluator

# Scores that read no images: a search with one of these loads no data.
DATA_FREE = ("synflow", "num_params")


def _is_kernel(variable) -> bool:
  # Conv2D / Dense (and depthwise) kernels; Keras names them "kernel" in every layer.
  return "kernel" in variable.name


def _kernels(model: keras.Model) -> list:
  return [w for w in model.trainable_weights if _is_kernel(w)]


def _relu_layers(model: keras.Model) -> list:
  return [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]


def naswot(model: keras.Model, images: tf.Tensor) -> float:
  """``log |K|`` of the batch's ReLU-code agreement matrix (Mellor et al. 2021, §3).

  Args:
    model: A functional model with ``keras.layers.ReLU`` layers.
    images: ``[N, ...]`` inputs; ``N`` is the size of ``K``.

  Returns:
    The log-determinant (``-inf`` when two images share a code: ``K`` is singular).
  """
  relus = _relu_layers(model)
  if not relus:
    raise ValueError(f"naswot needs ReLU layers; model {model.name!r} has none")
  probe = keras.Model(model.inputs, [layer.output for layer in relus])
  outputs = probe(images, training=True)
  outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
  n = int(images.shape[0])
  # K summed block by block (one ReLU layer at a time): the codes of every unit at once
  # would be [N, millions] for a wide unstrided child, gigabytes in float64.
  k = np.zeros((n, n))
  for output in outputs:
    k += agreement_counts(tf.reshape(tf.cast(output > 0, tf.float32), (n, -1)))
  return _logdet(k)


def agreement_counts(codes) -> np.ndarray:
  """``C C^T + (1 - C)(1 - C)^T`` of binary codes ``C [N, units]``: ``K[i, j]`` counts
  the units on which codes ``i`` and ``j`` agree (float64 ``[N, N]``).

  Computed as ``units - s_i - s_j + 2 (C C^T)[i, j]`` with ``s`` the row sums, without
  materialising ``1 - C``; exact while a block has fewer than 2^24 units (float32 sums).
  """
  c = tf.convert_to_tensor(codes, tf.float32)
  units = float(c.shape[1])
  s = tf.reduce_sum(c, axis=1).numpy().astype(np.float64)
  same_on = tf.matmul(c, c, transpose_b=True).numpy().astype(np.float64)
  return units - s[:, None] - s[None, :] + 2.0 * same_on


def agreement_logdet(codes) -> float:
  """``log |C C^T + (1 - C)(1 - C)^T|`` of binary codes ``C [N, units]``."""
  return _logdet(agreement_counts(codes))


def _logdet(k: np.ndarray) -> float:
  sign, logdet = np.linalg.slogdet(k)
  return float(logdet) if sign > 0 else float("-inf")


def _float64_copy(model: keras.Model) -> keras.Model:
  """The functional ``model`` rebuilt in float64, with a copy of its weights."""
  def clone(layer):
    return layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})
  image = keras.Input(shape=tuple(model.inputs[0].shape[1:]), dtype="float64")
  copy = keras.models.clone_model(model, input_tensors=image, clone_function=clone)
  for target, source in zip(copy.weights, model.weights):
    target.assign(np.asarray(source.numpy(), np.float64))
  return copy


def synflow(model: keras.Model) -> float:
  """Natural log of ``sum(|theta| * dR/d|theta|)`` with ``R = sum(model(ones))``.

  Computed on a float64 copy of the model (``model`` is unchanged): the path sum grows
  multiplicatively with depth, and the benchmark's 17-cell networks overflow float32.
  Data-free: only the input shape is used.
  """
  copy = _float64_copy(model)
  for w in copy.trainable_weights:
    w.assign(tf.abs(w))
  weights = _kernels(copy)
  ones = tf.ones((1,) + tuple(int(d) for d in copy.inputs[0].shape[1:]), tf.float64)
  with tf.GradientTape() as tape:
    r = tf.reduce_sum(copy(ones, training=False))
  grads = tape.gradient(r, weights)
  total = sum(float(tf.reduce_sum(g * w)) for g, w in zip(grads, weights) if g is not None)
  return math.log(total) if total > 0 else float("-inf")


def grad_norm_and_snip(model: keras.Model, images, labels) -> tuple[float, float]:
  """``(sum_l ||dL/dW_l||_2, sum |W * dL/dW|)`` of the cross-entropy on one batch, over
  the kernels ``W_l``."""
  kernels = _kernels(model)
  with tf.GradientTape() as tape:
    logits = model(images, training=True)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=logits))
  grads = tape.gradient(loss, kernels)
  pairs = [(g, w) for g, w in zip(grads, kernels) if g is not None]
  norm = sum(float(tf.norm(g)) for g, _ in pairs)
  snip_score = sum(float(tf.reduce_sum(tf.abs(g * w))) for g, w in pairs)
  return norm, snip_score


def score_model(model: keras.Model, images, labels,
                scores: Sequence[str] = SCORES) -> dict[str, float]:
  """The requested ``scores`` of a freshly initialised model, with ``seconds``.

  Args:
    model: A freshly built (untrained) CNN child.
    images: One batch of whitened training images ``[N, H, W, C]``.
    labels: Their integer labels ``[N]``.
    scores: Names from :data:`SCORES`.

  Returns:
    ``{name: value}`` plus ``seconds`` (the scoring time, without the build).
  """
  unknown = sorted(set(scores) - set(SCORES))
  if unknown:
    raise ValueError(f"unknown zero-cost scores {unknown}; expected names from {SCORES}")
  start = time.monotonic()
  out: dict[str, float] = {}
  if "num_params" in scores:
    out["num_params"] = float(model.count_params())
  # synflow before the training-mode passes: those update BatchNorm's moving statistics,
  # which the inference-mode synflow pass would then read.
  if "synflow" in scores:
    out["synflow"] = synflow(model)
  if "naswot" in scores:
    out["naswot"] = naswot(model, images)
  if "grad_norm" in scores or "snip" in scores:
    norm, snip_score = grad_norm_and_snip(model, images, labels)
    if "grad_norm" in scores:
      out["grad_norm"] = norm
    if "snip" in scores:
      out["snip"] = snip_score
  out["seconds"] = time.monotonic() - start
  return out


class ZeroCostEvaluator(Evaluator):
  """Scores conv-network children at initialisation instead of training them.

  Every child is built with the search's size caps (``child.max_params``,
  ``child.max_activation_elements``) and seeded like a trained child, then scored by
  ``settings.score``; records carry ``zero_cost`` (the score), ``zero_cost_score`` (its
  name), ``num_params`` and ``train_seconds`` (build plus scoring).

  Args:
    settings: Which score, and the batch the data-dependent ones see.
    child_config: The search's child settings (only the size caps are used).
    load_data: Zero-argument callable returning the task's data (called once, and only
      for a score that reads images).
    seed: Initialisation seed of every child.
    num_classes: Output classes of the networks a data-free score builds; None reads
      it from the data (as a score that reads images always does).
  """

  record_extras = {"evaluation": "zero_cost"}

  def __init__(self, settings: ZeroCostConfig, child_config, load_data, seed: int = 0,
               num_classes: Optional[int] = 10):
    if num_classes is not None and not (isinstance(num_classes, numbers.Integral)
                                        and num_classes >= 2):
      raise ValueError(f"num_classes must be an int >= 2 or None, got {num_classes!r}")
    self.settings, self.child_config, self.seed = settings, child_config, seed
    self.num_classes = None if num_classes is None else int(num_classes)
    self._load_data, self._batch = load_data, None
    self._scored = 0

  def _images(self):
    if self.settings.score in DATA_FREE:
      if self.num_classes is None:  # counted once, from the data
        self.num_classes = len(self._load_data().class_names)
      return None, None, self.num_classes
    if self._batch is None:
      data = self._load_data()
      images, labels = next(iter(data.batched(
          "train", self.settings.batch_size, augment=False, shuffle=False)))
      self._batch = images, labels, len(data.class_names)
    return self._batch

  def _score(self, spec) -> dict:
    from nas_tf import children  # pylint: disable=g-import-not-at-top
    start = time.monotonic()
    if not isinstance(spec, specs_lib.CNNSpec):
      raise TypeError(f"zero-cost evaluation scores conv networks (CNNSpec), got "
                      f"{type(spec).__name__}; use it with --task=cifar10")
    images, labels, num_classes = self._images()
    # Keras 3 draws every unseeded initializer's seed from Python's `random`: seeding it
    # (not TensorFlow) makes the child reproducible without resetting TensorFlow's
    # runtime caches, which this process shares with the controller (a global reseed or
    # clear_session per child cost the controller's next sample and update ~10 s of graph
    # re-optimisation each, measured: 87 s of controller against 20 s of scoring in an
    # 11-child search). Caches are released every `release_every` children instead.
    random.seed(self.seed)
    np.random.seed(self.seed)
    out = {"status": "ok", "zero_cost_score": self.settings.score}
    try:
      model = children.build_cnn(
          spec, num_classes=num_classes, max_params=self.child_config.max_params,
          max_activation_elements=self.child_config.max_activation_elements,
          max_macs=self.child_config.max_macs)
      out["num_params"] = int(model.count_params())
      scores = score_model(model, images, labels, scores=(self.settings.score,))
      out["zero_cost"] = scores[self.settings.score]
    except children.ChildTooLargeError as e:
      out.update(status="too_large", error=str(e))
    except Exception as e:  # pylint: disable=broad-except
      # As for a trained child: one broken architecture must not stop the search.
      logging.warning("zero-cost scoring failed: %s\n%s", e, traceback.format_exc())
      out.update(status="failed", error=f"{type(e).__name__}: {e}")
    out["train_seconds"] = time.monotonic() - start
    return out

  def evaluate(self, specs: Sequence) -> list[dict]:
    """Scores each spec (a list of metrics dicts, in order)."""
    out = []
    for spec in specs:
      out.append(self._score(spec))
      self._scored += 1
      if self._scored % self.settings.release_every == 0:
        keras.backend.clear_session()  # bounds memory; see ZeroCostConfig.release_every
    return out

  def close(self, abort: bool = False) -> None:
    del abort  # nothing runs outside this process
