"""Recurrent cells as Keras layers (Zoph & Le 2017, §3.4 and Figure 8).

A :class:`nas_tf.specs.RNNCellSpec` describes a tree-shaped cell; this module turns it
into a Keras 3 RNN cell, so that ``keras.layers.RNN``, ``Bidirectional``, masking,
``return_state`` and stacking all work and a model holding the cell saves to and loads
from the ``.keras`` format.

Tree semantics (the spec docstrings are the reference):

* Nodes are in level order, leaves first; with ``B`` leaves, internal node ``B + k``
  combines nodes ``2k`` and ``2k + 1``; the last node is the root.
* ``xW = x_t @ kernel`` and ``hW = h_{t-1} @ recurrent_kernel (+ bias)`` are split into
  ``B`` chunks. Leaf ``i`` computes ``pre_i = combine_i(xW_i, hW_i)``, ``a_i =
  act_i(pre_i)``; an internal node computes ``pre = combine(a_left, a_right)``,
  ``a = act(pre)``.
* Cell inject: right after node ``inject_node`` computes ``a`` it is replaced by
  ``inject_activation(inject_combination(a, c_{t-1}))``; later nodes see the new value.
* Cell index: ``c_t = pre_{cell_index}`` (before activation and injection).
* ``h_t = a_root``; the state is ``[c_t, h_t]``.

With :func:`nas_tf.specs.nascell_spec` this is exactly TensorFlow's ``NASCell``;
:class:`NASCell` adds that cell's optional output projection.
"""

from __future__ import annotations

import numbers
import os
import pathlib
from typing import Any, Union

from absl import logging
import keras
from keras import initializers
from keras import ops as kops
import numpy as np

from nas_tf import ops
from nas_tf import specs
# Registers TreeRNN, the layer LM children wrap these cells in: a saved model that holds
# one loads wherever the cells can.
from nas_tf import tree_rnn  # pylint: disable=unused-import

SpecLike = Union[specs.RNNCellSpec, dict, str]

# The file name a search run writes next to a trained child; load_cell() looks for it
# when handed a directory.
SPEC_FILENAME = "spec.json"


def _check_positive_int(name: str, value: Any, allow_none: bool = False) -> Any:
  """Returns ``value`` as an int, or raises ValueError showing the bad value."""
  if value is None and allow_none:
    return None
  if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
      or int(value) <= 0):
    what = "a positive int or None" if allow_none else "a positive int"
    raise ValueError(f"`{name}` must be {what}, got {value!r}")
  return int(value)


def _check_bool(name: str, value: Any) -> bool:
  # numpy bools come back from some config round trips; accept them but reject 0/1 and
  # strings, which usually mean an argument landed in the wrong position.
  if not isinstance(value, (bool, np.bool_)):
    raise ValueError(f"`{name}` must be a bool, got {value!r}")
  return bool(value)


def coerce_spec(spec: SpecLike) -> specs.RNNCellSpec:
  """Returns ``spec`` as an :class:`RNNCellSpec` (from a spec, its dict or its JSON).

  Raises:
    specs.SpecError: the value is not a valid RNN cell spec (e.g. a CNN spec).
    TypeError: the value has an unsupported type.
  """
  if isinstance(spec, specs.RNNCellSpec):
    return spec
  if isinstance(spec, dict):
    parsed = specs.from_dict(spec)
  elif isinstance(spec, str):
    parsed = specs.from_json(spec)
  elif isinstance(spec, specs.CNNSpec):
    parsed = spec
  else:
    raise TypeError("`spec` must be an RNNCellSpec, its dict or its JSON string, got "
                    f"{type(spec).__name__}: {spec!r}")
  if not isinstance(parsed, specs.RNNCellSpec):
    raise specs.SpecError(f"a recurrent cell needs an RNN cell spec (kind 'rnn'), got a "
                          f"{parsed.kind!r} spec: {parsed.describe()}")
  return parsed


