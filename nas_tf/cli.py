"""Glue the binaries in ``bin/`` share: one-line errors, SIGTERM handled like Ctrl-C,
TensorFlow's start-up noise filtered out, and which config field each search flag sets.

Called explicitly by each binary's ``main``; it reads no flags. Installing a signal
handler or replacing file descriptor 2 is process-wide state, so it is done here for
binaries only and undone on exit.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys

# nas_search's flag -> the config field it sets (presets, --set and config.json name
# settings by field; the flags themselves are defined, and read, in bin/nas_search.py).
SEARCH_FLAG_FIELDS = {
    "search": "search", "evaluation": "evaluation", "seed": "seed", "cache_dir": "cache_dir",
    "max_children": "max_children", "children_per_step": "children_per_step",
    "validation_size": "validation_size", "child_epochs": "child.epochs",
    "child_batch_size": "child.batch_size", "child_optimizer": "child.optimizer",
    "child_lr": "child.learning_rate", "child_weight_decay": "child.weight_decay",
    "child_clipnorm": "child.clipnorm", "max_train_examples": "child.max_train_examples",
    "max_eval_examples": "child.max_eval_examples", "steps_per_epoch": "child.steps_per_epoch",
    "lm_units": "child.lm_units", "num_steps": "child.num_steps", "dropout": "child.dropout",
    "tie_embeddings": "child.tie_embeddings", "start_layers": "depth.start",
    "layer_increment": "depth.increment", "increment_every": "depth.every",
    "controller_lr": "controller.learning_rate", "entropy_weight": "controller.entropy_weight",
    "baseline_decay": "controller.baseline_decay", "isolation": "runtime.isolation",
    "grad_accumulation": "controller.grad_accumulation", "intra_op_threads":
    "runtime.intra_op_threads", "parallel_children": "runtime.parallel_children",
    "population_size": "evolution.population_size", "tournament_size": "evolution.sample_size",
    "target_params": "objective.target_params", "target_latency_ms":
    "objective.target_latency_ms", "target_macs": "objective.target_macs",
    "cost_exponent": "objective.cost_exponent",
    "max_latency_ms": "child.max_latency_ms", "pruner": "pruner.kind"}


def flag_value(name: str, value):
  """A search flag's value as its config field takes it: the example counts
  (``--max_train_examples``, ``--max_eval_examples``) also take 'all' (None: the whole
  split) and '1e5'."""
  if name.endswith("_examples") and value is not None:
    return None if str(value).lower() == "all" else int(float(value))
  return value


# Errors a user can cause (bad flags, paths, data, settings): one line, no traceback.
USER_ERRORS = (ValueError, OSError, RuntimeError, KeyError)


@contextlib.contextmanager
def one_line_errors(program: str):
  """Runs the body; a user error or an interrupt exits with one ``program: ...`` line.

  SIGTERM (``timeout``, a scheduler's preemption) becomes KeyboardInterrupt, so the same
  clean-up as Ctrl-C runs (workers stopped, nothing half-written) and the exit status is
  1, never 0. Work is resumable: the line says to rerun the same command. SIGINT is set
  too: a process started in the background by a non-interactive shell (``cmd &`` in a
  script, ``nohup``) inherits SIGINT *ignored*, and Ctrl-C or ``kill -INT`` would
  otherwise do nothing (measured: a localhost cluster search ran on to its end).
  """
  received = []

  def interrupt(signum, frame):
    del frame
    received.append(signum)
    raise KeyboardInterrupt(f"signal {signum}")

  previous = signal.signal(signal.SIGTERM, interrupt)
  previous_int = signal.signal(signal.SIGINT, interrupt)
  interrupted = f"{program}: interrupted; rerun the same command to resume"
  try:
    yield
  except KeyboardInterrupt:
    sys.exit(interrupted)
  except Exception as e:  # pylint: disable=broad-except
    # The KeyboardInterrupt can surface as another error: raised while TensorFlow's C++
    # code was turning its own error into a Python one, pybind11 reports the mismatch as
    # a RuntimeError (seen with SIGTERM during a search's start-up).
    if received:
      sys.exit(interrupted)
    if isinstance(e, USER_ERRORS):
      sys.exit(f"{program}: error: {_first_line(e)}")
    if not _is_tensorflow_error(e):
      raise  # a bug: keep the traceback
    # Disk full, a missing or corrupt checkpoint, out of memory: TensorFlow's own errors
    # carry the cause in their first line; the rest is C++ context.
    sys.exit(f"{program}: error: {type(e).__name__}: {_first_line(e)}")
  finally:
    signal.signal(signal.SIGTERM, previous)
    signal.signal(signal.SIGINT, previous_int)


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
    rb"Start cancelling remote resource-building functions|"
    # Every SavedModel export: Keras' variable handles are named "resource", which the
    # signature writer renames, and it says so for each function and the assets/
    # fingerprint files it writes.
    rb"contains input name\(s\) resource with unsupported characters|"
    rb"builder_impl.py:\d+\] Assets written to|fingerprinting_utils.py:\d+\] Writing "
    rb"fingerprint to")
# Multi-line blocks: the header, then at most N continuation lines (lines that do not
# start a new log record). A distributed search stops its local servers before the
# chief's remote functions are garbage-collected, and each one then logs a 4-line gRPC
# error (~270 lines after a successful run); the same block comes for every function the
# chief registers while a worker is dead (the coordinator's own log line says which);
# TF prints its session config proto at start.
_TF_NOISE_BLOCKS = ((re.compile(rb"Failed to (remove|register) function remotely"), 3),
                    (re.compile(rb"default session config:"), 40))
# What ends a block early: a new log record, a traceback, a Python error, our error line.
_LOG_RECORD = re.compile(rb"^[IWEF]\d{4} |^Traceback|^[A-Za-z_.]+(Error|Exception)\b|^\w+: error")


def is_noise(message: str) -> bool:
  """Whether one log message is TensorFlow's known noise (as :class:`NoiseFilter` drops)."""
  return bool(_TF_NOISE.search(message.encode("utf-8", "replace")))


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
  """Drops TensorFlow's noise from stderr, here and in child processes, until exit.

  File descriptor 2 becomes a pipe into a small filter process that forwards every line
  except the known noise (:class:`NoiseFilter`) to the real stderr. Processes started
  meanwhile (child workers, local cluster servers) inherit the pipe, so their lines are
  filtered too. Everything else (absl logging, warnings, tracebacks, the one-line error)
  passes through unchanged and in order.

  The filter stays on after the block, on purpose: TensorFlow writes its loudest noise
  while the interpreter shuts down (the gRPC clean-up of remote functions), after any
  Python code has run. A separate process, not a thread, is what outlives that: it ends
  when the last writer (this process and its children) has exited, and it ignores
  Ctrl-C / SIGTERM sent to the process group, so the final lines are never lost.
  """
  if enabled:
    start_noise_filter()
  yield
  sys.stderr.flush()


def start_noise_filter() -> None:
  """Starts :func:`quiet_tensorflow`'s filter for the rest of the process: for a script
  (the examples) to call before it imports TensorFlow, whose start-up lines come then."""
  sys.stderr.flush()
  package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  code = (f"import sys; sys.path.insert(0, {package_parent!r}); "
          "from nas_tf import cli; cli.filter_main()")
  # Its stdout is the real stderr (fd 2 before the swap below).
  proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=2)
  os.dup2(proc.stdin.fileno(), 2)
  proc.stdin.close()  # fd 2 is now this process's only write end


def filter_main() -> None:
  """The filter process of :func:`quiet_tensorflow`: stdin -> stdout minus the noise."""
  for sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)  # the writers decide when output ends
  pending, noise = b"", NoiseFilter()
  while True:
    chunk = os.read(0, 1 << 16)
    if not chunk:
      break
    *lines, pending = (pending + chunk).split(b"\n")
    kept = b"".join(l + b"\n" for l in lines if noise.keep(l))
    if kept:
      os.write(1, kept)
  if pending and noise.keep(pending):
    os.write(1, pending)


def _first_line(error: BaseException, limit: int = 500) -> str:
  text = str(getattr(error, "message", None) or error).strip().splitlines() or [""]
  line = text[0]
  return line if len(line) <= limit else line[:limit] + "..."


def _is_tensorflow_error(error: BaseException) -> bool:
  tf = sys.modules.get("tensorflow")
  return tf is not None and isinstance(error, tf.errors.OpError)
