"""Penn Treebank language-modelling data (Zoph & Le 2017, §4.2).

The paper's recurrent-cell search trains children as word-level language models on
Mikolov's PTB release (``ptb.{train,valid,test}.txt``), with the usual setup of
Zaremba et al. (2014): each line is a sentence, ``<eos>`` closes every line, the
vocabulary (10,000 types) comes from the training file only, and the token stream is
cut into ``batch_size`` parallel rows that are read in consecutive ``num_steps``
windows so that a recurrent state can be carried from one batch to the next.

Typical use::

  data = load_ptb("/path/to/ptb")
  for inputs, targets in data.batches("train", batch_size=20, num_steps=35):
    ...
  data.save_vocab(os.path.join(results_dir, "vocab.txt"))

  # Later, evaluate with the very same ids:
  data = load_ptb("/path/to/ptb", vocab=os.path.join(results_dir, "vocab.txt"))
"""

from __future__ import annotations

import collections
import dataclasses
import os
from typing import Iterable, Iterator, Mapping, Sequence, Union

from absl import logging
import numpy as np
import tensorflow as tf

EOS = "<eos>"
UNK = "<unk>"
SPLITS = ("train", "valid", "test")
# File names of Mikolov's release; the loader never guesses other names so that a typo
# in a directory fails loudly instead of training on the wrong file.
FILE_PATTERN = "ptb.{split}.txt"


class PTBFormatError(ValueError):
  """A PTB file or vocabulary file is malformed; the message names the path."""


