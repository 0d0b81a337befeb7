"""Tasks: what is searched and how a child is judged, one object per task.

A :class:`~nas_tf.tasks.base.Task` holds everything that used to be branched on the task
name: its search space, data check, how children are evaluated, the validation metric and
its direction, and the reward. The search loop asks the registry for the task by name
and never looks at the name again, so a new dataset is a new :class:`Task` plus one
:func:`register` call (``examples/custom_task.py`` registers one from Python).

Built in: ``ptb`` (recurrent cells, paper §4.2), ``cifar10`` (conv networks, §4.1) and
``nasbench201`` (the NAS-Bench-201 table, for comparing search strategies in seconds).
"""

from __future__ import annotations

import functools

from nas_tf.tasks.base import Task, TrainedChildTask
from nas_tf.tasks import builtin as _builtin
from nas_tf.tasks import nasbench201 as _nasbench201

_REGISTRY: dict[str, Task] = {}


def register(task: Task, replace: bool = False) -> Task:
  """Makes ``task`` available by ``task.name`` (``--task=NAME``, ``SearchConfig.task``)."""
  if not isinstance(task, Task):
    raise TypeError(f"register() takes a nas_tf.tasks.Task, got {task!r}")
  if task.name in _REGISTRY and not replace and _REGISTRY[task.name] is not task:
    raise ValueError(f"a task named {task.name!r} is already registered; pick another name "
                     "or pass replace=True")
  _REGISTRY[task.name] = task
  return task


def get(name: str) -> Task:
  """The registered task called ``name``; the error lists the known ones."""
  try:
    return _REGISTRY[name]
  except KeyError:
    raise ValueError(f"unknown task {name!r}; registered tasks: {sorted(_REGISTRY)} (register "
                     "your own with nas_tf.tasks.register)") from None


def for_evaluation(task: Task, evaluation: str) -> Task:
  """The task as a search with ``evaluation`` judges it: ``task`` itself, or for
  'zero_cost' the same task with children scored at initialisation (its metric and
  reward become the score: :class:`nas_tf.tasks.zero_cost.ZeroCostTask`)."""
  if evaluation != "zero_cost" or getattr(task, "metric", None) == "zero_cost":
    return task
  from nas_tf.tasks.zero_cost import ZeroCostTask  # pylint: disable=g-import-not-at-top
  return ZeroCostTask(task)


def names() -> list[str]:
  return sorted(_REGISTRY)


@functools.lru_cache(maxsize=None)
def _preset_config(task: Task, tiny: bool):
  """The preset over the config's own defaults: what a run without flags gets. Built once
  per task (the binary asks for every flag's field at start-up, workers included)."""
  from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  return config_lib.with_fields(config_lib.SearchConfig(task.name, "-", "-"),
                                task.search_defaults(tiny=tiny))


def defaults_help(field: str) -> str:
  """`` Defaults: ptb 1 (tiny 1); cifar10 5 (tiny 2).``: a setting's preset per task, for
  ``--help`` (its flag's own default is None: the task decides)."""
  def effective(task, tiny):
    config = _preset_config(task, tiny)
    for part in field.split("."):
      config = getattr(config, part)
    return config

  parts = []
  for name in names():
    real, tiny = (effective(_REGISTRY[name], t) for t in (False, True))
    if real is None and tiny is None:
      continue  # off unless given (e.g. a resource target)
    parts.append(f"{name} {real}" + (f" (tiny {tiny})" if tiny != real else ""))
  return f" Defaults: {'; '.join(parts)}." if parts else ""


for _task in (_builtin.PTB, _builtin.CIFAR10, _nasbench201.NASBENCH201):
  register(_task)

__all__ = ["Task", "TrainedChildTask", "register", "get", "names", "defaults_help"]
