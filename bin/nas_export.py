#!/usr/bin/env python3
"""Export a found architecture for reuse (Zoph & Le 2017, §4.1, §4.2): `nas_export`.

  nas_export --results=runs/ptb-rl-seed0 --export_dir=found_cell          # the best
  nas_export --results=runs/ptb-rl-seed0 --rank=3 --export_dir=third      # 3rd distinct
  nas_export --spec=my_spec.json --export_dir=found_cell --units=200      # a spec file
  nas_export --trained=runs/final-ptb-seed0 --export_dir=ptb_model       # trained weights

--results and --spec export the architecture with fresh (seeded) weights: a search keeps
no weights. --trained exports what nas_train retrained, with its trained weights.

Writes spec.json, export.json (manifest with the SavedModel signatures), the SavedModel,
a .keras model and architecture.dot/.png. A cell's directory works with
`nas_tf.cells.load_cell(DIR, units=...)`; its SavedModel needs only TensorFlow.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "nas_tf").is_dir() and str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

_RESULTS = flags.DEFINE_string("results", None, "A nas_search --output_dir (results.jsonl).")
_RANK = flags.DEFINE_integer("rank", 1, "Which distinct architecture by reward; 1 = best.")
_SPEC = flags.DEFINE_string("spec", None, "A spec JSON file (or best.json) to export "
                            "instead of a ranked one.")
_TRAINED = flags.DEFINE_string("trained", None, "A finished nas_train --output_dir: export "
                               "the retrained model with its trained weights.")
_EXPORT_DIR = flags.DEFINE_string("export_dir", None, "Output directory.")
_UNITS = flags.DEFINE_integer("units", None, "RNN cell width (default: the search's "
                              "lm_units, else 64).")
_INPUT_DIM = flags.DEFINE_integer("input_dim", None, "RNN cell input width (default: units).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the (untrained) initial weights.")
_TASK = flags.DEFINE_string("task", None, "With --trained: the task (default: the one "
                            "nas_train recorded), e.g. examples/custom_task.py:TASK.")


_TF_LOGS = flags.DEFINE_boolean("tf_logs", False, "Show TensorFlow's C++ start-up lines "
                                "(CUDA probes, oneDNN notices), hidden by default.")

def main(argv):
  if len(argv) > 1:
    sys.exit(f"nas_export: error: unexpected arguments {argv[1:]}")
  given = [n for n in ("results", "spec", "trained") if flags.FLAGS[n].value]
  if not given or (_TRAINED.value and len(given) > 1):
    sys.exit("nas_export: error: give --trained=NAS_TRAIN_OUTPUT_DIR, or --results="
             "SEARCH_OUTPUT_DIR and/or --spec=FILE")
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  with cli.one_line_errors("nas_export"), cli.quiet_tensorflow(not _TF_LOGS.value):
    from nas_tf import tasks  # pylint: disable=g-import-not-at-top
    if _TRAINED.value:
      from nas_tf.export import trained as export_trained  # pylint: disable=g-import-not-at-top
      run = export_trained.read_training(_TRAINED.value)
      task = tasks.resolve(_TASK.value or run["config"]["task"])
      manifest = export_trained.export_trained(task, _TRAINED.value, _EXPORT_DIR.value)
      logging.info("Validation %s; load the SavedModel with tf.saved_model.load(%r) "
                   "(signatures in export.json)",
                   {k: v for k, v in manifest["trained"].items() if k.startswith("val_")},
                   os.path.join(_EXPORT_DIR.value, manifest["savedmodel"]))
      return
    from nas_tf import export  # pylint: disable=g-import-not-at-top
    manifest = export.export_from_results(
        _RESULTS.value, _EXPORT_DIR.value, rank=_RANK.value, spec_path=_SPEC.value,
        units=_UNITS.value, input_dim=_INPUT_DIM.value, seed=_SEED.value)
  # export_cell / export_cnn have said what they wrote, and where.
  if not (manifest.get("picture") or {}).get("png"):
    logging.warning("No PNG picture (install graphviz); architecture.dot is there.")


def run():
  flags.mark_flag_as_required("export_dir")
  app.run(main)


if __name__ == "__main__":
  run()
