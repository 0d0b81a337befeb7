"""The Task protocol: a search problem, independent of the strategy that searches it."""

from __future__ import annotations

import math
import os
from typing import Optional

from nas_tf import data_sources
from nas_tf import rewards as rewards_lib
from nas_tf import search_space as search_space_lib


# The real-data presets search tens of children, not the paper's 12,800, so the controller
# must learn from few updates: one child per step (m = 1) and Adam at lr 0.01 instead of
# m = 4..8 at the paper's 5e-4/6e-4. Adam's step hardly depends on the reward's scale, so
# what limits learning is the number of updates times the rate. Measured: on the
# NAS-Bench-201 table this is the setting that beats random at 150 queries on all three
# datasets (docs/RESULTS.md §5); on the PTB space with a toy reward, 52 children move the
# rewarded decision's frequency 0.37 -> 0.59 at m = 1, lr 0.01, but only to 0.40 at m = 4
# and not at all at m = 4, lr 5e-4 (section 1). The paper's values: examples/paper_*.flags.
SMALL_BUDGET_CONTROLLER = {"children_per_step": 1, "controller.learning_rate": 0.01}


class Task:
  """What is searched and how a child is judged (the third seam, beside Sampler/Evaluator).

  Subclass and override what differs; the defaults fit a task whose children are scored
  by a validation metric. A task knows nothing of the search strategy, and the strategy
  knows only the task's search space.

  Attributes:
    name: The registry key (``--task=NAME``).
    ref: What ``--task`` named to load it (see :func:`nas_tf.tasks.resolve`); saved as
      ``config.task`` so that resume, ``--config`` replay and workers load it again.
    space_kind: The ``kind`` of search space the task searches ('cnn', 'rnn', ...).
    metric: The metrics key of the validation value shown and ranked on.
    metric_label: Its short name in ``summary.txt``.
    higher_is_better: Direction of ``metric``.
    num_classes: Output classes of a classification task's children (None: not a
      classification task, or read from the data).
    testdata: The bundled data a run without ``--data_dir`` uses (relative to testdata/).
    presets: ``{"tiny": {...}, "real": {...}}``: search defaults by config field
      ("section.field"), for a run on ``testdata`` and on real data; flags given on the
      command line, then ``--set``, override them.
    trains_children: Its children are networks the package trains, in the search and
      by ``nas_train`` (:class:`TrainedChildTask`).
    paper_space: Its space is one of the paper's (``search_space.paper_space``).
    trains_itself_on_cluster: On a cluster the task trains its children itself
      (``TrainedChildTask.start_on_cluster``) instead of the package's closures, whose
      recipe is the paper's (e.g. a user's model compiled with its own loss and optimiser).
  """

  name: str = ""
  # How to load this task again in another process (a worker, a resumed run):
  # a registered name, or "path/to/file.py:ATTR" / "package.module:ATTR". Set by
  # nas_tf.tasks.resolve; the name when empty.
  ref: str = ""
  space_kind: str = ""
  metric: str = "val_metric"
  metric_label: str = "val"
  higher_is_better: bool = True
  num_classes: Optional[int] = None
  testdata: str = ""
  presets: dict = {}
  # Whether its children are networks the package trains (TrainedChildTask): in the
  # search, and again by nas_train (then nas_export --trained exports them).
  trains_children: bool = False
  # Whether it searches one of the paper's spaces, which --rnn_base / --strides /
  # --pooling shape (search_space.paper_space); otherwise its default_space is used.
  paper_space: bool = False
  trains_itself_on_cluster: bool = False

  def __reduce__(self):
    # Pickled (to a worker process) as its reference: the worker loads the same task,
    # from the registry, a file, a module or an entry point (nas_tf.tasks.resolve).
    from nas_tf import tasks  # pylint: disable=g-import-not-at-top
    return tasks.resolve, (self.ref or self.name,)

  def search_defaults(self, tiny: bool) -> dict:
    """Config field -> default value of a search of this task (a copy)."""
    return dict(self.presets.get("tiny" if tiny else "real", {}))

  def default_space(self) -> dict:
    """The task's default search space as ``space.to_dict()``."""
    return {"kind": self.space_kind}

  def make_space(self, space: Optional[dict] = None):
    """The search space (``space`` or the default), checked to fit the task."""
    space = dict(space or self.default_space())
    if space.get("kind") != self.space_kind:
      raise ValueError(f"task {self.name!r} needs a {self.space_kind!r} search space, got "
                       f"{space!r}")
    return search_space_lib.space_from_dict(space)

  def check_data(self, data_dir: str, bundled: bool = False) -> None:
    """Fails fast, naming the path and what was expected, before any child starts.

    ``bundled``: ``data_dir`` is the checkout's testdata/, used because no --data_dir
    was given.
    """
    if bundled:
      data_sources.check_bundled(data_dir)
    if not os.path.exists(data_dir):
      raise FileNotFoundError(f"--data_dir {data_dir!r} does not exist")

  def make_evaluator(self, config):
    """The task's own :class:`nas_tf.evaluator.Evaluator` for ``config`` (a SearchConfig),
    or None when the package trains its children (``trains_children``)."""
    if self.trains_children:
      return None
    raise NotImplementedError(f"task {self.name!r} has no evaluator; override "
                              "make_evaluator or pass evaluator= to search.run")

  def judge(self, metrics: dict) -> tuple[str, Optional[str]]:
    """``("ok", None)`` if an 'ok' child's metrics are usable, else ``("nan", why)``."""
    if self.metric not in metrics:  # a task's metric that its training does not log
      return "nan", (f"the metrics have no {self.metric!r} (the task's metric); they "
                     f"have {sorted(k for k in metrics if not k.startswith('_'))}")
    value = metrics.get(self.metric)
    if value is None or not math.isfinite(float(value)):
      return "nan", f"{self.metric} is {value!r} (diverged)"
    return "ok", None

  def reward(self, metrics: dict, child_config=None) -> float:
    """The reward of a judged-ok child (higher is better for every strategy)."""
    del child_config
    value = float(metrics[self.metric])
    return value if self.higher_is_better else -value

  # How the reward grows with the quality it measures (accuracy, 1 / perplexity): a
  # reward of quality ** p takes a cost factor as (quality x factor) ** p.
  reward_power = 1.0

  def with_cost(self, reward: float, factor: float, metrics: dict) -> float:
    """The reward with MnasNet's soft constraint (Tan et al. 2019, eq. 2) applied.

    MnasNet multiplies the *quality* (accuracy) by ``factor = (cost / target) ** w``, so
    the factor scales the quality this reward measures, whatever power of it the reward
    is: a reward of ``accuracy ** 3`` becomes ``(accuracy x factor) ** 3``, one of
    ``1 / perplexity ** 2`` takes ``factor ** 2``, and a lower-is-better metric's reward
    (``-value``) becomes ``-value / factor``.
    """
    del metrics
    if not self.higher_is_better and type(self).reward is Task.reward:
      return reward / factor
    return reward * factor ** self.reward_power

  def costs(self, spec) -> dict:
    """Costs of an architecture known without training it, e.g. ``{"macs": ...}``: kept
    in its record and available to the objective's targets. None by default."""
    del spec
    return {}

  def val_metric(self, metrics: dict) -> Optional[float]:
    value = metrics.get(self.metric)
    return None if value is None else float(value)

  def failure_reward(self) -> float:
    return rewards_lib.FAILURE_REWARD

  def learned(self, val_metric) -> bool:
    """Whether a validation value beats a model that learned only label frequencies.

    The bar separates children that learned something from those that did not (the
    unigram model on PTB, the majority class on CIFAR-10); a task without one says
    every finite value learned.
    """
    return val_metric is not None and math.isfinite(float(val_metric))

  def next_steps(self, output_dir: str, data_dir: Optional[str]) -> list[str]:
    """Lines logged when a search of this task ends: what to run next (none here)."""
    del output_dir, data_dir
    return []

  def __repr__(self):
    return f"<Task {self.name!r}>"


