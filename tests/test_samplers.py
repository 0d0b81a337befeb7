"""Search strategies behind the Sampler protocol: evolution, BO, and their resume."""

import numpy as np
import pytest

from nas_tf import config as config_lib
from nas_tf import search_space
from nas_tf import specs as specs_lib
from nas_tf.search import samplers
from nas_tf.search.samplers import evolution

SPACE = search_space.NB201SearchSpace()


def _config(search, **kw):
  return config_lib.SearchConfig(task="nasbench201", data_dir="-", output_dir="-",
                                 search=search, **kw)


def _score(tokens):
  """A toy objective: more 'nor_conv_3x3' (token 3) is better."""
  return float(sum(t == 3 for t in tokens)) / 6


def test_mutation_changes_exactly_one_decision_to_another_value():
  rng = np.random.default_rng(0)
  sizes = [5] * 6 + [1, 2]
  parent = (0, 1, 2, 3, 4, 0, 0, 1)
  seen = set()
  for _ in range(500):
    child = evolution.mutate(parent, sizes, rng)
    diff = [i for i, (a, b) in enumerate(zip(parent, child)) if a != b]
    assert len(diff) == 1 and diff[0] != 6  # a one-choice slot never mutates
    i = diff[0]
    assert 0 <= child[i] < sizes[i]
    seen.add((i, child[i]))
  assert len(seen) == 6 * 4 + 1  # every other value of every mutable position occurs


def test_evolution_fills_then_tournaments_and_ages_out_the_oldest():
  cfg = _config("evolution", evolution=config_lib.EvolutionConfig(
      population_size=4, sample_size=4, with_replacement=False))
  s = samplers.make_sampler(SPACE, cfg)
  for step in range(4):
    tokens, _ = s.sample(step, 1, None)
    s.update(step, tokens, [float(step)], None)
  assert [r for _, r in s.population] == [0.0, 1.0, 2.0, 3.0]
  best = s.population[-1][0]
  tokens, _ = s.sample(4, 1, None)  # S = P: the parent is the best member
  assert sum(a != b for a, b in zip(tokens[0], best)) == 1
  s.update(4, tokens, [-1.0], None)
  assert len(s.population) == 4 and [r for _, r in s.population][0] == 1.0  # oldest left


def test_evolution_tournaments_draw_with_replacement_as_real_et_al():
  """Algorithm 1 draws each of the S members from the whole population: with P = S = 2
  both draws are the worse member a quarter of the time, and it becomes the parent."""
  def parent_is_worse(with_replacement):
    cfg = _config("evolution", seed=1, evolution=config_lib.EvolutionConfig(
        population_size=2, sample_size=2, with_replacement=with_replacement))
    s = samplers.make_sampler(SPACE, cfg)
    worse, better = (0,) * len(SPACE.schema()), tuple(n - 1 for n in evolution.slot_sizes(
        SPACE))
    s.restore({"population": [[list(worse), 0.0], [list(better), 1.0]]})
    hits = 0
    for step in range(400):
      tokens, _ = s.sample(step, 1, None)
      hits += sum(a != b for a, b in zip(tokens[0], worse)) == 1
    return hits / 400

  assert 0.17 < parent_is_worse(True) < 0.33
  assert parent_is_worse(False) == 0.0


def test_a_run_saved_before_with_replacement_existed_resumes_as_it_ran():
  saved = _config("evolution").to_dict()
  del saved["evolution"]["with_replacement"]
  assert not config_lib.SearchConfig.from_dict(saved).evolution.with_replacement


@pytest.mark.parametrize("search,m,steps", [("evolution", 2, 12), ("bo", 2, 12),
                                            ("random", 2, 12), ("bo", 4, 20)])
def test_resumed_sampler_proposes_exactly_what_the_uninterrupted_one_does(search, m, steps):
  """Sampling is a pure function of (state after the last update, seed, step).

  BO at m = 4 over 20 steps: past 25 trials TPE weighs them by their order, and steps
  with a replaced (repeated) proposal must keep the order a resumed run rebuilds.
  """
  cfg = _config(search, seed=3,
                evolution=config_lib.EvolutionConfig(population_size=5, sample_size=2),
                bo=config_lib.BOConfig(startup_trials=3))
  a = samplers.make_sampler(SPACE, cfg)
  proposals = []
  saved_at = steps * 2 // 3
  for step in range(steps):
    tokens, specs = a.sample(step, m, None)
    assert [SPACE.encode(s) for s in specs] == [tuple(t) for t in tokens]
    proposals.append(tokens)
    a.update(step, tokens, [_score(t) for t in tokens], None)
    if step == saved_at - 1:
      saved = a.state()
  b = samplers.make_sampler(SPACE, cfg, {"sampler": saved})
  for step in range(saved_at, steps):
    tokens, _ = b.sample(step, m, None)
    assert [tuple(t) for t in tokens] == [tuple(t) for t in proposals[step]]
    b.update(step, tokens, [_score(t) for t in tokens], None)


def test_bo_and_evolution_beat_random_on_a_toy_objective():
  """Not a benchmark (benchmarks/strategies.py is): both must find structure random misses."""
  means = {}
  for search in ("random", "evolution", "bo"):
    finals = []
    for seed in range(3):
      cfg = _config(search, seed=seed)
      s = samplers.make_sampler(SPACE, cfg)
      best = 0.0
      for step in range(60):
        tokens, _ = s.sample(step, 1, None)
        r = _score(tokens[0])
        best = max(best, r)
        s.update(step, tokens, [r], None)
      finals.append(best)
    means[search] = np.mean(finals)
  # Random finds 6/6 in 60 draws with probability ~0.4%; both strategies should get it.
  assert means["evolution"] > means["random"] and means["bo"] > means["random"], means


