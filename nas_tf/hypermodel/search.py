"""``KerasSearch``: KerasTuner's Tuner habits, nas_tf's search underneath.

A :class:`HyperModelTask` makes a user's ``build_model(hp)`` and fit arguments a Task (the
seam every search runs through), so the search of a user's model is the same search as
the paper's: the same samplers (the controller of §3 with REINFORCE, random, evolution,
BO), the same results.jsonl / config.json / state.json, resume by running it again, the
output-directory lock and the report.

  search = KerasSearch(build_model, objective="val_accuracy", search="rl",
                       max_trials=20, output_dir="runs/mine")
  search.search(x, y, validation_data=(x_val, y_val), epochs=5)
  best_hp = search.get_best_hyperparameters()[0]
  model = search.get_best_models()[0]

Trials run in this process (the task holds the data and the function in memory), in
worker processes (``settings={"runtime.isolation": "process"}``), or on a tf.distribute
cluster (``cluster=``).
"""

from __future__ import annotations

import math
import os
import shutil
import threading
import time
import traceback
from typing import Any, Callable, Optional

from absl import logging

from nas_tf import config as config_lib
from nas_tf import config_edits
from nas_tf import results
from nas_tf.hypermodel import space as space_lib
from nas_tf.tasks.base import TrainedChildTask

# Metric names KerasTuner knows the direction of without an Objective.
_MINIMISED = ("loss", "mse", "mae", "mean_squared_error", "mean_absolute_error",
              "crossentropy")


def objective_direction(objective) -> tuple[str, bool]:
  """``(name, higher_is_better)`` of a metric name or a ``keras_tuner.Objective``."""
  if isinstance(objective, str):
    name = objective
    bare = name[4:] if name.startswith("val_") else name
    if any(bare == m or bare.endswith(m) for m in _MINIMISED):
      return name, False
    if any(bare == m or bare.endswith(m) for m in ("accuracy", "auc", "precision",
                                                   "recall")):
      return name, True
    raise ValueError(f"the direction of objective {name!r} is unknown: pass "
                     f"keras_tuner.Objective({name!r}, direction='min' or 'max')")
  name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
  if not isinstance(name, str) or direction not in ("min", "max"):
    raise ValueError(f"objective must be a metric name or a keras_tuner.Objective, got "
                     f"{objective!r}")
  return name, direction == "max"


def own_fit(hypermodel) -> bool:
  """Whether ``hypermodel`` is a ``keras_tuner.HyperModel`` that overrides ``fit``."""
  method = getattr(type(hypermodel), "fit", None)
  return method is not None and method is not space_lib.require_keras_tuner().HyperModel.fit


def fit(model, fit_kwargs: dict, epochs: int, extra_callbacks=(), hypermodel=None,
        hp=None) -> dict:
  """Trains ``model`` with the user's fit arguments (their callbacks kept), stopping on a
  NaN loss; returns ``{metric: [value per epoch]}``.

  A ``keras_tuner.HyperModel`` with its own ``fit(hp, model, ...)`` is called as
  KerasTuner calls it, and its result read as KerasTuner reads it: a ``History``, a
  ``{metric: value}`` dict or one value (of the objective, named ``None`` here; the
  caller names it). The search's trials and the retraining of the best share this, so
  a retrained model is trained exactly as its trial was.
  """
  import keras  # pylint: disable=g-import-not-at-top
  kwargs = {"verbose": 0, **fit_kwargs}  # quiet unless the user asks (as KerasTuner)
  callbacks = [keras.callbacks.TerminateOnNaN(), *(kwargs.pop("callbacks", None) or []),
               *extra_callbacks]
  if hypermodel is None or not own_fit(hypermodel):
    return model.fit(epochs=epochs, callbacks=callbacks, **kwargs).history
  out = hypermodel.fit(hp, model, epochs=epochs, callbacks=callbacks, **kwargs)
  if isinstance(out, keras.callbacks.History):
    return out.history
  if isinstance(out, dict):
    return {k: list(v) if isinstance(v, (list, tuple)) else [float(v)]
            for k, v in out.items()}
  if hasattr(out, "__float__"):  # int, float, numpy and tensor scalars
    return {None: [float(out)]}
  raise TypeError(f"{type(hypermodel).__name__}.fit returned a {type(out).__name__}: "
                  "return a History, a {metric: value} dict or the objective's value")


