"""Architectures as data: immutable, JSON-serializable specs (Zoph & Le 2017, §3.1-3.4).

A spec is the value that flows from the controller (or random search) to the child
builder and into every results record. It knows nothing about tokens (that is
``search_space``) nor about TensorFlow (that is ``children`` and ``cells``): it is plain,
hashable Python data that validates itself and round-trips through JSON.

Three kinds exist (the third, :class:`NB201CellSpec`, is the NAS-Bench-201 cell that
search strategies are benchmarked on, not a space of the paper):

* :class:`CNNSpec` -- a stack of :class:`ConvLayer` (paper §3.1 and §3.3): filter height,
  filter width, number of filters, stride, and the set of earlier layers feeding each
  layer (skip connections chosen by anchor points). A layer with no inputs reads the image.
* :class:`RNNCellSpec` -- a tree-shaped recurrent cell (paper §3.4): a complete binary
  tree with ``base`` leaves; every node has a combination and an activation; "cell
  inject" combines ``c_{t-1}`` into one node's output and "cell index" picks the node
  whose pre-activation value becomes ``c_t``.

Operation names are stable strings; their implementations live in :mod:`nas_tf.ops`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Union

# Stable operation names. The search spaces pick subsets of these; the paper's default
# RNN space uses {add, elem_mult} x {identity, tanh, sigmoid, relu}, and its control
# experiment (§4.2) adds "max" and "sin".
COMBINATIONS = ("add", "elem_mult", "max")
ACTIVATIONS = ("identity", "tanh", "sigmoid", "relu", "sin")
# Layer operations of the CNN space. "conv" is the paper's main space. The pooling ops are
# nas_tf's extension: the paper's pooling experiment (§4.1) inserts pooling layers at
# fixed depths, while here the controller may predict a pooling op for any layer (the
# layer pools with window filter_height x filter_width and keeps the channel count of
# its input, so num_filters is unused).
LAYER_OPS = ("conv", "max_pool", "avg_pool")

SPEC_FORMAT_VERSION = 1


class SpecError(ValueError):
  """A spec is invalid; the message names the bad field and value."""


# Caps checked before anything is built: far above any searched architecture (the paper's
# deepest CNN has 39 layers, its cells 8 leaves), far below what exhausts memory.
MAX_CNN_LAYERS = 1_000
MAX_RNN_NODES = 2 * 256 - 1
MAX_SPEC_JSON_BYTES = 1 << 20
# Error messages quote at most this much of a bad value.
_MAX_QUOTE = 200


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise SpecError(message if len(message) <= 2 * _MAX_QUOTE
                    else message[:2 * _MAX_QUOTE] + f"... ({len(message):,} characters)")


def _is_int(value: Any) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class ConvLayer:
  """One layer of a convolutional child (paper §3.1, Figure 2; skips §3.3, Figure 7).

  Attributes:
    filter_height: Kernel (or pooling window) height, > 0.
    filter_width: Kernel (or pooling window) width, > 0.
    num_filters: Output channels of a conv layer, > 0. Unused by pooling ops.
    stride: Stride in both spatial dimensions, > 0.
    inputs: Sorted indices of earlier layers whose outputs are concatenated (along
      depth, smaller maps zero-padded) to form this layer's input. Empty means the
      layer reads the image.
    op: One of :data:`LAYER_OPS`.
  """

  filter_height: int
  filter_width: int
  num_filters: int
  stride: int = 1
  inputs: tuple[int, ...] = ()
  op: str = "conv"

  def __post_init__(self):
    # Accept lists (e.g. from JSON) but store a canonical sorted tuple so that equal
    # architectures are equal values (and hash equal in the evaluation cache).
    object.__setattr__(self, "inputs", tuple(sorted(self.inputs)))
    for name in ("filter_height", "filter_width", "num_filters", "stride"):
      value = getattr(self, name)
      _check(_is_int(value) and value > 0,
             f"ConvLayer.{name} must be a positive int, got {value!r}")
    _check(self.op in LAYER_OPS,
           f"ConvLayer.op must be one of {LAYER_OPS}, got {self.op!r}")
    for j in self.inputs:
      _check(_is_int(j) and j >= 0,
             f"ConvLayer.inputs must hold non-negative layer indices, got {self.inputs!r}")
    _check(len(set(self.inputs)) == len(self.inputs),
           f"ConvLayer.inputs has duplicates: {self.inputs!r}")


@dataclasses.dataclass(frozen=True)
class CNNSpec:
  """A convolutional child network: an ordered stack of :class:`ConvLayer`."""

  layers: tuple[ConvLayer, ...]

  kind = "cnn"

  def __post_init__(self):
    layers = tuple(l if isinstance(l, ConvLayer) else ConvLayer(**l) for l in self.layers)
    object.__setattr__(self, "layers", layers)
    _check(len(layers) > 0, "CNNSpec.layers must not be empty")
    _check(len(layers) <= MAX_CNN_LAYERS,
           f"CNNSpec has {len(layers):,} layers; at most {MAX_CNN_LAYERS:,} are supported")
    for i, layer in enumerate(layers):
      for j in layer.inputs:
        _check(j < i, f"CNNSpec.layers[{i}].inputs may only name earlier layers "
               f"(indices < {i}), got {layer.inputs!r}")

  @property
  def num_layers(self) -> int:
    return len(self.layers)

  def outputs_used(self) -> set[int]:
    """Indices of layers whose output feeds some later layer."""
    return {j for layer in self.layers for j in layer.inputs}

  def dangling(self) -> list[int]:
    """Layers whose output feeds nothing; they all go to the classifier (§3.3)."""
    used = self.outputs_used()
    return [i for i in range(len(self.layers)) if i not in used]

  def to_dict(self) -> dict:
    return {"kind": self.kind, "version": SPEC_FORMAT_VERSION,
            "layers": [dataclasses.asdict(l) | {"inputs": list(l.inputs)}
                       for l in self.layers]}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  def describe(self) -> str:
    """A one-line human-readable summary, e.g. ``[3x5/36 s1 <-(0,2)] ...``."""
    parts = []
    for i, l in enumerate(self.layers):
      src = ",".join(map(str, l.inputs)) if l.inputs else "img"
      what = (f"{l.filter_height}x{l.filter_width}/{l.num_filters}" if l.op == "conv"
              else f"{l.op}{l.filter_height}x{l.filter_width}")
      stride = f" s{l.stride}" if l.stride != 1 else ""
      parts.append(f"L{i}:{what}{stride}<-{src}")
    return " ".join(parts)


@dataclasses.dataclass(frozen=True)
class TreeNode:
  """One node of the recurrent-cell tree: ``activation(combination(a, b))``."""

  combination: str
  activation: str

  def __post_init__(self):
    _check(self.combination in COMBINATIONS,
           f"TreeNode.combination must be one of {COMBINATIONS}, got {self.combination!r}")
    _check(self.activation in ACTIVATIONS,
           f"TreeNode.activation must be one of {ACTIVATIONS}, got {self.activation!r}")


@dataclasses.dataclass(frozen=True)
class RNNCellSpec:
  """A tree-shaped recurrent cell (paper §3.4, Figure 5).

  Nodes are stored in level order, leaves first: for base 8, nodes 0-7 are the leaves
  (each combines its own projections ``W x_t`` and ``W h_{t-1}``), 8-11 combine the
  pairs (0,1), (2,3), (4,5), (6,7); 12-13 combine (8,9), (10,11); node 14 is the root,
  whose output is ``h_t``. In general internal node ``base + k`` combines the two nodes
  ``2k`` and ``2k + 1``.

  Attributes:
    nodes: ``2 * base - 1`` :class:`TreeNode` in level order.
    inject_node: The node whose output ``a`` is replaced by
      ``inject_activation(inject_combination(a, c_{t-1}))`` ("cell inject").
    inject_combination: Combination used to inject ``c_{t-1}``.
    inject_activation: Activation applied after the injection.
    cell_index: The node whose pre-activation value becomes ``c_t`` ("cell index").
  """

  nodes: tuple[TreeNode, ...]
  inject_node: int
  inject_combination: str
  inject_activation: str
  cell_index: int

  kind = "rnn"

  def __post_init__(self):
    nodes = tuple(n if isinstance(n, TreeNode) else TreeNode(**n) for n in self.nodes)
    object.__setattr__(self, "nodes", nodes)
    n = len(nodes)
    _check(n <= MAX_RNN_NODES,
           f"RNNCellSpec has {n:,} nodes; at most {MAX_RNN_NODES} (base 256) are supported")
    base = (n + 1) // 2
    _check(n >= 3 and 2 * base - 1 == n and base & (base - 1) == 0,
           f"RNNCellSpec.nodes must hold 2*base-1 nodes with base a power of two >= 2, "
           f"got {n} nodes")
    for name in ("inject_node", "cell_index"):
      value = getattr(self, name)
      _check(_is_int(value) and 0 <= value < n,
             f"RNNCellSpec.{name} must be a node index in [0, {n}), got {value!r}")
    _check(self.inject_combination in COMBINATIONS,
           f"RNNCellSpec.inject_combination must be one of {COMBINATIONS}, "
           f"got {self.inject_combination!r}")
    _check(self.inject_activation in ACTIVATIONS,
           f"RNNCellSpec.inject_activation must be one of {ACTIVATIONS}, "
           f"got {self.inject_activation!r}")

  @property
  def base(self) -> int:
    return (len(self.nodes) + 1) // 2

  @property
  def num_nodes(self) -> int:
    return len(self.nodes)

  @property
  def root(self) -> int:
    return len(self.nodes) - 1

  def children_of(self, node: int) -> tuple[int, int] | None:
    """The two nodes combined by internal ``node``; None for a leaf."""
    if node < self.base:
      return None
    k = node - self.base
    return 2 * k, 2 * k + 1

  def to_dict(self) -> dict:
    return {"kind": self.kind, "version": SPEC_FORMAT_VERSION,
            "nodes": [dataclasses.asdict(n) for n in self.nodes],
            "inject_node": self.inject_node,
            "inject_combination": self.inject_combination,
            "inject_activation": self.inject_activation,
            "cell_index": self.cell_index}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  def describe(self) -> str:
    """A readable multi-node summary, e.g. ``n0=tanh(add) ... inject@8 add/tanh c=12``."""
    short = {"add": "+", "elem_mult": "*", "max": "max"}
    parts = [f"n{i}={n.activation}({short[n.combination]})" for i, n in enumerate(self.nodes)]
    parts.append(f"inject@n{self.inject_node}:{self.inject_activation}"
                 f"({short[self.inject_combination]}c)")
    parts.append(f"c=pre(n{self.cell_index})")
    return " ".join(parts)


# NAS-Bench-201 (Dong & Yang, ICLR 2020): the cell's 6 edges in the benchmark's order
# (edge i->j for node j = 1..3, i < j) and its 5 operations.
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


@dataclasses.dataclass(frozen=True)
class NB201CellSpec:
  """A NAS-Bench-201 cell: one operation per edge of a 4-node DAG.

  Not a space of the paper: the tabular benchmark that search strategies are compared
  on (every cell's accuracy is looked up, so thousands of searches cost seconds).

  Attributes:
    ops: 6 names from :data:`NB201_OPS`, one per edge of :data:`NB201_EDGES`.
  """

  ops: tuple[str, ...]

  kind = "nasbench201"

  def __post_init__(self):
    ops = tuple(self.ops)
    object.__setattr__(self, "ops", ops)
    _check(len(ops) == len(NB201_EDGES),
           f"NB201CellSpec needs {len(NB201_EDGES)} ops (one per edge), got {len(ops)}")
    for op in ops:
      _check(op in NB201_OPS, f"NB201CellSpec op {op!r} is not one of {NB201_OPS}")

  def to_dict(self) -> dict:
    return {"kind": self.kind, "version": SPEC_FORMAT_VERSION, "ops": list(self.ops)}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  def describe(self) -> str:
    """The benchmark's own cell string, e.g. ``|nor_conv_3x3~0|+|...~0|...~1|+|...|``."""
    nodes = []
    for j in (1, 2, 3):
      nodes.append("|" + "|".join(f"{op}~{i}" for op, (i, jj) in zip(self.ops, NB201_EDGES)
                                  if jj == j) + "|")
    return "+".join(nodes)

  @classmethod
  def from_cell_string(cls, text: str) -> "NB201CellSpec":
    """Inverse of :meth:`describe`."""
    ops = []
    for node in text.strip().split("+"):
      for edge in node.strip("|").split("|"):
        op, _, _ = edge.partition("~")
        ops.append(op)
    return cls(tuple(ops))


@dataclasses.dataclass(frozen=True)
class HyperParameterSpec:
  """A user's model as the values of its hyperparameters (KerasTuner's ``hp``).

  Not a space of the paper: the architecture of a ``build_model(hp)`` the user wrote
  (:mod:`nas_tf.hypermodel`), searched with the paper's controller.

  Attributes:
    values: ``(name, value)`` pairs in the order the build function asks for them;
      values are JSON scalars (int, float, bool, str).
  """

  values: tuple

  kind = "hp"

  def __post_init__(self):
    values = tuple((str(k), v) for k, v in (
        self.values.items() if isinstance(self.values, dict) else self.values))
    object.__setattr__(self, "values", values)
    _check(bool(values), "a HyperParameterSpec needs at least one hyperparameter")
    _check(len({k for k, _ in values}) == len(values),
           f"HyperParameterSpec has a repeated name: {[k for k, _ in values]}")
    for k, v in values:
      _check(isinstance(v, (int, float, str)) and not (isinstance(v, float) and v != v),
             f"hyperparameter {k!r} must be an int, float, bool or str, got {v!r}")

  def as_dict(self) -> dict:
    return dict(self.values)

  def to_dict(self) -> dict:
    # A list of pairs, not an object: JSON keeps the build function's order.
    return {"kind": self.kind, "version": SPEC_FORMAT_VERSION,
            "values": [[k, v] for k, v in self.values]}

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), sort_keys=True)

  def describe(self) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in self.values)