class _TreePlan:
  """The evaluation order of a tree cell, resolved once per cell (paper §3.4).

  Everything that depends only on the spec (which function each node applies, which
  nodes it reads, where inject and cell index sit) is looked up here, so a step does no
  string lookups or index arithmetic; in eager mode that is the per-step Python cost,
  in graph mode it keeps tracing cheap.
  """

  def __init__(self, spec: specs.RNNCellSpec):
    base = spec.base
    self.base = base
    # Leaves sharing a combination are computed together on the full-width projections
    # and split once, rather than combining B small chunks one by one: fewer ops per step.
    self.leaf_combinations = tuple(sorted({n.combination for n in spec.nodes[:base]}))
    self.leaf_combination_fns = tuple(ops.COMBINATION_FNS[c]
                                      for c in self.leaf_combinations)
    self.leaves = tuple((self.leaf_combinations.index(n.combination),
                         self._activation(n.activation)) for n in spec.nodes[:base])
    self.internal = tuple((ops.COMBINATION_FNS[n.combination],
                           self._activation(n.activation),
                           *spec.children_of(node))
                          for node, n in enumerate(spec.nodes) if node >= base)
    self.inject_node = spec.inject_node
    self.inject_combination = ops.COMBINATION_FNS[spec.inject_combination]
    self.inject_activation = self._activation(spec.inject_activation)
    self.cell_index = spec.cell_index

  @staticmethod
  def _activation(name: str):
    # None marks identity so the step skips a no-op call.
    return None if name == "identity" else ops.ACTIVATION_FNS[name]

  def __call__(self, xw, hw, c_prev):
    """Runs the tree on the projections; returns ``(c_t, a_root)``."""
    chunks = [kops.split(fn(xw, hw), self.base, axis=-1)
              for fn in self.leaf_combination_fns]
    values = []
    c = None
    for node, (which, act) in enumerate(self.leaves):
      pre = chunks[which][node]
      values.append(self._finish(node, pre, act, c_prev))
      if node == self.cell_index:
        c = pre
    for node, (combine, act, left, right) in enumerate(self.internal, start=self.base):
      pre = combine(values[left], values[right])
      values.append(self._finish(node, pre, act, c_prev))
      if node == self.cell_index:
        c = pre
    return c, values[-1]

  def _finish(self, node, pre, act, c_prev):
    a = pre if act is None else act(pre)
    if node == self.inject_node:
      a = self.inject_combination(a, c_prev)
      if self.inject_activation is not None:
        a = self.inject_activation(a)
    return a


