"""Found architectures as reusable artifacts (Zoph & Le 2017, §4.1, §4.2).

The paper reuses what the search finds: the PTB cell is dropped into other models
(character modelling, machine translation, §4.2) and the best CIFAR-10 networks are
retrained at full size (§4.1). This package turns a search's results into files that do
not need the search to be reused (:mod:`.trained`: what ``nas_train`` retrained, with
its trained weights; :mod:`.pictures`: DOT / PNG drawings of architectures):

* :func:`select_record` picks an architecture from a search output directory.
* :func:`export_cell` writes an RNN cell as ``spec.json`` (for
  :func:`nas_tf.cells.load_cell`), a SavedModel of one cell step (loadable with only
  TensorFlow, or as ``keras.layers.TFSMLayer``), a ``.keras`` file of an
  ``RNN(TreeCell)`` model, and a picture.
* :func:`export_cnn` writes a conv network as ``spec.json``, ``model.keras``, a
  SavedModel and a picture.

Weights are freshly (seeded) initialised: a search trains children only to score them
and keeps no weights. Retrain the winner with :mod:`nas_tf.training.final`.

Cell SavedModel endpoints (all return a dict ``{"output", "c", "m"}`` of
``float32 [batch, units]``; the state is ``[c, m]`` as in TensorFlow's NASCell, where
``m`` is ``h``, the output):

* ``serve`` (also ``serving_default``) -- one packed input ``float32 [batch,
  input_dim + 2 * units]`` = ``concat([x_t, c_{t-1}, m_{t-1}], -1)``. A single tensor
  because ``TFSMLayer`` passes exactly one argument to its endpoint.
* ``step`` -- three arguments ``inputs [batch, input_dim]``, ``c [batch, units]``,
  ``m [batch, units]``.
* ``sequence`` -- ``inputs [batch, time, input_dim]`` from a zero state; returns
  ``{"outputs": [batch, time, units], "c", "m"}`` (the final state).

Fine-tuning a reloaded SavedModel: ``keras.layers.TFSMLayer(path, trainable=True)``
trains with plain SGD, but in Keras 3.15 an optimizer with slots (Adam, momentum)
fails on its variable names (``kernel:0_momentum is not a valid scope name``);
:class:`FineTunableTFSMLayer` is a drop-in that names the variables without ``:0``.
"""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence, Union

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from nas_tf import cells
from nas_tf import children
from nas_tf import results
from nas_tf import specs as specs_lib
from nas_tf.export import pictures as viz

RESULTS_FILENAME = "results.jsonl"
CONFIG_FILENAME = "config.json"
MANIFEST_FILENAME = "export.json"
CELL_SAVEDMODEL = "cell_savedmodel"
CELL_KERAS = "cell_rnn.keras"
CNN_SAVEDMODEL = "model_savedmodel"
CNN_KERAS = "model.keras"
MODEL_SAVEDMODEL = "model_savedmodel"


@keras.saving.register_keras_serializable(package="nas_tf")
class FineTunableTFSMLayer(keras.layers.TFSMLayer):
  """``keras.layers.TFSMLayer`` whose weights any optimizer can fine-tune.

  TFSMLayer names its Keras variables after the restored ``tf.Variable`` names, which
  end in ``:0``; optimizers with slot variables (Adam, momentum) build names from them
  and TensorFlow rejects the colon. This subclass strips the suffix; everything else
  (arguments, config, the wrapped variables themselves) is TFSMLayer's.
  """

  def _add_existing_weight(self, weight):
    # Same as the parent's, with a valid name; wrapping (not copying) the restored
    # variable keeps the endpoint reading the trained values.
    variable = keras.Variable(initializer=weight, trainable=weight.trainable,
                              dtype=weight.dtype, shape=weight.shape,
                              name=weight.name.split(":")[0].replace("/", "_"))
    self._track_variable(variable)


class ExportError(ValueError):
  """Bad input to an export: missing or empty results, rank out of range, wrong task."""


