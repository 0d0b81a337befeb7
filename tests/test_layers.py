"""The package's structure: no import cycle, no upward import, no private cross-use;
and a user's own task plugs in without editing the package.

Layers, lowest first; a module may import its own layer and those below, never one above,
whether at module level or inside a function (a lazy import is still a dependency).
"""

import ast
import pathlib

import launch

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nas_tf"

LAYERS = [
    # architectures as data, configuration, files, pure maths, the evaluator protocol
    {"specs", "search_space", "ops", "config", "config_edits", "rewards", "results",
     "fidelity", "cli", "data_sources", "evaluator", "processes"},
    # networks and their data: the controller, cells, readers
    {"controller", "reinforce", "cells", "tree_rnn", "data"},
    # children: building and training them, where they run, what is done with them
    {"children", "training", "cluster", "shared", "export", "zero_cost"},
    {"tasks"},   # what is searched and how it is judged
    {"search"},  # the loop, samplers, evaluators
    # what users read and call: reports of runs, the Python entry points, the search of
    # their own Keras models
    {"report", "api", "hypermodel"},
]


def _group(module: str) -> str:
  return module.split(".")[1] if module.count(".") else module


def _layer(module: str) -> int:
  group = _group(module)
  for i, names in enumerate(LAYERS):
    if group in names:
      return i
  raise AssertionError(f"{module} is in no layer of tests/test_layers.py; add it")


def _modules():
  for path in sorted(PACKAGE.rglob("*.py")):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    yield ".".join(parts), path


def _imports(path: pathlib.Path, module: str) -> list[tuple[str, int]]:
  """(imported nas_tf module, line) for every import in the file, lazy ones included."""
  tree = ast.parse(path.read_text())
  is_package = path.name == "__init__.py"
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [(a.name, node.lineno) for a in node.names if a.name.startswith("nas_tf")]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        pkg = module.split(".")[:len(module.split(".")) - node.level + is_package]
        base = ".".join(pkg + ([base] if base else []))
      if base.startswith("nas_tf"):
        for a in node.names:
          candidate = f"{base}.{a.name}"
          target = candidate if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists() \
              or (PACKAGE.parent / candidate.replace(".", "/")).is_dir() else base
          out.append((target, node.lineno))
  return out


def test_no_upward_imports_between_layers():
  bad = []
  for module, path in _modules():
    if module == "nas_tf":
      continue
    for target, line in _imports(path, module):
      if target == "nas_tf":
        continue
      if _layer(target) > _layer(module):
        bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer "
                   f"{_layer(target)} > {_layer(module)})")
  assert not bad, "\n".join(bad)


def test_no_import_cycles_between_modules():
  graph = {}
  for module, path in _modules():
    graph[module] = {t for t, _ in _imports(path, module) if t != module}
  # A package's __init__ re-exporting its submodules is not a cycle of design.
  for module in graph:
    graph[module] = {t for t in graph[module] if not module.startswith(t + ".")}
  state, stack, cycles = {}, [], []

  def visit(node):
    state[node] = 1
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == 1:
        cycles.append(stack[stack.index(nxt):] + [nxt])
      elif nxt in graph and not state.get(nxt):
        visit(nxt)
    stack.pop()
    state[node] = 2

  for node in sorted(graph):
    if not state.get(node):
      visit(node)
  assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_uses_another_modules_private_names():
  bad = []
  for module, path in _modules():
    tree = ast.parse(path.read_text())
    aliases = {a.asname or a.name.split(".")[-1] for n in ast.walk(tree)
               if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names
               if isinstance(n, ast.Import) and a.name.startswith("nas_tf")
               or isinstance(n, ast.ImportFrom) and (n.module or "").startswith("nas_tf")}
    for node in ast.walk(tree):
      if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
          and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
          and node.value.id in aliases):
        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.value.id}.{node.attr}")
    for node in ast.walk(tree):
      if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nas_tf"):
        bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {a.name}" for a in node.names
                if a.name.startswith("_") and not a.name.startswith("__")]
  assert not bad, "\n".join(bad)


def test_a_users_task_is_one_file_and_one_register_call(tmp_path):
  """examples/custom_task.py registers its own task from Python and searches it.

  Slow: runs the example script, a whole search, in a subprocess.
  """
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  proc = launch.run([ROOT / "examples" / "custom_task.py",
                         f"--output_dir={tmp_path}", "--max_children=2"],
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "best of 2 cells" in proc.stderr
  assert (tmp_path / "summary.txt").exists() and (tmp_path / "config.json").exists()


def _task_name_comparisons(tree: ast.AST, names: set) -> list[int]:
  """Lines comparing something with a task name (``== 'ptb'``, ``in ('ptb', ...)``), or
  looking a name up in a table keyed by task names."""
  def named(node) -> bool:
    if isinstance(node, ast.Constant):
      return node.value in names
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
      return any(named(e) for e in node.elts)
    return False

  lines = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Compare) and any(named(n) for n in [node.left, *node.comparators]):
      lines.append(node.lineno)
    elif isinstance(node, ast.Dict) and any(named(k) for k in node.keys if k is not None):
      lines.append(node.lineno)
  return lines


def test_only_tasks_know_task_names():
  """No module outside nas_tf/tasks/ branches on a task's name: what differs between
  tasks is a Task's method or attribute, so a task of a user's own gets every feature."""
  # 'nasbench201' is also the kind of its specs and space, which specs.py and
  # search_space.py rightly compare; the two paper tasks' names are task names only.
  names = {"ptb", "cifar10"}
  files = [p for p in sorted(PACKAGE.rglob("*.py")) if "tasks" not in p.parts]
  files += sorted((ROOT / "bin").glob("*.py"))
  bad = [f"{p.relative_to(ROOT)}:{line}" for p in files
         for line in _task_name_comparisons(ast.parse(p.read_text()), names)]
  assert not bad, "task names compared outside nas_tf/tasks/: " + ", ".join(bad)


def test_task_name_check_sees_comparisons():
  tree = ast.parse("a = task == 'ptb'\nb = t in ('cifar10', 'x')\nc = {'ptb': 1}\nd = 'ptb'\n")
  assert _task_name_comparisons(tree, {"ptb", "cifar10"}) == [1, 2, 3]
