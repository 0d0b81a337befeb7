"""The NAS-Bench-201 task: cell strings, table lookup, exact random search, searches."""

import itertools
import json
import pathlib
import subprocess
import sys

import launch
import numpy as np
import pytest

from nas_tf import config as config_lib
from nas_tf import search
from nas_tf import search_space
from nas_tf import specs
from nas_tf.search.log import ResultsLog
from nas_tf.tasks import nasbench201

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURE = str(ROOT / "testdata" / "nasbench201" / "nasbench201-synthetic.csv.gz")
CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def test_cell_string_round_trip_and_tokens():
  spec = specs.NB201CellSpec.from_cell_string(CELL)
  assert spec.ops == ("nor_conv_3x3", "nor_conv_3x3", "avg_pool_3x3", "skip_connect",
                      "nor_conv_3x3", "skip_connect")
  assert spec.describe() == CELL
  assert specs.from_json(spec.to_json()) == spec
  space = search_space.NB201SearchSpace()
  assert space.encode(spec) == (3, 3, 4, 1, 3, 1) and space.decode((3, 3, 4, 1, 3, 1)) == spec
  assert space.log_num_architectures() == pytest.approx(6 * np.log(5))
  with pytest.raises(specs.SpecError, match="'conv_5x5'"):
    specs.NB201CellSpec(("conv_5x5",) * 6)


def test_fixture_holds_every_cell_of_the_space():
  table = nasbench201.load_table(FIXTURE, "cifar10")
  space = search_space.NB201SearchSpace()
  cells = {space.decode(t).describe() for t in itertools.product(range(5), repeat=6)}
  assert set(table) == cells and len(cells) == 15_625


def test_exact_random_search_matches_hand_computation_and_simulation():
  table = {"a": (0.1, 0.5, 0), "b": (0.2, 0.7, 1), "c": (0.3, 0.6, 2)}
  # N=2: best-val is c unless both draws avoid it: P(c) = 1 - (2/3)^2 = 5/9;
  # P(b) = (2/3)^2 - (1/3)^2 = 3/9; P(a) = 1/9.
  want = (5 * 0.6 + 3 * 0.7 + 1 * 0.5) / 9
  assert nasbench201.expected_random_search(table, [2])[2] == pytest.approx(want)
  assert nasbench201.best_achievable(table) == 0.6
  full = nasbench201.load_table(FIXTURE, "cifar100")
  exact = nasbench201.expected_random_search(full, [20])[20]
  rng = np.random.default_rng(0)
  vals = list(full.values())
  sims = []
  for _ in range(3000):
    draw = [vals[i] for i in rng.integers(len(vals), size=20)]
    sims.append(max(draw, key=lambda v: v[0])[1])
  assert abs(np.mean(sims) - exact) < 4 * np.std(sims) / np.sqrt(len(sims))


def test_table_errors_name_the_problem(tmp_path):
  bad = tmp_path / "t.csv"
  bad.write_text("arch,cellstr,foo\n0,x,1\n")
  with pytest.raises(ValueError, match="cifar10-val"):
    nasbench201.load_table(str(bad), "cifar10")
  with pytest.raises(ValueError, match="'svhn'"):
    nasbench201.load_table(FIXTURE, "svhn")
  with pytest.raises(FileNotFoundError, match="CSV"):
    nasbench201.NASBENCH201.check_data(str(tmp_path))


def _config(out, search_name, **kw):
  base = dict(task="nasbench201", data_dir=FIXTURE, output_dir=str(out), search=search_name,
              children_per_step=2, max_children=30, task_options={"dataset": "cifar100"})
  return config_lib.SearchConfig(**{**base, **kw})


