"""Bayesian optimisation with Optuna's TPE sampler, by ask/tell over the token schema.

Optuna (https://optuna.org) is used rather than a Gaussian-process BO of our own: its
Tree-structured Parzen Estimator (Bergstra et al. 2011) handles many categorical and
conditional decisions natively (a GP needs a kernel over architectures), it is the BO
baseline most NAS comparisons use, and it is well kept. Every token position is one
categorical parameter ``t000``, ``t001``, ...; positions that exist only at some CNN
depths are parameters that some trials lack, which TPE handles as conditional.

Repeats: TPE often proposes its current best point again (on the PTB cell space, one
run re-proposed one cell 23 times in 150 children). A repeat is not trained again, but
it spends a child of the budget on nothing new. With ``bo.distinct`` (default), a
proposal already evaluated (or already proposed in the step) is told as failed, which
leaves TPE's model unchanged, and the child is its nearest architecture not yet seen
(one decision changed at random, as an evolution mutation; two if every tried
neighbour is known, ...): a local step from where TPE wants to sample. Asking TPE again
instead was tried: it mostly re-proposes the same point, and each failed trial makes
every later ask slower.

Resume: the history (tokens and rewards of every child told) is JSON state, and the
study is rebuilt in memory from it; the TPE sampler of step ``s`` is seeded by
(seed, s), so proposals are a pure function of (history, seed, step).
"""

from __future__ import annotations

import contextlib
import logging as std_logging
from typing import Optional
import warnings

import numpy as np

from nas_tf.search.samplers.base import Sampler, decode_all, nearest_unseen, slot_sizes


@contextlib.contextmanager
def _quiet_optuna():
  """Optuna logs a line per trial and warns about experimental options; the search
  already logs every child, so both are silenced for the duration of the call."""
  logger = std_logging.getLogger("optuna")
  level = logger.level
  logger.setLevel(std_logging.WARNING)
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      yield
  finally:
    logger.setLevel(level)


class BOSampler(Sampler):
  """TPE proposals (``bo.startup_trials`` random ones first); ask m, tell their rewards."""

  name = "bo"

  def __init__(self, space, config):
    super().__init__(space, config.seed)
    try:
      import optuna  # pylint: disable=g-import-not-at-top
    except ImportError:
      raise ImportError("--search=bo needs Optuna: pip install optuna (or pip install "
                        "'nas_tf[bo]')") from None
    self._optuna = optuna
    self.settings = config.bo
    self.dedupes_itself = self.settings.distinct
    self.history: list[tuple[tuple, float]] = []
    self._asked: dict[int, dict] = {}  # step -> {tokens: asked, not yet told trials}
    self._keys: dict[tuple, str] = {}  # tokens -> the architecture's JSON
    self._proposed: dict[int, set] = {}  # step -> architectures proposed, not yet told
    self._replaced: set[int] = set()  # steps with a proposal replaced by a neighbour
    self.replaced = 0  # proposals replaced by a neighbour in this process (a statistic)
    with _quiet_optuna():
      self.study = optuna.create_study(direction="maximize")

  def _distributions(self, space) -> dict:
    dist = self._optuna.distributions.CategoricalDistribution
    return {f"t{i:03d}": dist(tuple(range(n))) for i, n in enumerate(slot_sizes(space))}

  def _tpe(self, step: int):
    s = self.settings
    return self._optuna.samplers.TPESampler(
        seed=(self.seed * 1_000_003 + step) % (2**32),
        n_startup_trials=s.startup_trials, multivariate=s.multivariate,
        group=s.multivariate, constant_liar=True)

  def sample(self, step: int, m: int, depth: Optional[int]):
    space = self.space_at(depth)
    dists = self._distributions(space)
    # Architectures, not token tuples: two tuples can decode to one architecture.
    # With several replicas, step s + 1 is sampled before step s is told: its children
    # count as seen too.
    seen = ({self._key(space, t) for t, _ in self.history if len(t) == len(dists)}.union(
        *self._proposed.values()) if self.settings.distinct else set())
    sizes = slot_sizes(space)
    tokens = []
    with _quiet_optuna():
      self.study.sampler = self._tpe(step)
      for k in range(m):
        trial = self.study.ask(dists)
        t = tuple(int(trial.params[name]) for name in dists)
        if self.settings.distinct and self._key(space, t) in seen:
          # Told as failed: TPE's model stays as it was. The neighbour is told with its
          # tokens in update(), as a resumed run tells its history.
          self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
          t, trial = nearest_unseen(space, t, sizes, seen,
                                  np.random.default_rng([self.seed, step, k])), None
          self._replaced.add(step)
          self.replaced += 1
        seen.add(self._key(space, t))
        self._proposed.setdefault(step, set()).add(self._key(space, t))
        if trial is not None:
          self._asked.setdefault(step, {}).setdefault(t, []).append(trial)
        tokens.append(t)
    return tokens, decode_all(space, tokens)

  def _key(self, space, tokens: tuple) -> str:
    """The architecture ``tokens`` decode to (cached: decoding the whole history at every
    sample made a 300-query table search 40% slower)."""
    key = self._keys.get(tokens)
    if key is None:
      key = self._keys[tokens] = space.decode(tokens).to_json()
    return key

  def update(self, step, tokens, rewards, depth) -> dict:
    dists = self._distributions(self.space_at(depth))
    asked = self._asked.pop(step, {})
    self._proposed.pop(step, None)
    with _quiet_optuna():
      if step in self._replaced:
        # A replaced child has no trial of its own. Its step's children all become new
        # trials in token order, which is the order a resumed run rebuilds them in:
        # TPE weighs and splits trials by their order, so both must agree.
        self._replaced.discard(step)
        for trials in asked.values():
          for trial in trials:
            self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
        asked = {}
      for t, r in zip(tokens, rewards):
        self._tell(tuple(int(x) for x in t), float(r), dists, asked)
      # Asked but beyond the budget (the last step may train fewer than m): not scored.
      for trials in asked.values():
        for trial in trials:
          self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
    return {"bo/trials": float(len(self.history))}

  def _tell(self, tokens: tuple, reward: float, dists: dict, asked: dict) -> None:
    self.history.append((tokens, reward))
    pending = asked.get(tokens)
    if pending:
      self.study.tell(pending.pop(0), reward)
      if not pending:
        del asked[tokens]
      return
    # Not asked in this process (a resumed run): add it as a finished trial.
    params = {name: v for name, v in zip(dists, tokens)}
    self.study.add_trial(self._optuna.trial.create_trial(
        params=params, distributions=dists, value=reward))

  def state(self) -> dict:
    return {"history": [[list(t), r] for t, r in self.history]}

  def restore(self, state: Optional[dict], checkpoint: Optional[str] = None) -> None:
    del checkpoint
    history = [(tuple(t), float(r)) for t, r in (state or {}).get("history", [])]
    with _quiet_optuna():
      for t, r in history:
        self._tell(t, r, self._distributions_for_length(len(t)), {})

  def _distributions_for_length(self, n: int) -> dict:
    space = self.space
    if hasattr(space, "num_layers") and space.num_tokens != n:
      layers = space.num_layers
      while space.with_num_layers(layers).num_tokens < n:
        layers += 1
      space = space.with_num_layers(layers)
    return self._distributions(space)
