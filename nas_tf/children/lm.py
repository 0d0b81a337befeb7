"""Language-model children of §4.2 (Zoph & Le 2017): :func:`build_language_model`.

A stack of recurrent layers whose cell is an LSTM (the baseline), the published NASCell,
or any searched :class:`nas_tf.specs.RNNCellSpec`, regularised with the dropout scheme of
Zaremba et al. (2014) and optionally sharing the input and output embeddings.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

from absl import logging
import keras
from keras import ops
import numpy as np

from nas_tf import specs
from nas_tf.children.common import ChildTooLargeError


CellLike = Union[specs.RNNCellSpec, str, Callable[[int], Any]]


# Cells the builders know by name, trained exactly like a searched cell to compare with
# it: the LSTM of Zaremba et al. (2014), the paper's baseline, whose reference code has no
# forget-gate bias (every bias starts at zero, as in the tree cells); Keras' default LSTM,
# whose forget-gate bias starts at 1 (Jozefowicz et al. 2015); the paper's NASCell.
NAMED_CELLS = ("lstm", "lstm_forget_bias", "nascell")


def make_cell(cell: CellLike, units: int, initializer=None):
  """A fresh Keras RNN cell of width ``units`` for one recurrent layer (§4.2).

  Args:
    cell: An :class:`nas_tf.specs.RNNCellSpec` (a searched cell, -> ``cells.TreeCell``),
      ``"lstm"`` (``keras.layers.LSTMCell`` without a forget-gate bias, as in Zaremba et
      al.'s code: the paper's baseline), ``"lstm_forget_bias"`` (Keras' default: forget
      bias 1), ``"nascell"`` (the published cell, ``cells.NASCell``) or a callable
      ``units -> cell``.
    units: Hidden size.
    initializer: Optional initializer of the cell's input and recurrent kernels (e.g.
      Zaremba et al.'s uniform +-0.1); None keeps each cell's own defaults. Ignored for a
      callable ``cell``, which builds its cell as it likes.

  Returns:
    A new, unbuilt cell (every layer of a stack needs its own weights).
  """
  init = ({} if initializer is None else
          {"kernel_initializer": initializer, "recurrent_initializer": initializer})
  if isinstance(cell, specs.RNNCellSpec) or cell == "nascell":
    # Imported here so the CNN children never pull in the recurrent-cell module.
    from nas_tf import cells  # pylint: disable=g-import-not-at-top
    if isinstance(cell, specs.RNNCellSpec):
      return cells.TreeCell(cell, units, **init)
    return cells.NASCell(units, **init)
  if cell in ("lstm", "lstm_forget_bias"):
    return keras.layers.LSTMCell(units, unit_forget_bias=cell == "lstm_forget_bias", **init)
  if isinstance(cell, str):
    raise ValueError(f"unknown cell name {cell!r}; use one of {NAMED_CELLS}, an "
                     "RNNCellSpec or a callable units -> cell")
  if callable(cell):
    return cell(units)
  raise TypeError(f"cell must be an RNNCellSpec, a name of {NAMED_CELLS} or a callable, got "
                  f"{type(cell).__name__}")


def _recurrent_layer(cell) -> type:
  """``TreeRNN`` for tree cells (same maths, input projection out of the time loop),
  ``keras.layers.RNN`` for any other cell."""
  from nas_tf import tree_rnn  # pylint: disable=g-import-not-at-top
  return tree_rnn.TreeRNN if tree_rnn.is_tree_cell(cell) else keras.layers.RNN


@keras.saving.register_keras_serializable(package="nas_tf")
class TiedEmbedding(keras.layers.Layer):
  """One embedding matrix used for both the input lookup and the output logits.

  The "shared embeddings" of §4.2 (Inan et al. 2016; Press & Wolf 2016): the model calls
  this single layer twice, ``layer(tokens)`` for the lookup and
  ``layer(hidden, mode="logits")`` for ``hidden @ embeddings^T + output_bias``. Sharing
  a layer (rather than a second layer pointing at the first one's variable) is what
  makes the tie survive ``.keras`` saving: the file stores one variable, used twice.

  Args:
    vocab_size: Number of tokens.
    output_dim: Embedding width; the hidden state fed to the logits mode must match it.
    embeddings_initializer: Initializer of ``embeddings`` [vocab_size, output_dim].
    use_output_bias: Whether the logits get a per-token bias (untied by nature).
    **kwargs: Passed to ``keras.layers.Layer``.
  """

  def __init__(self, vocab_size: int, output_dim: int, embeddings_initializer="uniform",
               use_output_bias: bool = True, **kwargs):
    super().__init__(**kwargs)
    self.vocab_size = vocab_size
    self.output_dim = output_dim
    self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
    self.use_output_bias = use_output_bias
    self.build()

  def build(self, input_shape=None):
    # Weights do not depend on which mode is called first, so they are created eagerly.
    if self.built:
      return
    self.embeddings = self.add_weight(shape=(self.vocab_size, self.output_dim),
                                      initializer=self.embeddings_initializer,
                                      name="embeddings")
    self.output_bias = (self.add_weight(shape=(self.vocab_size,), initializer="zeros",
                                        name="output_bias")
                        if self.use_output_bias else None)
    self.built = True

  def call(self, inputs, mode="embed"):
    if mode == "embed":
      return ops.take(self.embeddings, ops.cast(inputs, "int32"), axis=0)
    if mode != "logits":
      raise ValueError(f"mode must be 'embed' or 'logits', got {mode!r}")
    logits = ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype)))
    return logits if self.output_bias is None else logits + self.output_bias

  def get_config(self):
    config = super().get_config()
    config.update(vocab_size=self.vocab_size, output_dim=self.output_dim,
                  embeddings_initializer=keras.initializers.serialize(
                      self.embeddings_initializer),
                  use_output_bias=self.use_output_bias)
    return config


@keras.saving.register_keras_serializable(package="nas_tf")
class Perplexity(keras.metrics.Metric):
  """Perplexity from logits: ``exp`` of the (weighted) mean token cross-entropy (§4.2).

  The mean is over all tokens seen since the last reset, not a mean of per-batch
  perplexities, so it equals the corpus-level perplexity the paper reports.
  """

  def __init__(self, name="perplexity", **kwargs):
    super().__init__(name=name, **kwargs)
    self.total = self.add_variable(shape=(), initializer="zeros", name="total")
    self.count = self.add_variable(shape=(), initializer="zeros", name="count")

  def update_state(self, y_true, y_pred, sample_weight=None):
    xent = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    xent = ops.cast(xent, "float32")
    weight = (ops.ones_like(xent) if sample_weight is None
              else ops.broadcast_to(ops.cast(sample_weight, "float32"), ops.shape(xent)))
    self.total.assign_add(ops.sum(xent * weight))
    self.count.assign_add(ops.sum(weight))

  def result(self):
    return ops.exp(ops.divide_no_nan(self.total, self.count))

  def reset_state(self):
    self.total.assign(0.0)
    self.count.assign(0.0)


def _dropout(x, rate, name):
  # No layer at all for rate 0: keeps the graph (and a model summary) free of no-ops.
  return keras.layers.Dropout(rate, name=name)(x) if rate > 0 else x


def build_language_model(cell: CellLike, vocab_size: int, units: int, num_layers: int = 2,
                         embedding_dim: Optional[int] = None, input_dropout: float = 0.0,
                         hidden_dropout: float = 0.0, output_dropout: float = 0.0,
                         tie_embeddings: bool = False, max_params: Optional[int] = None,
                         name: str = "lm_child", init_scale: Optional[float] = None,
                         return_state: bool = False,
                         recurrent_layer: Optional[type] = None,
                         unroll: bool = False) -> keras.Model:
  """Builds a word- or character-level language model around ``cell`` (paper §4.2).

  tokens ``[batch, time]`` -> embedding -> dropout -> ``num_layers`` x
  ``RNN(cell, return_sequences=True)`` with dropout between layers -> dropout -> logits
  ``[batch, time, vocab_size]``. Dropout is applied to the non-recurrent connections
  only, as in Zaremba et al. (2014), which the paper's PTB setup follows.

  Layer names: ``embedding`` (``tied_embedding`` when tied), ``input_dropout``,
  ``rnn_{i}``, ``hidden_dropout_{i}``, ``output_dropout``, ``tie_projection`` and
  ``logits`` (absent when tied: the tied layer produces them).

  Args:
    cell: See :func:`make_cell`.
    vocab_size: Number of tokens.
    units: Hidden size of every recurrent layer.
    num_layers: Number of stacked recurrent layers.
    embedding_dim: Embedding width; defaults to ``units``.
    input_dropout: Dropout rate on the embeddings.
    hidden_dropout: Dropout rate between recurrent layers.
    output_dropout: Dropout rate on the last layer's outputs.
    tie_embeddings: Share the embedding matrix with the output layer. If the last
      layer's output width differs from ``embedding_dim`` a bias-free Dense
      ``tie_projection`` maps it to ``embedding_dim`` first.
    max_params: Optional cap on ``model.count_params()``; checked after the (cheap)
      symbolic build, before any training.
    name: Model name.
    init_scale: If set, every weight matrix (embeddings, cell kernels, output layer) is
      drawn from ``U(-init_scale, init_scale)``, Zaremba et al.'s (2014) initialisation
      (0.1 for their small PTB model); None keeps the Keras defaults.
    return_state: If True the model takes ``[tokens, *initial_states]`` and returns
      ``[logits, *final_states]`` (the states of every layer in order, each layer's in
      its cell's ``state_size`` order), so a trainer can carry the state across
      truncated-BPTT windows. Layer names and weights are the same as without it, so
      weights move between the two variants with ``set_weights``.
    recurrent_layer: The ``keras.layers.RNN`` subclass that runs each layer's cell. None
      picks :class:`nas_tf.tree_rnn.TreeRNN` for tree cells (the same maths with the input
      projection out of the time loop) and ``keras.layers.RNN`` for any other cell; pass
      ``keras.layers.RNN`` to compare the two.
    unroll: Write the time loop out in the graph (Keras' ``RNN(unroll=True)``): the same
      maths and a 2-5x longer first step (trace); at 2x200 on one CPU thread a median
      1.05x the words/s of the loop (0.95-1.37x over 10 tree cells; docs/RESULTS.md §3,
      ``benchmarks/cell_speed.py --layers=unrolled``). Needs a fixed sequence length
      per call.

  Returns:
    A functional ``keras.Model`` returning logits (train with ``from_logits=True``).

  Raises:
    ChildTooLargeError: the model has more than ``max_params`` parameters.
  """
  if num_layers < 1:
    raise ValueError(f"num_layers must be >= 1, got {num_layers!r}")
  if recurrent_layer is not None and not (isinstance(recurrent_layer, type) and issubclass(
      recurrent_layer, keras.layers.RNN)):
    raise TypeError("recurrent_layer must be keras.layers.RNN or a subclass of it, got "
                    f"{recurrent_layer!r}")
  embedding_dim = embedding_dim or units

  def init(default):
    # A fresh initializer per weight: one shared instance would be one random stream.
    if init_scale is None:
      return default
    return keras.initializers.RandomUniform(-init_scale, init_scale)

  tokens = keras.Input(shape=(None,), dtype="int32", name="tokens")
  if tie_embeddings:
    embed = TiedEmbedding(vocab_size, embedding_dim, name="tied_embedding",
                          embeddings_initializer=init("uniform"))
  else:
    embed = keras.layers.Embedding(vocab_size, embedding_dim, name="embedding",
                                   embeddings_initializer=init("uniform"))
  x = _dropout(embed(tokens), input_dropout, "input_dropout")
  state_inputs, state_outputs = [], []
  for i in range(num_layers):
    if i > 0:
      x = _dropout(x, hidden_dropout, f"hidden_dropout_{i}")
    layer_cell = make_cell(cell, units, init(None))
    rnn_class = recurrent_layer or _recurrent_layer(layer_cell)
    rnn = rnn_class(layer_cell, return_sequences=True, return_state=return_state,
                    unroll=unroll, name=f"rnn_{i}")
    if return_state:
      sizes = layer_cell.state_size
      sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
      initial = [keras.Input(shape=(int(d),), name=f"state_{i}_{j}")
                 for j, d in enumerate(sizes)]
      x, *final = rnn(x, initial_state=initial)
      state_inputs += initial
      state_outputs += final
    else:
      x = rnn(x)
  x = _dropout(x, output_dropout, "output_dropout")
  if tie_embeddings:
    if x.shape[-1] != embedding_dim:
      x = keras.layers.Dense(embedding_dim, use_bias=False, name="tie_projection",
                             kernel_initializer=init("glorot_uniform"))(x)
    logits = embed(x, mode="logits")
  else:
    logits = keras.layers.Dense(vocab_size, name="logits",
                                kernel_initializer=init("glorot_uniform"))(x)
  if return_state:
    model = keras.Model([tokens, *state_inputs], [logits, *state_outputs], name=name)
  else:
    model = keras.Model(tokens, logits, name=name)
  if max_params is not None and model.count_params() > max_params:
    raise ChildTooLargeError(
        f"child too large: {model.count_params():,} parameters > max_params="
        f"{max_params:,} (units={units}, num_layers={num_layers}, vocab={vocab_size})")
  return model


def count_params_lm(cell: CellLike, vocab_size: int, units: int, **kwargs) -> int:
  """Parameter count of :func:`build_language_model` with these arguments."""
  kwargs.pop("max_params", None)
  return build_language_model(cell, vocab_size, units, **kwargs).count_params()


def units_for_param_budget(cell: CellLike, vocab_size: int, target_params: int,
                           max_units: int = 8192, **kwargs) -> int:
  """The hidden size whose language model has the parameter count closest to a target.

  Used to compare cells at equal parameter count (§4.2 compares the found cell with an
  LSTM of the same size). The count of these models is a quadratic in ``units`` (cell
  weights ~ units^2, embeddings and logits ~ units), so three probes give a close
  guess; exact counts around the guess then settle it, assuming only that the count
  grows with ``units``.

  Args:
    cell: See :func:`make_cell`.
    vocab_size: Number of tokens.
    target_params: Desired ``count_params()``.
    max_units: Largest hidden size considered.
    **kwargs: Other :func:`build_language_model` arguments (num_layers, tie_embeddings,
      embedding_dim, ...).

  Returns:
    ``units`` in ``[1, max_units]`` minimising ``|count - target_params|`` (the smaller
    one on a tie).
  """
  cache: dict[int, int] = {}

  def count(u):
    if u not in cache:
      cache[u] = count_params_lm(cell, vocab_size, u, **kwargs)
    return cache[u]

  probes = [p for p in (4, 8, 16) if p <= max_units] or [1]
  if len(probes) == 3:
    a, b, c = (float(v) for v in np.polyfit(
        probes, [count(p) for p in probes], 2))
    roots = np.roots([a, b, c - target_params])
    real = [r.real for r in roots if abs(r.imag) < 1e-9 and r.real > 0]
    guess = int(round(max(real))) if real else 1
  else:
    guess = probes[0]
  u = min(max(guess, 1), max_units)
  # Walk to the bracket count(u) <= target < count(u + 1).
  while u > 1 and count(u) > target_params:
    u -= 1
  while u < max_units and count(u + 1) <= target_params:
    u += 1
  best = min((v for v in (u, u + 1) if v <= max_units),
             key=lambda v: (abs(count(v) - target_params), v))
  logging.info("units_for_param_budget: units=%d gives %d params (target %d, %d builds)",
               best, count(best), target_params, len(cache))
  return best
