"""Regularized ("aging") evolution (Real et al., AAAI 2019), over any token schema.

The population holds the last ``population_size`` evaluated architectures. Until it is
full, proposals are uniform random; after that each proposal draws ``sample_size``
members at random (with replacement, as the paper's Algorithm 1), mutates the best of
them (its tokens with one decision changed to another value) and, when its reward
arrives, joins the population while the oldest member leaves. Ageing out, rather than
removing the worst, is what makes it "regularized": an architecture survives only if its
descendants keep scoring well.
"""

from __future__ import annotations

import collections
from typing import Optional

import numpy as np

from nas_tf.search.samplers.base import Sampler, decode_all, mutate, slot_sizes


class EvolutionSampler(Sampler):
  """Regularized evolution; ``population_size`` P and ``sample_size`` S from the config.

  Proposals of step ``s`` depend only on (the population after step ``s - 1``, seed,
  ``s``); the population is JSON state, so a resumed search continues it exactly. With a
  growing CNN depth, a parent of fewer layers is extended by random decisions for the
  new layers (a CNN's tokens at depth d are a prefix of those at depth d + 1).
  """

  name = "evolution"

  def __init__(self, space, config):
    super().__init__(space, config.seed)
    self.population_size = config.evolution.population_size
    self.sample_size = config.evolution.sample_size
    self.with_replacement = config.evolution.with_replacement
    self.population = collections.deque()  # (tokens, reward), oldest first

  def sample(self, step: int, m: int, depth: Optional[int]):
    space = self.space_at(depth)
    sizes = slot_sizes(space)
    rng = np.random.default_rng([self.seed, step])
    members = list(self.population)
    tokens = []
    for k in range(m):
      if len(members) + k < self.population_size:
        tokens.append(space.sample_tokens(rng))
        continue
      picks = rng.choice(len(members), size=min(self.sample_size, len(members)),
                         replace=self.with_replacement)
      parent = max((members[int(i)] for i in picks), key=lambda mr: mr[1])[0]
      parent = self._fit_length(parent, space, rng)
      tokens.append(mutate(parent, sizes, rng))
    return tokens, decode_all(space, tokens)

  @staticmethod
  def _fit_length(tokens, space, rng) -> tuple:
    n = space.num_tokens
    if len(tokens) >= n:
      return tuple(tokens[:n])
    tail = space.sample_tokens(rng)[len(tokens):]
    return tuple(tokens) + tuple(tail)

  def update(self, step, tokens, rewards, depth) -> dict:
    for t, r in zip(tokens, rewards):
      self.population.append((tuple(int(x) for x in t), float(r)))
      while len(self.population) > self.population_size:
        self.population.popleft()
    rewards_now = [r for _, r in self.population]
    return {"population/size": float(len(rewards_now)),
            "population/mean_reward": float(np.mean(rewards_now)),
            "population/best_reward": float(np.max(rewards_now))}

  def state(self) -> dict:
    return {"population": [[list(t), r] for t, r in self.population]}

  def restore(self, state: Optional[dict], checkpoint: Optional[str] = None) -> None:
    del checkpoint
    self.population = collections.deque(
        (tuple(t), float(r)) for t, r in (state or {}).get("population", []))
