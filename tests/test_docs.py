"""The documentation runs as written: every code block of README.md and docs/*.md.

Each ```python / ```bash / ```sh block either runs here, in order, in a fresh directory
(the repository's bin/, examples/ and testdata/ beside it) or is marked on the line
above with ``<!-- not run: REASON -->``; a marked block still has its binaries' flags
checked. docs/RESULTS.md is the record of measurements (commands on real data), so only
its flags are checked.
"""

import json
import os
import pathlib
import re
import subprocess

import launch
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
BINARIES = ("nas_search", "nas_train", "nas_export", "nas_worker", "nas_report")
_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!-- not run: (.+) -->$")


def blocks(page: str) -> list[dict]:
  """``{lang, code, line, not_run}`` of every fenced block of ``page``."""
  lines = (ROOT / page).read_text().split("\n")
  out, k = [], 0
  while k < len(lines):
    m = _FENCE.match(lines[k])
    if m and m.group(1):
      end = next(j for j in range(k + 1, len(lines)) if lines[j].startswith("```"))
      why = _NOT_RUN.match(lines[k - 1]) if k else None
      out.append({"lang": m.group(1), "code": "\n".join(lines[k + 1:end]), "line": k + 1,
                  "not_run": why.group(1) if why else None})
      k = end
    k += 1
  return out


def _commands(code: str) -> list[str]:
  """Shell commands of a block, continuation lines joined and comments dropped."""
  joined = re.sub(r"\\\n\s*", " ", code)
  return [line.split(" #")[0] for line in joined.split("\n")
          if line.strip() and not line.strip().startswith("#")]


@pytest.fixture(scope="module")
def known_flags() -> dict:
  """Each binary's flags, as its --helpfull lists them."""
  out = {}
  for name in BINARIES:
    text = launch.run([ROOT / "bin" / f"{name}.py", "--helpfull"],
                          capture_output=True, text=True, timeout=120, check=False).stdout
    out[name] = {m.group(2) for m in re.finditer(r"^\s+--(\[no\])?([\w.-]+):", text,
                                                   re.MULTILINE)}
    assert len(out[name]) > 10, text[-2000:]
  return out


@pytest.mark.parametrize("page", PAGES)
def test_every_documented_flag_exists(page, known_flags):
  wrong = []
  for block in blocks(page):
    if block["lang"] not in ("bash", "sh"):
      continue
    for command in _commands(block["code"]):
      for part in re.split(r"&&|\|\||;|\|", command):
        m = re.search(r"bin/(nas_\w+)(?:\.py)?\b(.*)", part)
        if not m or m.group(1) not in known_flags:
          continue
        for flag in re.findall(r"(?:^|\s)--([\w.-]+)", m.group(2)):
          have = known_flags[m.group(1)]
          if flag not in have and not (flag.startswith("no") and flag[2:] in have):
            wrong.append(f"{page}:{block['line']}: {m.group(1)} has no --{flag}")
  assert not wrong, "\n".join(wrong)


def test_every_block_runs_or_says_why_not():
  """A block is run, or its marker gives the reason (real data, hours of CPU...)."""
  for page in PAGES:
    for block in blocks(page):
      if block["lang"] in ("python", "bash", "sh") and block["not_run"] is not None:
        assert len(block["not_run"]) > 10, (page, block["line"])


def _export_setup(directory: pathlib.Path) -> None:
  """docs/EXPORT.md's untrained export reads a finished tiny search: a one-child log."""
  from nas_tf import specs  # pylint: disable=g-import-not-at-top
  run = directory / "runs" / "ptb-rl-seed0-tiny"
  run.mkdir(parents=True)
  spec = specs.nascell_spec()
  record = {"step": 0, "index": 0, "status": "ok", "reward": 1e-3, "val_metric": 280.0,
            "spec": spec.to_dict(), "describe": spec.describe(), "tokens": []}
  (run / "results.jsonl").write_text(json.dumps(record) + "\n")


def _readme_setup(directory: pathlib.Path) -> None:
  """The README's embedding example reads the spec nas_train wrote (a real-data run):
  the paper's NASCell stands in for it."""
  from nas_tf import specs  # pylint: disable=g-import-not-at-top
  final = directory / "runs" / "ptb-final"
  final.mkdir(parents=True)
  (final / "spec.json").write_text(specs.nascell_spec().to_json())


SETUP = {"docs/EXPORT.md": _export_setup, "README.md": _readme_setup}


def _runnable():
  for page in PAGES:
    if page == "docs/RESULTS.md":
      continue
    todo = [b for b in blocks(page) if b["lang"] in ("python", "bash", "sh")
            and b["not_run"] is None]
    if todo:
      yield page


@pytest.mark.parametrize("page", list(_runnable()))
def test_the_page_runs_as_written(page, tmp_path, monkeypatch):
  """Slow: runs every unmarked block of the page in order (searches of seconds, one
  search of 6 small Keras trials, one cell export)."""
  for name in ("bin", "examples", "testdata"):
    (tmp_path / name).symlink_to(ROOT / name)
  SETUP.get(page, lambda d: None)(tmp_path)
  monkeypatch.chdir(tmp_path)
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(ROOT), os.environ.get("PYTHONPATH", "")]), TF_CPP_MIN_LOG_LEVEL="2")
  for block in blocks(page):
    if block["lang"] not in ("python", "bash", "sh") or block["not_run"] is not None:
      continue
    where = f"{page}:{block['line']}"
    if block["lang"] == "python":
      exec(compile(block["code"], where, "exec"), {"__name__": "__docs__"})  # pylint: disable=exec-used
    else:
      done = subprocess.run(["bash", "-euo", "pipefail", "-c", block["code"]], env=env,
                            capture_output=True, text=True, timeout=600, check=False)
      assert done.returncode == 0, f"{where}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
