"""Training speed of tree cells against Keras' LSTM, and against their compute bound.

The paper (§4.2) trains its cells in the Penn Treebank model of Zaremba et al.:
Embedding -> two recurrent layers -> softmax over 10k words, batch 20, 35 steps. This
benchmark builds that model (``nas_tf.children.build_language_model``, state carried,
as a search child is) for Keras' LSTM, for ``NASCell`` and for other tree cells, and
times the library's own training step (``lm_training``: summed loss, SGD, clip 5) on
synthetic tokens, all models in one process and interleaved (model 1, model 2, ...,
model 1, ...) so that load from other processes hits all alike; warm-up steps (tracing)
are excluded and the median over repeats is reported.

The compute bound: a training step costs about 3x the multiply-adds of the forward pass,
per token ``sum over layers (in + units) x gate_width + units x vocab`` (gate width
``4 units`` for the LSTM, ``B units`` for a base-``B`` tree cell); element-wise ops are
< 1% of it. So a cell's words/s is predicted as ``LSTM words/s x MACs(LSTM) / MACs(cell)``
and we report measured / predicted (1.0: the cell is as efficient as the LSTM).

By default every tree cell is also timed under plain ``keras.layers.RNN`` (the input
projection inside the loop), the path that ``nas_tf.tree_rnn.TreeRNN`` replaced.

Example:
  python benchmarks/cell_speed.py --intra_op_threads=1 --random_cells=5 \
      --found=benchmarks/results/runs/ptb-rl-seed0/best.json
"""

import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from absl import app, flags  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top

_UNITS = flags.DEFINE_integer("units", 200, "Units of both recurrent layers (and embedding).")
_VOCAB = flags.DEFINE_integer("vocab_size", 10000, "Vocabulary size (PTB: 10000).")
_BATCH = flags.DEFINE_integer("batch_size", 20, "Sequences per batch (PTB small: 20).")
_STEPS_T = flags.DEFINE_integer("num_steps", 35, "Unrolled time steps (PTB: 35).")
_LAYERS_N = flags.DEFINE_integer("num_layers", 2, "Stacked recurrent layers.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed steps per model before timing.")
_STEPS = flags.DEFINE_integer("steps", 8, "Timed train steps per repeat.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Interleaved repeats; the median is reported.")
_RANDOM = flags.DEFINE_integer("random_cells", 5, "Base-8 cells sampled uniformly.")
_FOUND = flags.DEFINE_list("found", [], "best.json files (or spec JSON files) of found cells.")
_PATHS = flags.DEFINE_list("layers", ["tree_rnn", "keras_rnn"], "How to run tree cells: "
                           "tree_rnn (what children use), keras_rnn (plain "
                           "keras.layers.RNN), unrolled (TreeRNN with unroll=True: the "
                           "time loop written out in the graph; the LSTM too).")
_INTRA = flags.DEFINE_integer("intra_op_threads", 0, "TF intra-op threads (0: TF default).")
_OUT = flags.DEFINE_string("out", None, "Optional JSON file for the figures.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights, random cells and tokens.")


def macs_per_token(gate_width: int, units: int, embedding: int, vocab: int, layers: int) -> int:
  """Forward multiply-adds per token of the PTB model (see the module docstring)."""
  total, width_in = 0, embedding
  for _ in range(layers):
    total += (width_in + units) * gate_width
    width_in = units
  return total + units * vocab


def _cells():
  """(name, cell argument of build_language_model, gate blocks) to time."""
  from nas_tf import search_space, specs  # pylint: disable=g-import-not-at-top
  chosen = [("lstm", "lstm", 4), ("nascell", "nascell", 8)]
  for path in _FOUND.value:
    data = json.loads(pathlib.Path(path).read_text())
    spec = specs.from_dict(data.get("spec", data))
    chosen.append((f"found:{pathlib.Path(path).parent.name}", spec, spec.base))
  rng = np.random.default_rng(_SEED.value)
  space = search_space.RNNCellSearchSpace(base=8)
  for i in range(_RANDOM.value):
    chosen.append((f"random{i}", space.sample(rng), 8))
  return chosen


