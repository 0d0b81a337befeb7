"""Search spaces: the token schema of each space, and spec <-> tokens (paper §3.1-3.4).

This is the ONLY module that knows the order of tokens. A space describes its token
sequence as a tuple of slots (:meth:`schema`); the controller walks that schema without
knowing what the tokens mean, and turns the sampled token sequence into a spec with
:meth:`decode`. Random search samples the same schema uniformly.

Token sequences are flat tuples of ints: a :class:`CategoricalSlot` contributes one
token (an index into its ``choices``); an :class:`AnchorSlot` of layer ``i`` contributes
``i`` binary tokens, one per earlier layer (1 = that layer feeds layer ``i``).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence, Union

import numpy as np

from nas_tf import specs

Tokens = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class CategoricalSlot:
  """One categorical decision; ``key`` is its token type (one softmax per type).

  ``active_when``: ``((slot, allowed tokens), ...)``: the decision is taken only when
  each earlier slot (by index in the schema; categorical, itself active) holds one of
  its allowed tokens; otherwise it is skipped (token 0, no controller step, no
  log-probability). Empty: always taken.
  """

  key: str
  choices: tuple
  active_when: tuple = ()

  @property
  def num_choices(self) -> int:
    return len(self.choices)

  @property
  def width(self) -> int:
    return 1


@dataclasses.dataclass(frozen=True)
class AnchorSlot:
  """Skip-connection decisions of layer ``layer`` by anchor-point attention (§3.3).

  One Bernoulli per earlier layer ``j < layer``.
  """

  layer: int
  key: str = "anchor"

  @property
  def width(self) -> int:
    return self.layer


Slot = Union[CategoricalSlot, AnchorSlot]


def _check_choices(name: str, values: Sequence, allowed=None, positive_int=False) -> tuple:
  values = tuple(values)
  if not values:
    raise ValueError(f"{name} must not be empty, got {values!r}")
  if len(set(values)) != len(values):
    raise ValueError(f"{name} has duplicate values: {values!r}")
  for v in values:
    if positive_int and not (isinstance(v, int) and v > 0):
      raise ValueError(f"{name} must hold positive ints, got {v!r} in {values!r}")
    if allowed is not None and v not in allowed:
      raise ValueError(f"{name} value {v!r} is not a known op; known: {allowed}")
  return values


def _index(slot: CategoricalSlot, value: Any, field: str) -> int:
  try:
    return slot.choices.index(value)
  except ValueError:
    raise specs.SpecError(
        f"{field}={value!r} is not in this search space; allowed: {slot.choices}") from None


class _Space:
  """Shared token plumbing: walk the schema, check widths."""

  def schema(self) -> tuple[Slot, ...]:
    raise NotImplementedError

  @property
  def num_tokens(self) -> int:
    return sum(s.width for s in self.schema())

  def keys(self) -> dict[str, int]:
    """Token types and their number of choices (anchor slots are binary)."""
    out = {}
    for s in self.schema():
      out[s.key] = s.num_choices if isinstance(s, CategoricalSlot) else 2
    return out

  def positions(self, key: str) -> tuple[int, ...]:
    """Token index of the first token of every slot of type ``key``, in schema order.

    How code outside this module finds a decision in a token vector (the shared-weight
    models read the architecture from its tokens); e.g. for the RNN space
    ``positions("activation")[i]`` is node ``i``'s activation token, and for the CNN
    space ``positions("anchor")[i]`` is where layer ``i``'s ``i`` skip bits start.
    """
    out, pos = [], 0
    for slot in self.schema():
      if slot.key == key:
        out.append(pos)
      pos += slot.width
    return tuple(out)

  def _split(self, tokens: Sequence[int]) -> list:
    """Groups a flat token sequence by slot; validates ranges."""
    tokens = [int(t) for t in tokens]
    if len(tokens) != self.num_tokens:
      raise specs.SpecError(
          f"expected {self.num_tokens} tokens for {self!r}, got {len(tokens)}")
    out, pos = [], 0
    for slot in self.schema():
      chunk = tokens[pos:pos + slot.width]
      pos += slot.width
      limit = slot.num_choices if isinstance(slot, CategoricalSlot) else 2
      for t in chunk:
        if not 0 <= t < limit:
          raise specs.SpecError(f"token {t} out of range [0, {limit}) for slot {slot}")
      out.append(chunk[0] if isinstance(slot, CategoricalSlot) else chunk)
    return out

  def sample_tokens(self, rng: np.random.Generator) -> Tokens:
    """Uniform sample over the schema (each choice and each skip bit equally likely);
    a skipped decision (``active_when``) holds token 0."""
    out = []
    for slot in self.schema():
      n = slot.num_choices if isinstance(slot, CategoricalSlot) else 2
      out.extend(int(t) for t in rng.integers(0, n, size=slot.width))
    if self.conditional:
      out = [t if on else 0 for t, on in zip(out, self.active(out))]
    return tuple(out)

  @property
  def conditional(self) -> bool:
    """Whether some decision depends on earlier ones (``active_when``)."""
    return any(getattr(s, "active_when", ()) for s in self.schema())

  def active(self, tokens: Sequence[int]) -> list[bool]:
    """Per categorical slot (one token each): whether the decision is taken."""
    schema = self.schema()
    if any(s.width != 1 for s in schema):
      raise ValueError("active() needs a space of categorical slots")
    on: list[bool] = []
    for slot in schema:
      on.append(all(on[p] and int(tokens[p]) in allowed for p, allowed in slot.active_when))
    return on

  def sample(self, rng: np.random.Generator):
    """A uniformly random spec: the random-search baseline of the paper."""
    return self.decode(self.sample_tokens(rng))

  def log_num_architectures(self) -> float:
    """Natural log of the number of token sequences in the space."""
    total = 0.0
    for slot in self.schema():
      n = slot.num_choices if isinstance(slot, CategoricalSlot) else 2
      total += slot.width * np.log(n)
    return float(total)

  def decode(self, tokens: Sequence[int]):
    raise NotImplementedError

  def encode(self, spec) -> Tokens:
    raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class CNNSearchSpace(_Space):
  """The convolutional search space of §3.1/§3.3 (and the pooling extension of §4.1).

  Per layer the tokens are, in order: [op] filter_height, filter_width, num_filters,
  [stride], then the layer's anchor (skip) decisions. ``op`` is emitted only when more
  than one layer op is allowed; ``stride`` only when ``strides`` has more than one value.

  Attributes:
    num_layers: Depth; the search raises it on a schedule (paper: 6, +2 every 1,600).
    filter_heights, filter_widths, num_filters: Choices, defaults from the paper.
    strides: Stride choices; ``(1,)`` fixes stride 1, ``(1, 2, 3)`` lets it be predicted.
    layer_ops: Allowed layer ops (see :data:`nas_tf.specs.LAYER_OPS`).
    skip_connections: Whether layers pick their inputs by anchor points. Without them
      the network is a plain chain (each layer reads the previous one).
  """

  num_layers: int = 6
  filter_heights: tuple[int, ...] = (1, 3, 5, 7)
  filter_widths: tuple[int, ...] = (1, 3, 5, 7)
  num_filters: tuple[int, ...] = (24, 36, 48, 64)
  strides: tuple[int, ...] = (1,)
  layer_ops: tuple[str, ...] = ("conv",)
  skip_connections: bool = True

  kind = "cnn"

  def __post_init__(self):
    if not (isinstance(self.num_layers, int) and self.num_layers > 0):
      raise ValueError(f"num_layers must be a positive int, got {self.num_layers!r}")
    for name in ("filter_heights", "filter_widths", "num_filters", "strides"):
      object.__setattr__(self, name, _check_choices(name, getattr(self, name), positive_int=True))
    object.__setattr__(self, "layer_ops",
                       _check_choices("layer_ops", self.layer_ops, allowed=specs.LAYER_OPS))

  def with_num_layers(self, num_layers: int) -> "CNNSearchSpace":
    return dataclasses.replace(self, num_layers=num_layers)

  def _layer_slots(self, i: int) -> list[Slot]:
    slots: list[Slot] = []
    if len(self.layer_ops) > 1:
      slots.append(CategoricalSlot("layer_op", self.layer_ops))
    slots += [CategoricalSlot("filter_height", self.filter_heights),
              CategoricalSlot("filter_width", self.filter_widths),
              CategoricalSlot("num_filters", self.num_filters)]
    if len(self.strides) > 1:
      slots.append(CategoricalSlot("stride", self.strides))
    if self.skip_connections:
      # Layer 0 has an anchor too (zero decisions): the controller still takes a step
      # there, and its hidden state is what later layers attend to.
      slots.append(AnchorSlot(i))
    return slots

  def schema(self) -> tuple[Slot, ...]:
    return tuple(s for i in range(self.num_layers) for s in self._layer_slots(i))

  def decode(self, tokens: Sequence[int]) -> specs.CNNSpec:
    groups = iter(self._split(tokens))
    layers = []
    for i in range(self.num_layers):
      fields: dict[str, Any] = {"op": self.layer_ops[0], "stride": self.strides[0]}
      for slot in self._layer_slots(i):
        value = next(groups)
        if isinstance(slot, AnchorSlot):
          fields["inputs"] = tuple(j for j, bit in enumerate(value) if bit)
        else:
          fields[_FIELD_OF_KEY[slot.key]] = slot.choices[value]
      if not self.skip_connections:
        fields["inputs"] = (i - 1,) if i > 0 else ()
      layers.append(specs.ConvLayer(**fields))
    return specs.CNNSpec(tuple(layers))

  def encode(self, spec: specs.CNNSpec) -> Tokens:
    if not isinstance(spec, specs.CNNSpec):
      raise specs.SpecError(f"CNNSearchSpace cannot encode a {type(spec).__name__}")
    if spec.num_layers != self.num_layers:
      raise specs.SpecError(f"spec has {spec.num_layers} layers, the space has "
                            f"num_layers={self.num_layers}")
    out: list[int] = []
    for i, layer in enumerate(spec.layers):
      for field, fixed in (("op", self.layer_ops), ("stride", self.strides)):
        if len(fixed) == 1 and getattr(layer, field) != fixed[0]:
          raise specs.SpecError(f"layers[{i}].{field}={getattr(layer, field)!r} but this "
                                f"space fixes it to {fixed[0]!r}")
      if not self.skip_connections and layer.inputs != ((i - 1,) if i > 0 else ()):
        raise specs.SpecError(f"layers[{i}].inputs={layer.inputs!r} but this space has no "
                              "skip connections (each layer reads the previous one)")
      for slot in self._layer_slots(i):
        if isinstance(slot, AnchorSlot):
          out.extend(1 if j in layer.inputs else 0 for j in range(i))
        else:
          field = _FIELD_OF_KEY[slot.key]
          out.append(_index(slot, getattr(layer, field), f"layers[{i}].{field}"))
    return tuple(out)

  def to_dict(self) -> dict:
    return {"kind": self.kind, **{f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                                  for f in dataclasses.fields(self)}}


_FIELD_OF_KEY = {"layer_op": "op", "filter_height": "filter_height",
                 "filter_width": "filter_width", "num_filters": "num_filters",
                 "stride": "stride"}


@dataclasses.dataclass(frozen=True)
class RNNCellSearchSpace(_Space):
  """The recurrent-cell search space of §3.4 (tree of ``base`` leaves).

  Tokens, in order: for every node in level order (leaves first) its combination then
  its activation; then cell inject (node, combination, activation); then cell index
  (the node whose pre-activation becomes ``c_t``).

  Attributes:
    base: Number of leaves (a power of two >= 2); the paper uses 8.
    combinations: Allowed combination ops (paper: add, elem_mult; §4.2 adds max).
    activations: Allowed activations (paper: identity, tanh, sigmoid, relu; §4.2 adds sin).
  """

  base: int = 8
  combinations: tuple[str, ...] = ("add", "elem_mult")
  activations: tuple[str, ...] = ("identity", "tanh", "sigmoid", "relu")

  kind = "rnn"

  def __post_init__(self):
    b = self.base
    if not (isinstance(b, int) and b >= 2 and b & (b - 1) == 0):
      raise ValueError(f"base must be a power of two >= 2, got {b!r}")
    object.__setattr__(self, "combinations", _check_choices(
        "combinations", self.combinations, allowed=specs.COMBINATIONS))
    object.__setattr__(self, "activations", _check_choices(
        "activations", self.activations, allowed=specs.ACTIVATIONS))

  @property
  def num_nodes(self) -> int:
    return 2 * self.base - 1

  def schema(self) -> tuple[Slot, ...]:
    comb = CategoricalSlot("combination", self.combinations)
    act = CategoricalSlot("activation", self.activations)
    nodes = tuple(range(self.num_nodes))
    return ((comb, act) * self.num_nodes + (
        CategoricalSlot("inject_node", nodes),
        CategoricalSlot("inject_combination", self.combinations),
        CategoricalSlot("inject_activation", self.activations),
        CategoricalSlot("cell_index", nodes)))

  def decode(self, tokens: Sequence[int]) -> specs.RNNCellSpec:
    values = self._split(tokens)
    n = self.num_nodes
    nodes = tuple(specs.TreeNode(self.combinations[values[2 * i]],
                                 self.activations[values[2 * i + 1]]) for i in range(n))
    inject_node, inject_comb, inject_act, cell_index = values[2 * n:]
    return specs.RNNCellSpec(nodes=nodes, inject_node=inject_node,
                             inject_combination=self.combinations[inject_comb],
                             inject_activation=self.activations[inject_act],
                             cell_index=cell_index)

  def encode(self, spec: specs.RNNCellSpec) -> Tokens:
    if not isinstance(spec, specs.RNNCellSpec):
      raise specs.SpecError(f"RNNCellSearchSpace cannot encode a {type(spec).__name__}")
    if spec.base != self.base:
      raise specs.SpecError(f"spec has base {spec.base}, the space has base={self.base}")
    slots = self.schema()
    out = []
    for i, node in enumerate(spec.nodes):
      out.append(_index(slots[2 * i], node.combination, f"nodes[{i}].combination"))
      out.append(_index(slots[2 * i + 1], node.activation, f"nodes[{i}].activation"))
    tail = slots[2 * self.num_nodes:]
    out.append(_index(tail[0], spec.inject_node, "inject_node"))
    out.append(_index(tail[1], spec.inject_combination, "inject_combination"))
    out.append(_index(tail[2], spec.inject_activation, "inject_activation"))
    out.append(_index(tail[3], spec.cell_index, "cell_index"))
    return tuple(out)

  def to_dict(self) -> dict:
    return {"kind": self.kind, "base": self.base, "combinations": list(self.combinations),
            "activations": list(self.activations)}


@dataclasses.dataclass(frozen=True)
class NB201SearchSpace(_Space):
  """The NAS-Bench-201 cell space (Dong & Yang 2020): one op per edge, 6 edges.

  Tokens, in order: the op of each edge of :data:`nas_tf.specs.NB201_EDGES`. All six
  share one token type ("op"), so the controller uses one softmax for them, as it does
  for the repeated decisions of the paper's spaces.

  Attributes:
    ops: Allowed operations (default: all 5 of the benchmark).
  """

  ops: tuple[str, ...] = specs.NB201_OPS

  kind = "nasbench201"

  def __post_init__(self):
    object.__setattr__(self, "ops", _check_choices("ops", self.ops, allowed=specs.NB201_OPS))

  def schema(self) -> tuple[Slot, ...]:
    return (CategoricalSlot("op", self.ops),) * len(specs.NB201_EDGES)

  def decode(self, tokens: Sequence[int]) -> specs.NB201CellSpec:
    return specs.NB201CellSpec(tuple(self.ops[t] for t in self._split(tokens)))

  def encode(self, spec: specs.NB201CellSpec) -> Tokens:
    slot = self.schema()[0]
    return tuple(_index(slot, op, "op") for op in spec.ops)

  def to_dict(self) -> dict:
    return {"kind": self.kind, "ops": list(self.ops)}


@dataclasses.dataclass(frozen=True)
class HyperSpace(_Space):
  """The hyperparameters of a user's ``build_model(hp)``, each a list of values.

  Built from KerasTuner's ``HyperParameters`` by :mod:`nas_tf.hypermodel` (which also
  turns ranges into value lists). One token per hyperparameter, in the order the build
  function asks for them. Each has its own token type (its own softmax and embedding in
  the controller) except repeated decisions: hyperparameters whose names differ only in
  their numbers (``width_0``, ``width_1``) and that take the same values share one, as
  the repeated decisions of the paper's spaces do. Types are named by position (``hp0``
  for the first hyperparameter of its kind, ...) so that weight names stay valid
  whatever the user calls a hyperparameter.

  Attributes:
    hyperparameters: ``(name, values)`` or ``(name, values, conditions)`` entries;
      ``values`` a tuple of JSON scalars; ``conditions`` ``((parent name, parent values),
      ...)``: the hyperparameter exists only when every (earlier) parent holds one of
      those values (KerasTuner's ``conditional_scope``, or a branch of the function).
  """

  hyperparameters: tuple

  kind = "hp"

  def __post_init__(self):
    items = []
    for p in self.hyperparameters:
      p = tuple(p) if isinstance(p, (list, tuple)) else (
          p["name"], p["values"], p.get("conditions", ()))
      name, values = str(p[0]), _check_choices(f"hyperparameter {p[0]!r}", p[1])
      conditions = tuple((str(c), tuple(v)) for c, v in (p[2] if len(p) > 2 else ()))
      items.append((name, values, conditions))
    object.__setattr__(self, "hyperparameters", tuple(items))
    if not items:
      raise ValueError("a HyperSpace needs at least one hyperparameter")
    names = [n for n, _, _ in items]
    if len(set(names)) != len(names):
      raise ValueError(f"repeated hyperparameter names: {names}")
    for k, (name, _, conditions) in enumerate(items):
      for parent, allowed in conditions:
        if parent not in names[:k]:
          raise ValueError(f"hyperparameter {name!r} depends on {parent!r}, which is not "
                           "an earlier hyperparameter")
        parent_values = items[names.index(parent)][1]
        if not set(allowed) <= set(parent_values):
          raise ValueError(f"hyperparameter {name!r} depends on {parent!r} being one of "
                           f"{list(allowed)}, not all of which it can take "
                           f"({list(parent_values)})")

  @property
  def names(self) -> list[str]:
    return [n for n, _, _ in self.hyperparameters]

  def num_configurations(self) -> int:
    """Distinct configurations: every assignment of the active hyperparameters, an
    inactive one counted once (KerasTuner's "search space size" counts hyperparameters).

    Counted exactly by carrying only the values that later conditions read, so a space
    with tens of decisions costs a few dict operations per value, not an enumeration.
    """
    items = self.hyperparameters
    read_from = [set() for _ in range(len(items) + 1)]  # parents read at k or later
    for k in range(len(items) - 1, -1, -1):
      read_from[k] = read_from[k + 1] | {parent for parent, _ in items[k][2]}
    counts = {(): 1}  # (the values later conditions read, as pairs) -> assignments
    for k, (name, values, conditions) in enumerate(items):
      nxt: dict = {}
      for state, n in counts.items():
        held = dict(state)
        on = all(parent in held and held[parent] in allowed
                 for parent, allowed in conditions)
        for after in ([{**held, name: v} for v in values] if on else [held]):
          key = tuple(sorted((p, v) for p, v in after.items() if p in read_from[k + 1]))
          nxt[key] = nxt.get(key, 0) + n
      counts = nxt
    return sum(counts.values())

  def schema(self) -> tuple[Slot, ...]:
    names = self.names
    out, kinds = [], {}
    for i, (name, values, conditions) in enumerate(self.hyperparameters):
      when = tuple((names.index(parent), tuple(
          self.hyperparameters[names.index(parent)][1].index(v) for v in allowed))
                   for parent, allowed in conditions)
      # A repeated decision (``width_0``, ``width_1``, ...: the same name but for its
      # numbers, over the same values) is one token type, as the paper's repeated layer
      # decisions are: one softmax and embedding, named after its first occurrence.
      kind = kinds.setdefault((re.sub(r"\d+", "#", name), values), f"hp{i}")
      out.append(CategoricalSlot(kind, values, when))
    return tuple(out)

  def decode(self, tokens: Sequence[int]) -> specs.HyperParameterSpec:
    tokens = self._split(tokens)
    return specs.HyperParameterSpec(tuple(
        (name, values[t]) for (name, values, _), t, on in zip(
            self.hyperparameters, tokens, self.active(tokens)) if on))

  def encode(self, spec: specs.HyperParameterSpec) -> Tokens:
    given, out, active = spec.as_dict(), [], []
    for slot, (name, _, _) in zip(self.schema(), self.hyperparameters):
      on = all(active[p] and out[p] in allowed for p, allowed in slot.active_when)
      active.append(on)
      if on != (name in given):
        raise specs.SpecError(
            f"hyperparameter {name!r} is {'missing from' if on else 'inactive in'} "
            f"{spec.describe()!r} (this space: {self.names})")
      out.append(_index(slot, given[name], name) if on else 0)
    extra = set(given) - set(self.names)
    if extra:
      raise specs.SpecError(f"hyperparameters {sorted(extra)} are not in this space "
                            f"{self.names}")
    return tuple(out)

  def to_dict(self) -> dict:
    return {"kind": self.kind, "hyperparameters": [
        [n, list(v)] + ([[[c, list(a)] for c, a in cond]] if cond else [])
        for n, v, cond in self.hyperparameters]}


SearchSpace = Union[CNNSearchSpace, RNNCellSearchSpace, NB201SearchSpace, HyperSpace]
SPACE_KINDS = {"cnn": CNNSearchSpace, "rnn": RNNCellSearchSpace,
               "nasbench201": NB201SearchSpace, "hp": HyperSpace}


def space_from_dict(data: dict) -> SearchSpace:
  """Inverse of ``space.to_dict()``."""
  data = dict(data)
  kind = data.pop("kind", None)
  cls = SPACE_KINDS.get(kind)
  if cls is None:
    raise ValueError(f"search space 'kind' must be one of {sorted(SPACE_KINDS)}, got {kind!r}")
  return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def paper_space(kind: str, rnn_base: int = 8, strides=(1,), pooling: bool = False) -> dict:
  """The paper's search space of ``kind`` as ``space.to_dict()`` (§3.1-3.4, §4.1 pooling).

  'rnn': base-``rnn_base`` tree cells with the paper's combinations and activations;
  'cnn': conv layers with the given stride choices (and max/avg pooling layers).
  """
  if kind == "rnn":
    return {"kind": "rnn", "base": rnn_base, "combinations": ["add", "elem_mult"],
            "activations": ["identity", "tanh", "sigmoid", "relu"]}
  if kind == "cnn":
    ops = ["conv", "max_pool", "avg_pool"] if pooling else ["conv"]
    return {"kind": "cnn", "strides": [int(s) for s in strides], "layer_ops": ops}
  raise ValueError(f"the paper has no {kind!r} search space; expected 'rnn' or 'cnn'")
