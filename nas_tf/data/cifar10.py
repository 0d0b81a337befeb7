"""CIFAR-10 image classification data (Zoph & Le 2017, §4.1).

The paper searches convolutional architectures on CIFAR-10: 5,000 of the 50,000
training images are held out at random as the validation set that produces the
controller's reward, the children train on the remaining 45,000, and the 10,000 test
images are used only for the final evaluation. Images are whitened (per-channel mean and
standard deviation of the training split), then padded and randomly cropped back to
32x32 and randomly flipped left-right.

The loader reads every common distribution of the data into uint8 numpy arrays kept in
memory (60,000 images are 184 MB):

* ``"tfds"`` -- the tensorflow-datasets ``cifar10`` builder;
* the python release, ``cifar-10-batches-py/`` (pickled ``data_batch_1..5``,
  ``test_batch``, ``batches.meta``);
* the binary release, ``cifar-10-batches-bin/`` (``data_batch_1..5.bin``,
  ``test_batch.bin``, ``batches.meta.txt``; records are 1 label byte + 3072 CHW bytes);
* an image folder ``ROOT/{train,test}/<class>/<image>`` (JPEG or PNG);
* any directory containing exactly one of the above, or a ``.tar.gz`` of one, which is
  extracted into a cache directory where the decoded arrays are cached as well.

Nothing is skipped: a missing or empty file, an undecodable image, a label out of range
or an unknown class folder raises an error naming the path and what was expected.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import tarfile
import tempfile
from typing import Optional, Union

from absl import logging
import numpy as np
import tensorflow as tf

# Canonical label order shared by every release (and by tensorflow-datasets); it happens
# to be alphabetical, so image folders sorted by name agree with the pickles.
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
               "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
_IMAGE_BYTES = 32 * 32 * 3
_RECORD_BYTES = 1 + _IMAGE_BYTES
_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_PAD = 4  # Pixels of padding before the random 32x32 crop.
_CACHE_VERSION = "v1"  # Bump when the cached array layout changes.
SPLITS = ("train", "validation", "test")

PathLike = Union[str, os.PathLike]


class Cifar10FormatError(ValueError):
  """CIFAR-10 input is malformed; the message names the path and what was expected."""


def _expected_layouts() -> str:
  return ("expected 'tfds', a .tar.gz, or a directory holding the python release "
          "(data_batch_1..5, test_batch, batches.meta), the binary release "
          "(data_batch_1..5.bin, test_batch.bin, batches.meta.txt), an image folder "
          "(train/<class>/*, test/<class>/*), or a parent of exactly one of these")


def _require_file(path: str, what: str) -> str:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"missing CIFAR-10 file {path!r}; expected {what}")
  if os.path.getsize(path) == 0:
    raise Cifar10FormatError(f"CIFAR-10 file {path!r} is empty; expected {what}")
  return path


def _check_labels(labels: np.ndarray, num_images: int, path: str) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 1 or len(labels) != num_images:
    raise Cifar10FormatError(f"{path!r} has {labels.size} labels for {num_images} images; "
                             "expected one label per image")
  if num_images and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
    bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))][0]
    raise Cifar10FormatError(f"{path!r} has label {int(bad)}; expected labels in "
                             f"[0, {len(CLASS_NAMES)})")
  return labels.astype(np.int32)


def _check_class_names(names, path: str) -> None:
  if tuple(names) != CLASS_NAMES:
    raise Cifar10FormatError(f"{path!r} lists classes {list(names)}; expected CIFAR-10's "
                             f"{list(CLASS_NAMES)}")


def _chw_rows_to_hwc(rows: np.ndarray) -> np.ndarray:
  # Both official releases store each image as the 1024 red, then green, then blue bytes.
  return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Unpickles only plain containers and numpy arrays.

  Unpickling can run arbitrary code; the CIFAR batches need nothing beyond numpy's
  array reconstruction, so everything else is refused.
  """

  _ALLOWED = {
      ("numpy", "ndarray"), ("numpy", "dtype"),
      ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
      ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
      # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
      ("_codecs", "encode"),
  }

  def find_class(self, module, name):
    if (module, name) in self._ALLOWED:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _unpickle(path: str, what: str) -> dict:
  _require_file(path, what)
  try:
    with open(path, "rb") as f:
      # The release was pickled by Python 2; "bytes" keeps its str keys as bytes.
      obj = _NumpyOnlyUnpickler(f, encoding="bytes").load()
  except Exception as e:  # Any failure here means the file is not a CIFAR pickle.
    raise Cifar10FormatError(f"cannot unpickle {path!r} ({e}); expected {what}") from None
  if not isinstance(obj, dict):
    raise Cifar10FormatError(f"{path!r} holds a {type(obj).__name__}; expected a dict ({what})")
  return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_pickle_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
  what = "a pickled dict with 'data' (N x 3072 uint8) and 'labels'"
  batch = _unpickle(path, what)
  if "data" not in batch or "labels" not in batch:
    raise Cifar10FormatError(f"{path!r} has keys {sorted(batch)}; expected {what}")
  data = np.asarray(batch["data"])
  if data.ndim != 2 or data.shape[1] != _IMAGE_BYTES or data.dtype != np.uint8 or not len(data):
    raise Cifar10FormatError(f"{path!r} has data of shape {data.shape} and dtype {data.dtype}; "
                             f"expected {what}")
  labels = _check_labels(np.asarray(batch["labels"], dtype=np.int64), len(data), path)
  return _chw_rows_to_hwc(data), labels


