"""Tests for the CIFAR-10 pipeline (paper §4.1): formats, split, whitening, augmentation.

The fixtures (testdata/make_fixtures.py) hold the same 40 training + 20 test images in
the pickle and binary releases (same shuffled order), as lossless PNG folders (class-major
order) and as a JPEG tarball (lossy, so compared with a tolerance).
"""

import os
import pathlib
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, TESTDATA
from nas_tf.data import cifar10 as cifar_lib
from nas_tf.data import CLASS_NAMES, Cifar10FormatError, load_cifar10, load_cifar10_arrays

FIXTURES = TESTDATA / "cifar10"
PY_DIR = FIXTURES / "cifar-10-batches-py"
BIN_DIR = FIXTURES / "cifar-10-batches-bin"
PNG_DIR = FIXTURES / "png"
JPEG_TAR = FIXTURES / "cifar10-jpeg-mini.tar.gz"
REAL_TAR = ROOT.parent / "shared/data" / "cifar10-jpeg.tar.gz"
NUM_TRAIN, NUM_TEST = 40, 20


def _canonical(images, labels):
  """Sorts by (label, pixels) so layouts with different image orders can be compared."""
  order = sorted(range(len(labels)), key=lambda i: (labels[i], images[i].tobytes()))
  return images[order], labels[order]


@pytest.fixture(scope="module")
def arrays():
  return {name: load_cifar10_arrays(path) for name, path in
          (("pickle", PY_DIR), ("binary", BIN_DIR), ("png", PNG_DIR))}


@pytest.fixture(scope="module")
def cifar():
  return load_cifar10(PY_DIR, validation_size=10, seed=3)


def test_shapes_dtypes_and_counts(arrays):
  for result in arrays.values():
    assert result["train_images"].shape == (NUM_TRAIN, 32, 32, 3)
    assert result["test_images"].shape == (NUM_TEST, 32, 32, 3)
    assert result["train_images"].dtype == np.uint8
    assert result["train_labels"].dtype == np.int32
    np.testing.assert_array_equal(np.bincount(result["train_labels"]), [4] * 10)
    np.testing.assert_array_equal(np.bincount(result["test_labels"]), [2] * 10)


def test_pickle_and_binary_are_identical(arrays):
  for key in arrays["pickle"]:
    np.testing.assert_array_equal(arrays["pickle"][key], arrays["binary"][key])


def test_png_folder_has_the_same_pixels_and_labels(arrays):
  for split in ("train", "test"):
    got = _canonical(arrays["png"][f"{split}_images"], arrays["png"][f"{split}_labels"])
    want = _canonical(arrays["pickle"][f"{split}_images"], arrays["pickle"][f"{split}_labels"])
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_labels_match_pickle_files_and_folders(arrays):
  batches = []
  for name in ("data_batch_1", "data_batch_2"):
    with open(PY_DIR / name, "rb") as f:
      batches.append(pickle.load(f, encoding="bytes"))
  start, batch = len(batches[0][b"labels"]), batches[1]
  got = arrays["pickle"]["train_labels"][start:start + len(batch[b"labels"])]
  np.testing.assert_array_equal(got, batch[b"labels"])
  # Pixel layout: the first row of the pickle is the red plane of image 0.
  np.testing.assert_array_equal(arrays["pickle"]["train_images"][start, :, :, 0].ravel(),
                                batch[b"data"][0, :1024])
  # Image folders: class-major in CLASS_NAMES order, label = folder.
  files = sorted(PNG_DIR.glob("train/*/*.png"), key=lambda p: (
      CLASS_NAMES.index(p.parent.name), p.name))
  np.testing.assert_array_equal(arrays["png"]["train_labels"],
                                [CLASS_NAMES.index(p.parent.name) for p in files])
  first_bird = files[8]
  assert first_bird.parent.name == "bird"
  np.testing.assert_array_equal(arrays["png"]["train_images"][8],
                                tf.io.decode_png(tf.io.read_file(str(first_bird))).numpy())


