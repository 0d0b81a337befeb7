#!/usr/bin/env python3
"""Architecture search (Zoph & Le 2017): `nas_search --task=ptb|cifar10|FILE.py:ATTR`.

No --data_dir: a tiny search on testdata/. Same --output_dir: resume. Paper recipes:
--flagfile=examples/paper_{ptb,cifar10}.flags (docs/USAGE.md)."""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads, here and in workers
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "nas_tf").is_dir() and str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout
from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

from nas_tf import cli, config as config_lib, config_edits, search_space, tasks  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_string("task", None, "'ptb' (§4.2), 'cifar10' (§4.1), 'nasbench201' "
                            "(table), an installed task, FILE.py:ATTR or package.module:ATTR.")
_SEARCH = flags.DEFINE_enum("search", "rl", config_lib.SEARCH_METHODS, "'rl': controller + "
                            "REINFORCE; 'random'; 'evolution' (regularized); 'bo' (Optuna TPE).")
_P = flags.DEFINE_integer("population_size", None, "Evolution: population P.")
_S = flags.DEFINE_integer("tournament_size", None, "Evolution: tournament sample S.")
_NB = flags.DEFINE_enum("nasbench_dataset", None, ["cifar10", "cifar100", "imagenet"],
                        "nasbench201: the table's dataset (default cifar10).")
_EVAL = flags.DEFINE_enum("evaluation", "independent", config_lib.EVALUATION_MODES,
                          "Children trained alone (paper), with 'shared' weights (ENAS), or "
                          "'zero_cost': scored untrained (CIFAR-10; --set zero_cost.score=).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Task data (README); unset: bundled testdata.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Results dir; rerun with it to resume "
                                  "(default runs/TASK-SEARCH-seedN[-tiny]).")
_MAX_CHILDREN = flags.DEFINE_integer("max_children", None, "Budget: architectures sampled.")
_M = flags.DEFINE_integer("children_per_step", None, "m: architectures per controller step.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of sampling, data split and child init.")
_EPOCHS = flags.DEFINE_integer("child_epochs", None, "Training epochs per child.")
_BATCH = flags.DEFINE_integer("child_batch_size", None, "Child minibatch size.")
_OPT = flags.DEFINE_enum("child_optimizer", None, ["momentum", "sgd", "adam"], "Child optimizer.")
_LR = flags.DEFINE_float("child_lr", None, "Child learning rate.")
_WD = flags.DEFINE_float("child_weight_decay", None, "Child weight decay (paper: 1e-4).")
_CLIP = flags.DEFINE_float("child_clipnorm", None, "Child global gradient-norm clip (PTB: 5).")
_SET = flags.DEFINE_multi_string("set", [], "SECTION.FIELD=VALUE: any field of config.json, "
                                 "e.g. child.max_params=25e6 (--dry_run shows them all).")
_DRY = flags.DEFINE_boolean("dry_run", False, "Print the resolved config.json and exit.")
_CONFIG = flags.DEFINE_string("config", None, "Replay RUN/config.json (flags given override).")
_TRAIN_N = flags.DEFINE_string("max_train_examples", None, "Child train images/tokens, or all.")
_EVAL_N = flags.DEFINE_string("max_eval_examples", None, "Reward on this many, or all.")
_SPE = flags.DEFINE_integer("steps_per_epoch", None, "Cap on child steps per epoch.")
_LM_UNITS = flags.DEFINE_integer("lm_units", None, "PTB child hidden size.")
_BPTT = flags.DEFINE_integer("num_steps", None, "PTB child truncated-BPTT length.")
_DROPOUT = flags.DEFINE_float("dropout", None, "PTB child dropout (non-recurrent).")
_TIE = flags.DEFINE_boolean("tie_embeddings", False, "PTB: share input/output embeddings.")
_BASE = flags.DEFINE_integer("rnn_base", 8, "PTB: leaves of the cell tree (power of 2).")
_LAYERS = flags.DEFINE_integer("start_layers", None, "CIFAR: starting depth (paper: 6).")
_INC = flags.DEFINE_integer("layer_increment", 2, "CIFAR: layers added per depth increase.")
_EVERY = flags.DEFINE_integer("increment_every", 1600, "CIFAR: architectures per increase.")
_STRIDES = flags.DEFINE_list("strides", ["1"], "CIFAR stride choices, e.g. 1,2,3.")
_POOL = flags.DEFINE_boolean("pooling", False, "CIFAR: allow max/avg pooling layers (v3).")
_CTRL_LR = flags.DEFINE_float("controller_lr", None, "Adam lr (paper: 6e-4 CIFAR, 5e-4 PTB).")
_ENTROPY = flags.DEFINE_float("entropy_weight", 0.0, "Controller entropy bonus.")
_DECAY = flags.DEFINE_float("baseline_decay", 0.95, "EMA reward-baseline decay.")
_ACCUM = flags.DEFINE_integer("grad_accumulation", 1, "Controller grads averaged per apply.")
_ISOLATION = flags.DEFINE_enum("isolation", "process", config_lib.ISOLATION_MODES,
                               "'process': children in recycled workers; 'inline': in-process.")
