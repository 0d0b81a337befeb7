#!/usr/bin/env python3
"""Which pruner, if any, suits a search space: replayed on learning curves already paid for.

A live comparison of pruners (``benchmarks/pruning.py``) costs a full search per pruner
and seed, and says how one setting did on one draw of trials. When unpruned runs have
recorded each trial's validation value after every epoch (``<metric>_history`` in the
trial's metrics, as ``KerasSearch`` and the CIFAR-10 task do) or at every rung (a search
with ``pruner.kind=observe``: one-epoch PTB children, at windows), every other schedule can
be replayed on those curves instead, at no training cost: the very
:class:`nas_tf.search.pruners.Pruner` of the library plans each trial's rungs from the
trials before it, and the trial stops at the first rung whose bar its recorded value
misses. For random search this is exact (a pruned random search samples the same trials,
and trains them identically up to where it stops them, as the live arms show to the last
digit); for a learning sampler it is what the pruner does to that sampler's trials, not
what the sampler would have done next.

Trials of the given runs are pooled (distinct architectures only) and the search is
replayed on many random orders and subsets of ``--trials`` of them, so that the figures
are distributions over draws, not one draw:

* speed-up: trials per CPU-hour against training every trial to the end, with a trial's
  cost ``fixed + (1 - fixed) * epochs / E`` of its full cost; ``--calibrate`` measures
  ``fixed`` (building, tracing, the first epoch's slower steps) from live pruned runs
  against their unpruned twins, otherwise it is 0 (an upper bound);
* top-5 kept: how many of the draw's 5 best trials (by their full value) the pruner let
  train to the end; best kept: whether the best one was among them;
* regret: the best full value among the trials it trained to the end, against the draw's
  best.

  python benchmarks/pruning_replay.py --runs=RUN_DIR,... --trials=12 \
      --calibrate=PRUNED_DIR:UNPRUNED_DIR,... --name=pruning_replay_cifar10_user_space
"""

import itertools
import json
import math
import os
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf.config import PrunerConfig  # pylint: disable=g-import-not-at-top
from nas_tf.search import pruners  # pylint: disable=g-import-not-at-top
from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top
from nas_tf.training.rungs import RungPlan  # pylint: disable=g-import-not-at-top

_RUNS = flags.DEFINE_list("runs", [], "Unpruned run directories whose trials recorded "
                          "their validation value after every epoch or at every rung "
                          "(pruner.kind=observe), or a side of a proxy_fidelity.py "
                          "study (its per-architecture .jsonl).")
_TRIALS = flags.DEFINE_list("trials", ["12"], "Trials per replayed search (each a random "
                            "subset of the pool, in random order); several sizes allowed.")
_DRAWS = flags.DEFINE_integer("draws", 2000, "Replayed searches per setting and size.")
_CALIBRATE = flags.DEFINE_list("calibrate", [], "PRUNED_DIR:UNPRUNED_DIR pairs of live "
                               "random searches with the same seed, to measure a trial's "
                               "fixed cost.")
_NAME = flags.DEFINE_string("name", "pruning_replay", "Stem of benchmarks/results/<name>.json.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the draws.")
_TOP = 5

# The settings replayed: the library's pruners over the first rung, eta and warm-up.
SETTINGS = (
    [("none", {})]
    + [(f"successive_halving r{r:.3g} eta{eta} w{w}",
        {"kind": "successive_halving", "min_resource": r, "reduction_factor": eta,
         "warmup_children": w})
       for r, eta, w in itertools.product((1 / 9, 1 / 3, 1 / 2), (2, 3), (3, 5))]
    + [(f"median r{r:.3g} w{w}", {"kind": "median", "min_resource": r,
                                  "reduction_factor": 3, "warmup_children": w})
       for r, w in itertools.product((1 / 9, 1 / 3, 1 / 2), (3, 5))]
    + [(f"hyperband r{r:.3g} eta3 w3", {"kind": "hyperband", "min_resource": r,
                                        "reduction_factor": 3, "warmup_children": 3})
       for r in (1 / 9, 1 / 3)])


def _records(run_dir):
  return ResultsLog(os.path.join(run_dir, "results.jsonl")).records


def rung_curve(rungs, final, max_slots=100):
  """A run with ``pruner.kind=observe`` records values at rungs, not epochs (PTB children
  validate at windows): as a curve of ``S`` slots, the smallest ``S`` that puts every
  rung on a whole slot, the final value in the last and NaN where nothing was measured
  (a setting that needs such a slot is not replayed, see :func:`replayable`)."""
  fractions = [float(r) for r, _ in rungs]
  slots = next((n for n in range(2, max_slots + 1)
                if all(abs(f * n - round(f * n)) < 1e-6 for f in fractions)), None)
  if slots is None:
    return None
  curve = [math.nan] * slots
  for fraction, value in rungs:
    curve[round(float(fraction) * slots) - 1] = math.nan if value is None else float(value)
  curve[-1] = float(final)
  return curve


