"""Language-model training as in the literature the paper follows (§4.2; Zaremba et al. 2014).

The paper trains its Penn Treebank children the way Zaremba et al. (2014) train their LSTM
language models, and that recipe is what makes gated cells learn at all in a short run:

* every weight matrix drawn from ``U(-0.1, 0.1)`` (``init_scale``);
* plain SGD at learning rate 1, kept for ``lr_decay_start`` epochs, then multiplied by
  ``lr_decay_factor`` at every further epoch;
* the loss of a window is the cross-entropy **summed over its time steps** and averaged
  over the batch (``loss_reduction='sum'``), i.e. an effective rate of ``lr * num_steps``
  per token-mean gradient;
* the global gradient norm clipped at 5;
* the recurrent state **carried** from one truncated-BPTT window to the next within an
  epoch (the batches of :meth:`nas_tf.data.PTBData.batches` are laid out for that), and
  reset to zero at the start of every epoch and of every evaluation pass. Evaluation
  carries the state too, so validation perplexity is that of the whole split read in order.

With Keras' defaults instead (Adam, Glorot/orthogonal initialisers, zero state per window)
a 2x200 LSTM sits on the unigram plateau (validation perplexity ~830) for a whole epoch;
with this recipe it reaches the published small-config curve (see ``docs/RESULTS.md``).

Searched cells are less tame than the LSTM: some diverge at lr 1, and many more do not
diverge but stay unstable, their loss well above what word frequencies alone give
(measured on PTB: 8 of 20 random cells end a one-epoch training above the unigram
perplexity, up to 84,000). :func:`train_lm` therefore watches the training loss and
restarts the child from its initial weights at a lower learning rate
(``divergence_retries`` times, each ``retry_lr_factor`` lower) when

* it diverges: a non-finite loss, or a window loss far above that of the uniform
  distribution; or
* after ``unigram_check`` of the first epoch, its recent loss is more than
  ``unigram_margin`` nats per token above the unigram model's on the same windows (the
  cross-entropy of the training split's word frequencies). Every cell that learns, or
  merely sits on the unigram plateau, is below that by then: the output bias learns
  the frequencies in the first hundred steps whatever the cell does.

The last attempt always trains to the end unless it diverges. The metrics record how
many attempts were needed, why each restart happened, and the rate that was used.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from typing import Any, Callable, Optional

from absl import logging
import keras
import numpy as np
import tensorflow as tf

from nas_tf.training.optimizers import build_optimizer

LOSS_REDUCTIONS = ("sum", "mean")
# Where a child's time goes (see train_lm's ``phases``).
PHASES = ("build", "first_step", "train", "eval")


@dataclasses.dataclass(frozen=True)
class LMRecipe:
  """How a language-model child is optimised (paper §4.2, after Zaremba et al. 2014).

  Attributes:
    optimizer: 'sgd' (the recipe), 'momentum' (Nesterov) or 'adam'.
    learning_rate: Initial rate (recipe: 1.0 for SGD with ``loss_reduction='sum'``).
    momentum: For 'momentum'.
    clipnorm: Global gradient-norm clip (recipe: 5; 0 = off).
    lr_decay_start: Epochs trained at the initial rate before decay starts (Zaremba small: 4).
    lr_decay_factor: Rate multiplier applied at every epoch after ``lr_decay_start``.
    loss_reduction: 'sum' (cross-entropy summed over time steps, mean over the batch: the
      recipe) or 'mean' (mean over all tokens, what Keras' ``fit`` does).
    carry_state: Carry the recurrent state across BPTT windows (reset per epoch and per
      evaluation pass); False starts every window from zero.
    weight_decay: Decoupled weight decay of the optimiser (0 = none).
    divergence_retries: Restarts, from the same initial weights, at a lower rate after a
      divergence; 0 = report the divergence.
    retry_lr_factor: Rate multiplier per restart.
    divergence_margin: Training has diverged when the mean token cross-entropy of the
      last ``divergence_window`` windows exceeds ``log(vocab_size) + divergence_margin``
      nats (persistently worse than guessing uniformly), when one window exceeds
      ``2 * log(vocab_size) + divergence_margin``, or when it is not finite. Single
      spikes above uniform are normal in the first steps at lr 1 (measured: a 2x64 LSTM
      on PTB spikes to 13.3 nats at step 6, then learns), so they do not count. The
      first window's loss is that of the initial weights, which no rate changes (measured:
      a random cell at init scale 0.3 starts at 26.2 nats whatever the rate), so the
      once-limit starts with the second window.
    divergence_window: Windows averaged for the persistent test and the unigram check.
    unigram_check: Fraction of the first epoch's windows after which the unigram check
      runs once (0 = off): if the mean, over the last ``divergence_window`` windows, of
      the training loss minus the unigram model's loss on the same windows exceeds
      ``unigram_margin``, training restarts at a lower rate (not on the last attempt).
      Runs shorter than ``divergence_window / unigram_check`` windows are not checked.
    unigram_margin: Nats per token above the unigram model that count as not learning
      (measured on PTB with the 2x32 proxy at a third of 150k tokens: cells that learn or
      sit on the plateau are 0.27-0.38 above it, unstable cells 0.48-1.8).
    collapse_margin: None (off), or: from the unigram check on (every later window, every
      epoch), a run whose mean excess over the unigram model (last ``divergence_window``
      windows) is above zero and more than ``collapse_margin`` nats above its lowest
      such mean so far has learned and then collapsed; it restarts at a lower rate like
      a divergence. Why (PTB, 180 units, lr 1): a found cell ended one run of its epoch
      above the unigram model (validation 773.9) and a rerun of it at 208.0; reruns are
      0.82 nats below the unigram model a third into the epoch, so the first run most
      likely learned and then collapsed. The lowest mean counts full windows only and
      starts again on a resumed run. Off for search children, so proxy values stay
      comparable across runs; on in final training.
  """

  optimizer: str = "sgd"
  learning_rate: float = 1.0
  momentum: float = 0.9
  clipnorm: float = 5.0
  lr_decay_start: int = 4
  lr_decay_factor: float = 0.5
  loss_reduction: str = "sum"
  carry_state: bool = True
  weight_decay: float = 0.0
  divergence_retries: int = 2
  retry_lr_factor: float = 0.25
  divergence_margin: float = 1.0
  divergence_window: int = 20
  unigram_check: float = 1 / 3
  unigram_margin: float = 0.5
  collapse_margin: Optional[float] = None

  def __post_init__(self):
    if self.optimizer not in ("sgd", "momentum", "adam"):
      raise ValueError(f"optimizer must be 'sgd', 'momentum' or 'adam', got {self.optimizer!r}")
    if not self.learning_rate > 0:
      raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
    if self.clipnorm < 0:
      raise ValueError(f"clipnorm must be >= 0, got {self.clipnorm!r}")
    if self.lr_decay_start < 0:
      raise ValueError(f"lr_decay_start must be >= 0, got {self.lr_decay_start!r}")
    if not 0 < self.lr_decay_factor <= 1:
      raise ValueError(f"lr_decay_factor must lie in (0, 1], got {self.lr_decay_factor!r}")
    if self.loss_reduction not in LOSS_REDUCTIONS:
      raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got "
                       f"{self.loss_reduction!r}")
    if self.divergence_retries < 0:
      raise ValueError(f"divergence_retries must be >= 0, got {self.divergence_retries!r}")
    if not 0 < self.retry_lr_factor < 1:
      raise ValueError(f"retry_lr_factor must lie in (0, 1), got {self.retry_lr_factor!r}")
    if not 0 <= self.unigram_check < 1:
      raise ValueError(f"unigram_check must lie in [0, 1), got {self.unigram_check!r}")
    if not self.unigram_margin > 0:
      raise ValueError(f"unigram_margin must be > 0, got {self.unigram_margin!r}")
    if self.collapse_margin is not None and not self.collapse_margin > 0:
      raise ValueError(f"collapse_margin must be > 0 or None, got {self.collapse_margin!r}")

  def divergence_limits(self, vocab_size: int) -> tuple[float, float]:
    """``(persistent, once)`` in nats/token: the mean of the last ``divergence_window``
    windows may not exceed the first, one window (from the second on) not the second."""
    uniform = math.log(vocab_size)
    return uniform + self.divergence_margin, 2 * uniform + self.divergence_margin

  def unigram_check_step(self, steps_per_epoch: int) -> Optional[int]:
    """1-based step of the first epoch at which the unigram check runs (None: off)."""
    if self.unigram_check <= 0:
      return None
    return max(self.divergence_window, math.ceil(self.unigram_check * steps_per_epoch))

  def learning_rate_at(self, epoch: int, base: Optional[float] = None) -> float:
    """The rate of 0-based ``epoch`` (:func:`decay_after`)."""
    return decay_after(self.learning_rate if base is None else base, epoch,
                       self.lr_decay_start, self.lr_decay_factor)


def decay_after(base, epoch, decay_start: int, factor: float):
  """Zaremba et al.'s schedule: ``base`` for ``decay_start`` epochs, then x ``factor`` per
  epoch: ``base * factor ** max(0, epoch + 1 - decay_start)`` for 0-based ``epoch``.

  Python numbers in, a float out (the one-machine trainers); a tensor ``epoch`` (a
  cluster closure's loop) gives a float32 tensor by the same formula.
  """
  if isinstance(epoch, int):
    return base * factor ** max(0, epoch + 1 - decay_start)
  decays = tf.cast(tf.maximum(0, epoch + 1 - decay_start), tf.float32)
  return base * tf.pow(tf.constant(factor, tf.float32), decays)


class Diverged(RuntimeError):
  """Training loss became non-finite or far worse than uniform guessing.

  ``phases``: where the failed attempt's time went (see :func:`train_lm`).
  """

  phases: dict = {}


class WorseThanUnigram(Diverged):
  """Training loss stayed above the unigram model's (LMRecipe.unigram_check)."""


class Collapsed(Diverged):
  """Training loss rose back above the unigram model's (LMRecipe.collapse_margin)."""


class Worsened(Diverged):
  """Validation perplexity rose sharply in one epoch (final training's worsen_margin):
  unstable optimisation at this rate, which rolls back to the previous epoch."""


def unigram_xent(targets: np.ndarray, vocab_size: int) -> np.ndarray:
  """Per-window cross-entropy (nats/token) of the unigram model of ``targets`` themselves.

  The model is the word frequencies of all of ``targets`` (``[num_windows, batch,
  num_steps]``), i.e. what a language model reaches by learning its output bias alone;
  comparing a model with it window by window removes how hard each stretch of text is.
  """
  log_p = _unigram_log_probs(targets, vocab_size)
  return -log_p[targets].reshape(targets.shape[0], -1).mean(axis=1)


def _unigram_log_probs(targets: np.ndarray, vocab_size: int) -> np.ndarray:
  """``log p(word)`` of the word frequencies of ``targets``; an unseen word counts once."""
  counts = np.bincount(np.asarray(targets).ravel(), minlength=vocab_size)
  return np.log(np.maximum(counts, 1) / max(counts.sum(), 1))


def unigram_perplexity(train_targets: np.ndarray, eval_targets: np.ndarray,
                       vocab_size: int) -> float:
  """Perplexity on ``eval_targets`` of the word frequencies of ``train_targets``.

  The bar a language model must clear to have learned anything beyond its output bias
  (PTB: 687 on the validation split). Unseen words count once.
  """
  log_p = _unigram_log_probs(train_targets, vocab_size)
  return float(np.exp(-log_p[np.asarray(eval_targets).ravel()].mean()))


def zero_states(model: keras.Model, batch_size: int) -> list[tf.Tensor]:
  """Zero initial states for a ``return_state=True`` language model (one per state input)."""
  return [tf.zeros((batch_size, int(t.shape[-1])), dtype=tf.float32)
          for t in model.inputs[1:]]


def token_xent(targets, logits):
  """Cross-entropy (nats) of every token of a window: ``[batch, time]``."""
  return tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=tf.cast(targets, tf.int32), logits=tf.cast(logits, tf.float32))