def _load_pickle_dir(root: str) -> dict:
  meta_path = os.path.join(root, "batches.meta")
  meta = _unpickle(meta_path, "a pickled dict with 'label_names'")
  names = [n.decode("utf-8") if isinstance(n, bytes) else n for n in meta.get("label_names", [])]
  _check_class_names(names, meta_path)
  train = [_read_pickle_batch(os.path.join(root, name)) for name in _TRAIN_BATCHES]
  test = _read_pickle_batch(os.path.join(root, "test_batch"))
  return _arrays(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                 *test)


def _read_binary_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
  _require_file(path, f"records of {_RECORD_BYTES} bytes (1 label byte + 3072 image bytes)")
  raw = np.fromfile(path, dtype=np.uint8)
  if raw.size % _RECORD_BYTES:
    raise Cifar10FormatError(f"{path!r} has {raw.size} bytes, not a multiple of the "
                             f"{_RECORD_BYTES}-byte record (1 label byte + 3072 image bytes)")
  records = raw.reshape(-1, _RECORD_BYTES)
  labels = _check_labels(records[:, 0].astype(np.int64), len(records), path)
  return _chw_rows_to_hwc(records[:, 1:]), labels


def _load_binary_dir(root: str) -> dict:
  meta_path = _require_file(os.path.join(root, "batches.meta.txt"), "one class name per line")
  with open(meta_path, encoding="utf-8") as f:
    # The official file pads the list with blank lines.
    names = [line.strip() for line in f if line.strip()]
  _check_class_names(names, meta_path)
  train = [_read_binary_batch(os.path.join(root, name + ".bin")) for name in _TRAIN_BATCHES]
  test = _read_binary_batch(os.path.join(root, "test_batch.bin"))
  return _arrays(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]),
                 *test)


def _list_image_folder(root: str, split: str) -> tuple[list[str], np.ndarray]:
  split_dir = os.path.join(root, split)
  if not os.path.isdir(split_dir):
    raise FileNotFoundError(f"missing image folder {split_dir!r}; expected {split}/<class>/* "
                            f"with classes {list(CLASS_NAMES)}")
  entries = sorted(os.listdir(split_dir))
  unknown = [e for e in entries if e not in CLASS_NAMES or not os.path.isdir(
      os.path.join(split_dir, e))]
  if unknown:
    raise Cifar10FormatError(f"{split_dir!r} contains {unknown}, which are not CIFAR-10 class "
                             f"folders; expected only folders named {list(CLASS_NAMES)}")
  missing = [c for c in CLASS_NAMES if c not in entries]
  if missing:
    raise FileNotFoundError(f"{split_dir!r} has no folder for classes {missing}; expected one "
                            f"folder per class {list(CLASS_NAMES)}")
  files, labels = [], []
  for label, name in enumerate(CLASS_NAMES):
    class_dir = os.path.join(split_dir, name)
    names = sorted(os.listdir(class_dir))
    if not names:
      raise Cifar10FormatError(f"class folder {class_dir!r} is empty; expected image files")
    for file_name in names:
      path = os.path.join(class_dir, file_name)
      if not os.path.isfile(path):
        raise Cifar10FormatError(f"{path!r} is not a file; expected only images in "
                                 f"{class_dir!r}")
      files.append(path)
      labels.append(label)
  return files, np.asarray(labels, dtype=np.int32)


