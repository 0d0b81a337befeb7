r"""Do the strategies keep their order when their found cells are scored by another proxy?

A search's best cell was chosen by the proxy it ran with; when the preset proxy changes,
the comparison of strategies (docs/RESULTS.md §1) may change with it. Rerunning every
search costs hours; this script re-scores the cells the searches already found instead:
the top ``--top`` distinct cells of each run, each trained again by every proxy to be
compared (a fresh training seed, so also free of the winner's curse of the search's own
values, which were the best of many noisy ones). It answers "would the new proxy have
ranked these strategies' findings differently", not "would the searches have found
different cells".

  # 1. The cells: SPECS.txt (one spec JSON per line) and cells.json (which run, which rank).
  python benchmarks/strategy_recheck.py --runs=bo-seed0:DIR,rl-seed1:DIR,... --top=3 \
      --output_dir=OUT
  # 2. Each proxy over them (resumable; OUT/proxy-NAME.jsonl).
  python benchmarks/proxy_fidelity.py --task=ptb --data_dir=../shared/data/ptb \
      --specs=OUT/specs.txt --only=proxy --proxy_name=NAME --proxy='{...}' --output_dir=OUT
  # 3. The strategies' best re-scored value per run and per strategy, for every proxy.
  python benchmarks/strategy_recheck.py --analyze --output_dir=OUT
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top
from absl import logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import results  # pylint: disable=g-import-not-at-top

_RUNS = flags.DEFINE_list("runs", [], "STRATEGY-seedN:SEARCH_DIR,...: the searches whose "
                          "found cells are re-scored (the strategy is the name before "
                          "'-seed').")
_TOP = flags.DEFINE_integer("top", 3, "Distinct cells taken from each run, best first.")
_OUT = flags.DEFINE_string("output_dir", None, "Where specs.txt, cells.json and the "
                           "proxies' jsonl files live.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Summarise the proxies' jsonl files.")


def select_cells(runs, top):
  """[(run name, rank, the search's own value, spec dict)]: each run's ``top`` best."""
  cells = []
  for entry in runs:
    name, _, run_dir = entry.partition(":")
    records = results.read_records(str(pathlib.Path(run_dir) / "results.jsonl"))
    ranked = results.rank([r for r in records if r.get("status") == "ok"])[:top]
    if not ranked:
      raise ValueError(f"{run_dir} has no trained child: nothing to re-score for {name!r}")
    cells += [(name, k, r.get("val_metric"), r["spec"]) for k, r in enumerate(ranked)]
  return cells


def summarize(cells, proxies):
  """Per run and per strategy, the best value each proxy gives the run's cells.

  Args:
    cells: ``[{"run", "rank", "search_value"}]`` in specs.txt's order (ids spec000, ...).
    proxies: ``{name: {spec id: record}}`` (records with ``status`` and ``val_perplexity``).

  Returns:
    ``{"runs": {run: {proxy: best}}, "strategies": {strategy: {proxy: [best per run]}}}``;
    a run whose cells all failed under a proxy has best ``None``.
  """
  out = {"runs": {}, "strategies": {}}
  for k, cell in enumerate(cells):
    row = out["runs"].setdefault(cell["run"], {"search": None})
    if cell["rank"] == 0:
      row["search"] = cell["search_value"]
    for name, records in proxies.items():
      rec = records.get(f"spec{k:03d}")
      value = rec.get("val_perplexity") if rec and rec.get("status") == "ok" else None
      if value is not None and (row.get(name) is None or value < row[name]):
        row[name] = value
      row.setdefault(name, None)
  for run, row in out["runs"].items():
    strategy = run.split("-seed")[0]
    for name in ["search", *proxies]:
      out["strategies"].setdefault(strategy, {}).setdefault(name, []).append(row.get(name))
  return out


def _fmt(values):
  finite = [v for v in values if v is not None]
  if not finite:
    return "-"
  sd = f" ± {np.std(finite, ddof=1):.1f}" if len(finite) > 1 else ""
  return f"{np.mean(finite):.1f}{sd} ({', '.join(f'{v:.1f}' for v in finite)})"


def main(argv):
  del argv
  if not _OUT.value:
    raise app.UsageError("--output_dir is required")
  out = pathlib.Path(_OUT.value)
  if not _ANALYZE.value:
    if not _RUNS.value:
      raise app.UsageError("--runs=NAME-seedN:DIR,... is required (or --analyze)")
    cells = select_cells(_RUNS.value, _TOP.value)
    out.mkdir(parents=True, exist_ok=True)
    (out / "specs.txt").write_text("".join(json.dumps(c[3]) + "\n" for c in cells))
    (out / "cells.json").write_text(json.dumps(
        [{"run": n, "rank": k, "search_value": v} for n, k, v, _ in cells], indent=1))
    logging.info("%d cells of %d runs in %s", len(cells), len(_RUNS.value), out)
    return
  cells = json.loads((out / "cells.json").read_text())
  proxies = {p.stem.removeprefix("proxy-"): results.read_jsonl_by(p, "id")
             for p in sorted(out.glob("proxy-*.jsonl"))}
  summary = summarize(cells, proxies)
  (out / "summary.json").write_text(json.dumps(summary, indent=1))
  names = ["search", *proxies]
  print("| strategy | " + " | ".join(f"best val ppl: {n} (mean ± SD, n-1; per run)"
                                      for n in names) + " |")
  print("|---" * (len(names) + 1) + "|")
  for strategy, row in sorted(summary["strategies"].items()):
    print(f"| {strategy} | " + " | ".join(_fmt(row[n]) for n in names) + " |")


if __name__ == "__main__":
  app.run(main)
