"""The controller RNN that writes architectures token by token (paper §3.1-3.3).

A 2-layer LSTM (35 units, parameters uniform in [-0.08, 0.08], paper §4.1) walks the
token schema of a search space. At each categorical slot it emits a softmax over that
slot's choices (one softmax and one input embedding per token type); the sampled token's
embedding is the next input. At an anchor slot of layer ``i`` (§3.3) it takes one step to
get the anchor state ``h_i`` and samples, for every earlier layer ``j``, a Bernoulli with

    P(j feeds i) = sigmoid(v^T tanh(W_prev h_j + W_curr h_i)).

The next input after an anchor is the mean of the selected anchors' states (zero if none).

The controller does not know what tokens mean: it asks ``space.schema()`` for the slots
and ``space.decode`` / ``space.encode`` for specs. Sampling returns values; it never stores
the last sample on the object (the REINFORCE update recomputes log-probabilities by
teacher forcing inside its own gradient tape).
"""

from __future__ import annotations

from typing import Sequence

import keras
from keras.src import backend as keras_backend
import numpy as np
import tensorflow as tf

from nas_tf import search_space as search_space_lib


# Teacher forcing runs as one time loop (Controller._teacher_force) from this many slots.
_ONE_LOOP_MIN_SLOTS = 17


def _binary_entropy_from_logits(logits):
  p = tf.sigmoid(logits)
  return -(p * tf.math.log_sigmoid(logits) + (1.0 - p) * tf.math.log_sigmoid(-logits))