def _decode_image(contents: tf.Tensor) -> tf.Tensor:
  # decode_image dispatches to tf.io.decode_jpeg for JPEG (and decode_png for PNG, which
  # lossless fixtures use); channels=3 turns grayscale/RGBA into RGB.
  image = tf.io.decode_image(contents, channels=3, expand_animations=False)
  return tf.ensure_shape(image, IMAGE_SHAPE)


def _find_bad_image(files: list[str]) -> Cifar10FormatError:
  """Decodes files one by one to name the one that broke the parallel decode."""
  for path in files:
    if os.path.getsize(path) == 0:
      return Cifar10FormatError(f"image {path!r} is an empty file; expected a 32x32 RGB "
                                "JPEG or PNG")
    try:
      image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
      return Cifar10FormatError(f"cannot decode image {path!r} ({e.__class__.__name__}); "
                                "expected a 32x32 RGB JPEG or PNG")
    if tuple(image.shape) != IMAGE_SHAPE:
      return Cifar10FormatError(f"image {path!r} has shape {tuple(image.shape)}; expected "
                                f"{IMAGE_SHAPE}")
  return Cifar10FormatError(f"decoding {len(files)} images failed, but each decodes alone")


def _decode_files(files: list[str], chunk: int = 1024) -> np.ndarray:
  """Reads and decodes images in parallel with tf.data, in the order of ``files``."""
  images = np.empty((len(files),) + IMAGE_SHAPE, dtype=np.uint8)
  dataset = (tf.data.Dataset.from_tensor_slices(files)
             .map(lambda p: _decode_image(tf.io.read_file(p)),
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
             .batch(chunk).prefetch(2))
  done = 0
  try:
    for batch in dataset:
      images[done:done + len(batch)] = batch.numpy()
      done += len(batch)
  except tf.errors.OpError:
    # The parallel error names no file; rescan sequentially from the failed chunk.
    raise _find_bad_image(files[done:]) from None
  return images


def _load_image_folder(root: str) -> dict:
  train_files, train_labels = _list_image_folder(root, "train")
  test_files, test_labels = _list_image_folder(root, "test")
  logging.info("Decoding %d images from %s", len(train_files) + len(test_files), root)
  return _arrays(_decode_files(train_files), train_labels, _decode_files(test_files),
                 test_labels)


def _arrays(train_images, train_labels, test_images, test_labels) -> dict:
  return {"train_images": train_images, "train_labels": train_labels.astype(np.int32),
          "test_images": test_images, "test_labels": test_labels.astype(np.int32)}


def _layouts_in(directory: str) -> list[str]:
  """Names of the layouts whose marker files are in ``directory``."""
  def has(*names):
    return any(os.path.exists(os.path.join(directory, n)) for n in names)
  found = []
  if has("data_batch_1", "test_batch", "batches.meta"):
    found.append("pickle")
  if has("data_batch_1.bin", "test_batch.bin", "batches.meta.txt"):
    found.append("binary")
  if os.path.isdir(os.path.join(directory, "train")) or os.path.isdir(
      os.path.join(directory, "test")):
    found.append("folder")
  return found


def _resolve_layout(directory: str) -> tuple[str, str]:
  """Returns ``(layout, root)`` for a release directory or a parent of one."""
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"CIFAR-10 source {directory!r} does not exist; "
                            f"{_expected_layouts()}")
  found = _layouts_in(directory)
  if len(found) > 1:
    raise Cifar10FormatError(f"{directory!r} mixes the {' and '.join(found)} layouts; "
                             "expected exactly one")
  if found:
    return found[0], directory
  candidates = []
  for child in sorted(os.listdir(directory)):
    path = os.path.join(directory, child)
    if os.path.isdir(path):
      candidates.extend((layout, path) for layout in _layouts_in(path))
  if len(candidates) == 1:
    return candidates[0]
  if candidates:
    raise Cifar10FormatError(f"{directory!r} holds several CIFAR-10 copies "
                             f"{[p for _, p in candidates]}; pass one of them")
  raise Cifar10FormatError(f"{directory!r} matches no known CIFAR-10 layout; "
                           f"{_expected_layouts()}")


def _load_directory(directory: str) -> dict:
  layout, root = _resolve_layout(directory)
  logging.info("Reading CIFAR-10 (%s layout) from %s", layout, root)
  loader = {"pickle": _load_pickle_dir, "binary": _load_binary_dir,
            "folder": _load_image_folder}[layout]
  return loader(root)


