"""The analysis half of ``benchmarks/proxy_fidelity.py``: rank agreement, tables, plots.

Reads the per-architecture JSONL of a study (``proxy[-NAME].jsonl``,
``reference[-NAME].jsonl``, ``zero_cost[-NAME].jsonl``) and reports, per proxy, Kendall's
tau and Spearman's rho against the reference (all architectures, learners only, and with
the non-learners tied), top-k recall, failures and cost; every two proxies' agreement
with each other (their retest); every zero-cost score's correlation; and a headline of
every ranking held to the goal a reward was set (``summary.json``, key ``headline``).
Run through ``proxy_fidelity.py --analyze``.
"""

import collections
import json
import pathlib
from typing import Optional

from absl import logging
import numpy as np

from nas_tf import fidelity
from nas_tf import results
from nas_tf import rewards
from nas_tf import tasks


def _metric(task, m):
  """Higher-is-better score of a record: -perplexity or accuracy (failures: worst)."""
  if task == "ptb":
    ppl = m.get("val_perplexity")
    return -float(ppl) if m.get("status") == "ok" and ppl and np.isfinite(ppl) else -1e9
  acc = m.get("val_accuracy")
  return float(acc) if m.get("status") == "ok" and acc is not None and np.isfinite(acc) else 0.0


def _read(path):
  return results.read_jsonl_by(path, "id")


def analyze_zero_cost(task, archs, out_dir, proxies):
  """Rank correlation of every zero-cost score with the reference and the proxies."""
  from nas_tf import zero_cost  # pylint: disable=g-import-not-at-top
  reference = _read(out_dir / "reference.jsonl")
  rows = []
  for path in sorted(out_dir.glob("zero_cost*.jsonl")):
    scores = _read(path)
    against = {"reference": reference, **proxies}
    for name, records in against.items():
      ids = [i for i, _ in archs if i in records and scores.get(i, {}).get("status") == "ok"]
      if len(ids) < 3:
        continue
      target = [_metric(task, records[i]) for i in ids]
      for score in zero_cost.SCORES:
        x = [scores[i][score] for i in ids]
        x = [v if np.isfinite(v) else -1e300 for v in x]  # a singular K ranks last
        rows.append({"scores": path.stem, "score": score, "against": name, "n": len(ids),
                     "kendall_tau": fidelity.kendall_tau(x, target),
                     "spearman_rho": fidelity.spearman_rho(x, target),
                     "mean_seconds": float(np.mean([scores[i].get("total_seconds", 0.0)
                                                    for i in ids]))})
  if rows:
    print("\n| scores | score | against | n | Kendall tau | Spearman rho | s/arch |\n"
          "|---|---|---|---|---|---|---|")
    for r in rows:
      print(f"| {r['scores']} | {r['score']} | {r['against']} | {r['n']} | "
            f"{r['kendall_tau']:.3f} | {r['spearman_rho']:.3f} | {r['mean_seconds']:.1f} |")
  return rows


def _suffix(name) -> str:
  return f"-{name}" if name else ""


def top_k_recall(proxy_scores, reference_scores, k: int) -> Optional[float]:
  """Of the reference's best ``k`` (higher is better), the share in the proxy's best k."""
  if len(proxy_scores) < k:
    return None
  best = lambda v: set(np.argsort(-np.asarray(v, float), kind="stable")[:k].tolist())
  return len(best(proxy_scores) & best(reference_scores)) / k


