"""Resource-aware search (issue 16): MnasNet's soft constraint, latency, hard caps, Pareto."""

import json
import math
import os
import pathlib

import keras
import pytest

from nas_tf.training import child as child_training
from nas_tf import config as config_lib
from nas_tf.training import latency
from nas_tf import results
from nas_tf.search.log import ResultsLog
from nas_tf import rewards
from nas_tf import search
from nas_tf import specs as specs_lib
from nas_tf import tasks

ROOT = pathlib.Path(__file__).resolve().parent.parent
CNN = specs_lib.CNNSpec(layers=(specs_lib.ConvLayer(3, 3, 4),
                                specs_lib.ConvLayer(3, 3, 4, inputs=(0,))))


def test_cost_factor_is_mnasnet_soft_constraint():
  # (cost / target) ** w: at the target 1, twice the cost 2 ** w, half the cost 2 ** -w.
  assert rewards.cost_factor({"num_params": 100}, {"num_params": 100}, -0.07) == 1.0
  assert rewards.cost_factor({"num_params": 200}, {"num_params": 100}, -0.07) == (
      pytest.approx(2 ** -0.07))
  assert rewards.cost_factor({"num_params": 50}, {"num_params": 100}, -0.07) == (
      pytest.approx(2 ** 0.07))
  # Two targets multiply; a cost without a target does not count.
  both = rewards.cost_factor({"num_params": 200, "latency_ms": 4.0},
                             {"num_params": 100, "latency_ms": 1.0}, -0.5)
  assert both == pytest.approx(2 ** -0.5 * 4 ** -0.5)
  assert rewards.cost_factor({"num_params": 7}, {}, -1.0) == 1.0
  with pytest.raises(ValueError, match="needs latency_ms of every child, got None"):
    rewards.cost_factor({"latency_ms": None}, {"latency_ms": 1.0}, -0.07)


def test_objective_config_checks_and_round_trip(tmp_path):
  with pytest.raises(ValueError, match="cost_exponent must be <= 0.*got 0.5"):
    config_lib.ObjectiveConfig(target_params=1e6, cost_exponent=0.5)
  with pytest.raises(ValueError, match="target_params must be > 0, got -3"):
    config_lib.ObjectiveConfig(target_params=-3)
  base = dict(task="cifar10", data_dir="d", output_dir="o")
  with pytest.raises(ValueError, match="latency target needs child.measure_latency"):
    config_lib.SearchConfig(**base, objective=config_lib.ObjectiveConfig(target_latency_ms=1))
  with pytest.raises(ValueError, match="max_latency_ms must be > 0 and needs measure_latency"):
    config_lib.ChildTrainingConfig(max_latency_ms=3.0)
  config = config_lib.SearchConfig(
      **base, child=config_lib.ChildTrainingConfig(measure_latency=True),
      objective=config_lib.ObjectiveConfig(target_params=2e5, target_latency_ms=3.0))
  assert config_lib.SearchConfig.from_json(config.to_json()) == config
  assert config.objective.targets == {"num_params": 2e5, "latency_ms": 3.0}
  flops = config_lib.SearchConfig(**base, objective=config_lib.ObjectiveConfig(target_macs=4e7))
  assert config_lib.SearchConfig.from_json(flops.to_json()) == flops
  assert flops.objective.targets == {"macs": 4e7}
  with pytest.raises(ValueError, match="target_macs must be > 0, got 0"):
    config_lib.ObjectiveConfig(target_macs=0)
  # A search without targets writes the config.json it always wrote.
  assert "objective" not in config_lib.SearchConfig(**base).to_dict()


def test_latency_is_measured_and_a_hard_cap_skips_training():
  model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
  ms = latency.measure(model, latency.input_example(model), repeats=5)
  assert 0 < ms < 1000
  data = tasks.get("cifar10").load_data(str(ROOT / "testdata" / "cifar10" / "png"),
                                        validation_size=10)
  fast = config_lib.ChildTrainingConfig(epochs=1, batch_size=8, steps_per_epoch=1,
                                        measure_latency=True)
  out = child_training.train_and_evaluate(CNN, data, fast)
  assert out["status"] == "ok" and out["latency_ms"] > 0
  phases = out["phase_seconds"]  # one step: first_step is all of the training
  assert phases["build"] > 0 and phases["first_step"] > 0 and phases["eval"] > 0
  assert sum(phases.values()) <= out["train_seconds"]
  capped = config_lib.ChildTrainingConfig(epochs=1, batch_size=8, measure_latency=True,
                                          max_latency_ms=1e-6)
  out = child_training.train_and_evaluate(CNN, data, capped)
  assert out["status"] == "too_large" and "over max_latency_ms=1e-06" in out["error"]
  assert out["latency_ms"] > 0 and "val_accuracy" not in out  # not trained


class _CostlyEvaluator:
  """Accuracy and parameters rise together with the filters of the first layer."""

  def evaluate(self, specs):
    out = []
    for s in specs:
      filters = s.layers[0].num_filters
      out.append({"status": "ok", "val_accuracy": filters / 100, "val_accuracy_history":
                  [filters / 100], "num_params": 1000 * filters, "train_seconds": 0.0})
    return out

  def close(self):
    pass


