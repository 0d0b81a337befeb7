"""The search loop: files written, budget accounting, cache, failures, resume after a kill."""

import dataclasses
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import launch
import pytest

from nas_tf import config as config_lib
from nas_tf import config_edits
from nas_tf import rewards
from nas_tf import search
from nas_tf import specs as specs_lib
from nas_tf import tasks
from nas_tf.search.log import ResultsLog

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = ROOT / "bin" / "nas_search"


class FakeEvaluator:
  """Deterministic metrics from the spec: tests the loop without training networks."""

  def __init__(self, status_of=None):
    self.calls = []
    self.status_of = status_of or (lambda spec: "ok")

  def evaluate(self, specs):
    out = []
    for s in specs:
      self.calls.append(s.to_json())
      status = self.status_of(s)
      if isinstance(s, specs_lib.RNNCellSpec):
        ppl = 40.0 + 5 * sum(n.activation == "tanh" for n in s.nodes)
        out.append({"status": status, "val_perplexity": ppl, "num_params": 10,
                    "train_seconds": 0.0, "error": None if status == "ok" else "boom"})
      else:
        acc = 0.1 + 0.1 * sum(l.filter_height == 3 for l in s.layers)
        out.append({"status": status, "val_accuracy_history": [acc], "val_accuracy": acc,
                    "num_params": 10, "train_seconds": 0.0, "error": None})
    return out

  def close(self):
    pass


def _config(tmp_path, task="ptb", **kw):
  space = ({"kind": "rnn", "base": 2, "combinations": ["add", "elem_mult"],
            "activations": ["identity", "tanh", "sigmoid", "relu"]} if task == "ptb"
           else {"kind": "cnn", "strides": [1]})
  base = dict(task=task, data_dir=str(ROOT / "testdata" / "ptb"),
              output_dir=str(tmp_path / "out"), max_children=6, children_per_step=2,
              space=space, depth=config_lib.DepthSchedule(start=3, increment=1, every=4),
              runtime=config_lib.RuntimeConfig(isolation="inline"))
  base.update(kw)
  return config_lib.SearchConfig(**base)


def _records(cfg):
  return ResultsLog(os.path.join(cfg.output_dir, "results.jsonl")).records


@pytest.mark.parametrize("method", ["rl", "random"])
def test_same_budget_accounting_and_files(tmp_path, method):
  cfg = _config(tmp_path, search=method, max_children=5)
  fake = FakeEvaluator()
  summary = search.run(cfg, evaluator=fake)
  recs = _records(cfg)
  assert [(r["step"], r["index"]) for r in recs] == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
  assert summary["num_children"] == 5
  out = pathlib.Path(cfg.output_dir)
  for name in ("config.json", "results.jsonl", "state.json", "best.json", "summary.txt"):
    assert (out / name).exists(), name
  assert config_lib.SearchConfig.from_json((out / "config.json").read_text()) == cfg
  state = json.loads((out / "state.json").read_text())
  assert state["step"] == 3
  seconds = state["seconds"]
  assert seconds["children"] > 0 and seconds["controller"] > 0
  assert seconds["children"] + seconds["controller"] <= seconds["total"]
  assert list((out / "tensorboard").iterdir())
  for r in recs:
    ppl = r["val_metric"]
    assert r["reward"] == pytest.approx(80.0 / ppl ** 2)
    assert specs_lib.from_dict(r["spec"]).describe() == r["describe"]
  best = json.loads((out / "best.json").read_text())
  assert best["reward"] == max(r["reward"] for r in recs)
  # Unique specs are trained once: evaluator calls == distinct specs.
  assert len(fake.calls) == len({json.dumps(r["spec"], sort_keys=True) for r in recs})


