"""Python entry points beside the binaries: run a search, read its results, export.

    import nas_tf
    result = nas_tf.run_search("nasbench201", data_dir="nb201.csv", search="evolution",
                               max_children=200, output_dir="runs/nb-evo",
                               settings={"evolution.population_size": 20})
    print(result.best()["describe"], result.best(5))
    frame = result.to_dataframe()            # with pandas installed
    again = nas_tf.load_results("runs/nb-evo")
    ptb = nas_tf.load_results("runs/ptb-rl-seed0")  # a run of a trained task
    ptb.export("exported/cell", units=200)   # its best cell (nas_export)

The function is ``run_search`` because ``nas_tf.search`` is the package that holds the
loop and its seams. A search built here is the search ``nas_search`` runs with the same
settings: the task's presets, then the given fields, saved as ``config.json``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging as std_logging
import os
import pathlib
import sys
from typing import Any, Optional, Union

from nas_tf import cli
from nas_tf import config as config_lib
from nas_tf import config_edits
from nas_tf import results
from nas_tf import search_space as search_space_lib
from nas_tf import tasks

_TESTDATA = pathlib.Path(__file__).resolve().parent.parent / "testdata"
# Record keys that make one row of a results table.
_COLUMNS = ("step", "index", "search", "reward", "status", "val_metric", "num_params",
            "latency_ms", "train_seconds", "cached", "depth", "describe")


@dataclasses.dataclass(frozen=True)
class SearchResult:
  """A search's output directory, read: its configuration and one record per child.

  Attributes:
    output_dir: The run's directory.
    config: Its ``config.json``.
    records: The ``results.jsonl`` records, in the order the children were logged.
  """

  output_dir: str
  config: dict
  records: tuple

  def best(self, k: int = 1):
    """The best distinct architecture's record (``k`` > 1: a list of the top ``k``)."""
    ranked = results.rank(self.records)
    if k == 1:
      return ranked[0] if ranked else None
    return ranked[:k]

  def __repr__(self) -> str:
    # The records can be thousands: a summary, not the data (best(), records for that).
    counts = collections.Counter(r.get("status") for r in self.records)
    best = self.best()
    return (f"SearchResult({self.output_dir!r}: task {self.config.get('task')!r}, search "
            f"{self.config.get('search')!r}, {len(self.records)} children "
            f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), best reward "
            f"{best['reward']:.4g}: {best['describe']})" if best else
            f"SearchResult({self.output_dir!r}: {len(self.records)} children, none ok)")

  def pareto_front(self, cost: str = "num_params") -> list[dict]:
    """Trained architectures no other beats on both quality and ``cost``, cheapest first.

    Raises:
      ValueError: no trained record has ``cost`` (e.g. a table lookup has no parameter
        count; latency only when measured), rather than an empty front.
    """
    if not any(r.get(cost) is not None for r in self.records if r.get("status") == "ok"):
      raise ValueError(f"no trained child of {self.output_dir} records {cost!r}; costs "
                       "recorded: " + (", ".join(sorted(
                           c for c in results.COSTS
                           if any(r.get(c) is not None for r in self.records))) or "none"))
    return results.pareto_front(self.records, cost)

  def to_dataframe(self):
    """One row per child (pandas, installed separately): the columns of summary.txt."""
    try:
      import pandas as pd  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("SearchResult.to_dataframe needs pandas: pip install pandas") from e
    return pd.DataFrame([{k: r.get(k) for k in _COLUMNS} for r in self.records],
                        columns=list(_COLUMNS))

  def export(self, export_dir: str, rank: int = 1, **kwargs) -> dict:
    """Exports the ``rank``-th best architecture, untrained (see ``nas_export``).

    ``kwargs`` go to :func:`nas_tf.export.export_from_results` (``units``, ``seed``...).
    Retrain it first (``nas_train``) for trained weights.
    """
    from nas_tf import export  # pylint: disable=g-import-not-at-top  (TensorFlow)
    return export.export_from_results(self.output_dir, export_dir, rank=rank, **kwargs)

  def report(self, path: Optional[str] = None) -> str:
    """Writes the HTML report (``nas_report``); returns its path."""
    from nas_tf import report  # pylint: disable=g-import-not-at-top
    return report.write_report([self.output_dir], path or os.path.join(
        self.output_dir, report.REPORT_FILE))


def load_results(output_dir: str) -> SearchResult:
  """Reads a search output directory (finished or not) without changing it."""
  path = os.path.join(output_dir, "results.jsonl")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{output_dir!r} holds no results.jsonl: not a search "
                            "output directory")
  try:
    with open(os.path.join(output_dir, "config.json")) as f:
      config = json.load(f)
  except (OSError, ValueError):
    config = {}
  return SearchResult(output_dir, config, tuple(results.read_records(path)))


