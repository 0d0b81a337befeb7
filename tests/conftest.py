"""Test-wide settings: quiet TensorFlow, the Keras backend pinned, TensorFlow imported
once per test process (its graph optimiser off), the size of ``-n auto``."""

import gc
import importlib.util
import os
import pathlib
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))

TESTDATA = ROOT / "testdata"


def pytest_sessionstart(session):
  """Imports TensorFlow and Keras once per test process, then freezes the heap.

  Every child trained in a test ends with ``keras.backend.clear_session()``, whose full
  garbage collection would otherwise walk the ~400k objects of the imported modules each
  time (0.2-0.3 s a child on this machine); frozen objects are never walked again.
  """
  if session.config.getoption("numprocesses", None) and not hasattr(session.config,
                                                                    "workerinput"):
    return  # xdist's controller runs no test
  import keras  # pylint: disable=g-import-not-at-top,unused-import
  import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  # Grappler (TensorFlow's graph optimiser) runs once per new graph, and a test's graphs
  # are tiny and run a few steps, so here it costs more than it saves: without it the suite
  # used 652 instead of 706 CPU-s (326 s against 354 s on 2 cores). Only in this process:
  # the binaries, worker pools and cluster servers that tests start keep TensorFlow's
  # defaults, so the configuration users run is still tested end to end.
  tensorflow.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
  gc.collect()
  gc.freeze()


def pytest_xdist_auto_num_workers(config):
  """``-n auto``: one and a half test processes per core.

  A third of the suite's CPU time is spent in subprocesses (binaries, worker pools,
  cluster servers) that a test waits for; with one process per core the cores idle while
  a test waits on a timer or a server's start. On 2 cores 3 processes kept 97% of the CPU
  busy (954 CPU-s in 498 s); 2 processes had finished the same tests in 572 s.
  """
  del config
  return max(2, (3 * (os.cpu_count() or 1)) // 2)


@pytest.fixture(scope="module")
def load_benchmark():
  """``load(NAME)``: benchmarks/NAME.py as a module, for tests of its pure functions.

  Each script defines its own absl flags (--seed, --threads, --analyze...), so two loaded
  into one process (one xdist worker) would clash (DuplicateFlagError): the flags a test
  module's scripts defined are removed when that module's tests are done.
  """
  from absl import flags  # pylint: disable=g-import-not-at-top
  before = set(flags.FLAGS)

  def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_benchmark",
                                                  ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

  yield load
  for name in set(flags.FLAGS) - before:
    delattr(flags.FLAGS, name)


# No test slower than 20 s without a reason (the suite must stay short on 2 cores). A test that needs longer says why
# in a docstring line starting with "Slow:"; the others are listed after the run (timings
# on a loaded machine are noisy, so this informs rather than fails). The reason travels in
# the report's user_properties, which pytest-xdist carries from its workers.
SLOW_LIMIT_S = 20.0
_slow_without_reason = []


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
