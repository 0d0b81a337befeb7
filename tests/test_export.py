"""Export of found architectures: selection, SavedModel/.keras round trips in a fresh
process without nas_tf, embedding as a layer and fine-tuning, and error handling."""

import json
import os
import pathlib
import sys

import keras
import launch
import numpy as np
import pytest
import tensorflow as tf

from nas_tf import cells
from nas_tf import children
from nas_tf import export
from nas_tf import specs as specs_lib
from nas_tf.search.log import ResultsLog

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "bin" / "nas_export"

CNN = specs_lib.CNNSpec(layers=(
    specs_lib.ConvLayer(3, 3, 4), specs_lib.ConvLayer(5, 3, 4, inputs=(0,)),
    specs_lib.ConvLayer(1, 3, 6, stride=2, inputs=(0, 1)),
    specs_lib.ConvLayer(3, 3, 4, op="max_pool")))


def _other_cell():
  nodes = tuple(specs_lib.TreeNode("add", "tanh") for _ in range(7))
  return specs_lib.RNNCellSpec(nodes=nodes, inject_node=4, inject_combination="elem_mult",
                               inject_activation="sigmoid", cell_index=5)


def _write_search(directory, task, specs_and_rewards, status="ok"):
  """A search output dir with config.json and results.jsonl, without any training."""
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, "config.json"), "w") as f:
    json.dump({"task": task, "child": {"lm_units": 6, "weight_decay": 0.0},
               "space": {"kind": {"ptb": "rnn", "cifar10": "cnn"}[task]}}, f)
  log = ResultsLog(os.path.join(directory, "results.jsonl"))
  for i, (spec, reward) in enumerate(specs_and_rewards):
    log.append({"step": i // 2, "index": i % 2, "spec": spec.to_dict(), "reward": reward,
                "status": status, "describe": spec.describe(), "val_metric": 1.0,
                "num_params": 1})
  return str(directory)


@pytest.fixture
def ptb_search(tmp_path):
  return _write_search(tmp_path / "ptb", "ptb", [
      (specs_lib.nascell_spec(), 0.5), (_other_cell(), 0.9), (specs_lib.nascell_spec(), 0.4),
      (specs_lib.lstm_like_base2_spec(), 0.1)])


def test_select_record_ranks_distinct_ok_children(ptb_search, tmp_path):
  assert export.select_record(ptb_search)["spec"] == _other_cell().to_dict()
  assert export.select_record(ptb_search, rank=2)["spec"] == specs_lib.nascell_spec().to_dict()
  assert export.select_record(ptb_search, 3)["spec"] == (
      specs_lib.lstm_like_base2_spec().to_dict())  # The duplicate NASCell is skipped.
  with pytest.raises(export.ExportError, match="rank 4 is out of range.*3 distinct"):
    export.select_record(ptb_search, rank=4)
  with pytest.raises(export.ExportError, match="rank must be a positive int"):
    export.select_record(ptb_search, rank=0)
  with pytest.raises(export.ExportError, match="does not exist"):
    export.select_record(str(tmp_path / "missing"))
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(export.ExportError, match="holds no results.jsonl"):
    export.select_record(str(empty))
  (empty / "results.jsonl").write_text("")
  with pytest.raises(export.ExportError, match="no successfully trained child"):
    export.select_record(str(empty))
  failed = _write_search(tmp_path / "failed", "ptb", [(_other_cell(), -1.0)], status="failed")
  with pytest.raises(export.ExportError, match="no successfully trained child"):
    export.select_record(failed)


def test_spec_from_the_other_task_is_rejected(ptb_search, tmp_path):
  (tmp_path / "cnn.json").write_text(CNN.to_json())
  with pytest.raises(export.ExportError, match="search of task 'ptb' produces 'rnn' specs, but this is a 'cnn'"):
    export.export_from_results(ptb_search, str(tmp_path / "out"),
                               spec_path=str(tmp_path / "cnn.json"))
  with pytest.raises(specs_lib.SpecError, match="kind 'rnn'"):
    cells.load_cell(str(tmp_path / "cnn.json"), units=4)