def analyze(task, archs, out_dir, reference_name="", compare_dirs=()):
  reference = _read(out_dir / f"reference{_suffix(reference_name)}.jsonl")
  summary = {"task": task, "reference": reference_name or "child", "proxies": {}}
  others = [(f"{pathlib.Path(d).name}:{p.stem}", p) for d in compare_dirs
            for p in sorted(pathlib.Path(d).glob("proxy*.jsonl")) + sorted(
                pathlib.Path(d).glob("reference.jsonl"))]
  for name, proxy_path in [(p.stem, p) for p in sorted(out_dir.glob("proxy*.jsonl"))] + others:
    proxy = _read(proxy_path)
    ids = [i for i, _ in archs if i in proxy and i in reference]
    if len(ids) < 3:
      continue
    p = [proxy[i]["reward"] for i in ids]
    r = [_metric(task, reference[i]) for i in ids]
    learners = [k for k, i in enumerate(ids) if tasks.get(task).learned(-r[k] if task == "ptb"
                                                                 else r[k])]
    seconds = [proxy[i].get("train_seconds", 0.0) for i in ids]
    failed = [i for i in ids if proxy[i].get("status") != "ok"]
    entry = {
        "n": len(ids), "kendall_tau": fidelity.kendall_tau(p, r),
        "spearman_rho": fidelity.spearman_rho(p, r), "n_learners": len(learners),
        "top5_recall": top_k_recall(p, r, 5), "top10_recall": top_k_recall(p, r, 10),
        "kendall_tau_learners": (fidelity.kendall_tau([p[k] for k in learners],
                                                      [r[k] for k in learners])
                                 if len(learners) >= 3 else None),
        "spearman_rho_learners": (fidelity.spearman_rho([p[k] for k in learners],
                                                        [r[k] for k in learners])
                                  if len(learners) >= 3 else None),
        "proxy_failed": len(failed),
        # Learns nothing beyond word frequencies: at or above the unigram perplexity
        # (PTB) / a 10-class guess (CIFAR-10); tied: shares its proxy metric (to 4
        # digits) with another architecture, i.e. the proxy cannot order them.
        "proxy_not_learning": sum(1 for i in ids if not _learns(task, proxy[i])),
        "proxy_tied": _tied(task, [proxy[i] for i in ids]),
        "reference_not_learning": sum(1 for i in ids if not _learns(task, reference[i])),
        "reference_tied": _tied(task, [reference[i] for i in ids]),
        "proxy_restarted": sum(1 for i in ids if (proxy[i].get("attempts") or 1) > 1),
        "reference_failed": sum(1 for i in ids if reference[i].get("status") != "ok"),
        "mean_proxy_seconds": float(np.mean(seconds)),
        # CPU seconds do not grow when other jobs share the cores (recorded since
        # train_cpu_seconds exists; None for older proxies).
        "mean_proxy_cpu_seconds": (
            float(np.mean([proxy[i]["train_cpu_seconds"] for i in ids]))
            if all(proxy[i].get("train_cpu_seconds") is not None for i in ids) else None),
        "mean_reference_seconds": float(np.mean([reference[i].get("train_seconds", 0.0)
                                                 for i in ids])),
        "table": [{"id": i, "proxy_reward": proxy[i]["reward"],
                   "proxy_status": proxy[i].get("status"),
                   "proxy_metric": proxy[i].get("val_perplexity", proxy[i].get("val_accuracy")),
                   "reference_metric": reference[i].get("val_perplexity",
                                                        reference[i].get("val_accuracy")),
                   "reference_status": reference[i].get("status"),
                   "proxy_lr": proxy[i].get("lr_used"),
                   "reference_lr": reference[i].get("lr_used")} for i in ids]}
    entry["tau_per_proxy_second"] = entry["kendall_tau"] / max(entry["mean_proxy_seconds"], 1e-9)
    # The ranking a search needs: learners in the reference's order and every non-learner
    # below them, the order among non-learners ignored (they are tied at the bar).
    bar = (-rewards.PTB_UNIGRAM_VAL_PERPLEXITY if task == "ptb"
           else rewards.CIFAR_LEARNER_ACCURACY)
    r_tied = [r[k] if k in learners else bar for k in range(len(ids))]
    entry["kendall_tau_nonlearners_tied"] = fidelity.kendall_tau(p, r_tied)
    top = set(np.argsort(-np.asarray(p), kind="stable")[:len(learners)].tolist())
    entry["learners_in_proxy_top"] = len(top & set(learners))
    summary["proxies"][name] = entry
    print(f"\n### {task} {name}: n={entry['n']}, Kendall tau {entry['kendall_tau']:.3f}, "
          f"Spearman rho {entry['spearman_rho']:.3f}; among {entry['n_learners']} learners "
          f"tau {entry['kendall_tau_learners']}, rho {entry['spearman_rho_learners']}; "
          f"proxy {entry['mean_proxy_seconds']:.0f} s/child"
          + (f" ({entry['mean_proxy_cpu_seconds']:.0f} CPU-s)"
             if entry["mean_proxy_cpu_seconds"] is not None else "") + ", reference "
          f"{entry['mean_reference_seconds']:.0f} s/child; proxy failed "
          f"{entry['proxy_failed']}, restarted {entry['proxy_restarted']}, not learning "
          f"{entry['proxy_not_learning']}, tied {entry['proxy_tied']} (reference: not "
          f"learning {entry['reference_not_learning']}, tied {entry['reference_tied']}); "
          f"tau with non-learners tied {entry['kendall_tau_nonlearners_tied']:.3f}, "
          f"learners in the proxy's top {len(learners)}: {entry['learners_in_proxy_top']}; "
          f"top-5 recall {entry['top5_recall']}, top-10 recall {entry['top10_recall']}")
    print("\n| arch | proxy status | proxy metric | proxy lr | proxy reward | reference "
          "metric | reference lr |\n|---|---|---|---|---|---|---|")
    for row in sorted(entry["table"], key=lambda t: -t["proxy_reward"]):
      print(f"| {row['id']} | {row['proxy_status']} | {_fmt(row['proxy_metric'])} | "
            f"{_fmt(row['proxy_lr'])} | {row['proxy_reward']:.3g} | "
            f"{_fmt(row['reference_metric'])} | {_fmt(row['reference_lr'])} |")
    _scatter(task, name, entry, out_dir / f"scatter-{name.replace(':', '-')}"
                                        f"{_suffix(reference_name)}.png")
  proxies = {p.stem: _read(p) for p in sorted(out_dir.glob("proxy*.jsonl"))}
  summary["retest"] = retest(task, proxies)
  summary["zero_cost"] = analyze_zero_cost(task, archs, out_dir, proxies)
  summary["headline"] = headline(summary, *_GOALS[task])
  (out_dir / f"summary{_suffix(reference_name)}.json").write_text(
      json.dumps(summary, indent=1, allow_nan=True))
  return summary


