"""Pinned search behaviour: fixed seeds on testdata give the same children and rewards.

The golden file ``tests/golden/search_pins.json`` holds what the code *before* the
search loops were merged into one (issue 13) produced (checked equal to the merged loop,
then rewritten once with Keras' global seed fixed per run); these tests hold every later
version to it: the same specs, tokens and rewards (to 1e-6 relative, real child training included)
for the local RL and random searches on both tasks, the shared-weight search and a
2-replica distributed search. Regenerate only for an intended change of behaviour::

  NAS_TF_REGENERATE_PINS=1 python -m pytest tests/test_pinned_behaviour.py
"""

import json
import os
import pathlib
import random
import time

import numpy as np
import pytest

from nas_tf import config as config_lib
from nas_tf.search.log import ResultsLog

ROOT = pathlib.Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "search_pins.json"
PTB_SPACE = {"kind": "rnn", "base": 2, "combinations": ["add", "elem_mult"],
             "activations": ["identity", "tanh", "sigmoid", "relu"]}
CNN_SPACE = {"kind": "cnn", "strides": [1], "num_filters": [4, 8],
             "filter_heights": [1, 3], "filter_widths": [1, 3]}


def _config(out, task, **kw):
  if task == "ptb":
    base = dict(data_dir=str(ROOT / "testdata" / "ptb"), space=PTB_SPACE,
                child=config_lib.ChildTrainingConfig(batch_size=4, num_steps=8, lm_units=8,
                                                     lm_layers=1, max_train_examples=400))
  else:
    base = dict(data_dir=str(ROOT / "testdata" / "cifar10" / "png"), space=CNN_SPACE,
                validation_size=10, depth=config_lib.DepthSchedule(start=2, every=2),
                child=config_lib.ChildTrainingConfig(epochs=1, batch_size=8,
                                                     max_train_examples=16))
  base.update(task=task, output_dir=str(out), max_children=4, children_per_step=2,
              controller=config_lib.ControllerConfig(learning_rate=0.05),
              runtime=config_lib.RuntimeConfig(isolation="inline"))
  base.update(kw)
  return config_lib.SearchConfig(**base)


def _fake_metrics(spec):
  return {"status": "ok", "val_perplexity": 40.0 + 5 * sum(n.activation == "tanh"
                                                           for n in spec.nodes),
          "num_params": 10, "train_seconds": 0.0, "error": None}


def _fake_evaluator(seed):
  """Children finishing after random delays (replicas commit out of arrival order)."""
  from nas_tf.search import evaluators  # pylint: disable=g-import-not-at-top
  rng = random.Random(seed)

  def start(specs):
    delays = [rng.uniform(0, 0.02) for _ in specs]
    return [lambda s=s, d=d: (time.sleep(d), _fake_metrics(s))[1]
            for s, d in zip(specs, delays)]

  return evaluators.FunctionEvaluator(start)


def _summary(out) -> list:
  recs = ResultsLog(os.path.join(out, "results.jsonl")).records
  return [{"step": r["step"], "index": r["index"], "tokens": list(r["tokens"]),
           "spec": r["spec"], "reward": r["reward"], "status": r["status"]}
          for r in sorted(recs, key=lambda r: (r["step"], r["index"]))]


def _run(name, tmp_path):
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf import search  # pylint: disable=g-import-not-at-top
  # The shared model's initialisers draw from Keras' global stream: seed it, so that the
  # pins do not depend on which tests ran before in this process.
  keras.utils.set_random_seed(0)
  out = tmp_path / name
  if name.startswith("local-"):
    _, task, method = name.split("-")
    search.run(_config(out, task, search=method))
  elif name == "shared-ptb-rl":
    search.run(_config(out, "ptb", evaluation="shared",
                       shared=config_lib.SharedTrainingConfig(train_batches=3,
                                                              derive_samples=2)))
  else:  # two replicas, children from a fake scheduler
    cfg = _config(out, "ptb", max_children=8)
    search.run(cfg, evaluator=_fake_evaluator(0), num_replicas=2)
  return _summary(out)


RUNS = ["local-ptb-rl", "local-ptb-random", "local-cifar10-rl", "local-cifar10-random",
        "shared-ptb-rl", "replicas2-ptb-rl"]


@pytest.mark.parametrize("name", RUNS)
def test_search_matches_pinned_behaviour(tmp_path, name):
  """Slow: a whole tiny search, trained, compared with its pinned records."""
  got = _run(name, tmp_path)
  if os.environ.get("NAS_TF_REGENERATE_PINS"):
    pins = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    pins[name] = got
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(pins, indent=1, sort_keys=True))
    return
  want = json.loads(GOLDEN.read_text())[name]
  assert len(got) == len(want)
  for g, w in zip(got, want):
    assert (g["step"], g["index"], g["tokens"], g["spec"], g["status"]) == (
        w["step"], w["index"], w["tokens"], w["spec"], w["status"])
    np.testing.assert_allclose(g["reward"], w["reward"], rtol=1e-6, atol=1e-12)
