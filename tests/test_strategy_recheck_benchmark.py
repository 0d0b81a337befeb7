"""benchmarks/strategy_recheck.py: which cells it re-scores and how it summarises them."""

import json

import pytest


@pytest.fixture(scope="module")
def sr(load_benchmark):
  return load_benchmark("strategy_recheck")


def _record(index, reward, spec, status="ok", pruned_at=None):
  return {"index": index, "step": index, "reward": reward, "status": status,
          "val_metric": 80 / reward ** 0.5 if reward else None,
          "spec": {"kind": "toy", "k": spec}, "pruned_at": pruned_at}


def test_select_cells_takes_each_runs_distinct_best(sr, tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  records = [_record(0, 1e-4, "a"), _record(1, 3e-4, "b"), _record(2, 3e-4, "b"),
             _record(3, 0.0, "c", status="nan"), _record(4, 2e-4, "d"),
             _record(5, 9e-4, "e", pruned_at=0.33)]
  (run / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
  cells = sr.select_cells([f"bo-seed0:{run}"], top=3)
  # b once (a repeat is the same cell), the failed child never, the pruned one last.
  assert [(n, k, spec["k"]) for n, k, _, spec in cells] == [
      ("bo-seed0", 0, "b"), ("bo-seed0", 1, "d"), ("bo-seed0", 2, "a")]
  assert cells[0][2] == pytest.approx(80 / 3e-4 ** 0.5)


def test_summarize_takes_the_best_rescored_value_per_run(sr):
  cells = [{"run": "bo-seed0", "rank": 0, "search_value": 400.0},
           {"run": "bo-seed0", "rank": 1, "search_value": 410.0},
           {"run": "bo-seed1", "rank": 0, "search_value": 420.0},
           {"run": "rl-seed1", "rank": 0, "search_value": 450.0}]
  proxies = {"new": {"spec000": {"status": "ok", "val_perplexity": 430.0},
                     "spec001": {"status": "ok", "val_perplexity": 415.0},
                     "spec002": {"status": "nan", "val_perplexity": None},
                     "spec003": {"status": "ok", "val_perplexity": 440.0}}}
  out = sr.summarize(cells, proxies)
  # The second cell beats the search's own best once trained again; bo-seed1's only
  # cell failed.
  assert out["runs"]["bo-seed0"] == {"search": 400.0, "new": 415.0}
  assert out["runs"]["bo-seed1"] == {"search": 420.0, "new": None}
  assert out["strategies"]["bo"] == {"search": [400.0, 420.0], "new": [415.0, None]}
  assert out["strategies"]["rl"] == {"search": [450.0], "new": [440.0]}
