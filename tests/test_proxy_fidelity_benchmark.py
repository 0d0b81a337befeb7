"""benchmarks/proxy_fidelity.py: its training order (what a resumed run trains next) and
its analysis."""

import launch
import pytest

@pytest.fixture(scope="module")
def pf(load_benchmark):
  return load_benchmark("proxy_fidelity")


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


def test_shards_split_the_study_without_overlap(pf):
  archs = [(f"x{k}", k) for k in range(7)]
  shards = [pf.shard(archs, f"{i}/3") for i in range(3)]
  assert [i for i, _ in shards[0]] == ["x0", "x3", "x6"]
  assert sorted(a for s in shards for a in s) == sorted(archs)
  assert pf.shard(archs, None) == archs
  for bad in ("3/3", "a/2", "1"):
    with pytest.raises(ValueError, match="shard"):
      pf.shard(archs, bad)


def test_analysis_ranks_learners_and_ties_the_non_learners(pf, tmp_path):
  """Reference: a, b, c learn (below the unigram 687); d, e, f do not. The proxy orders
  a > b > c > e > d > f: right for the search (learners first, in order), wrong among
  the non-learners."""
  import json  # pylint: disable=g-import-not-at-top
  import math  # pylint: disable=g-import-not-at-top
  ref = {"a": 200.0, "b": 300.0, "c": 400.0, "d": 700.0, "e": 800.0, "f": 900.0}
  proxy = {"a": 400.0, "b": 500.0, "c": 550.0, "e": 600.0, "d": 650.0, "f": 750.0}

  def write(name, table):
    with open(tmp_path / name, "w") as f:
      for i, ppl in table.items():
        f.write(json.dumps({"id": i, "status": "ok", "val_perplexity": ppl,
                            "reward": 80.0 / ppl ** 2, "train_seconds": 1.0}) + "\n")
  write("reference.jsonl", ref)
  write("proxy-x.jsonl", proxy)
  entry = pf.analyze("ptb", [(i, i) for i in ref], tmp_path)["proxies"]["proxy-x"]
  assert entry["n_learners"] == 3 and entry["learners_in_proxy_top"] == 3
  assert entry["kendall_tau_learners"] == 1.0
  assert entry["kendall_tau"] == pytest.approx(13 / 15)  # one discordant pair (d, e) of 15
  # Non-learners tied: 12 concordant pairs, none discordant; tau-b = 12 / sqrt(15 * 12).
  assert entry["kendall_tau_nonlearners_tied"] == pytest.approx(12 / math.sqrt(180))


def test_retest_compares_two_proxy_runs_on_what_both_trained(pf):
  def run(table):
    return {i: {"id": i, "status": "ok", "val_accuracy": acc} for i, acc in table.items()}
  a = run({"p": 0.30, "q": 0.35, "r": 0.40, "s": 0.45})
  b = run({"p": 0.32, "q": 0.31, "r": 0.41, "t": 0.50})  # p and q swapped; s, t unshared
  (row,) = pf.retest("cifar10", {"proxy": a, "proxy-s1": b})
  assert (row["a"], row["b"], row["n"]) == ("proxy", "proxy-s1", 3)
  assert row["kendall_tau"] == pytest.approx(1 / 3)  # 2 concordant pairs, 1 discordant
  assert row["mean_abs_difference"] == pytest.approx((0.02 + 0.04 + 0.01) / 3)


