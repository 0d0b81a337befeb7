"""The Evaluator protocol: declared capabilities drive the loop; duck-typed objects are
wrapped once; the evaluator of a search is chosen in one place."""

import ast
import contextlib
import json
import os
import pathlib

import pytest

from nas_tf import config as config_lib
from nas_tf import cluster as distributed_cluster
from nas_tf import search
from nas_tf import specs as specs_lib
from nas_tf.search.log import ResultsLog
from nas_tf.search import evaluators
from nas_tf.search.evaluators import shared

ROOT = pathlib.Path(__file__).resolve().parent.parent
PTB_SPACE = {"kind": "rnn", "base": 2, "combinations": ["add", "elem_mult"],
             "activations": ["identity", "tanh", "sigmoid", "relu"]}


def _metrics(spec):
  """Deterministic metrics from the spec (no network is trained)."""
  if isinstance(spec, specs_lib.RNNCellSpec):
    return {"status": "ok", "val_perplexity": 40.0 + 5 * sum(n.activation == "tanh"
                                                             for n in spec.nodes),
            "num_params": 10, "train_seconds": 0.0}
  acc = 0.1 + 0.1 * sum(l.filter_height == 3 for l in spec.layers)
  return {"status": "ok", "val_accuracy_history": [acc], "val_accuracy": acc,
          "num_params": 10, "train_seconds": 0.0}


class DuckEvaluator:
  """What user code may write: no base class, ``close`` without arguments."""

  def __init__(self):
    self.calls, self.closed = [], []

  def evaluate(self, specs):
    self.calls.append([s.to_json() for s in specs])
    return [_metrics(s) for s in specs]

  def close(self):
    self.closed.append("close()")


class Counting(evaluators.Evaluator):
  """A subclass: scores like DuckEvaluator and records each hook the loop calls."""

  def __init__(self):
    self.calls, self.hooks = [], []

  def evaluate(self, specs):
    self.calls.append([s.to_json() for s in specs])
    return [_metrics(s) for s in specs]

  def adapt_space(self, space):
    self.hooks.append("adapt_space")
    return space

  def finish(self, sampler, depth, output_dir, ran):
    self.hooks.append("finish")
    return {"finished": ran}


def _config(tmp_path, name="out", **kw):
  base = dict(task="ptb", data_dir=str(ROOT / "testdata" / "ptb"),
              output_dir=str(tmp_path / name), max_children=4, children_per_step=2,
              search="random", space=PTB_SPACE,
              depth=config_lib.DepthSchedule(start=3, increment=1, every=4),
              runtime=config_lib.RuntimeConfig(isolation="inline"))
  base.update(kw)
  return config_lib.SearchConfig(**base)


def _records(cfg):
  return ResultsLog(os.path.join(cfg.output_dir, "results.jsonl")).records


def _twins(monkeypatch):
  """Every step samples one architecture m times."""
  from nas_tf.search.samplers import random as random_sampler  # pylint: disable=g-import-not-at-top
  real = random_sampler.RandomSampler.sample

  def twins(self, step, m, depth):
    tokens, specs = real(self, step, 1, depth)
    return tokens * m, specs * m

  monkeypatch.setattr(random_sampler.RandomSampler, "sample", twins)


def test_a_duck_typed_evaluator_and_a_subclass_give_the_same_search(tmp_path):
  duck, sub = DuckEvaluator(), Counting()
  summary_duck = search.run(_config(tmp_path, "duck"), evaluator=duck)
  summary_sub = search.run(_config(tmp_path, "sub"), evaluator=sub)
  key = lambda r: (r["step"], r["index"], list(r["tokens"]), r["reward"], r["cached"])
  assert ([key(r) for r in _records(_config(tmp_path, "duck"))]
          == [key(r) for r in _records(_config(tmp_path, "sub"))])
  assert duck.calls == sub.calls and len(duck.calls) == 2 * 2  # one child per call
  assert sub.hooks == ["adapt_space", "finish"]
  assert summary_sub["finished"] is True and "finished" not in summary_duck
  assert duck.closed == [] and summary_duck["num_children"] == 4  # the caller closes it


