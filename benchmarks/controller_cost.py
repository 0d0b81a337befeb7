#!/usr/bin/env python3
"""What the controller costs a search: one-off tracing, the first update, a steady step.

Drives the search's REINFORCE sampler (m = 1, as the real-data presets) for
``--steps`` steps on a task's space, one thread, and reports: the first sample (tracing
the sampling graph and its first run), the background warm-up of the update graph
(tracing plus TensorFlow's first-run optimisation), the first update once the warm-up is
done (what remains on the search's critical path), and the mean sample + update of the
later steps. In a search the warm-up overlaps the first child's training.

  python benchmarks/controller_cost.py --task=ptb
"""

import json
import os
import pathlib
import sys
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10", "nasbench201"], "Whose space.")
_STEPS = flags.DEFINE_integer("steps", 20, "Steady-state steps timed after the first.")


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from nas_tf.search import loop, samplers  # pylint: disable=g-import-not-at-top
  cfg = config_lib.SearchConfig(task=_TASK.value, data_dir="-", output_dir="-", search="rl")
  sampler = samplers.make_sampler(loop.make_space(cfg), cfg)
  depth = cfg.depth.start if _TASK.value == "cifar10" else None
  t0 = time.monotonic()
  tokens, _ = sampler.sample(0, 1, depth)
  sampler.expect_update(depth, 1)  # as the loop does when the step's children start
  t1 = time.monotonic()
  sampler._warmups[depth, 1].join()  # pylint: disable=protected-access
  t2 = time.monotonic()
  sampler.update(0, tokens, [1e-4], depth)
  t3 = time.monotonic()
  for step in range(1, _STEPS.value + 1):
    tokens, _ = sampler.sample(step, 1, depth)
    sampler.expect_update(depth, 1)
    sampler.update(step, tokens, [1e-4 * (1 + step % 3)], depth)
  t4 = time.monotonic()
  out = {"task": _TASK.value, "first_sample_s": t1 - t0, "update_warmup_s": t2 - t1,
         "first_update_after_warmup_s": t3 - t2,
         "steady_step_ms": (t4 - t3) / _STEPS.value * 1000}
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  app.run(main)