@pytest.mark.parametrize("search_name", ["rl", "evolution", "bo", "random"])
def test_search_logs_test_accuracy_and_resumes_to_the_same_run(tmp_path, search_name):
  whole = search.run(_config(tmp_path / "whole", search_name))
  assert whole["num_children"] == 30
  recs = ResultsLog(str(tmp_path / "whole" / "results.jsonl")).records
  assert all(r["status"] == "ok" and 0 < r["metrics"]["test_accuracy"] < 1 for r in recs)
  assert all(r["reward"] == r["val_metric"] == r["metrics"]["val_accuracy"] for r in recs)
  assert all(r["metrics"]["dataset"] == "cifar100" for r in recs)
  # Half the budget, then the rest: the same children in the same order.
  search.run(_config(tmp_path / "cut", search_name, max_children=14))
  resumed = search.run(_config(tmp_path / "cut", search_name))
  assert resumed["num_evaluated"] <= 16
  cut = ResultsLog(str(tmp_path / "cut" / "results.jsonl")).records
  key = lambda r: (r["step"], r["index"], tuple(r["tokens"]))
  assert [key(r) for r in cut] == [key(r) for r in recs]
  config = json.loads((tmp_path / "cut" / "config.json").read_text())
  assert config["task_options"] == {"dataset": "cifar100"}