def default_cache_dir() -> str:
  """Where archives are extracted when ``cache_dir`` is not given."""
  return os.path.join(tempfile.gettempdir(), "nas_tf_cache")


def _load_tarball(path: str, cache_dir: Optional[str]) -> dict:
  """Extracts ``path`` once and caches the decoded arrays next to the extraction."""
  _require_file(path, "a gzip-compressed tar of a CIFAR-10 release or image folder")
  stat = os.stat(path)
  # Keyed by path, size and mtime so that a replaced archive is never served stale.
  key = hashlib.sha1(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|"
                     f"{_CACHE_VERSION}".encode()).hexdigest()[:16]
  stem = os.path.basename(path).split(".")[0]
  entry = os.path.join(cache_dir or default_cache_dir(), f"{stem}-{key}")
  arrays_path = os.path.join(entry, "arrays.npz")
  if os.path.isfile(arrays_path):
    try:
      with np.load(arrays_path) as cached:
        arrays = {k: cached[k] for k in ("train_images", "train_labels", "test_images",
                                         "test_labels")}
      logging.info("Loaded cached CIFAR-10 arrays from %s", arrays_path)
      return arrays
    except Exception as e:  # A truncated cache is rebuilt rather than trusted.
      logging.warning("Ignoring unreadable cache %s (%s); rebuilding", arrays_path, e)
  os.makedirs(entry, exist_ok=True)
  workdir = tempfile.mkdtemp(prefix="extract-", dir=entry)
  try:
    logging.info("Extracting %s into %s", path, workdir)
    try:
      with tarfile.open(path, "r:gz") as tar:
        # The "data" filter refuses absolute paths, links out of the tree and devices.
        tar.extractall(workdir, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
      raise Cifar10FormatError(f"cannot extract {path!r} ({e}); expected a gzip-compressed "
                               "tar of a CIFAR-10 release or image folder") from None
    try:
      arrays = _load_directory(workdir)
    except Cifar10FormatError as e:
      raise Cifar10FormatError(f"in archive {path!r}: {e}") from None
    except FileNotFoundError as e:
      raise FileNotFoundError(f"in archive {path!r}: {e}") from None
    tmp_path = os.path.join(workdir, "arrays.npz")
    np.savez(tmp_path, **arrays)
    # Atomic rename: a concurrent or interrupted load never sees a partial cache.
    os.replace(tmp_path, arrays_path)
  finally:
    # Only the arrays are reused, so the 60,000 extracted files are not kept.
    shutil.rmtree(workdir, ignore_errors=True)
  return arrays


def _load_tfds(data_dir: Optional[str]) -> dict:
  import tensorflow_datasets as tfds  # Heavy import, only needed for this source.
  result = {}
  for split in ("train", "test"):
    dataset = tfds.load("cifar10", split=split, as_supervised=True, data_dir=data_dir)
    images, labels = [], []
    for x, y in tfds.as_numpy(dataset.batch(4096)):
      images.append(x)
      labels.append(y)
    if not images:
      raise Cifar10FormatError(f"tensorflow-datasets cifar10 split {split!r} is empty")
    images = np.concatenate(images)
    if images.shape[1:] != IMAGE_SHAPE or images.dtype != np.uint8:
      raise Cifar10FormatError(f"tensorflow-datasets cifar10 {split!r} images are "
                               f"{images.shape[1:]} {images.dtype}; expected {IMAGE_SHAPE} uint8")
    result[f"{split}_images"] = images
    result[f"{split}_labels"] = _check_labels(np.concatenate(labels), len(images),
                                              f"tfds:cifar10/{split}")
  return result


def load_cifar10_arrays(source: PathLike, cache_dir: Optional[PathLike] = None,
                        tfds_data_dir: Optional[PathLike] = None) -> dict:
  """Reads the 50,000 + 10,000 images of a CIFAR-10 source as uint8 numpy arrays.

  Args:
    source: ``"tfds"``, a directory, or a ``.tar.gz``/``.tgz`` path (see module doc).
    cache_dir: Where archives are extracted and their decoded arrays cached.
    tfds_data_dir: ``data_dir`` for tensorflow-datasets.

  Returns:
    A dict with ``train_images``/``test_images`` (uint8 ``[N, 32, 32, 3]``) and
    ``train_labels``/``test_labels`` (int32 ``[N]``), in the source's order.
  """
  if isinstance(source, str) and source == "tfds":
    return _load_tfds(None if tfds_data_dir is None else os.fspath(tfds_data_dir))
  path = os.fspath(source)
  if path.endswith((".tar.gz", ".tgz")):
    return _load_tarball(path, None if cache_dir is None else os.fspath(cache_dir))
  if os.path.isfile(path):
    raise Cifar10FormatError(f"CIFAR-10 source {path!r} is a file; {_expected_layouts()}")
  return _load_directory(path)


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Exact per-channel mean and std in [0, 1] units, without a float copy of the images."""
  means, stds = [], []
  values = np.arange(256, dtype=np.float64) / 255.0
  for channel in range(3):
    counts = np.bincount(images[..., channel].ravel(), minlength=256).astype(np.float64)
    total = counts.sum()
    mean = (counts * values).sum() / total
    means.append(mean)
    stds.append(np.sqrt((counts * (values - mean) ** 2).sum() / total))
  # A constant channel would divide by zero; 1.0 then leaves it merely centred.
  stds = [s if s > 0 else 1.0 for s in stds]
  return np.asarray(means, np.float32), np.asarray(stds, np.float32)


def _crop_and_flip(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Per-image random 32x32 crop of the zero-padded batch plus random left-right flip."""
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  size = tf.shape(images)[0]
  padded = tf.pad(images, [[0, 0], [_PAD, _PAD], [_PAD, _PAD], [0, 0]])
  offsets = tf.random.stateless_uniform([size, 2], crop_seed, minval=0,
                                        maxval=2 * _PAD + 1, dtype=tf.int32)
  # Gathering rows then columns crops every image at its own offset in one vectorised op.
  rows = offsets[:, :1] + tf.range(IMAGE_SHAPE[0])[tf.newaxis]
  cols = offsets[:, 1:] + tf.range(IMAGE_SHAPE[1])[tf.newaxis]
  cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
  cropped = tf.gather(cropped, cols, axis=2, batch_dims=1)
  flip = tf.random.stateless_uniform([size], flip_seed) < 0.5
  return tf.where(flip[:, tf.newaxis, tf.newaxis, tf.newaxis],
                  tf.reverse(cropped, axis=[2]), cropped)


class Cifar10Data:
  """CIFAR-10 with the paper's 45,000 / 5,000 / 10,000 split (§4.1).

  Attributes:
    class_names: The 10 class names, indexed by label.
    num_examples: Dict split -> number of examples.
    mean: Per-channel mean of the training split, float32 ``[3]`` in [0, 1] units.
    std: Per-channel standard deviation of the training split, float32 ``[3]``.
    validation_indices: Positions, in the source's training order, of the held-out images.
  """

  def __init__(self, arrays: dict, validation_size: int = 5000, seed: int = 0):
    """Splits the source's training images into train and validation.

    Args:
      arrays: Output of :func:`load_cifar10_arrays`.
      validation_size: Number of training images held out at random, 0 <= size < total.
      seed: Seed of the hold-out draw.
    """
    train_images, train_labels = arrays["train_images"], arrays["train_labels"]
    total = len(train_images)
    if (not isinstance(validation_size, (int, np.integer)) or isinstance(validation_size, bool)
        or not 0 <= validation_size < total):
      raise ValueError(f"validation_size must be an integer in [0, {total}) for {total} "
                       f"training images, got {validation_size!r}")
    order = np.random.default_rng(seed).permutation(total)
    # Sorted so each split keeps the source's order; randomness only picks membership.
    self.validation_indices = np.sort(order[:validation_size])
    train_indices = np.sort(order[validation_size:])
    self._arrays = {
        "train": (train_images[train_indices], train_labels[train_indices]),
        "validation": (train_images[self.validation_indices],
                       train_labels[self.validation_indices]),
        "test": (arrays["test_images"], arrays["test_labels"]),
    }
    for images, labels in self._arrays.values():
      images.setflags(write=False)
      labels.setflags(write=False)
    self.class_names = CLASS_NAMES
    self.num_examples = {split: len(labels) for split, (_, labels) in self._arrays.items()}
    self.mean, self.std = _channel_stats(self._arrays["train"][0])
    logging.info("CIFAR-10 split (seed %d): %s; channel mean %s std %s", seed,
                 self.num_examples, self.mean, self.std)

  def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read-only ``(images uint8 [N, 32, 32, 3], labels int32 [N])`` of ``split``."""
    if split not in self._arrays:
      raise ValueError(f"unknown CIFAR-10 split {split!r}; expected one of {SPLITS}")
    return self._arrays[split]

  def dataset(self, split: str) -> tf.data.Dataset:
    """Un-batched ``(image float32 [32, 32, 3] in [0, 1], label int32)`` of ``split``."""
    images, labels = self.arrays(split)
    return tf.data.Dataset.from_tensor_slices((images, labels)).map(
        lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))

  @functools.cached_property
  def train(self) -> tf.data.Dataset:
    return self.dataset("train")

  @functools.cached_property
  def validation(self) -> tf.data.Dataset:
    return self.dataset("validation")

  @functools.cached_property
  def test(self) -> tf.data.Dataset:
    return self.dataset("test")

  def batched(self, split: str, batch_size: int, augment: Optional[bool] = None,
              shuffle: Optional[bool] = None, seed: int = 0,
              num_examples: Optional[int] = None,
              drop_remainder: bool = False) -> tf.data.Dataset:
    """Batched, whitened, optionally augmented and shuffled input pipeline (§4.1).

    Images are normalised with the training split's per-channel mean and std, then (if
    ``augment``) zero-padded by 4 pixels, randomly cropped back to 32x32 and randomly
    flipped left-right. Padding after whitening follows the paper's order and makes the
    border the mean colour. All randomness is seeded: the same ``seed`` gives the same
    sequence of batches in every run, and each new pass over the dataset (epoch) draws a
    new, equally reproducible, order and augmentation.

    Args:
      split: 'train', 'validation' or 'test'.
      batch_size: Examples per batch.
      augment: Crop and flip; defaults to True for 'train' only.
      shuffle: Shuffle every epoch; defaults to True for 'train' only.
      seed: Seed of shuffling and augmentation.
      num_examples: Use only the first ``num_examples`` of the split (its order is
        already a seeded random draw), e.g. for cheap child trainings.
      drop_remainder: Drop the last, smaller batch.

    Returns:
      A prefetched dataset of ``(images float32 [B, 32, 32, 3], labels int32 [B])``.
    """
    images, labels = self.arrays(split)
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
      raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if num_examples is not None:
      if not isinstance(num_examples, (int, np.integer)) or not 0 < num_examples <= len(images):
        raise ValueError(f"num_examples must be in [1, {len(images)}] for split {split!r}, "
                         f"got {num_examples!r}")
      images, labels = images[:num_examples], labels[:num_examples]
    augment = split == "train" if augment is None else augment
    shuffle = split == "train" if shuffle is None else shuffle
    images_t = tf.constant(images)
    labels_t = tf.constant(labels)
    mean = tf.constant(self.mean.reshape(1, 1, 1, 3))
    std = tf.constant(self.std.reshape(1, 1, 1, 3))

    # Shuffling indices instead of images keeps the shuffle buffer at 8 bytes per example.
    indices = tf.data.Dataset.range(len(images))
    if shuffle:
      indices = indices.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    indices = indices.batch(batch_size, drop_remainder=drop_remainder)
    # One stateless seed pair per batch, re-drawn (reproducibly) every epoch.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def prepare(index, batch_seed):
      x = (tf.cast(tf.gather(images_t, index), tf.float32) / 255.0 - mean) / std
      if augment:
        x = _crop_and_flip(x, batch_seed)
      return x, tf.gather(labels_t, index)

    dataset = tf.data.Dataset.zip(indices, seeds)
    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).prefetch(tf.data.AUTOTUNE)


def load_cifar10(source: PathLike, validation_size: int = 5000, seed: int = 0,
                 cache_dir: Optional[PathLike] = None,
                 tfds_data_dir: Optional[PathLike] = None) -> Cifar10Data:
  """Loads CIFAR-10 and holds out the validation set (paper §4.1).

  Args:
    source: ``"tfds"``, a directory (python or binary release, image folder, or a parent
      of one of these) or a ``.tar.gz`` of one.
    validation_size: Training images held out at random for the reward; 5,000 in the paper.
    seed: Seed of the hold-out draw.
    cache_dir: Extraction and array cache for archives; default :func:`default_cache_dir`.
    tfds_data_dir: ``data_dir`` for tensorflow-datasets.

  Returns:
    A :class:`Cifar10Data`.

  Raises:
    FileNotFoundError: If the source or a file it needs is missing.
    Cifar10FormatError: If the source is malformed (see module docstring).
    ValueError: If ``validation_size`` is out of range.
  """
  arrays = load_cifar10_arrays(source, cache_dir=cache_dir, tfds_data_dir=tfds_data_dir)
  return Cifar10Data(arrays, validation_size=validation_size, seed=seed)
