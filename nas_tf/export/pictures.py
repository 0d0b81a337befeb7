"""Pictures of found architectures: Graphviz DOT text and PNG (Zoph & Le 2017, Fig. 5, 7, 8).

A spec is first turned into a small, renderer-independent :class:`Graph` (nodes with
labels and a drawing level, edges with a kind), then written as DOT text by
:func:`to_dot` -- by hand, so no Python Graphviz package is needed -- and rendered by
:func:`render_png`: with the ``dot`` binary when it is installed, else with matplotlib
when that is installed, else not at all (logged, never raised: a missing picture must
not fail an export).

* A recurrent cell (§3.4, Figures 5 and 8) is drawn as its tree: the leaves read
  ``x_t`` and ``h_{t-1}``, each node shows ``activation(combination)``, the "cell
  inject" node is marked and receives ``c_{t-1}``, and the "cell index" node feeds
  ``c_t`` with its pre-activation value; the root gives ``h_t``.
* A conv network (§3.3, Figure 7) is drawn as its layer graph: each layer shows its
  op, filter size, filters and stride; edges from the previous layer are solid, skip
  connections (anchor-point inputs other than the previous layer, or the image read by
  a later layer) are dashed and labelled ``skip``; dangling layers feed the head.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
from typing import Optional

from absl import logging

from nas_tf import specs as specs_lib

_SHORT = {"add": "+", "elem_mult": "*", "max": "max"}
# Fill colours: marking inject and cell index is the point of the picture (§3.4).
_COLOURS = {"io": "#eeeeee", "inject": "#ffd8a8", "cell": "#b2f2bb",
            "both": "#ffec99", "op": "#ffffff", "head": "#d0ebff"}


@dataclasses.dataclass
class Node:
  """One box of the picture.

  Attributes:
    id: DOT identifier (``n3``, ``L2``, ``x_t``, ...).
    label: Text shown, may hold newlines.
    level: Drawing row, 0 at the top; used by the matplotlib fallback and DOT ranks.
    kind: A key of ``_COLOURS``.
  """

  id: str
  label: str
  level: int
  kind: str = "op"


@dataclasses.dataclass
class Edge:
  """A data-flow edge; ``kind`` is 'data', 'skip', 'inject' or 'cell'."""

  src: str
  dst: str
  kind: str = "data"
  label: str = ""


@dataclasses.dataclass
class Graph:
  """A renderer-independent architecture picture."""

  name: str
  title: str
  nodes: list[Node] = dataclasses.field(default_factory=list)
  edges: list[Edge] = dataclasses.field(default_factory=list)


def cell_graph(spec: specs_lib.RNNCellSpec) -> Graph:
  """The tree of a recurrent cell (§3.4), inject and cell index marked."""
  graph = Graph("cell", f"RNN cell, base {spec.base}: " + spec.describe())
  depth = spec.base.bit_length()  # Levels of the tree: leaves at 1, root at depth.
  graph.nodes += [Node("x_t", "x_t", 0, "io"), Node("h_prev", "h_{t-1}", 0, "io"),
                  Node("c_prev", "c_{t-1}", 0, "io")]
  level_of = {}
  for i in range(spec.num_nodes):
    level_of[i] = 1 if i < spec.base else level_of[spec.children_of(i)[0]] + 1
  for i, node in enumerate(spec.nodes):
    label = f"n{i}\n{node.activation}({_SHORT[node.combination]})"
    kind = "op"
    if i == spec.inject_node:
      label += (f"\ninject: {spec.inject_activation}"
                f"(a {_SHORT[spec.inject_combination]} c_{{t-1}})")
      kind = "inject"
    if i == spec.cell_index:
      label += "\ncell index: c_t = pre"
      kind = "both" if kind == "inject" else "cell"
    graph.nodes.append(Node(f"n{i}", label, level_of[i], kind))
    children = spec.children_of(i)
    if children is None:
      graph.edges += [Edge("x_t", f"n{i}", label=f"W{i}x"),
                      Edge("h_prev", f"n{i}", label=f"U{i}h")]
    else:
      graph.edges += [Edge(f"n{children[0]}", f"n{i}"), Edge(f"n{children[1]}", f"n{i}")]
  graph.edges.append(Edge("c_prev", f"n{spec.inject_node}", "inject", "inject"))
  graph.nodes += [Node("h_t", "h_t", depth + 1, "io"), Node("c_t", "c_t", depth + 1, "io")]
  graph.edges += [Edge(f"n{spec.root}", "h_t"),
                  Edge(f"n{spec.cell_index}", "c_t", "cell", "pre-activation")]
  return graph


def cnn_graph(spec: specs_lib.CNNSpec, num_classes: int = 10) -> Graph:
  """The layer graph of a conv network (§3.3, Figure 7), skip connections dashed."""
  graph = Graph("cnn", f"CNN, {spec.num_layers} layers: " + spec.describe())
  graph.nodes.append(Node("image", "image", 0, "io"))
  for i, layer in enumerate(spec.layers):
    if layer.op == "conv":
      what = f"conv {layer.filter_height}x{layer.filter_width}/{layer.num_filters}"
    else:
      what = f"{layer.op} {layer.filter_height}x{layer.filter_width}"
    graph.nodes.append(Node(f"L{i}", f"L{i}\n{what}\nstride {layer.stride}", i + 1))
    sources = [f"L{j}" for j in layer.inputs] or ["image"]
    for j, src in zip(layer.inputs or [-1], sources):
      # The previous layer is the plain chain; anything else is a skip (§3.3).
      skip = j != i - 1
      graph.edges.append(Edge(src, f"L{i}", "skip" if skip else "data",
                              "skip" if skip else ""))
  head = spec.num_layers + 1
  graph.nodes.append(Node("head", f"concat + global avg pool\n+ dense({num_classes})",
                          head, "head"))
  for j in spec.dangling():
    skip = j != spec.num_layers - 1
    graph.edges.append(Edge(f"L{j}", "head", "skip" if skip else "data",
                            "skip" if skip else ""))
  return graph


def graph_of(spec: specs_lib.Spec, num_classes: int = 10) -> Graph:
  """:func:`cell_graph` or :func:`cnn_graph`, by the spec's kind."""
  if isinstance(spec, specs_lib.RNNCellSpec):
    return cell_graph(spec)
  if isinstance(spec, specs_lib.CNNSpec):
    return cnn_graph(spec, num_classes)
  raise TypeError(f"expected an RNNCellSpec or CNNSpec, got {type(spec).__name__}")


