"""A faster recurrent layer for tree cells: ``keras.layers.RNN`` with the input projection
hoisted out of the time loop.

The paper trains its PTB children and its found cell with the same model as the LSTM
baseline (§4.2); how fast a cell trains decides how many children a search can afford.
A tree cell with base ``B`` does two matmuls per step, ``x_t @ kernel`` and
``h_{t-1} @ recurrent_kernel``, each ``B`` blocks wide, and then many small element-wise
ops (one or two per node). Run step by step under ``keras.layers.RNN`` on a CPU, the
small ops cost more in per-op overhead than in arithmetic, and the gradient of the
``while`` loop stores every intermediate in a tensor list. :class:`TreeRNN` takes out
what it can without changing the maths: ``x @ kernel`` does not depend on the state, so it
runs once over the whole sequence (one ``[batch * time, in] x [in, B * units]`` matmul, as
cuDNN does for the LSTM, and one matmul for its gradient) and each step only does the
recurrent matmul and the tree. Measured on one CPU thread (``benchmarks/cell_speed.py``,
docs/RESULTS.md §3): median 1.14x (0.99-1.27x) the words/s of ``keras.layers.RNN``
over NASCell, two found and five random cells. Compiling each step with XLA was tried and did not pay on CPU (the
per-step call costs what the fusion saves); compiling the unrolled loop takes over a
minute per child.

Same weights, same states, same outputs as ``keras.layers.RNN(cell)`` (up to float
rounding of the batched matmul): a model saved with one loads into the other by
``set_weights``; ``benchmarks/cell_speed.py`` measures the speed-up.
"""

from __future__ import annotations

import keras
# keras.layers.RNN runs its loop with the backend's rnn(); Keras has no public name for it.
from keras.src import backend as keras_backend


def is_tree_cell(cell) -> bool:
  """Whether ``cell`` splits its step into ``project_inputs`` + ``call_projected``."""
  return hasattr(cell, "project_inputs") and hasattr(cell, "call_projected")


@keras.saving.register_keras_serializable(package="nas_tf")
class TreeRNN(keras.layers.RNN):
  """``keras.layers.RNN`` for :class:`nas_tf.cells.TreeCell` and ``NASCell``, faster.

  Args:
    cell: A :class:`nas_tf.cells.TreeCell` or :class:`nas_tf.cells.NASCell` (any cell
      with ``project_inputs`` and ``call_projected``).
    return_sequences: As in ``keras.layers.RNN``.
    return_state: As in ``keras.layers.RNN``.
    go_backwards: As in ``keras.layers.RNN``.
    stateful: As in ``keras.layers.RNN``.
    unroll: As in ``keras.layers.RNN``.
    **kwargs: Passed to ``keras.layers.RNN`` (name, dtype, trainable, ...).

  Raises:
    TypeError: ``cell`` is not a tree cell.
  """

  def __init__(self, cell, return_sequences: bool = False, return_state: bool = False,
               go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
               **kwargs):
    if not is_tree_cell(cell):
      raise TypeError(f"TreeRNN needs a nas_tf TreeCell or NASCell, got "
                      f"{type(cell).__name__}; use keras.layers.RNN for other cells")
    super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                     go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                     **kwargs)

  def inner_loop(self, sequences, initial_state, mask, training=False):
    del training  # tree cells have no dropout
    if not isinstance(initial_state, (list, tuple)):
      initial_state = [initial_state]

    def step(xw_t, states):
      return self.cell.call_projected(xw_t, list(states))

    projected = self.cell.project_inputs(sequences)
    return keras_backend.rnn(
        step, projected, list(initial_state), go_backwards=self.go_backwards, mask=mask,
        unroll=self.unroll, input_length=projected.shape[1],
        zero_output_for_mask=self.zero_output_for_mask,
        return_all_outputs=self.return_sequences)