@keras.saving.register_keras_serializable(package="nas_tf")
class Controller(keras.layers.Layer):
  """Samples architectures from a search space and scores them (paper §3.1-3.3).

  Args:
    space: A ``CNNSearchSpace`` or ``RNNCellSearchSpace`` (or its ``to_dict()``).
    units: LSTM hidden size (paper: 35).
    num_lstm_layers: Stacked LSTM layers (paper: 2).
    init_range: Every parameter starts uniform in ``[-init_range, init_range]`` (paper: 0.08).
    temperature: Logits are divided by this (1.0 = plain softmax).
    tanh_constant: If set, logits become ``tanh_constant * tanh(logits)``, which keeps
      the policy from collapsing early (a later refinement, off by default).
    seed: Seeds the initial weights (None: Keras' global seeding decides).
  """

  def __init__(self, space, units: int = 35, num_lstm_layers: int = 2,
               init_range: float = 0.08, temperature: float = 1.0,
               tanh_constant: float | None = None, seed: int | None = None, **kwargs):
    super().__init__(**kwargs)
    if isinstance(space, dict):
      space = search_space_lib.space_from_dict(space)
    if not isinstance(space, tuple(search_space_lib.SPACE_KINDS.values())):
      raise TypeError("space must be one of "
                      f"{[c.__name__ for c in search_space_lib.SPACE_KINDS.values()]}, "
                      f"got {space!r}")
    for name, value in (("units", units), ("num_lstm_layers", num_lstm_layers)):
      if not (isinstance(value, int) and value > 0):
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not init_range > 0:
      raise ValueError(f"init_range must be > 0, got {init_range!r}")
    if not temperature > 0:
      raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if tanh_constant is not None and not tanh_constant > 0:
      raise ValueError(f"tanh_constant must be > 0 or None, got {tanh_constant!r}")
    self.space = space
    self.units = units
    self.num_lstm_layers = num_lstm_layers
    self.init_range = init_range
    self.temperature = temperature
    self.tanh_constant = tanh_constant
    self.seed = seed
    # A seed generator (not an int) as the initializer's seed: every weight draws fresh,
    # yet the whole set is reproducible from `seed`.
    init_seed = None if seed is None else keras.random.SeedGenerator(seed)
    self._initializer = initializer = keras.initializers.RandomUniform(
        -init_range, init_range, seed=init_seed)
    # Sub-layers and weights are plain attributes (not list/dict members) because
    # tf.train.Checkpoint only follows attributes of a Keras 3 layer.
    for i in range(num_lstm_layers):
      setattr(self, f"lstm_{i}", keras.layers.LSTMCell(
          units, kernel_initializer=initializer,
          recurrent_initializer=initializer, bias_initializer=initializer,
          unit_forget_bias=False, name=f"lstm_{i}"))
    # Seeds for unseeded sampling come from a Keras seed generator, whose state is a
    # variable of this layer: it is checkpointed with the weights.
    self._seed_generator = keras.random.SeedGenerator(0, name="sampling_seed")
    self.build()

  def _token_types(self) -> dict[str, int]:
    """Token types of the space at any depth (anchor slots appear once depth > 1)."""
    space = self.space
    if isinstance(space, search_space_lib.CNNSearchSpace):
      space = space.with_num_layers(max(2, space.num_layers))
    return space.keys()

  def build(self, input_shape=None):
    """Creates every weight up front (called from __init__: there is no input shape)."""
    for cell in self._lstm_cells:
      cell.build((None, self.units))
    w = lambda name, shape: self.add_weight(name=name, shape=shape,
                                            initializer=self._initializer)
    self.start_input = w("start_input", (1, self.units))
    for key, n in self._token_types().items():
      if key == "anchor":
        continue
      setattr(self, f"embedding_{key}", w(f"embedding_{key}", (n, self.units)))
      setattr(self, f"softmax_w_{key}", w(f"softmax_w_{key}", (self.units, n)))
      setattr(self, f"softmax_b_{key}", w(f"softmax_b_{key}", (n,)))
    if "anchor" in self._token_types():
      self.anchor_w_prev = w("anchor_w_prev", (self.units, self.units))
      self.anchor_w_curr = w("anchor_w_curr", (self.units, self.units))
      self.anchor_v = w("anchor_v", (self.units, 1))
    self.built = True

  # -- core ---------------------------------------------------------------------------

  @property
  def _lstm_cells(self):
    return [getattr(self, f"lstm_{i}") for i in range(self.num_lstm_layers)]

  def _shape_logits(self, logits):
    logits = logits / self.temperature
    if self.tanh_constant is not None:
      logits = self.tanh_constant * tf.tanh(logits)
    return logits

  def _step(self, x, states):
    # keras.layers.LSTMCell's fused step (its default implementation 2) written out on the
    # cells' own weights: the same ops in the same order, so the same numbers, without a
    # Keras layer call per cell and slot. Those calls were over half of the time to trace
    # the 34-slot PTB walk.
    new_states = []
    for cell, (h, c) in zip(self._lstm_cells, states):
      z = tf.matmul(x, cell.kernel)
      z = tf.add(z, tf.matmul(h, cell.recurrent_kernel))
      z = tf.add(z, cell.bias)
      z_i, z_f, z_c, z_o = tf.split(z, 4, axis=1)
      c = tf.sigmoid(z_f) * c + tf.sigmoid(z_i) * tf.tanh(z_c)
      x = tf.sigmoid(z_o) * tf.tanh(c)
      new_states.append([x, c])
    return x, new_states

  # Traced once per (space, m, sampling/teacher-forcing) combination: the schema is a
  # Python structure, so the loop over slots unrolls into one graph.
  @tf.function(autograph=False)
  def _run(self, space, m: int, tokens=None, seed=None):
    """:meth:`_walk` as one traced graph (for eager callers)."""
    return self._walk(space, m, tokens=tokens, seed=seed)

  def _walk(self, space, m: int, tokens=None, seed=None):
    """Walks ``space.schema()``; samples (``tokens`` None) or teacher-forces ``tokens``.

    Returns:
      (tokens int32 [m, T], log_probs float32 [m], entropies float32 [m]); the
      log-prob and entropy are sums over all decisions of each architecture.
    """
    x = tf.tile(self.start_input, [m, 1])
    states = [[tf.zeros([m, self.units]), tf.zeros([m, self.units])]
              for _ in self._lstm_cells]
    log_prob = tf.zeros([m])
    entropy = tf.zeros([m])
    out_tokens = []
    anchors, anchor_proj = [], []  # h_j and W_prev h_j of earlier layers
    active = []  # per categorical slot: [m] bool, whether its decision is taken
    pos = 0
    for step, slot in enumerate(space.schema()):
      previous = (x, states)
      h, states = self._step(x, states)
      step_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, step)
      if isinstance(slot, search_space_lib.AnchorSlot):
        i = slot.layer
        if i > 0:
          prev = tf.stack(anchor_proj, axis=1)                             # [m, i, u]
          curr = tf.matmul(h, self.anchor_w_curr)[:, None, :]              # [m, 1, u]
          logits = tf.squeeze(tf.matmul(tf.tanh(prev + curr), self.anchor_v), -1)
          logits = self._shape_logits(logits)                              # [m, i]
          if tokens is None:
            u = tf.random.stateless_uniform([m, i], seed=step_seed)
            bits = tf.cast(u < tf.sigmoid(logits), tf.int32)
          else:
            bits = tf.cast(tokens[:, pos:pos + i], tf.int32)
          b = tf.cast(bits, tf.float32)
          log_prob += tf.reduce_sum(b * tf.math.log_sigmoid(logits)
                                    + (1.0 - b) * tf.math.log_sigmoid(-logits), axis=1)
          entropy += tf.reduce_sum(_binary_entropy_from_logits(logits), axis=1)
          out_tokens.append(bits)
          # Next input: mean of the chosen anchors' states (ENAS-style; §3.3 leaves it open).
          chosen = tf.einsum("mi,miu->mu", b, tf.stack(anchors, axis=1))
          x = chosen / (1.0 + tf.reduce_sum(b, axis=1, keepdims=True))
        else:
          x = tf.zeros_like(h)
        anchors.append(h)
        anchor_proj.append(tf.matmul(h, self.anchor_w_prev))
        pos += i
      else:
        logits = self._shape_logits(tf.matmul(h, getattr(self, f"softmax_w_{slot.key}"))
                                    + getattr(self, f"softmax_b_{slot.key}"))
        log_p = tf.nn.log_softmax(logits)
        if tokens is None:
          tok = tf.cast(tf.squeeze(tf.random.stateless_categorical(
              logits, 1, seed=step_seed), -1), tf.int32)
        else:
          tok = tf.cast(tokens[:, pos], tf.int32)
        slot_log_p = tf.reduce_sum(tf.one_hot(tok, slot.num_choices) * log_p, axis=1)
        slot_entropy = -tf.reduce_sum(tf.exp(log_p) * log_p, axis=1)
        x = tf.gather(getattr(self, f"embedding_{slot.key}"), tok)
        on = None
        for parent, allowed in getattr(slot, "active_when", ()):
          here = active[parent] & tf.reduce_any(
              tf.equal(out_tokens[parent], tf.constant(allowed, tf.int32)[None, :]), axis=1)
          on = here if on is None else on & here
        if on is not None:
          # A skipped decision (its condition fails): token 0, no log-probability or
          # entropy, and the controller's input and state go on as if it were not there.
          tok = tf.where(on, tok, 0)
          zero = tf.zeros_like(slot_log_p)
          slot_log_p, slot_entropy = tf.where(on, slot_log_p, zero), tf.where(
              on, slot_entropy, zero)
          keep = on[:, None]
          x = tf.where(keep, x, previous[0])
          states = [[tf.where(keep, new, old) for new, old in zip(pair, old_pair)]
                    for pair, old_pair in zip(states, previous[1])]
        log_prob += slot_log_p
        entropy += slot_entropy
        out_tokens.append(tok[:, None])
        active.append(tf.ones([m], tf.bool) if on is None else on)
        pos += 1
    all_tokens = (tf.concat(out_tokens, axis=1) if out_tokens
                  else tf.zeros([m, 0], tf.int32))
    return all_tokens, log_prob, entropy

  def _space_at(self, num_layers: int | None):
    if num_layers is None:
      return self.space
    if not isinstance(self.space, search_space_lib.CNNSearchSpace):
      raise ValueError(f"num_layers={num_layers!r} only applies to a CNN search space")
    # One space object per depth: tf.function keys a Python argument by its id, so a new
    # (equal) space per call would retrace the sampling graph at every step (measured:
    # 3.8 s a step on the CIFAR-10 space instead of milliseconds).
    # (Kept in __dict__, out of Keras' attribute tracking.)
    spaces = self.__dict__.setdefault("_spaces_by_depth", {})
    if num_layers not in spaces:
      spaces[num_layers] = self.space.with_num_layers(num_layers)
    return spaces[num_layers]

  # -- public API -----------------------------------------------------------------------

  def sample_tokens(self, m: int, seed=None, num_layers: int | None = None):
    """Samples ``m`` token sequences; see :meth:`sample`. Returns tensors."""
    if not (isinstance(m, int) and m > 0):
      raise ValueError(f"m must be a positive int, got {m!r}")
    if seed is None:
      seed = keras.random.randint((2,), 0, 2**31 - 1, seed=self._seed_generator)
    elif isinstance(seed, (int, np.integer)):
      seed = (0, int(seed))
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
    return self._run(self._space_at(num_layers), m, seed=seed)

  def sample(self, m: int = 1, seed=None, num_layers: int | None = None):
    """Samples ``m`` architectures (paper §3.1).

    Args:
      m: Number of architectures.
      seed: An int or a pair of ints for reproducible sampling; ``None`` draws a seed from
        the controller's own (checkpointed) seed generator.
      num_layers: CNN depth for this batch (the depth schedule of §4.1); defaults to the
        space's ``num_layers``.

    Returns:
      ``(specs, log_probs, entropies)``: a list of ``m`` specs and two float32 tensors of
      shape ``[m]`` holding each architecture's total log-probability and entropy (the sum
      of the entropies of the distributions it was sampled from).
    """
    tokens, log_probs, entropies = self.sample_tokens(m, seed=seed, num_layers=num_layers)
    space = self._space_at(num_layers)
    specs = [space.decode(t) for t in tokens.numpy().tolist()]
    return specs, log_probs, entropies

  def encode(self, specs: Sequence) -> np.ndarray:
    """Token matrix ``[m, T]`` of specs that share one depth."""
    space = self._space_for(specs)
    return np.asarray([space.encode(s) for s in specs], dtype=np.int32)

  def _space_for(self, specs: Sequence):
    if not specs:
      raise ValueError("specs must not be empty")
    if isinstance(self.space, search_space_lib.CNNSearchSpace):
      depths = {s.num_layers for s in specs}
      if len(depths) != 1:
        raise ValueError(f"specs of one call must share a depth, got depths {sorted(depths)}")
      return self._space_at(depths.pop())
    return self.space

  def log_prob(self, specs: Sequence):
    """Log-probabilities and entropies of given specs by teacher forcing.

    Differentiable with respect to the controller's weights: REINFORCE calls this inside
    its gradient tape (§3.2).

    Returns:
      ``(log_probs, entropies)``, float32 tensors of shape ``[len(specs)]``.
    """
    tokens = self.encode(specs)
    return self.log_prob_tokens(tokens, num_layers=(
        specs[0].num_layers if isinstance(self.space, search_space_lib.CNNSearchSpace)
        else None))

  def log_prob_tokens(self, tokens, num_layers: int | None = None):
    """Like :meth:`log_prob` for a token matrix ``[m, T]``."""
    tokens = tf.convert_to_tensor(tokens, tf.int32)
    space = self._space_at(num_layers)
    if tokens.shape[-1] != space.num_tokens:
      raise ValueError(f"expected {space.num_tokens} tokens per architecture, got "
                       f"shape {tokens.shape}")
    schema = space.schema()
    # Measured on one CPU thread: the one loop traces and first-runs in 3 s instead of
    # 21 s for the PTB space (34 slots), but a steady update costs 19 ms instead of 9.5;
    # on NAS-Bench-201's 6 slots it saves 0.9 s once and costs 2.8 ms per update, a loss
    # over a 1,000-query tabular search. Long schemas only, then.
    one_loop = len(schema) >= _ONE_LOOP_MIN_SLOTS and all(
        isinstance(s, search_space_lib.CategoricalSlot) and not s.active_when
        for s in schema)
    # Called inside a tf.function (REINFORCE's update graph), the walk is traced in line:
    # the gradient of a nested function first rewrites it to output its intermediates,
    # which made the update graph ~25% slower to build and first-run.
    inline = tf.inside_function()
    if one_loop:
      return (self._teacher_force_walk if inline else self._teacher_force)(space, tokens)
    # A batch of unknown size (a graph traced for any number of rows) passes m as a tensor.
    m = tokens.shape[0] if tokens.shape[0] is not None else tf.shape(tokens)[0]
    _, log_probs, entropies = (self._walk if inline else self._run)(space, m, tokens=tokens)
    return log_probs, entropies

  @tf.function(autograph=False)
  def _teacher_force(self, space, tokens):
    """:meth:`_teacher_force_walk` as one traced graph (for eager callers)."""
    return self._teacher_force_walk(space, tokens)

  def _teacher_force_walk(self, space, tokens):
    """``_walk(space, m, tokens)`` for a space of categorical slots only, as one loop.

    With the tokens given, every LSTM input is known in advance (the start input, then
    the embedding of the previous token), so the LSTM runs as one symbolic time loop and
    each token type's softmax is one matmul over all its positions. The unrolled walk of
    ``_run`` builds a graph (and a gradient graph) that grows with the number of slots:
    ~11,000 ops for the PTB cell space, 10-15 s to trace and as long again for
    TensorFlow's first run (docs/RESULTS.md §3); this one is the same maths at a fixed size.
    """
    schema = space.schema()
    keys = sorted({slot.key for slot in schema})
    positions = {k: [t for t, slot in enumerate(schema) if slot.key == k] for k in keys}
    m = tf.shape(tokens)[0]
    # Inputs [m, T, units]: start, then each token's embedding, gathered once per type
    # and put back in schema order by one gather.
    pieces = [tf.tile(self.start_input[:, None, :], [m, 1, 1])]
    order = {}
    for k in keys:
      for t in positions[k]:
        order[t] = 1 + len(order)
      pieces.append(tf.gather(getattr(self, f"embedding_{k}"),
                              tf.gather(tokens, positions[k], axis=1)))
    inputs = tf.gather(tf.concat(pieces, axis=1),
                       [0] + [order[t] for t in range(len(schema) - 1)], axis=1)

    def step(x, flat_states):
      states = [flat_states[2 * i:2 * i + 2] for i in range(self.num_lstm_layers)]
      h, states = self._step(x, states)
      return h, [s for pair in states for s in pair]

    zeros = tf.zeros([m, self.units])
    _, outputs, _ = keras_backend.rnn(step, inputs, [zeros] * (2 * self.num_lstm_layers),
                                      input_length=len(schema))
    log_prob = tf.zeros([m])
    entropy = tf.zeros([m])
    for k in keys:
      h = tf.gather(outputs, positions[k], axis=1)                   # [m, n_k, units]
      logits = self._shape_logits(tf.einsum("mtu,uc->mtc", h,
                                            getattr(self, f"softmax_w_{k}"))
                                  + getattr(self, f"softmax_b_{k}"))
      log_p = tf.nn.log_softmax(logits)
      chosen = tf.one_hot(tf.gather(tokens, positions[k], axis=1), logits.shape[-1])
      log_prob += tf.reduce_sum(chosen * log_p, axis=[1, 2])
      entropy += -tf.reduce_sum(tf.exp(log_p) * log_p, axis=[1, 2])
    return log_prob, entropy

  def get_config(self):
    config = super().get_config()
    config.update({"space": self.space.to_dict(), "units": self.units,
                   "num_lstm_layers": self.num_lstm_layers, "init_range": self.init_range,
                   "temperature": self.temperature, "tanh_constant": self.tanh_constant,
                   "seed": self.seed})
    return config
