"""What each built-in task's --data_dir must hold, checked before anything heavy loads.

Kept apart from the loaders (:mod:`nas_tf.data` imports TensorFlow): a mistyped path is
reported in well under a second, before TensorFlow, a worker or a cluster starts.
"""

from __future__ import annotations

import os

from absl import logging

PTB_FILES = tuple(f"ptb.{split}.txt" for split in ("train", "valid", "test"))


def check_data_source(task: str, data_dir: str, bundled: bool = False) -> None:
  """Fails fast, with the path and what was expected, before any worker starts.

  Args:
    task: 'ptb' or 'cifar10'.
    data_dir: The directory (or CIFAR-10 archive, or 'tfds') given as --data_dir.
    bundled: ``data_dir`` is the testdata/ of a source checkout, chosen because the user
      gave no --data_dir; its absence means an installed copy without the checkout.

  Raises:
    FileNotFoundError: naming the path and what it should hold.
  """
  if bundled:
    if not os.path.exists(data_dir):
      raise FileNotFoundError("no --data_dir, and no bundled testdata/ beside this program "
                              "(it comes with a source checkout): pass --data_dir=PATH")
    logging.info("No --data_dir: a TINY run on the bundled %s (for a first look only; see "
                 "the README for real data).", data_dir)
  if task == "cifar10" and data_dir == "tfds":
    return
  if not os.path.exists(data_dir):
    raise FileNotFoundError(f"--data_dir {data_dir!r} does not exist; expected "
                            + (f"a directory with {', '.join(PTB_FILES)}" if task == "ptb"
                               else "a CIFAR-10 directory (python/binary release or image "
                               "folder), a .tar.gz of one, or 'tfds'"))
  if task == "ptb":
    for name in PTB_FILES:
      path = os.path.join(data_dir, name)
      if not os.path.isfile(path):
        raise FileNotFoundError(f"missing {path}; a PTB --data_dir holds "
                                f"{', '.join(PTB_FILES[:2])} and {PTB_FILES[2]}")
