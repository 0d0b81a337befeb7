"""Architecture pictures: the DOT text shows every node, layer and skip; PNG fallbacks."""

import importlib.util
import re
import shutil

import pytest

from nas_tf import specs as specs_lib
from nas_tf.export import pictures as viz

CNN = specs_lib.CNNSpec(layers=(
    specs_lib.ConvLayer(3, 3, 8), specs_lib.ConvLayer(5, 3, 8, inputs=(0,)),
    specs_lib.ConvLayer(1, 3, 8, stride=2, inputs=(0, 1)),
    specs_lib.ConvLayer(3, 3, 8, op="max_pool"),
    specs_lib.ConvLayer(7, 7, 16, inputs=(1, 3))))


def _edges(dot):
  return {(a, b): attrs for a, b, attrs in
          re.findall(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;$", dot, flags=re.M)}


def test_cell_dot_shows_every_node_inject_and_cell_index():
  spec = specs_lib.nascell_spec()
  dot = viz.to_dot(spec)
  edges = _edges(dot)
  for i, node in enumerate(spec.nodes):
    assert re.search(rf'^\s*n{i} \[label="n{i}\\n{node.activation}\(', dot, re.M), i
    children = spec.children_of(i)
    sources = ("x_t", "h_prev") if children is None else (f"n{children[0]}",
                                                          f"n{children[1]}")
    assert all((s, f"n{i}") in edges for s in sources), i
  assert "inject: tanh(a + c_{t-1})" in dot and "cell index" in dot
  assert "inject" in edges[("c_prev", "n8")] and "pre-activation" in edges[("n12", "c_t")]
  assert ("n14", "h_t") in edges
  assert dot.startswith("digraph cell {") and dot.rstrip().endswith("}")


def test_cnn_dot_shows_every_layer_and_skip_edge():
  dot = viz.to_dot(CNN)
  edges = _edges(dot)
  for i in range(CNN.num_layers):
    assert re.search(rf'^\s*L{i} \[label="L{i}\\n', dot, re.M), i
  assert "conv 5x3/8" in dot and "max_pool 3x3" in dot and "stride 2" in dot
  skips = {(a, b) for (a, b), attrs in edges.items() if "skip" in (attrs or "")}
  # L2 <- L0, L3 <- image, L4 <- L1 are skips; L2 and L4 are dangling, L2 a skip to head.
  assert skips == {("L0", "L2"), ("image", "L3"), ("L1", "L4"), ("L2", "head")}
  plain = set(edges) - skips
  assert plain == {("image", "L0"), ("L0", "L1"), ("L1", "L2"), ("L3", "L4"),
                   ("L4", "head")}


def test_write_picture_renders_or_falls_back(tmp_path):
  no_dot = viz.write_picture(CNN, str(tmp_path), "nodot", dot_binary=None)
  assert (tmp_path / "nodot.dot").read_text() == viz.to_dot(CNN)
  if importlib.util.find_spec("matplotlib") is None:
    assert no_dot["png"] is None and no_dot["renderer"] is None
  else:
    assert no_dot["renderer"] == "matplotlib"
  missing = viz.write_picture(CNN, str(tmp_path), "missing", dot_binary="no-such-dot")
  assert missing["dot"].endswith("missing.dot")  # Never raises.
  if shutil.which("dot") is None:
    pytest.skip("Graphviz `dot` is not installed")
  out = viz.write_picture(specs_lib.nascell_spec(), str(tmp_path))
  assert out["renderer"] == "dot"
  assert (tmp_path / "architecture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
