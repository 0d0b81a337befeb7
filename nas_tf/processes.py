"""How nas_tf starts its helper processes, and how they die with the process that needs them.

Children trained in worker processes (``ProcessEvaluator``) and the servers of a
``localhost:N`` cluster each need their own TensorFlow runtime. Forking a process whose
runtime already runs threads can deadlock, so they used to be *spawned*: a fresh
interpreter that pays TensorFlow's and Keras's import (about 5 CPU-seconds, 10-15 s of
wall time on a loaded 2-core machine) for every worker, and again each time a worker is
recycled. A *forkserver* pays it once: a clean helper process imports TensorFlow and Keras
(importing starts no TensorFlow runtime and initialises no GPU) and forks each new process
from that image, which then starts its own runtime as a spawned one would. Start-up falls
to tenths of a second; isolation is the same (no state of the asking process is inherited).

Two things differ from 'spawn', and the code here accounts for both: a process's parent
is the forkserver, not the process that asked for it (:func:`watch_parent` watches both),
and it inherits the environment and standard streams the forkserver started with (the
first request of the asking process), not the asker's current ones.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time

# What the forkserver imports once. Only third-party modules: nas_tf's own are cheap
# to import, and importing them in each new process keeps their state its own.
PRELOAD = ("numpy", "tensorflow", "keras")


def context() -> multiprocessing.context.BaseContext:
  """The multiprocessing context for nas_tf's worker and server processes.

  A forkserver that has already imported TensorFlow and Keras where the platform has one
  (Linux, macOS); 'spawn' elsewhere (Windows).
  """
  if "forkserver" not in multiprocessing.get_all_start_methods():
    return multiprocessing.get_context("spawn")
  ctx = multiprocessing.get_context("forkserver")
  # Read when the forkserver starts (the first process asked for); later calls are no-ops.
  ctx.set_forkserver_preload(list(PRELOAD))
  return ctx


def parent_is_gone(parent_pid: int, first_ppid: int) -> bool:
  """Whether ``parent_pid`` (the process that asked for this one) has exited.

  Args:
    parent_pid: The asking process.
    first_ppid: ``os.getppid()`` when this process started: the asker itself under
      'spawn', the forkserver under 'forkserver' (which exits with the asker).
  """
  if os.getppid() != first_ppid:  # re-parented: whoever started us is gone
    return True
  try:
    os.kill(parent_pid, 0)
  except ProcessLookupError:
    return True
  except PermissionError:  # alive, someone else's (a reused pid would be too: rare)
    pass
  # A killed asker whose own parent has not reaped it yet is a zombie, which signal 0
  # still reaches. Under a forkserver nothing else would notice: the forkserver lives
  # while any process it forked lives (each holds its "alive" pipe).
  try:
    with open(f"/proc/{parent_pid}/stat", "rb") as f:
      state = f.read().rsplit(b")", 1)[1].split()[0]
    return state in (b"Z", b"X")
  except (OSError, IndexError):  # no /proc (macOS): signal 0 is all there is
    return False


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
  """Exits this process as soon as ``parent_pid`` is gone.

  A SIGKILL, an OOM kill or a scheduler's preemption of the search never runs its
  clean-up, and a worker would otherwise train on (and hold ~700 MB) forever. Polling is
  portable and cheap (two syscalls per interval).
  """
  first_ppid = os.getppid()

  def watch():
    while not parent_is_gone(parent_pid, first_ppid):
      time.sleep(interval)
    os._exit(1)  # pylint: disable=protected-access  (no clean-up: the parent is gone)

  threading.Thread(target=watch, name="nas_tf-parent-watch", daemon=True).start()