Spec = Union[CNNSpec, RNNCellSpec, NB201CellSpec, HyperParameterSpec]
_KINDS = {"cnn": CNNSpec, "rnn": RNNCellSpec, "nasbench201": NB201CellSpec,
          "hp": HyperParameterSpec}


def from_dict(data: dict) -> Spec:
  """Rebuilds a spec from :meth:`to_dict` output; raises SpecError on bad input."""
  _check(isinstance(data, dict), f"a spec must be a JSON object, got {type(data).__name__}")
  kind = data.get("kind")
  _check(kind in _KINDS, f"spec 'kind' must be one of {sorted(_KINDS)}, got {kind!r}")
  version = data.get("version", SPEC_FORMAT_VERSION)
  _check(version == SPEC_FORMAT_VERSION,
         f"spec format version {version!r} is not supported (expected {SPEC_FORMAT_VERSION})")
  fields = {k: v for k, v in data.items() if k not in ("kind", "version")}
  if kind == "hp":
    values = fields.get("values")
    _check(set(fields) == {"values"} and isinstance(values, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 for p in values),
           f"an hp spec holds only 'values', a list of [name, value] pairs, got "
           f"{repr(data)[:_MAX_QUOTE]}")
    return HyperParameterSpec(tuple(tuple(p) for p in values))
  if kind == "nasbench201":
    _check(set(fields) == {"ops"} and isinstance(fields["ops"], (list, tuple)),
           f"a nasbench201 spec holds only a list of 'ops', got {repr(data)[:_MAX_QUOTE]}")
    return NB201CellSpec(tuple(fields["ops"]))
  items = fields.get("layers" if kind == "cnn" else "nodes")
  _check(isinstance(items, (list, tuple)),
         f"a {kind} spec needs a list of {'layers' if kind == 'cnn' else 'nodes'}")
  _check(len(items) <= (MAX_CNN_LAYERS if kind == "cnn" else MAX_RNN_NODES),
         f"{kind} spec with {len(items):,} {'layers' if kind == 'cnn' else 'nodes'} is over "
         f"the cap ({MAX_CNN_LAYERS if kind == 'cnn' else MAX_RNN_NODES})")
  try:
    if kind == "cnn":
      return CNNSpec(layers=tuple(ConvLayer(**l) for l in fields.pop("layers")), **fields)
    return RNNCellSpec(nodes=tuple(TreeNode(**n) for n in fields.pop("nodes")), **fields)
  except (TypeError, KeyError) as e:
    raise SpecError(f"malformed {kind} spec {repr(data)[:_MAX_QUOTE]}: {e}") from e


