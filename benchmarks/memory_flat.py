#!/usr/bin/env python3
"""Memory across many sequential children: in-process, recycled workers, a cluster.

Trains ``--num_children`` random children one after another (tiny PTB children on the
bundled testdata by default, so it measures framework overhead, not data) with
``InlineEvaluator`` and with ``ProcessEvaluator``, and samples the resident memory of the
whole process tree (search process + workers) after every child. Reports start / end /
peak RSS and the growth per 100 children fitted by least squares, side by side.

Mode ``zero_cost`` scores ``--num_children`` random CIFAR-10 children at initialisation
(``ZeroCostEvaluator``, synflow; no training) in this process, as ``--evaluation=
zero_cost`` does beside the controller, releasing Keras' caches every
``--release_every`` children: memory should be a sawtooth whose peaks stay flat.

Mode ``cluster`` runs ``bin/nas_search --cluster=localhost:2`` (a chief, 2 PS and 2
worker processes, children as ``ClusterCoordinator`` closures; issue 15 goal 4) and
samples the chief and the other processes apart each time a child is logged. Mode
``keras_cluster`` does the same for ``KerasSearch(cluster="localhost:2")``: a user's
conditional ``build_model(hp)`` (1-3 dense blocks), each trial's model built under the
cluster's strategy and trained by closures on the workers.

  python benchmarks/memory_flat.py --num_children=100
  python benchmarks/memory_flat.py --num_children=200 --modes=cluster
  python benchmarks/memory_flat.py --num_children=450 --modes=zero_cost --task=cifar10
  python benchmarks/memory_flat.py --num_children=200 --modes=keras_cluster \
      --out=benchmarks/results/memory_flat_keras_cluster.json
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf import search_space  # pylint: disable=g-import-not-at-top
from nas_tf import tasks  # pylint: disable=g-import-not-at-top
from nas_tf.search.evaluators import local as evaluation  # pylint: disable=g-import-not-at-top
import process_tree  # pylint: disable=g-import-not-at-top  (benchmarks/, the script's dir)

_N = flags.DEFINE_integer("num_children", 100, "Children per mode.")
_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Child type.")
_PER_PROCESS = flags.DEFINE_integer("children_per_process", 25, "Worker recycling period.")
_MODES = flags.DEFINE_list("modes", ["inline", "process"], "Evaluators to compare: inline, "
                           "process, cluster (a localhost:2 tf.distribute search), "
                           "keras_cluster (KerasSearch trials on a localhost:2 cluster), "
                           "zero_cost (children scored untrained; --task=cifar10).")
_RELEASE = flags.DEFINE_integer("release_every", 200, "zero_cost mode: children between "
                                "releases of Keras' caches (ZeroCostConfig.release_every).")
_OUT = flags.DEFINE_string("out", None, "JSON file (default "
                           "benchmarks/results/memory_flat_TASK.json).")


def tree_rss_mb() -> float:
  return process_tree.rss_mb(process_tree.tree())


def measure(mode: str, task: str, n: int) -> dict:
  data_dir = str(_ROOT / "testdata" / ("ptb" if task == "ptb" else "cifar10/png"))
  child = config_lib.ChildTrainingConfig(epochs=1, batch_size=8, optimizer="adam",
                                         learning_rate=3e-3, lm_units=16, num_steps=10)
  args = dict(task=tasks.get(task), data_dir=data_dir, child_config=child, seed=0,
              validation_size=10 if task == "cifar10" else None)
  if mode == "zero_cost":
    if task != "cifar10":
      raise app.UsageError("--modes=zero_cost scores conv networks: use --task=cifar10")
    from nas_tf import zero_cost  # pylint: disable=g-import-not-at-top
    evaluator = zero_cost.ZeroCostEvaluator(
        config_lib.ZeroCostConfig(score="synflow", release_every=_RELEASE.value), child,
        load_data=None)
  elif mode == "inline":
    evaluator = evaluation.InlineEvaluator(**args)
  else:
    evaluator = evaluation.ProcessEvaluator(**args, children_per_process=_PER_PROCESS.value)
  space = (search_space.RNNCellSearchSpace() if task == "ptb"
           # zero_cost: the default space at the real-data preset's depth, as searched.
           else search_space.CNNSearchSpace(num_layers=6 if mode == "zero_cost" else 3))
  rng = np.random.default_rng(0)
  rss, start = [], time.monotonic()
  every = 10 if mode != "zero_cost" else 50
  for i in range(n):
    result = evaluator.evaluate([space.sample(rng)])[0]
    rss.append(tree_rss_mb())
    if i % every == 0:
      logging.info("%s child %d/%d: %s, tree RSS %.0f MB", mode, i + 1, n,
                   result["status"], rss[-1])
  evaluator.close()
  return {"mode": mode, "children": n, "rss_mb": rss, "start_mb": rss[0], "end_mb": rss[-1],
          "peak_mb": max(rss), "growth_mb_per_100_children_second_half": _growth(rss),
          "peaks_between_releases_mb": (_release_peaks(rss, _RELEASE.value)
                                        if mode == "zero_cost" else None),
          "seconds": time.monotonic() - start}


def _release_peaks(rss, every: int) -> list[float]:
  """The highest RSS in each period between two cache releases (children 1..every, ...):
  with periodic releases memory is a sawtooth, and flat means these peaks do not grow."""
  return [max(rss[i:i + every]) for i in range(0, len(rss), every)]


def _growth(rss, children=None) -> float:
  """MB per 100 children over the second half of the samples (the first children warm
  caches up). ``children``: the number of children done at each sample (default: one
  sample per child; the cluster samples when its count moves, often by 2 or more)."""
  n = len(rss)
  if n < 4:
    return float("nan")
  x = np.arange(1, n + 1) if children is None else np.asarray(children, dtype=float)
  return 100 * float(np.polyfit(x[n // 2:], np.asarray(rss)[n // 2:], 1)[0])


# KerasSearch on a localhost:2 cluster, as a user writes it (argv: output dir, trials).
_KERAS_CLUSTER_SEARCH = """
import sys
import keras, numpy as np
from nas_tf.hypermodel import KerasSearch

