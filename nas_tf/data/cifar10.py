"""CIFAR-10 image classification data (Zoph & Le 2017, §4.1).

The paper searches CNNs on CIFAR-10: 5,000 of the 50,000 training images are held out at
random as the validation set that produces the controller's reward, children train on the
other 45,000, and the 10,000 test images serve only the final evaluation. The paper's
preprocessing is "whitening, upsampling some images, random cropping and flipping"
(without further detail); nas_tf does the common variant of it, not an exact copy:
per-channel standardisation (mean and std of the training split), zero padding by 4,
random 32x32 crops and random left-right flips, no upsampling.

The loader reads every common distribution into uint8 numpy arrays kept in memory
(60,000 images are 184 MB): ``"tfds"`` (tensorflow-datasets ``cifar10``), the python
release (``cifar-10-batches-py/``), the binary release (``cifar-10-batches-bin/``, records
of 1 label byte + 3072 CHW bytes), an image folder ``ROOT/{train,test}/<class>/<image>``
(JPEG or PNG), a directory holding exactly one of these, or a ``.tar.gz`` of one (read in
memory; its decoded arrays are cached in ``cache_dir`` so a second load takes seconds).

Nothing is skipped: a missing or empty file, an undecodable image, a label out of range
or an unknown class folder raises an error naming the path and what was expected.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import io
import os
import pathlib
import pickle
import posixpath
import tarfile
import tempfile
from typing import Optional, Union
import zlib

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


_EXPECTED_LAYOUTS = (
    "expected 'tfds', a .tar.gz, or a directory holding the python release (data_batch_1..5, "
    "test_batch, batches.meta), the binary release (data_batch_1..5.bin, test_batch.bin, "
    "batches.meta.txt), an image folder (train/<class>/*, test/<class>/*), or a parent of "
    "exactly one of these")


class _DiskTree:
  """Read access to files on disk (the interface the readers below are written against)."""

  join, isdir, isfile = map(staticmethod, (os.path.join, os.path.isdir, os.path.isfile))
  listdir = staticmethod(lambda path: sorted(os.listdir(path)))
  read = staticmethod(lambda path: pathlib.Path(path).read_bytes())
  display = staticmethod(lambda path: path)


class _TarTree:
  """Read access to the members of a ``.tar.gz``, held in memory.

  Streaming the 60,000-JPEG archive takes ~2 s where extracting it to disk takes ~40 s,
  and only the decoded arrays need to persist, so members are never written out.
  """

  def __init__(self, archive: str):
    self.archive = archive
    self._files = {}
    self._children = collections.defaultdict(set, {"": set()})
    try:
      with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
          name = posixpath.normpath(member.name)
          if name == ".":
            continue
          if name.startswith(("/", "../")) or name == "..":
            raise Cifar10FormatError(f"{archive!r} has member {member.name!r} outside the "
                                     "archive root; expected relative paths")
          if member.isdir():
            self._children.setdefault(name, set())
          elif member.isfile():
            self._files[name] = tar.extractfile(member).read()
          else:
            raise Cifar10FormatError(f"{archive!r} member {member.name!r} is a link or "
                                     "device; expected only files and directories")
          parent = name
          while parent:  # Register the parents: archives need not list directories.
            parent, child = posixpath.split(parent)
            self._children[parent].add(child)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
      raise Cifar10FormatError(f"cannot read {archive!r} ({e}); expected a gzip-compressed "
                               "tar of a CIFAR-10 release or image folder") from None

  join = staticmethod(posixpath.join)

  def isdir(self, path: str) -> bool:
    return path in self._children and path not in self._files

  def isfile(self, path: str) -> bool:
    return path in self._files

  def listdir(self, path: str) -> list[str]:
    return sorted(self._children[path])

  def read(self, path: str) -> bytes:
    return self._files[path]

  def display(self, path: str) -> str:
    return f"{self.archive}:{path}"


def _read_required(tree, path: str, what: str) -> bytes:
  if not tree.isfile(path):
    raise FileNotFoundError(f"missing CIFAR-10 file {tree.display(path)!r}; expected {what}")
  contents = tree.read(path)
  if not contents:
    raise Cifar10FormatError(f"CIFAR-10 file {tree.display(path)!r} is empty; expected {what}")
  return contents


def _check_labels(labels: np.ndarray, num_images: int, where: str) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 1 or len(labels) != num_images:
    raise Cifar10FormatError(f"{where!r} has {labels.size} labels for {num_images} images; "
                             "expected one label per image")
  if num_images and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
    bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))][0]
    raise Cifar10FormatError(f"{where!r} has label {int(bad)}; expected labels in "
                             f"[0, {len(CLASS_NAMES)})")
  return labels.astype(np.int32)


def _chw_rows_to_hwc(rows: np.ndarray) -> np.ndarray:
  # Both official releases store each image as the 1024 red, then green, then blue bytes.
  return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


class _NumpyOnlyUnpickler(pickle.Unpickler):
  """Unpickles only plain containers and numpy arrays.

  Unpickling can run arbitrary code; the CIFAR batches need nothing beyond numpy's
  array reconstruction, so everything else is refused.
  """

  # Python 3 writes bytes into protocol-2 pickles as _codecs.encode(str, "latin1").
  _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")} | {
      (f"numpy{core}.multiarray", name) for core in (".core", "._core")
      for name in ("_reconstruct", "scalar")}

  def find_class(self, module, name):
    if (module, name) in self._ALLOWED:
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def _unpickle(tree, path: str, what: str) -> dict:
  contents = _read_required(tree, path, what)
  where = tree.display(path)
  try:
    # The release was pickled by Python 2; "bytes" keeps its str keys as bytes.
    obj = _NumpyOnlyUnpickler(io.BytesIO(contents), encoding="bytes").load()
  except Exception as e:  # Any failure here means the file is not a CIFAR pickle.
    raise Cifar10FormatError(f"cannot unpickle {where!r} ({e}); expected {what}") from None
  if not isinstance(obj, dict):
    raise Cifar10FormatError(f"{where!r} holds a {type(obj).__name__}; expected {what}")
  return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _read_pickle_batch(tree, path: str) -> tuple[np.ndarray, np.ndarray]:
  what = "a pickled dict with 'data' (N x 3072 uint8) and 'labels'"
  batch, where = _unpickle(tree, path, what), tree.display(path)
  if "data" not in batch or "labels" not in batch:
    raise Cifar10FormatError(f"{where!r} has keys {sorted(batch)}; expected {what}")
  data = np.asarray(batch["data"])
  if data.ndim != 2 or data.shape[1] != _IMAGE_BYTES or data.dtype != np.uint8 or not len(data):
    raise Cifar10FormatError(f"{where!r} has data of shape {data.shape} and dtype "
                             f"{data.dtype}; expected {what}")
  labels = _check_labels(np.asarray(batch["labels"], dtype=np.int64), len(data), where)
  return _chw_rows_to_hwc(data), labels


def _read_binary_batch(tree, path: str) -> tuple[np.ndarray, np.ndarray]:
  what = f"the {_RECORD_BYTES}-byte record (1 label byte + 3072 image bytes)"
  raw, where = np.frombuffer(_read_required(tree, path, what), np.uint8), tree.display(path)
  if raw.size % _RECORD_BYTES:
    raise Cifar10FormatError(f"{where!r} has {raw.size} bytes, not a multiple of {what}")
  records = raw.reshape(-1, _RECORD_BYTES)
  labels = _check_labels(records[:, 0].astype(np.int64), len(records), where)
  return _chw_rows_to_hwc(records[:, 1:]), labels


def _load_release(tree, root: str, layout: str) -> dict:
  """Reads the python ('pickle') or 'binary' release: 5 training batches + 1 test batch."""
  if layout == "pickle":
    meta_path = tree.join(root, "batches.meta")
    meta = _unpickle(tree, meta_path, "a pickled dict with 'label_names'")
    names = [n.decode() if isinstance(n, bytes) else n for n in meta.get("label_names", [])]
    read_batch, suffix = _read_pickle_batch, ""
  else:
    meta_path = tree.join(root, "batches.meta.txt")
    text = _read_required(tree, meta_path, "one class name per line").decode("utf-8")
    # The official file pads the list with blank lines.
    names = [line.strip() for line in text.splitlines() if line.strip()]
    read_batch, suffix = _read_binary_batch, ".bin"
  if tuple(names) != CLASS_NAMES:
    raise Cifar10FormatError(f"{tree.display(meta_path)!r} lists classes {names}; expected "
                             f"CIFAR-10's {list(CLASS_NAMES)}")
  train = [read_batch(tree, tree.join(root, name + suffix)) for name in _TRAIN_BATCHES]
  return _arrays(train, read_batch(tree, tree.join(root, "test_batch" + suffix)))


def _list_image_folder(tree, root: str, split: str) -> tuple[list[str], np.ndarray]:
  split_dir = tree.join(root, split)
  where = tree.display(split_dir)
  if not tree.isdir(split_dir):
    raise FileNotFoundError(f"missing image folder {where!r}; expected {split}/<class>/* "
                            f"with classes {list(CLASS_NAMES)}")
  entries = tree.listdir(split_dir)
  unknown = [e for e in entries if e not in CLASS_NAMES or not tree.isdir(
      tree.join(split_dir, e))]
  if unknown:
    raise Cifar10FormatError(f"{where!r} contains {unknown}, which are not CIFAR-10 class "
                             f"folders; expected only folders named {list(CLASS_NAMES)}")
  missing = [c for c in CLASS_NAMES if c not in entries]
  if missing:
    raise FileNotFoundError(f"{where!r} has no folder for classes {missing}; expected one "
                            f"folder per class {list(CLASS_NAMES)}")
  files, labels = [], []
  for label, name in enumerate(CLASS_NAMES):
    class_dir = tree.join(split_dir, name)
    names = tree.listdir(class_dir)
    if not names:
      raise Cifar10FormatError(f"class folder {tree.display(class_dir)!r} is empty; expected "
                               "image files")
    for file_name in names:
      path = tree.join(class_dir, file_name)
      if not tree.isfile(path):
        raise Cifar10FormatError(f"{tree.display(path)!r} is not a file; expected only "
                                 "images in class folders")
      files.append(path)
      labels.append(label)
  return files, np.asarray(labels, dtype=np.int32)


def _decode_image(contents: tf.Tensor) -> tf.Tensor:
  # decode_image dispatches to tf.io.decode_jpeg for JPEG (and decode_png for PNG, which
  # lossless fixtures use); channels=3 turns grayscale/RGBA into RGB.
  image = tf.io.decode_image(contents, channels=3, expand_animations=False)
  return tf.ensure_shape(image, IMAGE_SHAPE)


def _find_bad_image(names: list[str], contents: list[bytes]) -> Cifar10FormatError:
  """Decodes images one by one to name the one that broke the parallel decode."""
  expected = "expected a 32x32 RGB JPEG or PNG"
  for name, data in zip(names, contents):
    if not data:
      return Cifar10FormatError(f"image {name!r} is an empty file; {expected}")
    try:
      image = tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as e:
      return Cifar10FormatError(f"cannot decode image {name!r} ({e.__class__.__name__}); "
                                f"{expected}")
    if tuple(image.shape) != IMAGE_SHAPE:
      return Cifar10FormatError(f"image {name!r} has shape {tuple(image.shape)}; {expected}")
  return Cifar10FormatError(f"decoding {len(names)} images failed, but each decodes alone")


def _decode_files(tree, files: list[str], chunk: int = 1024) -> np.ndarray:
  """Decodes images in parallel with tf.data, in the order of ``files``."""
  contents = [tree.read(path) for path in files]
  images = np.empty((len(files),) + IMAGE_SHAPE, dtype=np.uint8)
  dataset = (tf.data.Dataset.from_tensor_slices(tf.constant(contents, tf.string))
             .map(_decode_image, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
             .batch(chunk).prefetch(2))
  done = 0
  try:
    for batch in dataset:
      images[done:done + len(batch)] = batch.numpy()
      done += len(batch)
  except tf.errors.OpError:
    # The parallel error names no file; rescan sequentially from the failed chunk.
    raise _find_bad_image([tree.display(f) for f in files[done:]], contents[done:]) from None
  return images


def _load_image_folder(tree, root: str) -> dict:
  train_files, train_labels = _list_image_folder(tree, root, "train")
  test_files, test_labels = _list_image_folder(tree, root, "test")
  logging.info("Decoding %d images from %s", len(train_files) + len(test_files),
               tree.display(root))
  return _arrays([(_decode_files(tree, train_files), train_labels)],
                 (_decode_files(tree, test_files), test_labels))


def _arrays(train: list[tuple[np.ndarray, np.ndarray]], test: tuple[np.ndarray, np.ndarray]):
  return {"train_images": np.concatenate([x for x, _ in train]),
          "train_labels": np.concatenate([y for _, y in train]).astype(np.int32),
          "test_images": test[0], "test_labels": test[1].astype(np.int32)}


def _layouts_in(tree, directory: str) -> list[str]:
  """Names of the layouts whose marker files are in ``directory``."""
  def has(*names):
    return any(tree.isfile(tree.join(directory, n)) for n in names)
  found = []
  if has("data_batch_1", "test_batch", "batches.meta"):
    found.append("pickle")
  if has("data_batch_1.bin", "test_batch.bin", "batches.meta.txt"):
    found.append("binary")
  if tree.isdir(tree.join(directory, "train")) or tree.isdir(tree.join(directory, "test")):
    found.append("folder")
  return found


def _load_tree(tree, directory: str) -> dict:
  """Reads a release directory, or the one release inside ``directory``."""
  where = tree.display(directory)
  if not tree.isdir(directory):
    raise FileNotFoundError(f"CIFAR-10 source {where!r} does not exist; {_EXPECTED_LAYOUTS}")
  found = [(layout, directory) for layout in _layouts_in(tree, directory)]
  if len(found) > 1:
    raise Cifar10FormatError(f"{where!r} mixes the {' and '.join(l for l, _ in found)} "
                             "layouts; expected exactly one")
  if not found:
    for child in tree.listdir(directory):
      path = tree.join(directory, child)
      if tree.isdir(path):
        found.extend((layout, path) for layout in _layouts_in(tree, path))
  if not found:
    raise Cifar10FormatError(f"{where!r} matches no known CIFAR-10 layout; "
                             f"{_EXPECTED_LAYOUTS}")
  if len(found) > 1:
    raise Cifar10FormatError(f"{where!r} holds several CIFAR-10 copies "
                             f"{[tree.display(p) for _, p in found]}; pass one of them")
  layout, root = found[0]
  logging.info("Reading CIFAR-10 (%s layout) from %s", layout, tree.display(root))
  if layout == "folder":
    return _load_image_folder(tree, root)
  return _load_release(tree, root, layout)


def default_cache_dir() -> str:
  """Where decoded arrays of archives are cached when ``cache_dir`` is not given."""
  return os.path.join(tempfile.gettempdir(), "nas_tf_cache")


_ARRAY_KEYS = ("train_images", "train_labels", "test_images", "test_labels")


def _load_tarball(path: str, cache_dir: Optional[str]) -> dict:
  """Reads ``path`` once and caches the decoded arrays under ``cache_dir``."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"CIFAR-10 archive {path!r} does not exist; expected a "
                            "gzip-compressed tar of a CIFAR-10 release or image folder")
  stat = os.stat(path)
  # Keyed by path, size and mtime so that a replaced archive is never served stale.
  key = hashlib.sha1(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}|"
                     f"{_CACHE_VERSION}".encode()).hexdigest()[:16]
  cache_dir = cache_dir or default_cache_dir()
  cache_path = os.path.join(cache_dir, f"{os.path.basename(path).split('.')[0]}-{key}.npz")
  if os.path.isfile(cache_path):
    try:
      with np.load(cache_path) as cached:
        arrays = {k: cached[k] for k in _ARRAY_KEYS}
      logging.info("Loaded cached CIFAR-10 arrays from %s", cache_path)
      return arrays
    except Exception as e:  # A truncated cache is rebuilt rather than trusted.
      logging.warning("Ignoring unreadable cache %s (%s); rebuilding", cache_path, e)
  logging.info("Reading archive %s", path)
  arrays = _load_tree(_TarTree(path), "")
  tmp_path = None
  try:
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
      np.savez(f, **arrays)
    # Atomic rename: a concurrent or interrupted load never sees a partial cache.
    os.replace(tmp_path, cache_path)
  except OSError as e:  # The cache only saves time; failing to write it is not fatal.
    logging.warning("Could not cache CIFAR-10 arrays in %s (%s)", cache_dir, e)
  finally:
    if tmp_path and os.path.exists(tmp_path):
      os.remove(tmp_path)
  return arrays


