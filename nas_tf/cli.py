"""Glue the binaries in ``bin/`` share: one-line errors, SIGTERM handled like Ctrl-C, and
TensorFlow's start-up noise filtered out.

Called explicitly by each binary's ``main``; it reads no flags. Installing a signal
handler or replacing file descriptor 2 is process-wide state, so it is done here for
binaries only and undone on exit.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading

# Errors a user can cause (bad flags, paths, data, settings): one line, no traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError, KeyError)


def _interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def one_line_errors(program: str):
  """Runs the body; a user error or an interrupt exits with one ``program: ...`` line.

  SIGTERM (``timeout``, a scheduler's preemption) becomes KeyboardInterrupt, so the same
  clean-up as Ctrl-C runs (workers stopped, nothing half-written) and the exit status is
  1, never 0. Work is resumable: the line says to rerun the same command.
  """
  previous = signal.signal(signal.SIGTERM, _interrupt)
  try:
    yield
  except USER_ERRORS as e:
    sys.exit(f"{program}: error: {_first_line(e)}")
  except KeyboardInterrupt:
    sys.exit(f"{program}: interrupted; rerun the same command to resume")
  except Exception as e:  # pylint: disable=broad-except
    if not _is_tensorflow_error(e):
      raise  # a bug: keep the traceback
    # Disk full, a missing or corrupt checkpoint, out of memory: TensorFlow's own errors
    # carry the cause in their first line; the rest is C++ context.
    sys.exit(f"{program}: error: {type(e).__name__}: {_first_line(e)}")
  finally:
    signal.signal(signal.SIGTERM, previous)


# TensorFlow's C++ start-up lines on a CPU machine: written before absl's logging is set
# up, so TF_CPP_MIN_LOG_LEVEL does not silence them (measured with TF 2.21), and they say
# nothing a user of a search needs (CUDA probes, oneDNN and CPU-feature notices).
_TF_NOISE = re.compile(
    rb"All log messages before absl::InitializeLog|oneDNN custom operations are on|"
    rb"Could not find cuda drivers|cpu_feature_guard|To enable the following instructions|"
    rb"failed call to cuInit|Unable to register cu(DNN|FFT|BLAS) factory|"
    rb"computation_placer|TF-TRT Warning|This TensorFlow binary is optimized|"
    rb"Sharding callback duration|Logging before flag parsing goes to stderr|"
    rb"ClusterCoordinator destructor: stopping cluster|Stopping cluster, starting with "
    rb"failure handler|cluster_coordinator.py:\d+\] Stopping (workers|queue)|"
    rb"Start cancelling remote resource-building functions")
# Multi-line blocks: the header, then at most N continuation lines (lines that do not
# start a new log record). A distributed search stops its local servers before the
# chief's remote functions are garbage-collected, and each one then logs a 4-line gRPC
# error (~270 lines after a successful run); TF prints its session config proto at start.
_TF_NOISE_BLOCKS = ((re.compile(rb"Failed to remove function remotely"), 3),
                    (re.compile(rb"default session config:"), 40))
# What ends a block early: a new log record, a traceback, a Python error, our error line.
_LOG_RECORD = re.compile(rb"^[IWEF]\d{4} |^Traceback|^[A-Za-z_.]+(Error|Exception)\b|^\w+: error")


class NoiseFilter:
  """Decides line by line what of stderr to keep (see :func:`quiet_tensorflow`)."""

  def __init__(self):
    self._skip = 0  # continuation lines of a noise block still to drop

  def keep(self, line: bytes) -> bool:
    if self._skip and not _LOG_RECORD.search(line):
      self._skip -= 1
      if not line.strip():
        self._skip = 0  # a blank line ends a block
      return False
    self._skip = 0
    for header, length in _TF_NOISE_BLOCKS:
      if header.search(line):
        self._skip = length
        return False
    return not _TF_NOISE.search(line)


@contextlib.contextmanager
def quiet_tensorflow(enabled: bool = True):
  """Drops TensorFlow's start-up noise from stderr, here and in child processes.

  File descriptor 2 becomes a pipe read by a thread that forwards every line except the
  known noise (:class:`NoiseFilter`); processes started meanwhile (child workers, local
  cluster servers) inherit it, so their start-up lines are filtered too. Everything else
  (absl logging, warnings, tracebacks) passes through unchanged and in order.
  """
  if not enabled:
    yield
    return
  sys.stderr.flush()
  real = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)

  def pump():
    pending, noise = b"", NoiseFilter()
    while True:
      chunk = os.read(read_end, 1 << 16)
      if not chunk:
        break
      *lines, pending = (pending + chunk).split(b"\n")
      kept = b"".join(l + b"\n" for l in lines if noise.keep(l))
      if kept:
        os.write(real, kept)
    if pending and noise.keep(pending):
      os.write(real, pending)
    os.close(read_end)

  thread = threading.Thread(target=pump, name="nas_tf-stderr-filter", daemon=True)
  thread.start()
  try:
    yield
  finally:
    sys.stderr.flush()
    os.dup2(real, 2)  # closes this process's write end of the pipe
    # Lines still in the pipe are forwarded before the caller prints anything else;
    # children that outlive this (none should) keep the pipe, hence the bound.
    thread.join(timeout=2.0)
    if not thread.is_alive():
      os.close(real)


def _first_line(error: BaseException, limit: int = 500) -> str:
  text = str(getattr(error, "message", None) or error).strip().splitlines() or [""]
  line = text[0]
  return line if len(line) <= limit else line[:limit] + "..."


def _is_tensorflow_error(error: BaseException) -> bool:
  tf = sys.modules.get("tensorflow")
  return tf is not None and isinstance(error, tf.errors.OpError)
