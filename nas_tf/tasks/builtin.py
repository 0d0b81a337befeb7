"""The paper's two tasks: Penn Treebank cells (§4.2) and CIFAR-10 networks (§4.1).

Everything that differs between them lives here: data, the child network, the reward,
the bar a child must clear to have learned, ``nas_train``'s recipe and what a trained
export holds. The training code they share is task-agnostic
(:mod:`nas_tf.training.child`, :mod:`nas_tf.training.final`).
"""

from __future__ import annotations

import math
import time
from typing import Optional

from absl import logging

from nas_tf import data_sources
from nas_tf import rewards as rewards_lib
from nas_tf import search_space as search_space_lib
from nas_tf import specs as specs_lib
from nas_tf.tasks.base import SMALL_BUDGET_CONTROLLER, TrainedChildTask


def _timed_load(name: str, data_dir: str, load, sizes) -> object:
  """``load()`` with a line before and after (sizes, seconds): loading can take minutes."""
  start = time.monotonic()
  logging.info("Loading %s data from %s ...", name, data_dir)
  out = load()
  logging.info("Loaded %s data in %.1f s: %s", name, time.monotonic() - start, sizes(out))
  return out


class PTBTask(TrainedChildTask):
  """Language modelling on Penn Treebank with a searched recurrent cell (paper §4.2).

  Reward ``c / ppl^2`` (c = 80); a child whose perplexity is above ``e`` times the
  vocabulary size has diverged (see :meth:`judge`).
  """

  name = "ptb"
  space_kind = "rnn"
  metric = "val_perplexity"
  metric_label = "val_ppl"
  higher_is_better = False
  testdata = "ptb"
  presets = {
      # Sized so that the first command a newcomer types finishes in a minute or two.
      "tiny": {"max_children": 4, "children_per_step": 2, "child.epochs": 1,
               "child.batch_size": 8, "child.optimizer": "sgd", "child.learning_rate": 1.0,
               "child.clipnorm": 5.0, "child.lm_units": 16, "child.num_steps": 10,
               "controller.learning_rate": 5e-4},
      # The LM recipe of Zaremba et al. (2014) that §4.2 follows: SGD lr 1 on the loss
      # summed over the window, clip 5, uniform init, state carried (ChildTrainingConfig).
      # Size and budget: the proxy that ranks cells most like nas_train's own training of
      # those measured (docs/RESULTS.md §2b, "Against nas_train"): 2x32 units on the
      # first 150k training tokens, ~30 CPU-s a child. Batch 10 rather than Zaremba's 20:
      # the same tokens in twice the SGD steps lift the slow starters (NASCell among them)
      # off the unigram plateau, for about 4% more CPU. Init +-0.25 instead of Zaremba's
      # 0.1: at 32 units the 0.1 init starts multiplicative cells with signals too small
      # to leave that plateau within 150k tokens (§2b, "Init scale").
      # Controller: m = 1 at Adam lr 0.01 (SMALL_BUDGET_CONTROLLER).
      "real": {"max_children": 40, **SMALL_BUDGET_CONTROLLER, "child.epochs": 1,
               "child.batch_size": 10, "child.optimizer": "sgd", "child.learning_rate": 1.0,
               "child.clipnorm": 5.0, "child.lm_units": 32, "child.num_steps": 20,
               "child.max_train_examples": 150_000, "child.init_scale": 0.25,
               "child.max_eval_examples": 20_000, "child.dropout": 0.0,
               "child.weight_decay": 0.0},
  }

  # nas_train: tiny = a smoke test on testdata/; real = Zaremba et al.'s (2014) "small"
  # recipe (2x200, 13 epochs, lr 1 halved per epoch after 4, no dropout; their LSTM ends
  # near 115 test perplexity), so a found cell is compared with a published baseline.
  # Their "medium" one (650 units, dropout 0.5, 39 epochs, decay 0.8 after 6): docs/EXPORT.md.
  final_presets = {
      "tiny": dict(epochs=2, batch_size=8, optimizer="sgd", learning_rate=1.0,
                   lr_schedule="decay_after", lr_decay_start=1, lr_decay_factor=0.5,
                   weight_decay=0.0, dropout=0.1, tie_embeddings=True, lm_units=16,
                   lm_layers=2, num_steps=10, clipnorm=5.0),
      "real": dict(epochs=13, batch_size=20, optimizer="sgd", learning_rate=1.0,
                   lr_schedule="decay_after", lr_decay_start=4, lr_decay_factor=0.5,
                   weight_decay=0.0, dropout=0.0, tie_embeddings=False, lm_units=200,
                   lm_layers=2, num_steps=20, clipnorm=5.0, init_scale=0.1,
                   early_stopping_patience=0),
  }
  sequence_model = True
  paper_space = True
  # Named cells nas_train trains with exactly the recipe of a found one (§4.2 compares
  # the found cell against the LSTM; 'nascell' is the paper's published cell).
  baseline_cells = ("lstm", "lstm_forget_bias", "nascell")  # children.NAMED_CELLS

  def default_space(self) -> dict:
    return search_space_lib.paper_space("rnn")

  def check_data(self, data_dir: str, bundled: bool = False) -> None:
    if bundled:
      data_sources.check_bundled(data_dir)
    data_sources.check_ptb_dir(data_dir)

  def load_data(self, data_dir: str, seed: int = 0, cache_dir: Optional[str] = None,
                validation_size: Optional[int] = None):
    del seed, cache_dir, validation_size  # PTB has fixed splits and no archive
    from nas_tf import data  # pylint: disable=g-import-not-at-top
    return _timed_load("ptb", data_dir, lambda: data.load_ptb(data_dir), lambda out: (
        f"vocabulary {len(out.vocab):,}, " + ", ".join(
            f"{split} {len(out.split(split)):,} tokens" for split in ("train", "valid", "test"))))

  def check_spec(self, spec) -> None:
    if isinstance(spec, str):
      if spec not in self.baseline_cells:
        raise ValueError(f"unknown baseline cell {spec!r}; use one of {self.baseline_cells}")
      return
    super().check_spec(spec)

  def train_child(self, spec, data, config, seed: int = 0, rungs=None) -> dict:
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    return child_training.train_and_evaluate(spec, data, config, seed=seed, rungs=rungs)

  def train_final(self, spec, config) -> dict:
    from nas_tf.training import final as final_training  # pylint: disable=g-import-not-at-top
    return final_training.train_final_lm(self, spec, config)

  def export_trained(self, run: dict, model, export_dir: str, picture: bool = True) -> dict:
    from nas_tf.export import trained as export_trained  # pylint: disable=g-import-not-at-top
    return export_trained.export_lm(run, model, export_dir, picture)

  def learned(self, val_metric) -> bool:
    return super().learned(val_metric) and (
        float(val_metric) < rewards_lib.PTB_UNIGRAM_VAL_PERPLEXITY)

  def judge(self, metrics: dict) -> tuple[str, Optional[str]]:
    """Non-finite perplexity, or one more than ``e`` x the vocabulary size, is 'nan'.

    An untrained model sits at about the vocabulary size, so the margin (1 nat per token
    worse than guessing uniformly, the training-time test of ``nas_tf.training.lm``)
    flags divergence, not slow learning. ``metrics['vocab_size']``: 10,000 when absent.
    """
    status, why = super().judge(metrics)  # non-finite
    if why:
      return status, why
    ppl = metrics["val_perplexity"]
    vocab = metrics.get("vocab_size") or 10_000
    if float(ppl) > math.e * vocab:
      return "nan", (f"diverged: validation perplexity {float(ppl):.4g} is above e x the "
                     f"vocabulary size {vocab} (far worse than guessing uniformly)")
    return "ok", None

  reward_power = 2.0  # c / perplexity ** 2

  def reward(self, metrics: dict, child_config=None) -> float:
    del child_config
    return rewards_lib.ptb_reward(metrics.get("val_perplexity", float("nan")))