_PARALLEL = flags.DEFINE_integer("parallel_children", 1, "Children trained at once.")
_THREADS = flags.DEFINE_integer("intra_op_threads", 0, "TF threads per child (0 = default).")
_VAL_SIZE = flags.DEFINE_integer("validation_size", None, "CIFAR held-out images (5000).")
_CACHE = flags.DEFINE_string("cache_dir", None, "Where a CIFAR .tar.gz is extracted.")
_CLUSTER = flags.DEFINE_string("cluster", "local", "'local', 'localhost:N', 'tf_config' (§3.3).")
_NUM_PS = flags.DEFINE_integer("num_ps", 2, "S: parameter servers (localhost:N).")
_REPLICAS = flags.DEFINE_integer("num_replicas", 1, "K: controller replicas, m children each.")
_WORKER_THREADS = flags.DEFINE_integer("worker_threads", 1, "TF threads per server (localhost).")
_T_PARAMS = flags.DEFINE_float("target_params", None, "Soft constraint (MnasNet): reward x "
                               "(params / target)^cost_exponent.")
_T_LAT = flags.DEFINE_float("target_latency_ms", None, "Soft constraint on batch-1 inference "
                            "latency measured here: reward x (latency / target)^w.")
_T_MACS = flags.DEFINE_float("target_macs", None, "Soft constraint on multiply-accumulates per "
                             "image (CIFAR-10 conv children): reward x (macs / target)^w.")
_W = flags.DEFINE_float("cost_exponent", None, "w <= 0 of the soft constraint (MnasNet: -0.07).")
_TF_LOGS = flags.DEFINE_boolean("tf_logs", False, "Show TensorFlow's C++ start-up noise.")
_REPORT = flags.DEFINE_boolean("report", True, "Write report.html (nas_report) at the end.")
_MAX_LAT = flags.DEFINE_float("max_latency_ms", None, "Hard cap: slower children not trained.")
_PRUNER = flags.DEFINE_enum("pruner", None, config_lib.PRUNERS, "Stop hopeless children "
                            "early ('observe': record rung values, stop none).")
FIELDS = cli.SEARCH_FLAG_FIELDS  # flag -> the config field it sets

for _name, _field in FIELDS.items():  # what each task sets when the flag is not given
  flags.FLAGS[_name].help += tasks.defaults_help(_field)


def make_config() -> config_lib.SearchConfig:
  """Flags -> SearchConfig, once: preset (or --config) < flags given < --set."""
  from nas_tf import api  # pylint: disable=g-import-not-at-top
  replay = _CONFIG.value and config_lib.SearchConfig.from_json(pathlib.Path(
      _CONFIG.value).read_text())  # a run replayed: only the flags given here change it
  given = {FIELDS[n]: cli.flag_value(n, flags.FLAGS[n].value) for n in FIELDS
           if (flags.FLAGS[n].present if replay else flags.FLAGS[n].value is not None)}
  task = tasks.resolve(replay.task if replay else _TASK.value)
  if replay and _TASK.value and tasks.resolve(_TASK.value) is not task:
    raise ValueError(f"--config searches task {replay.task!r}, not --task={_TASK.value}")
  if task.paper_space and (not replay or any(flags.FLAGS[n].present for n in (
      "rnn_base", "pooling", "strides"))):
    given["space"] = search_space.paper_space(task.space_kind, _BASE.value,
                                              [int(s) for s in _STRIDES.value], _POOL.value)
  given.update({"task_options": {"dataset": _NB.value}} if _NB.value else {})
  if replay:
    config = api.with_given(replay, {**given, **{k: v for k, v in (
        ("output_dir", _OUTPUT_DIR.value), ("data_dir", _DATA_DIR.value)) if v}})
  else:
    config = api.make_config(_TASK.value, _DATA_DIR.value, _OUTPUT_DIR.value, settings=given)
  return config_edits.apply_overrides(config, _SET.value)


def main(_):
  with cli.one_line_errors("nas_search"), cli.quiet_tensorflow(not _TF_LOGS.value):
    config = make_config()
    if _DRY.value:
      return print(config.to_json())
    from nas_tf import cluster as dc, search  # pylint: disable=g-import-not-at-top
    task = tasks.resolve(config.task)
    task.check_data(config.data_dir, bundled=_DATA_DIR.value is None)
    logging.info("Search: task %s, %s, %d children (m=%d), data %s -> %s (every setting: "
                 "config.json there)", config.task, config.search, config.max_children,
                 config.children_per_step, config.data_dir, config.output_dir)
    cluster = dc.ClusterConfig.parse(
        _CLUSTER.value, num_ps=_NUM_PS.value, num_replicas=_REPLICAS.value,
        worker_threads=_WORKER_THREADS.value,
        tf_config=json.loads(os.environ.get("TF_CONFIG") or "{}") or None)
    summary = search.run(config, cluster=cluster)
  best = summary["best"] or {"reward": float("nan"), "describe": "none"}
  logging.info("Results in %s (results.jsonl, summary.txt, best.json). Best: reward %.5f  %s",
               config.output_dir, best["reward"], best["describe"])
  from nas_tf import report  # pylint: disable=g-import-not-at-top
  for line in report.after_search(config.output_dir, task, _DATA_DIR.value,
                                  report=_REPORT.value and bool(summary["best"])):
    logging.info(line)


def run():
  flags.register_multi_flags_validator(["task", "config"], lambda d: d["task"] or d["config"],
                                       "--task is required (or --config=RUN/config.json)")
  app.run(main)


if __name__ == "__main__":
  run()
