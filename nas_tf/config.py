"""Configuration dataclasses: everything a search needs, saved as ``config.json``.

Flags are read only in ``bin/``; they are converted once into a :class:`SearchConfig`,
which is written next to the results and read back on resume. Library code takes these
values as explicit arguments.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional

SEARCH_METHODS = ("rl", "random", "evolution", "bo")
ISOLATION_MODES = ("process", "inline")
# How a sampled child is scored: trained from scratch (the paper), or run as a
# sub-graph of one weight-sharing model (Pham et al. 2018, ENAS; nas_tf.shared).
EVALUATION_MODES = ("independent", "shared", "zero_cost")
# Training-free scores of a child at initialisation (nas_tf.zero_cost), evaluation='zero_cost'.
ZERO_COST_SCORES = ("synflow", "naswot", "grad_norm", "snip", "num_params")
# Early stopping of hopeless children (nas_tf.search.pruners).
PRUNERS = ("none", "observe", "median", "successive_halving", "hyperband")


def check_arg(condition: bool, message: str) -> None:
  """Raises ValueError(message) unless condition; messages show the bad value."""
  if not condition:
    raise ValueError(message)


_check = check_arg


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
  """The controller RNN and its REINFORCE optimiser (paper §3.2, §4.1).

  Attributes:
    units: LSTM hidden size (paper: 35).
    num_lstm_layers: Stacked LSTM layers (paper: 2).
    init_range: Uniform initialisation range (paper: 0.08).
    learning_rate: Adam learning rate (paper: 6e-4 CIFAR-10, 5e-4 PTB).
    baseline_decay: Decay of the exponential-moving-average reward baseline.
    entropy_weight: Weight of the optional entropy bonus (0 = the paper's plain REINFORCE).
    temperature: Softmax temperature of the controller's logits.
    tanh_constant: Optional ``C * tanh(logits)`` squashing (None = off).
    grad_accumulation: Controller steps whose gradients are accumulated before one Adam
      apply (the paper applies PTB gradients after 10 accumulate). The applied gradient
      is their mean, not their sum: Adam's step hardly depends on the scale, and the mean
      keeps one apply comparable to an unaccumulated step.
  """

  units: int = 35
  num_lstm_layers: int = 2
  init_range: float = 0.08
  learning_rate: float = 6e-4
  baseline_decay: float = 0.95
  entropy_weight: float = 0.0
  temperature: float = 1.0
  tanh_constant: Optional[float] = None
  grad_accumulation: int = 1

  def __post_init__(self):
    _check(self.learning_rate > 0, f"controller learning_rate must be > 0, got {self.learning_rate!r}")
    _check(0 <= self.baseline_decay < 1,
           f"baseline_decay must lie in [0, 1), got {self.baseline_decay!r}")
    _check(self.entropy_weight >= 0, f"entropy_weight must be >= 0, got {self.entropy_weight!r}")
    _check(self.temperature > 0, f"controller temperature must be > 0, got {self.temperature!r}")
    _check(self.tanh_constant is None or self.tanh_constant > 0,
           f"tanh_constant must be > 0 or None, got {self.tanh_constant!r}")
    _check(self.grad_accumulation >= 1,
           f"grad_accumulation must be >= 1, got {self.grad_accumulation!r}")


@dataclasses.dataclass(frozen=True)
class ChildTrainingConfig:
  """How each child is trained to get its reward (paper §4.1, §4.2), scaled by budget.

  Attributes:
    epochs: Training epochs per child (paper: 50 CIFAR-10, 35 PTB).
    batch_size: Minibatch size.
    optimizer: 'momentum' (Nesterov), 'sgd' or 'adam'.
    learning_rate: Child learning rate (paper CIFAR-10: 0.1).
    momentum: Momentum for 'momentum' (paper: 0.9).
    weight_decay: L2 weight decay on kernels (paper CIFAR-10: 1e-4).
    clipnorm: Global gradient-norm clip (LM training; 0 = off).
    max_train_examples: Train on a subset of the training split (CIFAR-10), or the first
      tokens of it (PTB); None = all.
    max_eval_examples: Evaluate the reward on a subset of validation (None = all).
    steps_per_epoch: Cap on optimiser steps per epoch (None = one full pass).
    reward_epochs: CIFAR-10 reward: max validation accuracy over the last N epochs.
    lm_units: Hidden size of the PTB child's recurrent layers.
    lm_layers: Recurrent layers of the PTB child (paper: 2).
    num_steps: Truncated-BPTT length for PTB.
    dropout: Dropout on the LM's non-recurrent connections (Zaremba et al.).
    tie_embeddings: Share input and output embeddings in the LM (paper's "shared embeddings").
    max_params: Children with more parameters fail as 'too_large'.
    max_activation_elements: CNN children whose activations exceed this fail as 'too_large'.
    max_macs: CNN children whose forward pass costs more multiply-accumulates per example
      (``children.estimate_cnn_macs``, of the full network) fail as 'too_large': a compute
      budget, e.g. ~41e6 to match ResNet-20. None = no cap.
    init_scale: LM: every weight from ``U(-init_scale, init_scale)`` (Zaremba et al.:
      0.1); None = Keras' default initialisers.
    lr_decay_start: LM: epochs at the initial rate before it decays.
    lr_decay_factor: LM: rate multiplier per epoch after ``lr_decay_start``.
    loss_reduction: LM: 'sum' (cross-entropy summed over the BPTT window, averaged over
      the batch, as Zaremba et al.) or 'mean' (over all tokens).
    carry_state: LM: carry the recurrent state across BPTT windows (reset per epoch and
      per evaluation pass).
    divergence_retries: LM: restarts at a 4x lower rate after the loss diverges.
    lr_schedule: CNN: 'constant' or 'cosine' (decay to 0 over the child's training).
    measure_latency: Measure each child's inference latency (batch 1, on this machine,
      median of repeats; :func:`nas_tf.training.latency.measure`) after it is built; records
      carry ``latency_ms``. Needed by ``max_latency_ms`` and a latency objective.
    max_latency_ms: Children slower than this fail as 'too_large', before training (a
      hard constraint; a soft one is :class:`ObjectiveConfig`).
    width_multiplier: CNN search children: every conv layer's filters times this (a
      reduced proxy, EcoNAS' "channels"; the final training builds the spec as is).
    image_size: CNN search children: images resized to this side inside the model
      (EcoNAS' "resolution"); None = the data's own.
  """

  LR_SCHEDULES = ("constant", "cosine")  # (a class constant, not a field)

  epochs: int = 1
  batch_size: int = 32
  optimizer: str = "momentum"
  learning_rate: float = 0.1
  momentum: float = 0.9
  weight_decay: float = 1e-4
  clipnorm: float = 0.0
  max_train_examples: Optional[int] = None
  max_eval_examples: Optional[int] = None
  steps_per_epoch: Optional[int] = None
  reward_epochs: int = 5
  lm_units: int = 64
  lm_layers: int = 2
  num_steps: int = 20
  dropout: float = 0.0
  tie_embeddings: bool = False
  max_params: Optional[int] = 5_000_000
  max_activation_elements: Optional[int] = 20_000_000
  max_macs: Optional[int] = None
  init_scale: Optional[float] = 0.1
  lr_decay_start: int = 4
  lr_decay_factor: float = 0.5
  loss_reduction: str = "sum"
  carry_state: bool = True
  divergence_retries: int = 2
  lr_schedule: str = "constant"
  measure_latency: bool = False
  max_latency_ms: Optional[float] = None
  width_multiplier: float = 1.0
  image_size: Optional[int] = None

  def __post_init__(self):
    _check(self.epochs >= 1, f"child epochs must be >= 1, got {self.epochs!r}")
    _check(self.width_multiplier > 0,
           f"width_multiplier must be > 0, got {self.width_multiplier!r}")
    _check(self.image_size is None or self.image_size >= 4,
           f"image_size must be >= 4 or None, got {self.image_size!r}")
    _check(self.max_latency_ms is None or (self.max_latency_ms > 0 and self.measure_latency),
           f"max_latency_ms must be > 0 and needs measure_latency=true, got "
           f"{self.max_latency_ms!r} (measure_latency={self.measure_latency})")
    _check(self.init_scale is None or self.init_scale > 0,
           f"init_scale must be > 0 or None, got {self.init_scale!r}")
    _check(self.lr_schedule in self.LR_SCHEDULES,
           f"lr_schedule must be one of {self.LR_SCHEDULES}, got {self.lr_schedule!r}")
    _check(self.loss_reduction in ("sum", "mean"),
           f"loss_reduction must be 'sum' or 'mean', got {self.loss_reduction!r}")
    _check(self.batch_size >= 1, f"child batch_size must be >= 1, got {self.batch_size!r}")
    _check(self.optimizer in ("momentum", "sgd", "adam"),
           f"child optimizer must be 'momentum', 'sgd' or 'adam', got {self.optimizer!r}")
    _check(self.learning_rate > 0, f"child learning_rate must be > 0, got {self.learning_rate!r}")
    _check(0 <= self.dropout < 1, f"dropout must lie in [0, 1), got {self.dropout!r}")
    for name in ("max_train_examples", "max_eval_examples", "steps_per_epoch"):
      value = getattr(self, name)
      _check(value is None or value >= 1, f"{name} must be >= 1 or None, got {value!r}")


@dataclasses.dataclass(frozen=True)
class DepthSchedule:
  """CNN depth growth (paper §4.1: start at 6 layers, +2 every 1,600 architectures)."""

  start: int = 6
  increment: int = 2
  every: int = 1600
  maximum: Optional[int] = None

  def __post_init__(self):
    _check(self.start >= 1, f"depth start must be >= 1, got {self.start!r}")
    _check(self.increment >= 0, f"depth increment must be >= 0, got {self.increment!r}")
    _check(self.every >= 1, f"depth 'every' must be >= 1, got {self.every!r}")

  def depth_at(self, num_sampled: int) -> int:
    """Depth for the batch sampled after ``num_sampled`` architectures."""
    depth = self.start + self.increment * (num_sampled // self.every)
    return depth if self.maximum is None else min(depth, self.maximum)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
  """Where and how children run.

  Attributes:
    isolation: 'process' trains children in a recycled worker process (memory stays
      flat over hundreds of children); 'inline' trains them in the search process
      (fast start-up; for tests and debugging).
    children_per_process: Recycle a worker process after this many children.
    parallel_children: Worker processes training children at once.
    intra_op_threads: TensorFlow intra-op threads per worker (0 = TF default).
    commit_seconds: Write state.json and the checkpoint at most this often (0 = after
      every step, the default). Steps in between are not lost: a resumed run re-proposes
      them and takes their children from results.jsonl. For searches whose steps take
      milliseconds (a table lookup), where writing the checkpoint is the cost.
  """

  isolation: str = "process"
  children_per_process: int = 25
  parallel_children: int = 1
  intra_op_threads: int = 0
  commit_seconds: float = 0.0

  def __post_init__(self):
    _check(self.commit_seconds >= 0,
           f"commit_seconds must be >= 0, got {self.commit_seconds!r}")
    _check(self.isolation in ISOLATION_MODES,
           f"isolation must be one of {ISOLATION_MODES}, got {self.isolation!r}")
    _check(self.children_per_process >= 1,
           f"children_per_process must be >= 1, got {self.children_per_process!r}")
    _check(self.parallel_children >= 1,
           f"parallel_children must be >= 1, got {self.parallel_children!r}")


@dataclasses.dataclass(frozen=True)
class SharedTrainingConfig:
  """Weight-sharing evaluation, ``evaluation='shared'`` (Pham et al. 2018, ENAS §2.2).

  The shared model's size is the child's (``ChildTrainingConfig``: lm_units, lm_layers,
  num_steps, batch_size, max_train_examples); these fields set how it is trained.

  Attributes:
    train_batches: Shared-weight minibatches (one sampled architecture each) before
      every controller step.
    optimizer: 'momentum', 'sgd' or 'adam' for the shared weights.
    learning_rate: Learning rate of the shared weights.
    clipnorm: Global gradient-norm clip of the shared weights (0 = off).
    eval_batches: Validation minibatches each sampled child's reward is measured on.
    derive_samples: Architectures sampled at the end; the best on the validation
      subset is written to ``derived.json`` (ENAS §2.2 "deriving architectures").
    cnn_filters: Channels of every layer of the shared CNN (ENAS macro space).
  """

  train_batches: int = 20
  optimizer: str = "adam"
  learning_rate: float = 2e-3
  clipnorm: float = 5.0
  eval_batches: int = 1
  derive_samples: int = 8
  cnn_filters: int = 32

  def __post_init__(self):
    for name in ("train_batches", "eval_batches", "derive_samples", "cnn_filters"):
      value = getattr(self, name)
      _check(isinstance(value, int) and value >= 1, f"shared {name} must be an int >= 1, "
             f"got {value!r}")
    _check(self.optimizer in ("momentum", "sgd", "adam"),
           f"shared optimizer must be 'momentum', 'sgd' or 'adam', got {self.optimizer!r}")
    _check(self.learning_rate > 0,
           f"shared learning_rate must be > 0, got {self.learning_rate!r}")
    _check(self.clipnorm >= 0, f"shared clipnorm must be >= 0, got {self.clipnorm!r}")


@dataclasses.dataclass(frozen=True)
class EvolutionConfig:
  """Regularized evolution (Real et al. 2019), ``search='evolution'``.

  Attributes:
    population_size: P, the architectures kept (the oldest leaves when one joins).
    sample_size: S, members drawn for each tournament; the best of them is mutated.
    with_replacement: Draw the S members with replacement, as Real et al.'s Algorithm 1
      does (a member can be drawn twice); False draws S distinct members (a slightly
      stronger selection pressure), as runs saved before this field existed did.
  """

  population_size: int = 20
  sample_size: int = 5
  with_replacement: bool = True

  def __post_init__(self):
    _check(self.population_size >= 1,
           f"evolution population_size must be >= 1, got {self.population_size!r}")
    _check(1 <= self.sample_size <= self.population_size,
           f"evolution sample_size must lie in [1, population_size={self.population_size}],"
           f" got {self.sample_size!r}")


@dataclasses.dataclass(frozen=True)
class ZeroCostConfig:
  """Children scored without training, ``evaluation='zero_cost'`` (CIFAR-10 conv networks).

  Attributes:
    score: One of :data:`ZERO_COST_SCORES`, used as the reward. ``synflow`` (data-free)
      ranked the CIFAR-10 space best of these against a 5x longer training
      (docs/RESULTS.md §2b); the others read a batch of training images.
    batch_size: Training images (the first of the split, not augmented) that the
      data-dependent scores see.
    release_every: Children scored between two releases of Keras' and TensorFlow's
      per-model caches (``clear_session``). Without them the search process grows by
      ~2.5 MB a child (measured, CIFAR-10 space); each release costs the controller,
      which shares the process, a few seconds of graph re-optimisation.
  """

  score: str = "synflow"
  batch_size: int = 64
  release_every: int = 200

  def __post_init__(self):
    _check(self.score in ZERO_COST_SCORES,
           f"zero_cost score must be one of {ZERO_COST_SCORES}, got {self.score!r}")
    _check(isinstance(self.batch_size, int) and self.batch_size >= 2,
           f"zero_cost batch_size must be an int >= 2, got {self.batch_size!r}")
    _check(isinstance(self.release_every, int) and self.release_every >= 1,
           f"zero_cost release_every must be an int >= 1, got {self.release_every!r}")


@dataclasses.dataclass(frozen=True)
class BOConfig:
  """Bayesian optimisation with Optuna's TPE sampler, ``search='bo'``.

  Attributes:
    startup_trials: Uniformly random proposals before TPE takes over.
    multivariate: Model the decisions jointly (Optuna's multivariate TPE) rather than
      one by one.
    distinct: When TPE proposes an architecture already evaluated or already proposed
      in the step (it often does: its best point is where its model is most confident),
      propose the nearest one not yet seen instead (see ``samplers.bo``). False keeps
      every proposal, repeats included (a repeat is not trained again: it costs a child
      of the budget and no time).
  """

  startup_trials: int = 10
  multivariate: bool = False
  distinct: bool = True

  def __post_init__(self):
    _check(self.startup_trials >= 1,
           f"bo startup_trials must be >= 1, got {self.startup_trials!r}")


@dataclasses.dataclass(frozen=True)
class ObjectiveConfig:
  """A resource-aware reward (MnasNet, Tan et al. 2019, eq. 2): soft constraints.

  ``reward = task_reward * prod_i (cost_i / target_i) ** cost_exponent`` over the targets
  that are set: a child at its target keeps its reward, one twice as costly loses
  ``1 - 2 ** cost_exponent`` of it (4.7% at MnasNet's -0.07), one half as costly gains as
  much. Hard caps are ``child.max_params`` / ``child.max_latency_ms`` / ``child.max_macs``.

  Attributes:
    target_params: Target parameter count (None = parameters not in the objective).
    target_latency_ms: Target inference latency, batch 1, on the search machine (needs
      ``child.measure_latency``).
    target_macs: Target multiply-accumulates per example (a FLOPs target; tasks whose
      ``Task.costs`` give ``macs``: CIFAR-10's conv children).
    cost_exponent: ``w <= 0``; MnasNet's soft constraint uses -0.07.
  """

  target_params: Optional[float] = None
  target_latency_ms: Optional[float] = None
  target_macs: Optional[float] = None
  cost_exponent: float = -0.07

  def __post_init__(self):
    for name in ("target_params", "target_latency_ms", "target_macs"):
      value = getattr(self, name)
      _check(value is None or value > 0, f"objective {name} must be > 0, got {value!r}")
    _check(self.cost_exponent <= 0,
           f"cost_exponent must be <= 0 (costlier children lose reward), got "
           f"{self.cost_exponent!r}")

  @property
  def targets(self) -> dict:
    """``{record key of the cost: target}`` for the targets that are set."""
    return {k: v for k, v in (("num_params", self.target_params),
                              ("latency_ms", self.target_latency_ms),
                              ("macs", self.target_macs)) if v is not None}


@dataclasses.dataclass(frozen=True)
class PrunerConfig:
  """Stopping hopeless children early (:mod:`nas_tf.search.pruners`).

  Every trained child is validated at *rungs*, fractions of its budget
  ``min_resource * reduction_factor ** i`` below 1 (PTB: windows trained; classifiers:
  epochs, rounded), and stops at the first rung whose bar it misses. The bars come only
  from children committed before the child's step was sampled, so a run (and its resume)
  makes the same decisions whatever the timing.

  Attributes:
    kind: 'none'; 'observe' (validate every child at the rungs and record the values,
      stop none: the curves `benchmarks/pruning_replay.py` replays other rules on, at
      the cost of the rung validations); 'median' (stop below the median of the earlier children's values at
      the rung; Golovin et al. 2017's median stopping rule); 'successive_halving'
      (asynchronous successive halving, Li et al. 2020 (ASHA): go on only within the
      best ``1 / reduction_factor`` of the values at the rung, the child's own included);
      'hyperband' (Li et al. 2018: children spread over brackets of successive halving
      that start at later rungs, the last one never stopped).
    min_resource: The first rung, as a fraction of a child's budget.
    reduction_factor: eta: rungs are eta times apart, and successive halving keeps the
      best 1/eta.
    num_brackets: Hyperband's brackets (None: one per rung plus the unstopped one).
    warmup_children: No decision at a rung until this many children have a value there.
    rung_validation: Share of the validation windows a language model is measured on at
      a rung (its final value uses all): on the PTB proxy a full pass costs as much as
      a sixth of the whole training, so measuring two rungs on all of it would eat a
      third of what stopping saves. Rung values are compared only with other values
      of the same rung, measured on the same windows.
  """

  kind: str = "none"
  min_resource: float = 1 / 9
  reduction_factor: int = 3
  num_brackets: Optional[int] = None
  warmup_children: int = 5
  rung_validation: float = 0.25

  def __post_init__(self):
    _check(self.kind in PRUNERS, f"pruner must be one of {PRUNERS}, got {self.kind!r}")
    _check(0 < self.min_resource < 1,
           f"pruner min_resource must lie in (0, 1) (a fraction of a child's budget), got "
           f"{self.min_resource!r}")
    _check(isinstance(self.reduction_factor, int) and self.reduction_factor >= 2,
           f"pruner reduction_factor must be an int >= 2, got {self.reduction_factor!r}")
    _check(self.num_brackets is None or self.num_brackets >= 1,
           f"pruner num_brackets must be >= 1 or None, got {self.num_brackets!r}")
    _check(0 < self.rung_validation <= 1,
           f"pruner rung_validation must lie in (0, 1], got {self.rung_validation!r}")
    _check(self.warmup_children >= 0,
           f"pruner warmup_children must be >= 0, got {self.warmup_children!r}")


# Fields whose default changed the behaviour when they were added: a config.json saved
# before reads as what its run did (a resume with today's default is then refused with
# the field named, rather than silently changing how the run samples).
_BEHAVIOUR_BEFORE_THE_FIELD = {
    ("evolution", "with_replacement"): False,  # tournaments drew distinct members
    ("bo", "distinct"): False,  # TPE's repeated proposals were kept
}


@dataclasses.dataclass(frozen=True)
class SearchConfig:
  """One search run (paper §3): what is searched, how, with what budget, and where.

  Attributes:
    task: The task's reference: a registered name ('ptb', recurrent cells, §4.2;
      'cifar10', conv networks, §4.1; 'nasbench201'), ``FILE.py:ATTR`` or
      ``package.module:ATTR`` (:func:`nas_tf.tasks.resolve`).
    data_dir: Data location (PTB directory; CIFAR-10 directory, .tar.gz or 'tfds').
    output_dir: Where config.json, results.jsonl, checkpoints and summaries go.
    search: 'rl' (the controller + REINFORCE) or 'random' (uniform sampling baseline).
    max_children: Budget: architectures sampled in total (both methods count the same).
    children_per_step: m, architectures sampled per controller step.
    seed: Seeds sampling, the validation split and child initialisation.
    validation_size: CIFAR-10 images held out for the reward (None = the paper's 5,000).
    cache_dir: Where a CIFAR-10 .tar.gz is extracted (None = the loader's default).
    space: The search space as ``space.to_dict()``.
    depth: CNN depth schedule (ignored for PTB).
    controller, child, runtime: See their classes.
    evaluation: 'independent' (every child trained from scratch, the paper), 'shared'
      (children scored with weights shared among all of them, ENAS) or 'zero_cost'
      (scored at initialisation, without training: :mod:`nas_tf.zero_cost`).
    shared: Settings of the shared evaluation (used only with evaluation='shared').
    zero_cost: Settings of the zero-cost evaluation (saved only when used).
    evolution, bo: Settings of those searches (saved only when used).
    task_options: Task-specific settings, e.g. ``{"dataset": "cifar100"}`` for
      nasbench201 (saved only when set).
    objective: Resource-aware reward (saved only when a target is set).
    pruner: Early stopping of children (saved only when one is on).
    distinct: Every child a new architecture: a proposal of an architecture already
      sampled in the run is replaced by its nearest unseen one (one decision changed,
      then two, ...), for every strategy (BO does this itself with ``bo.distinct``). Off
      by default, as in the paper: a repeat costs a child of the budget but no training.
      Saved only when on.
  """

  task: str
  data_dir: str
  output_dir: str
  search: str = "rl"
  max_children: int = 8
  children_per_step: int = 2
  seed: int = 0
  validation_size: Optional[int] = None
  cache_dir: Optional[str] = None
  space: dict = dataclasses.field(default_factory=dict)
  depth: DepthSchedule = dataclasses.field(default_factory=DepthSchedule)
  controller: ControllerConfig = dataclasses.field(default_factory=ControllerConfig)
  child: ChildTrainingConfig = dataclasses.field(default_factory=ChildTrainingConfig)
  runtime: RuntimeConfig = dataclasses.field(default_factory=RuntimeConfig)
  evaluation: str = "independent"
  shared: SharedTrainingConfig = dataclasses.field(default_factory=SharedTrainingConfig)
  zero_cost: ZeroCostConfig = dataclasses.field(default_factory=ZeroCostConfig)
  evolution: EvolutionConfig = dataclasses.field(default_factory=EvolutionConfig)
  bo: BOConfig = dataclasses.field(default_factory=BOConfig)
  task_options: dict = dataclasses.field(default_factory=dict)
  objective: ObjectiveConfig = dataclasses.field(default_factory=ObjectiveConfig)
  pruner: PrunerConfig = dataclasses.field(default_factory=PrunerConfig)
  distinct: bool = False

  def __post_init__(self):
    _check(self.objective.target_latency_ms is None or self.child.measure_latency,
           "a latency target needs child.measure_latency=true (--target_latency_ms sets "
           "both)")
    _check(self.evaluation in EVALUATION_MODES,
           f"evaluation must be one of {EVALUATION_MODES}, got {self.evaluation!r}")
    _check(self.evaluation == "zero_cost" or self.zero_cost == ZeroCostConfig(),
           f"zero_cost settings ({self.zero_cost}) apply only with evaluation='zero_cost', "
           f"got evaluation={self.evaluation!r}")
    _check(self.evaluation != "zero_cost" or not self.child.measure_latency,
           "evaluation='zero_cost' builds no trained model to time: drop the latency "
           "settings (--target_latency_ms, --max_latency_ms) or train the children")
    _check(self.pruner.kind == "none" or self.evaluation == "independent",
           f"pruner={self.pruner.kind!r} stops trained children early; with "
           f"evaluation={self.evaluation!r} no child is trained on its own: use "
           "--pruner=none")
    _check(isinstance(self.task, str) and bool(self.task),
           f"task must be a task reference (a name, FILE.py:ATTR or package.module:ATTR), "
           f"got {self.task!r}")
    _check(self.search in SEARCH_METHODS,
           f"search must be one of {SEARCH_METHODS}, got {self.search!r}")
    _check(self.max_children >= 1, f"max_children must be >= 1, got {self.max_children!r}")
    _check(self.children_per_step >= 1,
           f"children_per_step must be >= 1, got {self.children_per_step!r}")

  @property
  def num_steps(self) -> int:
    """Controller steps: ceil(max_children / children_per_step)."""
    return -(-self.max_children // self.children_per_step)

  def to_dict(self) -> dict:
    data = dataclasses.asdict(self)
    if self.evaluation == "independent":
      # Left out: settings of modes a run does not use would make config.json differ
      # between otherwise equal runs and refuse their resumes.
      del data["evaluation"], data["shared"]
    if self.evaluation != "zero_cost":
      del data["zero_cost"]
    if not self.objective.targets:
      del data["objective"]  # config.json of a plain search stays what it was
    if self.pruner.kind == "none":
      del data["pruner"]
    if not self.distinct:
      del data["distinct"]
    return data

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  @classmethod
  def from_dict(cls, data: dict[str, Any]) -> "SearchConfig":
    data = dict(data)
    nested = {"depth": DepthSchedule, "controller": ControllerConfig,
              "child": ChildTrainingConfig, "runtime": RuntimeConfig,
              "shared": SharedTrainingConfig, "zero_cost": ZeroCostConfig,
              "evolution": EvolutionConfig,
              "bo": BOConfig, "objective": ObjectiveConfig, "pruner": PrunerConfig}
    for (section, name), value in _BEHAVIOUR_BEFORE_THE_FIELD.items():
      saved = data.get(section)
      if isinstance(saved, dict) and name not in saved:
        data[section] = dict(saved, **{name: value})  # as the run behaved when saved
    for key, sub in nested.items():
      if key in data and isinstance(data[key], dict):
        data[key] = sub(**data[key])
    return cls(**data)

  @classmethod
  def from_json(cls, text: str) -> "SearchConfig":
    return cls.from_dict(json.loads(text))
