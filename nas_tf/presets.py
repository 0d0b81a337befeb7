"""Names of run directories: runs of different settings never collide."""


def default_output_dir(task: str, search: str, seed: int, evaluation: str = "independent",
                       tiny: bool = False) -> str:
  """runs/TASK-SEARCH-seedN[-EVALUATION][-tiny]: runs of different settings never collide
  (no suffix for the paper's independent training)."""
  return (f"runs/{task}-{search}-seed{seed}"
          + ("" if evaluation == "independent" else f"-{evaluation}")
          + ("-tiny" if tiny else ""))
