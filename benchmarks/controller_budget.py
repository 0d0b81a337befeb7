#!/usr/bin/env python3
"""How far can REINFORCE move the controller in a small budget? (m and lr for few children)

A real-data search on this machine evaluates tens of children, the paper's 12,800. What
limits the controller then is the number of Adam updates times the rate (Adam's step
hardly depends on the reward's scale), so m (children per step) and the learning rate
decide whether the policy moves at all. This benchmark measures it without training a
child: the controller of the task's space is trained by the search's own sampler on a toy
reward at the PTB reward's scale, ``1e-4 * (1 + fraction of decisions equal to 0)``
(a learnable signal whose best and worst differ 2x, as the proxy's perplexities 550-800
do), and the fraction of decisions equal to 0 is measured on 256 fresh samples before and
after ``--children`` children.

  python benchmarks/controller_budget.py --task=ptb --children=52
"""

import json
import os
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Whose search space.")
_CHILDREN = flags.DEFINE_integer("children", 52, "Budget: children per run.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per setting.")
_SETTINGS = flags.DEFINE_list("settings", ["4:5e-4", "4:0.01", "2:0.01", "1:0.01", "1:0.003",
                                           "4:0.03"], "m:lr pairs to compare.")


def _fraction_zero(sampler, tokens_seed: int) -> float:
  tokens, _ = sampler.sample(tokens_seed, 256, None)
  return float(np.mean(np.asarray(tokens) == 0))


def run(task: str, m: int, lr: float, seed: int, children: int) -> dict:
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from nas_tf.search import loop, samplers  # pylint: disable=g-import-not-at-top
  cfg = config_lib.SearchConfig(task=task, data_dir="-", output_dir="-", search="rl",
                                seed=seed, children_per_step=m,
                                controller=config_lib.ControllerConfig(learning_rate=lr))
  sampler = samplers.make_sampler(loop.make_space(cfg), cfg)
  before = _fraction_zero(sampler, 10**6)
  entropies = []
  for step in range(children // m):
    tokens, _ = sampler.sample(step, m, None)
    rewards = [1e-4 * (1.0 + float(np.mean(np.asarray(t) == 0))) for t in tokens]
    entropies.append(sampler.update(step, tokens, rewards, None)["entropy"])
  return {"task": task, "m": m, "lr": lr, "seed": seed, "children": children,
          "fraction_before": before, "fraction_after": _fraction_zero(sampler, 10**6 + 1),
          "entropy_first": entropies[0], "entropy_last": entropies[-1]}


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(1)
  rows = []
  for setting in _SETTINGS.value:
    m, lr = setting.split(":")
    runs = [run(_TASK.value, int(m), float(lr), seed, _CHILDREN.value)
            for seed in range(_SEEDS.value)]
    gain = [r["fraction_after"] - r["fraction_before"] for r in runs]
    rows.append({"m": int(m), "lr": float(lr), "runs": runs, "gain_mean": float(np.mean(gain)),
                 "gain_min": float(np.min(gain)), "gain_max": float(np.max(gain))})
    logging.info("m=%s lr=%s: rewarded fraction +%.3f (%.3f..%.3f over %d seeds)", m, lr,
                 rows[-1]["gain_mean"], rows[-1]["gain_min"], rows[-1]["gain_max"], len(runs))
  out = _ROOT / "benchmarks" / "results" / f"controller_budget_{_TASK.value}.json"
  out.write_text(json.dumps(rows, indent=1) + "\n")
  print(f"| m | controller lr | rewarded-decision fraction, change after {_CHILDREN.value} "
        f"children (mean, min..max over {_SEEDS.value} seeds) |\n|---|---|---|")
  for r in rows:
    print(f"| {r['m']} | {r['lr']:g} | {r['gain_mean']:+.3f} ({r['gain_min']:+.3f}.."
          f"{r['gain_max']:+.3f}) |")


if __name__ == "__main__":
  app.run(main)
