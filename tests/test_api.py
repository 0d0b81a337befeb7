"""The Python API (nas_tf.run_search, load_results, SearchResult) beside the binaries."""

import json
import pathlib
import subprocess
import sys

import launch
import pytest

import nas_tf
from nas_tf import api

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_import_nas_tf_stays_light():
  code = "import sys, nas_tf; nas_tf.run_search; print('tensorflow' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=str(ROOT), check=True).stdout
  assert out.strip() == "False"  # the API is reachable without loading TensorFlow


def test_make_config_is_what_the_binary_builds(tmp_path):
  args = ["--task=nasbench201", "--search=evolution", "--max_children=7", "--seed=3",
          f"--output_dir={tmp_path / 'x'}", "--population_size=5", "--dry_run"]
  proc = launch.run([ROOT / "bin" / "nas_search", *args],
                        capture_output=True, text=True, timeout=120, check=True)
  from_binary = json.loads(proc.stdout)
  config = api.make_config("nasbench201", output_dir=str(tmp_path / "x"), search="evolution",
                           max_children=7, seed=3,
                           settings={"evolution.population_size": 5})
  assert config.to_dict() == from_binary


def test_a_latency_target_turns_on_latency_measurement_as_the_flag_does():
  config = api.make_config("cifar10", settings={"objective.target_latency_ms": 5.0})
  assert config.child.measure_latency and config.objective.target_latency_ms == 5.0
  assert not api.make_config("cifar10").child.measure_latency


def test_run_search_then_read_it_back(tmp_path):
  out = str(tmp_path / "evo")
  result = nas_tf.run_search("nasbench201", output_dir=out, search="evolution",
                             max_children=12, settings={"evolution.population_size": 6,
                                                               "evolution.sample_size": 3})
  assert len(result.records) == 12 and result.config["search"] == "evolution"
  top = result.best(3)
  assert [r["reward"] for r in top] == sorted((r["reward"] for r in top), reverse=True)
  assert result.best() == top[0] == max(result.records, key=lambda r: r["reward"])
  again = nas_tf.load_results(out)
  assert again.records == result.records and again.best() == result.best()
  # print(result) is a line, not the records; a table records no parameter count, and
  # the Pareto front says so instead of coming back empty.
  text = repr(result)
  assert len(text) < 400 and "12 children" in text and result.best()["describe"] in text
  with pytest.raises(ValueError, match="records 'num_params'; costs recorded: none"):
    result.pareto_front("num_params")
  with pytest.raises(FileNotFoundError, match="holds no results.jsonl"):
    nas_tf.load_results(str(tmp_path))
  with pytest.raises(TypeError, match="with a SearchConfig"):
    nas_tf.run_search(api.make_config("nasbench201"), max_children=3)
  try:
    import pandas  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    with pytest.raises(ImportError, match="pip install pandas"):
      result.to_dataframe()
  else:
    frame = result.to_dataframe()
    assert len(frame) == 12 and frame["reward"].max() == result.best()["reward"]


def test_run_search_prints_a_line_per_child_and_restores_logging(tmp_path, capfd, monkeypatch):
  """As a plain script sees it (no handler anywhere): one line per child on stderr, once;
  absl's logger as it was afterwards; nothing with verbose=False."""
  import logging  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(logging.getLogger(), "handlers", [])
  absl_logger = logging.getLogger("absl")
  before = (list(absl_logger.handlers), absl_logger.level, absl_logger.propagate)
  nas_tf.run_search("nasbench201", output_dir=str(tmp_path / "a"), max_children=3,
                    search="random")
  err = capfd.readouterr().err
  assert err.count("child 1: reward") == 3 and "INFO:absl" not in err, err[-2000:]
  assert "Sharding callback" not in err
  assert (list(absl_logger.handlers), absl_logger.level, absl_logger.propagate) == before
  nas_tf.run_search("nasbench201", output_dir=str(tmp_path / "b"), max_children=2,
                    search="random", verbose=False)
  assert "child 1: reward" not in capfd.readouterr().err