# The goals a reward was held to (RESULTS §2b): (Kendall tau, seconds a child).
_GOALS = {"cifar10": (0.6, 60.0), "ptb": (0.75, float("inf"))}


def headline(summary, goal_tau, goal_seconds, min_n=10) -> list:
  """Every ranking against the reference, best τ first, the search preset named.

  Seconds are CPU seconds where recorded (one thread), else wall seconds (marked), which
  overstate beside other jobs. Rankings over fewer than ``min_n`` architectures come
  last and meet no goal: τ over 3 items moves by ±0.8 with one swap.
  """
  rows = [{"ranking": "the search preset (proxy)" if name == "proxy" else name,
           "n": e["n"], "kendall_tau": e["kendall_tau"],
           "seconds": e["mean_proxy_cpu_seconds"] or e["mean_proxy_seconds"],
           "cpu": e["mean_proxy_cpu_seconds"] is not None}
          for name, e in summary["proxies"].items() if ":" not in name]
  rows += [{"ranking": f"{z['scores']}:{z['score']}", "n": z["n"], "cpu": False,
            "kendall_tau": z["kendall_tau"], "seconds": z["mean_seconds"]}
           for z in summary.get("zero_cost", []) if z["against"] == "reference"]
  rows.sort(key=lambda r: (r["n"] < min_n, -r["kendall_tau"]))
  for r in rows:
    r["meets_goal"] = bool(r["n"] >= min_n and r["kendall_tau"] >= goal_tau
                           and r["seconds"] <= goal_seconds)
  cost = f" at <= {goal_seconds:.0f} s a child" if np.isfinite(goal_seconds) else ""
  print(f"\n### Headline ({summary['task']}): against the reference, goal tau >= {goal_tau}"
        f"{cost}, n >= {min_n}\n\n| ranking by | n | Kendall tau | s a child |"
        " meets goal |\n|---|---|---|---|---|")
  for r in rows:
    print(f"| {r['ranking']} | {r['n']} | {r['kendall_tau']:.3f} | {r['seconds']:.0f}"
          f"{' CPU' if r['cpu'] else ' wall'} | {'yes' if r['meets_goal'] else 'no'} |")
  return rows


