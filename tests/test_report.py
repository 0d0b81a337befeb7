"""nas_report: one self-contained HTML page per search (or several side by side)."""

import base64
import html.parser
import json
import os
import pathlib

import numpy as np
import pytest

from nas_tf import config as config_lib
from nas_tf import report
from nas_tf import search

pytest.importorskip("matplotlib")


class _Evaluator:
  """Accuracy from the first layer's filters, parameters from the total filters."""

  def evaluate(self, specs):
    return [{"status": "ok", "val_accuracy": s.layers[0].num_filters / 100,
             "val_accuracy_history": [s.layers[0].num_filters / 100], "train_seconds": 0.0,
             "num_params": 100 * sum(l.num_filters for l in s.layers)} for s in specs]

  def close(self):
    pass


def _search(tmp_path, method):
  config = config_lib.SearchConfig(
      task="cifar10", data_dir="unused", output_dir=str(tmp_path / method), search=method,
      max_children=12, children_per_step=3, space={"kind": "cnn", "strides": [1]},
      depth=config_lib.DepthSchedule(start=2, increment=1, every=6),
      runtime=config_lib.RuntimeConfig(isolation="inline"))
  search.run(config, evaluator=_Evaluator())
  return config.output_dir


class _Page(html.parser.HTMLParser):
  def __init__(self):
    super().__init__()
    self.images, self.headings, self.links, self._in_h2 = [], [], [], False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == "img":
      self.images.append(attrs)
    if tag in ("a", "link", "script") and (attrs.get("href") or attrs.get("src")):
      self.links.append(attrs)
    self._in_h2 = tag == "h2"

  def handle_data(self, data):
    if self._in_h2:
      self.headings.append(data)
      self._in_h2 = False


def test_report_of_two_runs_is_self_contained_and_complete(tmp_path):
  rl, rnd = _search(tmp_path, "rl"), _search(tmp_path, "random")
  # steps.jsonl: one line per committed step, with the controller's scalars.
  steps = [json.loads(l) for l in open(os.path.join(rl, "steps.jsonl"))]
  assert [s["step"] for s in steps] == [0, 1, 2, 3]
  assert all(s["controller/entropy"] > 0 for s in steps)
  path = report.write_report([rl, rnd], str(tmp_path / "r.html"), top=3)
  page = _Page()
  page.feed(pathlib.Path(path).read_text())
  # No external resources, no scripts: links only within the page (pictures enlarge).
  assert all(l.get("href", "").startswith("#") for l in page.links), page.links
  # curves, Pareto fronts (params; macs, which CIFAR-10 knows of every spec), per-step
  # panels of both runs, 3 + 3 pictures
  assert len(page.images) == 1 + 2 + 2 + 6
  for img in page.images:
    assert img["alt"] and img["src"].startswith("data:image/png;base64,")
    assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
  assert "Best reward so far" in page.headings
  assert any("Pareto front" in h for h in page.headings)
  assert {"rl: top 3 architectures", "random: top 3 architectures"} <= set(page.headings)
  text = pathlib.Path(path).read_text()
  assert "No controller entropy" in text  # random search has none, and says so


def test_the_report_renders_in_chromium_and_a_picture_enlarges(tmp_path):
  """A real browser draws the page (not blank), and a picture's link shows it alone."""
  import shutil  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  browser = shutil.which("chromium") or shutil.which("chromium-browser")
  if browser is None:
    pytest.skip("no Chromium here (.ci/run installs it)")
  path = report.write_report([_search(tmp_path, "rl")], str(tmp_path / "r.html"), top=2)
  if "arch-0-1" not in pathlib.Path(path).read_text():
    pytest.skip("no architecture pictures (Graphviz missing)")

  def shot(url, name):
    out = tmp_path / name
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={out}", "--window-size=1000,700",
                    url], capture_output=True, timeout=120, check=True)
    return np.asarray(Image.open(out).convert("L"), dtype=float)

  page = shot(pathlib.Path(path).as_uri(), "page.png")
  zoomed = shot(pathlib.Path(path).as_uri() + "#arch-0-1", "zoom.png")
  assert page.std() > 10  # text, tables and plots, not a blank page
  # The enlarged picture covers the window: the page's title and tables are gone, and
  # its dark pixels (nodes, edges, labels) spread over the whole width.
  assert np.abs(page - zoomed).mean() > 2
  dark_columns = (zoomed < 128).any(axis=0)
  assert dark_columns[:250].any() and dark_columns[-250:].any()


