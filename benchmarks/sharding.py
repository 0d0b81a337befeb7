"""``--shard=I/N``: one long study split over N processes, one per core.

``benchmarks/proxy_fidelity.py`` (architectures) and ``benchmarks/convergence_queue.py``
(final trainings) take the same flag. No flags here, so both can import it.
"""


def shard(items, spec):
  """The items of shard ``spec`` ("I/N": positions I, I+N, ...), or all of them."""
  if not spec:
    return list(items)
  index, _, count = spec.partition("/")
  try:
    index, count = int(index), int(count)
  except ValueError:
    raise ValueError(f"--shard must be I/N with integers, got {spec!r}") from None
  if not 0 <= index < count:
    raise ValueError(f"--shard I/N needs 0 <= I < N, got {spec!r}")
  return [a for n, a in enumerate(items) if n % count == index]
