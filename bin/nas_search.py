#!/usr/bin/env python3
"""Architecture search (Zoph & Le 2017): `nas_search --task=ptb|cifar10|nasbench201`.

No --data_dir: a tiny search on testdata/. Same --output_dir: resume. Paper recipes:
--flagfile=examples/paper_{ptb,cifar10}.flags (README)."""

import dataclasses
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads, here and in workers
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "nas_tf").is_dir() and str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout
from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

from nas_tf import config as config_lib, presets, tasks  # pylint: disable=g-import-not-at-top

_TASK = flags.DEFINE_enum("task", None, tasks.names(), "'ptb': a recurrent cell (§4.2); "
                          "'cifar10': a conv network (§4.1); 'nasbench201': table lookup.")
_SEARCH = flags.DEFINE_enum("search", "rl", config_lib.SEARCH_METHODS, "'rl': controller + "
                            "REINFORCE; 'random'; 'evolution' (regularized); 'bo' (Optuna TPE).")
_P = flags.DEFINE_integer("population_size", None, "Evolution: population P.")
_S = flags.DEFINE_integer("tournament_size", None, "Evolution: tournament sample S.")
_NB = flags.DEFINE_enum("nasbench_dataset", None, ["cifar10", "cifar100", "imagenet"],
                        "nasbench201: the table's dataset (default cifar10).")
_EVAL = flags.DEFINE_enum("evaluation", "independent", config_lib.EVALUATION_MODES,
                          "Children trained alone (paper) or 'shared' weights (ENAS).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "PTB dir with ptb.{train,valid,test}.txt, or "
                                "CIFAR-10 dir / .tar.gz / 'tfds'. Unset: tiny bundled testdata.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Results dir (default runs/TASK-SEARCH-"
                                  "seedN). Rerun with the same dir to resume.")
_MAX_CHILDREN = flags.DEFINE_integer("max_children", None, "Budget: architectures sampled.")
_M = flags.DEFINE_integer("children_per_step", None, "m: architectures per controller step.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of sampling, data split and child init.")
_EPOCHS = flags.DEFINE_integer("child_epochs", None, "Training epochs per child.")
_BATCH = flags.DEFINE_integer("child_batch_size", None, "Child minibatch size.")
_OPT = flags.DEFINE_enum("child_optimizer", None, ["momentum", "sgd", "adam"],
                         "Child optimizer (paper CIFAR-10: Nesterov momentum).")
_LR = flags.DEFINE_float("child_lr", None, "Child learning rate.")
_WD = flags.DEFINE_float("child_weight_decay", None, "Child weight decay (paper: 1e-4).")
_CLIP = flags.DEFINE_float("child_clipnorm", None, "Child global gradient-norm clip (PTB: 5).")
_SET = flags.DEFINE_multi_string("set", [], "SECTION.FIELD=VALUE: any config field, e.g. "
                                 "child.max_params=25e6 (repeatable; README lists them).")
_DRY = flags.DEFINE_boolean("dry_run", False, "Print the resolved config.json and exit.")
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
_ACCUM = flags.DEFINE_integer("grad_accumulation", 1, "Controller grads summed per apply.")
_ISOLATION = flags.DEFINE_enum("isolation", "process", config_lib.ISOLATION_MODES,
                               "'process': children in recycled workers; 'inline': in-process.")
_PARALLEL = flags.DEFINE_integer("parallel_children", 1, "Children trained at once.")
_THREADS = flags.DEFINE_integer("intra_op_threads", 0, "TF threads per child (0 = default).")
_VAL_SIZE = flags.DEFINE_integer("validation_size", None, "CIFAR held-out images (5000).")
_CACHE = flags.DEFINE_string("cache_dir", None, "Where a CIFAR .tar.gz is extracted.")
_CLUSTER = flags.DEFINE_string("cluster", "local", "§3.3: 'local', 'localhost:N' (N workers "
                               "here), 'tf_config' (chief of a TF_CONFIG cluster).")
_NUM_PS = flags.DEFINE_integer("num_ps", 2, "S: parameter servers (localhost:N).")
_REPLICAS = flags.DEFINE_integer("num_replicas", 1, "K: controller replicas, m children each.")
_WORKER_THREADS = flags.DEFINE_integer("worker_threads", 1, "TF threads per server (localhost).")


