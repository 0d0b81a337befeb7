"""benchmarks/strategies.py: its compressed run log (resume and re-analysis read it)."""

import gzip
import json

import pytest


@pytest.fixture(scope="module")
def strategies(load_benchmark):
  return load_benchmark("strategies")


def _run(seed, name="evolution", final=0.9):
  return {"name": name, "strategy": name, "dataset": "cifar10", "seed": seed, "budget": 3,
          "m": 1, "curve": [0.5, 0.7, final], "seconds": 1.0}


def test_read_runs_skips_a_member_cut_by_a_kill(strategies, tmp_path):
  members = [gzip.compress((json.dumps(_run(s)) + "\n").encode()) for s in range(3)]
  (tmp_path / strategies.RUNS).write_bytes(members[0] + members[1] + members[2][:-5])
  assert [r["seed"] for r in strategies.read_runs(tmp_path)] == [0, 1]


def test_read_runs_merges_a_legacy_log_counting_each_run_once(strategies, tmp_path):
  (tmp_path / strategies.RUNS).write_bytes(gzip.compress(
      (json.dumps(_run(0)) + "\n").encode()))
  (tmp_path / "runs.jsonl").write_text(json.dumps(_run(0, final=0.1)) + "\n" +
                                       json.dumps(_run(1)) + "\n" + '{"name": "cut')
  runs = strategies.read_runs(tmp_path)
  assert [(r["seed"], r["curve"][-1]) for r in runs] == [(0, 0.9), (1, 0.9)]
