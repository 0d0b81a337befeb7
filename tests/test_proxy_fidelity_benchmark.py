"""The training order of benchmarks/proxy_fidelity.py (what a resumed run trains next)."""

import importlib.util
import pathlib

import pytest

_PATH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "proxy_fidelity.py"


@pytest.fixture(scope="module")
def pf():
  spec = importlib.util.spec_from_file_location("proxy_fidelity_benchmark", _PATH)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_ARCHS = [("a", "A"), ("b", "B"), ("c", "C")]


def test_side_major_order(pf):
  todo = pf.plan(_ARCHS, ("proxy", "reference"), [set(), set()], interleave=False)
  assert [(k, i) for k, i, _ in todo] == [(0, "a"), (0, "b"), (0, "c"),
                                          (1, "a"), (1, "b"), (1, "c")]


def test_interleaved_order_pairs_up_first(pf):
  todo = pf.plan(_ARCHS, ("proxy", "reference"), [set(), set()], interleave=True)
  assert [(k, i) for k, i, _ in todo] == [(0, "a"), (1, "a"), (0, "b"), (1, "b"),
                                          (0, "c"), (1, "c")]
  assert todo[0][2] == "A"


def test_interleaved_resume_skips_what_is_done(pf):
  # Killed during b's reference: a is complete, b's proxy is on file.
  todo = pf.plan(_ARCHS, ("proxy", "reference"), [{"a", "b"}, {"a"}], interleave=True)
  assert [(k, i) for k, i, _ in todo] == [(1, "b"), (0, "c"), (1, "c")]


def test_one_side(pf):
  todo = pf.plan(_ARCHS, ("reference",), [{"b"}], interleave=True)
  assert [(k, i) for k, i, _ in todo] == [(0, "a"), (0, "c")]
