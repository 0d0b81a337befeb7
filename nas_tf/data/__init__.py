"""Input pipelines for the paper's two benchmarks (Zoph & Le 2017, §4).

* :func:`load_cifar10` -- CIFAR-10 image classification with the 45,000 / 5,000 / 10,000
  train / validation / test split and the whitening + crop + flip pipeline of §4.1.
* :func:`load_ptb` -- Penn Treebank word-level language modelling with the 10,000-word
  vocabulary and truncated-BPTT batching of §4.2.
* :class:`ArrayData` -- any classification data already in memory (a task of your own).

Both loaders read from local files (or tensorflow-datasets) only; they never download.
"""

from nas_tf.data.arrays import ArrayData
from nas_tf.data.cifar10 import CLASS_NAMES
from nas_tf.data.cifar10 import Cifar10Data
from nas_tf.data.cifar10 import Cifar10FormatError
from nas_tf.data.cifar10 import default_cache_dir
from nas_tf.data.cifar10 import load_cifar10
from nas_tf.data.cifar10 import load_cifar10_arrays
from nas_tf.data.ptb import EOS
from nas_tf.data.ptb import PTBData
from nas_tf.data.ptb import PTBFormatError
from nas_tf.data.ptb import UNK
from nas_tf.data.ptb import Vocab
from nas_tf.data.ptb import load_ptb
from nas_tf.data.ptb import load_vocab
from nas_tf.data.ptb import make_lm_windows

__all__ = [
    "ArrayData", "CLASS_NAMES", "Cifar10Data", "Cifar10FormatError", "default_cache_dir", "load_cifar10",
    "load_cifar10_arrays", "EOS", "PTBData", "PTBFormatError", "UNK", "Vocab", "load_ptb",
    "load_vocab", "make_lm_windows",
]