def test_jpeg_tarball_is_close_and_cached(arrays, tmp_path, monkeypatch):
  jpeg = load_cifar10_arrays(JPEG_TAR, cache_dir=tmp_path)
  for split in ("train", "test"):
    np.testing.assert_array_equal(jpeg[f"{split}_labels"], arrays["png"][f"{split}_labels"])
    diff = np.abs(jpeg[f"{split}_images"].astype(int) - arrays["png"][f"{split}_images"])
    assert diff.mean() < 6, "JPEG quality 75 of smooth images stays within a few levels"
  assert [p.suffix for p in tmp_path.iterdir()] == [".npz"], "only the array cache is written"
  # The second load must come from the cache, not from re-reading the archive.
  monkeypatch.setattr(cifar_lib, "_TarTree", lambda _: pytest.fail("not cached"))
  again = load_cifar10_arrays(str(JPEG_TAR), cache_dir=tmp_path)
  for key in jpeg:
    np.testing.assert_array_equal(again[key], jpeg[key])


def test_unwritable_cache_is_not_fatal(tmp_path):
  (tmp_path / "file").write_text("a file where the cache dir should be")
  got = load_cifar10_arrays(JPEG_TAR, cache_dir=tmp_path / "file" / "cache")
  assert got["train_images"].shape == (NUM_TRAIN, 32, 32, 3)


def test_parent_directory_is_accepted(tmp_path, arrays):
  shutil.copytree(PY_DIR, tmp_path / "cifar-10-batches-py")
  (tmp_path / "README").write_text("unrelated file")
  got = load_cifar10_arrays(tmp_path)
  np.testing.assert_array_equal(got["train_images"], arrays["pickle"]["train_images"])
  # The fixture root holds three copies: ambiguity is an error, not a guess.
  with pytest.raises(Cifar10FormatError, match="several CIFAR-10 copies"):
    load_cifar10_arrays(FIXTURES)


def test_tfds_source_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12):
    data = load_cifar10("tfds", validation_size=2)
  assert data.num_examples == {"train": 10, "validation": 2, "test": 12}
  image, label = next(iter(data.train))
  assert image.dtype == tf.float32 and image.shape == (32, 32, 3) and label.dtype == tf.int32


def test_split_sizes_disjoint_and_seeded(cifar, arrays):
  assert cifar.num_examples == {"train": 30, "validation": 10, "test": 20}
  assert cifar.class_names == CLASS_NAMES
  source = arrays["pickle"]["train_images"]
  train_keys = {x.tobytes() for x in cifar.arrays("train")[0]}
  val_keys = {x.tobytes() for x in cifar.arrays("validation")[0]}
  assert len(train_keys) == 30 and len(val_keys) == 10 and not train_keys & val_keys
  assert train_keys | val_keys == {x.tobytes() for x in source}
  np.testing.assert_array_equal(cifar.arrays("validation")[0], source[cifar.validation_indices])
  np.testing.assert_array_equal(cifar.arrays("test")[0], arrays["pickle"]["test_images"])
  same = load_cifar10(PY_DIR, validation_size=10, seed=3)
  other = load_cifar10(PY_DIR, validation_size=10, seed=4)
  np.testing.assert_array_equal(same.validation_indices, cifar.validation_indices)
  assert not np.array_equal(other.validation_indices, cifar.validation_indices)


def test_unbatched_datasets(cifar):
  for split in ("train", "validation", "test"):
    dataset = getattr(cifar, split)
    images, labels = cifar.arrays(split)
    got = list(dataset)
    assert len(got) == cifar.num_examples[split]
    image, label = got[0]
    assert image.dtype == tf.float32 and image.shape == (32, 32, 3)
    assert label.dtype == tf.int32 and int(label) == labels[0]
    np.testing.assert_allclose(image.numpy(), images[0] / 255.0, atol=1e-7)


def test_whitening_gives_zero_mean_unit_std(cifar):
  images = np.concatenate([x.numpy() for x, _ in cifar.batched("train", 7, augment=False)])
  assert images.shape == (30, 32, 32, 3)
  # Reduce in float64: a float32 sum of 30k values is itself off by ~1e-5.
  images = images.astype(np.float64)
  np.testing.assert_allclose(images.mean(axis=(0, 1, 2)), 0, atol=1e-5)
  np.testing.assert_allclose(images.std(axis=(0, 1, 2)), 1, atol=1e-4)
  raw = cifar.arrays("train")[0].reshape(-1, 3) / 255.0
  np.testing.assert_allclose(cifar.mean, raw.mean(axis=0), rtol=1e-6)
  np.testing.assert_allclose(cifar.std, raw.std(axis=0), rtol=1e-5)


