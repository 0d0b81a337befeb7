"""benchmarks/rl_dynamics.py: the figures it reads off a search's records and steps."""

import math

import numpy as np
import pytest


@pytest.fixture(scope="module")
def rd(load_benchmark):
  return load_benchmark("rl_dynamics")


def test_distance_and_concentration_by_hand(rd):
  assert rd.hamming([0, 1, 2], [0, 2, 2]) == 1
  assert rd.hamming([0, 1], [0, 1, 3, 4]) == 2  # extra decisions count
  # Decision 0: value 1 three times in four (0.75); decision 1: all different (0.25).
  assert rd.modal_share([[1, 0], [1, 1], [1, 2], [0, 3]]) == pytest.approx(0.5)


def test_advantage_uses_the_baseline_before_each_update(rd):
  rewards = [2.0, 4.0, 0.0]
  after = [2.0, 3.0, 1.5]  # logged after steps 0, 1, 2
  # Step 0 is centred on its own reward; step t compares with the value after t - 1.
  np.testing.assert_allclose(rd.advantages(rewards, after), [0.0, 2.0, -3.0])


def test_halving_steps_extrapolates_a_straight_line(rd):
  # 10 nats, falling 0.5 a step: half of 10 is reached after 10 steps.
  assert rd.halving_steps([10 - 0.5 * t for t in range(5)], 10.0) == pytest.approx(10.0)
  assert rd.halving_steps([10.0, 10.0, 10.1], 10.0) == math.inf


def test_a_controller_that_has_moved_is_told_from_uniform_sampling(rd):
  choices = [4] * 10
  uniform = rd.uniform_reference(choices, 50)
  assert 6.5 < uniform["mean_distance"] < 8.5  # 10 * 3/4 expected
  records = [{"step": t, "index": 0, "tokens": [1] * 10, "reward": 1.0} for t in range(6)]
  steps = [{"controller/entropy": 13.8 - t, "controller/baseline": 1.0} for t in range(6)]
  s = rd.summarize({"records": records, "steps": steps, "search": "rl"}, 3, choices)
  assert s["max_entropy"] == pytest.approx(10 * math.log(4))
  assert [w["mean_distance"] for w in s["windows"]] == [0.0, 0.0]
  assert [w["modal_share"] for w in s["windows"]] == [1.0, 1.0]
  assert s["windows"][0]["failed"] == 0.0