def test_identical_specs_are_scored_once_unless_results_are_not_reused(tmp_path,
                                                                       monkeypatch):
  _twins(monkeypatch)

  class Fresh(Counting):
    reuses_results = False
    record_extras = {"evaluation": "fresh"}

  reusing, fresh = Counting(), Fresh()
  search.run(_config(tmp_path, "reusing"), evaluator=reusing)
  search.run(_config(tmp_path, "fresh"), evaluator=fresh)
  assert len(reusing.calls) == 2 and len(fresh.calls) == 4
  recs = _records(_config(tmp_path, "fresh"))
  assert [r["cached"] for r in recs] == [False] * 4
  assert all(r["evaluation"] == "fresh" for r in recs)
  assert [r["cached"] for r in _records(_config(tmp_path, "reusing"))] == [False, True] * 2
  assert "evaluation" not in _records(_config(tmp_path, "reusing"))[0]


def test_declared_shared_weights_and_fixed_depth_drive_the_loop(tmp_path):
  steps = []

  class Undeclared(Counting):
    def before_step(self, step, sampler, depth):
      raise AssertionError("before_step runs only for trains_shared_weights")

  class Sharing(Counting):
    trains_shared_weights = True
    fixed_depth = True

    def before_step(self, step, sampler, depth):
      steps.append((step, depth))
      return {"shared/probe": float(step)}

  cnn = dict(task="cifar10", space={"kind": "cnn", "strides": [1]},
             depth=config_lib.DepthSchedule(start=2, increment=1, every=2))
  search.run(_config(tmp_path, "undeclared", **cnn), evaluator=Undeclared())
  cfg = _config(tmp_path, "sharing", **cnn)
  search.run(cfg, evaluator=Sharing())
  assert steps == [(0, 2), (1, 2)]  # the schedule would have gone to depth 3 at step 1
  state = json.loads((pathlib.Path(cfg.output_dir) / "state.json").read_text())
  assert "shared" in state["seconds"]
  lines = (pathlib.Path(cfg.output_dir) / "steps.jsonl").read_text().splitlines()
  assert [json.loads(l)["shared/probe"] for l in lines] == [0.0, 1.0]
  assert {r["depth"] for r in _records(_config(tmp_path, "undeclared", **cnn))} == {2, 3}


def test_as_evaluator_wraps_once_and_reads_what_the_object_has():
  sub = Counting()
  assert evaluators.as_evaluator(sub) is sub
  duck = DuckEvaluator()
  wrapped = evaluators.as_evaluator(duck)
  assert isinstance(wrapped, evaluators.Evaluator)
  assert evaluators.as_evaluator(wrapped) is wrapped
  assert (wrapped.parallel_children, wrapped.reuses_results, wrapped.record_extras,
          wrapped.fixed_depth, wrapped.on_cluster, wrapped.trains_shared_weights) == (
              1, True, {}, False, False, False)
  assert wrapped.checkpoint_items() == {} and wrapped.finish(None, None, "", True) == {}
  wrapped.close()  # DuckEvaluator.close takes no argument
  assert duck.closed == ["close()"]

  class Legacy:
    """Hooks without declarations: a hook is not a capability (nothing is guessed)."""
    parallel_children = 3
    record_extras = {"evaluation": "legacy"}

    def sampler_scope(self):
      return contextlib.nullcontext()

    def before_step(self, step, sampler, depth):
      return {}

    def close(self, abort=False):
      self.aborted = abort

  legacy = Legacy()
  wrapped = evaluators.as_evaluator(legacy)
  assert not wrapped.on_cluster and not wrapped.trains_shared_weights
  assert wrapped.parallel_children == 3 and wrapped.record_extras == {"evaluation": "legacy"}
  wrapped.close(abort=True)
  assert legacy.aborted is True

  class Declared(Legacy):
    on_cluster = True  # what it does is what it says
    trains_shared_weights = True

  declared = evaluators.as_evaluator(Declared())
  assert declared.on_cluster and declared.trains_shared_weights


