"""What the built-in tasks' --data_dir must hold, checked before anything heavy loads.

Kept apart from the loaders (:mod:`nas_tf.data` imports TensorFlow): a mistyped path is
reported in well under a second, before TensorFlow, a worker or a cluster starts.
"""

from __future__ import annotations

import os

from absl import logging

PTB_FILES = tuple(f"ptb.{split}.txt" for split in ("train", "valid", "test"))


def check_bundled(data_dir: str) -> None:
  """``data_dir`` is the testdata/ of a source checkout, chosen because the user gave no
  --data_dir: its absence means an installed copy without the checkout.

  Raises:
    FileNotFoundError: saying to pass --data_dir.
  """
  if not os.path.exists(data_dir):
    raise FileNotFoundError("no --data_dir, and no bundled testdata/ beside this program "
                            "(it comes with a source checkout): pass --data_dir=PATH")
  logging.info("No --data_dir: a TINY run on the bundled %s (for a first look only; see "
               "the README for real data).", data_dir)


def check_ptb_dir(data_dir: str) -> None:
  """Fails fast unless ``data_dir`` holds Mikolov's three PTB files (paper §4.2).

  Raises:
    FileNotFoundError: naming the path and what it should hold.
  """
  if not os.path.exists(data_dir):
    raise FileNotFoundError(f"--data_dir {data_dir!r} does not exist; expected a directory "
                            f"with {', '.join(PTB_FILES)}")
  for name in PTB_FILES:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"missing {path}; a PTB --data_dir holds "
                              f"{', '.join(PTB_FILES[:2])} and {PTB_FILES[2]}")


def check_cifar10_source(data_dir: str) -> None:
  """Fails fast unless ``data_dir`` exists or is 'tfds' (the format is checked on load).

  Raises:
    FileNotFoundError: naming the path and the accepted layouts.
  """
  if data_dir != "tfds" and not os.path.exists(data_dir):
    raise FileNotFoundError(f"--data_dir {data_dir!r} does not exist; expected a CIFAR-10 "
                            "directory (python/binary release or image folder), a .tar.gz "
                            "of one, or 'tfds'")
