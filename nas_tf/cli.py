"""Glue the binaries in ``bin/`` share: one-line errors and SIGTERM handled like Ctrl-C.

Called explicitly by each binary's ``main``; it reads no flags. Installing a signal
handler is process-wide state, so it is done here for binaries only and undone on exit.
"""

from __future__ import annotations

import contextlib
import signal
import sys

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


def _first_line(error: BaseException, limit: int = 500) -> str:
  text = str(getattr(error, "message", None) or error).strip().splitlines() or [""]
  line = text[0]
  return line if len(line) <= limit else line[:limit] + "..."


def _is_tensorflow_error(error: BaseException) -> bool:
  tf = sys.modules.get("tensorflow")
  return tf is not None and isinstance(error, tf.errors.OpError)