def test_default_start_scores_chunks_of_parallel_children_lazily():
  batches = []

  class Pairs(evaluators.Evaluator):
    parallel_children = 2

    def evaluate(self, specs):
      batches.append(list(specs))
      return [{"spec": s} for s in specs]

    def close(self, abort=False):
      pass

  waits = Pairs().start(0, ["a", "b", "c", "d", "e"])
  assert len(waits) == 5 and batches == []
  assert waits[3]() == {"spec": "d"} and batches == [["c", "d"]]
  assert [w()["spec"] for w in waits] == ["a", "b", "c", "d", "e"]
  assert batches == [["c", "d"], ["a", "b"], ["e"]]
  with pytest.raises(NotImplementedError, match="neither evaluate nor start"):
    evaluators.Evaluator().start(0, ["a"])[0]()


class _Task:
  """Only what :func:`evaluators.choose` asks of a task."""

  name, paper_space, trains_children = "fake", True, False

  def __init__(self, evaluator):
    self.evaluator = evaluator

  def make_evaluator(self, config):
    del config
    return self.evaluator


def test_choose_picks_shared_or_the_tasks_own_and_closes_what_it_made(tmp_path):
  with evaluators.choose(_config(tmp_path, evaluation="shared"), _Task(None)) as chosen:
    assert isinstance(chosen, shared.SharedEvaluator)
  duck = DuckEvaluator()
  with evaluators.choose(_config(tmp_path), _Task(duck)) as chosen:
    assert chosen.inner is duck
  assert duck.closed == ["close()"]

  class Abortable(DuckEvaluator):
    def close(self, abort=False):
      self.closed.append(abort)

  own = Abortable()
  with pytest.raises(KeyboardInterrupt):
    with evaluators.choose(_config(tmp_path), _Task(own)):
      raise KeyboardInterrupt
  assert own.closed == [True]  # a running child is not waited for


def test_a_cluster_is_checked_before_anything_is_made(tmp_path):
  cluster = distributed_cluster.ClusterConfig(mode="localhost")
  with pytest.raises(ValueError, match="distributed search trains every child"):
    evaluators.choose(_config(tmp_path, evaluation="shared"), _Task(None), cluster)
  with pytest.raises(ValueError, match="not both"):
    search.run(_config(tmp_path), evaluator=DuckEvaluator(), cluster=cluster)
  with pytest.raises(ValueError, match="scores its children without training them"):
    evaluators.choose(_config(tmp_path), _Task(None), cluster)
  assert not (tmp_path / "out").exists()
  not_paper = _Task(None)
  not_paper.paper_space = False
  with pytest.raises(ValueError, match="evaluation='shared' trains one model"):
    evaluators.choose(_config(tmp_path, evaluation="shared"), not_paper)


def test_the_loop_reads_declarations_and_never_probes_the_evaluator():
  """Probes (hasattr/getattr) of an evaluator live in as_evaluator's adapter only."""
  path = ROOT / "nas_tf" / "search" / "loop.py"
  source = path.read_text()
  probes = [ast.get_source_segment(source, node) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("hasattr", "getattr")]
  assert not [p for p in probes if "evaluator" in p], probes


def test_the_evaluator_of_a_search_is_chosen_in_one_place():
  """Only evaluators.choose asks a task for its evaluator (outside the tasks)."""
  callers = []
  for path in sorted((ROOT / "nas_tf").rglob("*.py")):
    if "tasks" not in path.relative_to(ROOT / "nas_tf").parts and (
        "make_evaluator(" in path.read_text()):
      callers.append(str(path.relative_to(ROOT)))
  assert callers == ["nas_tf/search/evaluators/__init__.py"]
