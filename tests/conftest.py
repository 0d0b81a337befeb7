"""Test-wide settings: quiet TensorFlow, pin the Keras backend, keep tests on one CPU thread pool."""

import collections
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

TESTDATA = ROOT / "testdata"


# Issue 15: no test slower than 20 s without a reason. A test that needs longer says why
# in a docstring line starting with "Slow:"; the others are listed after the run (timings
# on a loaded machine are noisy, so this informs rather than fails). The reason travels in
# the report's user_properties, which pytest-xdist carries from its workers.
SLOW_LIMIT_S = 20.0
_slow_without_reason = []


def _is_slow(item) -> bool:
  doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
  return "Slow:" in doc or item.get_closest_marker("slow") is not None


def pytest_collection_modifyitems(config, items):
  """Modules with the most slow tests run first, each module's tests kept together.

  With two xdist workers the suite's wall time is its total over two plus the tail: a
  slow test that starts last runs alone. Longest first shortens the tail; keeping a
  module together keeps its module-scoped fixtures (an in-process cluster) set up once.
  """
  del config
  module = lambda item: item.nodeid.split("::", 1)[0]
  slow = collections.Counter(module(item) for item in items if _is_slow(item))
  first_seen = {m: k for k, m in enumerate(dict.fromkeys(module(item) for item in items))}
  items.sort(key=lambda item: (-slow[module(item)], first_seen[module(item)]))


def pytest_runtest_setup(item):
  doc = getattr(getattr(item, "obj", None), "__doc__", None) or ""
  item.user_properties.append(("slow_reason", "Slow:" in doc))


def pytest_runtest_logreport(report):
  if report.when != "call" or report.duration <= SLOW_LIMIT_S:
    return
  if not dict(report.user_properties).get("slow_reason", False):
    _slow_without_reason.append((report.nodeid, report.duration))


def pytest_terminal_summary(terminalreporter):
  if _slow_without_reason:
    terminalreporter.section(f"tests over {SLOW_LIMIT_S:.0f} s without a 'Slow:' reason")
    for nodeid, duration in sorted(_slow_without_reason, key=lambda x: -x[1]):
      terminalreporter.write_line(f"{duration:6.1f} s  {nodeid}")
