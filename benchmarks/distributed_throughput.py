r"""Children per hour: the one-machine search versus a localhost tf.distribute cluster (§3.3).

Runs ``bin/nas_search`` on the same budget (task, children, child training) in each
configuration, one after the other, each in a fresh process and output directory:

* ``local``: today's search, children in one recycled worker process, TF's default
  threads;
* ``local-2x1``: the same with two child processes of one intra-op thread each;
* ``localhost:2``: 2 PS + 2 worker server processes (1 intra-op thread each), K
  controller replicas, children as closures scheduled by a ClusterCoordinator.

Reported per configuration: wall time of the whole command (start-up included), and
steady-state children/hour from the first to the last record of results.jsonl (start-up,
data loading and the first child excluded).

Usage:
  python benchmarks/distributed_throughput.py [--max_children=12 --num_replicas=2]
  # the task's real-data proxy children (its preset), e.g. 24 PTB children:
  python benchmarks/distributed_throughput.py --data_dir=../shared/data/ptb \
      --max_children=24 --configs=local,localhost:2 --out=benchmarks/results/parallel.json
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Task of the tiny search (testdata).")
flags.DEFINE_integer("max_children", 12, "Budget per configuration.")
flags.DEFINE_integer("children_per_step", 2, "m.")
flags.DEFINE_integer("num_replicas", 2, "K for the localhost cluster.")
flags.DEFINE_list("configs", ["local", "local-2x1", "localhost:2"], "What to compare.")
flags.DEFINE_string("data_dir", None, "Real data: children are the task's real-data preset "
                    "proxy (default: tiny children on testdata).")
flags.DEFINE_string("out", None, "Optional JSON file for the figures.")

_CHILD = {
    "ptb": ["--rnn_base=4", "--lm_units=32", "--num_steps=20", "--child_batch_size=20",
            "--max_train_examples=4000", "--max_eval_examples=1000", "--child_epochs=1"],
    "cifar10": ["--start_layers=3", "--child_epochs=2", "--child_batch_size=8"],
}
_CONFIGS = {
    "local": ["--cluster=local", "--parallel_children=1", "--intra_op_threads=0"],
    "local-2x1": ["--cluster=local", "--parallel_children=2", "--intra_op_threads=1"],
    "localhost:2": ["--cluster=localhost:2", "--num_ps=2", "--worker_threads=1"],
}
_WORKERS = {"local": 1, "local-2x1": 2, "localhost:2": 2}
_THREADS = {"local": "1 child process, TF default intra-op threads",
            "local-2x1": "2 child processes x 1 intra-op thread",
            "localhost:2": "2 ps + 2 workers x 1 intra-op thread, K={k}"}


def _run(name: str, out: str) -> dict:
  args = [sys.executable, str(ROOT / "bin" / "nas_search"), f"--task={FLAGS.task}",
          f"--output_dir={out}", f"--max_children={FLAGS.max_children}",
          f"--children_per_step={FLAGS.children_per_step}", *_CONFIGS[name]]
  if FLAGS.data_dir:
    args.append(f"--data_dir={FLAGS.data_dir}")
  else:
    args += _CHILD[FLAGS.task]
  if name.startswith("localhost"):
    args.append(f"--num_replicas={FLAGS.num_replicas}")
  start, start_epoch = time.monotonic(), time.time()
  proc = subprocess.run(args, capture_output=True, text=True, check=False)
  wall = time.monotonic() - start
  if proc.returncode:
    raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
  with open(os.path.join(out, "results.jsonl")) as f:
    records = [json.loads(line) for line in f if line.strip()]
  times = sorted(r["time"] for r in records)
  steady = (len(times) - 1) / (times[-1] - times[0]) * 3600 if len(times) > 1 else float("nan")
  train = [float(r.get("train_seconds") or 0.0) for r in records]
  # The scaling model's terms: start-up = wall time before the first child could have
  # started (first record minus its own training), per-child time = mean training (the
  # mean, not the median: children that diverge or are refused early take ~0 s).
  first = min(records, key=lambda r: r["time"])
  return {"wall_s": wall, "children": len(times), "per_hour_wall": len(times) / wall * 3600,
          "per_hour_steady": steady, "child_seconds_mean": sum(train) / len(train),
          "startup_s": first["time"] - start_epoch - float(first.get("train_seconds") or 0)}


def main(argv):
  del argv
  logging.info("CPU cores: %d; budget %d children of %s (%s), m=%d", os.cpu_count(),
               FLAGS.max_children, FLAGS.task, FLAGS.data_dir or "testdata",
               FLAGS.children_per_step)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for name in FLAGS.configs:
      r = _run(name, os.path.join(tmp, name.replace(":", "_")))
      rows.append((name, r))
      logging.info("%s done: %s", name, r)
  lines = [f"{'config':<12} {'children':>8} {'wall s':>8} {'/h (wall)':>10} "
           f"{'/h (steady)':>12}  threads"]
  for name, r in rows:
    lines.append(f"{name:<12} {r['children']:>8} {r['wall_s']:>8.1f} "
                 f"{r['per_hour_wall']:>10.0f} {r['per_hour_steady']:>12.0f}  "
                 + _THREADS[name].format(k=FLAGS.num_replicas))
  logging.info("children/hour, same budget:\n%s", "\n".join(lines))
  # The scaling model: wall(W) = start-up(W) + ceil(N / W) x per-child time(W) (+ the
  # chief's own work, which the residual shows); checked against each measured wall time.
  model = []
  for name, r in rows:
    workers = _WORKERS[name]
    predicted = r["startup_s"] + -(-r["children"] // workers) * r["child_seconds_mean"]
    model.append(f"{name:<12} W={workers}: start-up {r['startup_s']:.0f} s + "
                 f"ceil({r['children']}/{workers}) x {r['child_seconds_mean']:.1f} s = "
                 f"{predicted:.0f} s predicted, {r['wall_s']:.0f} s measured "
                 f"(residual {r['wall_s'] - predicted:+.0f} s)")
    r.update(workers=workers, predicted_wall_s=predicted)
  logging.info("scaling model:\n%s", "\n".join(model))
  if rows and FLAGS.out:
    base = dict(rows)[rows[0][0]]
    pathlib.Path(FLAGS.out).write_text(json.dumps(
        {"task": FLAGS.task, "data": FLAGS.data_dir or "testdata", "rows": dict(rows),
         "speedup_wall_vs_first": {n: r["per_hour_wall"] / base["per_hour_wall"]
                                   for n, r in rows}}, indent=1) + "\n")


if __name__ == "__main__":
  app.run(main)
