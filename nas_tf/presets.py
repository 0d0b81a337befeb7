"""Final-training defaults per task (nas_train), the paper's search spaces, output names.

A search's defaults belong to its task (``Task.presets``, :mod:`nas_tf.tasks`). The paper's
full-scale settings are in the README.
"""

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




def default_output_dir(task: str, search: str, seed: int, evaluation: str = "independent",
                       tiny: bool = False) -> str:
  """runs/TASK-SEARCH-seedN[-EVALUATION][-tiny]: runs of different settings never collide
  (no suffix for the paper's independent training)."""
  return (f"runs/{task}-{search}-seed{seed}"
          + ("" if evaluation == "independent" else f"-{evaluation}")
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




def final_defaults(task: str, tiny: bool) -> dict:
  """FinalTrainingConfig field -> default for ``task`` (tiny: the bundled testdata)."""
  return _pick(FINAL_TINY if tiny else FINAL_REAL, task)
