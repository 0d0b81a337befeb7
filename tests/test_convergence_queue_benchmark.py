"""benchmarks/convergence_queue.py: which trainings are done, which resume, who trains what."""

import json

import pytest


@pytest.fixture(scope="module")
def queue(load_benchmark):
  return load_benchmark("convergence_queue")


_PLAN = [("f", f"m{k}-s0", "ptb", ["--epochs=13", "--seed=0"]) for k in range(5)]


def _runs(tmp_path):
  return tmp_path / "benchmarks" / "results" / "runs" / "f"


def test_states_from_what_nas_train_leaves(queue, tmp_path):
  runs = _runs(tmp_path)
  (runs / "m0-s0").mkdir(parents=True)
  (runs / "m0-s0" / "metrics.json").write_text("{}")
  (runs / "m1-s0" / "backup").mkdir(parents=True)   # PTB in progress
  (runs / "m1-s0" / "backup" / "state.json").write_text(json.dumps({"epoch": 3}))
  (runs / "m2-s0").mkdir()
  (runs / "m2-s0" / "history.json").write_text("{}")  # CIFAR-10 in progress
  (runs / "m3-s0").mkdir()                            # created, nothing trained
  assert [queue.state(runs / f"m{k}-s0") for k in range(5)] == [
      "done", "started", "started", "to do", "to do"]


def test_pending_puts_started_runs_first_and_shards_without_overlap(queue, tmp_path):
  runs = _runs(tmp_path)
  (runs / "m0-s0").mkdir(parents=True)
  (runs / "m0-s0" / "metrics.json").write_text("{}")
  (runs / "m4-s0").mkdir()
  (runs / "m4-s0" / "history.json").write_text("{}")
  names = lambda es: [e[1] for e in es]
  assert names(queue.pending(_PLAN, tmp_path)) == ["m4-s0", "m1-s0", "m2-s0", "m3-s0"]
  shards = [names(queue.pending(_PLAN, tmp_path, shard=f"{i}/2")) for i in range(2)]
  assert shards == [["m4-s0", "m2-s0"], ["m1-s0", "m3-s0"]]
  assert names(queue.pending(_PLAN, tmp_path, only={"f/m3-s0", "f/m0-s0"})) == ["m3-s0"]
  for bad in ("2/2", "x/2", "1"):
    with pytest.raises(ValueError, match="shard"):
      queue.pending(_PLAN, tmp_path, shard=bad)


def test_commands_match_the_recipes_results_cites(queue):
  plan = {f"{e[0]}/{e[1]}": e for e in queue.PLAN}
  assert len(plan) == len(queue.PLAN)  # no output folder twice
  cmd = queue.command(plan["zaremba_small/lstm-zaremba-s1"], "P", "C", cache_dir="/c")
  assert cmd[1:] == ["bin/nas_train", "--task=ptb", "--data_dir=P", "--epochs=13", "--seed=1",
                     "--cell=lstm", "--units=200",
                     "--output_dir=benchmarks/results/runs/zaremba_small/lstm-zaremba-s1"]
  cmd = queue.command(plan["cifar_final/resnet20-s0"], "P", "C", cache_dir="/c")
  assert "--data_dir=C" in cmd and "--epochs=30" in cmd and cmd[-1] == "--cache_dir=/c"
  # Every found model's search folder is committed, so a fresh clone can train it.
  import pathlib  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parents[1]
  specs = [a.split("=", 1)[1] for e in queue.PLAN for a in e[3] if a.startswith("--spec=")]
  assert len(specs) == 8 and all((root / s).is_dir() for s in specs), specs
