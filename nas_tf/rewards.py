"""Rewards that turn a child's validation metric into the controller's signal (paper §4).

* CIFAR-10 (§4.1): the maximum validation accuracy over the last 5 epochs, cubed.
* Penn Treebank (§4.2): ``c / (validation perplexity)^2`` with ``c = 80``.

A child that fails (does not build, is too large, diverges to NaN) gets
:data:`FAILURE_REWARD`, the worst reward either formula can give, so the search can
go on and the controller learns to avoid such children. Which formula a task uses, and
when its metrics count as diverged, is the task's (:mod:`nas_tf.tasks`).
"""

from __future__ import annotations

import math
from typing import Sequence

FAILURE_REWARD = 0.0
PTB_REWARD_CONSTANT = 80.0
# What a child must beat to have learned anything beyond the label frequencies
# (Task.learned): the unigram model of PTB's training split on its validation split
# (perplexity 687.0 on Mikolov's files, lm_training.unigram_perplexity), and a 10-class
# guess plus 2 points.
PTB_UNIGRAM_VAL_PERPLEXITY = 687.0
CIFAR_LEARNER_ACCURACY = 0.12


def _finite(x) -> bool:
  return x is not None and math.isfinite(float(x))


def cifar_reward(val_accuracies: Sequence[float], last_n: int = 5) -> float:
  """``max(val_accuracies[-last_n:]) ** 3`` (§4.1); failure reward if none is finite.

  Args:
    val_accuracies: Validation accuracy (in [0, 1]) after each epoch, in order.
    last_n: How many final epochs to take the maximum over (paper: 5).
  """
  if last_n < 1:
    raise ValueError(f"last_n must be >= 1, got {last_n!r}")
  tail = [float(a) for a in list(val_accuracies)[-last_n:] if _finite(a)]
  if not tail:
    return FAILURE_REWARD
  best = max(tail)
  if not 0.0 <= best <= 1.0:
    raise ValueError(f"validation accuracy must lie in [0, 1], got {best!r}")
  return best ** 3


def ptb_reward(val_perplexity: float, c: float = PTB_REWARD_CONSTANT) -> float:
  """``c / val_perplexity**2`` (§4.2); failure reward for NaN/inf/non-positive perplexity.

  Computed as ``c / p / p``: ``p ** 2`` raises OverflowError for a finite ``p`` above
  ~1e154 (a diverged child), whereas the quotient just underflows towards 0.
  """
  if not _finite(val_perplexity) or float(val_perplexity) <= 0:
    return FAILURE_REWARD
  p = float(val_perplexity)
  return c / p / p


def cost_factor(costs: dict, targets: dict, exponent: float) -> float:
  """MnasNet's soft constraint (Tan et al. 2019, eq. 2): ``prod (cost / target) ** w``.

  Args:
    costs: ``{name: measured cost}`` of a child, e.g. ``{"num_params": 1.2e6}``.
    targets: ``{name: target}``; only these names count.
    exponent: ``w <= 0``.

  Returns:
    The factor the task reward is multiplied by; 1.0 without targets. A cost that was
    not measured (None, non-finite or <= 0) is an error: the objective would silently
    favour the children it cannot see.
  """
  factor = 1.0
  for name, target in targets.items():
    cost = costs.get(name)
    if not _finite(cost) or float(cost) <= 0:
      raise ValueError(f"the objective needs {name} of every child, got {cost!r}")
    factor *= (float(cost) / float(target)) ** exponent
  return factor
