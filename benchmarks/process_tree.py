"""The processes a benchmark started, and their resident memory (shared by the benchmarks)."""

import psutil


def tree(pid=None) -> list:
  """``pid`` (default: this process) and all its descendants; [] if it is gone."""
  try:
    root = psutil.Process(pid)
    return [root] + root.children(recursive=True)
  except psutil.NoSuchProcess:
    return []


def rss_mb(procs) -> float:
  """Resident memory of ``procs`` together, in MiB (processes that ended count 0)."""
  total = 0
  for p in procs:
    try:
      total += p.memory_info().rss
    except psutil.NoSuchProcess:
      pass
  return total / 2**20