def _one_batch(data, batch_size: int = 32):
  """The first ``batch_size`` examples of fit-style data (arrays, dicts of arrays, or a
  tf.data.Dataset's first batch), or None when it cannot be cut."""
  if data is None:
    return None
  if hasattr(data, "take") and hasattr(data, "element_spec"):
    return data.take(1)
  if isinstance(data, dict):
    return {k: v[:batch_size] for k, v in data.items()}
  if isinstance(data, (list, tuple)):
    return type(data)(v[:batch_size] for v in data)
  return data[:batch_size] if hasattr(data, "__getitem__") else None


class HyperModelTask(TrainedChildTask):
  """A ``build_model(hp)`` and its fit arguments as a Task.

  Args:
    build_model: KerasTuner's hypermodel function: ``hp -> compiled keras.Model``.
    objective: The logged metric to optimise (``val_accuracy``, ``val_loss``, ...).
    higher_is_better: Its direction.
    fit_kwargs: What ``model.fit`` gets besides ``epochs`` (x, y, validation_data,
      batch_size, callbacks, ...).
    name: The task's name in config.json.
  """

  space_kind = "hp"
  trains_itself_on_cluster = True  # with the user's compile, not the paper's recipe

  def __init__(self, build_model: Callable, objective: str, higher_is_better: bool,
               fit_kwargs: dict, name: str = "hypermodel"):
    self.build_model = build_model  # a function or a keras_tuner.HyperModel
    self.space, self.base_hp = space_lib.discover_once(build_model)
    self.metric = objective
    self.metric_label = objective
    self.higher_is_better = higher_is_better
    self.fit_kwargs = dict(fit_kwargs)
    self.name = self.ref = name
    self._cluster_lock = threading.Lock()  # trials in flight take turns by closure

  def __reduce__(self):
    # To a worker process as what it is made of (the function by its module and name,
    # the data by value): it is in no registry a worker could load it from.
    return HyperModelTask, (self.build_model, self.metric, self.higher_is_better,
                            self.fit_kwargs, self.name)

  def default_space(self) -> dict:
    return self.space.to_dict()

  def check_data(self, data_dir: str, bundled: bool = False) -> None:
    del data_dir, bundled  # the data is in memory

  def load_data(self, data_dir: str, seed: int = 0, cache_dir=None, validation_size=None):
    del data_dir, seed, cache_dir, validation_size
    return self.fit_kwargs

  def build_child(self, spec, data, config, final: bool = False):
    del data, config, final
    return self._build(space_lib.hyperparameters_for(spec, self.base_hp))

  def _build(self, hp):
    import keras  # pylint: disable=g-import-not-at-top
    model = space_lib.build_function(self.build_model)(hp)
    if not isinstance(model, keras.Model):
      raise TypeError(f"build_model returned a {type(model).__name__}, not a keras.Model")
    return model

  def train_child(self, spec, data, config, seed: int = 0, rungs=None) -> dict:
    """Builds and fits one trial; its objective is the best epoch's (as KerasTuner)."""
    import keras  # pylint: disable=g-import-not-at-top
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    start, cpu_start = time.monotonic(), time.process_time()
    out = self._new_metrics()
    try:
      hp, model = self._seeded_model(spec, seed)
      out["num_params"] = int(model.count_params())
      watch = child_training.rung_callback(rungs, config.epochs, self.metric)
      history = fit(model, data, config.epochs, watch, self.build_model, hp)
      self._score(history, out)
      if watch:
        from nas_tf.training import rungs as rungs_lib  # pylint: disable=g-import-not-at-top
        out = rungs_lib.report(out, rungs, watch[0].reached)
    except Exception as e:  # pylint: disable=broad-except
      logging.warning("trial failed: %s\n%s", e, traceback.format_exc(limit=3))
      out.update(status="failed", error=f"{type(e).__name__}: {e}")
    finally:
      keras.backend.clear_session()
    out["train_seconds"] = time.monotonic() - start
    # As training.child's: unlike the wall clock, it does not grow with other jobs.
    out["train_cpu_seconds"] = time.process_time() - cpu_start
    return out

  def _new_metrics(self) -> dict[str, Any]:
    """A trial's metrics before it runs. They say what it is scored on: the user's build
    function (and so this task) cannot be loaded again from the run directory, e.g. by
    ``nas_report``."""
    return {"status": "ok", "error": None,
            "scored_on": {"metric": self.metric, "higher_is_better": self.higher_is_better}}

  def _score(self, history: dict, out: dict) -> None:
    """Fills ``out`` from a fit history: the objective's best epoch (as KerasTuner), its
    curve, the other metrics' last values, and 'nan' if the loss or objective broke."""
    if None in history:  # a HyperModel.fit that returned the objective's value alone
      history[self.metric] = history.pop(None)
    if self.metric not in history:
      raise KeyError(f"objective {self.metric!r} was never logged; fit logged "
                     f"{sorted(history)}")
    values = [float(v) for v in history[self.metric]]
    finite = [v for v in values if math.isfinite(v)]
    out[f"{self.metric}_history"] = values
    out["logged"] = {k: float(v[-1]) for k, v in history.items()
                     if k != self.metric and v}  # last values of the other metrics
    out[self.metric] = ((max if self.higher_is_better else min)(finite) if finite
                        else float("nan"))
    if not all(math.isfinite(float(v)) for v in history.get("loss", [])) or not finite:
      out.update(status="nan", error="loss became NaN or inf during training")

  def _seeded_model(self, spec, seed: int, place=None):
    """Seeds the trial, reads its hyperparameters from ``spec`` and builds its model:
    ``(hp, model)``. ``place(build)`` builds it somewhere else (under a cluster's
    strategy); without it, here."""
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    child_training.seed_child(seed)
    hp = space_lib.hyperparameters_for(spec, self.base_hp)
    build = lambda: self._build(hp)  # pylint: disable=unnecessary-lambda-assignment
    return hp, (build() if place is None else place(build))

  def start_on_cluster(self, cluster, spec, data, config, seed: int = 0):
    """Builds the trial's model under the cluster's strategy here, then trains it on the
    workers (``nas_tf.hypermodel.on_cluster``) in a thread; ``wait()`` gives the metrics.
    The closures of K trials in flight take turns (see ``fit_on_cluster``'s ``lock``).
    A HyperModel's own ``fit`` and callbacks cannot run on a worker: such a search is
    refused before its first trial (:meth:`check_cluster`)."""
    from nas_tf.hypermodel import on_cluster  # pylint: disable=g-import-not-at-top
    start = time.monotonic()
    out = self._new_metrics()
    box: dict[str, Any] = {}

    def train():
      try:
        history = on_cluster.fit_on_cluster(cluster, box["model"], data, config.epochs,
                                            seed, lock=self._cluster_lock)
        self._score(history, out)
      except Exception as e:  # pylint: disable=broad-except
        logging.warning("trial failed on the cluster: %s", e)
        out.update(status="failed", error=f"{type(e).__name__}: {e}")
      box.pop("model", None)  # its variables go with the last reference

    try:
      # Here, not in the thread: seeds are global.
      _, box["model"] = self._seeded_model(
          spec, seed, place=lambda build: on_cluster.build_on_cluster(cluster, build))
      out["num_params"] = int(box["model"].count_params())
      thread = threading.Thread(target=train, name="nas_tf-trial", daemon=True)
      thread.start()
    except Exception as e:  # pylint: disable=broad-except
      out.update(status="failed", error=f"{type(e).__name__}: {e}")
      thread = None

    def wait() -> dict:
      if thread is not None:
        thread.join()
      out["train_seconds"] = time.monotonic() - start
      return out
    return wait

  def check_cluster(self) -> None:
    """Refuses, before the first trial, a search a cluster cannot run as written."""
    from nas_tf.hypermodel import on_cluster  # pylint: disable=g-import-not-at-top
    if own_fit(self.build_model):
      raise ValueError("a keras_tuner.HyperModel with its own fit() cannot train on a "
                       "cluster (its Python runs in model.fit's loop); search without one")
    on_cluster.check_fit_kwargs(self.fit_kwargs)

  def check_objective(self) -> None:
    """Refuses, before the first trial, an objective that ``model.fit`` will not log:
    a validation metric without validation data, or a metric the model (built with the
    defaults) does not compute. A HyperModel with its own ``fit`` decides what it logs."""
    import keras  # pylint: disable=g-import-not-at-top
    name = self.metric
    if own_fit(self.build_model):
      return
    validated = any(k in self.fit_kwargs for k in ("validation_data", "validation_split"))
    if name.startswith("val_") and not validated:
      raise ValueError(f"objective {name!r} is a validation metric, but search() got no "
                       "validation_data= (or validation_split=)")
    bare = name[4:] if name.startswith("val_") else name
    try:
      model = space_lib.build_function(self.build_model)(self.base_hp)
      x = _one_batch(self.fit_kwargs.get("x"))
      y = _one_batch(self.fit_kwargs.get("y"))
      logged = model.evaluate(x, y, verbose=0, return_dict=True)
    except Exception:  # pylint: disable=broad-except
      return  # cannot probe (odd data, a build that fails): trials will say why
    finally:
      keras.backend.clear_session()
    if bare not in logged:
      raise ValueError(f"objective {name!r} is never logged: the model compiled with the "
                       f"default hyperparameters logs {sorted(logged)} (compile it with "
                       "metrics=[...] that include it, or pick one of those)")

  def next_steps(self, output_dir: str, data_dir) -> list[str]:
    del data_dir
    return [f"Next, from the same KerasSearch(..., output_dir={output_dir!r}): "
            ".retrain_best(epochs=N) trains the best hyperparameters longer, "
            ".export_best(DIR) writes it as .keras and as a SavedModel"]