class Vocab(collections.abc.Sequence):
  """A fixed mapping between words and integer ids.

  Behaves as a read-only sequence ``id -> word`` (so ``len(vocab)`` is the vocabulary
  size and ``vocab[i]`` the word of id ``i``) and exposes the inverse mapping as
  :attr:`word_to_id`.
  """

  def __init__(self, words: Iterable[str]):
    """Builds a vocabulary from words listed in id order.

    Args:
      words: The words; the i-th word gets id ``i``. Words must be non-empty, contain no
        whitespace and be unique.

    Raises:
      PTBFormatError: If a word is empty, contains whitespace or is repeated.
    """
    self._words = tuple(words)
    self._word_to_id = {}
    for index, word in enumerate(self._words):
      if not isinstance(word, str) or not word or len(word.split()) != 1 or word.split()[0] != word:
        raise PTBFormatError(f"vocabulary entry {index} is {word!r}; expected a non-empty word "
                             "without whitespace")
      if word in self._word_to_id:
        raise PTBFormatError(f"vocabulary word {word!r} appears twice (ids "
                             f"{self._word_to_id[word]} and {index})")
      self._word_to_id[word] = index

  @classmethod
  def from_tokens(cls, tokens: Iterable[str]) -> "Vocab":
    """Builds the vocabulary of a token stream with stable ids.

    Ids are assigned by decreasing frequency, ties broken by the word itself, so that the
    same corpus always yields the same ids regardless of dict or hash ordering.

    Args:
      tokens: The training tokens (``<eos>`` included).

    Returns:
      The vocabulary.
    """
    counts = collections.Counter(tokens)
    return cls(sorted(counts, key=lambda word: (-counts[word], word)))

  @classmethod
  def load(cls, path: Union[str, os.PathLike]) -> "Vocab":
    """Reads a vocabulary written by :meth:`save` (one word per line, in id order).

    Args:
      path: The vocabulary file.

    Returns:
      The vocabulary.

    Raises:
      FileNotFoundError: If ``path`` does not exist.
      PTBFormatError: If the file is empty or has a bad or duplicated line.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
      raise FileNotFoundError(f"vocabulary file {path!r} does not exist; expected a file "
                              "written by save_vocab (one word per line)")
    with open(path, encoding="utf-8") as f:
      lines = f.read().split("\n")
    # save() ends the file with a newline, which leaves one empty string at the end.
    if lines and lines[-1] == "":
      lines.pop()
    if not lines:
      raise PTBFormatError(f"vocabulary file {path!r} is empty; expected one word per line")
    try:
      return cls(lines)
    except PTBFormatError as e:
      raise PTBFormatError(f"{path!r}: {e}") from None

  def save(self, path: Union[str, os.PathLike]) -> None:
    """Writes the vocabulary as UTF-8 text, one word per line in id order."""
    path = os.fspath(path)
    tmp_path = path + ".tmp"
    with open(tmp_path, "w", encoding="utf-8") as f:
      f.write("".join(word + "\n" for word in self._words))
    # Rename so that a crash never leaves a half-written vocabulary next to results.
    os.replace(tmp_path, path)

  @property
  def word_to_id(self) -> Mapping[str, int]:
    """The inverse mapping ``word -> id`` (read-only view)."""
    return _ReadOnlyDict(self._word_to_id)

  @property
  def words(self) -> tuple[str, ...]:
    """All words in id order."""
    return self._words

  def __getitem__(self, index):
    return self._words[index]

  def __len__(self) -> int:
    return len(self._words)

  def __contains__(self, word) -> bool:
    return word in self._word_to_id

  def __iter__(self) -> Iterator[str]:
    return iter(self._words)

  def __eq__(self, other) -> bool:
    return isinstance(other, Vocab) and self._words == other._words

  def __hash__(self) -> int:
    return hash(self._words)

  def __repr__(self) -> str:
    return f"Vocab(size={len(self)})"

  def encode(self, tokens: Sequence[str], unk: bool = False) -> np.ndarray:
    """Maps words to ids.

    Args:
      tokens: Words to encode.
      unk: If true, words outside the vocabulary map to ``<unk>``; otherwise they raise.

    Returns:
      A 1-D int32 array of ids.

    Raises:
      KeyError: If a word is unknown and ``unk`` is false (or there is no ``<unk>``).
    """
    lookup = self._word_to_id
    if unk:
      unk_id = lookup[UNK]
      return np.fromiter((lookup.get(w, unk_id) for w in tokens), dtype=np.int32,
                         count=len(tokens))
    return np.fromiter((lookup[w] for w in tokens), dtype=np.int32, count=len(tokens))

  def decode(self, ids: Iterable[int]) -> list[str]:
    """Maps ids back to words."""
    return [self._words[int(i)] for i in ids]


class _ReadOnlyDict(collections.abc.Mapping):
  """A mapping view that cannot be mutated, so callers cannot corrupt the vocabulary."""

  def __init__(self, data):
    self._data = data

  def __getitem__(self, key):
    return self._data[key]

  def __len__(self):
    return len(self._data)

  def __iter__(self):
    return iter(self._data)

  def __contains__(self, key):
    return key in self._data

  def get(self, key, default=None):
    return self._data.get(key, default)


def read_tokens(path: Union[str, os.PathLike]) -> list[str]:
  """Reads a PTB text file as a list of tokens with ``<eos>`` after every line.

  Args:
    path: A ``ptb.*.txt`` file.

  Returns:
    The tokens.

  Raises:
    FileNotFoundError: If the file is missing.
    PTBFormatError: If the file is empty or contains no words.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"PTB file {path!r} does not exist; expected a text file with "
                            "one space-separated sentence per line")
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise PTBFormatError(f"PTB file {path!r} is not UTF-8 text (byte {e.start}: "
                         f"{e.reason}); expected Mikolov's ptb.*.txt files") from None
  if not text.strip():
    raise PTBFormatError(f"PTB file {path!r} is empty; expected one space-separated "
                         "sentence per line")
  tokens = []
  # splitlines() rather than split("\n"): a final line without a newline is still a
  # sentence and gets its <eos>, and a trailing newline does not add an empty sentence.
  for line in text.splitlines():
    tokens.extend(line.split())
    tokens.append(EOS)
  return tokens


