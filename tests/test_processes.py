"""nas_tf.processes: how worker and server processes start, and when they stop."""

import concurrent.futures
import os
import subprocess
import sys
import time

import pytest

from nas_tf import processes


def _inside_a_new_process():
  had_tf = "tensorflow" in sys.modules
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  # Only possible before the runtime starts: the forkserver imported TensorFlow but did
  # not start a runtime that the new process would share.
  tf.config.threading.set_intra_op_parallelism_threads(1)
  value = float(tf.reduce_sum(tf.ones([3, 3])))
  return had_tf, value, os.getpid()


def test_a_new_process_has_tensorflow_imported_and_its_own_runtime():
  ctx = processes.context()
  with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx,
                                              max_tasks_per_child=1) as pool:
    first = pool.submit(_inside_a_new_process).result(timeout=300)
    second = pool.submit(_inside_a_new_process).result(timeout=300)
  assert first[1] == second[1] == 9.0
  assert first[2] != second[2] != os.getpid()  # one process per task
  if ctx.get_start_method() == "forkserver":
    assert first[0] and second[0], "the forkserver should have imported TensorFlow"


def test_a_parent_is_gone_when_it_exits_or_is_an_unreaped_zombie():
  me = os.getpid()
  assert not processes.parent_is_gone(me, os.getppid())
  # Re-parented (what a forkserver's children see when it exits).
  assert processes.parent_is_gone(me, os.getppid() + 1)
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  deadline = time.monotonic() + 60
  while not os.path.exists(f"/proc/{proc.pid}/stat") and time.monotonic() < deadline:
    time.sleep(0.05)
  if not os.path.exists("/proc/self/stat"):
    proc.wait()
    pytest.skip("no /proc: a zombie is only seen once it is reaped")
  # Exited but not reaped: a zombie, which signal 0 still reaches.
  while time.monotonic() < deadline:
    with open(f"/proc/{proc.pid}/stat", "rb") as f:
      if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
        break
    time.sleep(0.05)
  assert processes.parent_is_gone(proc.pid, os.getppid())
  proc.wait()  # reaped: the pid no longer exists
  assert processes.parent_is_gone(proc.pid, os.getppid())
