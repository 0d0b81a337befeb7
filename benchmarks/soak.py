#!/usr/bin/env python3
"""Fault-injection soak: a real-data search killed again and again must end as if it never was.

Three runs of ``bin/nas_search`` with the same flags and seed (issue 17):

1. **reference**: uninterrupted; the resident memory of its process tree is sampled every
   few seconds, to show it stays flat over the run.
2. **soak**: started, killed at a random moment (SIGKILL and SIGTERM in turn: an OOM kill
   or preemption, a scheduler's ``timeout``), restarted with the same command, ``--kills``
   times, then left to finish. After every kill the processes the search had started must
   be gone within ``--grace`` seconds.
3. **cluster** (``--cluster_kill``): the same search on ``--cluster=localhost:2``, one of
   whose two worker servers is SIGKILLed once a first child is logged.

At the end each of 2 and 3 must hold exactly ``--max_children`` records, none twice, and
the soak's tokens and rewards must equal the reference's child for child (the search is
reproducible: sampling is a function of the seed and the committed steps, and every child
trains from its own seed). The cluster run is compared too; its children train on another
runtime, so equal rewards there are reported, not required.

  python benchmarks/soak.py --task=ptb --data_dir=../shared/data/ptb --max_children=50
  python benchmarks/soak.py --task=cifar10 --data_dir=../shared/data/cifar10-jpeg.tar.gz \
      --max_children=50 --search_flags=--max_train_examples=1000,--child_epochs=1
  python benchmarks/soak.py --task=ptb --analyze   # the tables again, from the files

By default the kills come at uniformly random moments of the reference run's duration, so
that they hit start-up, training, evaluation and commits all through the run;
``--delay=LOW,HIGH`` kills each restart LOW..HIGH seconds after it starts instead.

Writes ``benchmarks/results/soak_<task>/`` (the three output dirs, ``events.jsonl`` with
one line per fault, ``summary.json``).
"""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

from absl import app, flags, logging
import numpy as np
import psutil

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))

from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top
import process_tree  # pylint: disable=g-import-not-at-top  (benchmarks/, the script's dir)

_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Task of the soaked search.")
_DATA = flags.DEFINE_string("data_dir", None, "Real data for the task (see README).")
_N = flags.DEFINE_integer("max_children", 50, "Children of each run.")
_KILLS = flags.DEFINE_integer("kills", 10, "Kills of the soak run before it may finish.")
_DELAY = flags.DEFINE_list("delay", [], "A kill comes this many seconds (uniform between "
                           "the two) after each restart. Default: the kills are spread over "
                           "the whole run, at uniformly random moments of the reference "
                           "run's duration (minus 3 s of start-up per restart).")
_SPAN = flags.DEFINE_float("kill_span", None, "Seconds over which the kills are spread "
                           "(default: the reference run's duration).")
_GRACE = flags.DEFINE_float("grace", 30.0, "Seconds the killed search's processes get to die.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the search (all runs) and of kill times.")
_EXTRA = flags.DEFINE_list("search_flags", [], "More nas_search flags for every run.")
_CLUSTER = flags.DEFINE_boolean("cluster_kill", True, "Also run the localhost:2 cluster "
                                "search with one worker killed.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only summarise the runs on disk.")
_OUT = flags.DEFINE_string("out", None, "Where the runs go (default "
                           "benchmarks/results/soak_<task>).")

_BIN = _ROOT / "bin" / "nas_search"


def _search_args(out: pathlib.Path, extra=()) -> list:
  return [sys.executable, str(_BIN), f"--task={_TASK.value}", f"--data_dir={_DATA.value}",
          f"--max_children={_N.value}", f"--seed={_SEED.value}", f"--output_dir={out}",
          "--intra_op_threads=1", "--noreport", *_EXTRA.value, *extra]


def _seen(procs: list, pid: int) -> list:
  """``procs`` plus the processes now in ``pid``'s tree: every process the search started,
  including those already gone, so that none can outlive it unnoticed."""
  return list({p.pid: p for p in procs + process_tree.tree(pid)}.values())


def _log_event(events_path: pathlib.Path, event: dict) -> None:
  with open(events_path, "a") as f:
    f.write(json.dumps(event) + "\n")


def _count(out: pathlib.Path) -> int:
  path = out / "results.jsonl"
  return len(ResultsLog(str(path), repair=False).records) if path.exists() else 0