def test_best_so_far_and_a_resumed_step_counted_once(tmp_path):
  rl = _search(tmp_path, "rl")
  records = report.load_run(rl)["records"]
  curve = report.best_so_far(records)
  ordered = sorted(records, key=lambda r: (r["step"], r["index"]))
  assert list(curve) == [max(r["reward"] for r in ordered[:n + 1]) for n in range(12)]
  assert np.all(np.diff(curve) >= 0)
  # A step redone after a resume is appended again: the last line wins.
  with open(os.path.join(rl, "steps.jsonl"), "a") as f:
    f.write(json.dumps({"step": 1, "controller/entropy": 123.0}) + "\n")
    f.write('{"step": 2, "contr')  # a half-written line after a kill
  steps = report.load_run(rl)["steps"]
  assert [s["step"] for s in steps] == [0, 1, 2, 3]
  assert steps[1]["controller/entropy"] == 123.0


def test_not_a_run_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match="holds no results.jsonl: not a nas_search"):
    report.write_report([str(tmp_path)], str(tmp_path / "r.html"))


def test_eta_accounts_for_the_depth_schedule(tmp_path):
  from nas_tf.search import records  # pylint: disable=g-import-not-at-top
  config = config_lib.SearchConfig(task="cifar10", data_dir="d", output_dir="o",
                                   max_children=8, depth=config_lib.DepthSchedule(
                                       start=2, increment=2, every=4))
  log = [{"depth": 2}] * 4  # 4 children of depth 2 took 40 s: 5 s per layer
  # the 4 to come have depth 4: 4 x 4 layers x 5 s
  assert records.eta_seconds(config, log, 40.0, 4) == pytest.approx(80.0)
  ptb = config_lib.SearchConfig(task="ptb", data_dir="d", output_dir="o", max_children=8)
  assert records.eta_seconds(ptb, [{"depth": None}] * 2, 10.0, 2) == pytest.approx(30.0)


def test_a_run_without_costs_says_why_it_has_no_pareto_front(tmp_path, monkeypatch):
  class _NoCost(_Evaluator):
    def evaluate(self, specs):
      return [dict(m, num_params=None) for m in super().evaluate(specs)]

  from nas_tf.tasks import builtin  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(builtin.CIFAR10Task, "costs", lambda self, spec: {})  # no macs either

  config = config_lib.SearchConfig(
      task="cifar10", data_dir="unused", output_dir=str(tmp_path / "nocost"),
      search="random", max_children=3, children_per_step=3,
      space={"kind": "cnn", "strides": [1]}, depth=config_lib.DepthSchedule(start=2),
      runtime=config_lib.RuntimeConfig(isolation="inline"))
  search.run(config, evaluator=_NoCost())
  text = pathlib.Path(report.write_report([config.output_dir],
                                          str(tmp_path / "r.html"))).read_text()
  assert "<h2>Pareto front" not in text and "No Pareto front: no trained child records" in text


def test_a_run_whose_task_cannot_be_loaded_is_labelled_by_what_its_records_were_scored_on(
    tmp_path):
  """A KerasSearch run read later (its build function lives in the user's program): the
  trials' records say their objective and its direction."""
  (tmp_path / "config.json").write_text(json.dumps({"task": "hypermodel"}))
  record = {"step": 0, "index": 0, "status": "ok", "reward": -0.7, "val_metric": 0.7,
            "spec": {"kind": "hp", "values": [["units", 4]], "version": 1},
            "metrics": {"val_loss": 0.7,
                        "scored_on": {"metric": "val_loss", "higher_is_better": False}}}
  (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
  run = report.load_run(str(tmp_path))
  assert (run["metric"], run["higher_is_better"]) == ("val_loss", False)
