"""A trial's compiled Keras model trained on a tf.distribute cluster (paper §3.3).

The paper trains its children on worker machines while the controller's weights live on
parameter servers. Keras 3 has no ``model.fit`` for ``ParameterServerStrategy``, so this
module does per epoch what ``fit`` does, with the model's own ``train_step`` and
``test_step``: the user's loss, optimiser and metrics, unchanged. The model is built and
compiled under the strategy's scope (its weights, optimiser slots and metric state live
on the parameter servers); each epoch's training and each validation pass is one closure
that a worker runs on its copy of the data; the metrics are read and reset here between
them. What ``fit`` runs in Python between batches cannot run on a worker (callbacks,
class or sample weights), so those arguments are refused with one line.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Callable

import tensorflow as tf

# fit() arguments a trial on the cluster honours (the rest are refused, not ignored).
SUPPORTED = ("x", "y", "batch_size", "validation_data", "shuffle", "steps_per_epoch",
             "validation_steps", "verbose")


def check_fit_kwargs(fit_kwargs: dict) -> None:
  """Refuses fit arguments a cluster trial cannot honour, naming them."""
  extra = sorted(k for k, v in fit_kwargs.items() if k not in SUPPORTED and v is not None)
  if extra:
    raise ValueError(f"on a cluster a trial trains as worker closures, which cannot run "
                     f"{extra} (they run in model.fit's Python loop); drop them or search "
                     f"without a cluster. Supported: {list(SUPPORTED)}")
  if fit_kwargs.get("x") is None:
    raise ValueError("search() got no training data (x=)")
  validation = fit_kwargs.get("validation_data")
  if isinstance(validation, (tuple, list)) and len(validation) not in (2, 3):
    raise ValueError(f"validation_data must be (x, y) or (x, y, sample_weight), as for "
                     f"model.fit; got a {type(validation).__name__} of {len(validation)}")


def _batched(x, y, batch_size: int, shuffle: bool, seed: int, weights=None):
  """``(dataset, batches per pass or None)`` of fit-style data (``weights``: per-example
  sample weights, which the model's train_step / test_step unpack as fit's do)."""
  if isinstance(x, tf.data.Dataset):  # the user's batching, as fit takes it
    n = int(x.cardinality())
    return x, (n if n > 0 else None)
  data = x if y is None else (x, y) if weights is None else (x, y, weights)
  ds = tf.data.Dataset.from_tensor_slices(data)
  n = int(ds.cardinality())
  if shuffle:
    ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
  return ds.batch(batch_size), math.ceil(n / batch_size)


def build_on_cluster(cluster, build: Callable[[], Any]):
  """``build()``'s compiled model, its weights, optimiser and metric state on the
  cluster's parameter servers."""
  with cluster.strategy.scope():
    model = build()
    if getattr(model, "optimizer", None) is None:
      raise ValueError("build_model must compile its model (optimizer, loss, metrics)")
    model.optimizer.build(model.trainable_variables)
  return model


def fit_on_cluster(cluster, model, fit_kwargs: dict, epochs: int, seed: int,
                   lock=None) -> dict[str, list[float]]:
  """Trains ``model`` (from :func:`build_on_cluster`) for ``epochs`` on the workers.

  Args:
    cluster: A connected ``nas_tf.cluster.Cluster`` (strategy and coordinator).
    model: The compiled model, built under the cluster's strategy.
    fit_kwargs: ``model.fit``'s arguments (see :data:`SUPPORTED`).
    epochs: Passes over the training data.
    seed: Shuffling seed.
    lock: Held around each closure (a ``threading.Lock`` shared by the trials in
      flight), so trials in flight take turns by closure: two at once hang when the
      servers run in the searching process (measured with in-process servers; with
      server processes they finish, docs/DISTRIBUTED.md).

  Returns:
    ``{metric: [value per epoch]}`` with ``fit``'s names (``loss``, ``accuracy``,
    ``val_loss``, ...), as ``model.fit(...).history``.
  """
  check_fit_kwargs(fit_kwargs)
  strategy, coordinator = cluster.strategy, cluster.coordinator
  batch = int(fit_kwargs.get("batch_size") or 32)
  train, steps = _batched(fit_kwargs["x"], fit_kwargs.get("y"), batch,
                          fit_kwargs.get("shuffle", True) is not False, seed)
  steps = fit_kwargs.get("steps_per_epoch") or steps
  if not steps:
    raise ValueError("the training dataset's length is unknown: pass steps_per_epoch=")
  passes = [("", coordinator.create_per_worker_dataset(train.repeat()), steps)]
  validation = fit_kwargs.get("validation_data")
  if validation is not None:
    if isinstance(validation, tf.data.Dataset):
      validation = (validation,)
    val, val_steps = _batched(*validation[:2], batch, False, seed,
                              weights=(validation[2] if len(validation) > 2 else None))
    val_steps = fit_kwargs.get("validation_steps") or val_steps
    if not val_steps:
      raise ValueError("the validation dataset's length is unknown: pass validation_steps=")
    passes.append(("val_", coordinator.create_per_worker_dataset(val.repeat()), val_steps))

  def closure(step_fn, num_steps):
    @tf.function
    def run(iterator):
      for _ in tf.range(num_steps):
        strategy.run(step_fn, args=(next(iterator),))
      return model.get_metrics_result()
    return run

  # A worker's iterator keeps its place in the repeated data, and every closure on it
  # reads exactly one pass (a batch count of ceil(examples / batch)), so each training
  # closure is one epoch and each validation closure the whole validation set, whichever
  # worker runs it.
  runs = [(prefix, iter(ds), closure(model.train_step if not prefix else model.test_step,
                                     n)) for prefix, ds, n in passes]
  history: dict[str, list[float]] = {}
  for _ in range(epochs):
    for prefix, iterator, run in runs:
      with lock if lock is not None else contextlib.nullcontext():
        for metric in model.metrics:
          metric.reset_state()
        values = coordinator.schedule(run, args=(iterator,)).fetch()
      for name, value in values.items():
        history.setdefault(prefix + name, []).append(float(value))
  return history
