"""How well a cheap proxy ranks architectures: rank correlations with ties.

A search only needs its reward to *order* architectures as a thorough training would,
so the fidelity of a proxy (a short child training) is measured by rank correlation
with a reference metric over the same architectures: Kendall's tau-b (the fraction of
concordant minus discordant pairs, corrected for ties, as in NAS-Bench-201 and
"Evaluating the search phase of NAS", Yu et al. 2020) and Spearman's rho (Pearson
correlation of average ranks). Failed children all get the failure reward, so ties are
common and must be handled, not broken arbitrarily.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _pairs(values: Sequence[float]) -> np.ndarray:
  x = np.asarray(values, dtype=float)
  if x.ndim != 1:
    raise ValueError(f"expected a 1-D sequence, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("rank correlation needs finite values; map failures to a finite "
                     f"worst value first, got {x.tolist()}")
  return x


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
  """Kendall's tau-b of two equally long sequences (NaN if either is constant).

  ``(concordant - discordant) / sqrt((n0 - ties_a) * (n0 - ties_b))`` over all pairs,
  where a pair tied in either sequence is neither concordant nor discordant.
  """
  x, y = _pairs(a), _pairs(b)
  if len(x) != len(y):
    raise ValueError(f"sequences differ in length: {len(x)} vs {len(y)}")
  i, j = np.triu_indices(len(x), k=1)
  dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
  s = float(np.sum(dx * dy))
  untied_x, untied_y = float(np.sum(dx != 0)), float(np.sum(dy != 0))
  if untied_x == 0 or untied_y == 0:
    return float("nan")
  return s / math.sqrt(untied_x * untied_y)


def average_ranks(values: Sequence[float]) -> np.ndarray:
  """1-based ranks, ties sharing the mean of the ranks they span."""
  x = _pairs(values)
  order = np.argsort(x, kind="stable")
  ranks = np.empty(len(x))
  sorted_x = x[order]
  start = 0
  for end in range(1, len(x) + 1):
    if end == len(x) or sorted_x[end] != sorted_x[start]:
      ranks[order[start:end]] = (start + end + 1) / 2.0
      start = end
  return ranks


def spearman_rho(a: Sequence[float], b: Sequence[float]) -> float:
  """Spearman's rho: Pearson correlation of average ranks (NaN if either is constant)."""
  ra, rb = average_ranks(a), average_ranks(b)
  if len(ra) != len(rb):
    raise ValueError(f"sequences differ in length: {len(ra)} vs {len(rb)}")
  ra, rb = ra - ra.mean(), rb - rb.mean()
  denom = math.sqrt(float(np.sum(ra * ra)) * float(np.sum(rb * rb)))
  return float(np.sum(ra * rb)) / denom if denom else float("nan")


__all__ = ["kendall_tau", "spearman_rho", "average_ranks"]