class KerasSearch:
  """Searches a ``build_model(hp)`` (KerasTuner's hypermodel) with a nas_tf strategy.

  Args:
    hypermodel: ``hp -> compiled keras.Model``, written with KerasTuner's ``hp``.
    objective: A logged metric name (direction inferred for losses and accuracies) or a
      ``keras_tuner.Objective``.
    search: 'rl' (the paper's controller and REINFORCE), 'random', 'evolution' (population
      5, tournaments of 2: sized for tens of trials), 'bo'.
    max_trials: Trials (a larger value on a finished run extends it). Each is a
      configuration not tried before (a proposal already tried becomes its nearest
      untried one: ``distinct``; ``settings={"distinct": False}`` keeps the paper's
      repeats, which cost a trial but no training); once every configuration has been
      tried, the remaining trials are repeats.
    output_dir: The run's directory; running again with it resumes.
    seed: Seeds sampling and every trial's initialisation.
    overwrite: Start afresh, deleting ``output_dir``.
    settings: ``{"section.field": value}`` on top (e.g. ``{"controller.learning_rate":
      0.005, "pruner.kind": "median"}``), as ``nas_search --set``. Sized for tens of
      trials: evolution's population is 5, a pruner decides from 3 values at a rung.
    cluster: Train the trials on a tf.distribute cluster (paper §3.3): 'localhost:N'
      (N worker processes started here, as ``nas_search --cluster``), a
      :class:`nas_tf.cluster.ClusterConfig` (e.g. mode 'tf_config' with the parsed
      TF_CONFIG, ``num_replicas`` trials in flight), or a connected
      :class:`nas_tf.cluster.Cluster`. Each trial's model is built with its own
      ``compile`` under the cluster's strategy and trained by its own ``train_step`` on the
      workers (``nas_tf.hypermodel.on_cluster``); fit's callbacks, weights and a
      HyperModel's own ``fit`` cannot run there and are refused before the first trial.
    report: Write ``report.html`` into ``output_dir`` when the search ends (as
      ``nas_search`` does; it needs matplotlib).
  """

  def __init__(self, hypermodel: Callable, objective="val_accuracy", search: str = "rl",
               max_trials: int = 10, output_dir: str = "nas_tf_search", seed: int = 0,
               overwrite: bool = False, settings: Optional[dict] = None, cluster=None,
               report: bool = True):
    if not callable(space_lib.build_function(hypermodel)):
      raise TypeError(f"hypermodel must be a function hp -> keras.Model or a "
                      f"keras_tuner.HyperModel, got {hypermodel!r}")
    self.hypermodel = hypermodel
    self.objective, self.higher_is_better = objective_direction(objective)
    self.search_method, self.max_trials = search, int(max_trials)
    self.output_dir, self.seed, self.overwrite = output_dir, seed, overwrite
    self.settings = dict(settings or {})
    if isinstance(cluster, str):
      from nas_tf import cluster as cluster_lib  # pylint: disable=g-import-not-at-top
      cluster = cluster_lib.ClusterConfig.parse(cluster)
    self.cluster = cluster
    self.report = bool(report)
    self.task: Optional[HyperModelTask] = None
    self._fit: dict = {}
    self._epochs: Optional[int] = None  # of each trial, once search() is called

  def _config(self, epochs: int) -> config_lib.SearchConfig:
    # One child per controller step and Adam at 0.01 (as the real-data presets): a
    # budget of tens of trials must teach the controller from few updates. Evolution's
    # population is 5 (tournaments of 2), not nas_search's 20: with 20, a search of
    # fewer than 20 trials never leaves its random start (it is random search). Trials run
    # in this process unless settings say runtime.isolation=process (then build_model
    # must be importable: a module-level function of a module, not of __main__). Every
    # trial is a new configuration (distinct), as KerasTuner's oracles make them: with a
    # budget of tens of trials a repeat is a trial lost (evolution repeated 2-3 of 12 in
    # the CIFAR-10 study of docs/RESULTS.md §9); nas_search keeps the paper's repeats.
    config = config_lib.SearchConfig(
        task=self.task.name, data_dir="", output_dir=self.output_dir,
        search=self.search_method, max_children=self.max_trials, children_per_step=1,
        seed=self.seed, space=self.task.space.to_dict(), distinct=True,
        child=config_lib.ChildTrainingConfig(epochs=epochs),
        controller=config_lib.ControllerConfig(learning_rate=0.01),
        evolution=config_lib.EvolutionConfig(population_size=5, sample_size=2),
        # A pruner decides after eta values at a rung (the fewest for which "the best
        # 1/eta" singles one out), not nas_search's 5: Hyperband splits tens of trials
        # over its brackets, and with 5 per bracket's rung it stopped none of 12 CIFAR-10
        # trials (docs/RESULTS.md §9).
        pruner=config_lib.PrunerConfig(warmup_children=3),
        runtime=config_lib.RuntimeConfig(isolation="inline"))
    return config_edits.apply_overrides(config, [f"{k}={v}" for k, v in self.settings.items()])

  def search(self, x=None, y=None, epochs: int = 1, **fit_kwargs) -> dict:
    """Runs (or resumes) the search; ``fit`` arguments as for ``model.fit``."""
    from nas_tf import search as search_lib  # pylint: disable=g-import-not-at-top
    self._fit = {"x": x, "y": y, **fit_kwargs}
    self.task = HyperModelTask(self.hypermodel, self.objective, self.higher_is_better,
                               {k: v for k, v in self._fit.items() if v is not None})
    self.task.check_objective()  # before overwrite deletes anything
    on_cluster = self.cluster is not None and getattr(self.cluster, "mode", "") != "local"
    if on_cluster:
      self.task.check_cluster()
    if self.overwrite and os.path.exists(self.output_dir):
      shutil.rmtree(self.output_dir)
    self.overwrite = False  # a second call extends the same run
    self._epochs = epochs
    config = self._config(epochs)
    if on_cluster and hasattr(self.cluster, "coordinator"):  # connected by the caller
      from nas_tf.search.evaluators import cluster as cluster_eval  # pylint: disable=g-import-not-at-top
      summary = search_lib.run(config, task=self.task,
                               evaluator=cluster_eval.ClusterEvaluator(config, self.cluster,
                                                                       self.task))
    else:
      summary = search_lib.run(config, task=self.task, cluster=self.cluster if on_cluster
                               else None)
    # As nas_search ends: the trials' statuses, report.html, what to call next.
    from nas_tf import report  # pylint: disable=g-import-not-at-top
    for line in report.after_search(self.output_dir, self.task, None,
                                    report=self.report and bool(summary["best"])):
      logging.info("%s", line)
    return summary

  def _ranked(self) -> list[dict]:
    records = results.read_records(os.path.join(self.output_dir, "results.jsonl"))
    return [r for r in results.rank(records) if r["status"] == "ok"]

  def get_best_hyperparameters(self, num_trials: int = 1) -> list:
    """The best trials' ``keras_tuner.HyperParameters``, best first."""
    from nas_tf import specs  # pylint: disable=g-import-not-at-top
    self._need_search()
    return [space_lib.hyperparameters_for(specs.from_dict(r["spec"]), self.task.base_hp)
            for r in self._ranked()[:num_trials]]

  def get_best_models(self, num_models: int = 1) -> list:
    """The best trials' models, rebuilt and trained again as in the search (same seed
    and fit arguments, so the same weights on a deterministic machine)."""
    return [self._train(hp, self._epochs) for hp in self.get_best_hyperparameters(num_models)]

  def retrain_best(self, epochs: int, **fit_kwargs):
    """The best trial's model trained for ``epochs`` (the search's data and fit
    arguments, updated by ``fit_kwargs``): the search's proxy was a short training."""
    return self._train(self.get_best_hyperparameters(1)[0], epochs, **fit_kwargs)

  def export_best(self, export_dir: str, model=None) -> dict:
    """Writes the best model (``model``, default :meth:`get_best_models`' first) as
    ``model.keras`` and as a TensorFlow SavedModel (``saved_model/``, a ``serve``
    endpoint) that loads with TensorFlow alone; returns the paths."""
    model = model if model is not None else self.get_best_models(1)[0]
    os.makedirs(export_dir, exist_ok=True)
    paths = {"keras": os.path.join(export_dir, "model.keras"),
             "saved_model": os.path.join(export_dir, "saved_model")}
    model.save(paths["keras"])
    model.export(paths["saved_model"], verbose=False)
    logging.info("Exported the best model to %s (model.keras, saved_model/)", export_dir)
    return paths

  def _train(self, hp, epochs: int, **fit_kwargs):
    from nas_tf.training import child as child_training  # pylint: disable=g-import-not-at-top
    child_training.seed_child(self.seed)
    model = space_lib.build_function(self.hypermodel)(hp)
    fit(model, {k: v for k, v in {**self._fit, **fit_kwargs}.items() if v is not None},
        epochs, hypermodel=self.hypermodel, hp=hp)
    return model

  def search_space_summary(self) -> str:
    """The hyperparameters the search decides (found by calling the build function, as
    KerasTuner does), with their values, conditions and the number of configurations;
    also logged. Callable before :meth:`search`."""
    space, _ = space_lib.discover_once(self.hypermodel)
    build = space_lib.build_function(self.hypermodel)
    text = space_lib.summary(space, title=getattr(build, "__qualname__", "build_model"))
    logging.info("%s", text)
    return text

  def results_summary(self, num_trials: int = 10) -> str:
    """The best trials, one line each (also logged)."""
    lines = [f"Results in {self.output_dir} (objective {self.objective}, "
             f"{'max' if self.higher_is_better else 'min'}imised):"]
    for k, r in enumerate(self._ranked()[:num_trials], start=1):
      # A trial the pruner stopped is ranked below those trained to the end (by the
      # highest rung reached), and its value is that of its last rung: say so.
      trained = len(r["metrics"].get(f"{self.objective}_history") or [])
      of = f" of {self._epochs}" if self._epochs else ""
      stopped = (f" (stopped after {trained}{of} epochs)"
                 if r.get("pruned_at") is not None else "")
      lines.append(f"  {k}. {self.objective} {r['val_metric']:.4g}{stopped}  "
                   f"{r['describe']}")
    text = "\n".join(lines)
    logging.info("%s", text)
    return text

  def _need_search(self):
    if self.task is None:
      raise RuntimeError("call search() first (it also reloads a finished run: same "
                         "output_dir)")
