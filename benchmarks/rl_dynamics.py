"""What REINFORCE's controller does over a search: entropy, advantages, sample distances.

Reads finished search directories (``steps.jsonl`` and ``results.jsonl``, as
``bin/nas_search`` writes them) and reports, per run and per window of steps:

* the policy's entropy (the controller's own per-sample estimate, ``controller/entropy``)
  against the space's maximum, ``sum(log(choices))``, and the steps a linear trend would
  need to halve it;
* the advantage ``R - b`` of each update (``b`` the EMA baseline before it; m = 1): its
  sign and its size against the reward;
* how far successive children are apart (decisions that differ) and how concentrated the
  choices are (the share of each decision's most frequent value), next to what uniform
  sampling gives;
* the share of children that fail (reward 0: degenerate, diverged, at the unigram model).

Runs of other strategies (random, evolution, BO) give the same distance and
concentration figures without a policy: the reference for "the controller has moved".
Paper §3.2 (REINFORCE with a baseline); the question is issue-level: why, on the PTB
space's 34 decisions, 150 children leave the controller level with random search.

  python benchmarks/rl_dynamics.py --runs=benchmarks/results/runs/init025/ptb-rl-seed1,...
"""

import json
import math
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
_RUNS = flags.DEFINE_list("runs", None, "Search directories (results.jsonl, steps.jsonl).")
_WINDOW = flags.DEFINE_integer("window", 50, "Steps per window of the report.")
_OUT = flags.DEFINE_string("output", str(_ROOT / "benchmarks" / "results" /
                                         "rl_dynamics_ptb.json"), "Where the JSON goes.")


def read_run(directory: pathlib.Path) -> dict:
  """``{"records", "steps", "choices"}`` of a search directory, records in step order."""
  records = [json.loads(l) for l in (directory / "results.jsonl").read_text().splitlines()
             if l.strip()]
  records.sort(key=lambda r: (r["step"], r["index"]))
  steps_path = directory / "steps.jsonl"
  steps = ([json.loads(l) for l in steps_path.read_text().splitlines() if l.strip()]
           if steps_path.exists() else [])
  config = json.loads((directory / "config.json").read_text())
  return {"records": records, "steps": steps, "search": config["search"]}


def hamming(a, b) -> int:
  """Decisions that differ between two token sequences (extra length counts)."""
  n = min(len(a), len(b))
  return int(sum(x != y for x, y in zip(a[:n], b[:n])) + abs(len(a) - len(b)))


def modal_share(tokens: list[list[int]]) -> float:
  """Mean over decisions of the most frequent value's share among ``tokens``."""
  matrix = np.asarray(tokens)
  shares = []
  for column in matrix.T:
    _, counts = np.unique(column, return_counts=True)
    shares.append(counts.max() / len(column))
  return float(np.mean(shares))


def advantages(rewards: list[float], baselines_after: list[float]) -> np.ndarray:
  """``R_t - b_{t-1}`` for m = 1: ``b`` before step t is the value logged after t - 1.

  The first update's baseline is its own reward (REINFORCE's first batch is centred).
  """
  before = [rewards[0]] + list(baselines_after[:-1])
  return np.asarray(rewards, dtype=float) - np.asarray(before, dtype=float)


def halving_steps(entropy: list[float], maximum: float) -> float:
  """Steps a straight-line fit of the entropy curve needs to fall to ``maximum / 2``."""
  if len(entropy) < 2:
    return math.inf
  slope = float(np.polyfit(np.arange(len(entropy)), entropy, 1)[0])
  if slope >= 0:
    return math.inf
  return (maximum / 2 - entropy[0]) / slope


