"""A fast recurrent layer for tree cells: ``keras.layers.RNN`` with the input projection
hoisted out of the time loop and, optionally, the loop compiled by XLA.

The paper trains its PTB children and its found cell with the same model as the LSTM
baseline (§4.2); how fast a cell trains decides how many children a search can afford.
A tree cell with base ``B`` does two matmuls per step, ``x_t @ kernel`` and
``h_{t-1} @ recurrent_kernel``, each ``B`` blocks wide, and then many small element-wise
ops (one or two per node). Run step by step under ``keras.layers.RNN`` on a CPU, the
small ops cost more in per-op overhead than in arithmetic, and the gradient of the
``while`` loop stores every intermediate in a tensor list. :class:`TreeRNN` removes both
costs without changing the maths:

* ``x @ kernel`` does not depend on the state, so it runs once over the whole sequence
  (one ``[batch * time, in] x [in, B * units]`` matmul, as cuDNN does for the LSTM) and
  each step only adds the recurrent matmul and the tree.
* With ``jit_compile=True`` (TensorFlow backend, known number of time steps) the loop is
  unrolled and compiled by XLA, which fuses the tree's element-wise ops of each step
  and of its gradient into a few kernels.

Same weights, same states, same outputs as ``keras.layers.RNN(cell)`` (up to float
rounding of the batched matmul): a model saved with one loads into the other by
``set_weights``; ``benchmarks/cell_speed.py`` measures the speed-up.
"""

from __future__ import annotations

import keras
# keras.layers.RNN runs its loop with the backend's rnn(); Keras has no public name for it.
from keras.src import backend as keras_backend


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
    unroll: As in ``keras.layers.RNN`` (implied by ``jit_compile`` when it applies).
    jit_compile: Compile the unrolled time loop with XLA. Needs the TensorFlow backend,
      a known number of time steps at call time and no mask; otherwise the loop runs
      uncompiled (same results). Costs a compilation per input shape (seconds for
      35 steps), repaid after a few training steps.
    **kwargs: Passed to ``keras.layers.RNN`` (name, dtype, trainable, ...).

  Raises:
    TypeError: ``cell`` is not a tree cell.
  """

  def __init__(self, cell, return_sequences: bool = False, return_state: bool = False,
               go_backwards: bool = False, stateful: bool = False, unroll: bool = False,
               jit_compile: bool = False, **kwargs):
    if isinstance(cell, dict):  # from_config hands the serialized cell
      cell = keras.saving.deserialize_keras_object(cell)
    if not (hasattr(cell, "project_inputs") and hasattr(cell, "call_projected")):
      raise TypeError(f"TreeRNN needs a nas_tf TreeCell or NASCell, got "
                      f"{type(cell).__name__}; use keras.layers.RNN for other cells")
    if not isinstance(jit_compile, bool):
      raise ValueError(f"jit_compile must be a bool, got {jit_compile!r}")
    super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                     go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                     **kwargs)
    self.jit_compile = jit_compile
    self._compiled_step = None  # one tf.function, traced once per input shape

  def inner_loop(self, sequences, initial_state, mask, training=False):
    del training  # tree cells have no dropout
    if not isinstance(initial_state, (list, tuple)):
      initial_state = [initial_state]
    step_fn = self.cell.call_projected
    if self.jit_compile and keras.backend.backend() == "tensorflow":
      if self._compiled_step is None:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top
        self._compiled_step = tf.function(self.cell.call_projected, jit_compile=True)
      step_fn = self._compiled_step

    def step(xw_t, states):
      return step_fn(xw_t, list(states))

    projected = self.cell.project_inputs(sequences)
    return keras_backend.rnn(
        step, projected, list(initial_state), go_backwards=self.go_backwards, mask=mask,
        unroll=self.unroll, input_length=projected.shape[1],
        zero_output_for_mask=self.zero_output_for_mask,
        return_all_outputs=self.return_sequences)

  def get_config(self) -> dict:
    config = super().get_config()
    config["jit_compile"] = self.jit_compile
    return config
