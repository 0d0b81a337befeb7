#!/usr/bin/env python3
"""Retrain a found architecture (Zoph & Le 2017, §4.1, §4.2): `nas_train`.

  nas_train --spec=runs/ptb-rl-seed0 --output_dir=final/ptb          # a search's best
  nas_train --spec=found_cell/spec.json --task=ptb --data_dir=ptb_data --output_dir=...

--spec is a spec JSON file (spec.json, best.json, an export dir) or a search output dir
(its --rank-th best). The task is the search's (or --task: any task nas_search takes,
e.g. --task=examples/custom_task.py:TASK). Without --data_dir it trains briefly on the
bundled testdata/.
Writes metrics.json (validation and test accuracy or perplexity), checkpoints,
TensorBoard logs and model.keras; rerun the same command to resume.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "nas_tf").is_dir() and str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

_SPEC = flags.DEFINE_string("spec", None, "Spec JSON file, export dir or search output dir.")
_CELL = flags.DEFINE_string("cell", None, "Instead of --spec: a task's baseline (ptb: "
                            "lstm (Zaremba's: no forget bias), lstm_forget_bias (Keras' "
                            "default), nascell; cifar10: resnet20), trained with its "
                            "recipe, to compare.")
_RANK = flags.DEFINE_integer("rank", 1, "With a search dir: which distinct architecture.")
_TASK = flags.DEFINE_string("task", None, "Task: a registered name (ptb, cifar10), "
                            "FILE.py:ATTR or package.module:ATTR. Default: the search's "
                            "task, else the one registered task of the spec's kind.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "PTB dir or CIFAR-10 dir/.tar.gz/'tfds'. "
                                "Unset: tiny bundled testdata.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where results go (resumable).")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Maximum epochs.")
_BATCH = flags.DEFINE_integer("batch_size", None, "Minibatch size.")
_OPT = flags.DEFINE_enum("optimizer", None, ["momentum", "sgd", "adam"], "Optimizer.")
_LR = flags.DEFINE_float("learning_rate", None, "Initial learning rate.")
_SCHEDULE = flags.DEFINE_enum("lr_schedule", None, ["constant", "cosine", "step", "decay_after"],
                              "'decay_after': Zaremba et al.'s PTB schedule (constant for "
                              "--lr_decay_start epochs, then x factor per epoch).")
_DECAY_START = flags.DEFINE_integer("lr_decay_start", None, "decay_after: epochs at full lr.")
_INIT = flags.DEFINE_float("init_scale", None, "PTB: uniform init range (0.1; 0 = Keras "
                           "default initialisers).")
_REDUCTION = flags.DEFINE_enum("loss_reduction", None, ["sum", "mean"], "PTB: loss summed "
                               "over the BPTT window (Zaremba) or averaged over tokens.")
_CARRY = flags.DEFINE_boolean("carry_state", None, "PTB: carry the state across windows.")
_DECAY_EVERY = flags.DEFINE_integer("lr_decay_every", None, "Step schedule: epochs per decay.")
_DECAY_FACTOR = flags.DEFINE_float("lr_decay_factor", None, "Step schedule: decay factor.")
_WD = flags.DEFINE_float("weight_decay", None, "Weight decay (paper CIFAR-10: 1e-4).")
_CLIP = flags.DEFINE_float("clipnorm", None, "Global gradient-norm clip (0 = off).")
_DROPOUT = flags.DEFINE_float("dropout", None, "Dropout (PTB: non-recurrent; CIFAR: head).")
_TIE = flags.DEFINE_boolean("tie_embeddings", None, "PTB: shared input/output embeddings.")
_UNITS = flags.DEFINE_integer("units", None, "PTB: hidden size (field lm_units).")
_LAYERS = flags.DEFINE_integer("num_layers", None, "PTB: recurrent layers (field lm_layers).")
_BPTT = flags.DEFINE_integer("num_steps", None, "PTB: truncated-BPTT length.")
_AUGMENT = flags.DEFINE_boolean("augment", None, "CIFAR-10: random crops and flips.")
_VAL_SIZE = flags.DEFINE_integer("validation_size", None, "CIFAR-10 held-out images.")
_PATIENCE = flags.DEFINE_integer("early_stopping_patience", None, "0 = no early stopping.")
_SPE = flags.DEFINE_integer("steps_per_epoch", None, "Cap on steps per epoch.")
_RETRIES = flags.DEFINE_integer("divergence_retries", None, "PTB: goes on at 1/4 of the "
                                "rate (from the last epoch) when training diverges or is "
                                "worse than the unigram model (0: a divergence is an error).")
_COLLAPSE = flags.DEFINE_float("collapse_margin", None, "PTB: restart, as on a divergence, a "
                               "run that learned and rose back above the unigram model by "
                               "this many nats above its best (default 0.5; 0 = off).")
_WORSEN = flags.DEFINE_float("worsen_margin", None, "PTB: undo an epoch whose validation "
                             "perplexity is this fraction above the last one's and go on at "
                             "1/4 of the rate (default 0.1; 0 = off).")
_UNROLL = flags.DEFINE_boolean("unroll", None, "PTB: unroll the time loop (same maths).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of init, shuffling, augmentation, split.")
_CACHE = flags.DEFINE_string("cache_dir", None, "CIFAR-10 decoded-array cache.")

_FIELDS = ("epochs", "batch_size", "optimizer", "learning_rate", "lr_schedule",
           "lr_decay_every", "lr_decay_factor", "weight_decay", "clipnorm", "dropout",
           "tie_embeddings", "units", "num_layers", "num_steps", "augment",
           "validation_size", "early_stopping_patience", "steps_per_epoch", "lr_decay_start",
           "init_scale", "loss_reduction", "carry_state", "divergence_retries", "collapse_margin",
           "worsen_margin", "unroll")
_RENAMED = {"units": "lm_units", "num_layers": "lm_layers"}  # flag -> config field
_TF_LOGS = flags.DEFINE_boolean("tf_logs", False, "Show TensorFlow's C++ start-up lines "
                                "(CUDA probes, oneDNN notices), hidden by default.")

def _load_spec():
  """The spec from --spec (file, export dir or search dir) and the search's task, if any."""
  from nas_tf import export, specs  # pylint: disable=g-import-not-at-top
  if _CELL.value:
    return _CELL.value, None
  path = _SPEC.value
  if os.path.isdir(path) and os.path.exists(os.path.join(path, export.RESULTS_FILENAME)):
    record = export.select_record(path, _RANK.value)
    return specs.from_dict(record["spec"]), export.search_task(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"--spec {path!r} does not exist")
  return export.load_spec_file(path), None