def _check_dir(results_dir: str) -> str:
  if not os.path.isdir(results_dir):
    raise ExportError(f"results directory {results_dir!r} does not exist (expected a "
                      f"search --output_dir holding {RESULTS_FILENAME})")
  path = os.path.join(results_dir, RESULTS_FILENAME)
  if not os.path.isfile(path):
    raise ExportError(f"{results_dir!r} holds no {RESULTS_FILENAME}; is it a search "
                      "--output_dir?")
  return path


def search_task(results_dir: str) -> Optional[str]:
  """The task reference recorded in a search's ``config.json``, if readable."""
  return search_config(results_dir).get("task")


def search_config(results_dir: str) -> dict:
  """The search's ``config.json`` as a dict ({} if absent or unreadable)."""
  try:
    with open(os.path.join(results_dir, CONFIG_FILENAME)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def select_record(results_dir: str, rank: int = 1) -> dict:
  """The ``rank``-th best distinct, successfully trained architecture of a search.

  Ranking is by reward, as in :func:`nas_tf.results.rank` (the paper picks
  the best-rewarded architecture, §4.1); children that failed, diverged or were too
  large are skipped. The best of a weight-sharing search is its derived architecture
  (``derived.json``, ENAS §2.2) when it has one.

  Args:
    results_dir: A search ``--output_dir`` holding ``results.jsonl``.
    rank: 1 = best.

  Returns:
    The results record (``spec``, ``reward``, ``describe``, ``val_metric``, ...).

  Raises:
    ExportError: the directory or log is missing, holds no trained child, or ``rank`` is
      out of range.
  """
  if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
    raise ExportError(f"rank must be a positive int (1 = best), got {rank!r}")
  path = _check_dir(results_dir)
  derived = os.path.join(results_dir, results.DERIVED_FILE)
  if rank == 1 and os.path.exists(derived):
    with open(derived) as f:
      record = json.load(f)
    logging.info("%s: a weight-sharing search; its derived architecture (%s) is the "
                 "best, not the best-rewarded record", results_dir, results.DERIVED_FILE)
    return record
  ranked = [r for r in results.rank(results.read_records(path))
            if r.get("status") == "ok"]
  if not ranked:
    raise ExportError(f"{path} holds no successfully trained child to export")
  if rank > len(ranked):
    raise ExportError(f"rank {rank} is out of range: {path} holds {len(ranked)} distinct "
                      "successfully trained architecture(s)")
  return ranked[rank - 1]


def load_spec_file(path: str) -> specs_lib.Spec:
  """A spec from a JSON file: a bare spec, a results record or ``best.json``."""
  if os.path.isdir(path):
    path = os.path.join(path, cells.SPEC_FILENAME)
  if os.path.isfile(path) and os.path.getsize(path) > specs_lib.MAX_SPEC_JSON_BYTES:
    raise ExportError(f"spec file {path!r} is {os.path.getsize(path):,} bytes, over the "
                      f"{specs_lib.MAX_SPEC_JSON_BYTES:,}-byte cap: not a spec file")
  try:
    with open(path) as f:
      data = json.load(f)
  except OSError as e:
    raise ExportError(f"cannot read spec file {path!r}: {e.strerror}") from e
  except ValueError as e:
    raise ExportError(f"spec file {path!r} is not valid JSON: {str(e)[:200]}") from e
  except RecursionError:
    raise ExportError(f"spec file {path!r} is nested too deeply to be a spec") from None
  if isinstance(data, dict) and "spec" in data and "kind" not in data:
    data = data["spec"]  # A results record, e.g. best.json.
  try:
    return specs_lib.from_dict(data)
  except specs_lib.SpecError as e:
    raise ExportError(f"{path}: {e}") from e


def check_space_kind(spec: specs_lib.Spec, config: dict) -> None:
  """Raises ExportError if ``spec`` is not of the kind the search's space produces."""
  kind = (config.get("space") or {}).get("kind")
  if kind is not None and kind != spec.kind:
    raise ExportError(f"the search of task {config.get('task')!r} produces {kind!r} specs, "
                      f"but this is a {spec.kind!r} spec: {spec.describe()}")


def _write_spec(spec, export_dir: str) -> str:
  path = os.path.join(export_dir, cells.SPEC_FILENAME)
  results.atomic_write_text(
      path, json.dumps(specs_lib.trained_dict(spec), indent=2, sort_keys=True) + "\n")
  return path


def write_manifest(export_dir: str, manifest: dict) -> None:
  results.atomic_write_text(os.path.join(export_dir, MANIFEST_FILENAME),
                            json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _positive(name, value):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
    raise ExportError(f"{name} must be a positive int, got {value!r}")
  return int(value)


def export_cell(spec: Union[specs_lib.RNNCellSpec, dict, str], export_dir: str,
                units: int, input_dim: Optional[int] = None, seed: int = 0,
                picture: bool = True, record: Optional[dict] = None,
                cell: Optional[cells.TreeCell] = None, task: Optional[str] = None) -> dict:
  """Exports a recurrent cell (§3.4) for reuse without the search (§4.2).

  Args:
    spec: The cell (spec, dict or JSON).
    export_dir: Output directory (created; files in it are overwritten).
    units: Width of ``c`` and ``m``.
    input_dim: Width of ``x_t``; defaults to ``units`` (an LM feeds embeddings of the
      hidden size, §4.2).
    seed: Seeds the initial weights.
    picture: Write ``architecture.dot`` / ``.png``.
    record: The results record the spec came from, stored in the manifest.
    cell: A built :class:`TreeCell` of this spec whose weights to export (e.g. taken
      from a trained model); default: a fresh cell seeded by ``seed``.
    task: The task it was searched for, recorded in the manifest.

  Returns:
    The manifest (also written as ``export.json``): paths and signature description.
  """
  spec = cells.coerce_spec(spec)
  units = _positive("units", units)
  input_dim = units if input_dim is None else _positive("input_dim", input_dim)
  if cell is not None:
    if cell.spec != spec or cell.units != units:
      raise ExportError(f"the given cell ({cell.spec.describe()}, units {cell.units}) "
                        f"is not this spec with units {units}")
    if cell.built and int(cell.kernel.shape[0]) != input_dim:
      raise ExportError(f"the given cell takes inputs of width {cell.kernel.shape[0]}, "
                        f"not input_dim={input_dim}")
  os.makedirs(export_dir, exist_ok=True)
  keras.utils.set_random_seed(seed)
  cell = cell or cells.TreeCell(spec, units, name="tree_cell")
  # The .keras model: the cell in an RNN over sequences, returning outputs and state;
  # building it also builds the cell, whose weights the SavedModel then shares.
  sequence = keras.Input(shape=(None, input_dim), name="inputs")
  rnn = keras.layers.RNN(cell, return_sequences=True, return_state=True, name="rnn")
  outputs, c, m = rnn(sequence)
  model = keras.Model(sequence, {"outputs": outputs, "c": c, "m": m}, name="found_cell_rnn")
  keras_path = os.path.join(export_dir, CELL_KERAS)
  model.save(keras_path)

  def step(x, c_prev, m_prev):
    out, (c_new, m_new) = cell(x, [c_prev, m_prev])
    return {"output": out, "c": c_new, "m": m_new}

  def packed(inputs):
    x, c_prev, m_prev = tf.split(inputs, [input_dim, units, units], axis=-1)
    return step(x, c_prev, m_prev)

  def run_sequence(inputs):
    out = rnn(inputs)
    return {"outputs": out[0], "c": out[1], "m": out[2]}

  archive = keras.export.ExportArchive()
  archive.track(model)
  f32 = tf.float32
  archive.add_endpoint("serve", packed, input_signature=[
      tf.TensorSpec([None, input_dim + 2 * units], f32, name="packed")])
  archive.add_endpoint("step", step, input_signature=[
      tf.TensorSpec([None, input_dim], f32, name="inputs"),
      tf.TensorSpec([None, units], f32, name="c"),
      tf.TensorSpec([None, units], f32, name="m")])
  archive.add_endpoint("sequence", run_sequence, input_signature=[
      tf.TensorSpec([None, None, input_dim], f32, name="inputs")])
  savedmodel_path = os.path.join(export_dir, CELL_SAVEDMODEL)
  archive.write_out(savedmodel_path, verbose=False)
  manifest = {
      "kind": "rnn", "task": task, "units": units, "input_dim": input_dim, "seed": seed,
      "describe": spec.describe(), "spec": cells.SPEC_FILENAME, "keras": CELL_KERAS,
      "savedmodel": CELL_SAVEDMODEL, "state": ["c", "m"],
      "signatures": {
          "serve": f"packed float32[batch, {input_dim + 2 * units}] = concat([x_t "
                   f"[{input_dim}], c [{units}], m [{units}]]) -> {{output, c, m}} "
                   f"float32[batch, {units}]",
          "step": f"(inputs [batch, {input_dim}], c [batch, {units}], m [batch, "
                  f"{units}]) -> {{output, c, m}}",
          "sequence": f"inputs [batch, time, {input_dim}] (zero initial state) -> "
                      f"{{outputs [batch, time, {units}], c, m}}"},
      "record": _record_summary(record)}
  if picture:
    manifest["picture"] = write_picture(spec, export_dir)
  _write_spec(spec, export_dir)
  write_manifest(export_dir, manifest)
  logging.info("Exported cell %s to %s", spec.describe(), export_dir)
  return manifest


def export_cnn(spec: Union[specs_lib.CNNSpec, dict], export_dir: str,
               input_shape: Sequence[int] = (32, 32, 3), num_classes: int = 10,
               weight_decay: float = 0.0, seed: int = 0, picture: bool = True,
               record: Optional[dict] = None,
               model: Optional[keras.Model] = None,
               preprocessing: Optional[dict] = None, task: Optional[str] = None) -> dict:
  """Exports a conv network (§3.3) as ``model.keras`` and a SavedModel.

  The SavedModel's ``serve`` endpoint maps whitened images ``float32 [batch, h, w, c]``
  to logits ``[batch, num_classes]`` in inference mode (BatchNorm uses moving stats).
  With ``preprocessing`` it also has ``serve_images``: raw ``uint8`` pixels, whitened
  inside the endpoint exactly as in training (``(x / 255 - mean) / std``).

  Args:
    spec: The network (a ``CNNSpec`` or its dict).
    export_dir: Output directory (created; files in it are overwritten).
    input_shape: ``(height, width, channels)``.
    num_classes: Number of logits.
    weight_decay: L2 factor kept in the model (matters only if it is trained further).
    seed: Seeds the initial weights.
    picture: Write ``architecture.dot`` / ``.png``.
    record: The results record the spec came from, stored in the manifest.
    model: A :func:`nas_tf.children.build_cnn` model of this spec whose weights to
      export (e.g. trained); default: a fresh model seeded by ``seed``.
    preprocessing: ``{"mean": [c], "std": [c], "class_names": [...]}`` of the training
      split (what ``nas_train`` writes to ``metrics.json``), for ``serve_images``.
    task: The task it was searched for, recorded in the manifest.

  Returns:
    The manifest (also written as ``export.json``).
  """
  if isinstance(spec, dict):
    spec = specs_lib.from_dict(spec)
  if not isinstance(spec, specs_lib.CNNSpec):
    raise ExportError(f"export_cnn needs a 'cnn' spec, got a {spec.kind!r} spec: "
                      f"{spec.describe()}")
  os.makedirs(export_dir, exist_ok=True)
  keras.utils.set_random_seed(seed)
  if model is None:
    model = children.build_cnn(spec, input_shape=tuple(input_shape),
                               num_classes=num_classes, weight_decay=weight_decay)
  elif tuple(model.input_shape[1:]) != tuple(input_shape):
    raise ExportError(f"the given model takes images of shape {model.input_shape[1:]}, "
                      f"not input_shape={tuple(input_shape)}")
  model.save(os.path.join(export_dir, CNN_KERAS))
  _write_cnn_savedmodel(model, os.path.join(export_dir, CNN_SAVEDMODEL), input_shape,
                        preprocessing)
  manifest = {
      "kind": "cnn", "task": task, "input_shape": list(input_shape),
      "num_classes": num_classes, "seed": seed, "num_params": int(model.count_params()),
      "describe": spec.describe(), "spec": cells.SPEC_FILENAME, "keras": CNN_KERAS,
      "savedmodel": CNN_SAVEDMODEL,
      "signatures": {"serve": f"image float32[batch, {', '.join(map(str, input_shape))}] "
                              f"(whitened) -> logits float32[batch, {num_classes}]"},
      "record": _record_summary(record)}
  if preprocessing:
    manifest["preprocessing"] = dict(preprocessing)
    manifest["signatures"]["serve_images"] = (
        f"images uint8[batch, {', '.join(map(str, input_shape))}] (raw pixels) -> logits "
        f"float32[batch, {num_classes}]")
  if picture:
    manifest["picture"] = write_picture(spec, export_dir, num_classes)
  _write_spec(spec, export_dir)
  write_manifest(export_dir, manifest)
  logging.info("Exported CNN %s to %s", spec.describe(), export_dir)
  return manifest


def _write_cnn_savedmodel(model, path, input_shape, preprocessing) -> None:
  if not preprocessing:
    model.export(path, format="tf_saved_model", verbose=False)
    return
  mean = tf.constant(preprocessing["mean"], tf.float32)
  std = tf.constant(preprocessing["std"], tf.float32)

  def serve(images):
    return model(images, training=False)

  def serve_images(images):
    # The same arithmetic as the training pipeline (nas_tf.data.cifar10), so the
    # reloaded model reproduces the validation accuracy bit for bit.
    return serve((tf.cast(images, tf.float32) / 255.0 - mean) / std)

  archive = keras.export.ExportArchive()
  archive.track(model)
  shape = [None, *map(int, input_shape)]
  archive.add_endpoint("serve", serve, input_signature=[
      tf.TensorSpec(shape, tf.float32, name="images")])
  archive.add_endpoint("serve_images", serve_images, input_signature=[
      tf.TensorSpec(shape, tf.uint8, name="images")])
  archive.write_out(path, verbose=False)


def write_picture(spec, export_dir: str, num_classes: int = 10) -> dict:
  """``architecture.dot`` (and ``.png`` with graphviz) in ``export_dir``; paths relative."""
  out = viz.write_picture(spec, export_dir, num_classes=num_classes)
  return {k: (os.path.basename(v) if k in ("dot", "png") and v else v)
          for k, v in out.items()}


def _record_summary(record: Optional[dict]) -> Optional[dict]:
  if record is None:
    return None
  return {k: record.get(k) for k in ("step", "index", "reward", "val_metric",
                                      "num_params", "status")}


def export_from_results(results_dir: Optional[str], export_dir: str, rank: int = 1,
                        spec_path: Optional[str] = None, units: Optional[int] = None,
                        input_dim: Optional[int] = None, seed: int = 0) -> dict:
  """Picks an architecture (``rank`` in a search, or a spec file) and exports it.

  Args:
    results_dir: A search ``--output_dir``; its ``config.json`` supplies defaults (the
      child's ``lm_units`` for ``units``) and the task. May be None with ``spec_path``.
    export_dir: Output directory.
    rank: Which distinct architecture (1 = best reward); ignored with ``spec_path``.
    spec_path: A spec JSON file (or ``best.json`` / a record) to export instead.
    units: Cell width; default: the search's ``lm_units``, else 64.
    input_dim: Cell input width; default ``units``.
    seed: Seeds the initial weights.

  Returns:
    The export manifest.

  Raises:
    ExportError: bad results directory, rank or spec, or a spec from the other task.
  """
  if results_dir is None and spec_path is None:
    raise ExportError("give a results directory or a spec file")
  config = search_config(results_dir) if results_dir else {}
  if results_dir is not None and spec_path is None:
    record = select_record(results_dir, rank)
    spec = specs_lib.from_dict(record["spec"])
  else:
    if results_dir is not None:
      _check_dir(results_dir)
    record, spec = None, load_spec_file(spec_path)
  check_space_kind(spec, config)
  task = config.get("task")
  if isinstance(spec, specs_lib.RNNCellSpec):
    units = units or config.get("child", {}).get("lm_units") or 64
    return export_cell(spec, export_dir, units, input_dim, seed=seed, record=record,
                       task=task)
  if isinstance(spec, specs_lib.CNNSpec):
    return export_cnn(spec, export_dir, seed=seed, record=record, task=task,
                      weight_decay=config.get("child", {}).get("weight_decay", 0.0))
  raise ExportError(f"an untrained export is of a recurrent cell or a conv network of the "
                    f"paper's spaces; a {spec.kind!r} architecture's network is its task's: "
                    "if the task trains its children, retrain it with nas_train and export "
                    "that with --trained")


def export_model(spec, model: keras.Model, export_dir: str, picture: bool = True,
                 task: Optional[str] = None, extra: Optional[dict] = None) -> dict:
  """Any trained child network as ``model.keras`` and a SavedModel with ``serve``.

  The generic export of a task's trained network (a user's own task included): the
  SavedModel's ``serve`` takes the model's own inputs and returns its outputs in
  inference mode, and loads with ``tf.saved_model.load`` without nas_tf.

  Args:
    spec: The architecture (written as ``spec.json``, drawn when ``picture``), or the
      name of a task's baseline network (``nas_train --cell``; ``{"cell": name}``).
    model: The Keras model with the weights to export.
    export_dir: Output directory (created; files in it are overwritten).
    picture: Write ``architecture.dot`` / ``.png``.
    task: The task's reference, recorded in the manifest.
    extra: More manifest entries.

  Returns:
    The manifest (also written as ``export.json``).
  """
  os.makedirs(export_dir, exist_ok=True)
  model.save(os.path.join(export_dir, CNN_KERAS))
  model.export(os.path.join(export_dir, MODEL_SAVEDMODEL), format="tf_saved_model",
               verbose=False)
  inputs = ", ".join(f"{t.dtype}[batch, {', '.join(str(d) for d in t.shape[1:])}]"
                     for t in model.inputs)
  outputs = ", ".join(f"{t.dtype}[batch, {', '.join(str(d) for d in t.shape[1:])}]"
                      for t in model.outputs)
  manifest = {"kind": "baseline" if isinstance(spec, str) else spec.kind, "task": task,
              "describe": specs_lib.trained_describe(spec),
              "num_params": int(model.count_params()), "spec": cells.SPEC_FILENAME,
              "keras": CNN_KERAS, "savedmodel": MODEL_SAVEDMODEL,
              "signatures": {"serve": f"{inputs} -> {outputs}"}, **(extra or {})}
  if picture and isinstance(spec, (specs_lib.RNNCellSpec, specs_lib.CNNSpec)):
    manifest["picture"] = write_picture(spec, export_dir)
  _write_spec(spec, export_dir)
  write_manifest(export_dir, manifest)
  return manifest


__all__ = ["ExportError", "FineTunableTFSMLayer", "select_record", "load_spec_file",
           "check_space_kind", "export_cell", "export_cnn", "export_model",
           "export_from_results", "search_task", "search_config",
           "write_manifest", "write_picture"]