def default_output_dir(task: str, search: str, seed: int, evaluation: str = "independent",
                       tiny: bool = False) -> str:
  """runs/TASK-SEARCH-seedN[-EVALUATION][-tiny]: runs of different settings never collide
  (no suffix for the paper's independent training)."""
  return (f"runs/{task}-{search}-seed{seed}"
          + ("" if evaluation == "independent" else f"-{evaluation}")
          + ("-tiny" if tiny else ""))


def make_config(task: str, data_dir: Optional[str] = None, output_dir: Optional[str] = None,
                settings: Optional[dict[str, Any]] = None,
                **fields) -> config_lib.SearchConfig:
  """The :class:`SearchConfig` that ``nas_search`` would build from the same settings.

  Args:
    task: A task reference (:func:`nas_tf.tasks.resolve`): a registered name
      (``nas_tf.tasks.names()``), ``FILE.py:ATTR`` or ``package.module:ATTR``.
    data_dir: The task's data; None: the bundled testdata of a source checkout (a tiny
      search, with the task's tiny presets).
    output_dir: Where the run goes; default ``runs/TASK-SEARCH-seedN[-tiny]``.
    settings: ``{"section.field": value}`` for nested settings, e.g.
      ``{"child.lm_units": 32, "evolution.population_size": 20}``.
    **fields: Top-level ``SearchConfig`` fields (``search``, ``max_children``, ``seed``...).

  A latency target or cap (``objective.target_latency_ms``, ``child.max_latency_ms``)
  turns on ``child.measure_latency``, which both need.
  """
  task_obj = tasks.resolve(task)
  tiny = data_dir is None
  if tiny:
    data_dir = str(_TESTDATA / task_obj.testdata) if task_obj.testdata else None
    if not data_dir or not os.path.exists(data_dir):
      raise FileNotFoundError(f"give data_dir: task {task!r} has no bundled testdata here "
                              "(it comes with a source checkout)")
  config = config_edits.with_fields(
      config_lib.SearchConfig(task=task_obj.ref, data_dir=data_dir, output_dir="-"),
      {**task_obj.search_defaults(tiny=tiny),
       "space": (search_space_lib.paper_space(task_obj.space_kind) if task_obj.paper_space
                 else {})})
  config = with_given(config, {**fields, **(settings or {})})
  return config_edits.with_fields(config, {"output_dir": output_dir or default_output_dir(
      task_obj.name, config.search, config.seed, config.evaluation, tiny)})


def with_given(config: config_lib.SearchConfig,
               values: dict[str, Any]) -> config_lib.SearchConfig:
  """``config`` with ``values`` (``{"section.field": value}``) laid over it, and
  ``child.measure_latency`` on where a latency target or cap is given (both need it)."""
  if {"objective.target_latency_ms", "child.max_latency_ms"} & set(values):
    values = {"child.measure_latency": True, **values}  # first: the others need it
  return config_edits.with_fields(config, values)


@contextlib.contextmanager
def _progress(verbose: bool):
  """The search's progress lines (one per child, as the binaries print them) on stderr.

  Outside an absl app nobody has given absl's logger a handler, so its INFO lines go
  nowhere; one is attached for the call and taken off after it. Left alone when the
  user already handles absl's logging (a handler of their own, or an absl app's).
  """
  logger = std_logging.getLogger("absl")
  if not verbose or logger.handlers or std_logging.getLogger().handlers:
    yield
    return
  handler = std_logging.StreamHandler(sys.stderr)
  handler.setFormatter(std_logging.Formatter("%(message)s"))
  handler.addFilter(lambda record: not cli.is_noise(record.getMessage()))
  # Not passed on to the root logger: TensorFlow may give it a handler meanwhile, and
  # every line would then be printed twice.
  level, propagate = logger.level, logger.propagate
  logger.addHandler(handler)
  logger.setLevel(std_logging.INFO)
  logger.propagate = False
  try:
    yield
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)
    logger.propagate = propagate


def run_search(config: Union[config_lib.SearchConfig, str], data_dir: Optional[str] = None,
               output_dir: Optional[str] = None, settings: Optional[dict[str, Any]] = None,
               verbose: bool = True, **fields) -> SearchResult:
  """Runs (or resumes) a search and returns its results.

  Args:
    config: A :class:`SearchConfig`, or a task name: then the other arguments build one
      with :func:`make_config`.
    data_dir, output_dir, settings, **fields: See :func:`make_config` (with a task name).
    verbose: Print a line per child and the search's other progress lines to stderr
      (as ``nas_search`` does), unless absl's logging already has a handler.

  Returns:
    The :class:`SearchResult` of ``config.output_dir``.
  """
  if isinstance(config, str):
    config = make_config(config, data_dir, output_dir, settings, **fields)
  elif data_dir or output_dir or settings or fields:
    raise TypeError("with a SearchConfig, change it with nas_tf.config_edits.with_fields "
                    "rather than keyword arguments")
  from nas_tf import search  # pylint: disable=g-import-not-at-top  (TensorFlow)
  with _progress(verbose):
    search.run(config)
  return load_results(config.output_dir)


__all__ = ["SearchResult", "run_search", "load_results", "make_config"]