def test_rl_changes_controller_and_checkpoints(tmp_path):
  cfg = _config(tmp_path, max_children=4)
  search.run(cfg, evaluator=FakeEvaluator())
  state = json.loads((pathlib.Path(cfg.output_dir) / "state.json").read_text())
  assert state["baseline"] is not None and state["checkpoint"].endswith("step-2")
  ckpts = os.listdir(pathlib.Path(cfg.output_dir) / "checkpoints")
  assert all(n.startswith("step-2") for n in ckpts if n.startswith("step-")), ckpts


def test_cnn_depth_schedule(tmp_path):
  cfg = _config(tmp_path, task="cifar10", max_children=8, children_per_step=2)
  search.run(cfg, evaluator=FakeEvaluator())
  depths = [(r["depth"], len(r["spec"]["layers"])) for r in _records(cfg)]
  # start 3, +1 every 4 sampled architectures.
  assert depths == [(3, 3)] * 4 + [(4, 4)] * 4


def test_failed_children_get_failure_reward_and_search_continues(tmp_path):
  cfg = _config(tmp_path, max_children=6)
  statuses = iter(["ok", "nan", "too_large", "ok", "failed", "ok"] * 3)
  search.run(cfg, evaluator=FakeEvaluator(status_of=lambda s: next(statuses)))
  recs = [r for r in _records(cfg) if not r["cached"]]
  bad = [r for r in recs if r["status"] != "ok"]
  assert bad and all(r["reward"] == rewards.FAILURE_REWARD for r in bad)
  assert len(_records(cfg)) == 6


class HugePerplexity(FakeEvaluator):
  """Children whose training 'succeeded' with absurd or non-finite perplexities."""

  def __init__(self, values):
    super().__init__()
    self.values = iter(values)

  def evaluate(self, specs):
    out = super().evaluate(specs)
    for m in out:
      m["val_perplexity"] = next(self.values)
    return out


@pytest.mark.parametrize("status", ["degenerate", "a_status_not_cached"])
def test_a_step_that_samples_one_untrainable_cell_twice_logs_both(tmp_path, monkeypatch,
                                                                   status):
  """Identical specs of one step are scored once; the copy takes the first one's result
  whatever its status. A dead cell ('degenerate') sampled twice in one step crashed a
  2-replica search at child 123 (nothing cached it)."""
  from nas_tf.search.samplers import random as random_sampler  # pylint: disable=g-import-not-at-top
  real = random_sampler.RandomSampler.sample

  def twins(self, step, m, depth):
    tokens, specs = real(self, step, 1, depth)
    return tokens * m, specs * m

  monkeypatch.setattr(random_sampler.RandomSampler, "sample", twins)
  fake = FakeEvaluator(status_of=lambda s: status)
  cfg = _config(tmp_path, search="random", max_children=4, children_per_step=2)
  search.run(cfg, evaluator=fake)
  recs = _records(cfg)
  assert [(r["step"], r["index"], r["status"], r["cached"]) for r in recs] == [
      (0, 0, status, False), (0, 1, status, True), (1, 0, status, False), (1, 1, status, True)]
  assert len(fake.calls) == 2


def test_diverged_children_are_a_status_and_records_are_strict_json(tmp_path):
  """6.5e51 used to overflow the reward and crash every resume; inf and NaN were 'ok'."""
  cfg = _config(tmp_path, max_children=4)
  search.run(cfg, evaluator=HugePerplexity([6.5e51, float("inf"), 50.0, float("nan"),
                                            1e300, 60.0]))
  recs = _records(cfg)
  text = (pathlib.Path(cfg.output_dir) / "results.jsonl").read_text()
  for literal in ("NaN", "Infinity"):
    assert literal not in text
    assert literal not in (pathlib.Path(cfg.output_dir) / "best.json").read_text()
  fresh = [r for r in recs if not r["cached"]]
  bad = [r for r in fresh if r["metrics"]["val_perplexity"] != 50.0]
  assert bad and all(r["status"] == "nan" and r["reward"] == rewards.FAILURE_REWARD
                     for r in bad)
  assert any("above e x the vocabulary size" in r["metrics"]["error"] for r in bad)
  assert [r["status"] for r in fresh if r["metrics"]["val_perplexity"] == 50.0] == ["ok"]
  search.run(dataclasses.replace(cfg, max_children=6),  # a resume reads it all back
             evaluator=HugePerplexity([1e300, 60.0, 1e300, 60.0]))
  assert len(_records(cfg)) == 6


