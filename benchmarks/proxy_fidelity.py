#!/usr/bin/env python3
"""Does the search's cheap proxy rank architectures like a thorough training? (paper §4)

Samples ``--num_archs`` architectures uniformly from the paper's space (plus the LSTM and
the published NASCell for PTB, a plain hand-written convnet for CIFAR-10), trains each
(a) with the proxy the search uses and (b) with a reference budget several times
larger, and reports Kendall's tau and Spearman's rho between proxy reward and reference
metric, over all architectures and over those that learn (beat the unigram model on
PTB, a 10%-accuracy guess on CIFAR-10), with the per-architecture table and a scatter
plot. Each side appends one JSON line per architecture, so an interrupted run resumes
and the two sides can run on different machines.

  python benchmarks/proxy_fidelity.py --task=ptb --data_dir=../shared/data/ptb --only=proxy
  python benchmarks/proxy_fidelity.py --task=ptb --data_dir=../shared/data/ptb --only=reference
  python benchmarks/proxy_fidelity.py --task=ptb --analyze        # table, tau, plot
  # another proxy over the same architectures, named so it sits beside the default:
  python benchmarks/proxy_fidelity.py --task=ptb --data_dir=... --only=proxy \
      --proxy='{"lm_units": 32, "max_train_examples": 100000}' --proxy_name=u32_100k
  # training-free scores (CIFAR-10), seconds per architecture, then --analyze:
  python benchmarks/proxy_fidelity.py --task=cifar10 --data_dir=... --only=zero_cost
  # your own cells, one spec JSON per line:
  python benchmarks/proxy_fidelity.py --task=ptb --data_dir=... --specs=my_cells.jsonl
  # CIFAR-10 on one core: proxy then reference architecture by architecture, so that
  # whatever finishes pairs up (rerun the same command to resume):
  python benchmarks/proxy_fidelity.py --task=cifar10 --data_dir=... --threads=1 --interleave

Outputs go to ``--output_dir`` (default ``benchmarks/results/proxy_fidelity_<task>/``):
``archs.jsonl``, ``proxy[-NAME].jsonl``, ``reference.jsonl``, ``zero_cost[-NAME].jsonl``,
``summary.json``, ``scatter-*.png``.
"""

import dataclasses
import json
import os
import pathlib
import sys
import time

