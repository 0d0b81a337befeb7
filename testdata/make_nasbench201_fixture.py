#!/usr/bin/env python3
"""Writes testdata/nasbench201/nasbench201-synthetic.csv.gz: the NAS-Bench-201 table format
(columns ``arch, cellstr, <dataset>-test, <dataset>-val``) for all 15,625 cells, with
*synthetic* accuracies, so that tests and the tiny default run need no real data.

The accuracies are a made-up, deterministic function of the cell (convolutions help,
'none' on every input of the output node breaks the cell, plus seeded noise); they only
give the search strategies something with structure to find. Real figures come from
../shared/data/nasbench201/nasbench201-12epoch.csv.
"""

import csv
import gzip
import io
import itertools
import pathlib

import numpy as np

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
GAIN = {"none": 0.0, "skip_connect": 2.0, "nor_conv_1x1": 4.0, "nor_conv_3x3": 6.0,
        "avg_pool_3x3": 1.0}
SCALE = {"cifar10": (50.0, 1.0), "cifar100": (20.0, 0.8), "imagenet": (8.0, 0.6)}


def cell_string(ops) -> str:
  return "+".join("|" + "|".join(f"{op}~{i}" for op, (i, j) in zip(ops, EDGES) if j == node)
                  + "|" for node in (1, 2, 3))


def main():
  rng = np.random.default_rng(201)
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  columns = [f"{d}-{s}" for d in SCALE for s in ("test", "val")]
  writer.writerow(["arch", "cellstr"] + columns)
  for index, ops in enumerate(itertools.product(OPS, repeat=len(EDGES))):
    score = sum(GAIN[op] for op in ops)
    dead = all(op == "none" for op, (_, j) in zip(ops, EDGES) if j == 3)
    row = []
    for base, slope in SCALE.values():
      acc = 10.0 if dead else base + slope * score
      row += [round(acc + rng.normal(0, 0.5), 3), round(acc + rng.normal(0, 0.5), 3)]
    writer.writerow([index, cell_string(ops)] + row)
  path = pathlib.Path(__file__).parent / "nasbench201" / "nasbench201-synthetic.csv.gz"
  path.parent.mkdir(exist_ok=True)
  with gzip.GzipFile(path, "wb", mtime=0) as f:
    f.write(out.getvalue().encode())


if __name__ == "__main__":
  main()