def _alive(procs) -> list:
  left = []
  for p in procs:
    try:
      if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
        left.append(p)
    except psutil.NoSuchProcess:
      pass
  return left


def run_reference(out: pathlib.Path) -> dict:
  """The uninterrupted run, with its process tree's memory sampled every 2 s."""
  start, samples = time.monotonic(), []
  with open(out.parent / "reference.log", "w") as log:
    proc = subprocess.Popen(_search_args(out), stdout=log, stderr=subprocess.STDOUT)
    while proc.poll() is None:
      samples.append((round(time.monotonic() - start, 1), _count(out),
                      round(process_tree.rss_mb(process_tree.tree(proc.pid)), 1)))
      time.sleep(2.0)
  if proc.returncode:
    raise SystemExit(f"the reference run failed (exit {proc.returncode}); see "
                     f"{out.parent / 'reference.log'}")
  return {"seconds": time.monotonic() - start, "memory": samples}


def _delays(rng, reference_seconds: float) -> list:
  """Seconds from each restart to its kill."""
  if _DELAY.value:
    low, high = (float(x) for x in _DELAY.value)
    return list(rng.uniform(low, high, _KILLS.value))
  moments = np.sort(rng.uniform(0.0, reference_seconds, _KILLS.value))
  return [max(3.0, float(d)) for d in np.diff(np.concatenate([[0.0], moments]))]


def _kills_done(events_path: pathlib.Path) -> int:
  """Kills of an interrupted soak already made: a rerun goes on from there."""
  if not events_path.exists():
    return 0
  events = [json.loads(l) for l in events_path.read_text().splitlines()]
  return sum(isinstance(e.get("kill"), int) for e in events)


def _done(out: pathlib.Path) -> bool:
  """A run is complete when it has all its records (best.json is written every step)."""
  return _count(out) >= _N.value


def run_soak(out: pathlib.Path, events_path: pathlib.Path, reference_seconds: float) -> dict:
  """Kills the search ``--kills`` times at random moments, then lets it finish."""
  delays = _delays(np.random.default_rng(_SEED.value), reference_seconds)
  start, kills, final_left = time.monotonic(), _kills_done(events_path), None
  log = open(out.parent / "soak.log", "a")
  while True:
    proc = subprocess.Popen(_search_args(out), stdout=log, stderr=subprocess.STDOUT)
    if kills >= _KILLS.value:  # the last start runs to the end; nothing may outlive it
      procs = []
      while proc.poll() is None:
        procs = _seen(procs, proc.pid)
        time.sleep(0.5)
      time.sleep(_GRACE.value / 3)
      final_left = len(_alive(procs))
      break
    delay, sig = delays[kills], (signal.SIGKILL, signal.SIGTERM)[kills % 2]
    deadline, procs = time.monotonic() + delay, []
    while time.monotonic() < deadline and proc.poll() is None:
      procs = _seen(procs, proc.pid)
      time.sleep(0.25)
    if proc.poll() is not None:  # finished before this kill came: the soak is over
      logging.warning("the search finished before kill %d; use longer runs", kills + 1)
      break
    before = _count(out)
    procs = _seen(procs, proc.pid)
    proc.send_signal(sig)
    proc.wait()
    waited = time.monotonic()
    while _alive(procs) and time.monotonic() - waited < _GRACE.value:
      time.sleep(0.25)
    left = _alive(procs)
    for p in left:  # reported; killed so that the soak can go on
      p.kill()
    kills += 1
    event = {"kill": kills, "signal": sig.name, "after_s": round(delay, 1),
             "records_before": before, "records_after": _count(out),
             "exit_code": proc.returncode, "processes": len(procs),
             "left_running": len(left),
             "seconds_to_die": round(time.monotonic() - waited, 1)}
    logging.info("kill %d: %s", kills, event)
    _log_event(events_path, event)
  log.close()
  return {"seconds": time.monotonic() - start, "final_exit_code": proc.returncode,
          "left_running_after_the_end": final_left}


def _worker_pid(procs, stderr_text: str):
  """The pid of a server process that listens on a worker port of the logged spec."""
  match = re.search(r"'worker': \[([^\]]*)\]", stderr_text)
  if not match:
    return None
  ports = {int(p) for p in re.findall(r"localhost:(\d+)", match.group(1))}
  for p in procs:
    try:
      if any(c.laddr and c.laddr.port in ports and c.status == psutil.CONN_LISTEN
             for c in p.net_connections(kind="tcp")):
        return p.pid
    except (psutil.NoSuchProcess, psutil.AccessDenied):
      pass
  return None