# eq=False: element-wise array comparison has no single truth value.
@dataclasses.dataclass(frozen=True, eq=False)
class PTBData:
  """Encoded PTB splits plus the vocabulary that produced them (paper §4.2).

  Attributes:
    vocab: The :class:`Vocab` (``len(vocab)`` is the vocabulary size).
    train: Training token ids, 1-D int32.
    valid: Validation token ids, 1-D int32.
    test: Test token ids, 1-D int32.
  """

  vocab: Vocab
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray

  @property
  def word_to_id(self) -> Mapping[str, int]:
    """Shortcut for ``vocab.word_to_id``."""
    return self.vocab.word_to_id

  @property
  def vocab_size(self) -> int:
    return len(self.vocab)

  def save_vocab(self, path: Union[str, os.PathLike]) -> None:
    """Writes the vocabulary so that a later run can reuse the same ids."""
    self.vocab.save(path)

  def split(self, name: str) -> np.ndarray:
    """Returns the ids of split ``name`` ('train', 'valid' or 'test')."""
    if name not in SPLITS:
      raise ValueError(f"unknown PTB split {name!r}; expected one of {SPLITS}")
    return getattr(self, name)

  def num_batches(self, split: str, batch_size: int, num_steps: int) -> int:
    """Number of ``(inputs, targets)`` batches :meth:`batches` yields for one epoch."""
    return _num_windows(len(self.split(split)), batch_size, num_steps)

  def batch_arrays(self, split: str, batch_size: int,
                   num_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The batches of :meth:`batches` as two numpy arrays.

    Returns:
      ``(inputs, targets)``, each int32 ``[num_batches, batch_size, num_steps]``.
    """
    return make_lm_windows(self.split(split), batch_size, num_steps)

  def batches(self, split: str, batch_size: int, num_steps: int) -> tf.data.Dataset:
    """Language-model batches of one split, in the standard truncated-BPTT order.

    The stream is reshaped row-major into ``batch_size`` rows (the trailing
    ``len % batch_size`` tokens do not fit any row and are dropped), and batch ``k`` holds
    columns ``[k * num_steps, (k + 1) * num_steps)`` of every row; targets are the same
    window shifted by one token. Row ``r`` of batch ``k`` therefore continues row ``r``
    of batch ``k - 1``, which is what lets the trainer carry the recurrent state across
    batches. The order is deterministic (no shuffling), as in Zaremba et al. (2014).

    Args:
      split: 'train', 'valid' or 'test'.
      batch_size: Number of parallel rows, > 0.
      num_steps: Unrolled length of each window, > 0.

    Returns:
      A dataset of ``(inputs, targets)``, each int32 ``[batch_size, num_steps]``.

    Raises:
      ValueError: If the split is too short for even one batch.
    """
    inputs, targets = self.batch_arrays(split, batch_size, num_steps)
    return tf.data.Dataset.from_tensor_slices((inputs, targets))


def _num_windows(num_tokens: int, batch_size: int, num_steps: int) -> int:
  if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
    raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
  if not isinstance(num_steps, (int, np.integer)) or num_steps <= 0:
    raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
  row_len = num_tokens // batch_size
  # One extra token per row is needed for the last target.
  return max(0, (row_len - 1) // num_steps)


def make_lm_windows(ids: np.ndarray, batch_size: int,
                    num_steps: int) -> tuple[np.ndarray, np.ndarray]:
  """Cuts a token stream into language-model batches (see :meth:`PTBData.batches`).

  Args:
    ids: 1-D token ids.
    batch_size: Number of parallel rows.
    num_steps: Window length.

  Returns:
    ``(inputs, targets)``, each int32 ``[num_batches, batch_size, num_steps]``.

  Raises:
    ValueError: If ``ids`` cannot fill a single batch.
  """
  ids = np.asarray(ids, dtype=np.int32)
  if ids.ndim != 1:
    raise ValueError(f"token ids must be 1-D, got shape {ids.shape}")
  count = _num_windows(len(ids), batch_size, num_steps)
  if count == 0:
    raise ValueError(f"{len(ids)} tokens cannot fill one batch of batch_size={batch_size} x "
                     f"num_steps={num_steps} (need at least {batch_size * (num_steps + 1)})")
  row_len = len(ids) // batch_size
  rows = ids[:batch_size * row_len].reshape(batch_size, row_len)
  used = count * num_steps
  # [batch, count, steps] -> [count, batch, steps]: batch k holds window k of every row.
  inputs = rows[:, :used].reshape(batch_size, count, num_steps).transpose(1, 0, 2)
  targets = rows[:, 1:used + 1].reshape(batch_size, count, num_steps).transpose(1, 0, 2)
  return np.ascontiguousarray(inputs), np.ascontiguousarray(targets)


def load_vocab(path: Union[str, os.PathLike]) -> Vocab:
  """Reads a vocabulary written by :meth:`PTBData.save_vocab`."""
  return Vocab.load(path)


def _encode_split(vocab: Vocab, tokens: list[str], path: str) -> np.ndarray:
  lookup = vocab.word_to_id
  missing = collections.Counter(w for w in tokens if w not in lookup)
  if not missing:
    return vocab.encode(tokens)
  num_missing = sum(missing.values())
  examples = ", ".join(repr(w) for w, _ in missing.most_common(5))
  if UNK not in lookup:
    raise PTBFormatError(
        f"{path!r} has {num_missing} tokens ({len(missing)} types, e.g. {examples}) that are "
        f"not in the vocabulary, and the vocabulary has no {UNK!r} to map them to")
  logging.info("%s: mapped %d out-of-vocabulary tokens (%d types, e.g. %s) to %s", path,
               num_missing, len(missing), examples, UNK)
  return vocab.encode(tokens, unk=True)


def load_ptb(data_dir: Union[str, os.PathLike],
             vocab: Union[Vocab, str, os.PathLike, None] = None) -> PTBData:
  """Loads the PTB language-modelling splits (paper §4.2).

  Args:
    data_dir: Directory holding ``ptb.train.txt``, ``ptb.valid.txt`` and ``ptb.test.txt``.
    vocab: A :class:`Vocab`, or the path of a file from :meth:`PTBData.save_vocab`, to
      reuse existing ids. If None the vocabulary is built from the training file only
      (by decreasing frequency, ties by word), so that valid/test never leak into it.

  Returns:
    A :class:`PTBData`.

  Raises:
    FileNotFoundError: If the directory or one of the files is missing.
    PTBFormatError: If a file is empty, or a split has words outside the vocabulary and
      the vocabulary has no ``<unk>``.
  """
  data_dir = os.fspath(data_dir)
  if not os.path.isdir(data_dir):
    names = ", ".join(FILE_PATTERN.format(split=s) for s in SPLITS)
    raise FileNotFoundError(f"PTB directory {data_dir!r} does not exist; expected a "
                            f"directory with {names}")
  paths = {s: os.path.join(data_dir, FILE_PATTERN.format(split=s)) for s in SPLITS}
  tokens = {s: read_tokens(p) for s, p in paths.items()}
  if vocab is None:
    vocab = Vocab.from_tokens(tokens["train"])
  elif not isinstance(vocab, Vocab):
    vocab = Vocab.load(vocab)
  encoded = {s: _encode_split(vocab, tokens[s], paths[s]) for s in SPLITS}
  for ids in encoded.values():
    # Read-only so that a caller cannot corrupt the shared stream in place.
    ids.setflags(write=False)
  logging.info("Loaded PTB from %s: vocabulary %d, tokens train/valid/test %d/%d/%d",
               data_dir, len(vocab), len(encoded["train"]), len(encoded["valid"]),
               len(encoded["test"]))
  return PTBData(vocab=vocab, **encoded)