def retest(task, proxies: dict) -> list:
  """Rank agreement of every two proxy variants on the architectures both trained.

  Two runs of one proxy at different training seeds measure its noise: no proxy ranks
  like the reference better than it ranks like itself, so this bounds its fidelity.
  """
  rows = []
  names = sorted(proxies)
  for k, a in enumerate(names):
    for b in names[k + 1:]:
      ids = [i for i in proxies[a] if i in proxies[b]]
      if len(ids) < 3:
        continue
      x = [_metric(task, proxies[a][i]) for i in ids]
      y = [_metric(task, proxies[b][i]) for i in ids]
      # The metric's noise, over the architectures both runs trained to the end.
      both = [k for k, i in enumerate(ids)
              if proxies[a][i].get("status") == proxies[b][i].get("status") == "ok"]
      rows.append({"a": a, "b": b, "n": len(ids), "kendall_tau": fidelity.kendall_tau(x, y),
                   "spearman_rho": fidelity.spearman_rho(x, y),
                   "mean_abs_difference": (float(np.mean([abs(x[k] - y[k]) for k in both]))
                                           if both else None)})
  if rows:
    print("\n| proxy a | proxy b | n | Kendall tau | Spearman rho | mean abs difference "
          "(both ok) |\n|---|---|---|---|---|---|")
    for r in rows:
      print(f"| {r['a']} | {r['b']} | {r['n']} | {r['kendall_tau']:.3f} | "
            f"{r['spearman_rho']:.3f} | {_fmt(r['mean_abs_difference'])} |")
  return rows


def _learns(task, record):
  if record.get("status") != "ok":
    return False
  return tasks.get(task).learned(record.get("val_perplexity" if task == "ptb" else
                                          "val_accuracy"))


def _tied(task, records):
  key = "val_perplexity" if task == "ptb" else "val_accuracy"
  values = [f"{r[key]:.4g}" for r in records if r.get("status") == "ok" and r.get(key)]
  return sum(c for c in collections.Counter(values).values() if c > 1)


def _fmt(x):
  return "—" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _scatter(task, name, entry, path):
  try:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  except ImportError:
    logging.warning("matplotlib is not installed: no plot written")
    return
  rows = [t for t in entry["table"] if t["proxy_metric"] is not None and
          t["reference_metric"] is not None and np.isfinite(t["proxy_metric"]) and
          np.isfinite(t["reference_metric"])]
  fig, ax = plt.subplots(figsize=(5.2, 4.4))
  ax.scatter([t["proxy_metric"] for t in rows], [t["reference_metric"] for t in rows], s=18)
  for t in rows:
    if not t["id"].startswith(("rand", "spec")):
      ax.annotate(t["id"], (t["proxy_metric"], t["reference_metric"]), fontsize=8)
  if task == "ptb":
    ax.set_xscale("log")
    ax.set_yscale("log")
  what = "validation perplexity" if task == "ptb" else "validation accuracy"
  ax.set_xlabel(f"proxy {what}")
  ax.set_ylabel(f"reference {what}")
  ax.set_title(f"{task} {name}: tau {entry['kendall_tau']:.2f}, rho "
               f"{entry['spearman_rho']:.2f} (n={entry['n']}, "
               f"{len(entry['table']) - len(rows)} failed not shown)", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
