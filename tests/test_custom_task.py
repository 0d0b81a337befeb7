"""A task of the user's own, from the command line: search -> retrain -> export -> reload.

``examples/custom_task.py`` defines a task (data and child network) and nothing else; it
is named as ``--task=FILE.py:ATTR`` by every binary, and its trained export loads in a
process that cannot import nas_tf.
"""

import json
import os
import pathlib
import sys

import launch
import pytest
from nas_tf import tasks

ROOT = pathlib.Path(__file__).resolve().parent.parent
TASK_REF = str(ROOT / "examples" / "custom_task.py") + ":TASK"

_RELOAD = """
import sys
sys.modules["nas_tf"] = None  # any import of nas_tf now fails
import numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
x = np.random.default_rng(7).integers(0, 10, size=(256, 8)).astype(np.int32)
logits = model.serve(tf.constant(x)).numpy()
print("ACC", float(np.mean(logits.argmax(-1) == x[:, 0] % 4)))
"""


def _run(args, cwd):
  proc = launch.run(args, capture_output=True, text=True,
                        timeout=600, cwd=cwd)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def test_resolve_loads_a_task_from_a_file_once_and_pickles_as_its_reference(tmp_path):
  import pickle  # pylint: disable=g-import-not-at-top
  task = tasks.resolve(TASK_REF)
  assert task.name == "first_digit" and task.ref == TASK_REF
  assert tasks.resolve(TASK_REF) is task
  assert pickle.loads(pickle.dumps(task)) is task  # what a worker process receives
  for bad, message in ((f"{tmp_path}/none.py:TASK", "no file"),
                       (str(ROOT / "examples" / "custom_task.py") + ":NOPE", "no attribute"),
                       ("no_such_task", "unknown task 'no_such_task'")):
    try:
      tasks.resolve(bad)
    except ValueError as e:
      assert message in str(e), e
    else:
      raise AssertionError(f"{bad} resolved")


def test_search_retrain_export_and_reload_without_nas_tf(tmp_path):
  """Slow: three binaries and a reload, each a process that starts TensorFlow."""
  bin_ = ROOT / "bin"
  _run([bin_ / "nas_search", f"--task={TASK_REF}", "--data_dir=generated",
        "--output_dir=s", "--search=random", "--max_children=2", "--isolation=inline",
        "--report=false"], tmp_path)
  config = json.loads((tmp_path / "s" / "config.json").read_text())
  assert config["task"] == TASK_REF and config["space"] == {}
  _run([bin_ / "nas_train", "--spec=s", "--data_dir=generated", "--output_dir=f",
        "--epochs=8"], tmp_path)
  metrics = json.loads((tmp_path / "f" / "metrics.json").read_text())
  assert metrics["task"] == TASK_REF and metrics["epochs_run"] == 8
  _run([bin_ / "nas_export", "--trained=f", "--export_dir=e"], tmp_path)
  manifest = json.loads((tmp_path / "e" / "export.json").read_text())
  assert manifest["task"] == TASK_REF and manifest["savedmodel"] == "model_savedmodel"
  out = _run(["-c", _RELOAD, os.path.join("e", manifest["savedmodel"])], tmp_path).stdout
  accuracy = float(out.split("ACC")[-1])
  # The reloaded model predicts like the trained one: far above chance (0.25) whenever
  # the retrained cell learned the task.
  assert (accuracy > 0.5) == (metrics["test_accuracy"] > 0.5), (accuracy, metrics)
  assert abs(accuracy - metrics["test_accuracy"]) < 0.15, (accuracy, metrics)


def test_a_file_task_is_saved_by_absolute_path_even_if_it_registers_itself(tmp_path,
                                                                           monkeypatch):
  """Workers, resumes and nas_train from another directory must find the same file."""
  import pickle  # pylint: disable=g-import-not-at-top
  (tmp_path / "mine.py").write_text(
      "from nas_tf import tasks\n"
      "class Mine(tasks.Task):\n"
      "  name = 'mine_selfregistered'\n"
      "  space_kind = 'rnn'\n"
      "TASK = tasks.register(Mine())  # a name alone means nothing to a worker\n")
  monkeypatch.chdir(tmp_path)
  task = tasks.resolve("mine.py:TASK")
  assert task.ref == f"{tmp_path / 'mine.py'}:TASK"
  monkeypatch.chdir(ROOT)
  assert tasks.resolve(task.ref) is task and pickle.loads(pickle.dumps(task)) is task


def test_a_task_without_its_attributes_is_refused_with_what_to_set(tmp_path):
  path = tmp_path / "bare.py"
  path.write_text("from nas_tf import tasks\n"
                  "class Bare(tasks.TrainedChildTask):\n  space_kind = 'rnn'\n"
                  "TASK = Bare()\n")
  with pytest.raises(ValueError, match=r"Bare does not set name \(class attributes: name"):
    tasks.resolve(f"{path}:TASK")

  class Kindless(tasks.Task):
    name = "kindless"
  with pytest.raises(ValueError, match=r"register\(\): Kindless does not set space_kind"):
    tasks.register(Kindless())
  assert "kindless" not in tasks.names()


def test_a_metric_the_training_does_not_log_is_named_in_the_childs_error():
  class Misnamed(tasks.TrainedChildTask):
    name, space_kind, metric = "misnamed", "rnn", "val_acc"
  status, why = Misnamed().judge({"val_accuracy": 0.5, "train_seconds": 1.0})
  assert status == "nan"
  assert why == ("the metrics have no 'val_acc' (the task's metric); they have "
                 "['train_seconds', 'val_accuracy']")
  assert Misnamed().judge({"val_acc": 0.5}) == ("ok", None)
