"""Training children: one code path for every place a child network is trained.

* :mod:`.child` -- a search child: built, trained briefly and measured, never raising
  for a bad architecture (in this process, in worker processes, and the same recipe in
  cluster closures).
* :mod:`.lm` -- the language-model recipe of §4.2 (Zaremba et al. 2014): carried state,
  summed loss, decay, divergence and unigram rules, restarts at a lower rate.
* :mod:`.final` -- ``nas_train``: one architecture retrained to convergence, resumable.
* :mod:`.closures` -- a child as one retryable ``tf.distribute`` closure (§3.3).
* :mod:`.optimizers` -- the optimisers and learning-rate schedules all of them use.
* :mod:`.latency` -- a child's inference latency, for latency-aware objectives.
"""