def _model(cell, path: str):
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf import children  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(_SEED.value)
  # keras_rnn: the path before TreeRNN, for the side-by-side ratio.
  return children.build_language_model(
      cell, _VOCAB.value, _UNITS.value, num_layers=_LAYERS_N.value, init_scale=0.1,
      return_state=True, unroll=path == "unrolled",
      recurrent_layer=keras.layers.RNN if path == "keras_rnn" else None)


def main(argv):
  del argv
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import keras  # pylint: disable=g-import-not-at-top
  from nas_tf.training import lm as lm_training  # pylint: disable=g-import-not-at-top

  tf.config.threading.set_intra_op_parallelism_threads(_INTRA.value)
  tf.config.threading.set_inter_op_parallelism_threads(_INTRA.value)
  rng = np.random.default_rng(_SEED.value)
  shape = (_BATCH.value, _STEPS_T.value)
  batches = [(tf.constant(rng.integers(0, _VOCAB.value, shape, dtype=np.int32)),
              tf.constant(rng.integers(0, _VOCAB.value, shape, dtype=np.int32)))
             for _ in range(4)]
  recipe = lm_training.LMRecipe()
  runs = []  # [name, layer path, blocks, steps, states]
  for name, cell, blocks in _cells():
    paths = (["keras_rnn"] + (["unrolled"] if "unrolled" in _PATHS.value else [])
             if cell == "lstm" else _PATHS.value)
    for path in paths:
      model = _model(cell, path)
      steps = lm_training._Steps(  # pylint: disable=protected-access
          model, keras.optimizers.SGD(recipe.learning_rate), recipe)
      states = lm_training.zero_states(model, _BATCH.value)
      start = time.perf_counter()
      for i in range(_WARMUP.value):
        _, states, _ = steps.train_step(*batches[i % 4], states)
      print(f"{name:<24}{path:<10} built, warm-up {time.perf_counter() - start:.1f} s",
            flush=True)
      runs.append([name, path, blocks, steps, states])

  words = _STEPS.value * _BATCH.value * _STEPS_T.value
  rates = {(r[0], r[1]): [] for r in runs}
  for repeat in range(_REPEATS.value):
    for run in runs:
      name, path, _, steps, states = run
      start = time.perf_counter()
      for i in range(_STEPS.value):
        xent, states, _ = steps.train_step(*batches[i % 4], states)
      float(xent)  # waits for the last step
      rates[(name, path)].append(words / (time.perf_counter() - start))
      run[4] = states
    print(f"repeat {repeat + 1}/{_REPEATS.value} done", flush=True)

  macs = lambda blocks: macs_per_token(blocks * _UNITS.value, _UNITS.value, _UNITS.value,
                                       _VOCAB.value, _LAYERS_N.value)
  lstm = statistics.median(rates[("lstm", "keras_rnn")])
  print(f"\nTensorFlow {tf.__version__}, Keras {keras.__version__}, intra_op threads "
        f"{_INTRA.value} (0 = TF default); units {_UNITS.value}, vocab {_VOCAB.value}, "
        f"batch {_BATCH.value} x {_STEPS_T.value} steps, {_LAYERS_N.value} layers; median "
        f"of {_REPEATS.value} x {_STEPS.value} steps")
  print(f"{'cell':<24}{'layer':<10}{'MACs/token':>12}{'words/s':>9}{'/LSTM':>7}"
        f"{'predicted':>10}{'meas/pred':>10}{'spread':>12}")
  table = []
  for (name, path), r in rates.items():
    blocks = next(run[2] for run in runs if run[0] == name)
    med, predicted = statistics.median(r), lstm * macs(4) / macs(blocks)
    row = {"cell": name, "layer": path, "macs_per_token": macs(blocks), "words_per_s": med,
           "vs_lstm": med / lstm, "predicted": predicted, "of_predicted": med / predicted,
           "spread": [min(r), max(r)]}
    table.append(row)
    print(f"{name:<24}{path:<10}{row['macs_per_token']:>12,}{med:>9.0f}{med / lstm:>7.2f}"
          f"{predicted:>10.0f}{med / predicted:>10.2f}{f'{min(r):.0f}-{max(r):.0f}':>12}")
  if _OUT.value:
    pathlib.Path(_OUT.value).write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
  app.run(main)