class CIFAR10Task(TrainedChildTask):
  """Image classification on CIFAR-10 with a searched conv network (paper §4.1).

  Reward: the maximum validation accuracy over the last ``reward_epochs`` epochs, cubed.
  """

  name = "cifar10"
  space_kind = "cnn"
  metric = "val_accuracy"
  metric_label = "val_acc"
  higher_is_better = True
  num_classes = 10
  testdata = "cifar10/png"
  presets = {
      "tiny": {"max_children": 4, "children_per_step": 2, "child.epochs": 2,
               "child.batch_size": 8, "depth.start": 3, "validation_size": 10},
      # A small but meaningful CPU search; scale up with the flags.
      "real": {"max_children": 40, **SMALL_BUDGET_CONTROLLER, "child.epochs": 5,
               "child.batch_size": 64, "child.optimizer": "momentum",
               "child.learning_rate": 0.1, "child.weight_decay": 1e-4, "depth.start": 6,
               "child.max_train_examples": 5000,
               "child.max_eval_examples": 2000, "validation_size": 5000},
  }

  # nas_train: tiny = a smoke test on testdata/; real = a CPU-sized final training (the
  # paper's §4.1 settings: Nesterov momentum, weight decay 1e-4, cosine-like schedule,
  # reached by raising epochs).
  final_presets = {
      "tiny": dict(epochs=2, batch_size=8, optimizer="momentum", learning_rate=0.05,
                   lr_schedule="cosine", lr_decay_factor=0.1, weight_decay=1e-4,
                   dropout=0.0, validation_size=10),
      "real": dict(epochs=100, batch_size=64, optimizer="momentum", learning_rate=0.1,
                   lr_schedule="cosine", lr_decay_factor=0.1, weight_decay=1e-4,
                   dropout=0.0, validation_size=5000, early_stopping_patience=0),
  }

  paper_space = True
  # Named networks nas_train trains with a found network's recipe, to compare (§4.1
  # compares with hand-designed ResNets): children.NAMED_NETWORKS.
  baseline_cells = ("resnet20",)

  def default_space(self) -> dict:
    return search_space_lib.paper_space("cnn")

  def costs(self, spec) -> dict:
    """Multiply-accumulates per 32x32 image of the full network (``objective.target_macs``)."""
    if not isinstance(spec, specs_lib.CNNSpec):
      return {}
    from nas_tf import children  # pylint: disable=g-import-not-at-top
    return {"macs": children.estimate_cnn_macs(spec, (32, 32, 3), self.num_classes)}

  def check_spec(self, spec) -> None:
    if isinstance(spec, str):
      if spec not in self.baseline_cells:
        raise ValueError(f"unknown baseline network {spec!r}; use one of "
                         f"{self.baseline_cells}")
      return
    super().check_spec(spec)

  def check_data(self, data_dir: str, bundled: bool = False) -> None:
    if bundled:
      data_sources.check_bundled(data_dir)
    data_sources.check_cifar10_source(data_dir)

  def load_data(self, data_dir: str, seed: int = 0, cache_dir: Optional[str] = None,
                validation_size: Optional[int] = None):
    from nas_tf import data  # pylint: disable=g-import-not-at-top
    kwargs = {} if validation_size is None else {"validation_size": validation_size}
    return _timed_load(
        "cifar10", data_dir,
        lambda: data.load_cifar10(data_dir, seed=seed, cache_dir=cache_dir, **kwargs),
        lambda out: f"{len(out.class_names)} classes, " + ", ".join(
            f"{k} {v:,} images" for k, v in out.num_examples.items()))

  def build_child(self, spec, data, config, final: bool = False):
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    if not final:
      return child_training.default_cnn_builder(spec, data, config)
    import keras  # pylint: disable=g-import-not-at-top
    from nas_tf import children  # pylint: disable=g-import-not-at-top
    images, _ = data.arrays("train")
    shape = tuple(int(d) for d in images.shape[1:])
    if isinstance(spec, str):  # a baseline network, not a spec of the space
      return children.build_named(spec, shape, len(data.class_names), config.weight_decay)
    base = children.build_cnn(spec, input_shape=shape, num_classes=len(data.class_names),
                              weight_decay=config.weight_decay, name="final_cnn")
    if config.dropout <= 0:
      return base
    # Dropout before the classifier; the body is the search's child unchanged.
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(
        base.get_layer("global_pool").output)
    logits = keras.layers.Dense(len(data.class_names), name="logits",
                                kernel_regularizer=children.l2_weight_decay(
                                    config.weight_decay))(x)
    return keras.Model(base.input, logits, name="final_cnn")

  def preprocessing(self, data) -> dict:
    # The model takes whitened images: an export needs these to accept raw pixels.
    return {"mean": [float(v) for v in data.mean], "std": [float(v) for v in data.std],
            "class_names": list(data.class_names)}

  def export_trained(self, run: dict, model, export_dir: str, picture: bool = True) -> dict:
    if isinstance(run["spec"], str):  # a baseline network: the generic export
      return super().export_trained(run, model, export_dir, picture)
    from nas_tf import export  # pylint: disable=g-import-not-at-top
    return export.export_cnn(
        run["spec"], export_dir, input_shape=tuple(int(d) for d in model.input_shape[1:]),
        num_classes=int(model.output_shape[-1]), picture=picture, model=model,
        preprocessing=run["metrics"].get("preprocessing"))

  def learned(self, val_metric) -> bool:
    return super().learned(val_metric) and (
        float(val_metric) > rewards_lib.CIFAR_LEARNER_ACCURACY)

  reward_power = 3.0  # accuracy ** 3

  def reward(self, metrics: dict, child_config=None) -> float:
    epochs = 5 if child_config is None else child_config.reward_epochs
    return rewards_lib.cifar_reward(metrics.get("val_accuracy_history", []), epochs)


PTB = PTBTask()
CIFAR10 = CIFAR10Task()