def _load_tfds() -> dict:
  import tensorflow_datasets as tfds  # Heavy import, only needed for this source.
  result = {}
  for split in ("train", "test"):
    dataset = tfds.load("cifar10", split=split, as_supervised=True)
    images, labels = [], []
    for x, y in tfds.as_numpy(dataset.batch(4096)):
      images.append(x)
      labels.append(y)
    if not images:
      raise Cifar10FormatError(f"tensorflow-datasets cifar10 split {split!r} is empty")
    result[f"{split}_images"] = images = np.concatenate(images)
    result[f"{split}_labels"] = _check_labels(np.concatenate(labels), len(images),
                                              f"tfds:cifar10/{split}")
  return result


def load_cifar10_arrays(source: PathLike, cache_dir: Optional[PathLike] = None) -> dict:
  """Reads the 50,000 + 10,000 images of a CIFAR-10 source as uint8 numpy arrays.

  Args:
    source: ``"tfds"``, a directory, or a ``.tar.gz``/``.tgz`` path (see module doc).
    cache_dir: Where the decoded arrays of archives are cached.

  Returns:
    A dict with ``train_images``/``test_images`` (uint8 ``[N, 32, 32, 3]``) and
    ``train_labels``/``test_labels`` (int32 ``[N]``), in the source's order.
  """
  if isinstance(source, str) and source == "tfds":
    return _load_tfds()
  path = os.fspath(source)
  if path.endswith((".tar.gz", ".tgz")):
    return _load_tarball(path, None if cache_dir is None else os.fspath(cache_dir))
  if os.path.isfile(path):
    raise Cifar10FormatError(f"CIFAR-10 source {path!r} is a file; {_EXPECTED_LAYOUTS}")
  return _load_tree(_DiskTree(), path)


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Exact per-channel mean and std in [0, 1] units, without a float copy of the images."""
  values = np.arange(256) / 255.0
  # Per-channel histograms of the 256 uint8 levels give exact moments cheaply.
  counts = np.stack([np.bincount(images[..., c].ravel(), minlength=256) for c in range(3)])
  mean = counts @ values / counts.sum(axis=1)
  std = np.sqrt((counts * (values - mean[:, None]) ** 2).sum(axis=1) / counts.sum(axis=1))
  # A constant channel would divide by zero; 1.0 then leaves it merely centred.
  return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


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
    validation_indices: Source positions of the validation images, in the split's order.
  """

  def __init__(self, arrays: dict, validation_size: int = 5000, seed: int = 0):
    """Holds out ``validation_size`` random training images (arrays from load_cifar10_arrays)."""
    train_images, train_labels = arrays["train_images"], arrays["train_labels"]
    total = len(train_images)
    if (not isinstance(validation_size, (int, np.integer)) or isinstance(validation_size, bool)
        or not 0 <= validation_size < total):
      raise ValueError(f"validation_size must be an integer in [0, {total}) for {total} "
                       f"training images, got {validation_size!r}")
    order = np.random.default_rng(seed).permutation(total)
    # Kept in permuted order: image folders are class-major, so a prefix (num_examples)
    # of a split in source order would hold only the first classes.
    self.validation_indices, train_indices = order[:validation_size], order[validation_size:]
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

  # The three splits as attributes, as the rest of the package expects.
  train = functools.cached_property(lambda self: self.dataset("train"))
  validation = functools.cached_property(lambda self: self.dataset("validation"))
  test = functools.cached_property(lambda self: self.dataset("test"))

  def batched(self, split: str, batch_size: int, augment: Optional[bool] = None,
              shuffle: Optional[bool] = None, seed: int = 0,
              num_examples: Optional[int] = None,
              drop_remainder: bool = False) -> tf.data.Dataset:
    """Batched, whitened, optionally augmented and shuffled input pipeline (§4.1).

    Images are whitened with the training split's per-channel mean and std, then (if
    ``augment``) zero-padded by 4 pixels, randomly cropped to 32x32 and randomly flipped.
    Padding after standardising makes the border the mean colour. This is nas_tf's
    documented variant of the paper's augmentation (see the module docstring). The same ``seed`` gives the same batches in every run; each pass over the
    dataset (epoch) draws a new, equally reproducible, order and augmentation.

    Args:
      split: 'train', 'validation' or 'test'.
      batch_size: Examples per batch.
      augment: Crop and flip; defaults to True for 'train' only.
      shuffle: Shuffle every epoch; defaults to True for 'train' only.
      seed: Seed of shuffling and augmentation.
      num_examples: Use only the first ``num_examples`` of the split (train/validation
        are in seeded random order, so this is a random subset), for cheap child trainings.
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
    images_t, labels_t, mean, std = map(tf.constant, (images, labels, self.mean, self.std))

    # Shuffling indices, not images, keeps the shuffle buffer at 8 bytes per example.
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

    return tf.data.Dataset.zip(indices, seeds).map(
        prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def load_cifar10(source: PathLike, validation_size: int = 5000, seed: int = 0,
                 cache_dir: Optional[PathLike] = None) -> Cifar10Data:
  """Loads CIFAR-10 and holds out the validation set (paper §4.1).

  Args:
    source: ``"tfds"``, a directory (python or binary release, image folder, or a parent
      of one of these) or a ``.tar.gz`` of one.
    validation_size: Training images held out at random for the reward; 5,000 in the paper.
    seed: Seed of the hold-out draw.
    cache_dir: Decoded-array cache for archives; default :func:`default_cache_dir`.

  Returns:
    A :class:`Cifar10Data`.

  Raises:
    FileNotFoundError: If the source or a file it needs is missing.
    Cifar10FormatError: If the source is malformed (see module docstring).
    ValueError: If ``validation_size`` is out of range.
  """
  arrays = load_cifar10_arrays(source, cache_dir=cache_dir)
  return Cifar10Data(arrays, validation_size=validation_size, seed=seed)
