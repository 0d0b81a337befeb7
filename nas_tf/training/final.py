"""Retrain one found architecture to convergence (Zoph & Le 2017, §4.1, §4.2).

During the search each child is trained briefly, only to score it. The paper then
retrains the best architectures for longer, with tuned learning rate, weight decay,
dropout and (for Penn Treebank) shared input/output embeddings, and reports their test
accuracy (CIFAR-10, §4.1) or test perplexity (PTB, §4.2). :func:`train_final` does that
for one spec: it trains with a learning-rate schedule, keeps the best-on-validation
weights (``ModelCheckpoint``), can stop early, resumes an interrupted run
(``BackupAndRestore``), logs to TensorBoard, and writes ``metrics.json`` with the
validation and test metrics of the best weights.

Output directory layout::

  spec.json, final_config.json     what was trained, and how
  checkpoints/best.weights.h5      best validation weights so far
  backup/                          resume state (removed when training finishes)
  tensorboard/                     training curves
  model.keras                      the model with the best weights
  metrics.json                     validation and test metrics, history, timings
  history.json                     classifiers: per-epoch metrics, written as they arrive
  vocab.txt                        PTB: the vocabulary, one word per line in id order

``nas_export --trained=OUTPUT_DIR`` turns the directory into a standalone export with
the trained weights (:mod:`nas_tf.export.trained`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import pathlib
import shutil
import time
from typing import Optional

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from nas_tf.training import child as child_training
from nas_tf import children
from nas_tf.training import lm as lm_training
from nas_tf.training import optimizers
from nas_tf import results
from nas_tf import specs as specs_lib
from nas_tf.config import ChildTrainingConfig
from nas_tf.config import check_arg as _check

@dataclasses.dataclass(frozen=True, kw_only=True)
class FinalTrainingConfig(ChildTrainingConfig):
  """How one architecture is retrained (paper §4.1 CIFAR-10, §4.2 PTB).

  A :class:`nas_tf.config.ChildTrainingConfig` (the search child's recipe: optimiser,
  rates, LM recipe, sizes ``lm_units`` / ``lm_layers`` / ``num_steps``, dropout, ...)
  plus what only a final training has. ``nas_train`` starts from the task's
  ``final_defaults``; the size caps of the search (``max_params``, ...) do not apply.

  Attributes:
    task: The task's reference (``--task``: a registered name, ``FILE.py:ATTR`` or
      ``package.module:ATTR``).
    data_dir: The task's data.
    output_dir: Where checkpoints, logs, the model and metrics.json go.
    lr_schedule: 'constant', 'cosine' (decay to 0 over all epochs), 'step' (multiply by
      ``lr_decay_factor`` every ``lr_decay_every`` epochs) or 'decay_after' (Zaremba et
      al.'s PTB schedule: constant for ``lr_decay_start`` epochs, then multiplied by
      ``lr_decay_factor`` at every epoch).
    lr_decay_every: Epochs between step decays.
    augment: Image tasks: random crops and flips (§4.1).
    validation_size: Training examples held out for validation (CIFAR-10).
    early_stopping_patience: Stop after this many epochs without a better validation
      metric (0 = never stop early).
    seed: Seeds initialisation, shuffling, augmentation and the validation split.
    cache_dir: Decoded-array cache for archives (CIFAR-10).
    weight_decay: L2 on kernels (classifiers); decoupled weight decay of the optimizer
      for language models (the LM builder has no regulariser argument).
    divergence_retries: LM: restarts, each at ``retry_lr_factor`` times the rate, when
      training diverges or stays worse than the unigram model early in the first epoch
      (the search children's rule, :class:`nas_tf.training.lm.LMRecipe`). A divergence
      after a complete epoch rolls back to the last saved epoch and goes on from there;
      before one, the restart starts over from the same initial weights. A resumed run
      continues at the lowered rate. 0: a divergence stops with an error, and a run that
      stays worse than the unigram model trains to the end with a warning.
    retry_lr_factor: LM: rate multiplier per restart.
    collapse_margin: LM: a run that learned and later rose back above the unigram model
      (mean over 20 windows above it and more than this many nats above its lowest mean
      since the first epoch's unigram check) restarts like a divergence; 0 = off (see
      :class:`nas_tf.training.lm.LMRecipe`). Search children do not watch for this.
    worsen_margin: LM: an epoch whose validation perplexity is more than this fraction
      above the previous epoch's is undone: the run rolls back to the previous epoch and
      goes on at ``retry_lr_factor`` times the rate, as after a divergence (it uses one
      of ``divergence_retries``; with none left the epoch stands, with a warning). A
      cell that learns in epoch 1 and then climbs at lr 1 (docs/RESULTS.md §2) is
      unstable, not overfitting; 0 = off.
    unroll: LM: write the training model's time loop out in the graph: the same maths,
      a 2-5x longer first step, and steps a median 1.05x faster on CPU (0.95-1.37x over
      10 cells, a noisy measurement: docs/RESULTS.md §3), so off by default. The saved
      model keeps the loop either way, so it takes sequences of any length.
  """

  LR_SCHEDULES = ("constant", "cosine", "step", "decay_after")

  task: str
  data_dir: str
  output_dir: str
  lr_decay_every: int = 10
  augment: bool = True
  validation_size: int = 5000
  early_stopping_patience: int = 0
  seed: int = 0
  cache_dir: Optional[str] = None
  retry_lr_factor: float = 0.25
  collapse_margin: float = 0.5
  worsen_margin: float = 0.1
  unroll: bool = False

  def __post_init__(self):
    super().__post_init__()
    _check(isinstance(self.task, str) and bool(self.task),
           f"task must be a task reference (a name or FILE.py:ATTR), got {self.task!r}")
    for name in ("epochs", "batch_size", "lr_decay_every", "lm_units", "lm_layers",
                 "num_steps"):
      value = getattr(self, name)
      _check(isinstance(value, int) and value >= 1, f"{name} must be an int >= 1, got "
             f"{value!r}")
    _check(0 < self.lr_decay_factor <= 1,
           f"lr_decay_factor must lie in (0, 1], got {self.lr_decay_factor!r}")
    _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay!r}")
    _check(self.early_stopping_patience >= 0,
           f"early_stopping_patience must be >= 0, got {self.early_stopping_patience!r}")
    _check(isinstance(self.divergence_retries, int) and self.divergence_retries >= 0,
           f"divergence_retries must be an int >= 0, got {self.divergence_retries!r}")
    _check(0 < self.retry_lr_factor < 1,
           f"retry_lr_factor must lie in (0, 1), got {self.retry_lr_factor!r}")
    _check(self.collapse_margin >= 0,
           f"collapse_margin must be >= 0 (0 = off), got {self.collapse_margin!r}")
    _check(self.worsen_margin >= 0,
           f"worsen_margin must be >= 0 (0 = off), got {self.worsen_margin!r}")


def epoch_learning_rate(config: FinalTrainingConfig, epoch: int, base: float) -> float:
  """The language model's rate in 0-based ``epoch`` (it changes only between epochs)."""
  if config.lr_schedule == "constant":
    return base
  if config.lr_schedule == "cosine":
    return base * 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
  if config.lr_schedule == "step":
    return base * config.lr_decay_factor ** (epoch // config.lr_decay_every)
  return lm_training.decay_after(base, epoch, config.lr_decay_start, config.lr_decay_factor)


class _LMBackup:
  """Per-epoch resume state of a language model: weights, optimiser, history (backup/).

  After a restart at a lower rate, ``attempt.json`` names the attempt in progress (its
  initial rate and why earlier ones were restarted), and every saved state carries the
  rate of its attempt. A restart after a complete epoch relabels that epoch's state with
  the new rate (a rollback: it goes on from there); any other state of another rate, e.g.
  left by a crash between the two writes or by a run with another ``--learning_rate``,
  is deleted when met and never resumed.
  """

  def __init__(self, directory: str, configured_lr: float):
    self.directory = directory
    self.weights = os.path.join(directory, "model.weights.h5")
    self.optimizer = os.path.join(directory, "optimizer.npz")
    self.state = os.path.join(directory, "state.json")
    self.attempt_file = os.path.join(directory, "attempt.json")
    self.configured_lr = configured_lr
    self.base_lr, self.restarts = configured_lr, []
    if os.path.exists(self.attempt_file):
      saved = json.loads(pathlib.Path(self.attempt_file).read_text())
      if saved.get("configured_lr") == configured_lr:
        self.base_lr, self.restarts = saved["learning_rate"], saved["restarts"]
      else:  # the user changed --learning_rate: the old attempts do not apply
        logging.info("Ignoring %s: written for learning_rate %s, now %s",
                     self.attempt_file, saved.get("configured_lr"), configured_lr)

  def restart(self, learning_rate: float, restarts: list) -> int:
    """Starts the next attempt at ``learning_rate``; returns the epoch it goes on from.

    A divergence after a complete epoch rolls back: the last saved epoch (it trained and
    validated to finite losses) continues at the lower rate, so a long run that diverges
    late keeps its earlier epochs. Before any saved epoch the attempt starts over.
    """
    os.makedirs(self.directory, exist_ok=True)
    # The new attempt is recorded first: from then on the old state no longer matches it,
    # so a crash before the state is relabelled below resumes nothing of the old attempt.
    results.atomic_write_text(self.attempt_file, json.dumps(
        {"configured_lr": self.configured_lr, "learning_rate": learning_rate,
         "restarts": restarts}))
    failed_lr, self.base_lr, self.restarts = self.base_lr, learning_rate, restarts
    state = self._read_state()
    if state is not None and state.get("learning_rate") == failed_lr:
      # The failed attempt's own last epoch: this is the only state that is relabelled.
      results.atomic_write_text(self.state, json.dumps({**state, "learning_rate": learning_rate}))
      logging.info("Rolling back to the end of epoch %d, going on at lr %.4g",
                   state["epoch"], learning_rate)
      return state["epoch"]
    self._drop_state()
    return 0

  def _read_state(self):
    if not os.path.exists(self.state):
      return None
    return json.loads(pathlib.Path(self.state).read_text())

  def _drop_state(self) -> None:
    for path in (self.state, self.weights, self.optimizer):  # the state file first
      if os.path.exists(path):
        os.remove(path)

  def clear(self) -> None:
    """Drops every trace of the attempts (all failed: a rerun starts from its flags)."""
    shutil.rmtree(self.directory, ignore_errors=True)

  def restore(self, model, optimizer):
    state = self._read_state()
    if state is None:
      return 0, None
    if state.get("learning_rate", self.configured_lr) != self.base_lr:
      logging.info("Not resuming from %s (deleted): it belongs to an attempt at lr %s",
                   self.directory, state.get("learning_rate"))
      self._drop_state()  # so that no later restart can adopt it
      return 0, None
    model.load_weights(self.weights)
    with np.load(self.optimizer) as saved:
      for k, variable in enumerate(optimizer.variables):
        variable.assign(saved[f"v{k}"])
    logging.info("Resuming final training after epoch %d from %s", state["epoch"],
                 self.directory)
    return state["epoch"], state["history"]

  def save(self, epoch, model, optimizer, history):
    os.makedirs(self.directory, exist_ok=True)
    model.save_weights(self.weights)
    np.savez(self.optimizer, **{f"v{k}": np.asarray(v) for k, v in
                                enumerate(optimizer.variables)})
    # The state file is written last and atomically: it names a complete backup.
    results.atomic_write_text(self.state, json.dumps(
        {"epoch": epoch + 1, "learning_rate": self.base_lr, "history": history}))


def finished(spec, config: FinalTrainingConfig) -> dict | None:
  """The metrics of this very training if ``config.output_dir`` already holds them.

  A rerun of a finished command must neither retrain for hours nor overwrite the model it
  finished: the same spec and settings return the saved metrics; other ones are refused,
  since the directory's model and metrics would no longer say what was trained.
  (``output_dir`` itself may differ: a run directory may have been moved.)
  """
  out = config.output_dir
  metrics_path = os.path.join(out, "metrics.json")
  if not os.path.exists(metrics_path):
    return None
  saved = {}
  for name in ("spec.json", "final_config.json"):
    path = os.path.join(out, name)
    saved[name] = json.loads(pathlib.Path(path).read_text()) if os.path.exists(path) else None
  now = json.loads(json.dumps(dataclasses.asdict(config)))  # compared as saved, like spec
  before = dict(saved["final_config.json"] or {}, output_dir=config.output_dir)
  changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
  if saved["spec.json"] != json.loads(json.dumps(specs_lib.trained_dict(spec))):
    changed.insert(0, "spec")
  if changed:
    raise ValueError(f"{out} holds a finished training with other settings ({', '.join(changed)} "
                     "differ); choose another --output_dir, or delete its metrics.json to "
                     "train again")
  logging.info("%s already holds this training's result (metrics.json): nothing to train. "
               "Delete metrics.json, or choose another --output_dir, to train again.", out)
  return json.loads(pathlib.Path(metrics_path).read_text())


def _unless_finished(train):
  """Wraps a ``train(task, spec, config)``: a finished training returns its metrics
  (:func:`finished`) instead of training again."""
  @functools.wraps(train)
  def train_once(task, spec, config: FinalTrainingConfig) -> dict:
    done = finished(spec, config)
    return done if done is not None else train(task, spec, config)
  return train_once


def _start(task, spec, config: FinalTrainingConfig):
  """Checks, writes ``spec.json`` / ``final_config.json``, loads the data: ``(data, t0)``."""
  task.check_spec(spec)
  task.check_data(config.data_dir)
  start = time.monotonic()
  os.makedirs(config.output_dir, exist_ok=True)
  results.atomic_write_text(
      os.path.join(config.output_dir, "spec.json"),
      json.dumps(specs_lib.trained_dict(spec), indent=2, sort_keys=True) + "\n")
  results.atomic_write_text(os.path.join(config.output_dir, "final_config.json"),
                            json.dumps(dataclasses.asdict(config), indent=2,
                                       sort_keys=True) + "\n")
  keras.utils.set_random_seed(config.seed)
  data = task.load_data(config.data_dir, seed=config.seed, cache_dir=config.cache_dir,
                        validation_size=config.validation_size)
  return data, start


def unigram_warning(val_perplexity: float, unigram: float, lr_used: float,
                    retry_factor: float, attempts: int) -> str:
  """What to say of a final training that ended no better than the unigram model."""
  tried = f"lr {lr_used:.4g}" + (f" (after {attempts - 1} restart(s) at higher rates)"
                                 if attempts > 1 else "")
  return (f"validation perplexity {val_perplexity:.1f} is no better than the unigram "
          f"model's {unigram:.1f}: this cell did not learn under this recipe at {tried}. "
          f"Try --learning_rate={lr_used * retry_factor:.4g} or more --epochs before "
          "comparing it.")


@_unless_finished
def train_final_lm(task, spec, config: FinalTrainingConfig) -> dict:
  """Retrains a language model with the recipe of §4.2 (``nas_tf.training.lm``).

  Rerunning with the same ``output_dir`` after an interruption resumes from the last
  finished epoch (weights, optimiser state, rate and restarts); rerunning a finished
  training returns its metrics (:func:`finished`).

  Args:
    task: A sequence-model :class:`nas_tf.tasks.TrainedChildTask` (``ptb``): its data
      has ``vocab``, ``batch_arrays(split, batch, num_steps)`` and ``save_vocab``.
    spec: A recurrent cell spec, or the name of one of the task's baseline cells.
    config: The training settings.

  Returns:
    The metrics written to ``metrics.json``: ``val_perplexity`` / ``test_perplexity`` of
    the best-validation weights, ``best_epoch``, ``epochs_run``, ``num_params``,
    ``history``, the rate used and restarts, timings.
  """
  data, start = _start(task, spec, config)
  dead = (specs_lib.dead_cell_reason(spec) if isinstance(spec, specs_lib.RNNCellSpec)
          else None)
  if dead:
    # A search never returns such a cell (it is not trained there); a hand-written or
    # sampled spec can be one, and a whole run would end at the unigram model.
    logging.warning("%s: this run will end near the unigram model's perplexity whatever "
                    "its length; stop it (Ctrl-C) unless that is what you want to measure",
                    dead)
  # The ids the model's embedding rows stand for: without them the trained model
  # cannot be used on text.
  data.save_vocab(os.path.join(config.output_dir, "vocab.txt"))
  out = _train_final_lm(spec, data, config)
  return _finish(config, out, "perplexity", start)


def _train_final_lm(spec, data, config: FinalTrainingConfig) -> dict:
  vocab_size = len(data.vocab)

  def build(return_state):
    return children.build_language_model(
        spec, vocab_size=vocab_size, units=config.lm_units, num_layers=config.lm_layers,
        input_dropout=config.dropout, hidden_dropout=config.dropout,
        output_dropout=config.dropout, tie_embeddings=config.tie_embeddings,
        name="final_lm", init_scale=config.init_scale, return_state=return_state,
        unroll=return_state and config.unroll)

  def model_fn():
    keras.utils.set_random_seed(config.seed)
    return build(True)

  windows = {s: child_training.lm_windows(data, name, config.batch_size, config.num_steps)
             for s, name in (("train", "train"), ("val", "valid"), ("test", "test"))}
  backup = _LMBackup(os.path.join(config.output_dir, "backup"), config.learning_rate)
  # After a restart (and a crash), go on with the lowered rate and the retries left.
  earlier_restarts = backup.restarts
  recipe = child_training.lm_recipe(
      config, learning_rate=backup.base_lr, weight_decay=config.weight_decay,
      divergence_retries=max(0, config.divergence_retries - len(earlier_restarts)),
      retry_lr_factor=config.retry_lr_factor,
      collapse_margin=config.collapse_margin or None)
  best_path = os.path.join(config.output_dir, "checkpoints", "best.weights.h5")
  os.makedirs(os.path.dirname(best_path), exist_ok=True)

  def on_restart(learning_rate, restarts):
    if not backup.restart(learning_rate, earlier_restarts + restarts) and os.path.exists(
        best_path):
      os.remove(best_path)  # starting over: the failed attempt's best epoch is not ours
  writer = tf.summary.create_file_writer(os.path.join(config.output_dir, "tensorboard"))

  def on_epoch_end(epoch, model, optimizer, history):
    val = history["val_loss"]
    if (config.worsen_margin and len(val) >= 2 and math.isfinite(val[-2])
        and not val[-1] <= val[-2] + math.log1p(config.worsen_margin)):
      why = (f"validation perplexity {lm_training.perplexity(val[-1]):.1f} after epoch "
             f"{epoch + 1}, {lm_training.perplexity(val[-2]):.1f} after the one before "
             f"(limit: {100 * config.worsen_margin:.0f}% worse) with lr "
             f"{history['lr'][-1]:.4g}")
      if len(backup.restarts) < config.divergence_retries:  # a restart is left
        # Raised before the backup below saves this epoch: the restart rolls back to the
        # previous epoch's saved state and goes on from there at the lower rate.
        raise lm_training.Worsened(why)
      logging.warning("%s; no restart left (--divergence_retries), so it stands", why)
    with writer.as_default(step=epoch + 1):
      for key, values in history.items():
        tf.summary.scalar(key, values[-1])
      tf.summary.scalar("val_perplexity", lm_training.perplexity(val[-1]))
    if math.isfinite(val[-1]) and val[-1] <= min(v for v in val if math.isfinite(v)):
      model.save_weights(best_path)
    backup.save(epoch, model, optimizer, history)
    patience = config.early_stopping_patience
    best_epoch = int(np.nanargmin(np.asarray(val, dtype=float)))
    return bool(patience) and epoch - best_epoch >= patience

  logging.info("Final training of %s, %d windows/epoch: %s",
               specs_lib.trained_describe(spec), windows["train"][0].shape[0], config)
  out = lm_training.train_lm(
      model_fn, windows["train"], {"val": windows["val"]}, config.epochs, recipe,
      vocab_size, steps_per_epoch=config.steps_per_epoch, on_epoch_end=on_epoch_end,
      on_start=backup.restore, lr_for_epoch=lambda e, b: epoch_learning_rate(config, e, b),
      on_restart=on_restart)
  model, history = out["model"], out["history"]
  restarts = earlier_restarts + out["restarts"]
  if model is None:
    backup.clear()  # so that a rerun with new flags starts from them
    raise RuntimeError(
        f"final training diverged after {len(restarts) + 1} attempt(s), the last at lr "
        f"{out['learning_rate']:.3g} ({out['diverged']}); rerun with a lower "
        f"--learning_rate, a smaller --clipnorm or more --divergence_retries")
  if os.path.exists(best_path):
    model.load_weights(best_path)
  num_windows = windows["train"][0].shape[0]
  metrics = {"task": config.task, "spec": specs_lib.trained_dict(spec),
             "describe": specs_lib.trained_describe(spec),
             "num_params": int(model.count_params()),
             "steps_per_epoch": min(num_windows, config.steps_per_epoch or num_windows),
             "epochs_run": len(history["loss"]),
             # As in search records: the initial rate actually used, the attempts, and
             # why earlier attempts were restarted.
             "lr_used": out["learning_rate"], "attempts": len(restarts) + 1,
             "restarts": restarts,
             "history": {"loss": history["loss"], "lr": history["lr"],
                         "val_loss": history["val_loss"],
                         "val_perplexity": [lm_training.perplexity(v)
                                            for v in history["val_loss"]]}}
  val = np.asarray(history["val_loss"], dtype=float)
  metrics["best_epoch"] = int(np.nanargmin(val)) + 1 if np.isfinite(val).any() else None
  evaluate = lm_training.evaluator(model)  # one traced step for both splits
  for split in ("val", "test"):
    xent = evaluate(windows[split], config.carry_state)
    metrics[f"{split}_loss"] = xent
    metrics[f"{split}_perplexity"] = lm_training.perplexity(xent)
  unigram = lm_training.unigram_perplexity(windows["train"][1], windows["val"][1], vocab_size)
  metrics["unigram_val_perplexity"] = unigram
  if not metrics["val_perplexity"] < unigram:
    # Not a result: word frequencies alone do as well. Say so where it is read, with a
    # rate this run has not tried.
    logging.warning("%s", unigram_warning(metrics["val_perplexity"], unigram,
                                          out["learning_rate"], config.retry_lr_factor,
                                          len(restarts) + 1))
  # The saved model is the plain tokens -> logits one (what export and users expect),
  # with the trained weights: both variants have the same layers in the same order.
  plain = build(False)
  plain.set_weights(model.get_weights())
  plain.save(os.path.join(config.output_dir, "model.keras"))
  return metrics


class EpochLog(keras.callbacks.Callback):
  """Progress of a long final training: a line at most every ``every`` seconds within an
  epoch (a CIFAR-10 epoch on 2 cores takes minutes), one per epoch with the time to go,
  and ``history.json`` rewritten after each epoch, so that a run's curve can be read
  (and committed) while it trains. The file survives a resume: ``BackupAndRestore``
  restores the weights and the epoch, not Keras' ``History``."""

  def __init__(self, path: str, epochs: int, steps: int, every: float = 60.0):
    super().__init__()
    self.path, self.epochs, self.steps, self.every = pathlib.Path(path), epochs, steps, every
    self.rows = json.loads(self.path.read_text()) if self.path.exists() else []
    self.epoch_start = self.last = time.monotonic()

  def on_epoch_begin(self, epoch, logs=None):
    self.epoch_start = self.last = time.monotonic()

  def on_train_batch_end(self, batch, logs=None):
    now = time.monotonic()
    if self.every and now - self.last >= self.every:
      self.last = now
      logs = logs or {}
      logging.info("epoch %d/%d step %d/%d: loss %.4f, accuracy %.4f (%.0f s into it)",
                   len(self.rows) + 1, self.epochs, batch + 1, self.steps,
                   float(logs.get("loss", math.nan)), float(logs.get("accuracy", math.nan)),
                   now - self.epoch_start)

  def on_epoch_end(self, epoch, logs=None):
    seconds = time.monotonic() - self.epoch_start
    row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
           "seconds": seconds}
    self.rows = [r for r in self.rows if r["epoch"] < epoch + 1] + [row]
    self.path.write_text(json.dumps(self.rows, indent=1) + "\n")
    logging.info("epoch %d/%d: val_accuracy %.4f (train %.4f), %.0f s; about %.0f min to go",
                 epoch + 1, self.epochs, row.get("val_accuracy", math.nan),
                 row.get("accuracy", math.nan), seconds,
                 seconds * (self.epochs - epoch - 1) / 60)


@_unless_finished
def train_final_classifier(task, spec, config: FinalTrainingConfig) -> dict:
  """Retrains a classifier child with ``model.fit`` and writes ``metrics.json`` (§4.1).

  Keeps the best-on-validation weights (``ModelCheckpoint``), can stop early, resumes an
  interrupted run (``BackupAndRestore``: weights, optimiser and schedule position) and
  logs to TensorBoard. A finished training is not run again (:func:`finished`).

  Args:
    task: A :class:`nas_tf.tasks.TrainedChildTask`: ``build_child(spec, data, config,
      final=True)`` makes the network, ``load_data`` the data (``batched`` splits
      'train', 'validation', 'test').
    spec: An architecture of the task's space.
    config: The training settings.

  Returns:
    The metrics written to ``metrics.json``: ``val_accuracy`` / ``test_accuracy`` of the
    best-validation weights, ``best_epoch``, ``epochs_run``, ``num_params``, ``history``,
    timings, and the task's ``preprocessing`` (what an export needs to take raw inputs).

  Raises:
    ValueError: the spec belongs to another space, or bad data / settings.
    FileNotFoundError: the data is missing.
  """
  data, start = _start(task, spec, config)
  model = task.build_child(spec, data, config, final=True)
  steps_per_epoch = config.steps_per_epoch or math.ceil(
      len(data.arrays("train")[1]) / config.batch_size)
  model.compile(optimizer=optimizers.make_optimizer(config, steps_per_epoch),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  train = data.batched("train", config.batch_size, augment=config.augment, seed=config.seed)
  splits = {"val": data.batched("validation", config.batch_size),
            "test": data.batched("test", config.batch_size)}
  metric, mode = "accuracy", "max"
  logging.info("Final training of %s (%d params), %d steps/epoch: %s",
               specs_lib.trained_describe(spec), model.count_params(), steps_per_epoch,
               config)
  if config.steps_per_epoch:
    train = train.repeat()
  best_path = os.path.join(config.output_dir, "checkpoints", "best.weights.h5")
  os.makedirs(os.path.dirname(best_path), exist_ok=True)
  monitor = f"val_{metric}"
  callbacks = [
      keras.callbacks.BackupAndRestore(os.path.join(config.output_dir, "backup")),
      keras.callbacks.ModelCheckpoint(best_path, monitor=monitor, mode=mode,
                                      save_best_only=True, save_weights_only=True),
      keras.callbacks.TensorBoard(os.path.join(config.output_dir, "tensorboard"),
                                  write_graph=False),
      keras.callbacks.TerminateOnNaN(),
      EpochLog(os.path.join(config.output_dir, "history.json"), config.epochs,
               config.steps_per_epoch or steps_per_epoch)]
  if config.early_stopping_patience:
    callbacks.append(keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=config.early_stopping_patience))
  history = model.fit(train, validation_data=splits["val"], epochs=config.epochs,
                      steps_per_epoch=config.steps_per_epoch, callbacks=callbacks,
                      shuffle=False, verbose=0).history  # Datasets shuffle themselves.
  history = {k: [float(v) for v in vs] for k, vs in history.items()}
  if os.path.exists(best_path):
    model.load_weights(best_path)
  else:
    logging.warning("No best checkpoint (validation metric never finite); evaluating "
                    "the last weights.")
  model.save(os.path.join(config.output_dir, "model.keras"))
  out = {"task": config.task, "spec": specs_lib.trained_dict(spec),
         "describe": specs_lib.trained_describe(spec),
         "num_params": int(model.count_params()), "steps_per_epoch": steps_per_epoch,
         # What the model's inputs are made from (e.g. whitening statistics): an export
         # needs it to accept raw inputs.
         "preprocessing": task.preprocessing(data),
         "epochs_run": len(history.get("loss", [])), "history": history}
  val_history = history.get(monitor, [])
  if val_history:
    pick = np.nanargmax if mode == "max" else np.nanargmin
    finite = [v if math.isfinite(v) else float("nan") for v in val_history]
    out["best_epoch"] = (int(pick(finite)) + 1) if any(map(math.isfinite, finite)) else None
  for split, ds in splits.items():
    scores = model.evaluate(ds, verbose=0, return_dict=True)
    out[f"{split}_{metric}"] = float(scores[metric])
    out[f"{split}_loss"] = float(scores["loss"])
  return _finish(config, out, metric, start)


def _finish(config: FinalTrainingConfig, out: dict, metric: str, start: float) -> dict:
  """Writes metrics.json, drops the resume backup, logs the result."""
  out["train_seconds"] = time.monotonic() - start
  results.atomic_write_text(os.path.join(config.output_dir, "metrics.json"),
                            json.dumps(out, indent=2, sort_keys=True) + "\n")
  shutil.rmtree(os.path.join(config.output_dir, "backup"), ignore_errors=True)
  logging.info("Final %s: val %s %.4g, test %s %.4g (best epoch %s of %d)", config.task,
               metric, out[f"val_{metric}"], metric, out[f"test_{metric}"],
               out.get("best_epoch"), out["epochs_run"])
  return out


__all__ = ["FinalTrainingConfig", "train_final_classifier", "train_final_lm"]