def run_cluster(out: pathlib.Path, events_path: pathlib.Path) -> dict:
  """The search on localhost:2 with one worker server SIGKILLed after the first record."""
  start = time.monotonic()
  log_path = out.parent / "cluster.log"
  with open(log_path, "w") as log:
    proc = subprocess.Popen(_search_args(out, ["--cluster=localhost:2", "--num_replicas=2"]),
                            stdout=log, stderr=subprocess.STDOUT)
    killed, procs = None, []
    while proc.poll() is None:
      procs = _seen(procs, proc.pid)
      if killed is None and _count(out) >= 1:
        killed = _worker_pid(procs, log_path.read_text())
        if killed:
          os.kill(killed, signal.SIGKILL)
          event = {"kill": "cluster worker", "signal": "SIGKILL", "pid": killed,
                   "records_before": _count(out),
                   "after_s": round(time.monotonic() - start, 1)}
          logging.info("cluster: %s", event)
          _log_event(events_path, event)
      time.sleep(0.5)
  time.sleep(_GRACE.value / 3)
  return {"seconds": time.monotonic() - start, "exit_code": proc.returncode,
          "worker_killed": killed is not None, "left_running": len(_alive(procs))}


def compare(reference: pathlib.Path, other: pathlib.Path) -> dict:
  """Records of ``other`` against the reference's, child by child."""
  ref = {(r["step"], r["index"]): r for r in ResultsLog(str(reference / "results.jsonl")).records}
  recs = ResultsLog(str(other / "results.jsonl")).records
  keys = [(r["step"], r["index"]) for r in recs]
  same_tokens = same_reward = 0
  worst = 0.0
  for r in recs:
    twin = ref.get((r["step"], r["index"]))
    if twin is None or twin["tokens"] != r["tokens"]:
      continue
    same_tokens += 1
    if twin["reward"] == r["reward"]:
      same_reward += 1
    elif twin["reward"] is not None and r["reward"] is not None:
      worst = max(worst, abs(twin["reward"] - r["reward"]) / max(abs(twin["reward"]), 1e-30))
  return {"records": len(recs), "unique": len(set(keys)), "expected": _N.value,
          "same_tokens": same_tokens, "same_reward": same_reward,
          "worst_relative_reward_difference": worst}


def main(argv):
  del argv
  base = pathlib.Path(_OUT.value or _ROOT / "benchmarks" / "results" / f"soak_{_TASK.value}")
  base.mkdir(parents=True, exist_ok=True)
  events_path, summary_path = base / "events.jsonl", base / "summary.json"
  summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
  if not _ANALYZE.value:
    if _DATA.value is None:
      raise app.UsageError("--data_dir is required (real data: see README)")
    summary["flags"] = _search_args(base / "OUT")[2:]
    save = lambda: summary_path.write_text(json.dumps(summary, indent=1) + "\n")
    # Each phase's figures are saved as soon as it ends: a later phase may be interrupted.
    if not _done(base / "reference"):
      summary["reference"] = run_reference(base / "reference")
      save()
    if not _done(base / "soak"):
      span = _SPAN.value or summary.get("reference", {}).get("seconds", 600.0)
      summary["soak"] = run_soak(base / "soak", events_path, span)
      save()
    if _CLUSTER.value and not _done(base / "cluster"):
      summary["cluster"] = run_cluster(base / "cluster", events_path)
  events = ([json.loads(l) for l in events_path.read_text().splitlines()]
            if events_path.exists() else [])
  summary["faults"] = {"injected": len(events),
                       "left_running": sum(e.get("left_running", 0) for e in events)}
  summary["soak_vs_reference"] = compare(base / "reference", base / "soak")
  if (base / "cluster" / "results.jsonl").exists():
    summary["cluster_vs_reference"] = compare(base / "reference", base / "cluster")
  memory = summary.get("reference", {}).get("memory", [])
  after_first = [m for m in memory if m[1] >= 1]
  if after_first:
    summary["reference_memory_mb"] = {"after_first_child": after_first[0][2],
                                      "end": after_first[-1][2],
                                      "peak": max(m[2] for m in after_first)}
  summary_path.write_text(json.dumps(summary, indent=1) + "\n")
  shown = {k: v for k, v in summary.items() if k not in ("reference", "flags")}
  print(json.dumps(shown, indent=1))


if __name__ == "__main__":
  app.run(main)
