"""benchmarks/zero_cost_nb201.py: its sample of cells and its rank analysis."""

import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = str(ROOT / "testdata" / "nasbench201" / "nasbench201-synthetic.csv.gz")


@pytest.fixture(scope="module")
def zc(load_benchmark):
  return load_benchmark("zero_cost_nb201")


def test_sample_is_distinct_and_fixed_by_the_seed(zc):
  from nas_tf.tasks import nasbench201  # pylint: disable=g-import-not-at-top
  table = nasbench201.load_table(FIXTURE, "cifar10")
  cells = zc.sample_cells(table, 20, seed=0)
  assert len(set(cells)) == 20 and set(cells) <= set(table)
  assert cells == zc.sample_cells(table, 20, seed=0) != zc.sample_cells(table, 20, seed=1)


def test_analysis_ranks_each_score_against_the_tables_accuracy(zc, tmp_path):
  from nas_tf.tasks import nasbench201  # pylint: disable=g-import-not-at-top
  table = nasbench201.load_table(FIXTURE, "cifar10")
  cells = zc.sample_cells(table, 8, seed=0)
  # synflow orders cells exactly like their test accuracy; the others are constant,
  # except naswot's one singular kernel (-inf), which must rank last, not break the maths.
  records = {c: {"cell": c, "synflow": table[c][1], "naswot": 1.0, "grad_norm": 1.0,
                 "snip": 1.0, "num_params": 1.0, "total_seconds": 2.0} for c in cells}
  records[cells[0]]["naswot"] = float("-inf")
  path = tmp_path / "scores.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in records.values()))
  summary = zc.analyze(FIXTURE, zc._read(path))  # pylint: disable=protected-access
  rows = {(r["score"], r["against"]): r for r in summary["rows"]}
  assert summary["n"] == 8 and summary["mean_seconds"] == 2.0
  assert rows[("synflow", "cifar10-test")]["kendall_tau"] == pytest.approx(1.0)
  assert rows[("synflow", "cifar10-test")]["spearman_rho"] == pytest.approx(1.0)
  assert abs(rows[("naswot", "cifar10-test")]["kendall_tau"]) <= 1.0
