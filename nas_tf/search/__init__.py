"""Architecture search: one loop (:mod:`.loop`) and its seams.

* :mod:`.samplers` -- the search strategy (REINFORCE controller, random, evolution, BO);
* :mod:`.evaluators` -- where children are scored (inline, worker processes, a
  tf.distribute cluster, shared weights; a task may bring its own, e.g. a table lookup);
* the task (:mod:`nas_tf.tasks`) -- what is searched and how a child is judged;
* :mod:`.outputs`, :mod:`.log`, :mod:`.records` -- the output directory, the results
  log (`results.jsonl`, the evaluation cache) and one child's record.

``from nas_tf import search; search.run(config)`` runs or resumes a search.
"""

from nas_tf.search.loop import make_space, run
from nas_tf.search.outputs import (CHECKPOINT_DIR, CONFIG_FILE, STATE_FILE,
                                   ConfigMismatchError, OutputDirLock, commit_step,
                                   load_state, prepare_output_dir)
from nas_tf.search.records import check_not_all_broken, step_scalars
from nas_tf.search.samplers import make_sampler

__all__ = ["run", "make_space", "make_sampler", "load_state", "prepare_output_dir",
           "commit_step", "check_not_all_broken", "step_scalars", "OutputDirLock",
           "ConfigMismatchError", "CONFIG_FILE", "STATE_FILE", "CHECKPOINT_DIR"]
