"""The Sampler protocol: a search strategy, seen by the loop only through these methods.

A sampler proposes architectures and learns from their rewards; it knows the search
space (the token schema) and nothing of the task, the data or where children train.

* ``sample(step, m, depth) -> (tokens, specs)``: ``m`` proposals for controller step
  ``step``, a pure function of (the sampler's state after the previous update, the seed,
  ``step``), so a search resumed after a crash re-proposes exactly the interrupted step.
* ``update(step, tokens, rewards, depth) -> stats``: learn from one step's rewards (same
  order as ``tokens``); returns scalars for TensorBoard (``baseline``, ``entropy``, ...).
* ``expect_update(depth, rows)`` (optional, a no-op here): the loop says, as soon as a
  step's children start, how many rows its update will get (a budget's last step may
  score fewer than the m it sampled), so a sampler can prepare the update meanwhile.
* ``state() -> dict`` / ``restore(state, checkpoint)``: what resume needs. ``state()`` is
  JSON (saved in state.json); TF variables go in ``checkpoint_items()``, which the loop
  writes into the step's checkpoint together with the evaluator's.
* ``draw(n, depth, purpose)`` (optional): ``n`` architectures from the current policy that
  are not a search step (weight-sharing evaluation trains its shared weights on them);
  a sampler without it cannot drive ``evaluation='shared'``.

``depth`` is the CNN depth of the step (None for spaces of fixed size).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


class Sampler:
  """Base class: holds the space and the seed; subclasses implement sample/update."""

  name = ""
  can_draw = False  # implements draw(): usable with weight-sharing evaluation
  dedupes_itself = False  # replaces repeated proposals itself (the loop's rule is not applied)

  def __init__(self, space, seed: int):
    self.space = space
    self.seed = seed

  def space_at(self, depth: Optional[int]):
    """The space at CNN depth ``depth`` (the space itself when None)."""
    return self.space if depth is None else self.space.with_num_layers(depth)

  def sample(self, step: int, m: int, depth: Optional[int]):
    raise NotImplementedError

  def update(self, step: int, tokens: Sequence, rewards: Sequence[float],
             depth: Optional[int]) -> dict:
    raise NotImplementedError

  def expect_update(self, depth: Optional[int], rows: int) -> None:
    del depth, rows

  def draw(self, n: int, depth: Optional[int], purpose: tuple) -> np.ndarray:
    raise NotImplementedError(f"search={self.name!r} cannot sample for shared-weight training")

  def state(self) -> dict:
    return {}

  def restore(self, state: Optional[dict], checkpoint: Optional[str] = None) -> None:
    del state, checkpoint

  def checkpoint_items(self) -> dict:
    return {}


def decode_all(space, tokens) -> list:
  return [space.decode(t) for t in tokens]


def slot_sizes(space) -> list[int]:
  """Number of choices of every token position of ``space`` (anchor bits: 2)."""
  sizes = []
  for slot in space.schema():
    n = getattr(slot, "num_choices", 2)
    sizes.extend([n] * slot.width)
  return sizes


def mutate(tokens, sizes: list[int], rng: np.random.Generator) -> tuple:
  """``tokens`` with one decision (uniform over positions with a choice) changed."""
  tokens = list(tokens)
  positions = [i for i, n in enumerate(sizes) if n > 1]
  if not positions:
    return tuple(tokens)
  i = positions[int(rng.integers(len(positions)))]
  other = int(rng.integers(sizes[i] - 1))
  tokens[i] = other + (other >= tokens[i])  # uniform over the other values
  return tuple(tokens)


def nearest_unseen(space, tokens: tuple, sizes: list, seen: set, rng) -> tuple:
  """The nearest architecture (as ``spec.to_json()``) not in ``seen``: one decision
  changed, then two, ...; ``tokens`` itself when every one tried was seen."""
  for changes in range(1, len(sizes) + 1):
    for _ in range(20 * len(sizes)):
      t = tokens
      for _ in range(changes):
        t = mutate(t, sizes, rng)
      if space.decode(t).to_json() not in seen:
        return t
  return tokens  # every architecture seen: a repeat is all there is


def replace_seen(space, tokens, seen: set, key) -> tuple[list, list, int]:
  """The ``distinct`` rule, for any strategy: each proposal whose architecture is in
  ``seen`` (or earlier in ``tokens``) becomes its nearest unseen one.

  Args:
    space: The space the tokens are of.
    tokens: One step's proposals.
    seen: Architectures (``spec.to_json()``) sampled before; grows by every proposal.
    key: Seed material of the replacements (e.g. ``[seed, step]``): a pure function of
      it and ``seen``, so a resumed run replaces exactly as the uninterrupted one.

  Returns:
    ``(tokens, their specs, how many were replaced)``.
  """
  sizes, out, specs, replaced = slot_sizes(space), [], [], 0
  for k, t in enumerate(tokens):
    t = tuple(int(x) for x in t)
    spec = space.decode(t)
    if spec.to_json() in seen:
      t = nearest_unseen(space, t, sizes, seen, np.random.default_rng([*key, k]))
      spec, replaced = space.decode(t), replaced + 1
    seen.add(spec.to_json())
    out.append(t)
    specs.append(spec)
  return out, specs, replaced
