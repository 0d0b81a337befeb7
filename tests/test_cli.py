"""The binaries' shared error handling: one line for user errors, TF errors and SIGTERM."""

import os
import signal

import pytest
import tensorflow as tf

from nas_tf import cli


def _exit_message(exc):
  with pytest.raises(SystemExit) as e:
    with cli.one_line_errors("prog"):
      raise exc
  return str(e.value.code)


def test_user_and_tensorflow_errors_become_one_line():
  assert _exit_message(ValueError("bad flag")) == "prog: error: bad flag"
  long = _exit_message(OSError("x" * 5000))
  assert long.startswith("prog: error: x") and len(long) < 600
  tf_error = tf.errors.NotFoundError(None, None, "Failed to find checkpoints/step-3\n"
                                     "  [[{{node RestoreV2}}]] 100 lines of context")
  message = _exit_message(tf_error)
  assert message == "prog: error: NotFoundError: Failed to find checkpoints/step-3"


def test_bugs_keep_their_traceback_and_sigterm_is_an_interrupt():
  with pytest.raises(ZeroDivisionError):
    with cli.one_line_errors("prog"):
      raise ZeroDivisionError("a bug")
  with pytest.raises(SystemExit) as e:
    with cli.one_line_errors("prog"):
      os.kill(os.getpid(), signal.SIGTERM)
  assert "interrupted; rerun the same command" in str(e.value.code)
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored afterwards
