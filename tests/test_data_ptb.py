"""Tests for the PTB pipeline (paper §4.2): vocabulary, encoding, LM batching, errors."""

import collections
import logging

import numpy as np
import pytest

from conftest import ROOT, TESTDATA
from nas_tf.data import ptb as ptb_lib
from nas_tf.data import EOS, UNK, PTBFormatError, Vocab, load_ptb, load_vocab, make_lm_windows

PTB_DIR = TESTDATA / "ptb"
REAL_PTB_DIR = ROOT.parent / "shared/data" / "ptb"


def _file_tokens(split):
  """Independent reading of a fixture file: words of each line, then <eos>."""
  tokens = []
  for line in (PTB_DIR / f"ptb.{split}.txt").read_text().splitlines():
    tokens += line.split() + [EOS]
  return tokens


def _write_ptb(directory, train, valid, test):
  directory.mkdir(parents=True, exist_ok=True)
  for split, text in (("train", train), ("valid", valid), ("test", test)):
    (directory / f"ptb.{split}.txt").write_text(text)
  return directory


@pytest.fixture(scope="module")
def ptb():
  return load_ptb(PTB_DIR)


def test_fixture_token_counts_and_dtype(ptb):
  for split, lines in (("train", 300), ("valid", 60), ("test", 60)):
    ids = getattr(ptb, split)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert len(ids) == len(_file_tokens(split))
    # One <eos> per line.
    assert int(np.sum(ids == ptb.word_to_id[EOS])) == lines


def test_vocab_from_train_only_with_stable_ids(ptb):
  counts = collections.Counter(_file_tokens("train"))
  assert set(ptb.vocab) == set(counts)
  assert len(ptb.vocab) == len(counts)
  expected = sorted(counts, key=lambda w: (-counts[w], w))
  assert list(ptb.vocab) == expected
  for i, word in enumerate(ptb.vocab):
    assert ptb.vocab.word_to_id[word] == i
  # Loading twice gives the same ids (no hash-order dependence).
  assert load_ptb(PTB_DIR).vocab == ptb.vocab


def test_train_ids_round_trip_to_words(ptb):
  assert ptb.vocab.decode(ptb.train) == _file_tokens("train")
  first_line = (PTB_DIR / "ptb.train.txt").read_text().splitlines()[0].split()
  assert ptb.vocab.decode(ptb.train[:len(first_line) + 1]) == first_line + [EOS]


def test_valid_oov_words_map_to_unk_and_are_logged(ptb, caplog):
  tokens = _file_tokens("valid")
  oov = [i for i, w in enumerate(tokens) if w not in ptb.vocab]
  assert oov, "the 300-line training excerpt should miss some validation words"
  unk_id = ptb.word_to_id[UNK]
  np.testing.assert_array_equal(ptb.valid[oov], unk_id)
  known = [i for i, w in enumerate(tokens) if w in ptb.vocab]
  assert ptb.vocab.decode(ptb.valid[known]) == [tokens[i] for i in known]
  # On absl's logger itself: a binary run earlier in this worker may have set its level.
  with caplog.at_level(logging.INFO, logger="absl"):
    load_ptb(PTB_DIR)
  assert any(f"mapped {len(oov)} out-of-vocabulary" in r.getMessage() for r in caplog.records)


def test_oov_without_unk_raises(tmp_path):
  directory = _write_ptb(tmp_path / "p", "a b\nb c\n", "a zebra\n", "a\n")
  with pytest.raises(PTBFormatError, match=r"ptb\.valid\.txt.*'zebra'.*no '<unk>'"):
    load_ptb(directory)


def test_small_stream_ids_and_final_line_without_newline(tmp_path):
  directory = _write_ptb(tmp_path / "p", "b a b\nc b", "b c\n", "a\n")
  data = load_ptb(directory)
  # Counts: b=3, <eos>=2, a=1, c=1 -> ties broken alphabetically.
  assert list(data.vocab) == ["b", EOS, "a", "c"]
  np.testing.assert_array_equal(data.train, [0, 2, 0, 1, 3, 0, 1])
  np.testing.assert_array_equal(data.valid, [0, 3, 1])


def test_make_lm_windows_matches_hand_computation():
  inputs, targets = make_lm_windows(np.arange(20), batch_size=2, num_steps=3)
  # Rows: 0..9 and 10..19; (10 - 1) // 3 = 3 windows.
  np.testing.assert_array_equal(inputs, [[[0, 1, 2], [10, 11, 12]],
                                         [[3, 4, 5], [13, 14, 15]],
                                         [[6, 7, 8], [16, 17, 18]]])
  np.testing.assert_array_equal(targets, [[[1, 2, 3], [11, 12, 13]],
                                          [[4, 5, 6], [14, 15, 16]],
                                          [[7, 8, 9], [17, 18, 19]]])
  # 21 tokens: rows of 10, one token dropped; still 3 windows.
  inputs21, _ = make_lm_windows(np.arange(21), batch_size=2, num_steps=3)
  np.testing.assert_array_equal(inputs21, inputs)