_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(_ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib  # pylint: disable=g-import-not-at-top
from nas_tf import tasks  # pylint: disable=g-import-not-at-top
from nas_tf import results  # pylint: disable=g-import-not-at-top
from nas_tf import rewards  # pylint: disable=g-import-not-at-top
from nas_tf import search_space  # pylint: disable=g-import-not-at-top
from nas_tf import specs  # pylint: disable=g-import-not-at-top
sys.path.insert(0, str(_ROOT / "benchmarks"))
# The analysis half (also what the tests call through this module).
from proxy_fidelity_analysis import (  # pylint: disable=g-import-not-at-top,unused-import
    _metric, _read, _suffix, analyze, analyze_zero_cost, headline, retest, top_k_recall)
from sharding import shard  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_enum("task", "ptb", ["ptb", "cifar10"], "Benchmark task.")
_DATA = flags.DEFINE_string("data_dir", None, "Real data (PTB dir or CIFAR-10 source).")
_N = flags.DEFINE_integer("num_archs", 20, "Architectures sampled uniformly from the space.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the architecture sample and of training.")
_TRAIN_SEED = flags.DEFINE_integer(
    "train_seed", None, "Seed of training alone (initial weights, data order); default "
    "--seed. Vary it with the same --seed to measure a side's seed noise (write to another "
    "--proxy_name).")
_SPECS = flags.DEFINE_string("specs", None, "File with one spec JSON per line: evaluate these "
                             "instead of a uniform sample.")
_FOUND = flags.DEFINE_list("found", [], "NAME:SEARCH_DIR,...: also rank the best cell of "
                           "each search (id found-NAME), placed after the baselines so "
                           "that a resumed study trains them next.")
_COMPARE = flags.DEFINE_list("compare_dirs", [], "--analyze: also rank the proxies (and the "
                             "reference) of these studies of the same architectures (same "
                             "ids) against this study's reference, as DIR:STEM.")
_ONLY = flags.DEFINE_enum("only", None, ["proxy", "reference", "zero_cost"],
                          "Run one side only; 'zero_cost' (CIFAR-10): training-free scores of "
                          "each architecture at initialisation (nas_tf.zero_cost), seconds "
                          "per architecture, written to zero_cost[-NAME].jsonl.")
_ZC_BATCH = flags.DEFINE_integer("zero_cost_batch", 64, "Training images (first of the "
                                 "split, not augmented) the data-dependent zero-cost scores "
                                 "see.")
_ANALYZE = flags.DEFINE_boolean("analyze", False, "Only summarise what has been run.")
_PROXY = flags.DEFINE_string("proxy", "{}", "JSON overrides of the proxy ChildTrainingConfig "
                             "(default: the search preset for real data).")
_PROXY_NAME = flags.DEFINE_string("proxy_name", "", "Name of this proxy variant (file suffix).")
_REFERENCE = flags.DEFINE_string("reference", "{}", "JSON overrides of the reference config.")
_REF_TRAINER = flags.DEFINE_enum(
    "reference_trainer", "child", ["child", "nas_train"],
    "child: the reference trains like a search child, with the proxy's own rate rules; "
    "nas_train (PTB): the package's final training, its divergence and unigram restarts "
    "included, at 2x128, one epoch, batch 20, no dropout (--reference overrides), each "
    "cell in OUTPUT_DIR/nas_train/ID: what the user's retraining will say of a cell.")
_REF_NAME = flags.DEFINE_string(
    "reference_name", None, "The reference's name: reference-NAME.jsonl and "
    "summary-NAME.json (default: none for child, 'nas_train' for nas_train).")
_OUT = flags.DEFINE_string("output_dir", None, "Default benchmarks/results/proxy_fidelity_TASK.")
_THREADS = flags.DEFINE_integer("threads", 0, "TensorFlow intra- and inter-op threads "
                                "(0: TensorFlow's default, all cores).")
_INTERLEAVE = flags.DEFINE_boolean("interleave", False, "Train proxy then reference "
                                   "architecture by architecture instead of side by side, "
                                   "so that an interrupted run already has complete pairs.")
_SHARD = flags.DEFINE_string("shard", None, "I/N: train only the architectures at positions "
                             "I, I+N, I+2N, ... of the study's order, so that N processes "
                             "(one per core) share one study's output directory without "
                             "training the same architecture twice. The analysis covers all.")

# Architectures that always join the sample: the paper's baselines.
_BASELINES = {"ptb": ("lstm", "nascell"), "cifar10": ("plain_convnet",)}
# Learning is judged by Task.learned: the unigram model on PTB, a guess on CIFAR-10.


def _output_dir():
  return pathlib.Path(_OUT.value or _ROOT / "benchmarks" / "results"
                      / f"proxy_fidelity_{_TASK.value}")


def _plain_convnet():
  # Six 3x3 conv layers of 36 filters in a chain: the hand-written baseline of §4.1.
  return specs.CNNSpec(layers=tuple(
      specs.ConvLayer(3, 3, 36, inputs=(i - 1,) if i else ()) for i in range(6)))


def _space(task):
  if task == "ptb":
    return search_space.RNNCellSearchSpace(base=8)
  return search_space.CNNSearchSpace(num_layers=6, strides=(1, 2, 3))


def architectures(task, num_archs, seed, specs_file, found=()):
  """[(id, spec or baseline name)] in a fixed order: the baselines, the best cells of
  the ``found`` searches ("NAME:SEARCH_DIR"), then ``num_archs`` uniform samples."""
  if specs_file:
    lines = [l for l in pathlib.Path(specs_file).read_text().splitlines() if l.strip()]
    return [(f"spec{k:03d}", specs.from_json(l)) for k, l in enumerate(lines)]
  rng = np.random.default_rng(seed)
  space = _space(task)
  archs = [(name, name) for name in _BASELINES[task]]
  for entry in found:
    name, _, run_dir = entry.partition(":")
    best = results.rank([r for r in results.read_records(
        os.path.join(run_dir, "results.jsonl")) if r.get("status") == "ok"])[0]
    archs.append((f"found-{name}", specs.from_dict(best["spec"])))
  archs += [(f"rand{k:03d}", space.sample(rng)) for k in range(num_archs)]
  return [(i, _plain_convnet() if a == "plain_convnet" else a) for i, a in archs]


def proxy_config(task, overrides):
  """The search preset for real data (what nas_search trains children with) + overrides."""
  d = {k[len("child."):]: v for k, v in tasks.get(task).search_defaults(tiny=False).items()
       if k.startswith("child.")}
  base = dict(dataclasses.asdict(config_lib.ChildTrainingConfig()), **d)
  if task != "ptb":
    base.update(reward_epochs=min(5, base["epochs"]))
  base.update(overrides)
  return config_lib.ChildTrainingConfig(**base)


def reference_config(task, overrides):
  """At least 5x the proxy's budget: PTB one full epoch (929,589 tokens, ~4.6-9x the
  proxies' tokens) at 64 units, all of the validation split; CIFAR 10 epochs, 20k images."""
  if task == "ptb":
    base = dict(epochs=1, batch_size=20, optimizer="sgd", learning_rate=1.0, clipnorm=5.0,
                weight_decay=0.0, lm_units=64, num_steps=20, max_train_examples=None,
                max_eval_examples=None)
  else:
    base = dict(epochs=10, batch_size=64, optimizer="momentum", learning_rate=0.05,
                weight_decay=5e-5, max_train_examples=20_000, max_eval_examples=5_000,
                reward_epochs=5)
  base.update(overrides)
  return config_lib.ChildTrainingConfig(**base)


def nas_train_config(task, overrides, out_dir, arch_id):
  """``nas_train``'s configuration of one reference cell: the task's real final recipe
  at 2x128 for one epoch (batch 20, no dropout, restarts as nas_train does them)."""
  from nas_tf.training import final as final_training  # pylint: disable=g-import-not-at-top
  settings = tasks.get(task).final_defaults(False)
  settings.update(lm_units=128, epochs=1, batch_size=20, dropout=0.0)
  settings.update(overrides)
  return final_training.FinalTrainingConfig(
      task=task, data_dir=_DATA.value, output_dir=str(out_dir / "nas_train" / arch_id),
      seed=_train_seed(), **settings)


def plan(archs, sides, done, interleave):
  """The (side index, arch id, arch) still to train, in training order.

  Args:
    archs: [(id, arch)] in the study's order.
    sides: Names of the sides to run, in order (e.g. ("proxy", "reference")).
    done: One set of finished ids per side (read from its jsonl file).
    interleave: Architecture-major order (proxy then reference of each architecture)
      instead of side-major (every proxy, then every reference).

  Returns:
    A list of ``(k, arch_id, arch)`` with ``k`` an index into ``sides``.
  """
  if interleave:
    return [(k, i, a) for i, a in archs for k in range(len(sides)) if i not in done[k]]
  return [(k, i, a) for k in range(len(sides)) for i, a in archs if i not in done[k]]


def _train_seed() -> int:
  return _SEED.value if _TRAIN_SEED.value is None else _TRAIN_SEED.value


def train_one(side, arch_id, arch, config, path, data):
  """Trains one architecture and appends its record to ``path`` (at once: resumable).

  ``config`` is a child's config, or a function ``arch_id -> FinalTrainingConfig`` for
  a reference trained by ``nas_train``'s code.
  """
  if callable(config):
    m = _train_final(arch, config(arch_id))
  else:
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    m = child_training.train_and_evaluate(arch, data, config, seed=_train_seed())
  metrics = {key: v for key, v in m.items() if key != "error" or v}
  if _TASK.value == "ptb":
    metrics["reward"] = rewards.ptb_reward(m.get("val_perplexity", float("nan")))
  else:
    metrics["reward"] = rewards.cifar_reward(m.get("val_accuracy_history", []),
                                             config.reward_epochs)
  record = {"id": arch_id, "side": side, **metrics}
  with open(path, "a") as f:
    f.write(json.dumps(record, allow_nan=True) + "\n")
  return m


def _train_final(arch, config) -> dict:
  """One cell through ``nas_train``'s training (restarts included), as a record."""
  start = time.monotonic()
  try:
    m = tasks.get(_TASK.value).train_final(arch, config)
  except Exception as e:  # pylint: disable=broad-except
    return {"status": "failed", "error": f"{type(e).__name__}: {e}",
            "train_seconds": time.monotonic() - start}
  ppl = m.get("val_perplexity")
  ok = ppl is not None and np.isfinite(ppl)
  return {"status": "ok" if ok else "nan", "val_perplexity": ppl,
          "test_perplexity": m.get("test_perplexity"), "lr_used": m.get("lr_used"),
          "attempts": m.get("attempts"), "restarts": m.get("restarts"),
          "train_seconds": time.monotonic() - start}


def run_sides(sides, archs, data, interleave):
  """Trains what is missing of each ``(side, config, path)``, resuming from the files."""
  done = [set(_read(path)) for _, _, path in sides]
  for (side, config, path), d in zip(sides, done):
    logging.info("%s: %d architectures, %d done, config %s", path.name, len(archs),
                 len(d), config)
  todo = plan(archs, [side for side, _, _ in sides], done, interleave)
  for n, (k, arch_id, arch) in enumerate(todo):
    side, config, path = sides[k]
    m = train_one(side, arch_id, arch, config, path, data)
    logging.info("%s %d/%d %s: %s %s in %.0f s (attempts %s)", side, n + 1, len(todo),
                 arch_id, m["status"],
                 {key: m.get(key) for key in ("val_perplexity", "val_accuracy")
                  if key in m}, m["train_seconds"], m.get("attempts"))


def run_zero_cost(archs, data, path, batch_size):
  """Appends the zero-cost scores of every architecture not yet in ``path``."""
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf import children  # pylint: disable=g-import-not-at-top
  from nas_tf import zero_cost  # pylint: disable=g-import-not-at-top
  done = _read(path)
  images, labels = next(iter(data.batched("train", batch_size, augment=False, shuffle=False)))
  for n, (arch_id, arch) in enumerate(archs):
    if arch_id in done:
      continue
    start = time.monotonic()
    keras.utils.set_random_seed(_train_seed())
    record = {"id": arch_id, "side": "zero_cost", "status": "ok"}
    try:
      model = children.build_cnn(arch, input_shape=tuple(images.shape[1:]),
                                 num_classes=len(data.class_names))
      record.update(zero_cost.score_model(model, images, labels))
    except children.ChildTooLargeError as e:
      record.update(status="too_large", error=str(e))
    except Exception as e:  # pylint: disable=broad-except
      # One broken architecture is a record, not the end of the study.
      logging.warning("zero_cost %s failed: %s", arch_id, e)
      record.update(status="failed", error=f"{type(e).__name__}: {e}")
    finally:
      keras.backend.clear_session()
    record["total_seconds"] = time.monotonic() - start
    with open(path, "a") as f:
      f.write(json.dumps(record, allow_nan=True) + "\n")
    logging.info("zero_cost %d/%d %s: %s", n + 1, len(archs), arch_id,
                 {k: round(v, 4) for k, v in record.items() if isinstance(v, float)})


def main(argv):
  del argv
  task = _TASK.value
  out_dir = _output_dir()
  out_dir.mkdir(parents=True, exist_ok=True)
  if _ANALYZE.value and (out_dir / "archs.jsonl").exists():  # the study's own list
    archs = [(a["id"], a["spec"]) for a in map(json.loads, (
        out_dir / "archs.jsonl").read_text().splitlines())]
    analyze(task, archs, out_dir, _reference_name(), _COMPARE.value)
    return
  archs = architectures(task, _N.value, _SEED.value, _SPECS.value, _FOUND.value)
  with open(out_dir / "archs.jsonl", "w") as f:
    for arch_id, arch in archs:
      f.write(json.dumps({"id": arch_id, "spec": arch if isinstance(arch, str) else
                          arch.to_dict(), "describe": arch if isinstance(arch, str) else
                          arch.describe()}) + "\n")
  if not _ANALYZE.value:
    if not _DATA.value:
      sys.exit("proxy_fidelity: error: --data_dir is required to train (or use --analyze)")
    if _THREADS.value:
      # Before any TensorFlow op runs: the pools are fixed once created. Lets the study
      # share a machine (one core each) with timings that do not depend on the neighbour.
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
      tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
    data = tasks.get(task).load_data(_DATA.value, seed=_train_seed())
    suffix = f"-{_PROXY_NAME.value}" if _PROXY_NAME.value else ""
    if _ONLY.value == "zero_cost":
      if task != "cifar10":
        sys.exit("proxy_fidelity: error: --only=zero_cost scores conv networks: use "
                 "--task=cifar10")
      run_zero_cost(archs, data, out_dir / f"zero_cost{suffix}.jsonl", _ZC_BATCH.value)
      analyze(task, archs, out_dir)
      return
    if _REF_TRAINER.value == "nas_train":
      if task != "ptb":
        sys.exit("proxy_fidelity: error: --reference_trainer=nas_train is for --task=ptb")
      overrides = json.loads(_REFERENCE.value)
      reference = lambda arch_id: nas_train_config(task, overrides, out_dir, arch_id)
    else:
      reference = reference_config(task, json.loads(_REFERENCE.value))
    sides = [("proxy", proxy_config(task, json.loads(_PROXY.value)),
              out_dir / f"proxy{suffix}.jsonl"),
             ("reference", reference,
              out_dir / f"reference{_suffix(_reference_name())}.jsonl")]
    sides = [s for s in sides if _ONLY.value in (None, s[0])]
    for _, config, path in sides:
      config_path = out_dir / f"{path.stem}.config.json"
      shown = config("ID") if callable(config) else config
      text = json.dumps(dataclasses.asdict(shown), indent=1)
      if path.exists() and config_path.exists() and config_path.read_text() != text:
        # Records of two configs in one file would be compared as one: say so loudly.
        logging.warning("%s was written with another config than %s now has",
                        path.name, config_path.name)
      config_path.write_text(text)
    run_sides(sides, shard(archs, _SHARD.value), data, _INTERLEAVE.value)
  analyze(task, archs, out_dir, _reference_name())


def _reference_name() -> str:
  if _REF_NAME.value is not None:
    return _REF_NAME.value
  return "nas_train" if _REF_TRAINER.value == "nas_train" else ""


if __name__ == "__main__":
  app.run(main)
