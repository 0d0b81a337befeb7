"""Tasks: what is searched and how a child is judged, one object per task.

A :class:`~nas_tf.tasks.base.Task` holds everything task-specific: its search space,
data check and loading, how a child is built and trained (in the search and by
``nas_train``), the validation metric and its direction, the reward, what a trained
export holds and what to run after a search. No module outside this package looks at a
task's name. A new dataset is a new :class:`Task`, found by :func:`resolve` from what
``--task`` names:

* a registered name (built in, :func:`register` from Python, or offered by an installed
  package through the ``nas_tf.tasks`` entry-point group: ``NAME = package.module:ATTR``);
* ``path/to/file.py:ATTR`` or ``package.module:ATTR``: ``ATTR`` is a :class:`Task` or a
  zero-argument callable returning one (``examples/custom_task.py:TASK``).

The reference is saved as ``config.task`` so that resume, ``--config`` replay,
``nas_train``, ``nas_export`` and worker processes load the same task.

Built in: ``ptb`` (recurrent cells, paper §4.2), ``cifar10`` (conv networks, §4.1) and
``nasbench201`` (the NAS-Bench-201 table, for comparing search strategies in seconds).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys

from nas_tf.tasks.base import Task, TrainedChildTask
from nas_tf.tasks import builtin as _builtin
from nas_tf.tasks import nasbench201 as _nasbench201

_REGISTRY: dict[str, Task] = {}
_LOADED: dict[str, Task] = {}  # reference -> task loaded from a file, module or entry point


def check_task(task: Task, where: str) -> Task:
  """Refuses a task without the class attributes every search reads, with one line."""
  missing = [a for a in ("name", "space_kind", "metric") if not getattr(task, a, "")]
  if missing:
    raise ValueError(f"{where}: {type(task).__name__} does not set {', '.join(missing)} "
                     "(class attributes: name, the task's key; space_kind, the kind of "
                     "spec it searches, e.g. 'rnn'; metric, the metrics key it ranks on, "
                     "e.g. 'val_accuracy')")
  return task


def register(task: Task, replace: bool = False) -> Task:
  """Makes ``task`` available by ``task.name`` (``--task=NAME``, ``SearchConfig.task``)."""
  if not isinstance(task, Task):
    raise TypeError(f"register() takes a nas_tf.tasks.Task, got {task!r}")
  check_task(task, "register()")
  if task.name in _REGISTRY and not replace and _REGISTRY[task.name] is not task:
    raise ValueError(f"a task named {task.name!r} is already registered; pick another name "
                     "or pass replace=True")
  _REGISTRY[task.name] = task
  if not task.ref:
    task.ref = task.name
  return task


def get(name: str) -> Task:
  """The registered task called ``name``; the error lists the known ones (use
  :func:`resolve` for any task reference)."""
  try:
    return _REGISTRY[name]
  except KeyError:
    raise ValueError(f"unknown task {name!r}; registered tasks: {sorted(_REGISTRY)} (register "
                     "your own with nas_tf.tasks.register)") from None


ENTRY_POINT_GROUP = "nas_tf.tasks"


def _attr_of(module, attr: str, ref: str):
  try:
    value = getattr(module, attr)
  except AttributeError:
    raise ValueError(f"--task {ref!r}: {module.__name__} has no attribute {attr!r}") from None
  if not isinstance(value, Task) and callable(value):
    value = value()
  if not isinstance(value, Task):
    raise TypeError(f"--task {ref!r} names {value!r}, not a nas_tf.tasks.Task (nor a "
                    "zero-argument callable returning one)")
  return check_task(value, f"--task {ref!r}")


@functools.lru_cache(maxsize=None)
def _load_file(path: str):
  """Imports a Python file once per process, under a name of its own."""
  name = "nas_tf_task_" + "".join(c if c.isalnum() else "_" for c in path)
  spec = importlib.util.spec_from_file_location(name, path)
  if spec is None or spec.loader is None:
    raise ValueError(f"--task: cannot import {path!r} as Python")
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module  # dataclasses and pickling look classes up by module
  spec.loader.exec_module(module)
  return module


def _from_entry_points(name: str):
  for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
    if entry.name == name:
      return entry
  return None


def resolve(ref) -> Task:
  """The task ``ref`` names (see the module docstring); ``task.ref`` is set to ``ref``.

  A task loaded from a file, a module or an entry point is loaded once per process.

  Raises:
    ValueError: an unknown name (the error lists the known ones), or a reference that
      does not import or does not name a Task.
  """
  if isinstance(ref, Task):
    return ref
  if not isinstance(ref, str) or not ref:
    raise ValueError(f"a task reference is a non-empty string, got {ref!r}")
  if ref in _REGISTRY:
    return _REGISTRY[ref]
  if ref in _LOADED:
    return _LOADED[ref]
  for task in _REGISTRY.values():
    if task.ref == ref:  # registered from Python under a reference of its own
      return task
  if ":" not in ref:
    entry = _from_entry_points(ref)
    if entry is None:
      return get(ref)  # the error lists the known tasks
    if not entry.attr:
      raise ValueError(f"entry point {ref!r} of group {ENTRY_POINT_GROUP!r} names a module "
                       f"({entry.value!r}); it must name its task: 'package.module:ATTR'")
    task = _attr_of(importlib.import_module(entry.module), entry.attr, ref)
  else:
    target, _, attr = ref.rpartition(":")
    if target.endswith(".py") or os.sep in target:
      if not os.path.isfile(target):
        raise ValueError(f"--task {ref!r}: no file {target!r}")
      # Saved (config.json, workers) with the file's absolute path, so that a resume,
      # nas_train or nas_export run from another directory finds the same file.
      ref = f"{os.path.abspath(target)}:{attr}"
      module = _load_file(os.path.abspath(target))
    else:
      try:
        module = importlib.import_module(target)
      except ImportError as e:
        raise ValueError(f"--task {ref!r}: cannot import {target!r}: {e}") from e
    task = _attr_of(module, attr, ref)
  if task.ref in ("", task.name) and not any(task is t for t in _BUILTIN):
    # Found by this reference: worker processes must load it the same way (a name set by
    # a register() call in the file would mean nothing to them).
    task.ref = ref
  _LOADED[ref] = task
  return task


def for_spec(spec) -> Task:
  """The registered task that searches ``spec``'s kind, or lists it as a baseline cell.

  For ``nas_train --spec=FILE`` without ``--task``. Raises ValueError (naming the
  candidates) unless exactly one registered task fits.
  """
  if isinstance(spec, str):
    fits = [t for t in _REGISTRY.values() if spec in getattr(t, "baseline_cells", ())]
    what = f"baseline cell {spec!r}"
  else:
    fits = [t for t in _REGISTRY.values() if t.space_kind == spec.kind]
    what = f"a {spec.kind!r} spec"
  if len(fits) != 1:
    raise ValueError(f"{what} belongs to {'no' if not fits else 'more than one'} registered "
                     f"task ({sorted(t.name for t in fits)}); name it with --task")
  return fits[0]


def for_evaluation(task: Task, evaluation: str) -> Task:
  """The task as a search with ``evaluation`` judges it: ``task`` itself, or for
  'zero_cost' the same task with children scored at initialisation (its metric and
  reward become the score: :class:`nas_tf.tasks.at_init.ZeroCostTask`)."""
  if evaluation != "zero_cost" or getattr(task, "metric", None) == "zero_cost":
    return task
  from nas_tf.tasks.at_init import ZeroCostTask  # pylint: disable=g-import-not-at-top
  return ZeroCostTask(task)


def names() -> list[str]:
  return sorted(_REGISTRY)


@functools.lru_cache(maxsize=None)
def _preset_config(task: Task, tiny: bool):
  """The preset over the config's own defaults: what a run without flags gets. Built once
  per task (the binary asks for every flag's field at start-up, workers included)."""
  # pylint: disable-next=g-import-not-at-top
  from nas_tf import config as config_lib, config_edits
  return config_edits.with_fields(config_lib.SearchConfig(task.name, "-", "-"),
                                  task.search_defaults(tiny=tiny))


def final_defaults_help(field: str) -> str:
  """`` Defaults: cifar10 100 (tiny 2); ptb 13 (tiny 2).``: ``nas_train``'s default of a
  FinalTrainingConfig field per task whose final presets set it, for ``--help``."""
  parts = []
  for name in names():
    presets = getattr(_REGISTRY[name], "final_presets", {})
    real, tiny = (presets.get(k, {}).get(field) for k in ("real", "tiny"))
    if real is None and tiny is None:
      continue
    parts.append(f"{name} {real}" + (f" (tiny {tiny})" if tiny != real else ""))
  return f" Defaults: {'; '.join(parts)}." if parts else ""


def defaults_help(field: str) -> str:
  """`` Defaults: ptb 1 (tiny 1); cifar10 5 (tiny 2).``: a setting's preset per task, for
  ``--help`` (its flag's own default is None: the task decides). Only tasks whose
  presets set the field are listed (a table lookup has no child epochs); "(tiny ...)"
  is the value on the bundled testdata, when it differs."""
  def effective(task, tiny):
    config = _preset_config(task, tiny)
    for part in field.split("."):
      config = getattr(config, part)
    if config is None:  # a count of examples: the whole split; anything else: not set
      return "all" if field.endswith("_examples") else "unset"
    return config

  parts = []
  for name in names():
    task = _REGISTRY[name]
    if not any(field in task.search_defaults(tiny) for tiny in (False, True)):
      continue
    real, tiny = (effective(task, t) for t in (False, True))
    parts.append(f"{name} {real}" + (f" (tiny {tiny})" if tiny != real else ""))
  return f" Defaults: {'; '.join(parts)}." if parts else ""


_BUILTIN = (_builtin.PTB, _builtin.CIFAR10, _nasbench201.NASBENCH201)
for _task in _BUILTIN:
  register(_task)

__all__ = ["Task", "TrainedChildTask", "register", "get", "resolve", "for_spec", "names",
           "defaults_help", "final_defaults_help", "ENTRY_POINT_GROUP"]
