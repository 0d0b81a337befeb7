r"""Overhead of generated CNN children versus the same network written by hand (§3.3).

The search trains thousands of children, so :func:`nas_tf.children.build_cnn` must cost
no more than a hand-written Keras model of the same architecture. This benchmark builds
a fixed 6-layer spec with skip connections and a stride-2 layer (so zero padding is
exercised), writes the identical network by hand below, checks the two compute the
same function (same parameter count; equal logits after copying weights), then trains
both side by side on synthetic 32x32x3 data and compares median step times.

Timing: warm-up steps are excluded; repeats are interleaved in ABBA order so slow drift
of a shared machine hits both models alike; each repeat times ``--steps`` train steps.

Usage:
  python benchmarks/child_overhead.py [--batch_size=32 --repeats=8 --steps=10]
"""

import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from absl import app  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # pylint: disable=g-import-not-at-top,wrong-import-position
import keras  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from nas_tf import children  # pylint: disable=g-import-not-at-top,wrong-import-position
from nas_tf import specs  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 32, "Images per train step.")
flags.DEFINE_integer("repeats", 8, "Timed repeats per model (interleaved ABBA).")
flags.DEFINE_integer("steps", 10, "Train steps per timed repeat.")
flags.DEFINE_integer("warmup", 3, "Untimed train steps per model before timing.")
flags.DEFINE_integer("seed", 0, "Seed of weights and data.")
flags.DEFINE_enum("jit_compile", "auto", ["auto", "on", "off"],
                  "Keras compile(jit_compile=...) for both models.")

L = specs.ConvLayer
# Realistic choices from the paper's space (filters 24-64, kernels 1-7), 6 layers.
SPEC = specs.CNNSpec((
    L(3, 3, 36),                      # 0 <- image          32x32x36
    L(3, 3, 48, inputs=(0,)),         # 1 <- 0              32x32x48
    L(5, 5, 36, stride=2, inputs=(0, 1)),  # 2 <- 0,1 (84)  16x16x36
    L(3, 3, 48, inputs=(1, 2)),       # 3 <- 1, pad(2)      32x32x48
    L(3, 5, 64, inputs=(0, 3)),       # 4 <- 0,3 (84)       32x32x64
    L(7, 1, 48, inputs=(2, 4)),       # 5 <- pad(2),4 (100) 32x32x48 -> classifier
))


def hand_written_model(num_classes: int = 10) -> keras.Model:
  """SPEC written out in plain Keras, layer for layer, without the builder."""

  def conv_bn_relu(x, filters, kernel, stride=1):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same",
                            use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    return keras.layers.ReLU()(x)

  image = keras.Input(shape=(32, 32, 3))
  l0 = conv_bn_relu(image, 36, (3, 3))
  l1 = conv_bn_relu(l0, 48, (3, 3))
  l2 = conv_bn_relu(keras.layers.Concatenate()([l0, l1]), 36, (5, 5), stride=2)
  l2_big = keras.layers.ZeroPadding2D(((0, 16), (0, 16)))(l2)
  l3 = conv_bn_relu(keras.layers.Concatenate()([l1, l2_big]), 48, (3, 3))
  l4 = conv_bn_relu(keras.layers.Concatenate()([l0, l3]), 64, (3, 5))
  l5 = conv_bn_relu(keras.layers.Concatenate()([l2_big, l4]), 48, (7, 1))
  x = keras.layers.GlobalAveragePooling2D()(l5)
  return keras.Model(image, keras.layers.Dense(num_classes)(x))


def _compile(model):
  # The paper trains children with momentum SGD (§4.1).
  jit = {"auto": "auto", "on": True, "off": False}[FLAGS.jit_compile]
  model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                jit_compile=jit)
  return model


def _time_steps(model, x, y, steps):
  start = time.perf_counter()
  for _ in range(steps):
    loss = model.train_on_batch(x, y)
  float(np.asarray(loss))  # Make sure the last step finished.
  return (time.perf_counter() - start) / steps


def main(argv):
  del argv
  keras.utils.set_random_seed(FLAGS.seed)
  generated = children.build_cnn(SPEC)
  hand = hand_written_model()
  if generated.count_params() != hand.count_params():
    raise SystemExit(f"parameter counts differ: generated {generated.count_params()} vs "
                     f"hand-written {hand.count_params()}")
  hand.set_weights(generated.get_weights())
  probe = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype("float32")
  gap = float(np.abs(np.asarray(generated(probe)) - np.asarray(hand(probe))).max())
  if gap > 1e-4:
    raise SystemExit(f"generated and hand-written models disagree (max |diff| {gap})")

  rng = np.random.default_rng(FLAGS.seed)
  x = rng.normal(size=(FLAGS.batch_size, 32, 32, 3)).astype("float32")
  y = rng.integers(0, 10, size=(FLAGS.batch_size,))
  models = {"generated": _compile(generated), "hand_written": _compile(hand)}
  for model in models.values():
    _time_steps(model, x, y, FLAGS.warmup)

  times = {name: [] for name in models}
  for r in range(FLAGS.repeats):
    order = list(models) if r % 2 == 0 else list(reversed(models))
    for name in order:
      times[name].append(_time_steps(models[name], x, y, FLAGS.steps))

  median = {name: statistics.median(t) for name, t in times.items()}
  ratio = median["generated"] / median["hand_written"]
  print(f"spec: {SPEC.describe()}")
  print(f"params: {generated.count_params():,} (both); layers: generated "
        f"{len(generated.layers)}, hand-written {len(hand.layers)}; max |logit diff| "
        f"{gap:.2e}")
  print(f"batch {FLAGS.batch_size}, {FLAGS.repeats} repeats x {FLAGS.steps} steps, "
        f"warm-up {FLAGS.warmup} steps excluded, jit_compile={FLAGS.jit_compile}")
  for name, t in times.items():
    print(f"{name:>13}: median {1e3 * median[name]:7.1f} ms/step  "
          f"(min {1e3 * min(t):.1f}, max {1e3 * max(t):.1f})")
  print(f"ratio generated/hand_written: {ratio:.3f} (goal <= 1.05)")
  logging.info("child_overhead ratio %.3f", ratio)


if __name__ == "__main__":
  app.run(main)
