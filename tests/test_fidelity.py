"""Rank correlations used to measure proxy fidelity: hand-checked values, ties, errors."""

import math

import numpy as np
import pytest

from nas_tf import fidelity


def test_hand_computed_values():
  # 15 pairs, 3 discordant (each adjacent swap): tau = (12 - 3) / 15; every |d| = 1:
  # rho = 1 - 6 * 6 / (6 * 35).
  a, b = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]
  assert fidelity.kendall_tau(a, b) == pytest.approx(0.6)
  assert fidelity.spearman_rho(a, b) == pytest.approx(1 - 36 / 210)
  assert fidelity.kendall_tau(a, a) == 1.0 and fidelity.kendall_tau(a, a[::-1]) == -1.0


def test_ties_use_tau_b_and_average_ranks():
  a, b = [12, 2, 1, 12, 2], [1, 4, 7, 1, 0]
  # Pairs: 10; ties in a: 2, in b: 1. Concordant 2, discordant 6 -> -4 / sqrt(8 * 9).
  assert fidelity.kendall_tau(a, b) == pytest.approx(-4 / math.sqrt(72))
  np.testing.assert_allclose(fidelity.average_ranks(a), [4.5, 2.5, 1, 4.5, 2.5])
  assert fidelity.spearman_rho(a, b) == pytest.approx(-0.5407380704358752)


def test_constant_and_bad_inputs():
  assert math.isnan(fidelity.kendall_tau([1, 1, 1], [1, 2, 3]))
  assert math.isnan(fidelity.spearman_rho([1, 2, 3], [5, 5, 5]))
  with pytest.raises(ValueError, match="finite"):
    fidelity.kendall_tau([1, float("nan")], [1, 2])
  with pytest.raises(ValueError, match="length"):
    fidelity.kendall_tau([1, 2, 3], [1, 2])
