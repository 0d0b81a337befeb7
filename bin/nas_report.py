#!/usr/bin/env python3
"""A search as one self-contained HTML page (no server, no internet): `nas_report`.

  nas_report --results=runs/ptb-rl                                # -> runs/ptb-rl/report.html
  nas_report --results=runs/nb-rl,runs/nb-random,runs/nb-evolution --output=compare.html

Best-reward curves (side by side for several runs), rewards per controller step,
controller entropy, the depth schedule, the Pareto front (metric vs parameters and
latency) and the top architectures with their pictures. nas_search writes one at the end.
"""

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "nas_tf").is_dir() and str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout

from absl import app, flags, logging  # pylint: disable=g-import-not-at-top

_RESULTS = flags.DEFINE_list("results", None, "Search output dirs, comma-separated.")
_OUTPUT = flags.DEFINE_string("output", None, "The HTML file (default: report.html in the "
                              "first run's directory).")
_TOP = flags.DEFINE_integer("top", 5, "Architectures listed per run.")
_PICTURES = flags.DEFINE_boolean("pictures", True, "Draw the listed architectures.")


def main(argv):
  if len(argv) > 1:
    sys.exit(f"nas_report: error: unexpected arguments {argv[1:]}")
  from nas_tf import cli  # pylint: disable=g-import-not-at-top
  with cli.one_line_errors("nas_report"):
    from nas_tf import report  # pylint: disable=g-import-not-at-top
    path = _OUTPUT.value or os.path.join(_RESULTS.value[0], report.REPORT_FILE)
    report.write_report(_RESULTS.value, path, top=_TOP.value, pictures=_PICTURES.value)
  logging.info("Report written: %s (open it in a browser)", path)


def run():
  flags.mark_flag_as_required("results")
  app.run(main)


if __name__ == "__main__":
  run()