def test_all_failing_first_step_is_a_setup_error(tmp_path):
  cfg = _config(tmp_path)
  with pytest.raises(RuntimeError, match="setup problem.*boom"):
    search.run(cfg, evaluator=FakeEvaluator(status_of=lambda s: "failed"))


def test_a_run_of_too_large_children_stops_naming_the_cap(tmp_path):
  """The paper's LM size under the default cap must not silently score every child 0."""
  cfg = _config(tmp_path, search="random", max_children=4, child=config_lib.ChildTrainingConfig(
      lm_units=8, batch_size=4, num_steps=5, max_params=1000, max_train_examples=200,
      max_eval_examples=200))
  with pytest.raises(RuntimeError, match=r"none of the latest 4 children was trained, [34] "
                     r"of them over the size caps \(child too large: .*"
                     r"--set=child.max_params=N"):
    search.run(cfg)
  assert {r["status"] for r in _records(cfg)} <= {"too_large", "degenerate"}


def test_a_cap_part_of_the_space_meets_is_a_constraint_not_a_stop(tmp_path):
  """A compute budget that rejects some children (m = 1, as the real presets) scores them
  with the failure reward and goes on; 20 rejections in a row stop it."""
  from nas_tf.search import records as records_lib  # pylint: disable=g-import-not-at-top
  cfg = _config(tmp_path, children_per_step=1, max_children=100)
  log = []  # check_not_all_broken reads records only

  def add(status):
    log.append({"step": len(log), "index": 0, "status": status, "reward": 0.0,
                "metrics": {"error": "child too large: over max_macs"}})

  for status in ["too_large"] * 3 + ["ok"] + ["too_large"] * 18 + ["degenerate"]:
    add(status)
    records_lib.check_not_all_broken(log, cfg)  # never 20 untrained in a row yet
  add("too_large")
  with pytest.raises(RuntimeError, match="none of the latest 20 children was trained, 19 "
                     "of them over the size caps"):
    records_lib.check_not_all_broken(log, cfg)


def test_resume_extends_budget_without_duplicates(tmp_path):
  """Slow: two searches in a row, the second resuming the first."""
  cfg = _config(tmp_path, max_children=4)
  search.run(cfg, evaluator=FakeEvaluator())
  first = _records(cfg)
  fake = FakeEvaluator()
  search.run(_config(tmp_path, max_children=8), evaluator=fake)
  recs = _records(cfg)
  assert recs[:4] == first
  assert len({(r["step"], r["index"]) for r in recs}) == len(recs) == 8
  # A resumed run reproduces what an uninterrupted run samples.
  search.run(_config(tmp_path, max_children=8, output_dir=str(tmp_path / "straight")),
             evaluator=FakeEvaluator())
  straight = ResultsLog(str(tmp_path / "straight" / "results.jsonl")).records
  assert [r["spec"] for r in straight] == [r["spec"] for r in recs]


def test_smaller_budget_on_a_finished_run_has_nothing_to_do(tmp_path):
  cfg = _config(tmp_path, max_children=4)
  search.run(cfg, evaluator=FakeEvaluator())
  before = (pathlib.Path(cfg.output_dir) / "config.json").read_text()
  with pytest.raises(search.ConfigMismatchError, match="max_children=4: nothing to do for "
                     "max_children=2 .*config.json is left as it was"):
    search.run(_config(tmp_path, max_children=2), evaluator=FakeEvaluator())
  assert (pathlib.Path(cfg.output_dir) / "config.json").read_text() == before
  assert len(_records(cfg)) == 4


