"""Rewards that turn a child's validation metric into the controller's signal (paper §4).

* CIFAR-10 (§4.1): the maximum validation accuracy over the last 5 epochs, cubed.
* Penn Treebank (§4.2): ``c / (validation perplexity)^2`` with ``c = 80``.

A child that fails (does not build, is too large, diverges to NaN) gets
:data:`FAILURE_REWARD`, the worst reward either formula can give, so the search can
go on and the controller learns to avoid such children.
"""

from __future__ import annotations

import math
from typing import Sequence

FAILURE_REWARD = 0.0
PTB_REWARD_CONSTANT = 80.0


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


def judge(task: str, metrics: dict) -> tuple[str, str | None]:
  """Whether an 'ok' child's metrics are usable: ``("ok", None)`` or ``("nan", why)``.

  The one place where divergence is decided from metrics, for every evaluator: a
  non-finite validation metric, or (PTB) a perplexity more than ``e`` times the
  vocabulary size, i.e. over 1 nat per token worse than guessing uniformly (the same
  margin as the training-time test of ``nas_tf.lm_training``; ``metrics['vocab_size']``,
  10,000 on PTB when absent). An untrained model sits at about the vocabulary size, so
  this flags divergence, not slow learning. Such a child gets the failure reward and
  status 'nan', never a tiny positive reward.
  """
  if task == "cifar10":
    acc = metrics.get("val_accuracy")
    if acc is None or not _finite(acc):
      return "nan", f"validation accuracy is {acc!r}"
    return "ok", None
  ppl = metrics.get("val_perplexity")
  if ppl is None or not _finite(ppl):
    return "nan", f"validation perplexity is {ppl!r} (diverged)"
  vocab = metrics.get("vocab_size") or 10_000
  if float(ppl) > math.e * vocab:
    return "nan", (f"diverged: validation perplexity {float(ppl):.4g} is above e x the "
                   f"vocabulary size {vocab} (far worse than guessing uniformly)")
  return "ok", None


def reward_for(task: str, metrics: dict, reward_epochs: int = 5) -> float:
  """The reward of a child of ``task`` ('cifar10' or 'ptb') from its metrics dict.

  ``metrics`` holds ``val_accuracy_history`` (CIFAR-10) or ``val_perplexity`` (PTB);
  ``reward_epochs`` is the CIFAR-10 window (max over the last N epochs, paper: 5).
  """
  if task == "cifar10":
    return cifar_reward(metrics.get("val_accuracy_history", []), reward_epochs)
  if task == "ptb":
    return ptb_reward(metrics.get("val_perplexity", float("nan")))
  raise ValueError(f"task must be 'cifar10' or 'ptb', got {task!r}")
