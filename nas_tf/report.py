"""A search (or several, side by side) as one self-contained HTML page: ``nas_report``.

The page is what a user looks at instead of JSON lines: how the reward improved with the
number of children (the paper's Figure 6 is this curve for RL and random search), how
rewards spread within each controller step, whether the controller's entropy fell, the
depth schedule (§4.1), the trade-off between quality and cost (parameters, latency), and
the best architectures with their pictures. Everything is embedded (PNG as data URIs, CSS
inline): no server, no internet, no JavaScript. Plots need matplotlib.

Inputs are a run's own files: ``config.json``, ``results.jsonl`` (the source of truth),
``steps.jsonl`` (per-step controller scalars; absent in runs older than it, and without
entropy for samplers that have none) and ``state.json`` (wall time).
"""

from __future__ import annotations

import base64
import collections
import html
import io
import json
import os
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

from nas_tf import results
from nas_tf import specs as specs_lib
from nas_tf import tasks
from nas_tf.export import pictures as viz

REPORT_FILE = "report.html"
_STEPS_FILE = "steps.jsonl"  # written by nas_tf.search.outputs
_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def load_run(directory: str, task=None) -> dict:
  """A run's config, records, per-step scalars and wall time; raises on a non-run dir.

  ``task``: the run's :class:`nas_tf.tasks.Task` where its ``config.task`` cannot be
  loaded here (a ``KerasSearch``'s build function lives in the user's program); without
  either, the records' ``scored_on`` (metric name and direction, which ``KerasSearch``
  trials carry) labels the metric, else 'val', higher-is-better.
  """
  path = os.path.join(directory, "results.jsonl")
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{directory!r} holds no results.jsonl: not a nas_search "
                            "--output_dir")
  config = _read_json(os.path.join(directory, "config.json")) or {}
  steps: dict[int, dict] = {}
  steps_path = os.path.join(directory, _STEPS_FILE)
  if os.path.isfile(steps_path):
    with open(steps_path) as f:
      for line in f:
        try:
          row = json.loads(line)
        except ValueError:
          continue  # a half-written last line
        steps[int(row["step"])] = row  # a step redone after a resume: the last one wins
  state = _read_json(os.path.join(directory, "state.json")) or {}
  try:
    task = tasks.for_evaluation(task or tasks.resolve(config.get("task")),
                                config.get("evaluation", ""))
  except (ValueError, TypeError, ImportError, OSError):
    pass  # a task this process cannot load: its records may say what they were scored on
  records = results.read_records(path)
  scored = next((r["metrics"]["scored_on"] for r in records
                 if (r.get("metrics") or {}).get("scored_on")), {})
  return {"dir": directory, "name": os.path.basename(os.path.normpath(directory)),
          "config": config, "records": records,
          "steps": [steps[k] for k in sorted(steps)], "seconds": state.get("seconds", {}),
          "metric": task.metric_label if task else scored.get("metric", "val"),
          "higher_is_better": (task.higher_is_better if task
                               else scored.get("higher_is_better", True))}


def _read_json(path: str) -> Optional[dict]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def best_so_far(records: Sequence[dict]) -> np.ndarray:
  """Best reward among the first n children, for n = 1..len (in step, index order)."""
  ordered = sorted(records, key=lambda r: (r["step"], r["index"]))
  return np.maximum.accumulate([r["reward"] for r in ordered]) if ordered else np.array([])


def _plt():
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise RuntimeError("nas_report draws its plots with matplotlib: pip install "
                       "matplotlib") from e
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _png(fig) -> str:
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
  _plt().close(fig)
  return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
  return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _curves(runs) -> str:
  plt = _plt()
  fig, ax = plt.subplots(figsize=(7.5, 4))
  for k, run in enumerate(runs):
    curve = best_so_far(run["records"])
    ax.plot(np.arange(1, len(curve) + 1), curve, color=_COLORS[k % len(_COLORS)],
            label=f"{run['name']} ({run['config'].get('search', '?')})")
  ax.set_xlabel("children sampled")
  ax.set_ylabel("best reward so far")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _img(_png(fig), "best reward so far against children sampled, every run")


