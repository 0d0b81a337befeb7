"""Default settings per task, as data: searches (nas_search) and final training (nas_train).

The binaries use these for flags the user did not set. TINY (no --data_dir) is
sized so that the first command a newcomer types finishes in a minute or two on a laptop
CPU; REAL is a small but meaningful search on the real data that a 2-core machine runs
in about an hour. The paper's full-scale settings are in the README.
"""

# Search defaults, keyed by config field ("section.field"): the one source of defaults
# of nas_search (flags given on the command line, then --set, override them).
# Tiny settings used when --data_dir is unset.
TINY = {
    "ptb": {"max_children": 4, "children_per_step": 2, "child.epochs": 1,
            "child.batch_size": 8, "child.optimizer": "sgd", "child.learning_rate": 1.0,
            "child.clipnorm": 5.0, "child.lm_units": 16, "child.num_steps": 10,
            "controller.learning_rate": 5e-4},
    "cifar10": {"max_children": 4, "children_per_step": 2, "child.epochs": 2,
                "child.batch_size": 8, "depth.start": 3, "validation_size": 10},
    "nasbench201": {"max_children": 50, "children_per_step": 1,
                    "controller.learning_rate": 0.01, "runtime.commit_seconds": 5.0},
}

# Real-data defaults: a small but meaningful CPU search; scale up with the flags.
REAL = {
    # The LM recipe of Zaremba et al. (2014) that §4.2 follows: SGD lr 1 on the loss summed
    # over the window, clip 5, uniform +-0.1 init, state carried (ChildTrainingConfig).
    # Size and budget: the proxy with the best rank correlation per second of the ones
    # measured against a one-epoch reference (docs/RESULTS.md §2b: 2x32 units on the
    # first 150k training tokens, ~35 s a child on 2 cores).
    "ptb": {"max_children": 40, "children_per_step": 4, "child.epochs": 1,
            "child.batch_size": 20, "child.optimizer": "sgd", "child.learning_rate": 1.0,
            "child.clipnorm": 5.0, "child.lm_units": 32, "child.num_steps": 20,
            "controller.learning_rate": 5e-4, "child.max_train_examples": 150_000,
            "child.max_eval_examples": 20_000, "child.dropout": 0.0,
            "child.weight_decay": 0.0},
    "cifar10": {"max_children": 40, "children_per_step": 4, "child.epochs": 5,
                "child.batch_size": 64, "child.optimizer": "momentum",
                "child.learning_rate": 0.1, "child.weight_decay": 1e-4, "depth.start": 6,
                "controller.learning_rate": 6e-4, "child.max_train_examples": 5000,
                "child.max_eval_examples": 2000, "validation_size": 5000},
    # A table lookup costs nothing: the budget of the strategy comparison
    # (benchmarks/strategies.py, docs/RESULTS.md §5); one child per step, as NAS-Bench-201's
    # own REINFORCE baseline. Controller lr 0.01, tuned there: at the paper's 6e-4 REINFORCE
    # is no better than random at 150 queries (--controller_lr=6e-4 restores it).
    "nasbench201": {"max_children": 150, "children_per_step": 1,
                    "controller.learning_rate": 0.01, "runtime.commit_seconds": 5.0},
}


# Final-training (bin/nas_train) defaults. FINAL_TINY runs on the bundled testdata in seconds (a smoke test, not a
# result); FINAL_REAL is a CPU-sized final training on the real data. The paper's settings
# (§4.1: Nesterov momentum, weight decay 1e-4, long cosine-like schedules; §4.2: dropout
# and shared embeddings on a large LM) are reached by raising epochs/units.
FINAL_TINY = {
    "ptb": dict(epochs=2, batch_size=8, optimizer="sgd", learning_rate=1.0,
                lr_schedule="decay_after", lr_decay_start=1, lr_decay_factor=0.5,
                weight_decay=0.0, dropout=0.1, tie_embeddings=True, units=16, num_layers=2,
                num_steps=10, clipnorm=5.0),
    "cifar10": dict(epochs=2, batch_size=8, optimizer="momentum", learning_rate=0.05,
                    lr_schedule="cosine", weight_decay=1e-4, dropout=0.0,
                    validation_size=10),
}
FINAL_REAL = {
    # Zaremba et al.'s (2014) "small" PTB recipe (test perplexity ~115 for the LSTM), so a
    # found cell is compared with a published baseline; their "medium" one (650 units,
    # dropout 0.5, 39 epochs, decay 0.8 after 6) is in the README.
    "ptb": dict(epochs=13, batch_size=20, optimizer="sgd", learning_rate=1.0,
                lr_schedule="decay_after", lr_decay_start=4, lr_decay_factor=0.5,
                weight_decay=0.0, dropout=0.0, tie_embeddings=False, units=200,
                num_layers=2, num_steps=20, clipnorm=5.0, init_scale=0.1,
                early_stopping_patience=0),
    "cifar10": dict(epochs=100, batch_size=64, optimizer="momentum", learning_rate=0.1,
                    lr_schedule="cosine", weight_decay=1e-4, dropout=0.0,
                    validation_size=5000, early_stopping_patience=0),
}


# Where the bundled testdata of each task lives, relative to a source checkout.
TESTDATA = {"ptb": "ptb", "cifar10": "cifar10/png",
            "nasbench201": "nasbench201/nasbench201-synthetic.csv.gz"}


def default_output_dir(task: str, search: str, seed: int, evaluation: str = "independent",
                       tiny: bool = False) -> str:
  """runs/TASK-SEARCH-seedN[-shared][-tiny]: runs of different settings never collide."""
  return (f"runs/{task}-{search}-seed{seed}" + ("-shared" if evaluation == "shared" else "")
          + ("-tiny" if tiny else ""))


def search_space(task: str, rnn_base: int = 8, strides=(1,), pooling: bool = False) -> dict:
  """The paper's search space of ``task`` as ``space.to_dict()`` (§3.1-3.4, §4.1 pooling)."""
  if task not in ("ptb", "cifar10"):
    return {}  # the task's own default space (Task.default_space)
  if task == "ptb":
    return {"kind": "rnn", "base": rnn_base, "combinations": ["add", "elem_mult"],
            "activations": ["identity", "tanh", "sigmoid", "relu"]}
  ops = ["conv", "max_pool", "avg_pool"] if pooling else ["conv"]
  return {"kind": "cnn", "strides": [int(s) for s in strides], "layer_ops": ops}


def _pick(table: dict, task: str) -> dict:
  if task not in table:
    raise ValueError(f"task must be one of {sorted(table)}, got {task!r}")
  return dict(table[task])


def search_defaults(task: str, tiny: bool) -> dict:
  """Config field ("section.field") -> default value of a search of ``task``."""
  return _pick(TINY if tiny else REAL, task)


def final_defaults(task: str, tiny: bool) -> dict:
  """FinalTrainingConfig field -> default for ``task`` (tiny: the bundled testdata)."""
  return _pick(FINAL_TINY if tiny else FINAL_REAL, task)
