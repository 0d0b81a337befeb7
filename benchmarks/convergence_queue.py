r"""The long trainings behind RESULTS §1 and §2, as one resumable queue.

Every found cell or network is compared with a hand-designed one after full training
(Zaremba et al.'s small recipe on PTB, 30 epochs on CIFAR-10). Each entry of ``PLAN`` is
one ``bin/nas_train`` run writing to ``benchmarks/results/runs/<folder>/<name>``, the
folders ``benchmarks/convergence.py`` tabulates. A run is done when its ``metrics.json``
exists; a started one resumes where its weights stopped (``nas_train`` resumes itself; a
run whose weights were not kept starts again). One queue per core:

  python benchmarks/convergence_queue.py --dry_run          # done / started / to do
  python benchmarks/convergence_queue.py --shard=0/2 --cpu=0 &
  python benchmarks/convergence_queue.py --shard=1/2 --cpu=1 &

Entries run in ``PLAN``'s order (a shard takes every n-th entry still to do, so the two
queues split the remaining work as it stands when they start).
"""

import os
import pathlib
import subprocess
import sys

from absl import app
from absl import flags
from absl import logging

_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "benchmarks"))
from sharding import shard as _shard  # pylint: disable=g-import-not-at-top

_RUNS = "benchmarks/results/runs"
_DRY = flags.DEFINE_bool("dry_run", False, "Print each entry's state and command; train "
                         "nothing.")
_SHARD = flags.DEFINE_string("shard", None, "I/N: this queue trains every N-th entry still "
                             "to do, starting at the I-th.")
_ONLY = flags.DEFINE_list("only", [], "Entry names (folder/name) to train; all if empty.")
_CPU = flags.DEFINE_integer("cpu", None, "Pin this queue and its trainings to one core "
                            "(one thread's timings do not depend on a neighbour).")
_PTB = flags.DEFINE_string("ptb_dir", "../shared/data/ptb", "Penn Treebank folder.")
_CIFAR = flags.DEFINE_string("cifar_data", "../shared/data/cifar10-jpeg.tar.gz",
                             "CIFAR-10 archive or folder.")
_CACHE = flags.DEFINE_string("cache_dir", None, "CIFAR-10 decoded-array cache (saves "
                             "about a minute a run).")
_LOGS = flags.DEFINE_string("train_logs", "/tmp/convergence_queue", "Where each training's "
                            "log goes (not the results folder: logs are not evidence).")

_PTB_FOUND = "benchmarks/results/runs/init025/ptb-{}"
_CIFAR_FOUND = "benchmarks/results/runs/zc_cifar_resnet20_budget/cifar10-{}"


def _plan():
  """(folder, name, task, nas_train arguments), the most wanted first."""
  cifar = [("cifar_final", f"{model}-s{seed}", "cifar10", ["--epochs=30", f"--seed={seed}", arg])
           for seed in (0, 1)
           for model, arg in (("found-bo1", f"--spec={_CIFAR_FOUND.format('bo-seed1')}"),
                              ("resnet20", "--cell=resnet20"))]
  # Every PTB model at the LSTM-200 model's parameter count (tree cells: 180 units); the
  # best cells of the random and RL searches are those with the best proxy reward.
  ptb_models = {"lstm-zaremba": ["--cell=lstm", "--units=200"],
                "nascell": ["--cell=nascell", "--units=180"],
                "found-bo0-worsen": [f"--spec={_PTB_FOUND.format('bo-seed0')}", "--units=180"],
                "found-evolution0": [f"--spec={_PTB_FOUND.format('evolution-seed0')}",
                                     "--units=180"],
                "found-random2": [f"--spec={_PTB_FOUND.format('random-seed2')}", "--units=180"],
                "found-rl1": [f"--spec={_PTB_FOUND.format('rl-seed1')}", "--units=180"]}
  order = [("lstm-zaremba", 0), ("nascell", 0), ("found-bo0-worsen", 0),
           ("found-evolution0", 0), ("lstm-zaremba", 1), ("nascell", 1), ("found-random2", 0),
           ("found-rl1", 0), ("found-bo0-worsen", 1), ("found-evolution0", 1)]
  ptb = [("zaremba_small", f"{model}-s{seed}", "ptb",
          ["--epochs=13", f"--seed={seed}", *ptb_models[model]]) for model, seed in order]
  return cifar + ptb


PLAN = _plan()


def state(run_dir: pathlib.Path) -> str:
  """``done`` (metrics.json), ``started`` (per-epoch history on file) or ``to do``."""
  if (run_dir / "metrics.json").exists():
    return "done"
  if (run_dir / "backup" / "state.json").exists() or (run_dir / "history.json").exists():
    return "started"
  return "to do"


def pending(plan, root: pathlib.Path, shard=None, only=()):
  """The entries still to do (started ones first), this shard's share."""
  states = {e[:2]: state(root / _RUNS / e[0] / e[1]) for e in plan}
  todo = [e for e in plan if states[e[:2]] != "done" and (not only or f"{e[0]}/{e[1]}" in only)]
  todo.sort(key=lambda e: states[e[:2]] != "started")
  return _shard(todo, shard)


def command(entry, ptb_dir: str, cifar_data: str, cache_dir=None) -> list:
  folder, name, task, args = entry
  data = ptb_dir if task == "ptb" else cifar_data
  cmd = [sys.executable, "bin/nas_train", f"--task={task}", f"--data_dir={data}", *args,
         f"--output_dir={_RUNS}/{folder}/{name}"]
  if cache_dir and task == "cifar10":
    cmd.append(f"--cache_dir={cache_dir}")
  return cmd


def main(argv):
  del argv
  if _DRY.value:
    for e in PLAN:
      print(f"{state(_ROOT / _RUNS / e[0] / e[1]):8s} {e[0]}/{e[1]}: "
            + " ".join(command(e, _PTB.value, _CIFAR.value, _CACHE.value)[1:]))
    return
  if _CPU.value is not None:
    os.sched_setaffinity(0, {_CPU.value})  # inherited by every training below
  todo = pending(PLAN, _ROOT, _SHARD.value, set(_ONLY.value))
  logs = pathlib.Path(_LOGS.value)
  logs.mkdir(parents=True, exist_ok=True)
  logging.info("%d trainings to run: %s", len(todo), [f"{e[0]}/{e[1]}" for e in todo])
  for k, e in enumerate(todo):
    log = logs / f"{e[0]}-{e[1]}.log"
    logging.info("[%d/%d] %s/%s (log %s)", k + 1, len(todo), e[0], e[1], log)
    with open(log, "a") as f:
      rc = subprocess.call(command(e, _PTB.value, _CIFAR.value, _CACHE.value), cwd=_ROOT,
                           stdout=f, stderr=subprocess.STDOUT)
    if rc:
      logging.error("%s/%s exited with %d; see %s. Going on with the next.", e[0], e[1],
                    rc, log)


if __name__ == "__main__":
  app.run(main)
