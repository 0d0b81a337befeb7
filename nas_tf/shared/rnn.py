"""One shared set of weights for every cell of an RNN search space (Pham et al. 2018, §2.1).

ENAS (Pham et al. 2018, §2.1-2.2) scores the cells a controller samples by running them
as sub-graphs of one over-parameterised graph whose weights are trained for all of them
at once, instead of training each child from scratch as Zoph & Le (2017, §3.2, §4.2) do.

In our tree cells (:mod:`nas_tf.cells`, Zoph & Le §3.4) only the leaves have parameters:
leaf ``i`` combines chunk ``i`` of ``x_t @ kernel`` with chunk ``i`` of
``h_{t-1} @ recurrent_kernel + bias``, whatever combination and activation it uses; the
internal nodes, cell inject and cell index are parameter free. So sharing is exact and
natural: :class:`SharedTreeCell` holds the three weights of a :class:`cells.TreeCell`
with the same layout, and a sampled spec is a sub-graph of it.

The architecture enters as an integer tensor -- the spec's token sequence in the order
of :class:`nas_tf.search_space.RNNCellSearchSpace` (``[comb, act] * num_nodes,
inject_node, inject_combination, inject_activation, cell_index``). Every op of the space
is computed for every node and the chosen one is selected with a mask, level by level
of the tree, so one traced function serves all ``|space|`` cells: tracing once per
sampled spec would cost more than the training step itself (ENAS's point is speed).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras import initializers
import numpy as np
import tensorflow as tf

from nas_tf import cells
from nas_tf import ops
from nas_tf import search_space as search_space_lib
from nas_tf import specs as specs_lib


def _select(stacked, index):
  """``stacked[index[n], :, n, :]`` for every node ``n``: the chosen op's output.

  ``tf.where`` rather than a one-hot product so that an inf in an op that was not chosen
  (``elem_mult`` of two large values) cannot turn the result into NaN (0 * inf).

  Args:
    stacked: ``[K, batch, n, units]``, the output of each of the K ops at n nodes.
    index: int ``[n]`` (one op per node) or a scalar (one op for all nodes).
  """
  k = tf.shape(stacked)[0]
  mask = tf.equal(tf.range(k)[:, None], tf.reshape(index, [1, -1]))   # [K, n] or [K, 1]
  mask = mask[:, None, :, None]
  return tf.reduce_sum(tf.where(mask, stacked, tf.zeros_like(stacked)), axis=0)


@keras.saving.register_keras_serializable(package="nas_tf")
class SharedTreeCell(keras.layers.Layer):
  """The weights of every tree cell of a search space, run as any sampled cell.

  ``kernel`` [input_dim, base * units], ``recurrent_kernel`` [units, base * units] and
  ``bias`` [base * units] have exactly the layout of :class:`cells.TreeCell`; copying
  them into ``TreeCell(spec, units)`` gives the standalone child of ``spec`` with the
  same outputs (the sub-graph property of ENAS §2.1).

  Args:
    base: Leaves of the tree (a power of two >= 2), as in the search space.
    units: Width of ``h`` and ``c``.
    combinations: The space's combination names, in token order.
    activations: The space's activation names, in token order.
    use_bias: Whether the recurrent projection has a bias.
    kernel_initializer, recurrent_initializer, bias_initializer: As in ``TreeCell``.
    **kwargs: Passed to ``keras.layers.Layer``.

  Call arguments:
    inputs: ``[batch, time, input_dim]``.
    arch: int ``[num_tokens]``, a spec's tokens in the space's order.
    initial_state: Optional ``[c, h]``, each ``[batch, units]`` (zeros if omitted).

  Returns:
    ``(outputs [batch, time, units], [c_T, h_T])``.
  """

  def __init__(self, base: int, units: int,
               combinations: Sequence[str] = ("add", "elem_mult"),
               activations: Sequence[str] = ("identity", "tanh", "sigmoid", "relu"),
               use_bias: bool = True, kernel_initializer="glorot_uniform",
               recurrent_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
    super().__init__(**kwargs)
    # The search space validates base and the op names and shows the bad value.
    self.space = search_space_lib.RNNCellSearchSpace(
        base=base, combinations=tuple(combinations), activations=tuple(activations))
    if not (isinstance(units, int) and not isinstance(units, bool) and units > 0):
      raise ValueError(f"`units` must be a positive int, got {units!r}")
    if not isinstance(use_bias, (bool, np.bool_)):
      raise ValueError(f"`use_bias` must be a bool, got {use_bias!r}")
    self.base = base
    self.units = units
    self.use_bias = bool(use_bias)
    self.kernel_initializer = initializers.get(kernel_initializer)
    self.recurrent_initializer = initializers.get(recurrent_initializer)
    self.bias_initializer = initializers.get(bias_initializer)
    self._combinations = tuple(ops.COMBINATION_FNS[c] for c in self.space.combinations)
    self._activations = tuple(ops.ACTIVATION_FNS[a] for a in self.space.activations)
    # Where each decision sits in the token vector, asked of the space (the only module
    # that knows token order).
    self._combination_at = list(self.space.positions("combination"))
    self._activation_at = list(self.space.positions("activation"))
    self._inject_at = {key: self.space.positions(key)[0] for key in (
        "inject_node", "inject_combination", "inject_activation", "cell_index")}

  @property
  def num_tokens(self) -> int:
    return self.space.num_tokens

  def encode(self, spec: specs_lib.RNNCellSpec) -> np.ndarray:
    """The ``arch`` tensor of ``spec`` (its tokens in this space)."""
    return np.asarray(self.space.encode(cells.coerce_spec(spec)), dtype=np.int32)

  def build(self, input_shape):
    input_dim = input_shape[-1]
    if input_dim is None:
      raise ValueError(f"SharedTreeCell needs a known input feature size, got input shape "
                       f"{input_shape!r}")
    width = self.base * self.units
    self.kernel = self.add_weight(shape=(input_dim, width), name="kernel",
                                  initializer=self.kernel_initializer)
    self.recurrent_kernel = self.add_weight(shape=(self.units, width),
                                            name="recurrent_kernel",
                                            initializer=self.recurrent_initializer)
    self.bias = (self.add_weight(shape=(width,), name="bias",
                                 initializer=self.bias_initializer)
                 if self.use_bias else None)
    self.built = True

  def _apply_all(self, fns, *args):
    return tf.stack([fn(*args) for fn in fns], axis=0)

  def _finish_level(self, pre, start, arch, c_prev):
    """Activations and cell inject of one tree level; ``pre`` is ``[b, n, u]``."""
    n = pre.shape[1]
    act = tf.gather(arch, self._activation_at[start:start + n])
    a = _select(self._apply_all(self._activations, pre), act)
    # Cell inject (Zoph & Le §3.4) touches one node; compute it on that node only (the
    # clipped index is harmless when the node is in another level: the mask drops it).
    inject_node = arch[self._inject_at["inject_node"]]
    local = tf.clip_by_value(inject_node - start, 0, n - 1)
    chosen = tf.gather(a, local, axis=1)[:, None, :]
    injected = _select(self._apply_all(self._combinations, chosen, c_prev[:, None, :]),
                       arch[self._inject_at["inject_combination"]])
    injected = _select(self._apply_all(self._activations, injected),
                       arch[self._inject_at["inject_activation"]])
    is_inject = tf.equal(tf.range(start, start + n), inject_node)[None, :, None]
    return tf.where(is_inject, injected, a)

  def step(self, xw, c_prev, h_prev, arch):
    """One time step on a precomputed input projection ``xw`` [b, base * units]."""
    base, units = self.base, self.units
    hw = tf.matmul(h_prev, self.recurrent_kernel)
    if self.bias is not None:
      hw = hw + self.bias
    xw = tf.reshape(xw, [-1, base, units])
    hw = tf.reshape(hw, [-1, base, units])
    pre = _select(self._apply_all(self._combinations, xw, hw),
                  tf.gather(arch, self._combination_at[:base]))
    pres = [pre]
    a = self._finish_level(pre, 0, arch, c_prev)
    start = base
    while a.shape[1] > 1:
      n = a.shape[1] // 2
      # Internal node base + k combines nodes 2k and 2k + 1 (level order, leaves first).
      pre = _select(self._apply_all(self._combinations, a[:, 0::2], a[:, 1::2]),
                    tf.gather(arch, self._combination_at[start:start + n]))
      pres.append(pre)
      a = self._finish_level(pre, start, arch, c_prev)
      start += n
    cell_index = arch[self._inject_at["cell_index"]]
    c = tf.gather(tf.concat(pres, axis=1), cell_index, axis=1)
    return c, a[:, 0]

  def call(self, inputs, arch, initial_state=None):
    arch = tf.cast(tf.convert_to_tensor(arch), tf.int32)
    batch = tf.shape(inputs)[0]
    if initial_state is None:
      zeros = tf.zeros([batch, self.units], dtype=self.compute_dtype)
      initial_state = [zeros, zeros]
    # The input projection of all steps in one matmul; only h_{t-1} is per step.
    xw = tf.einsum("btd,dw->tbw", inputs, self.kernel)

    def body(carry, xw_t):
      c, h = self.step(xw_t, carry[0], carry[1], arch)
      return (c, h)

    cs, hs = tf.scan(body, xw, initializer=(initial_state[0], initial_state[1]))
    return tf.transpose(hs, [1, 0, 2]), [cs[-1], hs[-1]]

  def copy_to(self, cell: cells.TreeCell) -> cells.TreeCell:
    """Copies the shared weights into a built standalone ``TreeCell`` of the same size."""
    cell.kernel.assign(self.kernel)
    cell.recurrent_kernel.assign(self.recurrent_kernel)
    if (cell.bias is None) != (self.bias is None):
      raise ValueError(f"use_bias differs: shared {self.use_bias}, cell {cell.use_bias}")
    if cell.bias is not None:
      cell.bias.assign(self.bias)
    return cell

  def get_config(self) -> dict:
    config = super().get_config()
    config.update(base=self.base, units=self.units,
                  combinations=list(self.space.combinations),
                  activations=list(self.space.activations), use_bias=self.use_bias,
                  kernel_initializer=initializers.serialize(self.kernel_initializer),
                  recurrent_initializer=initializers.serialize(self.recurrent_initializer),
                  bias_initializer=initializers.serialize(self.bias_initializer))
    return config


@keras.saving.register_keras_serializable(package="nas_tf")
class SharedLanguageModel(keras.layers.Layer):
  """embedding -> ``num_layers`` shared cells -> logits, wired per batch (ENAS §2.2).

  The same layout as :func:`nas_tf.children.build_language_model` without dropout and
  untied (layers ``embedding``, ``rnn_{i}``, ``logits``), so the child of any spec, with
  these weights copied in (:meth:`copy_to_child`), computes the same logits. Every layer
  runs the same sampled cell, as the independent children stack one cell.

  Args:
    space: The ``RNNCellSearchSpace`` (or its ``to_dict()``).
    vocab_size: Number of tokens.
    units: Embedding and hidden width.
    num_layers: Stacked recurrent layers.
    **kwargs: Passed to ``keras.layers.Layer``.

  Call arguments:
    tokens: int ``[batch, time]``.
    arch: int ``[num_tokens]``.
    states: Optional list of ``[c, h]`` per layer (zeros if omitted).

  Returns:
    ``(logits [batch, time, vocab_size], states)``.
  """

  def __init__(self, space, vocab_size: int, units: int, num_layers: int = 2, **kwargs):
    super().__init__(**kwargs)
    if isinstance(space, dict):
      space = search_space_lib.space_from_dict(space)
    if not isinstance(space, search_space_lib.RNNCellSearchSpace):
      raise TypeError(f"space must be an RNNCellSearchSpace, got {space!r}")
    for name, value in (("vocab_size", vocab_size), ("units", units),
                        ("num_layers", num_layers)):
      if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        raise ValueError(f"`{name}` must be a positive int, got {value!r}")
    self.space = space
    self.vocab_size = vocab_size
    self.units = units
    self.num_layers = num_layers
    self.embedding = keras.layers.Embedding(vocab_size, units, name="embedding")
    # Attributes, not a list: tf.train.Checkpoint follows a Keras 3 layer's attributes.
    for i in range(num_layers):
      setattr(self, f"rnn_{i}", SharedTreeCell(space.base, units, space.combinations,
                                               space.activations, name=f"rnn_{i}"))
    self.logits = keras.layers.Dense(vocab_size, name="logits")

  @property
  def cells(self) -> list[SharedTreeCell]:
    return [getattr(self, f"rnn_{i}") for i in range(self.num_layers)]

  def build(self, input_shape=None):
    self.embedding.build((None, None))
    for cell in self.cells:
      cell.build((None, None, self.units))
    self.logits.build((None, None, self.units))
    self.built = True

  def initial_states(self, batch_size: int):
    zeros = tf.zeros([batch_size, self.units])
    return [[zeros, zeros] for _ in range(self.num_layers)]

  def call(self, tokens, arch, states=None):
    arch = tf.cast(tf.convert_to_tensor(arch), tf.int32)
    x = self.embedding(tokens)
    new_states = []
    for i, cell in enumerate(self.cells):
      x, state = cell(x, arch, initial_state=None if states is None else states[i])
      new_states.append(state)
    return self.logits(x), new_states

  def copy_to_child(self, child: keras.Model) -> keras.Model:
    """Copies the weights into a ``build_language_model(spec, ...)`` child (untied)."""
    child.get_layer("embedding").set_weights(self.embedding.get_weights())
    for i, cell in enumerate(self.cells):
      cell.copy_to(child.get_layer(f"rnn_{i}").cell)
    child.get_layer("logits").set_weights(self.logits.get_weights())
    return child

  def get_config(self) -> dict:
    config = super().get_config()
    config.update(space=self.space.to_dict(), vocab_size=self.vocab_size,
                  units=self.units, num_layers=self.num_layers)
    return config