# A fresh interpreter where importing nas_tf fails: the SavedModels must stand alone.
_FRESH = r"""
import sys
sys.modules["nas_tf"] = None  # Any `import nas_tf...` now raises ImportError.
import numpy as np, tensorflow as tf, keras
cell_dir, cnn_dir, inputs_path, out_path = sys.argv[1:]
data = dict(np.load(inputs_path))
cell = tf.saved_model.load(cell_dir + "/cell_savedmodel")
out = {}
for key, value in cell.serve(tf.constant(data["packed"])).items():
  out["serve_" + key] = value.numpy()
step = cell.step(tf.constant(data["x"]), tf.constant(data["c"]), tf.constant(data["m"]))
out["step_output"] = step["output"].numpy()
out["sequence_outputs"] = cell.sequence(tf.constant(data["seq"]))["outputs"].numpy()
layer = keras.layers.TFSMLayer(cell_dir + "/cell_savedmodel", trainable=True)
out["tfsm_output"] = keras.ops.convert_to_numpy(layer(data["packed"])["output"])
cnn = tf.saved_model.load(cnn_dir + "/model_savedmodel")
out["cnn_logits"] = cnn.serve(tf.constant(data["images"])).numpy()
assert not any(m.startswith("nas_tf") and sys.modules[m] for m in sys.modules)
np.savez(out_path, **out)
"""


