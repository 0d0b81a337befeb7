"""One child's results record, its progress line, and the checks on a step's records."""

from __future__ import annotations

import time
from typing import Optional

from absl import logging
import numpy as np

from nas_tf import rewards
from nas_tf.config import SearchConfig
from nas_tf.search.log import ResultsLog


def make_record(task, config: SearchConfig, step: int, index: int, tokens, spec,
                depth: Optional[int], metrics: Optional[dict], cached: Optional[dict],
                extras: Optional[dict] = None) -> dict:
  """The results.jsonl record of one sampled child.

  Args:
    task: The :class:`nas_tf.tasks.Task`: judges the metrics and turns them into a reward.
    metrics: The evaluator's metrics, or None when ``cached`` (an earlier record of an
      identical spec) supplies them.
    extras: Keys the evaluator adds to every record (e.g. ``evaluation: shared``).
  """
  from_cache = metrics is None
  if from_cache:
    metrics = dict(cached["metrics"], status=cached["status"])
  status = metrics.get("status", "failed")
  if status == "ok" and not from_cache:
    status, why = task.judge(metrics)
    if why:
      metrics = dict(metrics, error=why)
  reward = (task.reward(metrics, config.child) if status == "ok"
            else task.failure_reward())
  costs = task.costs(spec)  # known without training (e.g. macs): every child has them
  objective = {}
  if config.objective.targets and status == "ok":
    # MnasNet's soft constraint on top of the task's reward; failures stay failures.
    factor = rewards.cost_factor({**metrics, **costs}, config.objective.targets,
                                 config.objective.cost_exponent)
    objective = {"task_reward": reward, "cost_factor": factor}
    reward = task.with_cost(reward, factor, metrics)
  record = {
      "step": step, "index": index, "search": config.search, "depth": depth,
      "spec": spec.to_dict(), "describe": spec.describe(), "tokens": list(tokens),
      "reward": reward, "status": status, "cached": from_cache,
      "val_metric": task.val_metric(metrics),
      "num_params": metrics.get("num_params"), "latency_ms": metrics.get("latency_ms"),
      "train_seconds": metrics.get("train_seconds"), **costs, **objective,
      "metrics": {k: v for k, v in metrics.items() if k != "status"},
      "time": time.time(),
  }
  if metrics.get("rungs") is not None:
    # A pruned search: where the child stopped (None: it trained to the end).
    record["pruned_at"] = metrics.get("pruned_at")
  record.update(extras or {})
  return record


def log_child(record: dict, log: ResultsLog, config: SearchConfig, start_time: float,
              evaluated_now: int) -> None:
  """One progress line per child: reward, status, time, best so far, ETA."""
  done = len(log)
  elapsed = time.monotonic() - start_time
  eta = eta_seconds(config, log, elapsed, evaluated_now)
  best = log.best()
  logging.info(
      "step %d/%d child %d: reward %.4f (%s, %s%s) | %d/%d children, best %.4f, ETA %s",
      record["step"] + 1, config.num_steps, record["index"] + 1, record["reward"],
      record["status"],
      "cached" if record["cached"] else f"{record['train_seconds'] or 0:.1f}s",
      ("" if record["val_metric"] is None else f", val {record['val_metric']:.4g}")
      + ("" if record.get("pruned_at") is None
         else f", stopped at {record['pruned_at']:.3g} of its budget"),
      done, config.max_children, best["reward"] if best else float("nan"),
      "?" if not np.isfinite(eta) else time.strftime("%H:%M:%S", time.gmtime(eta)))


def eta_seconds(config: SearchConfig, log: ResultsLog, elapsed: float,
                evaluated_now: int) -> float:
  """Seconds left, if the cost of a child grows with its depth (CNN depth schedule, §4.1).

  The time per child measured in this run so far, scaled by the depth still to come
  over the depth of the children it was measured on; PTB children have no depth (1).
  """
  if not evaluated_now:
    return float("nan")
  depths = [r.get("depth") for r in list(log)[-evaluated_now:]]
  recent = [d or 1 for d in depths]
  schedule = config.depth if any(depths) else None
  remaining = (sum(schedule.depth_at(n) for n in range(len(log), config.max_children))
               if schedule else config.max_children - len(log))
  return elapsed / evaluated_now * remaining / float(np.mean(recent))


def step_scalars(rewards, stats: dict, log: ResultsLog, **extra) -> dict:
  """The TensorBoard scalars written after every step."""
  best = log.best()
  return {"reward/mean": float(np.mean(rewards)), "reward/max": float(np.max(rewards)),
          "reward/best_so_far": best["reward"] if best else None,
          "controller/baseline": stats.get("baseline"),
          "controller/entropy": stats.get("entropy"), "controller/loss": stats.get("loss"),
          "search/children": float(len(log)), **extra}


def check_not_all_broken(log: ResultsLog, config: SearchConfig) -> None:
  """Stops a search whose children break for a reason the user must fix, with one line.

  Bad architectures fail one by one and are scored; but when every child so far raised,
  and there are at least the first step's or three of them (wrong data path, a subset
  larger than the data, a bug; KerasTuner also stops after three failed trials in a
  row), or the latest ``max(2 m, 20)`` children (all of a shorter search) are all over
  the size caps (caps the space cannot meet, e.g. the paper's ~20M-parameter LM under
  the default 5M cap), carrying on would only fill results.jsonl with failure rewards
  that teach the sampler nothing. A cap that part of a CNN space meets (a compute budget)
  is a constraint the sampler learns from its failure rewards: a run of 20 rejections in
  a row is then ~1e-6 likely when half the space fits, and a rejected child costs no
  training, so the window waits that long.
  """
  enough = min(max(config.children_per_step, 3), config.max_children)
  if len(log) >= enough and all(r["status"] == "failed" for r in log):
    errors = sorted({str(r["metrics"].get("error")) for r in log})
    raise RuntimeError(f"all {len(log)} children so far failed to train; this looks like "
                       f"a setup problem, not bad architectures. Errors: "
                       f"{'; '.join(errors)[:1000]}")
  window = min(max(2 * config.children_per_step, 20), config.max_children)
  latest = sorted(log, key=lambda r: (r["step"], r["index"]))[-window:]
  large = [r for r in latest if r["status"] == "too_large"]
  # Provably dead cells (never trained either) do not break a run of rejections.
  if (len(latest) == window and len(large) * 2 > window
      and all(r["status"] in ("too_large", "degenerate") for r in latest)):
    error = str(large[-1]["metrics"].get("error"))[:300]
    raise RuntimeError(
        f"none of the latest {window} children was trained, {len(large)} of them over the "
        f"size caps ({error}); raise the cap "
        f"with --set=child.max_params=N (CNNs also --set=child.max_activation_elements=N, "
        f"child.max_macs=N) or make children smaller (--lm_units, --start_layers), then "
        f"rerun the same command to resume")
