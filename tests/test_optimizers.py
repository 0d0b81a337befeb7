"""One optimiser construction for every path: Keras' updates and their tensor-maths twin."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from nas_tf.training import optimizers


@pytest.mark.parametrize("name", optimizers.OPTIMIZERS)
@pytest.mark.parametrize("clipnorm", [0.0, 0.5])
def test_functional_updates_match_keras_step_for_step(name, clipnorm):
  """A cluster closure's updates (weights as tensors) equal model.fit's Keras optimiser."""
  rng = np.random.default_rng(0)
  shapes = [(3, 4), (4,)]
  start = [rng.normal(size=s).astype(np.float32) for s in shapes]
  grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(4)]
  lrs = [0.1, 0.1, 0.05, 0.02]  # a schedule: the rate of each step is passed in
  variables = [keras.Variable(w) for w in start]
  keras_opt = optimizers.build_optimizer(name, lrs[0], momentum=0.9, clipnorm=clipnorm)
  keras_opt.build(variables)
  for g, lr in zip(grads, lrs):
    keras_opt.learning_rate.assign(lr)
    keras_opt.apply(g, variables)
  init, apply = optimizers.functional_optimizer(name, momentum=0.9, clipnorm=clipnorm)
  weights = [tf.constant(w) for w in start]
  state = init(weights)
  for step, (g, lr) in enumerate(zip(grads, lrs)):
    weights, state = apply(state, [tf.constant(x) for x in g], weights,
                           tf.constant(step, tf.int64), tf.constant(lr))
  for ours, theirs in zip(weights, variables):
    np.testing.assert_allclose(ours.numpy(), np.asarray(theirs), rtol=1e-5, atol=1e-6)
  # Not a vacuous comparison: the weights moved.
  assert not np.allclose(weights[0].numpy(), start[0])


def test_schedules_in_optimiser_steps():
  class Config:  # the fields a child or final-training config has
    learning_rate, epochs, lr_decay_every, lr_decay_factor = 1.0, 5, 2, 0.5
    lr_schedule = "step"

  step = optimizers.learning_rate_schedule(Config, steps_per_epoch=10)
  assert [float(step(s)) for s in (0, 19, 20, 39, 40, 49)] == [1, 1, .5, .5, .25, .25]
  Config.lr_schedule = "cosine"
  cosine = optimizers.learning_rate_schedule(Config, steps_per_epoch=10)
  assert float(cosine(0)) == 1.0 and float(cosine(25)) == pytest.approx(0.5)
  Config.lr_schedule = "constant"
  assert optimizers.learning_rate_schedule(Config, steps_per_epoch=10) == 1.0
