"""The cluster of a distributed search: parameter servers, workers, and the strategy (§3.3).

Paper §3.3 ("Accelerate training with parallelism"): a parameter server of ``S`` shards
holds the controller's weights, and ``K`` controller replicas each sample ``m`` children
that train in parallel. Here that is ``tf.distribute.ParameterServerStrategy``:

* without a ``variable_partitioner`` the strategy places whole variables round-robin
  over the ``ps`` tasks, which is the paper's S-shard layout (a partitioner would turn
  them into ShardedVariables, which break Keras 3 gradients and checkpoints);
* children train on the ``worker`` tasks as closures scheduled by a
  ``ClusterCoordinator`` on the chief (see ``nas_tf.training.closures``).

Three modes (:class:`ClusterConfig`): ``local`` (the one-machine search, no cluster),
``localhost:N`` (this process starts ``S`` PS and ``N`` worker servers as child processes
on free ports and stops them on exit, however it exits), and ``tf_config`` (every task
was started by the user or an orchestrator with ``TF_CONFIG``; this process is the
chief and gets the parsed ``TF_CONFIG`` from its binary).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

from absl import logging

from nas_tf import processes as processes_lib

MODES = ("local", "localhost", "tf_config")


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
  """Where a search runs and how many controller replicas it uses (paper §3.3).

  Attributes:
    mode: 'local', 'localhost' or 'tf_config' (see the module docstring).
    num_ps: S, parameter-server tasks holding the controller (localhost mode).
    num_workers: Worker tasks training children (localhost mode).
    num_replicas: K, controller replicas; each samples ``children_per_step`` (m)
      children per controller step, so up to K*m children train at once.
    worker_threads: Intra-op threads of each server process started here (0 = TF's
      default, which on a small machine makes workers fight over the same cores).
    tf_config: The parsed TF_CONFIG (tf_config mode; read by the binary, not here).
  """

  mode: str = "local"
  num_ps: int = 2
  num_workers: int = 2
  num_replicas: int = 1
  worker_threads: int = 1
  tf_config: Optional[dict] = None

  def __post_init__(self):
    if self.mode not in MODES:
      raise ValueError(f"cluster mode must be one of {MODES}, got {self.mode!r}")
    for name in ("num_ps", "num_workers", "num_replicas"):
      if getattr(self, name) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
    if self.worker_threads < 0:
      raise ValueError(f"worker_threads must be >= 0, got {self.worker_threads!r}")
    if self.mode == "tf_config":
      cluster = (self.tf_config or {}).get("cluster", {})
      if not cluster.get("ps") or not cluster.get("worker"):
        raise ValueError("tf_config mode needs TF_CONFIG with 'ps' and 'worker' jobs in "
                         f"its 'cluster', got {self.tf_config!r}")

  @classmethod
  def parse(cls, text: str, **kwargs) -> "ClusterConfig":
    """'local', 'localhost:N' (N workers) or 'tf_config' -> a ClusterConfig."""
    if text.startswith("localhost"):
      _, _, n = text.partition(":")
      if n and not n.isdigit():
        raise ValueError(f"--cluster expects 'localhost:N' with N workers, got {text!r}")
      return cls(mode="localhost", **dict(kwargs, num_workers=int(n or 2)))
    return cls(mode=text, **kwargs)


def serve(cluster_spec: dict, job: str, index: int, threads: int = 0,
          parent_pid: Optional[int] = None) -> None:
  """Runs one ``tf.distribute.Server`` (a ps or worker task) until it is stopped.

  Args:
    cluster_spec: ``{"ps": [...], "worker": [...], ...}`` host:port lists.
    job: 'ps' or 'worker'.
    index: Task index within ``job``.
    threads: Intra-op threads, and inter-op threads (at least 2) (0 = TensorFlow's
      defaults).
    parent_pid: If set, exit as soon as this process (the chief that started the
      server) is gone, so that a chief killed with SIGKILL leaves no servers behind.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  config = None
  if threads:
    # At least 2 inter-op threads: a Keras train_step run by strategy.run inside a
    # closure's loop (a user's model, nas_tf.hypermodel.on_cluster) waits on one op
    # while another must run, and never finished on a worker with a single one.
    inter = max(threads, 2)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                      inter_op_parallelism_threads=inter)
  server = tf.distribute.Server(tf.train.ClusterSpec(cluster_spec), job_name=job,
                                task_index=index, protocol="grpc", config=config, start=True)
  logging.info("%s task %d serving at %s", job, index, server.target)
  if parent_pid is not None:
    processes_lib.watch_parent(parent_pid)
  server.join()


class Cluster:
  """A connected strategy + coordinator, and the server processes this process started.

  Use as a context manager (or call :meth:`close`): the processes are killed on exit,
  including on errors and Ctrl-C.
  """

  def __init__(self, strategy, coordinator, processes=(), cluster_spec=None):
    self.strategy = strategy
    self.coordinator = coordinator
    self.processes = list(processes)
    self.cluster_spec = cluster_spec or {}

  def close(self) -> None:
    for p in self.processes:
      if p.is_alive():
        p.kill()
    for p in self.processes:
      p.join(timeout=10)
    self.processes = []

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self.close()


def connect(cluster_spec: dict, processes=()) -> Cluster:
  """Creates the ParameterServerStrategy and its coordinator, once, for ``cluster_spec``."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  spec = tf.train.ClusterSpec(cluster_spec)
  task = ("chief", 0) if "chief" in cluster_spec else (None, None)
  resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
      spec, task_type=task[0], task_id=task[1], rpc_layer="grpc")
  # No variable_partitioner: whole variables go round-robin over the ps tasks (see above).
  strategy = tf.distribute.ParameterServerStrategy(resolver)
  coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
  return Cluster(strategy, coordinator, processes, cluster_spec)


def start_localhost(num_ps: int, num_workers: int, threads: int = 1) -> Cluster:
  """Starts ``num_ps`` + ``num_workers`` server processes here and connects to them."""
  import portpicker  # pylint: disable=g-import-not-at-top
  ports = [portpicker.pick_unused_port() for _ in range(num_ps + num_workers)]
  spec = {"ps": [f"localhost:{p}" for p in ports[:num_ps]],
          "worker": [f"localhost:{p}" for p in ports[num_ps:]]}
  # A fresh runtime per server (forking a process that runs TF can deadlock).
  ctx = processes_lib.context()
  processes = []
  try:
    for job in ("ps", "worker"):
      for i in range(len(spec[job])):
        p = ctx.Process(target=serve, args=(spec, job, i, threads, os.getpid()),
                        name=f"nas-{job}-{i}", daemon=True)
        p.start()
        processes.append(p)
    logging.info("Started %d ps and %d worker processes: %s", num_ps, num_workers, spec)
    return connect(spec, processes)
  except BaseException:
    Cluster(None, None, processes).close()
    raise


def open_cluster(config: ClusterConfig) -> Cluster:
  """The cluster ``config`` describes (not for 'local' mode, which needs none)."""
  if config.mode == "localhost":
    return start_localhost(config.num_ps, config.num_workers, config.worker_threads)
  if config.mode == "tf_config":
    return connect(dict(config.tf_config["cluster"]))
  raise ValueError("local mode runs without a cluster")