def _quote(text: str) -> str:
  return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_EDGE_STYLE = {"data": "", "skip": "style=dashed, color=\"#1971c2\"",
               "inject": "style=bold, color=\"#e8590c\"",
               "cell": "style=dotted, color=\"#2f9e44\""}


def to_dot(graph_or_spec, num_classes: int = 10) -> str:
  """Graphviz DOT text of a :class:`Graph` or a spec (written by hand, no dependency)."""
  graph = graph_or_spec if isinstance(graph_or_spec, Graph) else graph_of(
      graph_or_spec, num_classes)
  lines = [f"digraph {graph.name} {{",
           f"  label={_quote(graph.title)}; labelloc=t; fontsize=10;",
           "  rankdir=TB;",
           '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
           '  edge [fontname="Helvetica", fontsize=8];']
  for node in graph.nodes:
    lines.append(f"  {node.id} [label={_quote(node.label)}, "
                 f"fillcolor={_quote(_COLOURS[node.kind])}];")
  for level in sorted({n.level for n in graph.nodes}):
    ids = " ".join(n.id for n in graph.nodes if n.level == level)
    lines.append(f"  {{ rank=same; {ids} }}")
  for edge in graph.edges:
    attrs = [a for a in (_EDGE_STYLE[edge.kind],
                         f"label={_quote(edge.label)}" if edge.label else "") if a]
    lines.append(f"  {edge.src} -> {edge.dst}" + (f" [{', '.join(attrs)}]" if attrs else "")
                 + ";")
  lines.append("}")
  return "\n".join(lines) + "\n"