def test_unknown_search_and_bad_evolution_settings_fail_with_the_value():
  with pytest.raises(ValueError, match="'annealing'"):
    samplers.sampler_class("annealing")
  with pytest.raises(ValueError, match="sample_size.*7"):
    config_lib.EvolutionConfig(population_size=5, sample_size=7)


def test_rl_update_is_traced_once_per_step_shape_in_the_background():
  """The update graph of a (depth, rows) shape is built in the background as soon as the
  loop announces such an update; a budget's short last step (m sampled, fewer scored)
  gets its own, warmed the same way; no retrace, and the same gradient as a fresh graph.

  Slow: builds and first-runs the controller's update graph three times (TensorFlow
  optimises an unrolled graph on its first run), several seconds on a quiet machine.
  """
  cfg = _config("rl", controller=config_lib.ControllerConfig(learning_rate=0.01,
                                                            entropy_weight=0.1))
  s = samplers.make_sampler(SPACE, cfg)
  before = [v.numpy().copy() for v in s.controller.trainable_variables]
  tokens, _ = s.sample(0, 4, None)
  assert not s._warmups  # sampling alone prepares nothing
  s.expect_update(None, 4)
  s._warmups[None, 4].join()  # the warm-up's dry run (weight 0) changed nothing
  assert int(s.accumulated.numpy()) == 0
  assert all(not np.any(a.numpy()) for a in s.accumulators)
  assert all(np.array_equal(b, v.numpy())
             for b, v in zip(before, s.controller.trainable_variables))
  s.update(0, tokens, [0.1, 0.2, 0.3, 0.4], None)
  s.sample(1, 4, None)
  s.expect_update(None, 4)
  assert not s._warmups  # warmed once per shape: no second dry run in the background
  tokens, _ = s.sample(2, 4, None)  # a short last step: 4 sampled, 2 scored
  tokens = tokens[:2]
  s.expect_update(None, 2)
  assert list(s._warmups) == [(None, 2)]
  s.update(2, tokens, [0.5, 0.1], None)
  assert s._accumulate_fn(None, 4).experimental_get_tracing_count() == 1
  assert s._accumulate_fn(None, 2).experimental_get_tracing_count() == 1
  assert s._apply_graph().experimental_get_tracing_count() == 1
  # The short step's gradient equals one computed eagerly from its two rows (kept in the
  # accumulators: with grad_accumulation=2 the first update does not apply them).
  cfg2 = _config("rl", controller=config_lib.ControllerConfig(grad_accumulation=2))
  fresh = samplers.make_sampler(SPACE, cfg2)
  fresh.update(0, tokens[:2], [0.5, 0.1], None)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.GradientTape() as tape:
    log_probs, _ = fresh.controller.log_prob_tokens(np.asarray(tokens[:2], np.int32))
    adv = np.asarray([0.5, 0.1]) - np.mean([0.5, 0.1])  # first step: the batch's mean
    loss = -tf.reduce_mean(tf.constant(adv, tf.float32) * log_probs)
  grads = [tf.convert_to_tensor(g) for g in  # embeddings' gradients are IndexedSlices
           tape.gradient(loss, fresh.controller.trainable_variables)]
  assert any(np.abs(g.numpy()).max() > 1e-4 for g in grads)
  for acc, g in zip(fresh.accumulators, grads):
    np.testing.assert_allclose(acc.numpy(), g.numpy(), rtol=1e-4, atol=1e-7)


def test_bo_proposes_each_architecture_once_unless_told_to_keep_repeats():
  """TPE re-proposes its best point; with bo.distinct the child is an unseen neighbour."""
  def run(distinct):
    cfg = _config("bo", bo=config_lib.BOConfig(startup_trials=3, distinct=distinct))
    s = samplers.make_sampler(SPACE, cfg)
    keys = []
    for step in range(30):
      tokens, specs = s.sample(step, 2, None)
      keys += [spec.to_json() for spec in specs]
      s.update(step, tokens, [_score(t) for t in tokens], None)
    return keys
  distinct, kept = run(True), run(False)
  assert len(set(distinct)) == len(distinct) == 60
  assert len(set(kept)) < len(kept)  # the repeats this guards against
  # A replaced proposal is a near neighbour of what TPE asked for, so the search still
  # climbs: the toy optimum (six 3s) is found.
  assert max(_score(SPACE.encode(specs_lib.from_json(k))) for k in distinct) == 1.0


def test_bo_steps_in_flight_together_propose_different_architectures():
  """With several replicas, step s + 1 is sampled before step s is told."""
  s = samplers.make_sampler(SPACE, _config("bo", bo=config_lib.BOConfig(startup_trials=2)))
  for step in range(0, 24, 2):
    first, _ = s.sample(step, 3, None)
    second, _ = s.sample(step + 1, 3, None)
    keys = [SPACE.decode(t).to_json() for t in first + second]
    assert len(set(keys)) == 6
    s.update(step, first, [_score(t) for t in first], None)
    s.update(step + 1, second, [_score(t) for t in second], None)
  assert not s._proposed and not s._asked  # pylint: disable=protected-access