def replayable(curves: np.ndarray, settings: dict) -> bool:
  """Whether every rung ``settings`` would measure falls on a slot some trial recorded."""
  if not settings or settings.get("kind", "none") == "none":
    return True
  measured = np.isfinite(curves).any(axis=0)
  # The whole ladder: a Hyperband bracket's plan holds only the rungs from its own on.
  rungs = pruners.ladder(PrunerConfig(**settings))
  ladder = RungPlan(resources=tuple(rungs), bounds=(None,) * len(rungs))
  return all(measured[e - 1] for e in ladder.at_steps(curves.shape[1]) if e > 0)


def _trials(source):
  """``(key, history, final value, cost, higher_is_better)`` of every trial that trained
  to the end in ``source``: a search directory, or the per-architecture JSONL of
  ``benchmarks/proxy_fidelity.py`` (one side of a fidelity study)."""
  if os.path.isfile(source):
    for line in pathlib.Path(source).read_text().splitlines():
      r = json.loads(line)
      if r.get("status") == "ok" and r.get("val_accuracy_history"):
        yield (r["id"], r["val_accuracy_history"], r["val_accuracy"],
               r.get("train_cpu_seconds") or r.get("train_seconds"), True)
    return
  for r in _records(source):
    metrics = r.get("metrics") or {}
    # KerasSearch names its metric; the built-in tasks' children record theirs.
    scored = metrics.get("scored_on") or next(
        ({"metric": m, "higher_is_better": m == "val_accuracy"}
         for m in ("val_perplexity", "val_accuracy") if m in metrics), None)
    if r.get("status") != "ok" or not scored or r.get("pruned_at") is not None:
      continue
    history = metrics.get(f"{scored['metric']}_history")
    if (not history or len(history) == 1) and metrics.get("rungs"):
      # A one-epoch child (the PTB proxy) measured within its epoch, at windows.
      history = rung_curve(metrics["rungs"], r["val_metric"])
    yield (json.dumps(r["spec"], sort_keys=True), history, r["val_metric"],
           metrics.get("train_cpu_seconds") or r.get("train_seconds"),
           scored["higher_is_better"])


def load_curves(sources) -> tuple:
  """``(curves, finals, costs, higher_is_better)``: each distinct architecture's
  per-epoch validation values (only trials that trained every epoch), the value it was
  ranked by (its reward's metric: the last epoch's, or the best of the last five for the
  paper's CIFAR-10 reward) and its CPU seconds."""
  curves, finals, costs, seen, direction = [], [], [], set(), None
  for source in sources:
    for key, history, final, cost, higher in _trials(source):
      if not history or key in seen:
        continue
      if curves and len(history) != len(curves[0]):
        continue  # a trial cut short some other way (a failure after some epochs)
      seen.add(key)
      direction = higher
      curves.append([float(v) for v in history])
      finals.append(float(final))
      costs.append(cost)
  if not curves:
    raise ValueError(f"no trial with a full per-epoch history in {sources}: replay needs "
                     "unpruned runs whose metrics hold '<metric>_history'")
  return np.array(curves), np.array(finals), np.array(costs, float), bool(direction)


def fixed_fraction(pairs) -> float:
  """A trial's fixed cost as a share of its full cost, from live pruned random runs
  against their unpruned twins (the same trials): per stopped trial, the cost line
  through (k epochs, its cost) and (E epochs, its twin's cost) meets 0 epochs at the
  fixed cost. The median over stopped trials; 0 without pairs."""
  shares = []
  for pair in pairs:
    pruned_dir, full_dir = pair.split(":")
    for p, f in zip(_records(pruned_dir), _records(full_dir)):
      pm, fm = p.get("metrics") or {}, f.get("metrics") or {}
      if p.get("tokens") != f.get("tokens") or p.get("pruned_at") is None:
        continue
      metric = (fm.get("scored_on") or {}).get("metric", "val_accuracy")
      k = len(pm.get(f"{metric}_history") or [])
      total = len(fm.get(f"{metric}_history") or [])
      c_k, c_full = pm.get("train_cpu_seconds"), fm.get("train_cpu_seconds")
      if not (c_k and c_full and 0 < k < total):
        continue
      per_epoch = (c_full - c_k) / (total - k)
      shares.append((c_k - k * per_epoch) / c_full)
  return float(np.clip(np.median(shares), 0.0, 1.0)) if shares else 0.0


