#!/usr/bin/env python3
"""A parameter-server or worker task of a distributed search (paper §3.3): `nas_worker`.

Reads TF_CONFIG, as set by the user or an orchestrator for each task, e.g.

  TF_CONFIG='{"cluster": {"chief": ["h0:2222"], "ps": ["h1:2222"], "worker": ["h2:2222"]},
              "task": {"type": "worker", "index": 0}}' nas_worker

and serves that task until killed. The chief runs `nas_search --cluster=tf_config` with
its own TF_CONFIG (task type 'chief'); see docs/DISTRIBUTED.md.
"""

import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_ROOT = pathlib.Path(__file__).resolve().parent.parent
if (_ROOT / "nas_tf").is_dir() and str(_ROOT) not in sys.path:
  sys.path.insert(0, str(_ROOT))  # running from a checkout

from absl import app, flags  # pylint: disable=g-import-not-at-top

from nas_tf import cluster as distributed_cluster  # pylint: disable=g-import-not-at-top

_THREADS = flags.DEFINE_integer("threads", 0, "Intra/inter-op threads of this task (0 = TF "
                                "default; 1 when several tasks share a small machine).")
_SEARCH_TASK = flags.DEFINE_string("task", None, "The search's task, as nas_search names it "
                                   "(e.g. examples/custom_task.py:TASK): loaded before "
                                   "serving, so a worker of a cluster searching a task of "
                                   "your own has its code (custom ops and layers) and a "
                                   "reference that does not load fails here, not mid-search.")


def main(argv):
  del argv
  try:
    tf_config = json.loads(os.environ.get("TF_CONFIG", ""))
    task = tf_config["task"]
    job, index = task["type"], int(task.get("index", 0))
    cluster = tf_config["cluster"]
  except (ValueError, KeyError, TypeError) as e:
    sys.exit(f"nas_worker: error: TF_CONFIG must be JSON with 'cluster' and 'task' "
             f"({{'type': 'ps'|'worker', 'index': i}}): {e}")
  if job not in ("ps", "worker"):
    sys.exit(f"nas_worker: error: task type must be 'ps' or 'worker', got {job!r} (the "
             "chief runs nas_search --cluster=tf_config)")
  if _SEARCH_TASK.value:
    from nas_tf import cli, tasks  # pylint: disable=g-import-not-at-top
    with cli.one_line_errors("nas_worker"):
      tasks.resolve(_SEARCH_TASK.value)
  distributed_cluster.serve(cluster, job, index, threads=_THREADS.value)


if __name__ == "__main__":
  app.run(main)