def build(hp):
  model = keras.Sequential([keras.Input((16,))])
  for i in range(hp.Int("blocks", 1, 3)):
    model.add(keras.layers.Dense(hp.Choice(f"units_{i}", [16, 32, 64]),
                                 activation=hp.Choice(f"act_{i}", ["relu", "tanh"])))
  model.add(keras.layers.Dense(4))
  model.compile(keras.optimizers.Adam(hp.Choice("lr", [1e-3, 3e-3])),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model

rng = np.random.default_rng(0)
x = rng.normal(size=(600, 16)).astype("float32")
y = (x[:, :4].argmax(axis=1)).astype("int32")
KerasSearch(build, search="rl", max_trials=int(sys.argv[2]), output_dir=sys.argv[1],
            cluster="localhost:2").search(x[:400], y[:400], validation_data=(x[400:], y[400:]),
                                          epochs=2, batch_size=50)
"""


def measure_cluster(task: str, n: int, keras_search: bool = False) -> dict:
  """A localhost:2 cluster search of ``n`` tiny children (``keras_search``: KerasSearch
  trials of a user's model): the chief and the servers sampled apart."""
  data_dir = str(_ROOT / "testdata" / ("ptb" if task == "ptb" else "cifar10/png"))
  mode = "keras_cluster" if keras_search else "cluster"
  with tempfile.TemporaryDirectory() as out:
    args = ([sys.executable, "-c", _KERAS_CLUSTER_SEARCH, out, str(n)] if keras_search else
            [sys.executable, str(_ROOT / "bin" / "nas_search"), f"--task={task}",
             f"--data_dir={data_dir}", f"--output_dir={out}", f"--max_children={n}",
             "--children_per_step=2", "--cluster=localhost:2", "--num_ps=2",
             "--worker_threads=1", "--num_replicas=2", "--steps_per_epoch=4", "--noreport"])
    results = pathlib.Path(out) / "results.jsonl"
    chief, servers, each, counts, start = [], [], {}, [], time.monotonic()
    with open(pathlib.Path(out) / "search.log", "w") as log:
      proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=_ROOT,
                              env={**os.environ, "PYTHONPATH": str(_ROOT)})
      seen = 0
      while proc.poll() is None:
        done = len(results.read_text().splitlines()) if results.exists() else 0
        if done > seen:
          seen = done
          procs = process_tree.tree(proc.pid)
          counts.append(done)
          chief.append(process_tree.rss_mb(procs[:1]))
          servers.append(process_tree.rss_mb(procs[1:]))
          for p in procs[1:]:  # each server apart: which of them grows
            mb = process_tree.rss_mb([p])
            if mb > 100:  # not multiprocessing's small helper processes
              each.setdefault(p.pid, []).append((done, mb))
          if done % 20 == 0:
            logging.info("%s child %d/%d: chief %.0f MB, servers %.0f MB", mode, done, n,
                         chief[-1], servers[-1])
        time.sleep(0.2)
    if proc.returncode:
      raise RuntimeError(f"the cluster search failed ({proc.returncode}): "
                         f"{(pathlib.Path(out) / 'search.log').read_text()[-3000:]}")
  total = [c + s for c, s in zip(chief, servers)]
  return {"mode": mode, "children": n, "samples": len(total), "rss_mb": total,
          "chief_mb": chief, "servers_mb": servers, "start_mb": total[0], "end_mb": total[-1],
          "peak_mb": max(total), "children_at_sample": counts,
          "growth_mb_per_100_children_second_half": _growth(total, counts),
          "chief_growth_mb_per_100_children": _growth(chief, counts),
          "servers_growth_mb_per_100_children": _growth(servers, counts),
          # Per server process (pid order = start order: ps tasks, then workers).
          "each_server": [{"pid": pid, "first_mb": s[0][1], "last_mb": s[-1][1],
                           "samples": len(s), "growth_mb_per_100_children": _growth(
                               [mb for _, mb in s], [c for c, _ in s])}
                          for pid, s in sorted(each.items())],
          "seconds": time.monotonic() - start}


def main(argv):
  del argv
  results = [measure_cluster(_TASK.value, _N.value, keras_search=mode == "keras_cluster")
             if mode in ("cluster", "keras_cluster") else measure(mode, _TASK.value, _N.value)
             for mode in _MODES.value]
  out = pathlib.Path(_OUT.value or
                     _ROOT / "benchmarks" / "results" / f"memory_flat_{_TASK.value}.json")
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(results, indent=1))
  print("\n| evaluator | children | first child RSS | last | peak | growth / 100 children "
        "(2nd half) | seconds |\n|---|---|---|---|---|---|---|")
  for r in results:
    print(f"| {r['mode']} | {r['children']} | {r['start_mb']:.0f} MB | {r['end_mb']:.0f} MB | "
          f"{r['peak_mb']:.0f} MB | {r['growth_mb_per_100_children_second_half']:+.0f} MB | "
          f"{r['seconds']:.0f} |")
    if r.get("peaks_between_releases_mb"):
      print(f"{r['mode']}: peak RSS between cache releases (every {_RELEASE.value} children): "
            + ", ".join(f"{p:.0f}" for p in r["peaks_between_releases_mb"]) + " MB")


if __name__ == "__main__":
  app.run(main)