def test_the_cost_factor_scales_each_tasks_quality_as_mnasnet_scales_accuracy():
  """MnasNet: reward = quality x factor. The factor enters each task's reward where its
  quality does: inside the cube (CIFAR-10), as 1 / perplexity (PTB), added to a log
  score, dividing a lower-is-better metric."""
  from nas_tf.tasks import at_init  # pylint: disable=g-import-not-at-top
  factor = 0.9
  cifar, ptb = tasks.get("cifar10"), tasks.get("ptb")
  acc = {"val_accuracy_history": [0.5]}
  assert cifar.with_cost(cifar.reward(acc), factor, acc) == pytest.approx((0.5 * 0.9) ** 3)
  ppl = {"val_perplexity": 100.0}
  assert ptb.with_cost(ptb.reward(ppl), factor, ppl) == pytest.approx(
      80.0 / (100.0 / 0.9) ** 2)
  zero = at_init.ZeroCostTask(cifar)
  log_score = {"zero_cost": -3.0, "zero_cost_score": "synflow"}
  assert zero.with_cost(-3.0, factor, log_score) == pytest.approx(-3.0 + math.log(0.9))
  raw = {"zero_cost": 5.0, "zero_cost_score": "snip"}
  assert zero.with_cost(5.0, factor, raw) == pytest.approx(4.5)

  class Loss(tasks.Task):
    metric, higher_is_better = "val_loss", False

  loss = Loss()
  reward = loss.reward({"val_loss": 2.0})
  # A costlier child (factor < 1) must score worse: -2 / 0.9 < -2.
  costly = loss.with_cost(reward, factor, {})
  assert costly == pytest.approx(-2.0 / 0.9) and costly < reward


def test_search_scales_rewards_and_summary_shows_the_pareto_front(tmp_path):
  config = config_lib.SearchConfig(
      task="cifar10", data_dir="unused", output_dir=str(tmp_path / "out"), search="random",
      max_children=8, children_per_step=2, space={"kind": "cnn", "strides": [1]},
      depth=config_lib.DepthSchedule(start=2), seed=1,
      runtime=config_lib.RuntimeConfig(isolation="inline"),
      objective=config_lib.ObjectiveConfig(target_params=36_000, cost_exponent=-0.5))
  search.run(config, evaluator=_CostlyEvaluator())
  log = ResultsLog(os.path.join(config.output_dir, "results.jsonl"))
  for r in log:
    factor = (r["num_params"] / 36_000) ** -0.5
    assert r["cost_factor"] == pytest.approx(factor)
    # MnasNet's ACC x factor, inside the cube: the factor scales accuracy.
    assert r["reward"] == pytest.approx((r["metrics"]["val_accuracy"] * factor) ** 3)
    assert r["task_reward"] == pytest.approx(r["metrics"]["val_accuracy"] ** 3)
    assert r["latency_ms"] is None  # not measured in this search
  front = results.pareto_front(log)
  costs = [r["num_params"] for r in front]
  quality = [r["task_reward"] for r in front]
  assert costs == sorted(costs) and quality == sorted(quality) and len(set(costs)) == len(costs)
  for r in log:  # nothing off the front dominates a point on it
    assert not any(r["num_params"] < f["num_params"] and r["task_reward"] >= f["task_reward"]
                   for f in front)
  summary = (pathlib.Path(config.output_dir) / "summary.txt").read_text()
  assert "Pareto front, val_acc vs parameters" in summary
  assert json.loads((pathlib.Path(config.output_dir) / "config.json").read_text())[
      "objective"]["target_params"] == 36_000
  assert not math.isnan(log.best()["reward"])


def test_a_compute_target_scales_the_synflow_reward_by_each_childs_macs(tmp_path):
  """target_macs: CIFAR-10 knows every conv child's multiply-accumulates without training
  it (Task.costs), so the soft constraint works on every evaluation path; here zero-cost,
  where a log score takes log(factor)."""
  from nas_tf import children  # pylint: disable=g-import-not-at-top
  config = config_lib.SearchConfig(
      task="cifar10", data_dir=str(ROOT / "testdata" / "cifar10" / "png"),
      output_dir=str(tmp_path / "out"), search="random", max_children=4,
      children_per_step=1, space={"kind": "cnn", "strides": [1, 2]},
      depth=config_lib.DepthSchedule(start=2), seed=0, evaluation="zero_cost",
      validation_size=10, runtime=config_lib.RuntimeConfig(isolation="inline"),
      objective=config_lib.ObjectiveConfig(target_macs=1e6, cost_exponent=-0.5))
  search.run(config)
  log = ResultsLog(os.path.join(config.output_dir, "results.jsonl"))
  assert len(log) == 4
  for r in log:
    macs = children.estimate_cnn_macs(specs_lib.from_dict(r["spec"]), (32, 32, 3), 10)
    assert r["macs"] == macs
    factor = (macs / 1e6) ** -0.5
    assert r["cost_factor"] == pytest.approx(factor)
    assert r["reward"] == pytest.approx(r["task_reward"] + math.log(factor))
  assert tasks.get("ptb").costs(object()) == {}  # a task without known costs: none
  front = results.pareto_front(log, "macs")
  summary = (pathlib.Path(config.output_dir) / "summary.txt").read_text()
  assert front and ("vs multiply-accumulates" in summary) == (len(front) >= 2)
