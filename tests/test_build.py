"""BUILD must not rot: every module, binary and test has a target, and deps match imports.

Bazel is not installed here, so the test reads BUILD as the Starlark it is (a subset of
Python) with stand-in rule functions, then checks it against the tree and the imports.
"""

import ast
import os
import pathlib

import pytest

import nas_tf

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load_build():
  targets = {}

  def rule(kind):
    def add(name, srcs=(), deps=(), **kwargs):
      assert name not in targets, f"duplicate target {name!r}"
      targets[name] = {"kind": kind, "srcs": list(srcs), "deps": list(deps), **kwargs}
    return add

  env = {"py_library": rule("py_library"), "py_binary": rule("py_binary"),
         "py_test": rule("py_test"), "filegroup": rule("filegroup"),
         "package": lambda **kw: None, "load": lambda *a, **kw: None,
         "glob": lambda patterns: [str(p.relative_to(ROOT)) for pat in patterns
                                   for p in ROOT.glob(pat) if p.is_file()]}
  exec(compile((ROOT / "BUILD").read_text(), "BUILD", "exec"), env)  # pylint: disable=exec-used
  return targets


TARGETS = _load_build()
SRC_OWNER = {src: name for name, t in TARGETS.items() for src in t["srcs"]
             if t["kind"] == "py_library"}


# Names ``nas_tf`` loads lazily from a submodule (``from nas_tf import KerasSearch``).
_LAZY = {**{n: "api" for n in nas_tf._API},  # pylint: disable=protected-access
         **{n: "hypermodel" for n in nas_tf._HYPERMODEL}}  # pylint: disable=protected-access


def _nas_tf_imports(path: pathlib.Path) -> set[str]:
  """Top-level nas_tf submodules that ``path`` imports ('data' for nas_tf.data.*)."""
  found = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nas_tf"):
      parts = node.module.split(".")
      found |= {_LAZY.get(a.name, a.name) for a in node.names} if len(parts) == 1 \
          else {parts[1]}
    elif isinstance(node, ast.Import):
      found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nas_tf.")}
  return found


def _library_of(module: str) -> str:
  path = f"nas_tf/{module}.py" if (ROOT / f"nas_tf/{module}.py").exists() else \
      f"nas_tf/{module}/__init__.py"
  assert path in SRC_OWNER, f"{path} has no py_library in BUILD"
  return SRC_OWNER[path]


def test_every_module_binary_and_test_has_a_target():
  owned = {src for t in TARGETS.values() for src in t["srcs"]}
  expected = ([p for p in (ROOT / "nas_tf").rglob("*.py")]
              + list((ROOT / "bin").glob("*.py")) + list((ROOT / "tests").glob("test_*.py")))
  missing = sorted(str(p.relative_to(ROOT)) for p in expected
                   if str(p.relative_to(ROOT)) not in owned)
  assert not missing, f"files without a BUILD target: {missing}"
  kinds = {p.stem: "py_binary" for p in (ROOT / "bin").glob("*.py")}
  kinds.update({p.stem: "py_test" for p in (ROOT / "tests").glob("test_*.py")})
  for name, kind in kinds.items():
    assert TARGETS.get(name, {}).get("kind") == kind, f"{name} should be a {kind}"


def test_every_named_file_and_dep_exists():
  for name, t in TARGETS.items():
    for src in t["srcs"] + ([t["main"]] if "main" in t else []):
      assert (ROOT / src).exists(), f"target {name} names missing file {src}"
    for dep in t["deps"]:
      assert dep.startswith(":") and dep[1:] in TARGETS, f"{name} has unknown dep {dep}"


@pytest.mark.parametrize("name", sorted(n for n, t in TARGETS.items() if t["kind"] != "filegroup"))
def test_deps_match_imports(name):
  t = TARGETS[name]
  imported = set()
  for src in t["srcs"]:
    imported |= {_library_of(m) for m in _nas_tf_imports(ROOT / src)}
  imported.discard(name)
  declared = {d[1:] for d in t["deps"]} - {"nas_tf_init"}
  assert imported <= declared, f"{name}: imports {sorted(imported - declared)} not in deps"
  unused = declared - imported
  assert not unused, f"{name}: deps {sorted(unused)} are not imported"


def test_each_binary_name_is_a_link_to_its_python_file():
  """bin/NAME is a symlink to bin/NAME.py (setup.py installs the .py files): an editor or
  `sed -i` that writes through the link replaces it with a copy that then drifts."""
  names = [p for p in (ROOT / "bin").iterdir() if p.suffix == "" and not p.name.startswith(".")]
  assert names
  for path in names:
    assert path.is_symlink() and os.readlink(path) == f"{path.name}.py", path
