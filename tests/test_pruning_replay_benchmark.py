"""benchmarks/pruning_replay.py: the library's pruners replayed on recorded learning curves."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def rp(load_benchmark):
  return load_benchmark("pruning_replay")


SH = {"kind": "successive_halving", "min_resource": 1 / 3, "reduction_factor": 2,
      "warmup_children": 2}


def test_replay_decides_as_successive_halving_by_hand(rp):
  # 3 epochs; one rung, at epoch 1 (1/3); eta 2, no decision before 2 earlier values.
  curves = np.array([[0.30, 0.4, 0.5],    # no bar yet: trains on
                     [0.20, 0.3, 0.6],    # no bar yet (one earlier value)
                     [0.25, 0.5, 0.7],    # bar: the (3 // 2) = 1st best of [.3, .2] = .3
                     [0.35, 0.4, 0.4],    # bar: 2nd best of [.3, .2, .25] (4 // 2) = .25
                     [0.26, 0.9, 0.9]])   # bar: 2nd best of [.3, .2, .25, .35] = .3
  assert rp.replay(curves, [0, 1, 2, 3, 4], SH, higher_is_better=True) == [3, 3, 1, 3, 1]
  # Lower is better (perplexity): bars .2 (best of [.3, .2]), then .25 twice; every
  # trial after the warm-up is above its bar.
  assert rp.replay(curves, [0, 1, 2, 3, 4], SH, higher_is_better=False) == [3, 3, 1, 1, 1]
  assert rp.replay(curves, [4, 3], {}, True) == [3, 3]


def test_evaluate_counts_speedup_kept_and_regret(rp):
  # Trial 2 is the best at the end and the worst at the rung: successive halving stops it
  # whenever it comes after the warm-up.
  curves = np.array([[0.5, 0.5, 0.5], [0.4, 0.4, 0.4], [0.1, 0.9, 0.95],
                     [0.45, 0.45, 0.45], [0.3, 0.3, 0.3], [0.35, 0.35, 0.35]])
  costs = np.ones(6)
  none = rp.evaluate(curves, curves[:, -1], costs, True, {}, trials=6, draws=20, fixed=0.0)
  assert none["speedup_mean"] == 1.0 and none["top5_kept_mean"] == 5
  assert none["best_kept_share"] == 1.0 and none["regret_median"] == 0
  sh = rp.evaluate(curves, curves[:, -1], costs, True, SH, trials=6, draws=200, fixed=0.0)
  assert 1.0 < sh["speedup_mean"] <= 3.0   # a stopped trial costs 1 of 3 epochs
  # The best is kept only when it is among the first two (no bar yet): 2 of 6 orders.
  assert sh["best_kept_share"] == pytest.approx(1 / 3, abs=0.08)
  assert sh["regret_median"] == pytest.approx(0.95 - 0.5)
  # A fixed cost shrinks the speed-up: with all of a trial fixed, stopping saves nothing.
  assert rp.evaluate(curves, curves[:, -1], costs, True, SH, 6, 20, fixed=1.0)[
      "speedup_mean"] == 1.0


def _write(path, records):
  path.mkdir()
  (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def _rec(step, spec, history, cpu, pruned_at=None, status="ok"):
  return {"step": step, "index": 0, "tokens": [spec], "status": status,
          "spec": {"k": spec}, "pruned_at": pruned_at, "val_metric": history[-1],
          "metrics": {"scored_on": {"metric": "val_accuracy", "higher_is_better": True},
                      "val_accuracy_history": history, "train_cpu_seconds": cpu}}


def test_curves_are_distinct_full_length_and_the_fixed_cost_is_measured(rp, tmp_path):
  full = [_rec(0, 1, [0.1, 0.2, 0.3], 100.0), _rec(1, 2, [0.2, 0.3, 0.4], 130.0),
          _rec(2, 1, [0.1, 0.2, 0.3], 100.0),               # a repeat: pooled once
          _rec(3, 3, [0.2, 0.3, 0.4], 50.0, status="nan")]  # failed: left out
  _write(tmp_path / "full", full)
  curves, finals, costs, higher = rp.load_curves([str(tmp_path / "full")])
  assert curves.tolist() == [[0.1, 0.2, 0.3], [0.2, 0.3, 0.4]] and costs.tolist() == [
      100.0, 130.0] and higher and finals.tolist() == [0.3, 0.4]
  # A proxy_fidelity.py side: ranked by its reward's value, not the last epoch's.
  side = tmp_path / "reference.jsonl"
  side.write_text(json.dumps({"id": "a", "status": "ok", "val_accuracy": 0.5,
                              "val_accuracy_history": [0.2, 0.5, 0.4]}) + "\n"
                  + json.dumps({"id": "b", "status": "nan"}) + "\n")
  curves, finals, _, _ = rp.load_curves([str(side)])
  assert curves.tolist() == [[0.2, 0.5, 0.4]] and finals.tolist() == [0.5]
  # Pruned twins: stopped after 1 epoch at 40 (of 100) and 2 epochs at 91 (of 130):
  # fixed = 40 - 1 * 30 = 10 (0.1 of 100) and 91 - 2 * 39 = 13 (0.1 of 130).
  _write(tmp_path / "pruned", [_rec(0, 1, [0.1], 40.0, pruned_at=1 / 3),
                               _rec(1, 2, [0.2, 0.3], 91.0, pruned_at=2 / 3)])
  assert rp.fixed_fraction([f"{tmp_path / 'pruned'}:{tmp_path / 'full'}"]) == (
      pytest.approx(0.1))
  assert rp.fixed_fraction([]) == 0.0
  with pytest.raises(ValueError, match="no trial with a full per-epoch history"):
    rp.load_curves([str(tmp_path / "pruned")])


def test_observed_rungs_become_a_curve_and_only_their_rules_replay(rp, tmp_path):
  # A one-epoch PTB child of a pruner.kind=observe search: rungs at 1/9 and 1/3 of its
  # windows, its final value at the end: slots 1, 3 and 9 of 9.
  curve = rp.rung_curve([[1 / 9, 900.0], [1 / 3, None]], 500.0)
  assert len(curve) == 9 and curve[0] == 900.0 and curve[8] == 500.0
  assert np.isnan(curve[2]) and np.isnan(curve[1])  # a NaN rung; slot 2 never measured
  assert rp.rung_curve([[0.5, 1.0]], 2.0) == [1.0, 2.0]
  assert rp.rung_curve([[0.3183099, 1.0]], 2.0) is None  # no whole slot below 100
  records = [{"step": k, "index": 0, "status": "ok", "pruned_at": None, "tokens": [k],
              "spec": {"cell": k}, "val_metric": 400.0 + k,
              "metrics": {"val_perplexity": 400.0 + k, "val_perplexity_history": [400.0 + k],
                          "rungs": [[1 / 9, 900.0 - k], [1 / 3, 600.0 - k]],
                          "train_cpu_seconds": 10.0}} for k in range(4)]
  _write(tmp_path / "observed", records)
  curves, finals, _, higher = rp.load_curves([str(tmp_path / "observed")])
  assert not higher and curves.shape == (4, 9) and finals.tolist() == [400.0, 401.0, 402.0,
                                                                       403.0]
  assert curves[1, 0] == 899.0 and curves[1, 2] == 599.0 and curves[1, 8] == 401.0
  # Rungs at 1/9 and 1/3 (slots 1, 3) were measured; 1/2 (slot 4.5 -> 5) was not.
  sh = {"kind": "successive_halving", "reduction_factor": 3, "warmup_children": 1}
  assert rp.replayable(curves, {**sh, "min_resource": 1 / 9})
  assert rp.replayable(curves, {**sh, "min_resource": 1 / 3})
  assert not rp.replayable(curves, {**sh, "min_resource": 1 / 2})
  assert rp.replayable(curves, {})
  # Hyperband is checked on its whole ladder, not on one bracket's later rungs: with the
  # 1/9 rung unmeasured it is not replayable, whichever bracket a first child would get.
  later_only = curves.copy()
  later_only[:, 0] = np.nan
  hb = {"kind": "hyperband", "min_resource": 1 / 9, "reduction_factor": 3}
  assert rp.replayable(curves, hb) and not rp.replayable(later_only, hb)
  # Successive halving at 1/9, one earlier value needed: child 1 beats child 0 at the
  # first rung (899 < 900) and its 1/3 rung (599 < 600); every later child too.
  assert rp.replay(curves, [0, 1, 2, 3], {**sh, "min_resource": 1 / 9}, False) == [9] * 4
  assert rp.replay(curves, [3, 2, 1, 0], {**sh, "min_resource": 1 / 9}, False) == [9, 1, 1, 1]