def replay(curves: np.ndarray, order, settings: dict, higher_is_better: bool,
           seed: int = 0) -> list:
  """The epochs each trial of ``order`` trains under the pruner ``settings`` (``{}`` or
  kind 'none': all of them), deciding exactly as a live search with that pruner."""
  epochs = curves.shape[1]
  if not settings or settings.get("kind", "none") == "none":
    return [epochs] * len(order)
  pruner = pruners.make(PrunerConfig(**settings), higher_is_better, seed)
  records, trained = [], []
  for number, trial in enumerate(order):
    plan = pruner.plan(records, number)
    reached, stop = {}, epochs
    for rung, epoch in enumerate(plan.at_steps(epochs)):
      if epoch < 0:
        continue  # the rung falls on the last epoch or repeats one: not measured
      value = float(curves[trial, epoch - 1])
      reached[pruners._key(plan.resources[rung])] = value  # pylint: disable=protected-access
      if not plan.continues(rung, value):
        stop = epoch
        break
    records.append((plan.bracket, reached))
    trained.append(stop)
  return trained


def evaluate(curves, finals, costs, higher_is_better, settings, trials, draws, fixed,
             seed=0):
  """The setting's figures over ``draws`` random searches of ``trials`` trials."""
  rng = np.random.default_rng(seed)
  epochs = curves.shape[1]
  sign = -1.0 if higher_is_better else 1.0  # sign * value: lower is better
  final = sign * finals
  speedups, kept, best_kept, regret = [], [], [], []
  for draw in range(draws):
    order = rng.permutation(len(curves))[:trials]
    trained = np.array(replay(curves, order, settings, higher_is_better, seed=draw))
    full_cost = costs[order]
    spent = full_cost * (fixed + (1 - fixed) * trained / epochs)
    speedups.append(full_cost.sum() / spent.sum())
    ranked = order[np.argsort(final[order], kind="stable")]
    finished = set(order[trained == epochs].tolist())
    kept.append(sum(t in finished for t in ranked[:_TOP]))
    best_kept.append(ranked[0] in finished)
    found = min(final[t] for t in finished) if finished else math.inf
    regret.append(float(found - final[ranked[0]]))
  regret = np.array(regret)
  return {"trials": trials, "draws": draws, "speedup_mean": float(np.mean(speedups)),
          "speedup_p10_p90": [float(np.percentile(speedups, 10)),
                              float(np.percentile(speedups, 90))],
          "top5_kept_mean": float(np.mean(kept)),
          "top5_all_kept_share": float(np.mean(np.array(kept) == min(_TOP, trials))),
          "best_kept_share": float(np.mean(best_kept)),
          "regret_median": float(np.median(regret)),
          "regret_mean_finite": float(np.mean(regret[np.isfinite(regret)]))}


def main(argv):
  del argv
  curves, finals, costs, higher = load_curves(_RUNS.value)
  fixed = fixed_fraction(_CALIBRATE.value)
  logging.info("%d distinct trials of %d epochs; fixed cost %.2f of a full trial",
               len(curves), curves.shape[1], fixed)
  rows = []
  for trials in (int(t) for t in _TRIALS.value):
    for name, settings in SETTINGS:
      if not replayable(curves, settings):
        logging.info("%s: its rungs were not all measured; not replayed", name)
        continue
      row = {"setting": name, **settings,
             **evaluate(curves, finals, costs, higher, settings, min(trials, len(curves)),
                        _DRAWS.value, fixed, _SEED.value)}
      rows.append(row)
  out = {"runs": [os.path.relpath(r, _ROOT) for r in _RUNS.value],
         "calibrate": _CALIBRATE.value, "pool": len(curves), "epochs": curves.shape[1],
         "fixed_cost_fraction": fixed, "rows": rows}
  path = _ROOT / "benchmarks" / "results" / f"{_NAME.value}.json"
  path.write_text(json.dumps(out, indent=1) + "\n")
  print(f"{len(curves)} distinct trials of {curves.shape[1]} epochs; a trial's fixed cost "
        f"{fixed:.2f} of its full cost\n")
  print("| trials | setting | speed-up (p10-p90) | top 5 kept (all 5 kept) | best kept "
        "| median regret |\n|---|---|---|---|---|---|")
  for r in rows:
    lo, hi = r["speedup_p10_p90"]
    print(f"| {r['trials']} | {r['setting']} | {r['speedup_mean']:.2f}x ({lo:.2f}-{hi:.2f}) "
          f"| {r['top5_kept_mean']:.2f} ({r['top5_all_kept_share']:.0%}) "
          f"| {r['best_kept_share']:.0%} | {r['regret_median']:.4g} |")


if __name__ == "__main__":
  app.run(main)
