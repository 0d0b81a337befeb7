"""A trained-child task judged without training: ``evaluation='zero_cost'``.

The wrapped task keeps its space, data and presets; what changes is how a child is
judged. Its metric is the training-free score of :mod:`nas_tf.zero_cost` (``synflow`` by
default), which is also its reward. Every score is higher-is-better. A child whose score
is not finite (a singular NASWOT kernel, a synflow of 0 from a cut-off network) is
judged ``degenerate`` and gets the failure reward 0, like one too large to build. For
``snip`` and ``grad_norm`` (>= 0) and the parameter count that is the floor; the log
scores of the paper's CIFAR-10 space are far above it (log synflow 9-24, NASWOT
hundreds), though a log can in principle fall below 0 for a tiny network.
"""

from __future__ import annotations

import math

from nas_tf.tasks.base import Task


# Scores reported as natural logs (nas_tf.zero_cost): a factor on the quantity adds its log.
LOG_SCORES = ("synflow", "naswot")


class ZeroCostTask(Task):
  """``base`` with children scored at initialisation by ``config.zero_cost.score``.

  Args:
    base: A task whose children are conv networks (``cifar10``).
  """

  metric = "zero_cost"
  higher_is_better = True

  def __init__(self, base: Task):
    if base.space_kind != "cnn":
      raise ValueError(f"evaluation='zero_cost' scores conv networks at initialisation; "
                       f"task {base.name!r} searches {base.space_kind!r} architectures "
                       "(use --task=cifar10, or train children: --evaluation=independent)")
    self.base = base
    self.name, self.space_kind = base.name, base.space_kind
    self.testdata, self.presets = base.testdata, base.presets
    self.metric_label = "score"

  def __reduce__(self):
    return ZeroCostTask, (self.base,)  # the wrapper of the task its reference loads

  def search_defaults(self, tiny: bool) -> dict:
    return self.base.search_defaults(tiny)

  def default_space(self) -> dict:
    return self.base.default_space()

  def make_space(self, space=None):
    return self.base.make_space(space)

  def costs(self, spec) -> dict:
    return self.base.costs(spec)

  def check_data(self, data_dir: str, bundled: bool = False) -> None:
    self.base.check_data(data_dir, bundled=bundled)

  def make_evaluator(self, config):
    from nas_tf import zero_cost  # pylint: disable=g-import-not-at-top
    return zero_cost.ZeroCostEvaluator(
        config.zero_cost, config.child, seed=config.seed,
        num_classes=self.base.num_classes,
        load_data=lambda: self.base.load_data(config.data_dir, seed=config.seed,
                                              cache_dir=config.cache_dir,
                                              validation_size=config.validation_size))

  def judge(self, metrics: dict):
    value = metrics.get(self.metric)
    if value is None or not math.isfinite(float(value)):
      return "degenerate", (f"{metrics.get('zero_cost_score', 'the score')} is {value!r}: "
                            "the network cannot tell inputs apart or carries no signal")
    return "ok", None

  def reward(self, metrics: dict, child_config=None) -> float:
    del child_config
    return float(metrics[self.metric])

  def with_cost(self, reward: float, factor: float, metrics: dict) -> float:
    """The factor scales the scored quantity: a log score (synflow, naswot) takes
    ``log(factor)`` added, a positive one (snip, grad_norm, num_params) the product."""
    if metrics.get("zero_cost_score") in LOG_SCORES:
      return reward + math.log(factor)
    return reward * factor