def test_augmentation_is_a_padded_crop_and_flip(cifar):
  plain = [(x.numpy(), y.numpy()) for x, y in
           cifar.batched("train", 16, augment=False, shuffle=False)]
  augmented = [(x.numpy(), y.numpy()) for x, y in cifar.batched("train", 16, shuffle=False)]
  assert [x.shape for x, _ in augmented] == [(16, 32, 32, 3), (14, 32, 32, 3)]
  originals = np.concatenate([x for x, _ in plain])
  images = np.concatenate([x for x, _ in augmented])
  np.testing.assert_array_equal(np.concatenate([y for _, y in augmented]),
                                np.concatenate([y for _, y in plain]))
  assert not np.allclose(images, originals)
  padded = np.pad(originals, [(0, 0), (4, 4), (4, 4), (0, 0)])
  moved = 0
  for i, image in enumerate(images):
    matches = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
               if np.allclose(image, (lambda c: c[:, ::-1] if flip else c)(
                   padded[i, dy:dy + 32, dx:dx + 32]), atol=1e-6)]
    assert matches, f"image {i} is not a 4-px padded crop (+flip) of its original"
    moved += (4, 4, False) not in matches
  assert moved > len(images) // 2


def test_pipeline_is_deterministic_per_seed_and_reshuffles_each_epoch(cifar):
  def epoch(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]
  dataset = cifar.batched("train", 8, seed=5)
  first, second = epoch(dataset), epoch(dataset)
  fresh = epoch(cifar.batched("train", 8, seed=5))
  for (x1, y1), (x2, y2) in zip(first, fresh):
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
  other = epoch(cifar.batched("train", 8, seed=6))
  assert not np.array_equal(first[0][0], other[0][0])
  assert not np.array_equal(first[0][0], second[0][0])
  # Every epoch visits each example once.
  labels = cifar.arrays("train")[1]
  for run in (first, second):
    np.testing.assert_array_equal(np.sort(np.concatenate([y for _, y in run])), np.sort(labels))
  # Evaluation splits default to neither shuffling nor augmenting.
  test_x = np.concatenate([x.numpy() for x, _ in cifar.batched("test", 6)])
  want = (cifar.arrays("test")[0] / 255.0 - cifar.mean) / cifar.std
  np.testing.assert_allclose(test_x, want, atol=1e-5)


def test_num_examples_truncates_deterministically(cifar):
  batches = list(cifar.batched("train", 5, augment=False, shuffle=False, num_examples=12))
  labels = np.concatenate([y.numpy() for _, y in batches])
  np.testing.assert_array_equal(labels, cifar.arrays("train")[1][:12])
  assert [int(y.shape[0]) for _, y in batches] == [5, 5, 2]
  assert len(list(cifar.batched("train", 5, num_examples=12, drop_remainder=True))) == 2
  # Even from a class-major image folder, a prefix of the split mixes classes.
  folder = load_cifar10(PNG_DIR, validation_size=10, seed=0)
  assert len(set(folder.arrays("train")[1][:10])) >= 5
  assert len(set(folder.arrays("validation")[1])) >= 5
  with pytest.raises(ValueError, match="num_examples must be in"):
    cifar.batched("train", 5, num_examples=31)
  with pytest.raises(ValueError, match="unknown CIFAR-10 split"):
    cifar.batched("valid", 5)
  with pytest.raises(ValueError, match="validation_size"):
    load_cifar10(PY_DIR, validation_size=40)


# --- Bad input: every case raises, naming the path and what was expected. ---


def _copy(src, tmp_path):
  return pathlib.Path(shutil.copytree(src, tmp_path / src.name))


def _rewrite_pickle(path, **changes):
  with open(path, "rb") as f:
    batch = pickle.load(f, encoding="bytes")
  batch.update({k.encode(): v for k, v in changes.items()})
  with open(path, "wb") as f:
    pickle.dump(batch, f, protocol=2)


class _Evil:

  def __reduce__(self):
    return (os.getcwd, ())