def test_zero_cost_scores_are_ranked_against_the_reference_and_failures_rank_last(pf,
                                                                                  tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  ref = {"a": 0.60, "b": 0.55, "c": 0.50, "d": 0.45}
  with open(tmp_path / "reference.jsonl", "w") as f:
    for i, acc in ref.items():
      f.write(json.dumps({"id": i, "status": "ok", "val_accuracy": acc}) + "\n")
  # synflow orders like the reference; naswot is reversed except d's singular K (-inf),
  # which must rank last, not break the correlation; e is too large and is left out.
  synflow = {"a": 9.0, "b": 8.0, "c": 7.0, "d": 6.0}
  naswot = {"a": 1.0, "b": 2.0, "c": 3.0, "d": float("-inf")}
  with open(tmp_path / "zero_cost.jsonl", "w") as f:
    for i in ref:
      scores = {name: 1.0 for name in ("grad_norm", "snip", "num_params")}
      f.write(json.dumps({"id": i, "status": "ok", "synflow": synflow[i],
                          "naswot": naswot[i], "total_seconds": 2.0, **scores},
                         allow_nan=True) + "\n")
    f.write(json.dumps({"id": "e", "status": "too_large"}) + "\n")
  rows = pf.analyze_zero_cost("cifar10", [(i, i) for i in [*ref, "e"]], tmp_path, {})
  by_score = {r["score"]: r for r in rows if r["against"] == "reference"}
  assert by_score["synflow"]["kendall_tau"] == 1.0 and by_score["synflow"]["n"] == 4
  assert by_score["naswot"]["kendall_tau"] == pytest.approx(0.0)  # 3 discordant, 3 concordant
  assert by_score["synflow"]["mean_seconds"] == 2.0


def test_top_k_recall_counts_the_references_best_in_the_proxys_best(pf):
  reference = [9, 8, 7, 6, 5, 4]
  assert pf.top_k_recall([9, 8, 7, 1, 2, 3], reference, 3) == 1.0
  assert pf.top_k_recall([1, 8, 7, 9, 2, 3], reference, 3) == pytest.approx(2 / 3)
  assert pf.top_k_recall([1, 2], reference[:2], 5) is None  # fewer cells than k


def test_a_named_reference_is_analysed_beside_the_default(pf, tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  rows = {"a": (200.0, 1.0), "b": (300.0, 0.25), "c": (800.0, 0.0625)}
  with open(tmp_path / "reference-nas_train.jsonl", "w") as f:
    for i, (ppl, lr) in rows.items():
      f.write(json.dumps({"id": i, "status": "ok", "val_perplexity": ppl, "lr_used": lr,
                          "reward": 80 / ppl ** 2}) + "\n")
  with open(tmp_path / "proxy.jsonl", "w") as f:
    for i, ppl in (("a", 300.0), ("b", 250.0), ("c", 900.0)):
      f.write(json.dumps({"id": i, "status": "ok", "val_perplexity": ppl, "lr_used": 1.0,
                          "reward": 80 / ppl ** 2, "train_seconds": 1.0}) + "\n")
  summary = pf.analyze("ptb", [(i, i) for i in rows], tmp_path, "nas_train")
  entry = summary["proxies"]["proxy"]
  assert summary["reference"] == "nas_train" and entry["n_learners"] == 2
  assert {r["id"]: r["reference_lr"] for r in entry["table"]} == {"a": 1.0, "b": 0.25,
                                                                  "c": 0.0625}
  assert (tmp_path / "summary-nas_train.json").exists()


def test_the_reference_can_be_nas_trains_own_training(tmp_path):
  """Slow: one cell retrained by nas_train's code (2x16, one epoch of the PTB excerpt)."""
  import json  # pylint: disable=g-import-not-at-top
  import pathlib  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from nas_tf import specs  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parent.parent
  (tmp_path / "cells.jsonl").write_text(specs.nascell_spec().to_json() + "\n")
  done = launch.run(
      [root / "benchmarks" / "proxy_fidelity.py", "--task=ptb",
       f"--data_dir={root / 'testdata' / 'ptb'}", f"--specs={tmp_path / 'cells.jsonl'}",
       "--only=reference", "--reference_trainer=nas_train",
       '--reference={"lm_units": 16, "num_steps": 10}', f"--output_dir={tmp_path / 'out'}"],
      capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  record = json.loads((tmp_path / "out" / "reference-nas_train.jsonl").read_text())
  assert record["id"] == "spec000" and record["status"] in ("ok", "nan")
  assert record["lr_used"] is not None and record["attempts"] >= 1
  assert (tmp_path / "out" / "nas_train" / "spec000" / "metrics.json").exists()


def test_other_studies_proxies_are_ranked_against_this_reference(pf, tmp_path):
  """--compare_dirs: another study of the same architectures (same ids) brings its
  proxies and its own reference, each ranked against this study's reference."""
  import json  # pylint: disable=g-import-not-at-top

  def write(path, table):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
      for i, ppl in table.items():
        f.write(json.dumps({"id": i, "status": "ok", "val_perplexity": ppl,
                            "reward": 80.0 / ppl ** 2}) + "\n")
  ref = {"a": 200.0, "b": 300.0, "c": 400.0, "d": 500.0}
  write(tmp_path / "here" / "reference.jsonl", ref)
  write(tmp_path / "old" / "proxy-y.jsonl", {"a": 500.0, "b": 400.0, "c": 600.0, "d": 700.0})
  write(tmp_path / "old" / "reference.jsonl", {"a": 250.0, "b": 260.0, "c": 270.0, "d": 280.0})
  proxies = pf.analyze("ptb", [(i, i) for i in ref], tmp_path / "here",
                       compare_dirs=[str(tmp_path / "old")])["proxies"]
  assert set(proxies) == {"old:proxy-y", "old:reference"}
  assert proxies["old:reference"]["kendall_tau"] == 1.0
  assert proxies["old:proxy-y"]["kendall_tau"] == pytest.approx(4 / 6)  # (a, b) discordant


def test_found_cells_come_after_the_baselines_and_leave_the_sample_unchanged(pf, tmp_path):
  """--found: the best ok record of each search joins the study as found-NAME, trained
  next on a resume; the uniformly sampled cells stay the same architectures."""
  import json  # pylint: disable=g-import-not-at-top
  from nas_tf import specs  # pylint: disable=g-import-not-at-top
  run = tmp_path / "run"
  run.mkdir()
  good, poor = specs.lstm_like_base2_spec(), specs.nascell_spec()
  with open(run / "results.jsonl", "w") as f:
    for step, (spec, reward, status) in enumerate([(poor, 1e-4, "ok"), (good, 3e-4, "ok"),
                                                   (poor, 9e-4, "nan")]):
      f.write(json.dumps({"step": step, "index": 0, "spec": spec.to_dict(), "reward": reward,
                          "status": status, "tokens": [step], "val_metric": 1.0}) + "\n")
  plain = pf.architectures("ptb", 3, 0, None)
  found = pf.architectures("ptb", 3, 0, None, [f"mine:{run}"])
  assert [i for i, _ in found] == ["lstm", "nascell", "found-mine", "rand000", "rand001",
                                   "rand002"]
  assert found[2][1].describe() == good.describe()
  assert [a.describe() for _, a in found[3:]] == [a.describe() for _, a in plain[2:]]


def test_headline_names_the_preset_and_holds_each_ranking_to_the_goal(pf, capsys):
  def proxy(n, tau, cpu, wall=300.0):
    return {"n": n, "kendall_tau": tau, "mean_proxy_cpu_seconds": cpu,
            "mean_proxy_seconds": wall}
  summary = {"task": "cifar10",
             "proxies": {"proxy": proxy(20, 0.29, None), "proxy-fast": proxy(20, 0.62, 45.0),
                         "proxy-slow": proxy(20, 0.7, 90.0), "proxy-tiny": proxy(3, 0.9, 5.0),
                         "other:proxy": proxy(20, 0.99, 1.0)},
             "zero_cost": [{"scores": "zero_cost", "score": "synflow", "against": "reference",
                            "n": 20, "kendall_tau": 0.64, "mean_seconds": 4.0},
                           {"scores": "zero_cost", "score": "synflow", "against": "proxy",
                            "n": 20, "kendall_tau": 0.1, "mean_seconds": 4.0}]}
  rows = pf.headline(summary, goal_tau=0.6, goal_seconds=60.0)
  # Best tau first; a 3-architecture ranking last whatever its tau; another study's
  # proxies and scores against a proxy are not rankings against this reference.
  assert [r["ranking"] for r in rows] == ["proxy-slow", "zero_cost:synflow", "proxy-fast",
                                          "the search preset (proxy)", "proxy-tiny"]
  assert [r["meets_goal"] for r in rows] == [False, True, True, False, False]
  # The preset has no CPU seconds on file: its wall seconds are used, and marked so.
  assert rows[3]["seconds"] == 300.0 and not rows[3]["cpu"]
  assert "| the search preset (proxy) | 20 | 0.290 | 300 wall | no |" in capsys.readouterr().out