# What nas_train trains is a spec, or the name of a task's baseline network (``--cell``:
# 'lstm', 'nascell', 'resnet20', ...), written to spec.json as {"cell": name}.

def trained_dict(spec) -> dict:
  """``spec.json``'s content for a spec or a baseline's name."""
  return {"cell": spec} if isinstance(spec, str) else spec.to_dict()


def trained_from_dict(data: dict):
  """Inverse of :func:`trained_dict`: a spec, or a baseline's name."""
  return data["cell"] if isinstance(data, dict) and set(data) == {"cell"} else from_dict(data)


def trained_describe(spec) -> str:
  """One line for logs and manifests, for a spec or a baseline's name."""
  return f"baseline cell {spec!r}" if isinstance(spec, str) else spec.describe()


def from_json(text: str) -> Spec:
  """Parses a spec written by ``spec.to_json()``; refuses text over the size cap."""
  _check(len(text) <= MAX_SPEC_JSON_BYTES,
         f"spec JSON of {len(text):,} characters is over the {MAX_SPEC_JSON_BYTES:,} cap; "
         "a spec file holds one architecture")
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise SpecError(f"spec is not valid JSON: {e}") from e
  except RecursionError:
    raise SpecError("spec JSON is nested too deeply to be a spec") from None
  return from_dict(data)