def test_binary_runs_evolution_on_the_table(tmp_path):
  out = tmp_path / "nb"
  proc = launch.run([ROOT / "bin" / "nas_search",
                         "--task=nasbench201", "--search=evolution", f"--output_dir={out}",
                         "--max_children=300", "--population_size=20",
                         "--tournament_size=5", f"--data_dir={FIXTURE}"],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert len(ResultsLog(str(out / "results.jsonl"))) == 300
  saved = json.loads((out / "config.json").read_text())
  assert saved["evolution"] == {"population_size": 20, "sample_size": 5,
                                "with_replacement": True}
  state = json.loads((out / "state.json").read_text())
  assert len(state["sampler"]["population"]) == 20


_TF_FREE_SEARCH = """
import json, sys
from nas_tf import config, search
out = sys.argv[1]
search.run(config.SearchConfig(task="nasbench201", data_dir=sys.argv[2], output_dir=out,
                               search="evolution", children_per_step=2, max_children=12,
                               evolution=config.EvolutionConfig(population_size=4,
                                                                sample_size=2)))
print(json.dumps({"tensorflow_imported": "tensorflow" in sys.modules}))
"""


def test_a_table_search_never_imports_tensorflow_and_tensorflow_reads_its_curves(tmp_path):
  """TensorBoard curves are written without TensorFlow, which evolution on a table never
  needs (its import was most of such a run's start-up); TensorFlow reads them back."""
  out = tmp_path / "nb"
  proc = subprocess.run([sys.executable, "-c", _TF_FREE_SEARCH, str(out), FIXTURE],
                        capture_output=True, text=True, timeout=120, cwd=ROOT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert json.loads(proc.stdout.splitlines()[-1]) == {"tensorflow_imported": False}
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  steps = [json.loads(l) for l in (out / "steps.jsonl").read_text().splitlines()]
  (events,) = (out / "tensorboard").iterdir()
  read = {}
  for event in tf.compat.v1.train.summary_iterator(str(events)):  # checks every CRC
    for value in event.summary.value:
      read[event.step, value.tag] = value.simple_value
  assert {s for s, _ in read} == {s["step"] for s in steps} == set(range(6))
  for s in steps:
    assert read[s["step"], "reward/best_so_far"] == pytest.approx(s["reward/best_so_far"],
                                                                rel=1e-6)


def test_shared_evaluation_refuses_samplers_that_cannot_draw(tmp_path):
  cfg = config_lib.SearchConfig(
      task="ptb", data_dir=str(ROOT / "testdata" / "ptb"), output_dir=str(tmp_path / "s"),
      search="evolution", evaluation="shared", space={"kind": "rnn", "base": 2},
      child=config_lib.ChildTrainingConfig(batch_size=4, num_steps=8, lm_units=8,
                                           lm_layers=1))
  with pytest.raises(ValueError, match="search='evolution' cannot drive evaluation='shared'"):
    search.run(cfg)


def test_a_run_replays_from_its_config_json_and_flags_override(tmp_path):
  out = tmp_path / "run"
  bin_path = str(ROOT / "bin" / "nas_search")
  first = launch.run([bin_path, "--task=nasbench201", "--search=random",
                          f"--output_dir={out}", "--max_children=5", f"--data_dir={FIXTURE}",
                          "--nasbench_dataset=imagenet", "--seed=3"],
                         capture_output=True, text=True, timeout=300)
  assert first.returncode == 0, first.stderr[-2000:]
  saved = json.loads((out / "config.json").read_text())
  dry = launch.run([bin_path, f"--config={out}/config.json",
                        "--max_children=9", "--dry_run"], capture_output=True, text=True,
                       timeout=120)
  replayed = json.loads(dry.stdout)
  assert replayed == dict(saved, max_children=9)  # everything else from the file
  # Replaying with a larger budget resumes the same run in its own directory.
  more = launch.run([bin_path, f"--config={out}/config.json",
                         "--max_children=9"], capture_output=True, text=True, timeout=300)
  assert more.returncode == 0, more.stderr[-2000:]
  recs = ResultsLog(str(out / "results.jsonl")).records
  assert len(recs) == 9 and all(r["metrics"]["dataset"] == "imagenet" for r in recs)


def test_steps_between_throttled_commits_are_recovered_on_resume(tmp_path):
  """runtime.commit_seconds skips writes, never children: a resume replays from the log."""
  whole = tmp_path / "whole"
  search.run(_config(whole, "evolution", max_children=20))
  cut = tmp_path / "cut"
  search.run(_config(cut, "evolution", max_children=10))  # committed at step 5
  table = nasbench201.TableEvaluator(FIXTURE, "cifar100")
  calls = []

  def crash_after_three_steps(specs_):
    calls.append(1)
    if len(calls) > 3:
      raise RuntimeError("simulated crash")
    return table.evaluate(specs_)

  from nas_tf.search import evaluators  # pylint: disable=g-import-not-at-top
  throttled = _config(cut, "evolution", max_children=20,
                      runtime=config_lib.RuntimeConfig(commit_seconds=1e9))
  with pytest.raises(RuntimeError, match="simulated crash"):
    search.run(throttled, evaluator=evaluators.FunctionEvaluator(crash_after_three_steps))
  # The resumed run commits its first step (6), then nothing more before the crash.
  assert json.loads((cut / "state.json").read_text())["step"] == 6
  assert len(ResultsLog(str(cut / "results.jsonl"))) == 16  # but the children are logged
  summary = search.run(_config(cut, "evolution", max_children=20))
  assert summary["num_evaluated"] == 4  # steps 6-7 come from the log, not re-scored
  key = lambda r: (r["step"], r["index"], tuple(r["tokens"]), r["reward"])
  assert ([key(r) for r in ResultsLog(str(cut / "results.jsonl"))]
          == [key(r) for r in ResultsLog(str(whole / "results.jsonl"))])


def _trainable(model):
  return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_nb201_network_has_the_benchmarks_parameter_counts():
  """The benchmark lists 0.07M to 1.53M parameters for its CIFAR-10 networks: the cells
  of all ``none`` and of all ``nor_conv_3x3`` edges. By hand (C = 16, 32, 64; five cells a
  stage; BatchNorm gamma and beta): stem 464; reductions 14,464 and 57,600; head BN and
  Dense 778; each 3x3 edge 9 C^2 + 2 C."""
  from nas_tf.children import nb201  # pylint: disable=g-import-not-at-top
  fixed = 464 + 14_464 + 57_600 + 778
  empty = nb201.build_nb201(specs.NB201CellSpec(("none",) * 6))
  assert _trainable(empty) == fixed == 73_306
  convs = nb201.build_nb201(specs.NB201CellSpec(("nor_conv_3x3",) * 6))
  assert _trainable(convs) == fixed + sum(5 * 6 * (9 * c * c + 2 * c) for c in (16, 32, 64))
  assert _trainable(convs) == 1_531_546
  mixed = nb201.build_nb201(specs.NB201CellSpec.from_cell_string(CELL), num_classes=100)
  assert _trainable(mixed) == (fixed + 90 * 64 + 90 + sum(
      5 * 3 * (9 * c * c + 2 * c) for c in (16, 32, 64)))


def test_nb201_all_none_cell_cuts_the_input_off_and_pooling_ignores_the_padding():
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf.children import nb201  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  a, b = (rng.normal(size=(2, 32, 32, 3)).astype("float32") for _ in range(2))
  empty = nb201.build_nb201(specs.NB201CellSpec(("none",) * 6), cells_per_stage=1)
  np.testing.assert_allclose(empty(a, training=False), empty(b, training=False))
  # A 3x3 mean over in-image pixels only: a constant image stays constant at the border.
  x = keras.Input((5, 5, 1))
  pool = keras.Model(x, nb201._edge(x, "avg_pool_3x3", 1, "p"))  # pylint: disable=protected-access
  np.testing.assert_allclose(pool(np.ones((1, 5, 5, 1), "float32")), 1.0, rtol=1e-6)
  with pytest.raises(TypeError, match="NB201CellSpec"):
    nb201.build_nb201(specs.CNNSpec(layers=(specs.ConvLayer(3, 3, 8),)))


def test_an_evolution_run_saved_before_with_replacement_resumes_only_as_it_ran(tmp_path):
  def cfg(n, **evolution):
    return config_lib.SearchConfig(
        task="nasbench201", data_dir=FIXTURE, output_dir=str(tmp_path / "evo"),
        search="evolution", max_children=n,
        evolution=config_lib.EvolutionConfig(population_size=4, sample_size=2, **evolution))

  search.run(cfg(8, with_replacement=False))
  path = tmp_path / "evo" / "config.json"
  saved = json.loads(path.read_text())
  del saved["evolution"]["with_replacement"]  # as written before the field existed
  path.write_text(json.dumps(saved))
  with pytest.raises(search.ConfigMismatchError,
                     match=r"evolution.with_replacement: False -> True"):
    search.run(cfg(12))  # today's default would change how the run samples
  search.run(cfg(12, with_replacement=False))
  assert len(ResultsLog(str(tmp_path / "evo" / "results.jsonl"))) == 12


@pytest.mark.parametrize("strategy", ["evolution", "rl", "random"])
def test_distinct_makes_every_child_a_new_architecture_for_any_strategy(tmp_path, strategy):
  """config.distinct: a repeated proposal becomes its nearest unseen architecture; a run
  extended after it stopped replaces exactly as the run done in one go.

  Slow: four table searches of 60 children (rl: a controller update per step).
  """
  def cfg(out, n, distinct=True):
    return config_lib.SearchConfig(
        task="nasbench201", data_dir=FIXTURE, output_dir=str(tmp_path / out),
        search=strategy, max_children=n, children_per_step=2, seed=3, distinct=distinct,
        evolution=config_lib.EvolutionConfig(population_size=4, sample_size=2),
        controller=config_lib.ControllerConfig(learning_rate=0.05))

  def keys(out):
    return [json.dumps(r["spec"], sort_keys=True)
            for r in ResultsLog(str(tmp_path / out / "results.jsonl"))]

  search.run(cfg("plain", 60, distinct=False))
  search.run(cfg("distinct", 60))
  if strategy != "random":  # a tiny population / a learning controller repeats itself
    assert len(set(keys("plain"))) < 60
  assert len(set(keys("distinct"))) == 60
  search.run(cfg("cut", 30))
  search.run(cfg("cut", 60))
  assert keys("cut") == keys("distinct")
  saved = json.loads((tmp_path / "distinct" / "config.json").read_text())
  assert saved["distinct"] is True and "distinct" not in json.loads(
      (tmp_path / "plain" / "config.json").read_text())