def window_loss(targets, logits, sum_over_time: bool):
  """``(token-mean cross-entropy, the objective to minimise)`` of one BPTT window.

  The objective is Zaremba et al.'s (§4.2): summed over the window's time steps and
  averaged over the batch, so its gradient is ``num_steps`` times the token-mean one,
  which is what lr 1 is tuned for; or the token mean (``sum_over_time=False``). Every
  trainer of a language model takes its step's loss from here: this process's
  (:func:`train_lm`) and a cluster closure's (:mod:`nas_tf.training.closures`).
  """
  xent = token_xent(targets, logits)
  mean_xent = tf.reduce_mean(xent)
  if not sum_over_time:
    return mean_xent, mean_xent
  return mean_xent, tf.reduce_sum(xent) / tf.cast(tf.shape(targets)[0], tf.float32)


class _Steps:
  """The traced train and evaluation steps of one model (built once per model)."""

  def __init__(self, model: keras.Model, optimizer, recipe: LMRecipe):
    self.model = model
    self.optimizer = optimizer
    variables = model.trainable_variables
    clip = float(recipe.clipnorm)
    sum_over_time = recipe.loss_reduction == "sum"

    @tf.function(reduce_retracing=True)
    def train_step(inputs, targets, states):
      with tf.GradientTape() as tape:
        logits, *new_states = model([inputs, *states], training=True)
        mean_xent, loss = window_loss(targets, logits, sum_over_time)
      grads = tape.gradient(loss, variables)
      if clip > 0:
        grads, norm = tf.clip_by_global_norm(grads, clip)
      else:
        norm = tf.linalg.global_norm(grads)
      optimizer.apply_gradients(zip(grads, variables))
      return mean_xent, [tf.stop_gradient(s) for s in new_states], norm

    @tf.function(reduce_retracing=True)
    def eval_step(inputs, targets, states):
      logits, *new_states = model([inputs, *states], training=False)
      return tf.reduce_sum(token_xent(targets, logits)), new_states

    # One trace per model is the design: every child is a different graph. TensorFlow's
    # frequent-retracing detector keys on the code object shared by all children's
    # steps, so from the 5th child of a process it would warn "N out of the last M calls
    # ... triggered tf.function retracing" and advise a fix that does not apply here.
    for step in (train_step, eval_step):
      step._omit_frequent_tracing_warning = True  # pylint: disable=protected-access
    self.train_step = train_step
    self.eval_step = eval_step


