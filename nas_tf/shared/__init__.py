"""Weight-sharing child evaluation, ``--evaluation=shared`` (Pham et al. 2018, ENAS §2).

Zoph & Le (2017) train every sampled child from scratch; ENAS trains one
over-parameterised graph whose sub-graphs are the children and scores a sampled child
with the shared weights, with the same controller and REINFORCE.

* :mod:`nas_tf.shared.rnn` -- the shared tree cell and language model (ENAS §2.1-2.2);
* :mod:`nas_tf.shared.cnn` -- the shared macro convolutional network (ENAS §2.3);
* :mod:`nas_tf.shared.training` -- the shared LM's trainer and what both trainers share.

The search loop (:mod:`nas_tf.search.loop`) alternates shared-weight and controller
updates through :class:`nas_tf.search.evaluators.shared.SharedEvaluator`, writing the same
results log, checkpoints and summaries as every other search.
"""