def nascell_spec() -> RNNCellSpec:
  """The cell found on Penn Treebank in the paper (Figure 8), as shipped in TensorFlow.

  Matches ``tf.contrib.rnn.NASCell`` / ``tfa.rnn.NASCell`` node for node.
  """
  leaves = [("add", "sigmoid"), ("add", "relu"), ("add", "sigmoid"), ("elem_mult", "relu"),
            ("add", "tanh"), ("add", "sigmoid"), ("add", "tanh"), ("add", "sigmoid")]
  level2 = [("elem_mult", "tanh"), ("add", "tanh"), ("elem_mult", "tanh"), ("add", "sigmoid")]
  level3 = [("elem_mult", "identity"), ("add", "tanh")]
  root = [("elem_mult", "tanh")]
  nodes = tuple(TreeNode(c, a) for c, a in leaves + level2 + level3 + root)
  return RNNCellSpec(nodes=nodes, inject_node=8, inject_combination="add",
                     inject_activation="tanh", cell_index=12)


def lstm_like_base2_spec() -> RNNCellSpec:
  """The base-2 example of the paper's Figure 5 (useful in docs and tests)."""
  nodes = (TreeNode("add", "tanh"), TreeNode("elem_mult", "relu"),
           TreeNode("elem_mult", "sigmoid"))
  return RNNCellSpec(nodes=nodes, inject_node=0, inject_combination="add",
                     inject_activation="relu", cell_index=1)