def evaluator(model: keras.Model) -> Callable[..., float]:
  """``f(windows, carry_state=True) -> mean token cross-entropy`` of a ``return_state=True``
  model, with one traced evaluation step reused across calls (e.g. validation and test
  splits of the same batch shape)."""
  steps = _Steps(model, None, LMRecipe())
  return lambda windows, carry_state=True: evaluate(steps, windows, carry_state)


def evaluate_model(model: keras.Model, windows, carry_state: bool = True) -> float:
  """Mean token cross-entropy (nats) of a ``return_state=True`` model over ``windows``."""
  return evaluator(model)(windows, carry_state)


def evaluate(steps: _Steps, windows: tuple[np.ndarray, np.ndarray], carry_state: bool) -> float:
  """Mean token cross-entropy over ``windows`` read in order, state reset at the start."""
  inputs, targets = windows
  total, count = 0.0, 0
  states = zero_states(steps.model, inputs.shape[1])
  for k in range(inputs.shape[0]):
    if not carry_state:
      states = zero_states(steps.model, inputs.shape[1])
    s, states = steps.eval_step(tf.constant(inputs[k]), tf.constant(targets[k]), states)
    total += float(s)
    count += targets[k].size
  return total / max(count, 1)


def _fit_once(model_fn: Callable[[], keras.Model], train_windows, eval_windows: dict,
              epochs: int, recipe: LMRecipe, base_lr: float, vocab_size: int,
              steps_per_epoch: Optional[int], on_epoch_end, log_prefix: str,
              progress_seconds: float, on_start, lr_for_epoch,
              unigram: Optional[np.ndarray], rungs) -> dict[str, Any]:
  built = time.monotonic()
  model = model_fn()
  optimizer = build_optimizer(recipe.optimizer, base_lr, recipe.momentum,
                              weight_decay=recipe.weight_decay)
  optimizer.build(model.trainable_variables)
  steps = _Steps(model, optimizer, recipe)
  # Where a child's time goes (docs/RESULTS.md §3): the fixed cost (build, the first step, which
  # traces the train graph) against the steady steps and the evaluation passes.
  phases = dict.fromkeys(PHASES, 0.0)  # "train" is the remainder: see finish_phases
  phases["build"] = time.monotonic() - built
  inputs, targets = train_windows
  n = inputs.shape[0]
  spe = n if steps_per_epoch is None else min(steps_per_epoch, n)
  persistent, spike = recipe.divergence_limits(vocab_size)
  recent = collections.deque(maxlen=recipe.divergence_window)
  excess = collections.deque(maxlen=recipe.divergence_window)
  check_step = None if unigram is None else recipe.unigram_check_step(spe)
  watch_collapse = check_step is not None and recipe.collapse_margin is not None
  lowest = math.inf  # the lowest mean excess over the unigram model since the check
  history: dict[str, list] = {"loss": [], "lr": [], "epoch_seconds": []}
  history.update({f"{name}_loss": [] for name in eval_windows})
  first = 0
  if on_start is not None:
    first, restored = on_start(model, optimizer)
    if restored:
      history = {k: list(v) for k, v in restored.items()}
  cursor = (first * spe) % n
  last_log = time.monotonic()
  # Rungs (a pruner's plan): 1-based global step -> rung; validated there, and a child
  # below the rung's bar stops with that value as its result.
  rung_at = {} if rungs is None else {
      s: i for i, s in enumerate(rungs.at_steps(epochs * spe)) if s > 0}
  reached = []
  rung_split = next(iter(eval_windows), None)

  def finish_phases():
    total = time.monotonic() - built
    phases["train"] = total - phases["build"] - phases["first_step"] - phases["eval"]
    return phases

  try:
    for epoch in range(first, epochs):
      start = time.monotonic()
      lr = (lr_for_epoch(epoch, base_lr) if lr_for_epoch is not None
            else recipe.learning_rate_at(epoch, base_lr))
      optimizer.learning_rate = lr
      states = zero_states(model, inputs.shape[1])
      total = 0.0
      step_start = time.monotonic()
      for k in range(spe):
        i = (cursor + k) % n
        if not recipe.carry_state:
          states = zero_states(model, inputs.shape[1])
        xent, states, _ = steps.train_step(tf.constant(inputs[i]), tf.constant(targets[i]),
                                           states)
        xent = float(xent)
        if epoch == first and k == 0:
          phases["first_step"] = time.monotonic() - step_start
        recent.append(xent)
        mean = sum(recent) / len(recent)
        if (not math.isfinite(xent) or (xent > spike and len(recent) > 1)
            or (len(recent) == recent.maxlen and mean > persistent)):
          raise Diverged(f"training loss {xent:.4g} nats/token (mean of the last "
                         f"{len(recent)}: {mean:.4g}; limits {spike:.3g} once, {persistent:.3g} "
                         f"on average) at epoch {epoch + 1} step {k + 1} with lr {lr:.4g}")
        if check_step is not None and (epoch == 0 or watch_collapse):
          excess.append(xent - float(unigram[i]))
          above = sum(excess) / len(excess)
          if epoch == 0 and k + 1 == check_step:
            logging.info("%sunigram check at window %d: training loss %+.3f nats/token "
                         "against the unigram model's (restart above %+.3g)", log_prefix,
                         k + 1, above, recipe.unigram_margin)
            if above > recipe.unigram_margin:
              raise WorseThanUnigram(
                  f"training loss {above:.3g} nats/token above the unigram model's over "
                  f"windows {k + 2 - len(excess)}-{k + 1} (limit "
                  f"{recipe.unigram_margin:.3g}) with lr {lr:.4g}")
          if watch_collapse and (epoch > 0 or k + 1 >= check_step) and (
              len(excess) == excess.maxlen):
            lowest = min(lowest, above)
            if above > 0 and above > lowest + recipe.collapse_margin:
              raise Collapsed(
                  f"training loss {above:.3g} nats/token above the unigram model's over "
                  f"windows {k + 2 - len(excess)}-{k + 1} of epoch {epoch + 1}, after "
                  f"{lowest:.3g} (limit: {recipe.collapse_margin:.3g} above that) with lr "
                  f"{lr:.4g}")
        total += xent
        rung = rung_at.get(epoch * spe + k + 1)
        if rung is not None:
          eval_start = time.monotonic()
          windows = eval_windows[rung_split]
          n_eval = rungs.eval_windows(windows[0].shape[0])
          rung_loss = evaluate(steps, (windows[0][:n_eval], windows[1][:n_eval]),
                               recipe.carry_state)
          phases["eval"] += time.monotonic() - eval_start
          value = perplexity(rung_loss)
          go = rungs.continues(rung, value)
          reached.append((rungs.resources[rung], value, go))
          logging.info("%srung %d (%.3g of the budget): %s perplexity %.1f, bar %s: %s",
                       log_prefix, rung + 1, rungs.resources[rung], rung_split, value,
                       "none" if rungs.bounds[rung] is None else
                       f"{rungs.bounds[rung]:.1f}", "continues" if go else "stopped")
          if not go:
            history["loss"].append(total / (k + 1))
            history["lr"].append(lr)
            history[f"{rung_split}_loss"].append(rung_loss)  # (on the rung's windows)
            history["epoch_seconds"].append(time.monotonic() - start)
            return {"model": model, "history": history, "phases": finish_phases(),
                    "rungs": reached}
        if progress_seconds and time.monotonic() - last_log > progress_seconds:
          last_log = time.monotonic()
          logging.info("%sepoch %d/%d step %d/%d: train perplexity %.1f (lr %.3g)",
                       log_prefix, epoch + 1, epochs, k + 1, spe, perplexity(total / (k + 1)),
                       lr)
      cursor = (cursor + spe) % n
      history["loss"].append(total / spe)
      history["lr"].append(lr)
      eval_start = time.monotonic()
      for name, windows in eval_windows.items():
        history[f"{name}_loss"].append(evaluate(steps, windows, recipe.carry_state))
      phases["eval"] += time.monotonic() - eval_start
      history["epoch_seconds"].append(time.monotonic() - start)
      logs = {k: v[-1] for k, v in history.items()}
      logging.info("%sepoch %d/%d: train ppl %.1f, %s (lr %.3g, %.0f s)", log_prefix,
                   epoch + 1, epochs, perplexity(logs["loss"]),
                   ", ".join(f"{name} ppl {perplexity(logs[name + '_loss']):.1f}"
                             for name in eval_windows), lr, logs["epoch_seconds"])
      if on_epoch_end is not None and on_epoch_end(epoch, model, optimizer, history):
        break
  except Diverged as e:
    e.phases = finish_phases()
    raise
  return {"model": model, "history": history, "phases": finish_phases(), "rungs": reached}


