"""The binaries' shared error handling: one line for user errors, TF errors and SIGTERM."""

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from nas_tf import cli

ROOT = pathlib.Path(__file__).resolve().parent.parent


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


def test_an_interrupt_that_surfaces_as_another_error_is_still_an_interrupt():
  """SIGTERM while TensorFlow's C++ code raises its own error: pybind11 turns the pair
  into a RuntimeError ("MISMATCH of original and normalized active exception types");
  what the user did was interrupt, and the run is resumable."""
  with pytest.raises(SystemExit) as e:
    with cli.one_line_errors("prog"):
      try:
        os.kill(os.getpid(), signal.SIGTERM)
      except KeyboardInterrupt as interrupt:
        raise RuntimeError("pybind11::error_already_set: MISMATCH of original and "
                           "normalized active exception types") from interrupt
  assert str(e.value.code) == "prog: interrupted; rerun the same command to resume"
  # Without a signal the same error is the user's, in one line.
  assert _exit_message(RuntimeError("pybind11 MISMATCH")) == "prog: error: pybind11 MISMATCH"


@pytest.mark.parametrize("quiet", [True, False])
def test_tensorflow_start_up_noise_is_filtered_here_and_in_children(quiet):
  code = textwrap.dedent(f"""
      import subprocess, sys
      from nas_tf import cli
      with cli.quiet_tensorflow({quiet}):
        import tensorflow as tf
        tf.constant(1.0) + 1
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write("
                        "'I0000 port.cc:153] oneDNN custom operations are on.\\\\n"
                        "child line kept\\\\n')"], check=True)
        sys.stderr.write("parent line kept\\n")
      sys.stderr.write("after the filter\\n")
      """)
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                        timeout=120, cwd=str(ROOT))
  assert proc.returncode == 0, proc.stderr
  lines = proc.stderr.splitlines()
  assert ["child line kept", "parent line kept", "after the filter"] == [
      l for l in lines if "kept" in l or "after" in l]  # in order
  noisy = [l for l in lines if "oneDNN custom operations" in l or "cuInit" in l]
  assert (not noisy) if quiet else noisy


def test_an_example_script_prints_no_tensorflow_start_up_noise():
  proc = subprocess.run([sys.executable, str(ROOT / "examples" /
                                             "print_sampled_architectures.py"), "--num=1"],
                        capture_output=True, text=True, timeout=120, cwd=str(ROOT))
  assert proc.returncode == 0, proc.stderr
  assert "log p" in proc.stdout
  noisy = [l for l in proc.stderr.splitlines()
           if "oneDNN custom operations" in l or "cuInit" in l or "cuda" in l.lower()]
  assert not noisy, noisy


def test_noise_blocks_are_dropped_but_errors_after_them_are_kept():
  lines = [
      b"E0000 00:00:1.5 24785 context.cc:911] Failed to remove function remotely due to x",
      b"Additional GRPC error information from remote target /job:ps/replica:0/task:0",
      b":UNKNOWN:Error received from peer  {grpc_status:14}",
      b"This could happen if the remote target has been disconnected from the client.",
      b"I1128 16:18:46.588247 1 nas_search:158] Results in cl",
      b"I1128 16:17:57.018398 1 remote.py:225] default session config: device_count {",
      b'  key: "GPU"', b"}", b"allow_soft_placement: true", b"",
      b"E0000 00:00:1.5 24785 context.cc:911] Failed to remove function remotely due to x",
      b"Traceback (most recent call last):",
      b"ValueError: a real error",
      b"I0000 00:00:1.2 9 port.cc:153] oneDNN custom operations are on.",
      b"W1128 12:00:00.0 1 x.py:1] a warning of ours",
      # A SavedModel export's chatter (nas_export printed seven of these):
      b"I1206 18:25:48.407165 1 signature_serialization.py:156] Function `serve` contains "
      b"input name(s) resource with unsupported characters which will be renamed",
      b"I1206 18:25:48.575736 1 builder_impl.py:838] Assets written to: e/assets",
      b"I1206 18:25:48.576941 1 fingerprinting_utils.py:49] Writing fingerprint to e/f.pb"]
  noise = cli.NoiseFilter()
  assert [l for l in lines if noise.keep(l)] == [
      b"I1128 16:18:46.588247 1 nas_search:158] Results in cl",
      b"Traceback (most recent call last):", b"ValueError: a real error",
      b"W1128 12:00:00.0 1 x.py:1] a warning of ours"]


def test_help_shows_each_tasks_default_only_where_it_applies():
  """--helpfull of both binaries: a task's preset is listed for the flags its presets set
  (no child epochs for a table lookup), None is spelled out, defaults are shown."""
  search = subprocess.run([sys.executable, str(ROOT / "bin" / "nas_search"), "--helpfull"],
                          capture_output=True, text=True, timeout=120).stdout
  flat = " ".join(search.split())
  assert "--lm_units: PTB child hidden size. Defaults: ptb 32 (tiny 16)." in flat
  assert "nasbench201 1" not in flat.split("--child_epochs:")[1].split("--")[0]
  assert "(tiny all)" in flat and "tiny None" not in flat
  assert "(default runs/TASK-SEARCH-" in flat and "Same with" not in flat
  train = subprocess.run([sys.executable, str(ROOT / "bin" / "nas_train"), "--helpfull"],
                         capture_output=True, text=True, timeout=120).stdout
  assert "--epochs: Maximum epochs. Defaults: cifar10 100 (tiny 2); ptb 13 (tiny 2)." in (
      " ".join(train.split()))


def test_the_end_of_a_search_says_what_its_statuses_mean(tmp_path):
  from nas_tf import report, tasks  # pylint: disable=g-import-not-at-top
  from nas_tf.search.log import ResultsLog  # pylint: disable=g-import-not-at-top
  log = ResultsLog(str(tmp_path / "results.jsonl"))
  for k, status in enumerate(["degenerate", "nan", "degenerate"]):
    log.append({"step": 0, "index": k, "status": status, "reward": 0.0, "spec": {"k": k},
                "describe": str(k), "val_metric": None})
  lines = report.after_search(str(tmp_path), tasks.get("ptb"), None, report=False)
  assert lines[0].startswith("Children: 2 degenerate, 1 nan (degenerate: cells that "
                             "provably cannot learn"), lines
  assert "nan: training diverged" in lines[0]
  assert len(lines) == 1  # nothing trained: no retraining to suggest


def test_example_counts_take_all_and_scientific_notation():
  assert cli.flag_value("max_train_examples", "all") is None
  assert cli.flag_value("max_eval_examples", "1e5") == 100_000
  assert cli.flag_value("max_train_examples", None) is None
  assert cli.flag_value("lm_units", 32) == 32  # other flags pass through