class TrainedChildTask(Task):
  """A task whose children are Keras networks trained on its data (paper §4.1, §4.2).

  The package trains every child of such a task with one code path
  (:mod:`nas_tf.training.child` in the search, in this process, in worker processes or
  on a cluster, and :mod:`nas_tf.training.final` for ``nas_train``); the task says what
  a child is and what it learns from. A classification task overrides :meth:`load_data`
  (an object with ``batched(split, batch_size, seed=, num_examples=, augment=)``,
  ``arrays(split)`` and ``class_names``, e.g. :class:`nas_tf.data.ArrayData`) and
  :meth:`build_child` (the network, logits out), and is then searched, retrained by
  ``nas_train``, exported by ``nas_export --trained`` and run on a cluster without
  further code. ``ptb`` and ``cifar10`` are such tasks.

  Attributes:
    sequence_model: Children are language models trained with the recipe of
      :mod:`nas_tf.training.lm` (state carried across windows, restarts at a lower rate);
      otherwise classifiers trained by ``model.fit``.
    final_presets: ``{"tiny": {...}, "real": {...}}``: ``nas_train`` defaults by
      :class:`nas_tf.training.final.FinalTrainingConfig` field.
  """

  trains_children = True
  sequence_model = False
  final_presets: dict = {"tiny": {"epochs": 2, "batch_size": 8},
                         "real": {"epochs": 20, "batch_size": 64}}

  def load_data(self, data_dir: str, seed: int = 0, cache_dir: Optional[str] = None,
                validation_size: Optional[int] = None):
    """The data every child of this task trains on (loaded once per process)."""
    raise NotImplementedError(f"task {self.name!r} must override load_data")

  def build_child(self, spec, data, config, final: bool = False):
    """The Keras model of ``spec`` (logits out) for ``data``.

    Args:
      spec: An architecture of the task's space.
      data: :meth:`load_data`'s output.
      config: The :class:`nas_tf.config.ChildTrainingConfig` (a
        :class:`~nas_tf.training.final.FinalTrainingConfig` when ``final``): size caps,
        weight decay, dropout.
      final: Built for ``nas_train`` (e.g. with the head dropout of the final recipe).

    Raises:
      nas_tf.children.ChildTooLargeError: over the config's size caps (the search
        records the child as ``too_large`` and goes on).
    """
    raise NotImplementedError(f"task {self.name!r} must override build_child")

  def start_on_cluster(self, cluster, spec, data, config, seed: int = 0):
    """Starts training ``spec``'s child on ``cluster``'s workers; returns
    ``wait() -> metrics`` (the dict :meth:`train_child` returns). Only for a task with
    ``trains_itself_on_cluster``."""
    raise NotImplementedError(f"task {self.name!r} trains no child on a cluster itself")

  def check_spec(self, spec) -> None:
    """Raises ValueError if ``spec`` is not an architecture of this task's space."""
    kind = getattr(spec, "kind", None)
    if kind != self.space_kind:
      raise ValueError(f"task {self.name!r} trains {self.space_kind!r} architectures, but "
                       f"this is a {kind!r} one: {spec!r}")

  def train_child(self, spec, data, config, seed: int = 0, rungs=None) -> dict:
    """Trains one search child and returns its metrics (never raises for a bad child).

    ``rungs``: a pruner's :class:`nas_tf.training.rungs.RungPlan` (see
    :func:`nas_tf.training.child.train_and_evaluate`).
    """
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    return child_training.train_and_evaluate(
        spec, data, config, seed=seed,
        build=lambda: self.build_child(spec, data, config), rungs=rungs)

  def preprocessing(self, data) -> Optional[dict]:
    """What a trained export needs to take raw inputs (saved in ``metrics.json``)."""
    del data
    return None

  def final_defaults(self, tiny: bool) -> dict:
    """``nas_train``'s defaults for this task (on the bundled testdata when ``tiny``)."""
    return dict(self.final_presets.get("tiny" if tiny else "real", {}))

  def train_final(self, spec, config) -> dict:
    """Retrains ``spec`` for ``nas_train`` and writes ``metrics.json`` (§4.1, §4.2)."""
    from nas_tf.training import final as final_training  # pylint: disable=g-import-not-at-top
    return final_training.train_final_classifier(self, spec, config)

  def export_trained(self, run: dict, model, export_dir: str, picture: bool = True) -> dict:
    """A finished ``nas_train`` run as a standalone export; returns the manifest.

    ``run``: :func:`nas_tf.export.trained.read_training`'s dict; ``model``: its trained
    Keras model. The default writes the whole model as a SavedModel with a ``serve``
    endpoint (the model's own inputs), which TensorFlow loads without nas_tf.
    """
    from nas_tf import export  # pylint: disable=g-import-not-at-top
    return export.export_model(run["spec"], model, export_dir, picture=picture,
                               task=self.ref or self.name)

  def next_steps(self, output_dir: str, data_dir: Optional[str]) -> list[str]:
    # Search rewards are proxies (minutes of training): the winner must be retrained.
    data = f" --data_dir={data_dir}" if data_dir else ""
    out = output_dir.rstrip("/")
    return ["Next, retrain the best architecture (its reward is only a proxy):  "
            f"bin/nas_train --spec={out}{data} --output_dir={out}-final"]