def train_lm(model_fn: Callable[[], keras.Model], train_windows, eval_windows: dict,
             epochs: int, recipe: LMRecipe, vocab_size: int,
             steps_per_epoch: Optional[int] = None,
             on_epoch_end: Optional[Callable[..., bool]] = None,
             log_prefix: str = "", progress_seconds: float = 20.0,
             on_start: Optional[Callable[..., tuple[int, Optional[dict]]]] = None,
             lr_for_epoch: Optional[Callable[[int, float], float]] = None,
             on_restart: Optional[Callable[[float, list[str]], None]] = None,
             rungs=None) -> dict[str, Any]:
  """Trains a language model with ``recipe``, restarting at a lower rate on divergence.

  Args:
    model_fn: Builds a fresh ``return_state=True`` model from
      :func:`nas_tf.children.build_language_model`; called again for each restart (seed
      the caller's RNG before, so each attempt starts from the same weights).
    train_windows: ``(inputs, targets)`` int32 ``[num_windows, batch, num_steps]``, in
      stream order (:meth:`nas_tf.data.PTBData.batch_arrays`).
    eval_windows: Split name -> windows, evaluated after every epoch (e.g. ``{"val": ...}``).
    epochs: Epochs; an epoch is ``steps_per_epoch`` windows (default all), continuing
      where the previous epoch stopped when that is fewer than all.
    recipe: The optimisation recipe.
    vocab_size: For the divergence threshold ``log(vocab_size) + margin``.
    steps_per_epoch: Cap on windows per epoch.
    on_epoch_end: ``fn(epoch, model, optimizer, history) -> stop`` after each epoch
      (checkpoints, early stopping); ``history`` as returned, up to this epoch.
    log_prefix: Put before progress lines (e.g. the child's id).
    progress_seconds: A progress line at most this often during an epoch (0 = none).
    on_start: ``fn(model, optimizer) -> (first_epoch, history or None)`` once the model
      and the (built) optimiser exist: restores a backup to resume from.
    lr_for_epoch: ``fn(epoch, base_lr) -> lr`` replacing the recipe's decay schedule.
    on_restart: ``fn(next_base_lr, restarts)`` before each restart, with the reasons so
      far: discards a backup of the failed attempt (so ``on_start`` does not resume it)
      and records the rate, so a resumed run continues at the lowered rate.
    rungs: A pruner's :class:`nas_tf.training.rungs.RungPlan`: the first split of
      ``eval_windows`` is also measured at its rungs (fractions of ``epochs`` x the
      epoch's windows), and training stops at a rung whose bar the perplexity misses.
      A restart measures its rungs again.

  Returns:
    ``{"model", "history", "attempts", "learning_rate", "diverged", "restarts",
    "phases"}``: the
    trained model, per-epoch lists (``loss``, ``lr``, ``epoch_seconds``, ``<split>_loss``),
    how many attempts ran, the initial rate of the last one, the last divergence message
    (None if the last attempt trained to the end), and why each restart happened; and
    ``phases``, seconds summed over the attempts: ``build`` (model and optimiser),
    ``first_step`` (the first training step, which traces the graph), ``eval`` (every
    evaluation pass) and ``train`` (the rest: the steady steps and their checks); and
    ``rungs``: the last attempt's ``(resource, perplexity, continued)`` per rung measured.
  """
  base_lr = recipe.learning_rate
  error = None
  restarts: list[str] = []
  spent = dict.fromkeys(PHASES, 0.0)
  unigram = (unigram_xent(train_windows[1], vocab_size) if recipe.unigram_check > 0
             else None)
  for attempt in range(recipe.divergence_retries + 1):
    last = attempt == recipe.divergence_retries
    try:
      # The last attempt is not checked against the unigram: it is the answer either way.
      out = _fit_once(model_fn, train_windows, eval_windows, epochs, recipe, base_lr,
                      vocab_size, steps_per_epoch, on_epoch_end, log_prefix,
                      progress_seconds, on_start, lr_for_epoch,
                      None if last else unigram, rungs)
      out.update(attempts=attempt + 1, learning_rate=base_lr, diverged=None,
                 restarts=restarts,
                 phases={k: spent[k] + v for k, v in out["phases"].items()})
      return out
    except Diverged as e:
      for k, v in e.phases.items():
        spent[k] += v  # the time of a failed attempt is part of the child's cost
      error = str(e)
      restarts.append(error)
      logging.info("%s%s (%s); %s", log_prefix,
                   "not learning" if isinstance(e, WorseThanUnigram) else
                   "collapsed" if isinstance(e, Collapsed) else
                   "worsened" if isinstance(e, Worsened) else "diverged", error,
                   "restarting at lr %.3g" % (base_lr * recipe.retry_lr_factor)
                   if attempt < recipe.divergence_retries else "giving up")
      base_lr *= recipe.retry_lr_factor
      if on_restart is not None and attempt < recipe.divergence_retries:
        on_restart(base_lr, list(restarts))
      keras.backend.clear_session(free_memory=False)
  return {"model": None, "history": None, "attempts": recipe.divergence_retries + 1,
          "learning_rate": base_lr / recipe.retry_lr_factor, "diverged": error,
          "restarts": restarts[:-1], "phases": spent, "rungs": []}


def perplexity(xent: float) -> float:
  """``exp(xent)`` as a float (inf above the float range, NaN stays NaN)."""
  if math.isnan(xent):
    return float("nan")
  # exp overflows (OverflowError) above ~709 nats.
  return float(math.exp(xent)) if xent < 700 else float("inf")


__all__ = ["LMRecipe", "Diverged", "WorseThanUnigram", "Collapsed", "unigram_xent", "train_lm",
           "evaluate_model", "evaluator", "zero_states", "perplexity", "decay_after"]
