"""The table benchmarks' runs file: one gzip member per finished run, appended.

``benchmarks/strategies.py`` writes it (``runs.jsonl.gz``, small enough to commit);
it and ``benchmarks/hypermodel_nb201.py`` read it. No flags here, so both can import it.
"""

import json
import pathlib
import zlib

RUNS = "runs.jsonl.gz"  # committed: ~200 bytes a run (best-so-far curves repeat)


def read_runs(out: pathlib.Path) -> list[dict]:
  """Every finished run in ``out``: one gzip member per run, a legacy ``runs.jsonl`` too.

  A member cut by a kill (the last one) is skipped, so an interrupted benchmark resumes.
  """
  texts = []
  if (out / RUNS).exists():
    data = (out / RUNS).read_bytes()
    while data:
      member = zlib.decompressobj(wbits=31)  # 31: gzip framing
      try:
        text = member.decompress(data)
      except zlib.error:
        break
      if not member.eof:
        break  # truncated tail
      texts.append(text.decode())
      data = member.unused_data
  if (out / "runs.jsonl").exists():
    texts.append((out / "runs.jsonl").read_text())
  runs = {}
  for line in "".join(texts).splitlines():
    try:
      run = json.loads(line)
    except json.JSONDecodeError:
      continue  # a line cut by a kill
    runs.setdefault(key(run), run)  # a run in both files counts once
  return list(runs.values())


def key(run: dict) -> tuple:
  return run["name"], run["dataset"], run["seed"], run["budget"], run["m"]