class _TreeCellBase(keras.layers.Layer):
  """Shared weights and step of :class:`TreeCell` and :class:`NASCell`.

  Subclasses set ``self.spec``, ``self.units``, ``self.use_bias``, the initializers and
  ``self._recurrent_dim`` (the width of the recurrent input, ``h_{t-1}``) before build.
  """

  def _init_common(self, spec, units, use_bias, kernel_initializer,
                   recurrent_initializer, bias_initializer):
    self.spec = coerce_spec(spec)
    self.units = _check_positive_int("units", units)
    self.use_bias = _check_bool("use_bias", use_bias)
    self.kernel_initializer = initializers.get(kernel_initializer)
    self.recurrent_initializer = initializers.get(recurrent_initializer)
    self.bias_initializer = initializers.get(bias_initializer)
    self._plan = _TreePlan(self.spec)

  def build(self, input_shape):
    input_dim = input_shape[-1]
    if input_dim is None:
      raise ValueError(f"{type(self).__name__} needs a known input feature size, got "
                       f"input shape {input_shape!r}")
    width = self.spec.base * self.units
    self.kernel = self.add_weight(shape=(input_dim, width), name="kernel",
                                  initializer=self.kernel_initializer)
    self.recurrent_kernel = self.add_weight(shape=(self._recurrent_dim, width),
                                            name="recurrent_kernel",
                                            initializer=self.recurrent_initializer)
    if self.use_bias:
      self.bias = self.add_weight(shape=(width,), name="bias",
                                  initializer=self.bias_initializer)
    else:
      self.bias = None
    self._build_extra()
    self.built = True

  def _build_extra(self):
    """Hook for weights beyond the three projections."""

  def project_inputs(self, inputs):
    """``x @ kernel`` for all ``B`` leaves at once; ``inputs`` may be ``[..., time, in]``.

    :class:`nas_tf.tree_rnn.TreeRNN` calls it once on the whole sequence (one large
    matmul) and then :meth:`call_projected` at each step; ``call`` does both per step.
    """
    return kops.matmul(inputs, self.kernel)

  def _tree_step(self, xw, c_prev, h_prev):
    # One matmul for the recurrent state per step (all B leaves at once); the bias joins
    # the recurrent side, as in TensorFlow's NASCell.
    hw = kops.matmul(h_prev, self.recurrent_kernel)
    if self.bias is not None:
      hw = kops.add(hw, self.bias)
    return self._plan(xw, hw, c_prev)

  def call(self, inputs, states, training=False):
    del training  # No dropout: the cell behaves the same in training and inference.
    return self.call_projected(self.project_inputs(inputs), states)

  def call_projected(self, xw, states):
    """One step from the projected input ``xw = project_inputs(x_t)``; like ``call``."""
    raise NotImplementedError

  def get_initial_state(self, batch_size=None):
    return [kops.zeros((batch_size, d), dtype=self.compute_dtype)
            for d in self.state_size]

  def _common_config(self) -> dict:
    return {"units": self.units,
            "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer)}


@keras.saving.register_keras_serializable(package="nas_tf")
class TreeCell(_TreeCellBase):
  """A recurrent cell built from an :class:`RNNCellSpec` (paper §3.4, Figure 5).

  Follows the Keras 3 RNN-cell contract: wrap it in ``keras.layers.RNN``. The state is
  ``[c, h]`` and the output is ``h``.

  Args:
    spec: An :class:`nas_tf.specs.RNNCellSpec`, its ``to_dict()`` or its ``to_json()``.
    units: Width of ``h`` and ``c``, a positive int.
    use_bias: Whether the recurrent projection has a bias of size ``base * units``.
    kernel_initializer: Initializer of ``kernel`` [input_dim, base * units].
    recurrent_initializer: Initializer of ``recurrent_kernel`` [units, base * units].
    bias_initializer: Initializer of ``bias`` [base * units].
    **kwargs: Passed to ``keras.layers.Layer`` (name, dtype, trainable).

  Raises:
    ValueError: bad ``units`` or ``use_bias`` (``specs.SpecError`` for a bad spec).
  """

  def __init__(self, spec: SpecLike, units: int, use_bias: bool = True,
               kernel_initializer="glorot_uniform",
               recurrent_initializer="glorot_uniform", bias_initializer="zeros",
               **kwargs):
    super().__init__(**kwargs)
    self._init_common(spec, units, use_bias, kernel_initializer, recurrent_initializer,
                      bias_initializer)
    self._recurrent_dim = self.units
    self.state_size = [self.units, self.units]
    self.output_size = self.units

  def call_projected(self, xw, states):
    c_prev, h_prev = states[0], states[1]
    c, h = self._tree_step(xw, c_prev, h_prev)
    return h, [c, h]

  def get_config(self) -> dict:
    config = super().get_config()
    config.update(spec=self.spec.to_dict(), **self._common_config())
    return config


@keras.saving.register_keras_serializable(package="nas_tf")
class NASCell(_TreeCellBase):
  """The cell found on Penn Treebank (paper §4.2, Figure 8), as shipped in TensorFlow.

  Same equations and weight layout as ``tfa.rnn.NASCell`` / ``tf.contrib.rnn.NASCell``:
  the tree of :func:`nas_tf.specs.nascell_spec` plus an optional projection of the new
  output ``m``. The state is ``[c, m]`` with sizes ``[units, projection or units]``.

  Args:
    units: Width of ``c`` (and of ``m`` without projection), a positive int.
    projection: If set, ``m`` is projected to this width by ``projection_weights``.
    use_bias: Whether the recurrent projection has a bias (TensorFlow's default: no).
    kernel_initializer: Initializer of ``kernel`` [input_dim, 8 * units].
    recurrent_initializer: Initializer of ``recurrent_kernel``
      [projection or units, 8 * units].
    projection_initializer: Initializer of ``projection_weights`` [units, projection].
    bias_initializer: Initializer of ``bias`` [8 * units].
    **kwargs: Passed to ``keras.layers.Layer`` (name, dtype, trainable).

  Raises:
    ValueError: bad ``units``, ``projection`` or ``use_bias``.
  """

  def __init__(self, units: int, projection: int | None = None, use_bias: bool = False,
               kernel_initializer="glorot_uniform",
               recurrent_initializer="glorot_uniform",
               projection_initializer="glorot_uniform", bias_initializer="zeros",
               **kwargs):
    super().__init__(**kwargs)
    self._init_common(specs.nascell_spec(), units, use_bias, kernel_initializer,
                      recurrent_initializer, bias_initializer)
    self.projection = _check_positive_int("projection", projection, allow_none=True)
    self.projection_initializer = initializers.get(projection_initializer)
    output_size = self.projection or self.units
    self._recurrent_dim = output_size
    self.state_size = [self.units, output_size]
    self.output_size = output_size

  def _build_extra(self):
    if self.projection is not None:
      self.projection_weights = self.add_weight(
          shape=(self.units, self.projection), name="projection_weights",
          initializer=self.projection_initializer)
    else:
      self.projection_weights = None

  def call_projected(self, xw, states):
    c_prev, m_prev = states[0], states[1]
    c, m = self._tree_step(xw, c_prev, m_prev)
    if self.projection_weights is not None:
      m = kops.matmul(m, self.projection_weights)
    return m, [c, m]

  def get_config(self) -> dict:
    config = super().get_config()
    config.update(projection=self.projection,
                  projection_initializer=initializers.serialize(
                      self.projection_initializer),
                  **self._common_config())
    return config


def load_cell(path_or_spec: Union[SpecLike, os.PathLike], units: int,
              **kwargs) -> TreeCell:
  """A fresh, trainable :class:`TreeCell` for a found architecture (paper §4.2).

  Used to reuse a searched cell in another model, as the paper does when it transfers
  the PTB cell to character modelling and machine translation.

  Args:
    path_or_spec: An :class:`RNNCellSpec`, its dict, its JSON string, a path to a spec
      JSON file, or a directory holding ``spec.json``.
    units: Width of the cell's ``h`` and ``c``.
    **kwargs: Further :class:`TreeCell` arguments (use_bias, initializers, name, ...).

  Raises:
    FileNotFoundError: the path (or the directory's ``spec.json``) does not exist.
    specs.SpecError: the spec is malformed or is not an RNN cell spec.
  """
  source = path_or_spec
  if isinstance(source, os.PathLike) or (
      isinstance(source, str) and not source.lstrip().startswith("{")):
    path = pathlib.Path(source)
    if path.is_dir():
      path = path / SPEC_FILENAME
    if not path.is_file():
      raise FileNotFoundError(f"no cell spec file at {str(path)!r} (expected a spec JSON "
                              f"file or a directory holding {SPEC_FILENAME!r})")
    source = path.read_text()
    try:
      spec = coerce_spec(source)
    except specs.SpecError as e:
      raise specs.SpecError(f"{path}: {e}") from e
    logging.info("Loaded cell spec from %s: %s", path, spec.describe())
  else:
    spec = coerce_spec(source)
  return TreeCell(spec, units, **kwargs)


__all__ = ["TreeCell", "NASCell", "load_cell", "coerce_spec", "SPEC_FILENAME"]