def _per_step(run) -> str:
  """Per-child rewards and their spread per step, the step mean, entropy and depth."""
  plt = _plt()
  by_step = collections.defaultdict(list)
  for r in run["records"]:
    by_step[r["step"]].append(r["reward"])
  steps = sorted(by_step)
  panels = 1 + bool(any(s.get("controller/entropy") is not None for s in run["steps"])) + bool(
      any(r.get("depth") is not None for r in run["records"]))
  fig, axes = plt.subplots(panels, 1, figsize=(7.5, 2.6 * panels), sharex=True, squeeze=False)
  ax = axes[0][0]
  one_per_step = max(len(v) for v in by_step.values()) == 1  # no spread to show
  if one_per_step:
    ys = [by_step[s][0] for s in steps]
    window = max(5, len(ys) // 30)
    ax.scatter(steps, ys, s=6, color="#555", alpha=0.5, label="child")
    if len(ys) >= window:
      ax.plot(steps[window - 1:], np.convolve(ys, np.ones(window) / window, "valid"),
              color="#d62728", lw=1.2, label=f"mean of the last {window}")
    ax.legend(fontsize=8, loc="lower right")
  elif len(steps) <= 60:
    ax.boxplot([by_step[s] for s in steps], positions=steps, widths=0.6, showfliers=False)
  else:  # too many boxes to read: percentile bands instead
    q = np.array([np.percentile(by_step[s], (10, 50, 90)) for s in steps])
    ax.fill_between(steps, q[:, 0], q[:, 2], alpha=0.25, label="10-90th percentile")
    ax.plot(steps, q[:, 1], lw=1, label="median")
  if not one_per_step:
    for s in steps:
      ax.scatter([s] * len(by_step[s]), by_step[s], s=6, color="#555", alpha=0.5)
    ax.plot(steps, [np.mean(by_step[s]) for s in steps], color="#d62728", lw=1.2,
            label="step mean")
    ax.legend(fontsize=8, loc="lower right")
  ax.set_ylabel("reward")
  ax.grid(alpha=0.3)
  row = 1
  if any(s.get("controller/entropy") is not None for s in run["steps"]):
    ax = axes[row][0]
    xs = [s["step"] for s in run["steps"] if s.get("controller/entropy") is not None]
    ax.plot(xs, [s["controller/entropy"] for s in run["steps"]
                 if s.get("controller/entropy") is not None], color="#2ca02c")
    ax.ticklabel_format(axis="y", useOffset=False)  # absolute nats, not an offset
    ax.set_ylabel("controller entropy\n(nats / architecture)")
    ax.grid(alpha=0.3)
    row += 1
  if any(r.get("depth") is not None for r in run["records"]):
    ax = axes[row][0]
    depth = {r["step"]: r["depth"] for r in run["records"]}
    ax.step(steps, [depth[s] for s in steps], where="post", color="#9467bd")
    ax.set_ylabel("layers (depth schedule)")
    ax.grid(alpha=0.3)
  axes[-1][0].set_xlabel("controller step")
  if len(steps) > 20:
    for a in axes[:, 0]:
      a.xaxis.set_major_locator(_plt().MaxNLocator(12, integer=True))
  return _img(_png(fig), f"rewards per controller step of {run['name']}")


def _rungs(run) -> Optional[str]:
  """Each child's validation value at every rung it reached (a pruned search); the
  children a pruner stopped end in a red cross."""
  children = [r for r in run["records"] if (r.get("metrics") or {}).get("rungs")]
  if not children:
    return None
  plt = _plt()
  fig, ax = plt.subplots(figsize=(7.5, 4))
  for r in children:
    points = [(x, v) for x, v in r["metrics"]["rungs"] if v is not None]
    if r.get("pruned_at") is None and r.get("val_metric") is not None:
      points.append((1.0, r["val_metric"]))
    if not points:
      continue
    xs, ys = zip(*points)
    stopped = r.get("pruned_at") is not None
    ax.plot(xs, ys, lw=0.7, alpha=0.35 if stopped else 0.7,
            color="#999" if stopped else "#1f77b4")
    if stopped:
      ax.scatter(xs[-1:], ys[-1:], marker="x", s=18, color="#d62728", zorder=3)
  ax.scatter([], [], marker="x", color="#d62728", label="stopped by the pruner")
  ax.plot([], [], color="#1f77b4", label="trained to the end")
  ax.set_xscale("log")
  if not run["higher_is_better"]:
    ax.set_yscale("log")
  ax.set_xlabel("fraction of the child's training budget")
  ax.set_ylabel(f"validation {run['metric']}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _img(_png(fig), f"validation values per rung of {run['name']}")


def _pareto(runs, cost_key: str, label: str) -> Optional[str]:
  points = [(run, r) for run in runs for r in run["records"]
            if r.get("status") == "ok" and r.get(cost_key) is not None
            and r.get("val_metric") is not None]
  if len({r[cost_key] for _, r in points}) < 2:
    return None
  plt = _plt()
  fig, ax = plt.subplots(figsize=(7.5, 4))
  for k, run in enumerate(runs):
    mine = [r for rr, r in points if rr is run]
    if not mine:
      continue
    color = _COLORS[k % len(_COLORS)]
    ax.scatter([r[cost_key] for r in mine], [r["val_metric"] for r in mine], s=10,
               alpha=0.45, color=color, label=run["name"])
    front = results.pareto_front(mine, cost_key)
    xs = [r[cost_key] for r in front] + [max(r[cost_key] for r in mine)]
    ys = [r["val_metric"] for r in front]
    ax.step(xs, ys + ys[-1:], where="post", color=color, lw=1.5)
    ax.scatter(xs[:-1], ys, s=28, color=color, edgecolors="black", linewidths=0.6, zorder=3)
  ax.set_xscale("log")
  if not runs[0]["higher_is_better"]:
    ax.set_yscale("log")
  ax.set_xlabel(label)
  ax.set_ylabel(f"validation {runs[0]['metric']}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _img(_png(fig), f"validation metric against {label}: the Pareto front")


def _picture(spec_dict: dict, anchor: str) -> str:
  """The architecture's picture; a click shows it full-window (CSS ``:target``, no
  script: the page stays one static file), Back or the close link returns."""
  with tempfile.TemporaryDirectory() as tmp:
    try:
      # write_picture builds the graph before writing anything, so a spec kind without
      # a picture (e.g. a task's own) fails here, once.
      out = viz.write_picture(specs_lib.from_dict(spec_dict), tmp, basename="arch")
    except (TypeError, ValueError):
      return ""
    if not out.get("png"):
      return ""
    with open(out["png"], "rb") as f:
      data = base64.b64encode(f.read()).decode("ascii")
  return (f'<a href="#{anchor}" title="click to enlarge"><img class="arch" id="{anchor}" '
          f'alt="architecture" src="data:image/png;base64,{data}"></a>')


def _fmt(x, digits=4) -> str:
  return "–" if x is None else (f"{x:,}" if isinstance(x, int) else f"{x:.{digits}g}")


def _overview(runs) -> str:
  head = ("<tr><th>run</th><th>task</th><th>search</th><th>children</th><th>distinct</th>"
          "<th>status counts</th><th>best reward</th><th>its validation metric</th>"
          "<th>wall time</th></tr>")
  rows = []
  for run in runs:
    ranked = results.rank(run["records"])
    best = ranked[0] if ranked else {}
    counts = collections.Counter(r["status"] for r in run["records"])
    seconds = run["seconds"].get("total")
    rows.append(
        f"<tr><td>{html.escape(run['name'])}</td><td>{html.escape(str(run['config'].get('task')))}"
        f"</td><td>{html.escape(str(run['config'].get('search')))}</td>"
        f"<td>{len(run['records'])}</td><td>{len(ranked)}</td>"
        f"<td>{html.escape(', '.join(f'{k} {v}' for k, v in sorted(counts.items())))}</td>"
        f"<td>{_fmt(best.get('reward'))}</td><td>{run['metric']} {_fmt(best.get('val_metric'))}"
        f"</td><td>{'–' if seconds is None else time.strftime('%H:%M:%S', time.gmtime(seconds))}"
        "</td></tr>")
  return f"<table>{head}{''.join(rows)}</table>"


def _top(run, k: int, pictures: bool, number: int = 0) -> str:
  rows = []
  for rank, r in enumerate(results.rank(run["records"])[:k], start=1):
    picture = (_picture(r["spec"], f"arch-{number}-{rank}")
               if pictures and r.get("status") == "ok" else "")
    rows.append(
        f"<tr><td>{rank}</td><td>{_fmt(r['reward'])}</td><td>{_fmt(r.get('val_metric'))}</td>"
        f"<td>{_fmt(r.get('num_params'))}</td><td>{_fmt(r.get('latency_ms'), 3)}</td>"
        f"<td>{r['step'] + 1}/{r['index'] + 1}</td><td><code>{html.escape(r['describe'])}"
        f"</code>{picture}</td></tr>")
  return ("<table class='top'><tr><th>#</th><th>reward</th><th>" + html.escape(run["metric"]) +
          "</th><th>params</th><th>latency ms</th><th>step/child</th><th>architecture</th>"
          "</tr>" + "".join(rows) + "</table>")


_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } img { max-width: 100%; } table.top { width: 100%; }
img.arch { display: block; width: 100%; max-width: 520px; margin-top: 4px; cursor: zoom-in; }
img.arch:target { position: fixed; top: 0; left: 0; width: 100vw; height: 100vh;
                  max-width: none; margin: 0; object-fit: contain; background: #fff;
                  z-index: 10; cursor: default; }
a.unzoom { display: none; position: fixed; top: 8px; right: 16px; z-index: 11;
           font-size: 20px; background: #fff; border: 1px solid #888; padding: 2px 10px;
           text-decoration: none; color: #222; }
body:has(img.arch:target) a.unzoom { display: block; }
code { font-size: 12px; overflow-wrap: anywhere; }
p.note { color: #555; font-size: 13px; }
"""


def write_report(run_dirs: Sequence[str], path: str, top: int = 5,
                 pictures: bool = True, task=None) -> str:
  """Writes the HTML report of ``run_dirs`` to ``path`` and returns ``path``.

  Args:
    run_dirs: Search output directories (several: curves side by side, e.g. RL vs random).
    path: The ``.html`` file to write.
    top: Architectures listed per run.
    pictures: Draw each listed architecture (Graphviz ``dot`` if installed, else
      matplotlib).
    task: The runs' task, for runs whose ``config.task`` cannot be loaded here (see
      :func:`load_run`).
  """
  runs = [load_run(d, task) for d in run_dirs]
  if not runs:
    raise ValueError("no run directory given")
  title = "nas_tf search report: " + ", ".join(r["name"] for r in runs)
  parts = [f"<h1>{html.escape(title)}</h1>",
           f"<p class='note'>Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
           "from each run's results.jsonl (one record per child), steps.jsonl and "
           "state.json. Rewards are search proxies: retrain the winner (nas_train) for its "
           "real quality. Click an architecture's picture to enlarge it.</p>",
           "<h2>Runs</h2>", _overview(runs),
           "<h2>Best reward so far</h2>", _curves(runs)]
  fronts = 0
  for cost_key, label in results.COSTS.items():
    figure = _pareto(runs, cost_key, label)
    if figure:
      fronts += 1
      parts += [f"<h2>Pareto front: validation {html.escape(runs[0]['metric'])} vs "
                f"{label}</h2>", figure]
  if not fronts:
    parts.append("<p class='note'>No Pareto front: no trained child records a parameter "
                 "count, a latency or multiply-accumulates (a table lookup records none).</p>")
  for number, run in enumerate(runs):
    parts += [f"<h2>{html.escape(run['name'])}: rewards per controller step</h2>",
              _per_step(run)]
    if not any(s.get("controller/entropy") is not None for s in run["steps"]):
      parts.append("<p class='note'>No controller entropy: this sampler has none, or the "
                   "run predates steps.jsonl.</p>")
    rung_figure = _rungs(run)
    if rung_figure:
      stopped = sum(r.get("pruned_at") is not None for r in run["records"])
      parts += [f"<h2>{html.escape(run['name'])}: children at each rung</h2>",
                f"<p class='note'>{stopped} of {len(run['records'])} children stopped "
                f"early ({html.escape(str(run['config'].get('pruner', {}).get('kind')))}); "
                "they rank after every child trained to the end.</p>", rung_figure]
    parts += [f"<h2>{html.escape(run['name'])}: top {top} architectures</h2>",
              _top(run, top, pictures, number)]
  parts.append("<a class='unzoom' href='#'>close &times;</a>")
  page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>"
          f"{html.escape(title)}</title><style>{_CSS}</style></head><body>"
          + "\n".join(parts) + "</body></html>\n")
  results.atomic_write_text(path, page)
  return path


# What a child's status other than 'ok' means (results.jsonl, docs/USAGE.md "What a run writes").
STATUS_MEANING = {
    "degenerate": "cells that provably cannot learn (output stuck at 0), not trained",
    "nan": "training diverged",
    "failed": "the network could not be built or trained (error in the record)",
    "too_large": "over the size or latency caps, not trained",
}


def after_search(output_dir: str, task, data_dir: Optional[str],
                 report: bool = True) -> list[str]:
  """What ``nas_search`` does when a search ends: the children's statuses and what they
  mean, the report, and what to run next.

  ``task``: the :class:`nas_tf.tasks.Task` searched (its ``next_steps``). Returns the
  lines to log. A missing matplotlib costs the report, not the search.
  """
  records = results.read_records(os.path.join(output_dir, "results.jsonl"))
  counts = collections.Counter(r.get("status") for r in records)
  lines = [f"Children: {', '.join(f'{n} {s}' for s, n in counts.most_common())}"]
  failed = [f"{s}: {STATUS_MEANING[s]}" for s in counts if s in STATUS_MEANING]
  if failed:
    # A small uniform sample of the paper's spaces holds many such cells; they get the
    # failure reward, which is how the controller learns to avoid them.
    lines[0] += (" (" + "; ".join(failed) + "; each gets the failure reward, from which "
                 "the controller learns to avoid such architectures)")
  if report:
    try:
      path = write_report([output_dir], os.path.join(output_dir, REPORT_FILE), task=task)
      lines.append(f"Report: {path} (open it in a browser)")
    except RuntimeError as e:  # no matplotlib
      lines.append(f"No report: {e}")
  return lines + (task.next_steps(output_dir, data_dir) if counts.get("ok") else [])


__all__ = ["write_report", "load_run", "best_so_far", "after_search", "REPORT_FILE"]