def test_missing_or_unknown_sources(tmp_path):
  with pytest.raises(FileNotFoundError, match="absent.*does not exist"):
    load_cifar10(tmp_path / "absent")
  with pytest.raises(FileNotFoundError, match=r"nope\.tar\.gz"):
    load_cifar10(tmp_path / "nope.tar.gz", cache_dir=tmp_path)
  (tmp_path / "stuff").mkdir()
  (tmp_path / "stuff" / "notes.txt").write_text("hello")
  with pytest.raises(Cifar10FormatError, match="stuff.*matches no known CIFAR-10 layout"):
    load_cifar10(tmp_path / "stuff")
  with pytest.raises(Cifar10FormatError, match=r"notes\.txt.* is a file"):
    load_cifar10(tmp_path / "stuff" / "notes.txt")
  bad_tar = tmp_path / "bad.tar.gz"
  bad_tar.write_bytes(b"not a gzip file at all")
  with pytest.raises(Cifar10FormatError, match=r"cannot read .*bad\.tar\.gz.*expected a gzip"):
    load_cifar10(bad_tar, cache_dir=tmp_path / "cache")


def test_pickle_errors(tmp_path):
  root = _copy(PY_DIR, tmp_path)
  (root / "data_batch_3").rename(tmp_path / "moved")
  with pytest.raises(FileNotFoundError, match="data_batch_3"):
    load_cifar10(root, validation_size=1)
  (tmp_path / "moved").rename(root / "data_batch_3")
  _rewrite_pickle(root / "data_batch_2", labels=[1, 2, 3])
  with pytest.raises(Cifar10FormatError, match="data_batch_2.* 3 labels for 8 images"):
    load_cifar10(root, validation_size=1)
  _rewrite_pickle(root / "data_batch_2", labels=[0] * 7 + [10])
  with pytest.raises(Cifar10FormatError, match=r"data_batch_2.*label 10; expected .*\[0, 10\)"):
    load_cifar10(root, validation_size=1)
  with open(root / "data_batch_2", "wb") as f:
    pickle.dump({b"data": _Evil(), b"labels": []}, f, protocol=2)
  with pytest.raises(Cifar10FormatError, match="data_batch_2.*refusing to unpickle posix.getcwd"):
    load_cifar10(root, validation_size=1)
  shutil.copy(PY_DIR / "data_batch_2", root / "data_batch_2")
  (root / "test_batch").write_bytes(b"")
  with pytest.raises(Cifar10FormatError, match="test_batch.* is empty"):
    load_cifar10_arrays(root)
  _rewrite_pickle(root / "batches.meta", label_names=[b"cat", b"dog"])
  with pytest.raises(Cifar10FormatError, match=r"batches\.meta.*expected CIFAR-10's"):
    load_cifar10(root, validation_size=1)


def test_binary_errors(tmp_path):
  root = _copy(BIN_DIR, tmp_path)
  raw = (root / "data_batch_4.bin").read_bytes()
  (root / "data_batch_4.bin").write_bytes(raw[:-1])
  with pytest.raises(Cifar10FormatError, match=r"data_batch_4\.bin.*not a multiple of the 3073"):
    load_cifar10(root, validation_size=1)
  (root / "data_batch_4.bin").write_bytes(bytes([11]) + raw[1:])
  with pytest.raises(Cifar10FormatError, match=r"data_batch_4\.bin.*label 11"):
    load_cifar10(root, validation_size=1)
  (root / "data_batch_4.bin").write_bytes(b"")
  with pytest.raises(Cifar10FormatError, match=r"data_batch_4\.bin.* is empty"):
    load_cifar10(root, validation_size=1)
  (root / "batches.meta.txt").unlink()
  with pytest.raises(FileNotFoundError, match=r"batches\.meta\.txt"):
    load_cifar10(root, validation_size=1)