def _render_with_dot(dot_binary: str, dot_path: str, png_path: str) -> bool:
  try:
    subprocess.run([dot_binary, "-Tpng", "-o", png_path, dot_path], check=True,
                   capture_output=True, timeout=60)
    return True
  except (OSError, subprocess.SubprocessError) as e:
    stderr = getattr(e, "stderr", b"") or b""
    logging.warning("`dot` failed to render %s: %s %s", dot_path, e,
                    stderr.decode(errors="replace").strip())
    return False


def _render_with_matplotlib(graph: Graph, png_path: str) -> bool:
  """A plain layered drawing, used only when Graphviz is not installed."""
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")  # No display: files only.
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    return False
  try:
    rows: dict[int, list[Node]] = {}
    for node in graph.nodes:
      rows.setdefault(node.level, []).append(node)
    width = max(len(r) for r in rows.values())
    pos = {n.id: ((k + 0.5) * width / len(row), -level)
           for level, row in rows.items() for k, n in enumerate(row)}
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * width), max(4, 1.4 * len(rows))))
    colour = {"data": "black", "skip": "#1971c2", "inject": "#e8590c", "cell": "#2f9e44"}
    for edge in graph.edges:
      (x0, y0), (x1, y1) = pos[edge.src], pos[edge.dst]
      ax.annotate("", (x1, y1 + 0.2), (x0, y0 - 0.2), arrowprops=dict(
          arrowstyle="->", color=colour[edge.kind],
          linestyle="--" if edge.kind == "skip" else "-"))
    for node in graph.nodes:
      x, y = pos[node.id]
      ax.text(x, y, node.label, ha="center", va="center", fontsize=7,
              bbox=dict(boxstyle="round", facecolor=_COLOURS[node.kind]))
    ax.set_title(graph.title, fontsize=8)
    ax.set_xlim(0, width)
    ax.set_ylim(-max(rows) - 0.7, 0.7)
    ax.axis("off")
    fig.savefig(png_path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return True
  except Exception as e:  # pylint: disable=broad-except
    # A picture is a convenience: a plotting failure must never fail an export.
    logging.warning("matplotlib could not render %s: %s", png_path, e)
    return False


def write_picture(spec: specs_lib.Spec, directory: str, basename: str = "architecture",
                  num_classes: int = 10, dot_binary: Optional[str] = "dot") -> dict:
  """Writes ``{basename}.dot`` and, when a renderer is available, ``{basename}.png``.

  Args:
    spec: The architecture.
    directory: Existing output directory.
    basename: File name without extension.
    num_classes: Shown in a CNN's head.
    dot_binary: Name or path of Graphviz ``dot``; None skips Graphviz (tests use it to
      exercise the fallbacks).

  Returns:
    ``{"dot": path, "png": path or None, "renderer": "dot" | "matplotlib" | None}``.
  """
  graph = graph_of(spec, num_classes)
  dot_path = os.path.join(directory, basename + ".dot")
  png_path = os.path.join(directory, basename + ".png")
  with open(dot_path, "w") as f:
    f.write(to_dot(graph))
  found = shutil.which(dot_binary) if dot_binary else None
  renderer = None
  if found and _render_with_dot(found, dot_path, png_path):
    renderer = "dot"
  elif _render_with_matplotlib(graph, png_path):
    renderer = "matplotlib"
  if renderer is None:
    logging.warning("No PNG written for %s: install Graphviz (`apt-get install -y "
                    "graphviz`) or matplotlib; the DOT text is in %s.", basename, dot_path)
  else:
    logging.debug("Architecture picture: %s (rendered with %s)", png_path, renderer)
  return {"dot": dot_path, "png": png_path if renderer else None, "renderer": renderer}


__all__ = ["Graph", "Node", "Edge", "cell_graph", "cnn_graph", "graph_of", "to_dot",
           "write_picture"]