# What a node is known to be when every recurrent state starts at zero (see
# dead_cell_reason): `zero` means the value is exactly 0 in every element; `grad` means
# back-propagation can carry a non-zero gradient from it to some weight.
@dataclasses.dataclass(frozen=True)
class _Flow:
  zero: bool
  grad: bool


def _combine_flow(combination: str, a: _Flow, b: _Flow) -> _Flow:
  if combination == "elem_mult":
    # d(ab) = b da + a db: a factor's gradient survives only where the other is non-zero.
    return _Flow(zero=a.zero or b.zero,
                 grad=(a.grad and not b.zero) or (b.grad and not a.zero))
  # add, and max (TF sends a tie's gradient to one side; either side is assumed here, the
  # cautious choice): zero only when both are, gradient when either has one.
  return _Flow(zero=a.zero and b.zero, grad=a.grad or b.grad)


def _activate_flow(activation: str, a: _Flow) -> _Flow:
  if activation == "sigmoid":
    return _Flow(zero=False, grad=a.grad)  # sigmoid(0) = 0.5
  if activation == "relu" and a.zero:
    # TensorFlow's relu gradient at exactly 0 is 0: a zero input stays zero and stops the
    # gradient, whatever feeds it.
    return _Flow(zero=True, grad=False)
  # identity, tanh, sin map 0 to 0 with slope 1; relu of a non-zero input is non-zero
  # somewhere (its sign varies over the batch) and passes the gradient there.
  return a