def main(argv):
  if len(argv) > 1:
    sys.exit(f"nas_train: error: unexpected arguments {argv[1:]}")
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  with cli.one_line_errors("nas_train"), cli.quiet_tensorflow(not _TF_LOGS.value):
    spec, search_task = _load_spec()
    from nas_tf import tasks  # pylint: disable=g-import-not-at-top
    from nas_tf.training import final as ft  # pylint: disable=g-import-not-at-top
    ref = _TASK.value or search_task
    task = tasks.resolve(ref) if ref else tasks.for_spec(spec)
    if not task.trains_children:
      raise ValueError(f"task {task.name!r} has no network to retrain (its children are "
                       "scored without training one)")
    task.check_spec(spec)
    tiny = _DATA_DIR.value is None
    if tiny and not task.testdata:
      raise ValueError(f"task {task.name!r} has no bundled testdata: give --data_dir")
    data_dir = _DATA_DIR.value or str(_ROOT / "testdata" / task.testdata)
    settings = task.final_defaults(tiny)
    settings.update({_RENAMED.get(k, k): flags.FLAGS[k].value for k in _FIELDS
                     if flags.FLAGS[k].value is not None})
    if settings.get("init_scale") == 0:
      settings["init_scale"] = None  # --init_scale=0: Keras' default initialisers
    name = f"{task.name}-{_CELL.value}" if _CELL.value else task.name
    output_dir = _OUTPUT_DIR.value or f"runs/final-{name}-seed{_SEED.value}"
    config = ft.FinalTrainingConfig(task=task.ref, data_dir=data_dir, output_dir=output_dir,
                                    seed=_SEED.value, cache_dir=_CACHE.value, **settings)
    if tiny:
      logging.info("No --data_dir: a TINY final training on the bundled %s (a smoke "
                   "test, not a result).", data_dir)
    metrics = task.train_final(spec, config)
  metric = task.metric[len("val_"):] if task.metric.startswith("val_") else task.metric
  logging.info("%s: validation %s %.4g, test %s %.4g; metrics in %s/metrics.json",
               metrics["describe"], metric, metrics.get(f"val_{metric}", float("nan")),
               metric, metrics.get(f"test_{metric}", float("nan")), output_dir)
  from nas_tf.export import trained as export_trained  # pylint: disable=g-import-not-at-top
  logging.info("Next, export it with its trained weights:  %s",
               export_trained.next_command(output_dir))


def run():
  from nas_tf import tasks  # pylint: disable=g-import-not-at-top
  for name in _FIELDS:  # each task's default, for --help (the flags' own are None)
    flags.FLAGS[name].help += tasks.final_defaults_help(_RENAMED.get(name, name))
  flags.mark_flags_as_mutual_exclusive(["spec", "cell"], required=True)
  app.run(main)


if __name__ == "__main__":
  run()