def test_half_written_record_is_dropped_on_resume(tmp_path):
  cfg = _config(tmp_path, max_children=4)
  search.run(cfg, evaluator=FakeEvaluator())
  path = pathlib.Path(cfg.output_dir) / "results.jsonl"
  with open(path, "a") as f:
    f.write('{"step": 2, "index": 0, "spe')
  search.run(_config(tmp_path, max_children=6), evaluator=FakeEvaluator())
  recs = _records(cfg)
  assert [(r["step"], r["index"]) for r in recs][-2:] == [(2, 0), (2, 1)]
  assert len(recs) == 6


def test_config_mismatch_refuses_to_resume(tmp_path):
  search.run(_config(tmp_path, max_children=2), evaluator=FakeEvaluator())
  with pytest.raises(search.ConfigMismatchError, match=r"settings \(seed: 0 -> 3\)"):
    search.run(_config(tmp_path, max_children=2, seed=3), evaluator=FakeEvaluator())


def test_resume_ignores_sections_the_strategy_does_not_read(tmp_path):
  """An rl run resumes after a field is added to the bo section; a bo run does not."""
  for strategy in ("rl", "bo"):
    cfg = _config(tmp_path, max_children=2, search=strategy,
                  output_dir=str(tmp_path / strategy))
    search.run(cfg, evaluator=FakeEvaluator())
    path = pathlib.Path(cfg.output_dir) / "config.json"
    old = json.loads(path.read_text())
    del old["bo"]["distinct"]  # as written before the field existed
    path.write_text(json.dumps(old))
    resumed = _config(tmp_path, max_children=4, search=strategy, output_dir=cfg.output_dir)
    if strategy == "rl":
      search.run(resumed, evaluator=FakeEvaluator())
      assert len(_records(cfg)) == 4
    else:
      with pytest.raises(search.ConfigMismatchError,
                         match=r"settings \(bo.distinct: False -> True\)"):
        search.run(resumed, evaluator=FakeEvaluator())


