"""The paper's controller (and evolution) as KerasTuner oracles: one line to change.

  tuner = keras_tuner.RandomSearch(build_model, ...)                  # before
  tuner = keras_tuner.Tuner(oracle=ControllerOracle(objective="val_accuracy",
                                                    max_trials=20, hypermodel=build_model),
                            hypermodel=build_model, directory=..., project_name=...)

An oracle proposes each trial's values and learns from its score: here a nas_tf sampler
(:mod:`nas_tf.search.samplers`) does both, one trial per step, over the space of the
build function (:func:`nas_tf.hypermodel.space.discover`, conditions included; without
``hypermodel``, the space KerasTuner has registered, with its own conditions only).
KerasTuner's reload (``overwrite=False``) resumes the oracle: its state holds the
sampler's, and the controller's weights are checkpointed in the project directory.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

from nas_tf import config as config_lib
from nas_tf import rewards
from nas_tf import search_space as search_space_lib
from nas_tf.hypermodel import space as space_lib
from nas_tf.search.samplers.base import replace_seen

kt = space_lib.require_keras_tuner()  # (its ImportError names the extra to install)


class SamplerOracle(kt.Oracle):
  """A KerasTuner ``Oracle`` driven by a nas_tf sampler (``search``).

  Args:
    objective, max_trials, seed: As for any KerasTuner oracle.
    hypermodel: The build function or ``keras_tuner.HyperModel``: its whole space,
      conditions included, is discovered before the first trial (recommended).
    controller_lr: Adam rate of the controller (``search='rl'``).
    **kwargs: Other ``keras_tuner.Oracle`` arguments.
  """

  search = "rl"

  def __init__(self, objective=None, max_trials: int = 10, hypermodel: Optional[Callable] = None,
               seed: Optional[int] = None, controller_lr: float = 0.01, **kwargs):
    super().__init__(objective=objective, max_trials=max_trials, seed=seed, **kwargs)
    self.hypermodel = hypermodel
    self.controller_lr = controller_lr
    self._sampler = None
    self._space = None
    self._saved_state: dict = {}
    self._pending: dict = {}  # trial id -> (step, tokens)
    self._step = 0
    self._tried: list[str] = []  # spec JSON of every trial proposed, in order

  def _make_sampler(self):
    from nas_tf.search import samplers  # pylint: disable=g-import-not-at-top
    if self.hypermodel is not None:
      self._space, _ = space_lib.discover_once(self.hypermodel)
    else:
      self._space = search_space_lib.HyperSpace(tuple(
          (p.name, space_lib.values_of(p), space_lib.explicit_conditions(p))
          for p in self.hyperparameters.space))
    config = config_lib.SearchConfig(
        task="keras_tuner", data_dir="", output_dir="", search=self.search,
        max_children=self.max_trials or 1, children_per_step=1, seed=self.seed or 0,
        space=self._space.to_dict(),
        controller=config_lib.ControllerConfig(learning_rate=self.controller_lr))
    self._sampler = samplers.make_sampler(self._space, config,
                                          {"sampler": self._saved_state.get("sampler")})
    items = self._sampler.checkpoint_items()
    path = self._checkpoint_path()
    if items and path and self._saved_state.get("checkpoint"):
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
      tf.train.Checkpoint(**items).read(self._saved_state["checkpoint"]).expect_partial()

  def _checkpoint_path(self) -> Optional[str]:
    project = getattr(self, "_project_dir", None)
    return None if project is None else os.path.join(project, "nas_tf_controller")

  def populate_space(self, trial_id):
    if self._sampler is None:
      self._make_sampler()
    tokens, specs = self._sampler.sample(self._step, 1, None)
    # Every trial a new configuration, as KerasTuner's own oracles make them (KerasTuner
    # trains a repeat again): a repeat becomes its nearest untried configuration (the
    # distinct rule of every nas_tf search), and none left ends the search, as
    # KerasTuner's oracles do when their space is exhausted.
    tried = set(self._tried)
    tokens, specs, _ = replace_seen(self._space, tokens, set(tried),
                                    key=[self.seed or 0, self._step])
    if specs[0].to_json() in tried:
      return {"status": kt.engine.trial.TrialStatus.STOPPED, "values": None}
    self._tried.append(specs[0].to_json())
    self._sampler.expect_update(None, 1)
    self._pending[trial_id] = (self._step, tuple(int(t) for t in tokens[0]))
    self._step += 1
    values = dict(self.hyperparameters.values)
    values.update(specs[0].as_dict())
    return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values}

  def end_trial(self, trial):
    super().end_trial(trial)
    if trial.trial_id not in self._pending or self._sampler is None:
      return
    step, tokens = self._pending.pop(trial.trial_id)
    score = trial.score
    if trial.status != "COMPLETED" or score is None:
      reward = rewards.FAILURE_REWARD
    else:
      reward = float(score) if self.objective.direction == "max" else -float(score)
    self._sampler.update(step, [tokens], [reward], None)

  def get_state(self):
    state = super().get_state()
    mine = {"step": self._step, "tried": list(self._tried)}
    if self._sampler is not None:
      mine["sampler"] = self._sampler.state()
      items, path = self._sampler.checkpoint_items(), self._checkpoint_path()
      if items and path:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        mine["checkpoint"] = tf.train.Checkpoint(**items).write(path)
    state["nas_tf"] = mine
    return state

  def set_state(self, state):
    super().set_state(state)
    self._saved_state = dict(state.get("nas_tf") or {})
    self._step = int(self._saved_state.get("step", 0))
    self._tried = list(self._saved_state.get("tried", []))
    self._sampler = None  # rebuilt, restored, at the next trial


class ControllerOracle(SamplerOracle):
  """The controller of Zoph & Le (2017) trained with REINFORCE, as a KerasTuner oracle."""

  search = "rl"


class EvolutionOracle(SamplerOracle):
  """Regularized evolution (Real et al. 2019) as a KerasTuner oracle."""

  search = "evolution"