def summarize(run: dict, window: int, choices: list[int]) -> dict:
  """Per-window figures of one run (see the module docstring)."""
  records = run["records"]
  tokens = [list(r["tokens"]) for r in records]
  rewards = [float(r["reward"]) for r in records]
  out = {"search": run["search"], "children": len(records), "windows": []}
  if run["steps"] and run["search"] == "rl":
    entropy = [float(s["controller/entropy"]) for s in run["steps"]]
    base = [float(s["controller/baseline"]) for s in run["steps"]]
    maximum = float(sum(math.log(c) for c in choices))
    out.update(max_entropy=maximum, entropy_first=entropy[0], entropy_last=entropy[-1],
               halving_steps=halving_steps(entropy, maximum))
    adv = advantages(rewards, base)
  else:
    entropy, adv = None, None
  for start in range(0, len(records), window):
    sl = slice(start, min(start + window, len(records)))
    toks, rew = tokens[sl], rewards[sl]
    dist = [hamming(a, b) for a, b in zip(toks, toks[1:])]
    row = {"from": start, "to": sl.stop, "failed": float(np.mean([r == 0 for r in rew])),
           "mean_distance": float(np.mean(dist)) if dist else None,
           "modal_share": modal_share(toks), "best_reward": float(max(rew))}
    if entropy is not None:
      row["entropy"] = float(np.mean(entropy[sl]))
      a, r = adv[sl], np.asarray(rew)
      ok = r > 0
      row["positive_advantage_share_ok"] = float(np.mean(a[ok] > 0)) if ok.any() else None
      row["advantage_over_reward_ok"] = (float(np.mean(np.abs(a[ok]) / r[ok]))
                                         if ok.any() else None)
    out["windows"].append(row)
  return out


def uniform_reference(choices: list[int], n: int, seed: int = 0) -> dict:
  """Distance and concentration of ``n`` uniform samples (what 'not moved' looks like)."""
  rng = np.random.default_rng(seed)
  toks = [[int(rng.integers(c)) for c in choices] for _ in range(n)]
  return {"mean_distance": float(np.mean([hamming(a, b) for a, b in zip(toks, toks[1:])])),
          "modal_share": modal_share(toks)}


def choices_of(directory: pathlib.Path) -> list[int]:
  """Choices per decision of the run's search space (from its config.json)."""
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from nas_tf.search import loop  # pylint: disable=g-import-not-at-top
  from nas_tf.search.samplers import base  # pylint: disable=g-import-not-at-top
  config = config_lib.SearchConfig.from_dict(
      json.loads((directory / "config.json").read_text()))
  return base.slot_sizes(loop.make_space(config))


def main(argv):
  del argv
  runs = {p: read_run(pathlib.Path(p)) for p in _RUNS.value}
  choices = choices_of(pathlib.Path(_RUNS.value[0]))
  report = {"choices": choices,
            "uniform": uniform_reference(choices, _WINDOW.value),
            "runs": {p: summarize(r, _WINDOW.value, choices) for p, r in runs.items()}}
  pathlib.Path(_OUT.value).write_text(json.dumps(report, indent=1) + "\n")
  uni = report["uniform"]
  logging.info("%d decisions, max entropy %.2f nats; uniform samples: distance %.1f, "
               "modal share %.2f", len(choices), sum(math.log(c) for c in choices),
               uni["mean_distance"], uni["modal_share"])
  for path, s in report["runs"].items():
    name = pathlib.Path(path).name
    for w in s["windows"]:
      extra = ""
      if "entropy" in w:
        extra = (f" entropy {w['entropy']:.2f}  adv>0 (ok) {w['positive_advantage_share_ok']}"
                 f"  |adv|/R {w['advantage_over_reward_ok']}")
      logging.info("%-22s %3d-%3d failed %.2f distance %.1f modal %.2f best %.3g%s", name,
                   w["from"], w["to"], w["failed"], w["mean_distance"] or 0,
                   w["modal_share"], w["best_reward"], extra)
    if "halving_steps" in s:
      logging.info("%-22s entropy %.2f -> %.2f of max %.2f; a straight line halves it "
                   "after %.0f steps", name, s["entropy_first"], s["entropy_last"],
                   s["max_entropy"], s["halving_steps"])
  logging.info("Wrote %s", _OUT.value)


if __name__ == "__main__":
  flags.mark_flag_as_required("runs")
  app.run(main)
  sys.exit(0)