def test_batches_dataset_on_tiny_stream(tmp_path):
  words = [f"w{i:02d}" for i in range(19)]
  # One line of 19 distinct words + <eos> = 20 tokens, each word once.
  directory = _write_ptb(tmp_path / "p", " ".join(words) + "\n", "w00\n", "w01\n")
  data = load_ptb(directory)
  got = [(x.numpy(), y.numpy()) for x, y in data.batches("train", 2, 3)]
  assert data.num_batches("train", 2, 3) == len(got) == 3
  expected_inputs, expected_targets = make_lm_windows(data.train, 2, 3)
  for k, (x, y) in enumerate(got):
    assert x.dtype == np.int32 and x.shape == (2, 3)
    np.testing.assert_array_equal(x, expected_inputs[k])
    np.testing.assert_array_equal(y, expected_targets[k])
  # The words themselves: row 0 is the first 10 tokens.
  assert data.vocab.decode(got[1][0][0]) == words[3:6]
  assert data.vocab.decode(got[2][1][1]) == words[17:19] + [EOS]


def test_batches_rows_continue_and_targets_shift(ptb):
  batch_size, num_steps = 4, 7
  batches = [(x.numpy(), y.numpy()) for x, y in ptb.batches("train", batch_size, num_steps)]
  assert len(batches) == ptb.num_batches("train", batch_size, num_steps)
  row_len = len(ptb.train) // batch_size
  assert len(batches) == (row_len - 1) // num_steps
  inputs = np.concatenate([x for x, _ in batches], axis=1)
  targets = np.concatenate([y for _, y in batches], axis=1)
  for r in range(batch_size):
    start = r * row_len
    np.testing.assert_array_equal(inputs[r], ptb.train[start:start + inputs.shape[1]])
    np.testing.assert_array_equal(targets[r], ptb.train[start + 1:start + 1 + inputs.shape[1]])
  # Deterministic: a second pass is identical.
  again = [x.numpy() for x, _ in ptb.batches("train", batch_size, num_steps)]
  np.testing.assert_array_equal(np.stack(again), np.stack([x for x, _ in batches]))


def test_batch_argument_errors(ptb):
  with pytest.raises(ValueError, match="cannot fill one batch"):
    ptb.batches("valid", 1000, 100)
  with pytest.raises(ValueError, match="batch_size"):
    ptb.batches("train", 0, 5)
  with pytest.raises(ValueError, match="num_steps"):
    ptb.num_batches("train", 2, -1)
  with pytest.raises(ValueError, match="unknown PTB split 'dev'"):
    ptb.batches("dev", 2, 2)


def test_save_and_reload_vocab(ptb, tmp_path):
  path = tmp_path / "vocab.txt"
  ptb.save_vocab(path)
  assert path.read_text().split("\n")[:3] == list(ptb.vocab[:3])
  vocab = load_vocab(path)
  assert vocab == ptb.vocab
  for source in (path, vocab):
    reloaded = load_ptb(PTB_DIR, vocab=source)
    for split in ("train", "valid", "test"):
      np.testing.assert_array_equal(getattr(reloaded, split), getattr(ptb, split))


def test_given_vocab_is_used_for_other_data(tmp_path):
  vocab = Vocab(["x", UNK, EOS, "a"])
  directory = _write_ptb(tmp_path / "p", "a b\n", "a\n", "x\n")
  data = load_ptb(directory, vocab=vocab)
  np.testing.assert_array_equal(data.train, [3, 1, 2])  # 'b' -> <unk>.


def test_vocab_is_read_only_and_validated(ptb, tmp_path):
  with pytest.raises(TypeError):
    ptb.word_to_id["new"] = 1  # pytype: disable=unsupported-operands
  with pytest.raises(ValueError):
    ptb.train[0] = 5
  with pytest.raises(PTBFormatError, match="appears twice"):
    Vocab(["a", "b", "a"])
  with pytest.raises(PTBFormatError, match="whitespace"):
    Vocab(["a b"])
  bad = tmp_path / "dup.txt"
  bad.write_text("a\nb\na\n")
  with pytest.raises(PTBFormatError, match=r"dup\.txt.*appears twice"):
    load_vocab(bad)
  empty = tmp_path / "empty.txt"
  empty.write_text("")
  with pytest.raises(PTBFormatError, match=r"empty\.txt.*empty"):
    load_vocab(empty)
  with pytest.raises(FileNotFoundError, match="nope.txt"):
    load_vocab(tmp_path / "nope.txt")


def test_missing_and_empty_inputs_raise_naming_the_path(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"PTB directory .*absent.*ptb\.train\.txt"):
    load_ptb(tmp_path / "absent")
  directory = _write_ptb(tmp_path / "p", "a\n", "a\n", "a\n")
  (directory / "ptb.test.txt").unlink()
  with pytest.raises(FileNotFoundError, match=r"ptb\.test\.txt"):
    load_ptb(directory)
  (directory / "ptb.test.txt").write_text("  \n")
  with pytest.raises(PTBFormatError, match=r"ptb\.test\.txt.* is empty"):
    load_ptb(directory)


@pytest.mark.skipif(not REAL_PTB_DIR.is_dir(), reason="real PTB data not available")
def test_real_ptb_counts():
  data = load_ptb(REAL_PTB_DIR)
  assert len(data.vocab) == 10000
  assert (len(data.train), len(data.valid), len(data.test)) == (929589, 73760, 82430)
  # The real release has every valid/test word in the training vocabulary.
  assert ptb_lib.read_tokens(REAL_PTB_DIR / "ptb.valid.txt") == data.vocab.decode(data.valid)
  assert list(data.vocab[:4]) == ["the", UNK, EOS, "N"]
  assert data.num_batches("train", 20, 35) == 1327


def test_non_utf8_file_error_names_the_file(tmp_path):
  bad = tmp_path / "ptb.train.txt"
  bad.write_bytes(b"the cat \xff\xfe sat\n")
  with pytest.raises(PTBFormatError, match="ptb.train.txt.*not UTF-8"):
    ptb_lib.read_tokens(bad)