def _value(name):
  """The flag's value if set on the command line, else the task's default."""
  value = flags.FLAGS[name].value
  if value is None:
    return presets.search_defaults(_TASK.value, tiny=_DATA_DIR.value is None).get(name)
  if name.endswith("_examples"):  # counts that also take 'all' (the whole split)
    return "all" if value.lower() == "all" else int(float(value))
  return value


def make_config() -> config_lib.SearchConfig:
  """Converts the flags, once, into a SearchConfig."""
  task, tiny = _TASK.value, _DATA_DIR.value is None
  data_dir = _DATA_DIR.value or str(_ROOT / "testdata" / presets.TESTDATA[task])
  evolution = config_lib.EvolutionConfig(**{k: v for k, v in dict(
      population_size=_value("population_size"), sample_size=_value("tournament_size")).items()
      if v is not None})
  child = dataclasses.replace(config_lib.ChildTrainingConfig(), **{k: v for k, v in dict(
      epochs=_value("child_epochs"), batch_size=_value("child_batch_size"),
      optimizer=_value("child_optimizer"), learning_rate=_value("child_lr"),
      clipnorm=_value("child_clipnorm"), weight_decay=_value("child_weight_decay"),
      max_train_examples=_value("max_train_examples"),
      max_eval_examples=_value("max_eval_examples"), steps_per_epoch=_value("steps_per_epoch"),
      lm_units=_value("lm_units"), num_steps=_value("num_steps"), dropout=_value("dropout"),
      tie_embeddings=_TIE.value).items() if v is not None and v != "all"})
  child = dataclasses.replace(child, **{k: None for k in (
      "max_train_examples", "max_eval_examples") if _value(k) == "all"})
  space = presets.search_space(task, rnn_base=_BASE.value, pooling=_POOL.value,
                                strides=[int(s) for s in _STRIDES.value])
  lr, seed = _value("controller_lr") or 6e-4, _SEED.value
  return config_lib.apply_overrides(config_lib.SearchConfig(
      task=task, data_dir=data_dir, search=_SEARCH.value, seed=seed, evaluation=_EVAL.value,
      output_dir=_OUTPUT_DIR.value or presets.default_output_dir(task, _SEARCH.value, seed,
                                                                 _EVAL.value, tiny),
      max_children=_value("max_children"), children_per_step=_value("children_per_step"),
      validation_size=_value("validation_size"), cache_dir=_CACHE.value, space=space,
      depth=config_lib.DepthSchedule(start=_value("start_layers") or 6,
                                     increment=_INC.value, every=_EVERY.value),
      controller=config_lib.ControllerConfig(
          learning_rate=lr, baseline_decay=_DECAY.value, entropy_weight=_ENTROPY.value,
          grad_accumulation=_ACCUM.value),
      child=child, evolution=evolution, task_options={"dataset": _NB.value} if _NB.value else {},
      runtime=config_lib.RuntimeConfig(
          isolation=_ISOLATION.value, parallel_children=_PARALLEL.value,
          intra_op_threads=_THREADS.value)), _SET.value)


def main(_):
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  with cli.one_line_errors("nas_search"):
    config = make_config()
    if _DRY.value:
      return print(config.to_json())
    from nas_tf import distributed_cluster as dc, search  # pylint: disable=g-import-not-at-top
    tasks.get(config.task).check_data(config.data_dir, bundled=_DATA_DIR.value is None)
    logging.info("Search config: %s", config.to_json())
    cluster = dc.ClusterConfig.parse(
        _CLUSTER.value, num_ps=_NUM_PS.value, num_replicas=_REPLICAS.value,
        worker_threads=_WORKER_THREADS.value,
        tf_config=json.loads(os.environ.get("TF_CONFIG") or "{}") or None)
    summary = search.run(config, cluster=cluster)
  best = summary["best"] or {"reward": float("nan"), "describe": "none"}
  logging.info("Results in %s (results.jsonl, summary.txt, best.json). Best: reward %.5f  %s",
               config.output_dir, best["reward"], best["describe"])


def run():
  flags.mark_flag_as_required("task")
  app.run(main)


if __name__ == "__main__":
  run()
