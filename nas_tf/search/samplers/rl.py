"""The controller RNN trained by REINFORCE with an EMA baseline (paper §3.2)."""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from nas_tf.search.samplers.base import Sampler, decode_all


class RLSampler(Sampler):
  """Samples from the controller; updates it by REINFORCE (optionally accumulated).

  ``update`` adds the step's policy gradient to accumulators and applies their mean every
  ``controller.grad_accumulation`` steps (the paper applies PTB gradients after 10
  accumulate). The controller, its Adam slots and the accumulators are checkpoint items;
  the baseline is JSON state.

  Tracing the update's graph (the controller unrolled over every decision, and its
  gradient) costs seconds, several times a steady-state step; it is done once per depth
  and number of rows, and started in a background thread when the loop announces such
  an update (``expect_update``, as the step's children start), so that it overlaps their
  training instead of delaying the step's commit. The number of rows is a static shape
  on purpose: with an unknown batch size every element-wise op's gradient builds
  broadcast-shape arithmetic, and the graph took about twice as long to trace and
  first-run (measured on the test suite's spaces, one loaded core: 5.3 -> 2.8 s for a
  10-slot cell, 8.3 -> 3.0 s for a 3-layer CNN). A budget's short last step gets its own
  graph, warmed up the same way. A warm-up whose update never comes (an interrupted
  search) only finishes its tracing.
  """

  name = "rl"
  can_draw = True

  def __init__(self, space, config, baseline_value: Optional[float] = None):
    super().__init__(space, config.seed)
    # TensorFlow is imported only when the controller is used: random search on a
    # process-isolated evaluator never needs it in the search process.
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from nas_tf import controller as controller_lib  # pylint: disable=g-import-not-at-top
    from nas_tf import reinforce  # pylint: disable=g-import-not-at-top
    self._tf, self._reinforce = tf, reinforce
    c = config.controller
    self.config = config
    self.controller = controller_lib.Controller(
        space, units=c.units, num_lstm_layers=c.num_lstm_layers, init_range=c.init_range,
        temperature=c.temperature, tanh_constant=c.tanh_constant, seed=config.seed,
        name="controller")
    self.optimizer = keras.optimizers.Adam(c.learning_rate)
    variables = self.controller.trainable_variables
    self.optimizer.build(variables)
    self.accumulators = [tf.Variable(tf.zeros_like(v), trainable=False) for v in variables]
    self.accumulated = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.baseline = reinforce.EMABaseline(decay=c.baseline_decay, value=baseline_value)
    self._accumulate_fns, self._apply_fn = {}, None
    # (depth, rows) -> the thread tracing that update graph, until joined.
    self._warmups: dict = {}
    self._warmed: set = set()  # (depth, rows) whose update graph was (or is being) warmed
    # A warm-up thread and the loop's update may both ask for a graph that does not exist
    # yet (a new shape's warm-up while another shape updates): one lock makes each graph
    # once. Running the graphs concurrently is safe: the dry run only adds exact zeros,
    # and variable updates are atomic.
    self._graphs_lock = threading.Lock()

  def sample(self, step: int, m: int, depth: Optional[int]):
    tokens, _, _ = self.controller.sample_tokens(
        m, seed=(self.config.seed, step), num_layers=depth)
    tokens = [tuple(t) for t in tokens.numpy().tolist()]
    return tokens, decode_all(self.space_at(depth), tokens)

  def expect_update(self, depth: Optional[int], rows: int) -> None:
    key = (depth, rows)
    if key not in self._warmed:  # once per shape: the graph stays warm afterwards
      self._warmed.add(key)
      # Not a daemon: Python ends daemon threads in the middle of whatever they run, and a
      # thread stopped inside TensorFlow aborts the process ("FATAL: exception not
      # rethrown"). An interrupted search therefore waits for the build to finish (seconds).
      self._warmups[key] = threading.Thread(target=self._trace_update, args=key,
                                            name="controller-trace", daemon=False)
      self._warmups[key].start()

  def _trace_update(self, depth: Optional[int], rows: int) -> None:
    """Builds the update graphs for ``depth`` and ``rows`` and runs the gradient graph
    once, on dummy rows with weight 0: TensorFlow optimises a graph (Grappler) on its
    first run, which for the unrolled controller costs several times the tracing. Weight
    0 adds exact zeros and counts nothing, so the run changes no state; the small apply
    graph is only traced."""
    tf = self._tf
    num_tokens = self.space_at(depth).num_tokens
    self._accumulate_fn(depth, rows)(tf.zeros([rows, num_tokens], tf.int32),
                                     tf.zeros([rows], tf.float32), tf.constant(0, tf.int64))
    self._apply_graph().get_concrete_function()

  def draw(self, n: int, depth: Optional[int], purpose: tuple) -> np.ndarray:
    # Seed pairs no search step uses ((seed, step) is step's own sample).
    seed = ((self.config.seed, -1 - purpose[1]) if purpose[0] == "train"
            else (self.config.seed, -(10**6)))
    tokens, _, _ = self.controller.sample_tokens(n, seed=seed, num_layers=depth)
    return tokens.numpy()

  def update(self, step, tokens, rewards, depth) -> dict:
    tf = self._tf
    advantages = self.baseline.advantages(rewards)
    baseline_before = self.baseline.value
    self.baseline.update(rewards)
    warmup = self._warmups.pop((depth, len(tokens)), None)
    if warmup is not None:
      warmup.join()  # its time counts as the controller's, like any update
    token_matrix = tf.constant(np.asarray(tokens, dtype=np.int32))
    loss, entropy = self._accumulate_fn(depth, len(tokens))(token_matrix,
                                               tf.constant(advantages, tf.float32),
                                               tf.constant(1, tf.int64))
    applied = int(self.accumulated.numpy()) >= self.config.controller.grad_accumulation
    if applied:
      self._apply_graph()()
    return {"loss": float(loss), "baseline": self.baseline.value,
            "baseline_before": baseline_before, "applied": applied,
            "entropy": float(entropy)}

  def _accumulate_fn(self, depth: Optional[int], rows: int):
    """``(tokens, advantages, weight) -> (loss, mean entropy)``, adding ``weight`` times
    the REINFORCE gradient to the accumulators and ``weight`` to their count (weight 0: a
    dry run). One graph per depth and number of rows, traced once, so a step costs
    milliseconds rather than an eager pass through the controller."""
    with self._graphs_lock:
      if (depth, rows) not in self._accumulate_fns:
        self._accumulate_fns[depth, rows] = self._make_accumulate_fn(depth, rows)
      return self._accumulate_fns[depth, rows]

  def _make_accumulate_fn(self, depth: Optional[int], rows: int):
    tf, variables = self._tf, self.controller.trainable_variables
    entropy_weight = self.config.controller.entropy_weight

    def accumulate(tokens, advantages, weight):
      with tf.GradientTape() as tape:
        log_probs, entropies = self.controller.log_prob_tokens(tokens, num_layers=depth)
        loss = self._reinforce.reinforce_loss(log_probs, advantages, entropies,
                                              entropy_weight)
      grads = tape.gradient(loss, variables)
      scale = tf.cast(weight, tf.float32)
      for acc, g in zip(self.accumulators, grads):
        if g is not None:
          acc.assign_add(scale * tf.convert_to_tensor(g))
      self.accumulated.assign_add(weight)
      return loss, tf.reduce_mean(entropies)

    num_tokens = self.space_at(depth).num_tokens
    return tf.function(accumulate, autograph=False, input_signature=[
        tf.TensorSpec([rows, num_tokens], tf.int32), tf.TensorSpec([rows], tf.float32),
        tf.TensorSpec([], tf.int64)])

  def _apply_graph(self):
    """One Adam step with the mean of the accumulated gradients; clears them."""
    with self._graphs_lock:
      if self._apply_fn is None:
        self._apply_fn = self._make_apply_fn()
      return self._apply_fn

  def _make_apply_fn(self):
    tf, variables = self._tf, self.controller.trainable_variables

    def apply():
      n = tf.cast(self.accumulated, tf.float32)
      self.optimizer.apply([acc / n for acc in self.accumulators], variables)
      for acc in self.accumulators:
        acc.assign(tf.zeros_like(acc))
      self.accumulated.assign(0)

    return tf.function(apply)

  def state(self) -> dict:
    return {"baseline": self.baseline.value}

  def restore(self, state: Optional[dict], checkpoint: Optional[str] = None) -> None:
    del checkpoint  # the loop restores checkpoint_items()
    if state and state.get("baseline") is not None:
      self.baseline.value = state["baseline"]

  def checkpoint_items(self) -> dict:
    return {"controller": self.controller, "optimizer": self.optimizer,
            "accumulators": self.accumulators, "accumulated": self.accumulated}
