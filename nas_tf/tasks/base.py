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
  """

  name: str = ""
  space_kind: str = ""
  metric: str = "val_metric"
  metric_label: str = "val"
  higher_is_better: bool = True
  num_classes: Optional[int] = None
  testdata: str = ""
  presets: dict = {}

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
    """Fails fast, naming the path and what was expected, before any child starts."""
    if not os.path.exists(data_dir):
      raise FileNotFoundError(f"--data_dir {data_dir!r} does not exist")

  def make_evaluator(self, config):
    """The evaluator that scores this task's children for ``config`` (a SearchConfig)."""
    raise NotImplementedError(f"task {self.name!r} has no evaluator; override "
                              "make_evaluator or pass evaluator= to search.run")

  def judge(self, metrics: dict) -> tuple[str, Optional[str]]:
    """``("ok", None)`` if an 'ok' child's metrics are usable, else ``("nan", why)``."""
    value = metrics.get(self.metric)
    if value is None or not math.isfinite(float(value)):
      return "nan", f"{self.metric} is {value!r} (diverged)"
    return "ok", None

  def reward(self, metrics: dict, child_config=None) -> float:
    """The reward of a judged-ok child (higher is better for every strategy)."""
    del child_config
    value = float(metrics[self.metric])
    return value if self.higher_is_better else -value

  def val_metric(self, metrics: dict) -> Optional[float]:
    value = metrics.get(self.metric)
    return None if value is None else float(value)

  def failure_reward(self) -> float:
    return rewards_lib.FAILURE_REWARD

  def __repr__(self):
    return f"<Task {self.name!r}>"


class TrainedChildTask(Task):
  """A task whose children are networks trained by :mod:`nas_tf.child_training`.

  Children are trained in this process or in recycled worker processes
  (``config.runtime.isolation``); ``ptb`` and ``cifar10`` are such tasks.
  """

  def load_data(self, data_dir: str, seed: int = 0, cache_dir: Optional[str] = None,
                validation_size: Optional[int] = None):
    from nas_tf import child_training  # pylint: disable=g-import-not-at-top
    return child_training.load_task_data(self.name, data_dir, seed=seed, cache_dir=cache_dir,
                                         validation_size=validation_size)

  def check_data(self, data_dir: str, bundled: bool = False) -> None:
    data_sources.check_data_source(self.name, data_dir, bundled=bundled)

  def make_evaluator(self, config):
    from nas_tf import evaluation  # pylint: disable=g-import-not-at-top
    args = dict(task=self.name, data_dir=config.data_dir, child_config=config.child,
                seed=config.seed, cache_dir=config.cache_dir,
                validation_size=config.validation_size)
    rt = config.runtime
    if rt.isolation == "inline":
      return evaluation.InlineEvaluator(**args)
    return evaluation.ProcessEvaluator(**args, children_per_process=rt.children_per_process,
                                       parallel_children=rt.parallel_children,
                                       intra_op_threads=rt.intra_op_threads)
