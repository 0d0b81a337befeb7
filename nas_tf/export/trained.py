"""A retrained architecture as a standalone artifact, trained weights and all (§4.1, §4.2).

The paper's last step is to retrain the found architecture and use it (test accuracy on
CIFAR-10, test perplexity on PTB, the cell reused in other models). ``nas_train`` writes
that trained model; :func:`export_trained` turns its output directory into the same
export layout as :mod:`nas_tf.export` (``spec.json``, ``export.json``, a SavedModel, a
``.keras`` file, a picture), this time with the trained weights, so that it can be used
with TensorFlow alone:

* CIFAR-10: ``model_savedmodel`` with ``serve`` (whitened images) and ``serve_images``
  (raw ``uint8`` pixels, whitened inside with the training split's statistics).
* PTB: ``lm_savedmodel``, the whole language model, with

  - ``serve``: ``tokens int32 [batch, time]`` from a zero state ->
    ``{"logits": float32 [batch, time, vocab]}``;
  - ``step``: ``(tokens [batch, time], states float32 [batch, S])`` ->
    ``{"logits", "states"}``: the recurrent state of every layer packed into one tensor
    (layout in ``export.json``), so text longer than one window is read as in training,
    state carried (Zaremba et al. 2014; this is how ``metrics.json``'s perplexities
    are measured);

  plus ``vocab.txt`` (id -> word) and, for a searched cell, ``cell/``: the first layer's
  trained cell exported by :func:`nas_tf.export.export_cell`.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Optional

from absl import logging
import keras
import tensorflow as tf

from nas_tf import cells
from nas_tf import children
from nas_tf import export
from nas_tf import results
from nas_tf import specs as specs_lib

LM_SAVEDMODEL = "lm_savedmodel"
LM_KERAS = "lm.keras"
# Written by nas_train (nas_tf.training.final); each is needed to rebuild what it trained.
_TRAIN_FILES = ("spec.json", "final_config.json", "metrics.json", "model.keras")


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      return json.load(f)
  except OSError as e:
    raise export.ExportError(f"cannot read {path!r}: {e.strerror}") from e
  except ValueError as e:
    raise export.ExportError(f"{path!r} is not valid JSON: {str(e)[:200]}") from e


def read_training(train_dir: str) -> dict:
  """The files of a ``nas_train`` output directory: spec, config, metrics, model path.

  Raises:
    ExportError: a file is missing (training not run or not finished), naming it.
  """
  if not os.path.isdir(train_dir):
    raise export.ExportError(f"--trained {train_dir!r} is not a directory (expected a "
                             "nas_train --output_dir)")
  missing = [n for n in _TRAIN_FILES if not os.path.isfile(os.path.join(train_dir, n))]
  if missing and os.path.isfile(os.path.join(train_dir, export.RESULTS_FILENAME)):
    raise export.ExportError(
        f"{train_dir!r} is a search's output directory, not a nas_train one: retrain its "
        f"best architecture first (bin/nas_train --spec={train_dir} --output_dir=DIR, "
        "then --trained=DIR), or export it untrained with --results="
        f"{train_dir}")
  if missing:
    raise export.ExportError(
        f"{train_dir!r} lacks {', '.join(missing)}: not a finished nas_train output "
        "directory (rerun the same nas_train command to finish it)")
  spec_dict = _read_json(os.path.join(train_dir, "spec.json"))
  spec = specs_lib.trained_from_dict(spec_dict)
  return {"spec": spec, "config": _read_json(os.path.join(train_dir, "final_config.json")),
          "metrics": _read_json(os.path.join(train_dir, "metrics.json")),
          "model": os.path.join(train_dir, "model.keras"), "dir": train_dir}


def _summary(metrics: dict) -> dict:
  keys = ("task", "num_params", "best_epoch", "epochs_run", "val_accuracy", "test_accuracy",
          "val_perplexity", "test_perplexity", "train_seconds")
  return {k: metrics[k] for k in keys if k in metrics}


def export_trained(task, train_dir: str, export_dir: str, picture: bool = True) -> dict:
  """Exports what ``nas_train`` trained in ``train_dir`` with its trained weights.

  Args:
    task: The :class:`nas_tf.tasks.TrainedChildTask` it was trained for (its
      ``export_trained`` says what the export holds).
    train_dir: A finished ``nas_train --output_dir``.
    export_dir: Output directory (created; files in it are overwritten).
    picture: Write ``architecture.dot`` / ``.png`` (searched architectures only).

  Returns:
    The manifest (also written as ``export.json``), with ``trained``: the metrics of
    ``metrics.json`` that the exported weights were measured at.

  Raises:
    ExportError: the directory is not a finished nas_train output.
  """
  run = read_training(train_dir)
  model = keras.saving.load_model(run["model"], compile=False)
  manifest = task.export_trained(run, model, export_dir, picture)
  manifest.update(task=run["config"].get("task"), trained=_summary(run["metrics"]),
                  source=os.path.abspath(train_dir))
  export.write_manifest(export_dir, manifest)
  logging.info("Exported the trained %s to %s", manifest["describe"], export_dir)
  return manifest


def _size(config: dict, name: str, older: str) -> int:
  # An older final_config.json names the sizes units / num_layers.
  return int(config[name] if name in config else config[older])


def export_lm(run: dict, plain: keras.Model, export_dir: str, picture: bool = True) -> dict:
  """A trained language model as a SavedModel with a state-carrying ``step``.

  Args:
    run: :func:`read_training`'s dict of a ``nas_train`` run of a language model.
    plain: Its trained tokens -> logits model.
    export_dir: Output directory.
    picture: Draw a searched cell.
  """
  spec, config, train_dir = run["spec"], run["config"], run["dir"]
  units, num_layers = _size(config, "lm_units", "units"), _size(config, "lm_layers",
                                                                  "num_layers")
  os.makedirs(export_dir, exist_ok=True)
  vocab_size = int(plain.output_shape[-1])
  # The same layers as the saved tokens -> logits model, plus state inputs and outputs
  # (nas_tf.children.build_language_model keeps names and weight order between them).
  stateful = children.build_language_model(
      spec, vocab_size=vocab_size, units=units, num_layers=num_layers,
      tie_embeddings=config["tie_embeddings"], name="final_lm", return_state=True)
  stateful.set_weights(plain.get_weights())
  sizes = [int(t.shape[-1]) for t in stateful.inputs[1:]]
  width = sum(sizes)

  def step(tokens, states):
    logits, *new = stateful([tokens, *tf.split(states, sizes, axis=-1)], training=False)
    return {"logits": logits, "states": tf.concat(new, axis=-1)}

  def serve(tokens):
    return {"logits": step(tokens, tf.zeros([tf.shape(tokens)[0], width]))["logits"]}

  archive = keras.export.ExportArchive()
  archive.track(stateful)
  tokens_spec = tf.TensorSpec([None, None], tf.int32, name="tokens")
  archive.add_endpoint("serve", serve, input_signature=[tokens_spec])
  archive.add_endpoint("step", step, input_signature=[
      tokens_spec, tf.TensorSpec([None, width], tf.float32, name="states")])
  archive.write_out(os.path.join(export_dir, LM_SAVEDMODEL), verbose=False)
  plain.save(os.path.join(export_dir, LM_KERAS))
  vocab = os.path.join(train_dir, "vocab.txt")
  if os.path.isfile(vocab):
    shutil.copyfile(vocab, os.path.join(export_dir, "vocab.txt"))
  layout, offset = [], 0
  for tensor, size in zip(stateful.inputs[1:], sizes):
    layout.append({"name": tensor.name, "offset": offset, "size": size})
    offset += size
  describe = specs_lib.trained_describe(spec)
  manifest = {
      "kind": "rnn", "describe": describe, "vocab_size": vocab_size,
      "units": units, "num_layers": num_layers,
      "savedmodel": LM_SAVEDMODEL, "keras": LM_KERAS,
      "vocab": "vocab.txt" if os.path.isfile(vocab) else None,
      "state_width": width, "state_layout": layout,
      "signatures": {
          "serve": f"tokens int32[batch, time] (zero initial state) -> {{logits float32"
                   f"[batch, time, {vocab_size}]}}",
          "step": f"(tokens int32[batch, time], states float32[batch, {width}]) -> "
                  f"{{logits, states}}: carry states from one window to the next; zeros "
                  f"to start"}}
  if isinstance(spec, specs_lib.RNNCellSpec):
    # The found cell on its own, with the first layer's trained weights, for users who
    # embed it in their own models (nas_tf.cells.load_cell or its SavedModel).
    cell = stateful.get_layer("rnn_0").cell
    cell_manifest = export.export_cell(spec, os.path.join(export_dir, "cell"),
                                       units=units, cell=cell, picture=False,
                                       input_dim=int(cell.kernel.shape[0]))
    manifest["cell"] = {"dir": "cell", "signatures": cell_manifest["signatures"]}
    if picture:
      manifest["picture"] = export.write_picture(spec, export_dir)
    results.atomic_write_text(os.path.join(export_dir, cells.SPEC_FILENAME),
                              json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n")
  return manifest


def next_command(train_dir: str) -> Optional[str]:
  """The command that exports a finished training (printed by ``nas_train``)."""
  return f"bin/nas_export --trained={train_dir} --export_dir={train_dir}/export"


__all__ = ["export_trained", "export_lm", "read_training", "next_command", "LM_SAVEDMODEL"]