def test_export_reload_in_fresh_process_without_nas_tf_gives_equal_outputs(tmp_path):
  rng = np.random.default_rng(0)
  units, input_dim = 5, 3
  spec = specs_lib.nascell_spec()
  cell = cells.TreeCell(spec, units, bias_initializer="random_normal")
  cell.build((None, input_dim))
  x, c, m = (rng.normal(size=(4, d)).astype("float32") for d in (input_dim, units, units))
  seq = rng.normal(size=(2, 6, input_dim)).astype("float32")
  want_out, (want_c, want_m) = cell(x, [c, m])
  want_seq = keras.layers.RNN(cell, return_sequences=True)(seq)
  cell_dir = str(tmp_path / "cell")
  manifest = export.export_cell(spec, cell_dir, units, input_dim, cell=cell)
  assert manifest["signatures"]["serve"].startswith("packed float32[batch, 13]")

  cnn = children.build_cnn(CNN, input_shape=(8, 8, 3), num_classes=3)
  images = rng.normal(size=(2, 8, 8, 3)).astype("float32")
  want_logits = cnn.predict(images, verbose=0)
  cnn_dir = str(tmp_path / "cnn")
  export.export_cnn(CNN, cnn_dir, input_shape=(8, 8, 3), num_classes=3, model=cnn)

  inputs, outputs = tmp_path / "in.npz", tmp_path / "out.npz"
  np.savez(inputs, packed=np.concatenate([x, c, m], -1), x=x, c=c, m=m, seq=seq,
           images=images)
  script = tmp_path / "fresh.py"
  script.write_text(_FRESH)
  proc = launch.run([script, cell_dir, cnn_dir, str(inputs),
                         str(outputs)], capture_output=True, text=True, timeout=120,
                        cwd=str(tmp_path))
  assert proc.returncode == 0, proc.stderr[-3000:]
  got = np.load(outputs)
  np.testing.assert_array_equal(got["serve_output"], want_out)
  np.testing.assert_array_equal(got["serve_c"], want_c)
  np.testing.assert_array_equal(got["serve_m"], want_m)
  np.testing.assert_array_equal(got["step_output"], want_out)
  np.testing.assert_array_equal(got["tfsm_output"], want_out)
  np.testing.assert_allclose(got["sequence_outputs"], want_seq, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(got["cnn_logits"], want_logits, rtol=1e-5, atol=1e-6)

  # The .keras files (these need nas_tf's registered layers) reload to the same outputs.
  rnn_model = keras.saving.load_model(os.path.join(cell_dir, export.CELL_KERAS))
  np.testing.assert_allclose(rnn_model(seq)["outputs"], want_seq, rtol=1e-6, atol=1e-6)
  cnn_model = keras.saving.load_model(os.path.join(cnn_dir, export.CNN_KERAS))
  np.testing.assert_allclose(cnn_model.predict(images, verbose=0), want_logits, rtol=1e-6)
  # The export directory is a cell directory for load_cell (spec.json).
  assert cells.load_cell(cell_dir, units=7).spec == spec
  assert {"architecture.dot", "spec.json", "export.json"} <= set(os.listdir(cnn_dir))


def test_found_cell_in_bidirectional_rnn_trains(tmp_path):
  export.export_cell(_other_cell(), str(tmp_path), units=4, picture=False)
  keras.utils.set_random_seed(1)
  rng = np.random.default_rng(1)
  x = rng.normal(size=(64, 7, 3)).astype("float32")
  y = (x[:, :, 0].sum(axis=1) > 0).astype("int32")
  inputs = keras.Input((None, 3))
  h = keras.layers.Bidirectional(keras.layers.RNN(cells.load_cell(str(tmp_path), units=8)))(
      inputs)
  model = keras.Model(inputs, keras.layers.Dense(2)(h))
  model.compile(keras.optimizers.Adam(0.02),
                keras.losses.SparseCategoricalCrossentropy(from_logits=True))
  losses = model.fit(x, y, batch_size=16, epochs=6, verbose=0).history["loss"]
  assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("layer_class,optimizer", [
    (keras.layers.TFSMLayer, "sgd"), (export.FineTunableTFSMLayer, "adam")])
def test_savedmodel_cell_fine_tunes_as_tfsm_layer(tmp_path, layer_class, optimizer):
  units, input_dim = 4, 3
  export.export_cell(specs_lib.nascell_spec(), str(tmp_path), units, input_dim,
                     picture=False)
  layer = layer_class(str(tmp_path / export.CELL_SAVEDMODEL), trainable=True)
  assert len(layer.trainable_weights) == 3  # kernel, recurrent kernel, bias
  before = [w.numpy().copy() for w in layer.trainable_weights]
  packed = keras.Input((input_dim + 2 * units,))
  logits = keras.layers.Dense(1)(layer(packed)["output"])
  model = keras.Model(packed, logits)
  model.compile(keras.optimizers.get({"class_name": optimizer,
                                      "config": {"learning_rate": 0.05}}), "mse")
  rng = np.random.default_rng(2)
  data = rng.normal(size=(32, input_dim + 2 * units)).astype("float32")
  target = data[:, :1] * 2.0
  first = model.evaluate(data, target, verbose=0)
  model.fit(data, target, batch_size=8, epochs=3, verbose=0)
  after = [w.numpy() for w in layer.trainable_weights]
  assert all(np.abs(a - b).max() > 1e-4 for a, b in zip(after, before))
  assert model.evaluate(data, target, verbose=0) < first


def test_binary_exports_and_fails_with_one_line(ptb_search, tmp_path):
  out = str(tmp_path / "out")
  cases = {
      "ok": [f"--results={ptb_search}", f"--export_dir={out}", "--rank=2", "--units=3"],
      "missing": [f"--results={tmp_path / 'nope'}", f"--export_dir={out}"],
  }  # Rank, empty results, other task: same code path, tested in the library.
  # Started together: each run pays the TensorFlow import, so overlap them.
  procs = {k: launch.Popen([BIN, *args], stdout=launch.PIPE, stderr=launch.PIPE, text=True)
           for k, args in cases.items()}
  results = {k: (p.wait(timeout=120), p.communicate()[1]) for k, p in procs.items()}
  assert results["ok"][0] == 0, results["ok"][1][-2000:]
  assert cells.load_cell(out, units=3).spec == specs_lib.nascell_spec()
  expected = {"missing": "does not exist"}
  for key, text in expected.items():
    rc, stderr = results[key]
    last = stderr.strip().splitlines()[-1]
    assert rc != 0 and "Traceback" not in stderr, (key, stderr[-2000:])
    assert last.startswith("nas_export: error: ") and text in last, (key, last)


def test_hostile_spec_files_fail_with_short_errors(tmp_path):
  """A 2 MB or deeply nested spec file: one short line, no RecursionError, no 2 MB line."""
  big = tmp_path / "big.json"
  big.write_text('{"kind": "rnn", "pad": "' + "x" * (2 << 20) + '"}')
  with pytest.raises(export.ExportError, match="over the") as e:
    export.load_spec_file(str(big))
  assert len(str(e.value)) < 500
  nested = tmp_path / "nested.json"
  nested.write_text("[" * 100_000 + "]" * 100_000)
  with pytest.raises(export.ExportError, match="nested too deeply"):
    export.load_spec_file(str(nested))
