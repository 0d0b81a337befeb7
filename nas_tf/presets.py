"""Default search settings per task, as data: a tiny run on testdata and a CPU-sized real run.

``bin/nas_search`` uses these for flags the user did not set. TINY (no --data_dir) is
sized so that the first command a newcomer types finishes in a minute or two on a laptop
CPU; REAL is a small but meaningful search on the real data that a 2-core machine runs
in about an hour. The paper's full-scale settings are in the README.
"""

# Tiny settings used when --data_dir is unset.
TINY = {
    "ptb": dict(max_children=4, children_per_step=2, child_epochs=1, child_batch_size=8,
                child_optimizer="adam", child_lr=3e-3, lm_units=16, num_steps=10),
    "cifar10": dict(max_children=4, children_per_step=2, child_epochs=2,
                    child_batch_size=8, start_layers=3, validation_size=10),
}

# Real-data defaults: a small but meaningful CPU search; scale up with the flags.
REAL = {
    "ptb": dict(max_children=40, children_per_step=4, child_epochs=1, child_batch_size=20,
                child_optimizer="adam", child_lr=2e-3, lm_units=64, num_steps=20,
                controller_lr=5e-4, max_train_examples=200_000, max_eval_examples=20_000,
                dropout=0.0, child_weight_decay=0.0),
    "cifar10": dict(max_children=40, children_per_step=4, child_epochs=5, child_batch_size=64,
                    child_optimizer="momentum", child_lr=0.1, child_weight_decay=1e-4,
                    start_layers=6, controller_lr=6e-4, max_train_examples=5000,
                    max_eval_examples=2000, validation_size=5000),
}


def search_defaults(task: str, tiny: bool) -> dict:
  """Flag-name -> default value for ``task`` ('ptb' or 'cifar10')."""
  table = TINY if tiny else REAL
  if task not in table:
    raise ValueError(f"task must be one of {sorted(table)}, got {task!r}")
  return dict(table[task])
