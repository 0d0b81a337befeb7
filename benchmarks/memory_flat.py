#!/usr/bin/env python3
"""Memory across many sequential children: in-process training vs recycled workers.

Trains ``--num_children`` random children one after another (tiny PTB children on the
bundled testdata by default, so it measures framework overhead, not data) with
``InlineEvaluator`` and with ``ProcessEvaluator``, and samples the resident memory of the
whole process tree (search process + workers) after every child. Reports start / end /
peak RSS and the growth per 100 children fitted by least squares, side by side.

  python benchmarks/memory_flat.py --num_children=100
"""

import json
import os
import pathlib
import sys
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf import evaluation, search_space  # pylint: disable=g-import-not-at-top
import process_tree  # pylint: disable=g-import-not-at-top  (benchmarks/, the script's dir)

_N = flags.DEFINE_integer("num_children", 100, "Children per mode.")
_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Child type.")
_PER_PROCESS = flags.DEFINE_integer("children_per_process", 25, "Worker recycling period.")
_MODES = flags.DEFINE_list("modes", ["inline", "process"], "Evaluators to compare.")


def tree_rss_mb() -> float:
  return process_tree.rss_mb(process_tree.tree())


def measure(mode: str, task: str, n: int) -> dict:
  data_dir = str(_ROOT / "testdata" / ("ptb" if task == "ptb" else "cifar10/png"))
  child = config_lib.ChildTrainingConfig(epochs=1, batch_size=8, optimizer="adam",
                                         learning_rate=3e-3, lm_units=16, num_steps=10)
  args = dict(task=task, data_dir=data_dir, child_config=child, seed=0,
              validation_size=10 if task == "cifar10" else None)
  evaluator = (evaluation.InlineEvaluator(**args) if mode == "inline" else
               evaluation.ProcessEvaluator(**args,
                                           children_per_process=_PER_PROCESS.value))
  space = (search_space.RNNCellSearchSpace() if task == "ptb"
           else search_space.CNNSearchSpace(num_layers=3))
  rng = np.random.default_rng(0)
  rss, start = [], time.monotonic()
  for i in range(n):
    result = evaluator.evaluate([space.sample(rng)])[0]
    rss.append(tree_rss_mb())
    if i % 10 == 0:
      logging.info("%s child %d/%d: %s, tree RSS %.0f MB", mode, i + 1, n,
                   result["status"], rss[-1])
  evaluator.close()
  x = np.arange(1, n + 1)
  # Growth over the second half only: the first children warm up caches and pools.
  half = slice(n // 2, None)
  slope = float(np.polyfit(x[half], np.asarray(rss)[half], 1)[0]) if n >= 4 else float("nan")
  return {"mode": mode, "children": n, "rss_mb": rss, "start_mb": rss[0], "end_mb": rss[-1],
          "peak_mb": max(rss), "growth_mb_per_100_children_second_half": 100 * slope,
          "seconds": time.monotonic() - start}


def main(argv):
  del argv
  results = [measure(mode, _TASK.value, _N.value) for mode in _MODES.value]
  out = _ROOT / "benchmarks" / "results" / f"memory_flat_{_TASK.value}.json"
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  print("\n| evaluator | children | first child RSS | last | peak | growth / 100 children "
        "(2nd half) | seconds |\n|---|---|---|---|---|---|---|")
  for r in results:
    print(f"| {r['mode']} | {r['children']} | {r['start_mb']:.0f} MB | {r['end_mb']:.0f} MB | "
          f"{r['peak_mb']:.0f} MB | {r['growth_mb_per_100_children_second_half']:+.0f} MB | "
          f"{r['seconds']:.0f} |")


if __name__ == "__main__":
  app.run(main)
