"""Uniform random search over the space: the paper's baseline (§4, Figure 6)."""

from __future__ import annotations

from typing import Optional

import numpy as np

from nas_tf.search.samplers.base import Sampler, decode_all


class RandomSampler(Sampler):
  """Every token drawn uniformly; the draw of step ``s`` depends only on (seed, s)."""

  name = "random"
  can_draw = True

  def __init__(self, space, config):
    super().__init__(space, config.seed)

  def sample(self, step: int, m: int, depth: Optional[int]):
    space = self.space_at(depth)
    rng = np.random.default_rng([self.seed, step])
    tokens = [space.sample_tokens(rng) for _ in range(m)]
    return tokens, decode_all(space, tokens)

  def update(self, step, tokens, rewards, depth) -> dict:
    return {}

  def draw(self, n: int, depth: Optional[int], purpose: tuple) -> np.ndarray:
    # Streams no search step uses: [seed, step, 1] per training phase, [seed, 10**6] to
    # derive the final architecture.
    key = [self.seed, purpose[1], 1] if purpose[0] == "train" else [self.seed, 10**6]
    rng = np.random.default_rng(key)
    space = self.space_at(depth)
    return np.asarray([space.sample_tokens(rng) for _ in range(n)], dtype=np.int32)