def _cell_step_flow(spec: RNNCellSpec, h: _Flow, c: _Flow, has_bias: bool):
  """One step of the tree (the semantics of ``nas_tf.cells``) on flows: (root, c_t, nodes)."""
  # x_t @ W is non-zero (embeddings and kernels are drawn at random) and has a gradient.
  xw = _Flow(zero=False, grad=True)
  # h_{t-1} @ U + b: zero only if h is, and the bias starts at zero; the bias (when there
  # is one) or U (when h is non-zero) gives it a gradient.
  hw = _Flow(zero=h.zero, grad=h.grad or has_bias or not h.zero)
  values: list[_Flow] = []
  c_new = None
  for node, n in enumerate(spec.nodes):
    children = spec.children_of(node)
    left, right = (xw, hw) if children is None else (values[children[0]],
                                                    values[children[1]])
    pre = _combine_flow(n.combination, left, right)
    a = _activate_flow(n.activation, pre)
    if node == spec.inject_node:
      a = _activate_flow(spec.inject_activation,
                         _combine_flow(spec.inject_combination, a, c))
    if node == spec.cell_index:
      c_new = pre
    values.append(a)
  return values[-1], c_new, values


def dead_cell_reason(spec: RNNCellSpec, has_bias: bool = True) -> str | None:
  """Why a tree cell can never learn from a zero initial state, or None if it may.

  From ``h_0 = c_0 = 0`` and a zero-initialised recurrent bias (how ``nas_tf.cells``
  builds a tree cell and how every language model starts an epoch), a leaf that
  multiplies ``x W`` by ``h U + b`` is exactly 0. If every path from the leaves to the
  root (``h_t``) then either stays 0 and passes no gradient (a product of two zeros, a
  relu at exactly 0) the root is exactly 0 with a zero gradient for every weight: SGD
  never moves the cell, ``h_t`` is 0 at every step, and the language model around it
  learns word frequencies only (the unigram model), whatever the training budget.

  The check runs the tree symbolically on two facts per value (exactly zero? carries a
  gradient?) from the zero state, feeding ``c_t`` and ``h_t`` back until the pair of
  state facts repeats, and calls the cell dead when the root is zero without gradient
  at every step. It errs towards "may learn": a non-zero value is assumed wherever
  cancellation would be needed to make it zero. A cell this passes can still learn too
  slowly to matter (e.g. an output that is a product of several small leaves).

  Args:
    spec: The cell.
    has_bias: Whether ``h U`` gets a (zero-initialised) trainable bias; TreeCell's default.

  Returns:
    A one-line explanation naming the root's inputs, or None when the cell is not dead.
  """
  h = c = _Flow(zero=True, grad=False)
  seen = set()
  # A state is two flows of two booleans: the loop ends within 16 steps.
  while (h, c) not in seen:
    seen.add((h, c))
    root, c, values = _cell_step_flow(spec, h, c, has_bias)
    if not root.zero or root.grad:
      return None
    h = root
  node = spec.nodes[spec.root]
  left, right = spec.children_of(spec.root)
  what = {(True, False): "0 without gradient", (True, True): "0 with a gradient",
          (False, False): "non-zero without gradient", (False, True): "non-zero"}
  return (f"dead cell: from a zero state the output h = n{spec.root} = "
          f"{node.activation}({node.combination}(n{left}, n{right})) is exactly 0 and passes "
          f"no gradient at every step (n{left}: {what[values[left].zero, values[left].grad]}, "
          f"n{right}: {what[values[right].zero, values[right].grad]}"
          + (f"; cell inject at n{spec.inject_node}" if spec.inject_node == spec.root else "")
          + "), so the model can learn word frequencies only")


def is_dead_cell(spec: RNNCellSpec, has_bias: bool = True) -> bool:
  """True if :func:`dead_cell_reason` finds the cell can never learn (exact analysis)."""
  return dead_cell_reason(spec, has_bias) is not None