def test_image_folder_errors(tmp_path):
  root = _copy(PNG_DIR, tmp_path)
  (root / "train" / "zebra").mkdir()
  with pytest.raises(Cifar10FormatError, match=r"train.*\['zebra'\].*not CIFAR-10 class"):
    load_cifar10(root, validation_size=1)
  (root / "train" / "zebra").rmdir()
  (root / "test" / "stray.png").write_bytes(b"x")
  with pytest.raises(Cifar10FormatError, match=r"test.*stray\.png"):
    load_cifar10(root, validation_size=1)
  (root / "test" / "stray.png").unlink()
  shutil.rmtree(root / "test" / "frog")
  with pytest.raises(FileNotFoundError, match=r"test.*no folder for classes \['frog'\]"):
    load_cifar10(root, validation_size=1)
  (root / "test" / "frog").mkdir()
  with pytest.raises(Cifar10FormatError, match=r"frog.* is empty"):
    load_cifar10(root, validation_size=1)
  shutil.copy(root / "test" / "cat" / sorted(os.listdir(root / "test" / "cat"))[0],
              root / "test" / "frog" / "0000.png")
  victim = root / "train" / "ship" / sorted(os.listdir(root / "train" / "ship"))[2]
  victim.write_bytes(b"\x89PNG but not really")
  with pytest.raises(Cifar10FormatError, match=f"cannot decode image .*{victim.name}"):
    load_cifar10(root, validation_size=1)
  victim.write_bytes(b"")
  with pytest.raises(Cifar10FormatError, match=f"{victim.name}' is an empty file"):
    load_cifar10(root, validation_size=1)
  victim.write_bytes(tf.io.encode_png(tf.zeros([16, 32, 3], tf.uint8)).numpy())
  with pytest.raises(Cifar10FormatError, match=rf"{victim.name}' has shape \(16, 32, 3\)"):
    load_cifar10(root, validation_size=1)


def _tar(tmp_path, name, root, arcname):
  archive = tmp_path / name
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(root, arcname=arcname)
  return archive


def test_tarballs_of_releases_and_their_errors(tmp_path, arrays):
  # Like the official cifar-10-python.tar.gz: one release folder at the top.
  archive = _tar(tmp_path, "cifar-10-python.tar.gz", PY_DIR, "cifar-10-batches-py")
  got = load_cifar10_arrays(archive, cache_dir=tmp_path / "cache")
  for key, value in arrays["pickle"].items():
    np.testing.assert_array_equal(got[key], value)
  root = _copy(PNG_DIR, tmp_path / "src")
  (root / "test" / "dog" / "0011.png").write_bytes(b"garbage")
  archive = _tar(tmp_path, "broken.tar.gz", root, "images")
  with pytest.raises(Cifar10FormatError,
                     match=r"cannot decode image .*broken\.tar\.gz:images/test/dog/0011\.png"):
    load_cifar10(archive, cache_dir=tmp_path / "cache")
  root = _copy(BIN_DIR, tmp_path / "src")
  (root / "test_batch.bin").unlink()
  archive = _tar(tmp_path, "partial.tar.gz", root, "cifar-10-batches-bin")
  with pytest.raises(FileNotFoundError,
                     match=r"partial\.tar\.gz:cifar-10-batches-bin/test_batch\.bin"):
    load_cifar10(archive, cache_dir=tmp_path / "cache")
  (root / "link").symlink_to(root / "batches.meta.txt")
  archive = _tar(tmp_path, "linked.tar.gz", root, "cifar-10-batches-bin")
  with pytest.raises(Cifar10FormatError, match=r"linked\.tar\.gz.*'cifar-10-batches-bin/link'"):
    load_cifar10(archive, cache_dir=tmp_path / "cache")


@pytest.mark.slow
@pytest.mark.skipif(not REAL_TAR.is_file(), reason="real CIFAR-10 archive not available")
def test_real_cifar10_jpeg_archive_counts():
  # Default cache dir on purpose: the decode is paid once per machine, later runs take ~2 s.
  data = load_cifar10(REAL_TAR)
  assert data.num_examples == {"train": 45000, "validation": 5000, "test": 10000}
  for split in ("train", "validation", "test"):
    labels = data.arrays(split)[1]
    assert set(np.unique(labels)) == set(range(10))
  np.testing.assert_array_equal(np.bincount(data.arrays("test")[1]), [1000] * 10)
  train_counts = np.bincount(data.arrays("train")[1]) + np.bincount(data.arrays("validation")[1])
  np.testing.assert_array_equal(train_counts, [5000] * 10)
  assert 0.4 < data.mean.mean() < 0.55 and 0.2 < data.std.mean() < 0.3
