"""Search -> retrain -> export with trained weights (issue 16): the exported model,
reloaded in a fresh process without nas_tf, reproduces nas_train's validation metric."""

import json
import os
import pathlib
import sys

import launch
import numpy as np
import pytest

from nas_tf.training import child as child_training
from nas_tf import data as data_lib
from nas_tf import export
from nas_tf.export import trained as export_trained
from nas_tf.training import final as ft
from nas_tf import tasks
from nas_tf import specs as specs_lib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CNN = specs_lib.CNNSpec(layers=(specs_lib.ConvLayer(3, 3, 8),
                                specs_lib.ConvLayer(3, 3, 8, stride=2, inputs=(0,))))

# Runs with TensorFlow only: reads windows / images, returns the metric of the export.
_FRESH = r"""
import json, sys
import numpy as np
import tensorflow as tf
export_dir, inputs_path = sys.argv[1], sys.argv[2]
manifest = json.load(open(export_dir + "/export.json"))
model = tf.saved_model.load(export_dir + "/" + manifest["savedmodel"])
data = np.load(inputs_path)
if manifest["task"] == "ptb":
  x, y = data["inputs"], data["targets"]
  states = tf.zeros([x.shape[1], manifest["state_width"]])
  total = 0.0
  for k in range(x.shape[0]):  # windows in order, state carried: how nas_train measures
    out = model.step(tf.constant(x[k]), states)
    states = out["states"]
    total += float(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
        tf.constant(y[k]), out["logits"])))
  metric = float(np.exp(total / y.size))
else:
  logits = model.serve_images(tf.constant(data["images"])).numpy()
  metric = float(np.mean(np.argmax(logits, -1) == data["labels"]))
assert not any(m.startswith("nas_tf") for m in sys.modules)
print(json.dumps({"metric": metric}))
"""


def _run(args, cwd):
  proc = launch.run(args, capture_output=True, text=True, timeout=300, cwd=cwd)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _fresh_metric(tmp_path, export_dir, **arrays):
  np.savez(tmp_path / "inputs.npz", **arrays)
  script = tmp_path / "fresh.py"
  script.write_text(_FRESH)
  return json.loads(_run([script, export_dir, tmp_path / "inputs.npz"],
                         tmp_path).stdout)["metric"]


def test_three_commands_search_train_export_reproduce_the_metric(tmp_path):
  """The README's flow with the binaries on the bundled PTB: each prints the next.

  Slow: runs three binaries end to end and reloads the export in a fresh TensorFlow process.
  """
  search = _run([ROOT / "bin" / "nas_search", "--task=ptb", "--output_dir=s",
                 "--max_children=2", "--steps_per_epoch=3", "--isolation=inline"], tmp_path)
  assert "bin/nas_train --spec=s --output_dir=s-final" in search.stderr
  train = _run([ROOT / "bin" / "nas_train", "--spec=s", "--output_dir=s-final",
                "--epochs=1", "--units=8", "--steps_per_epoch=10"], tmp_path)
  assert "bin/nas_export --trained=s-final --export_dir=s-final/export" in train.stderr
  _run([ROOT / "bin" / "nas_export", "--trained=s-final", "--export_dir=s-final/export"],
       tmp_path)
  out = tmp_path / "s-final"
  metrics = json.loads((out / "metrics.json").read_text())
  manifest = json.loads((out / "export" / "export.json").read_text())
  assert manifest["trained"]["val_perplexity"] == metrics["val_perplexity"]
  config = json.loads((out / "final_config.json").read_text())
  data = data_lib.load_ptb(str(ROOT / "testdata" / "ptb"))
  inputs, targets = child_training.lm_windows(data, "valid", config["batch_size"],
                                              config["num_steps"])
  got = _fresh_metric(tmp_path, out / "export", inputs=inputs, targets=targets)
  assert got == pytest.approx(metrics["val_perplexity"], rel=1e-4)
  # The vocabulary travels with the model, and the found cell is exported on its own.
  assert (out / "export" / "vocab.txt").read_text().split("\n")[:len(data.vocab)] == list(
      data.vocab)
  assert (out / "export" / "cell" / export.CELL_SAVEDMODEL).is_dir()


def test_trained_cnn_export_takes_raw_pixels_and_reproduces_accuracy(tmp_path):
  settings = tasks.get("cifar10").final_defaults(tiny=True)
  config = ft.FinalTrainingConfig(task="cifar10", data_dir=str(ROOT / "testdata" /
                                                              "cifar10" / "png"),
                                  output_dir=str(tmp_path / "train"), **settings)
  metrics = tasks.get(config.task).train_final(CNN, config)
  manifest = export_trained.export_trained(tasks.get("cifar10"), config.output_dir,
                                           str(tmp_path / "export"))
  assert "serve_images" in manifest["signatures"]
  assert manifest["preprocessing"]["mean"] == metrics["preprocessing"]["mean"]
  split = data_lib.load_cifar10(config.data_dir, seed=config.seed,
                                validation_size=config.validation_size)
  images, labels = split.arrays("validation")
  got = _fresh_metric(tmp_path, tmp_path / "export", images=images, labels=labels)
  assert got == pytest.approx(metrics["val_accuracy"], abs=1e-6)


def test_unfinished_training_is_a_one_line_error(tmp_path):
  (tmp_path / "spec.json").write_text(json.dumps(CNN.to_dict()))
  with pytest.raises(export.ExportError, match="lacks final_config.json, metrics.json, "
                     "model.keras: not a finished nas_train"):
    export_trained.export_trained(tasks.get("cifar10"), str(tmp_path), str(tmp_path / "e"))
  with pytest.raises(export.ExportError, match="is not a directory"):
    export_trained.export_trained(tasks.get("cifar10"), str(tmp_path / "nope"),
                                  str(tmp_path / "e"))
  assert not os.path.exists(tmp_path / "e")
  # A search's directory given as --trained: what it is, and the two ways forward.
  search_dir = tmp_path / "search"
  search_dir.mkdir()
  (search_dir / "results.jsonl").write_text("")
  with pytest.raises(export.ExportError, match=r"is a search's output directory, not a "
                     r"nas_train one: retrain .*bin/nas_train --spec=.*--results="):
    export_trained.read_training(str(search_dir))