def test_resume_ignores_the_controller_unless_the_strategy_is_rl(tmp_path):
  """Random search resumes with another controller lr (it has no controller); rl does not."""
  for strategy in ("random", "rl"):
    out = str(tmp_path / strategy)
    search.run(_config(tmp_path, max_children=2, search=strategy, output_dir=out),
               evaluator=FakeEvaluator())
    resumed = _config(tmp_path, max_children=4, search=strategy, output_dir=out)
    resumed = dataclasses.replace(
        resumed, controller=dataclasses.replace(resumed.controller, learning_rate=0.5))
    if strategy == "random":
      search.run(resumed, evaluator=FakeEvaluator())
      assert len(_records(resumed)) == 4
    else:
      with pytest.raises(search.ConfigMismatchError,
                         match=r"settings \(controller.learning_rate: 0.0\d+ -> 0.5\)"):
        search.run(resumed, evaluator=FakeEvaluator())


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ptb", "cifar10"])
def test_real_tiny_search_end_to_end(tmp_path, task):
  """The binary on testdata with real child training (process isolation).

  Slow: the binary end to end in a subprocess, real child training.
  """
  out = tmp_path / task
  proc = launch.run([BIN, f"--task={task}", f"--output_dir={out}",
                         "--max_children=2", "--steps_per_epoch=3"], capture_output=True,
                        text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  recs = ResultsLog(str(out / "results.jsonl")).records
  # A sampled dead cell (output identically 0) is refused untrained as 'degenerate'.
  trained = [r for r in recs if r["status"] == "ok"]
  assert len(recs) == 2 and trained and all(
      r["status"] in ("ok", "degenerate") for r in recs), recs
  assert all(r["num_params"] > 0 and r["train_seconds"] > 0 for r in trained)
  assert "TINY run" in proc.stderr


@pytest.mark.slow
def test_killed_search_resumes_to_same_total(tmp_path):
  """Slow: runs the search binary twice in subprocesses (TensorFlow start-up each time) around a kill."""
  out = tmp_path / "killed"
  args = [sys.executable, str(BIN), "--task=ptb", f"--output_dir={out}", "--max_children=6",
          "--children_per_step=2", "--isolation=inline", "--steps_per_epoch=4", "--noreport"]
  proc = launch.Popen(args, stdout=launch.DEVNULL, stderr=launch.DEVNULL)
  results = out / "results.jsonl"
  deadline = time.time() + 240
  while time.time() < deadline:
    if results.exists() and len(results.read_text().splitlines()) >= 3:
      break
    time.sleep(0.2)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  before = ResultsLog(str(results), repair=False).records
  assert 3 <= len(before) < 6, "the search finished before it could be killed"
  done = launch.run(args, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:]
  recs = ResultsLog(str(results)).records
  keys = [(r["step"], r["index"]) for r in recs]
  assert len(recs) == 6 and len(set(keys)) == 6
  assert recs[:len(before)] == before


def _workers(pid):
  """The worker processes below ``pid``: spawned ones, or those forked by a forkserver
  that ``pid`` started (a forked process keeps the forkserver's command line, so a worker
  is a process whose parent is a forkserver below ``pid``)."""
  def cmdline(p):
    try:
      return pathlib.Path(f"/proc/{p}/cmdline").read_text()
    except OSError:
      return ""
  below = launch.descendants(pid)
  return [p for p, parent in below.items() if "spawn_main" in cmdline(p) or (
      parent in below and "forkserver" in cmdline(parent))]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_search_leaves_no_worker_behind(tmp_path, sig):
  """SIGKILL (OOM, preemption) or SIGTERM (timeout) of a search: its workers die too."""
  if not pathlib.Path("/proc/self/status").exists():
    pytest.skip("needs /proc")
  out = tmp_path / "out"
  # Long children, so that the worker is busy training when the search is killed.
  proc = launch.Popen([BIN, "--task=ptb", f"--output_dir={out}",
                       "--max_children=2", "--child_epochs=200", "--isolation=process"],
                      stdout=launch.DEVNULL, stderr=launch.PIPE, text=True)
  deadline, workers = time.time() + 120, []
  while time.time() < deadline and not workers and proc.poll() is None:
    time.sleep(0.5)
    workers = _workers(proc.pid)
  assert workers, "no worker process started"
  time.sleep(3)  # let it load the data and start training
  children = list(launch.descendants(proc.pid))
  proc.send_signal(sig)
  _, stderr = proc.communicate(timeout=60)
  if sig == signal.SIGTERM:
    assert proc.returncode == 1 and "interrupted; rerun the same command" in stderr, stderr
    assert "Traceback" not in stderr
  deadline = time.time() + 20
  while time.time() < deadline and any(launch.running(p) for p in children):
    time.sleep(0.5)
  assert not [p for p in children if launch.running(p)], "processes left running after the search"


@pytest.mark.slow
def test_a_worker_that_dies_between_steps_costs_no_exception():
  """A worker killed (out of memory, say) while idle, here during its start-up: the next
  step still trains, on a new pool, instead of raising BrokenProcessPool at submit.

  Slow: starts two worker processes (TensorFlow and the data in each).
  """
  from nas_tf.search.evaluators import local as evaluation  # pylint: disable=g-import-not-at-top
  child = config_lib.ChildTrainingConfig(epochs=1, batch_size=4, num_steps=8, lm_units=8,
                                         lm_layers=1, max_train_examples=200)
  evaluator = evaluation.ProcessEvaluator(tasks.get("ptb"), str(ROOT / "testdata" / "ptb"),
                                          child)
  try:
    pool = evaluator._pool  # pylint: disable=protected-access
    for process in list(pool._processes.values()):  # pylint: disable=protected-access
      process.kill()
    deadline = time.time() + 30
    while not pool._broken and time.time() < deadline:  # pylint: disable=protected-access
      time.sleep(0.05)
    assert pool._broken  # pylint: disable=protected-access
    (result,) = evaluator.evaluate([specs_lib.lstm_like_base2_spec()])
    assert result["status"] == "ok", result
  finally:
    evaluator.close(abort=True)


def test_moved_and_copied_runs_resume_from_their_own_checkpoint(tmp_path):
  """state.json used to hold an absolute checkpoint path: a moved run could not resume
  and a copied one silently restored the original directory's controller."""
  cfg = _config(tmp_path, max_children=4)
  search.run(cfg, evaluator=FakeEvaluator())
  state = json.loads((tmp_path / "out" / "state.json").read_text())
  assert state["checkpoint"] == os.path.join("checkpoints", "step-2")
  moved = tmp_path / "moved"
  shutil.copytree(tmp_path / "out", moved)
  shutil.rmtree(tmp_path / "out")  # the original is gone: only the copy can be used
  out = search.run(dataclasses.replace(cfg, output_dir=str(moved), max_children=6),
                   evaluator=FakeEvaluator())
  assert out["num_children"] == 6
  loaded = search.load_state(str(moved), phases=())
  assert loaded["checkpoint"] == os.path.join(str(moved), "checkpoints", "step-3")
  (moved / "state.json").write_text(json.dumps(dict(state, checkpoint="checkpoints/gone")))
  with pytest.raises(FileNotFoundError, match="not in"):
    search.load_state(str(moved), phases=())
  # A damaged state.json names itself and the ways forward, not just a JSON position.
  (moved / "state.json").write_text('{"step": 3,\n "baseline" 0.1}')
  with pytest.raises(ValueError, match=r"state.json is not valid JSON \(Expecting ':' .*"
                     r"Restore it from a backup, or move .* aside"):
    search.load_state(str(moved), phases=())


def test_resume_detects_lost_records_and_rewrites_summaries(tmp_path):
  """A truncated results.jsonl used to resume to exit 0 with fewer than max_children."""
  cfg = _config(tmp_path, max_children=6)
  search.run(cfg, evaluator=FakeEvaluator())
  out = pathlib.Path(cfg.output_dir)
  (out / "best.json").unlink()
  (out / "summary.txt").write_text("stale")
  search.run(cfg, evaluator=FakeEvaluator())  # nothing to train: summaries from the log
  assert (out / "best.json").exists() and "6 children sampled" in (
      out / "summary.txt").read_text()
  lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
  (out / "results.jsonl").write_text("".join(lines[:3]))  # lost: 3 committed records
  with pytest.raises(RuntimeError, match="holds 3 records but 6 were logged.*truncated"):
    search.run(cfg, evaluator=FakeEvaluator())
  # A refused resume does not leave the directory locked in this process.
  search.OutputDirLock(cfg.output_dir).release()


def test_files_share_one_mode_and_killed_writes_leave_nothing(tmp_path):
  cfg = _config(tmp_path, max_children=2)
  out = pathlib.Path(cfg.output_dir)
  out.mkdir()
  (out / ".tmp-state.jsonab12cd").write_text("{half")  # a kill during the rename
  search.run(cfg, evaluator=FakeEvaluator())
  assert not list(out.glob(".tmp-*"))
  modes = {name: (out / name).stat().st_mode & 0o777
           for name in ("results.jsonl", "state.json", "best.json", "config.json")}
  assert len(set(modes.values())) == 1, modes


def test_second_search_on_the_same_output_dir_is_refused(tmp_path):
  """Two searches in one directory used to both exit 0 with every child logged twice."""
  cfg = _config(tmp_path)
  (tmp_path / "out").mkdir()
  holder = search.OutputDirLock(str(tmp_path / "out"))  # this process is "the other search"
  other = launch.run([BIN, "--task=ptb", "--max_children=1",
                          f"--output_dir={tmp_path / 'out'}", "--isolation=inline"],
                         capture_output=True, text=True, timeout=120)
  assert other.returncode == 1, other.stderr[-2000:]
  assert f"is in use by another search (pid {os.getpid()})" in other.stderr
  assert "Traceback" not in other.stderr
  holder.release()  # (the kernel also drops it when its process dies: see the kill tests)
  search.run(cfg, evaluator=FakeEvaluator())
  assert len(_records(cfg)) == 6


def _run_bin(*args):
  return launch.run([BIN, *args], capture_output=True, text=True,
                        timeout=120)


def test_binary_bad_flags_exit_with_one_line(tmp_path):
  bad_task = _run_bin("--task=imagenet")
  assert bad_task.returncode != 0 and "imagenet" in bad_task.stderr
  assert "Traceback" not in bad_task.stderr
  missing = _run_bin("--task=ptb", f"--data_dir={tmp_path}/nope", f"--output_dir={tmp_path}/o")
  assert missing.returncode != 0
  assert "nas_search: error:" in missing.stderr and "nope" in missing.stderr
  assert "Traceback" not in missing.stderr
  blocker = tmp_path / "file"
  blocker.write_text("x")
  unwritable = _run_bin("--task=ptb", f"--output_dir={blocker}/sub")
  assert unwritable.returncode != 0 and "output_dir" in unwritable.stderr
  assert "Traceback" not in unwritable.stderr


@pytest.mark.parametrize("task", ["ptb", "cifar10"])
def test_paper_recipe_flagfiles_parse_and_start(tmp_path, task):
  """examples/paper_*.flags hold the paper's settings and start a search (made tiny here).

  Slow: starts the binary on the paper's flag files in a subprocess.
  """
  flagfile = f"--flagfile={ROOT / 'examples' / f'paper_{task}.flags'}"
  dry = _run_bin(flagfile, "--data_dir=somewhere", "--dry_run")
  assert dry.returncode == 0, dry.stderr
  paper = json.loads(dry.stdout)
  child = paper["child"]
  assert child["max_train_examples"] is None and child["max_eval_examples"] is None
  if task == "ptb":
    assert (child["epochs"], child["lm_units"], child["num_steps"], child["optimizer"],
            child["clipnorm"], child["tie_embeddings"]) == (35, 650, 35, "sgd", 5.0, True)
    assert paper["controller"]["grad_accumulation"] == 10 and child["max_params"] >= 25e6
  else:
    assert (child["epochs"], child["optimizer"], child["learning_rate"], child["momentum"],
            child["weight_decay"], child["reward_epochs"]) == (50, "momentum", 0.1, 0.9,
                                                               1e-4, 5)
    assert paper["validation_size"] == 5000 and paper["depth"]["every"] == 1600
  # Later flags override the file: one tiny child on the bundled testdata.
  data = ROOT / "testdata" / ("ptb" if task == "ptb" else "cifar10/png")
  tiny = ["--max_children=1", "--children_per_step=1", "--child_epochs=1", "--lm_units=8",
          "--num_steps=10", "--start_layers=2", "--validation_size=10", "--isolation=inline"]
  run = _run_bin(flagfile, f"--data_dir={data}", f"--output_dir={tmp_path}/run", *tiny)
  assert run.returncode == 0, run.stderr[-2000:]
  records = _records(config_lib.SearchConfig(task=task, data_dir=str(data),
                                             output_dir=str(tmp_path / "run")))
  # (A dead cell -- output identically zero -- is refused untrained as 'degenerate'.)
  assert len(records) == 1 and records[0]["status"] in ("ok", "degenerate"), records


def test_set_reaches_every_section_the_space_and_task_options(tmp_path):
  cfg = config_lib.SearchConfig(task="cifar10", data_dir="d", output_dir=str(tmp_path),
                                space={"kind": "cnn"})
  cfg = config_edits.apply_overrides(cfg, [
      "controller.temperature=2", "controller.tanh_constant=2.5", "shared.train_batches=7",
      "child.max_train_examples=all", "space.num_filters=32,64", "space.filter_heights=[1,3]",
      "task_options.dataset=cifar100", "evolution.population_size=30"])
  assert (cfg.controller.temperature, cfg.controller.tanh_constant) == (2.0, 2.5)
  assert cfg.shared.train_batches == 7 and cfg.child.max_train_examples is None
  assert cfg.space == {"kind": "cnn", "num_filters": [32, 64], "filter_heights": [1, 3]}
  assert cfg.task_options == {"dataset": "cifar100"}
  assert cfg.evolution.population_size == 30
  assert search.make_space(cfg).num_filters == (32, 64)
  with pytest.raises(ValueError, match="'nope'"):
    config_edits.apply_overrides(cfg, ["child.nope=1"])
  with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
    config_edits.apply_overrides(cfg, ["controller.temperature=0"])


def test_traced_checkpoint_writer_saves_each_prefix_with_its_values(tmp_path):
  """The cluster's save is one traced function: the prefix must be its input (not a
  constant of the trace) and each write must hold the values at that write."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from nas_tf.search import outputs  # pylint: disable=g-import-not-at-top
  v = tf.Variable([1.0, 2.0])
  count = tf.Variable(0, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(v=v, count=count)
  write = outputs.checkpoint_writer(checkpoint, traced=True)
  first = write(str(tmp_path / "checkpoints" / "step-1"))  # a directory not made yet
  v.assign([3.0, 4.0])
  count.assign(7)
  second = write(str(tmp_path / "checkpoints" / "step-2"))
  assert (first, second) == (str(tmp_path / "checkpoints" / "step-1"),
                             str(tmp_path / "checkpoints" / "step-2"))
  assert write.traced.experimental_get_tracing_count() == 1
  # An object added after the trace is saved too: the writer traces again.
  checkpoint.extra = tf.Variable(5.0)
  third = write(str(tmp_path / "checkpoints" / "step-3"))
  extra = tf.Variable(0.0)
  tf.train.Checkpoint(v=tf.Variable([0.0, 0.0]), count=tf.Variable(0, dtype=tf.int64),
                      extra=extra).read(third).assert_existing_objects_matched()
  assert float(extra.numpy()) == 5.0
  for path, want_v, want_count in ((first, [1.0, 2.0], 0), (second, [3.0, 4.0], 7)):
    u, c = tf.Variable([0.0, 0.0]), tf.Variable(-1, dtype=tf.int64)
    tf.train.Checkpoint(v=u, count=c).read(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(u.numpy(), want_v)
    assert int(c.numpy()) == want_count


def test_a_search_that_fails_before_its_first_child_leaves_no_run_behind(tmp_path):
  """Data in a wrong format is found when the first child loads it: the directory must
  not then look like a run (its config.json would refuse the corrected command)."""
  junk = tmp_path / "junk"
  (junk / "sub").mkdir(parents=True)
  (junk / "sub" / "a.txt").write_text("not CIFAR-10")
  cfg = _config(tmp_path, task="cifar10", data_dir=str(junk), search="random")
  with pytest.raises(ValueError, match="matches no known CIFAR-10 layout"):
    search.run(cfg)
  assert not os.path.exists(cfg.output_dir)
  # A directory the user made is kept (empty); one holding a run keeps its config.json.
  os.makedirs(cfg.output_dir)
  with pytest.raises(ValueError, match="CIFAR-10 layout"):
    search.run(cfg)
  assert os.listdir(cfg.output_dir) == []
  good = _config(tmp_path, max_children=2, search="random")
  search.run(good, evaluator=FakeEvaluator())

  class Broken:
    def evaluate(self, specs):
      raise RuntimeError("boom")

  with pytest.raises(RuntimeError, match="boom"):
    search.run(dataclasses.replace(good, max_children=4), evaluator=Broken())
  assert os.path.exists(os.path.join(good.output_dir, "config.json"))
