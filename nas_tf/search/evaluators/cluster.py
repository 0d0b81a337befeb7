"""Children trained on tf.distribute workers, the controller on parameter servers (§3.3).

Paper §3.3: the controller's weights live on a parameter server of ``S`` shards; ``K``
controller replicas each sample ``m`` children that train in parallel. Here the
controller, its Adam slots and accumulators are created under the
``ParameterServerStrategy`` scope (:meth:`ClusterEvaluator.sampler_scope`) and so live on
the ps tasks, and every child is one closure on the workers (``nas_tf.training.closures``;
a task that ``trains_itself_on_cluster`` schedules its own, see
:meth:`nas_tf.tasks.TrainedChildTask.start_on_cluster`).
The K replicas are the loop's: it keeps K steps in flight and commits them in order
(see :mod:`nas_tf.search.loop`). A closure whose worker dies is re-run on another worker
by the coordinator from the same inputs.
"""

from __future__ import annotations

import contextlib

from nas_tf.config import SearchConfig
from nas_tf.evaluator import Evaluator


class ClusterEvaluator(Evaluator):
  """``start(step, specs)`` schedules one closure per child on the cluster's workers.

  Args:
    config: The search (task, data, child recipe, seed).
    cluster: A connected ``nas_tf.cluster.Cluster``.
    task: The search's :class:`nas_tf.tasks.TrainedChildTask`; default ``config.task``.
    data: The task's data (``Task.load_data``); loaded if None.
  """

  on_cluster = True
  prunes_children = True

  def __init__(self, config: SearchConfig, cluster, task=None, data=None):
    from nas_tf.training import closures as dc  # pylint: disable=g-import-not-at-top
    from nas_tf import tasks  # pylint: disable=g-import-not-at-top
    self._dc, self.config, self.cluster = dc, config, cluster
    task = task or tasks.resolve(config.task)
    if data is None:
      data = task.load_data(config.data_dir, seed=config.seed, cache_dir=config.cache_dir,
                            validation_size=config.validation_size)
    if task.trains_itself_on_cluster:  # e.g. a user's compiled model (KerasSearch)
      self._task, self._data, self.prunes_children = task, data, False
      return
    self._task = None
    self.arrays = dc.materialize(data, config.child, config.seed,
                                 sequence=task.sequence_model)
    # Classifiers are the task's own networks; language models the closure's recipe.
    self._build = None if task.sequence_model else (
        lambda spec: task.build_child(spec, data, config.child))
    self.iterator = dc.per_worker_iterator(cluster.coordinator, self.arrays)

  def sampler_scope(self):
    return self.cluster.strategy.scope()

  def start(self, step: int, specs: list, plans=None) -> list:
    del step
    if self._task is not None:
      return [self._task.start_on_cluster(self.cluster, s, self._data, self.config.child,
                                          self.config.seed) for s in specs]
    handles = self._dc.schedule_children(self.cluster.coordinator, self.iterator, specs,
                                         self.arrays, self.config.child, self.config.seed,
                                         build=self._build, plans=plans)
    return [h.result for h in handles]

  def close(self, abort: bool = False) -> None:
    del abort  # the cluster is closed by whoever opened it


@contextlib.contextmanager
def open_evaluator(config: SearchConfig, cluster_config, task=None):
  """Opens the cluster once (localhost processes or TF_CONFIG) and its evaluator."""
  from nas_tf.cluster import open_cluster  # pylint: disable=g-import-not-at-top
  with open_cluster(cluster_config) as cluster:
    yield ClusterEvaluator(config, cluster, task)


def unreachable(error: BaseException) -> bool:
  """Whether ``error`` means a parameter server or the cluster is gone."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return isinstance(error, (tf.errors.UnavailableError, tf.errors.CancelledError,
                            tf.errors.AbortedError))
