"""Editing a :class:`nas_tf.config.SearchConfig` by field name.

Two sources name settings as ``section.field``: ``--set SECTION.FIELD=VALUE`` text from the
command line (:func:`apply_overrides`, typed by the field) and typed values from presets,
flags and replayed ``config.json`` files (:func:`with_fields`). Every edit goes through
``dataclasses.replace``, so the dataclasses' own checks see every value.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from nas_tf.config import SearchConfig


def _parse_value(text: str, current: Any, field_type: str, where: str) -> Any:
  """``text`` as the type of a config field (its current value, else its annotation)."""
  lowered = text.strip().lower()
  if lowered in ("none", "null", "all") and "Optional" in field_type:
    return None
  if isinstance(current, bool) or field_type == "bool":
    if lowered in ("true", "1", "yes"):
      return True
    if lowered in ("false", "0", "no"):
      return False
    raise ValueError(f"{where}: expected true/false, got {text!r}")
  try:
    if isinstance(current, int) or "int" in field_type:
      return int(float(text)) if float(text).is_integer() else int(text)
    if isinstance(current, float) or "float" in field_type:
      return float(text)
  except ValueError:
    raise ValueError(f"{where}: expected a number, got {text!r}") from None
  if isinstance(current, (dict, list, tuple)):
    try:
      return json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"{where}: expected JSON, got {text!r} ({e})") from None
  return text


def _parse_list(text: str) -> Any:
  """A space/task option: JSON if it parses, else a comma list of ints or strings."""
  try:
    return json.loads(text)
  except json.JSONDecodeError:
    items = [t.strip() for t in text.split(",") if t.strip()]
    values = [int(t) if t.lstrip("-").isdigit() else t for t in items]
    return values if "," in text else values[0]


def apply_overrides(config: SearchConfig, overrides: list[str]) -> SearchConfig:
  """A copy of ``config`` with ``section.field=value`` (or ``field=value``) settings applied.

  Reaches every setting of every section by its dataclass field name, e.g.
  ``child.max_params=25e6``, ``child.init_scale=none``, ``controller.temperature=2``,
  ``shared.train_batches=50``, ``max_children=100``; ``all``/``none`` set an optional field
  to None (e.g. ``child.max_train_examples=all``). Values are checked by the dataclasses.
  The search space and task options are dicts: ``space.num_filters=32,64``,
  ``space.filter_heights=[1,3]``, ``task_options.dataset=cifar100``.

  Raises:
    ValueError: an unknown section or field, or a value of the wrong type.
  """
  for item in overrides:
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
      raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. "
                       "child.max_params=25e6")
    path = key.strip().split(".")
    if len(path) > 2:
      raise ValueError(f"--set {item!r}: at most one dot (SECTION.FIELD)")
    if path[0] in ("space", "task_options") and len(path) == 2:
      # Dict sections: the search space (e.g. space.filter_heights=1,3,5) and task options.
      config = dataclasses.replace(config, **{path[0]: dict(getattr(config, path[0]),
                                                            **{path[1]: _parse_list(text)})})
      continue
    holder = getattr(config, path[0], None) if len(path) == 2 else config
    if len(path) == 2 and not dataclasses.is_dataclass(holder):
      sections = [f.name for f in dataclasses.fields(config)
                  if dataclasses.is_dataclass(getattr(config, f.name))]
      raise ValueError(f"--set {item!r}: unknown section {path[0]!r}; sections: {sections}")
    fields = {f.name: f for f in dataclasses.fields(holder)}
    name = path[-1]
    if name not in fields:
      raise ValueError(f"--set {item!r}: {type(holder).__name__} has no field {name!r}; "
                       f"fields: {sorted(fields)}")
    value = _parse_value(text, getattr(holder, name), str(fields[name].type), f"--set {item!r}")
    holder = dataclasses.replace(holder, **{name: value})
    config = holder if len(path) == 1 else dataclasses.replace(config, **{path[0]: holder})
  return config


def with_fields(config: SearchConfig, values: dict[str, Any]) -> SearchConfig:
  """A copy of ``config`` with ``{"section.field" or "field": value}`` set (typed values).

  The one way defaults (``presets``), flags and a replayed ``config.json`` are laid over
  each other: every source names settings by their config field.
  """
  for key, value in values.items():
    section, _, name = key.rpartition(".")
    if section:
      holder = getattr(config, section, None)
      if not dataclasses.is_dataclass(holder):
        raise ValueError(f"{key!r}: unknown config section {section!r}")
      config = dataclasses.replace(config, **{section: dataclasses.replace(holder,
                                                                          **{name: value})})
    else:
      config = dataclasses.replace(config, **{name: value})
  return config
