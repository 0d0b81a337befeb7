#!/usr/bin/env python3
"""Do nas_tf's training-free scores rank NAS-Bench-201 cells like their trained accuracy?

``benchmarks/proxy_fidelity.py --only=zero_cost`` measures the zero-cost scores on the
paper's CIFAR-10 space against our own reference trainings, a few dozen architectures at
most. This checks the same code (``nas_tf.zero_cost`` on ``nas_tf.children.build_nb201``
networks) on the benchmark whose 15,625 cells were all trained: a uniform sample of cells,
each scored at initialisation on one batch of real CIFAR-10 training images, then Kendall
τ and Spearman ρ against the table's CIFAR-10 validation and test accuracies (12-epoch
training, the CSV in ``../shared/data/nasbench201``). Published values on this benchmark
(Abdelfattah et al., ICLR 2021, 200-epoch accuracies) are a check of our implementation,
not a target: the columns and training lengths differ.

  python benchmarks/zero_cost_nb201.py \\
      --table=../shared/data/nasbench201/nasbench201-12epoch.csv \\
      --cifar=../shared/data/cifar10-jpeg.tar.gz --num_cells=100 --threads=1
  python benchmarks/zero_cost_nb201.py --table=... --analyze     # table only

One JSON line per cell is appended to ``--output`` as it is scored: rerun to resume.
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

from nas_tf import fidelity  # pylint: disable=g-import-not-at-top
from nas_tf import results  # pylint: disable=g-import-not-at-top
from nas_tf import specs, tasks  # pylint: disable=g-import-not-at-top
from nas_tf.tasks import nasbench201  # pylint: disable=g-import-not-at-top

_TABLE = flags.DEFINE_string("table", None, "The NAS-Bench-201 CSV.", required=True)
_CIFAR = flags.DEFINE_string("cifar", None, "CIFAR-10 source for the data-dependent scores "
                             "(a directory, a .tar.gz or 'tfds').")
_N = flags.DEFINE_integer("num_cells", 100, "Cells drawn uniformly from the table.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the draw and of the initial weights.")
_BATCH = flags.DEFINE_integer("batch", 64, "Training images the data-dependent scores see.")
_THREADS = flags.DEFINE_integer("threads", 0, "TensorFlow threads (0: TensorFlow's default).")
_OUT = flags.DEFINE_string("output", str(_ROOT / "benchmarks/results/zero_cost_nb201.jsonl"),
                           "Per-cell scores (JSON lines); the summary goes beside it.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only summarise what has been scored.")


def sample_cells(table: dict, num_cells: int, seed: int) -> list[str]:
  """``num_cells`` distinct cell strings drawn uniformly, in a fixed order."""
  cells = sorted(table, key=lambda c: table[c][2])  # by benchmark index: stable
  order = np.random.default_rng(seed).permutation(len(cells))[:num_cells]
  return [cells[k] for k in order]


def _read(path: pathlib.Path) -> dict:
  return results.read_jsonl_by(path, "cell")


def score_cells(cells, path: pathlib.Path, cifar: str, batch: int, seed: int) -> None:
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf import zero_cost  # pylint: disable=g-import-not-at-top
  from nas_tf.children import nb201  # pylint: disable=g-import-not-at-top
  done = _read(path)
  data = tasks.get("cifar10").load_data(cifar)
  images, labels = next(iter(data.batched("train", batch, augment=False, shuffle=False)))
  todo = [c for c in cells if c not in done]
  start = time.monotonic()
  for n, cell in enumerate(todo):
    begun = time.monotonic()
    keras.utils.set_random_seed(seed)
    model = nb201.build_nb201(specs.NB201CellSpec.from_cell_string(cell))
    record = {"cell": cell, **zero_cost.score_model(model, images, labels)}
    keras.backend.clear_session()
    record["total_seconds"] = time.monotonic() - begun
    with open(path, "a") as f:
      f.write(json.dumps(record, allow_nan=True) + "\n")
    elapsed = time.monotonic() - start
    logging.info("%d/%d %s: synflow %.2f naswot %.1f (%.1f s; about %.0f s to go)", n + 1,
                 len(todo), cell, record["synflow"], record["naswot"],
                 record["total_seconds"], elapsed / (n + 1) * (len(todo) - n - 1))


def analyze(table_path: str, records: dict) -> dict:
  """τ and ρ of every score against each CIFAR-10 column, over the scored cells."""
  from nas_tf import zero_cost  # pylint: disable=g-import-not-at-top
  table = nasbench201.load_table(table_path, "cifar10")
  cells = [c for c in records if c in table]
  summary = {"n": len(cells), "mean_seconds": float(np.mean(
      [records[c]["total_seconds"] for c in cells])) if cells else None, "rows": []}
  print(f"\nNAS-Bench-201 CIFAR-10, {len(cells)} cells, "
        f"{summary['mean_seconds'] or 0:.1f} s per cell (build + scores)\n\n"
        "| score | against | Kendall tau | Spearman rho |\n|---|---|---|---|")
  for column, k in (("cifar10-val", 0), ("cifar10-test", 1)):
    target = [table[c][k] for c in cells]
    for score in zero_cost.SCORES:
      x = [records[c][score] if np.isfinite(records[c][score]) else -1e300 for c in cells]
      row = {"score": score, "against": column,
             "kendall_tau": fidelity.kendall_tau(x, target),
             "spearman_rho": fidelity.spearman_rho(x, target)}
      summary["rows"].append(row)
      print(f"| {score} | {column} | {row['kendall_tau']:.3f} | {row['spearman_rho']:.3f} |")
  return summary


def main(argv):
  del argv
  path = pathlib.Path(_OUT.value)
  if not _ANALYZE.value:
    if not _CIFAR.value:
      sys.exit("zero_cost_nb201: error: --cifar is required to score (or use --analyze)")
    if _THREADS.value:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
      tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = nasbench201.load_table(_TABLE.value, "cifar10")
    score_cells(sample_cells(table, _N.value, _SEED.value), path, _CIFAR.value, _BATCH.value,
                _SEED.value)
  summary = analyze(_TABLE.value, _read(path))
  path.with_suffix(".summary.json").write_text(results.dumps(summary, indent=1))


if __name__ == "__main__":
  app.run(main)
