"""A user's build_model(hp) searched by every strategy (nas_tf.hypermodel)."""

import json
import os
import pathlib

import keras
import launch
import numpy as np
import pytest
import tensorflow as tf

keras_tuner = pytest.importorskip("keras_tuner")

from nas_tf import search_space  # pylint: disable=g-import-not-at-top
from nas_tf import specs
from nas_tf.hypermodel import KerasSearch, discover
from nas_tf.hypermodel import space as space_lib
from nas_tf.search.log import ResultsLog


def build(hp):
  model = keras.Sequential([
      keras.Input((8,)),
      keras.layers.Dense(hp.Choice("units", [4, 16]),
                         activation=hp.Choice("act", ["relu", "tanh"])),
      keras.layers.Dense(3)])
  model.compile(optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model


def _data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(240, 8)).astype("float32")
  y = ((x[:, 0] > 0).astype("int32") + (x[:, 1] > 1)).astype("int32")
  return x[:160], y[:160], (x[160:], y[160:])


def test_ranges_become_value_lists_and_specs_round_trip():
  hp = keras_tuner.HyperParameters()

  def values(call):
    call(hp)  # registers one hyperparameter; what is searched is its list of values
    return space_lib.values_of(hp.space[-1])

  assert values(lambda h: h.Int("n", 2, 10, step=4)) == (2, 6, 10)
  assert values(lambda h: h.Int("w", 8, 64, step=2, sampling="log")) == (8, 16, 32, 64)
  assert values(lambda h: h.Float("p", 0.0, 0.5, step=0.25)) == (0.0, 0.25, 0.5)
  lr = values(lambda h: h.Float("lr", 1e-4, 1e-1, sampling="log"))
  assert len(lr) == space_lib.FLOAT_VALUES and lr[0] == 1e-4 and lr[-1] == 0.1
  assert lr[1] / lr[0] == pytest.approx(lr[-1] / lr[-2], rel=1e-4)  # evenly on a log scale
  assert values(lambda h: h.Boolean("b")) == (False, True)
  assert values(lambda h: h.Fixed("f", 3)) == (3,)
  space, _ = discover(build)
  assert space.names == ["units", "act", "lr"]
  assert search_space.space_from_dict(json.loads(json.dumps(space.to_dict()))) == space
  spec = space.decode((1, 1, 9))
  assert spec.describe() == "units=16 act=tanh lr=0.1"
  assert specs.from_json(spec.to_json()) == spec and space.encode(spec) == (1, 1, 9)


def _nothing(hp):
  del hp
  return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def _branchy(hp):
  for i in range(hp.Int("stages", 1, 3)):
    hp.Choice(f"width_{i}", [8, 16])
    if hp.Boolean(f"res_{i}"):
      hp.Float(f"drop_{i}", 0.0, 0.5, step=0.25)
  hp.Boolean("deep")
  hp.Int("layers", 2, 4, parent_name="deep", parent_values=[True])
  return _nothing(hp)


def test_repeated_decisions_share_a_token_type_as_in_the_papers_spaces():
  space = search_space.HyperSpace((("width_0", (8, 16)), ("units", (8, 16)),
                                   ("width_1", (8, 16)), ("width_12", (8, 32)),
                                   ("edge_0_1", ("a", "b")), ("edge_2_3", ("a", "b"))))
  assert [slot.key for slot in space.schema()] == ["hp0", "hp1", "hp0", "hp3", "hp4",
                                                    "hp4"]


def test_conditions_are_discovered_from_branches_loops_and_keras_tuner():
  space, _ = discover(_branchy)
  conditions = {n: dict(c) for n, _, c in space.hyperparameters}
  assert space.names == ["stages", "width_0", "res_0", "drop_0", "width_1", "res_1",
                         "drop_1", "width_2", "res_2", "drop_2", "deep", "layers"]
  assert conditions["width_0"] == {} and conditions["deep"] == {}
  assert conditions["width_1"] == {"stages": (2, 3)}
  assert conditions["width_2"] == {"stages": (3,)}
  assert conditions["drop_2"] == {"res_2": (True,)}  # (res_2 itself needs stages = 3)
  assert conditions["layers"] == {"deep": (True,)}  # KerasTuner's own condition
  assert search_space.space_from_dict(json.loads(json.dumps(space.to_dict()))) == space
  # One stage, no residual, not deep: only the active decisions make the spec.
  spec = space.decode((0, 1, 0, 2, 1, 1, 2, 1, 1, 2, 0, 2))
  assert spec.describe() == "stages=1 width_0=16 res_0=False deep=False"
  assert space.encode(spec) == (0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
  assert specs.from_json(spec.to_json()) == spec
  with pytest.raises(specs.SpecError, match="'width_1' is missing"):
    space.encode(specs.HyperParameterSpec((("stages", 2), ("width_0", 8), ("res_0", False),
                                           ("deep", False))))


def test_the_size_of_a_conditional_space_is_counted_exactly_and_summarised():
  space, _ = discover(_branchy)
  # By hand: a stage is a width (2) times no residual (1) or a residual with one of 3
  # dropouts: 8; stages 1-3 give 8 + 64 + 512; deep: False or True with 3 layer counts.
  assert space.num_configurations() == (8 + 8**2 + 8**3) * (1 + 3) == 2336
  # By brute force, on a smaller space with the same kinds of conditions (nested, and
  # on two parents): every token vector decoded, distinct specs counted.
  small = search_space.HyperSpace((
      ("stages", (1, 2, 3)), ("w0", (8, 16)), ("w1", (8, 16), (("stages", (2, 3)),)),
      ("res1", (False, True), (("stages", (2, 3)),)),
      ("drop1", (0.0, 0.5, 0.9), (("res1", (True,)), ("w1", (16,)))),
      ("deep", (False, True)), ("layers", (2, 3, 4), (("deep", (True,)),))))
  sizes = [len(values) for _, values, _ in small.hyperparameters]
  vectors = np.stack(np.meshgrid(*[np.arange(n) for n in sizes], indexing="ij"),
                     -1).reshape(-1, len(sizes))
  assert len({small.decode(tuple(v)) for v in vectors.tolist()}) == (
      small.num_configurations()) == 2 * (1 + 2 * (3 + 3)) * (1 + 3)
  # By hand: w0 (2) x [stages 1 (1), or stages 2 or 3 (2) x (three (w1, res1) pairs
  # without drop1 + (16, True) with its 3 values)] x [deep False (1) + True (3 layers)].
  text = space_lib.summary(space, title="_branchy")
  assert text.splitlines()[0] == ("Search space of _branchy: 12 hyperparameters "
                                  "(8 conditional), 2,336 configurations")
  assert "  width_2: 8, 16   [when stages in (3); one softmax with width_0]" in text
  assert "  layers: 2, 3, 4   [when deep in (True)]" in text
  import nas_tf  # pylint: disable=g-import-not-at-top
  assert nas_tf.KerasSearch is KerasSearch  # the spelling, loaded lazily
  assert KerasSearch(_branchy).search_space_summary() == text


def test_the_controller_skips_inactive_decisions():
  """A skipped decision adds no log-probability or entropy and does not move the
  controller: the log-probability of a spec is that of its active decisions only."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from nas_tf.controller import Controller  # pylint: disable=g-import-not-at-top
  space, _ = discover(_branchy)
  controller = Controller(space, seed=3)
  tokens, log_probs, entropies = controller.sample_tokens(64, seed=5)
  tokens = tokens.numpy()
  for row in tokens:
    on = space.active(row)
    assert all(t == 0 for t, a in zip(row, on) if not a)  # canonical: skipped -> 0
    assert space.encode(space.decode(row)) == tuple(row)
  again, entropy_again = controller.log_prob_tokens(tokens)
  np.testing.assert_allclose(again.numpy(), log_probs.numpy(), rtol=1e-5)
  np.testing.assert_allclose(entropy_again.numpy(), entropies.numpy(), rtol=1e-5)
  # The same as a space of only the active decisions of a one-stage, shallow spec.
  one = space.decode((0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
  lp, _ = controller.log_prob([one])
  h, states = tf.tile(controller.start_input, [1, 1]), [
      [tf.zeros([1, controller.units])] * 2 for _ in range(controller.num_lstm_layers)]
  expected, x = 0.0, h
  for i, token in ((0, 0), (1, 1), (2, 0), (10, 0)):  # stages, width_0, res_0, deep
    out, states = controller._step(x, states)  # pylint: disable=protected-access
    logits = out @ getattr(controller, f"softmax_w_hp{i}") + getattr(
        controller, f"softmax_b_hp{i}")
    expected += float(tf.nn.log_softmax(logits)[0, token])
    x = tf.gather(getattr(controller, f"embedding_hp{i}"), [token])
  assert float(lp[0]) == pytest.approx(expected, rel=1e-5)


def test_spaces_it_cannot_search_are_refused_with_one_line():
  def broken(hp):
    raise RuntimeError("no GPU here")

  for fn, message in ((_nothing, "asked for no hyperparameter"),
                      (broken, "raised on its first call: RuntimeError: no GPU here")):
    with pytest.raises(ValueError, match=message):
      discover(fn)
  with pytest.raises(ValueError, match="direction of objective 'val_f1' is unknown"):
    KerasSearch(build, objective="val_f1")


def test_an_objective_fit_would_never_log_is_refused_before_anything_is_lost(tmp_path):
  x, y, val = _data()
  out = tmp_path / "run"
  out.mkdir()
  (out / "results.jsonl").write_text("")  # an earlier run that overwrite would delete
  for objective, kwargs, message in (
      ("val_accuracy", {}, "is a validation metric, but search\\(\\) got no validation_data"),
      ("val_auc", {"validation_data": val}, "'val_auc' is never logged: .* logs "
       "\\['accuracy', 'loss'\\]"),
      (keras_tuner.Objective("val_precision", "max"), {"validation_data": val},
       "'val_precision' is never logged")):
    search = KerasSearch(build, objective=objective, max_trials=2, output_dir=str(out),
                         overwrite=True)
    with pytest.raises(ValueError, match=message):
      search.search(x, y, epochs=1, **kwargs)
  assert os.listdir(out) == ["results.jsonl"]  # refused before overwrite deleted anything


class _Looked(keras_tuner.HyperModel):
  """A HyperModel scored by its own fit (as a tabular benchmark is): no training."""

  def build(self, hp):
    self.asked = (hp.Choice("a", [0, 1, 2]), hp.Choice("b", [0, 1]))
    return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

  def fit(self, hp, model, *args, **kwargs):
    del model, args, kwargs
    score = 0.1 * hp.get("a") + 0.5 * hp.get("b")
    return {"val_score": score, "test_score": score / 2}


def test_a_hypermodel_with_its_own_fit_is_scored_by_it(tmp_path):
  search = KerasSearch(_Looked(), objective=keras_tuner.Objective("val_score", "max"),
                       search="random", max_trials=5, seed=0, output_dir=str(tmp_path))
  search.search(epochs=1)
  recs = ResultsLog(str(tmp_path / "results.jsonl")).records
  assert len(recs) == 5 and all(r["status"] == "ok" for r in recs), recs
  for r in recs:
    values = dict(specs.from_dict(r["spec"]).values)
    assert r["reward"] == pytest.approx(0.1 * values["a"] + 0.5 * values["b"])
    assert r["metrics"]["logged"]["test_score"] == pytest.approx(r["reward"] / 2)


@pytest.mark.parametrize("method", ["rl", "random", "evolution", "bo"])
def test_every_trial_is_a_new_configuration_until_the_space_is_exhausted(tmp_path, method):
  """As KerasTuner's oracles: 6 configurations, 8 trials: the first 6 are all of them
  (each trained once), the last 2 repeats that reuse a result. With the paper's repeats
  (distinct off) random search repeats earlier."""
  def run(name, **settings):
    search = KerasSearch(_Looked(), objective=keras_tuner.Objective("val_score", "max"),
                         search=method, max_trials=8, seed=0, report=False,
                         output_dir=str(tmp_path / name), settings=settings)
    search.search(epochs=1)
    return [json.dumps(r["spec"], sort_keys=True) for r in sorted(
        ResultsLog(str(tmp_path / name / "results.jsonl")).records,
        key=lambda r: r["step"])]
  trials = run("distinct")
  assert len(set(trials[:6])) == 6 and set(trials[6:]) <= set(trials[:6])
  if method == "random":
    assert len(set(run("repeats", distinct=False)[:6])) < 6


@pytest.mark.parametrize("method", ["rl", "random", "evolution", "bo"])
def test_every_strategy_searches_a_build_function(tmp_path, method):
  x, y, val = _data()
  search = KerasSearch(build, objective="val_accuracy", search=method, max_trials=3,
                       output_dir=str(tmp_path / method), seed=1)
  search.search(x, y, validation_data=val, epochs=2, batch_size=32)
  recs = ResultsLog(str(tmp_path / method / "results.jsonl")).records
  assert len(recs) == 3 and all(r["status"] == "ok" for r in recs), recs
  for r in recs:
    assert r["val_metric"] == max(r["metrics"]["val_accuracy_history"])
    assert r["reward"] == r["val_metric"]
  best = search.get_best_hyperparameters()[0]
  assert best.values == dict(specs.from_dict(search._ranked()[0]["spec"]).values)
  assert "val_accuracy" in search.results_summary()


def test_resume_extends_and_best_models_are_retrained_to_the_same_value(tmp_path):
  """Slow: 8 small trials (a run, its resume, the same run uninterrupted), one retrained."""
  x, y, val = _data()
  out = str(tmp_path / "run")
  first = KerasSearch(build, search="rl", max_trials=2, output_dir=out, seed=2)
  first.search(x, y, validation_data=val, epochs=2, batch_size=32)
  again = KerasSearch(build, search="rl", max_trials=4, output_dir=out, seed=2)
  again.search(x, y, validation_data=val, epochs=2, batch_size=32)
  straight = KerasSearch(build, search="rl", max_trials=4, output_dir=str(tmp_path / "s"),
                         seed=2)
  straight.search(x, y, validation_data=val, epochs=2, batch_size=32)
  resumed = ResultsLog(os.path.join(out, "results.jsonl")).records
  once = ResultsLog(str(tmp_path / "s" / "results.jsonl")).records
  assert [r["tokens"] for r in resumed] == [r["tokens"] for r in once]
  assert [r["val_metric"] for r in resumed] == pytest.approx([r["val_metric"] for r in once])
  model = again.get_best_models()[0]
  _, accuracy = model.evaluate(*val, verbose=0)
  history_best = again._ranked()[0]
  assert history_best["metrics"]["val_accuracy_history"][-1] == pytest.approx(accuracy,
                                                                              abs=1e-6)


def test_trials_run_in_worker_processes(tmp_path):
  """Slow: a worker process starts TensorFlow; 3 trials there, each as in this process."""
  x, y, val = _data()
  runs = {}
  for isolation in ("process", "inline"):
    search = KerasSearch(build, search="random", max_trials=3, seed=6,
                         output_dir=str(tmp_path / isolation),
                         settings={"runtime.isolation": isolation})
    search.search(x, y, validation_data=val, epochs=1, batch_size=32)
    runs[isolation] = ResultsLog(str(tmp_path / isolation / "results.jsonl")).records
  assert all(r["status"] == "ok" for r in runs["process"]), runs["process"]
  assert [r["val_metric"] for r in runs["process"]] == pytest.approx(
      [r["val_metric"] for r in runs["inline"]], abs=1e-6)


def test_a_trial_that_breaks_is_recorded_and_the_search_goes_on(tmp_path):
  """Slow: 10 trials, some of them failing, with the median pruner on."""
  x, y, val = _data()

  def fragile(hp):
    units = hp.Choice("units", [4, 5, 6, 8, 16])
    if units == 5:
      raise ValueError("5 units are not supported")
    if units == 6:
      return "not a model"
    return build(hp)

  search = KerasSearch(fragile, search="random", max_trials=10, seed=0,
                       output_dir=str(tmp_path / "f"),
                       settings={"pruner.kind": "median", "pruner.warmup_children": 1})
  search.search(x, y, validation_data=val, epochs=3, batch_size=32)
  recs = ResultsLog(str(tmp_path / "f" / "results.jsonl")).records
  errors = {r["metrics"].get("error") for r in recs if r["status"] == "failed"}
  assert "ValueError: 5 units are not supported" in errors
  assert "TypeError: build_model returned a str, not a keras.Model" in errors
  assert any(r["status"] == "ok" for r in recs)


def _stacked(hp):
  model = keras.Sequential([keras.Input((8,))])
  for i in range(hp.Int("stages", 1, 3)):
    model.add(keras.layers.Dense(hp.Choice(f"width_{i}", [4, 8]), activation="relu",
                                 name=f"stage_{i}"))
    if hp.Boolean(f"dropout_{i}"):
      model.add(keras.layers.Dropout(hp.Float(f"rate_{i}", 0.1, 0.3, step=0.1)))
  model.add(keras.layers.Dense(3))
  model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"])
  return model


def test_a_conditional_space_is_searched_and_each_trial_builds_its_own_values(tmp_path):
  """Slow: the discovery of a 10-hyperparameter conditional space, then 5 trials."""
  method = "rl"
  x, y, val = _data()
  search = KerasSearch(_stacked, search=method, max_trials=5, seed=4,
                       output_dir=str(tmp_path / method))
  search.search(x, y, validation_data=val, epochs=1, batch_size=64)
  recs = ResultsLog(str(tmp_path / method / "results.jsonl")).records
  assert len(recs) == 5 and all(r["status"] == "ok" for r in recs), recs
  for r in recs:
    values = dict(specs.from_dict(r["spec"]).values)
    stages = values["stages"]
    assert {f"width_{i}" for i in range(stages)} <= set(values)
    assert not {f"width_{i}" for i in range(stages, 3)} & set(values)
    for i in range(stages):
      assert (f"rate_{i}" in values) == values[f"dropout_{i}"]
  # As nas_search ends: the report, its metric named by the objective; and read later
  # (nas_report, which cannot load the build function), the records say it.
  assert "Pareto front: validation val_accuracy" in (tmp_path / method / "report.html").read_text()
  from nas_tf import report  # pylint: disable=g-import-not-at-top
  later = report.load_run(str(tmp_path / method))
  assert (later["metric"], later["higher_is_better"]) == ("val_accuracy", True)
  best = search.get_best_hyperparameters()[0]
  model = _stacked(best)
  assert len([l for l in model.layers if l.name.startswith("stage_")]) == best.values[
      "stages"]


def test_the_controller_as_a_keras_tuner_oracle_resumes_with_its_weights(tmp_path):
  """Slow: KerasTuner runs 3 trials with ControllerOracle, then reloads it."""
  from nas_tf.hypermodel.oracle import ControllerOracle  # pylint: disable=g-import-not-at-top
  x, y, val = _data()

  def tuner(max_trials, overwrite):
    return keras_tuner.Tuner(
        oracle=ControllerOracle(objective="val_accuracy", max_trials=max_trials,
                                hypermodel=_stacked, seed=1),
        hypermodel=_stacked, directory=str(tmp_path), project_name="p", overwrite=overwrite)

  first = tuner(3, True)
  first.search(x, y, validation_data=val, epochs=1, verbose=0)
  assert len(first.oracle.trials) == 3
  for trial in first.oracle.trials.values():  # every decision its stages need is set
    values = trial.hyperparameters.values
    assert {f"width_{i}" for i in range(values["stages"])} <= set(values)
  weights = [v.numpy() for v in first.oracle._sampler.controller.trainable_variables]  # pylint: disable=protected-access
  again = tuner(4, False)  # KerasTuner's reload: the oracle's state and the controller
  again.oracle._make_sampler()  # pylint: disable=protected-access
  restored = [v.numpy() for v in again.oracle._sampler.controller.trainable_variables]  # pylint: disable=protected-access
  for a, b in zip(weights, restored):
    np.testing.assert_array_equal(a, b)
  assert again.oracle._step == 3  # pylint: disable=protected-access
  again.search(x, y, validation_data=val, epochs=1, verbose=0)
  assert len(again.oracle.trials) == 4


def test_the_oracle_proposes_each_configuration_once_then_ends_the_search(tmp_path):
  """Slow: 6 KerasTuner trials and a reload. KerasTuner trains a repeated proposal again,
  so the oracles (one populate_space for both) never make one: 6 configurations,
  max_trials 8: all 6 once, then KerasTuner's "Oracle triggered exit"; the trials tried
  survive KerasTuner's reload."""
  from nas_tf.hypermodel.oracle import ControllerOracle  # pylint: disable=g-import-not-at-top
  def tuner(max_trials, overwrite):
    return keras_tuner.Tuner(
        oracle=ControllerOracle(objective=keras_tuner.Objective("val_score", "max"),
                                max_trials=max_trials, hypermodel=_Looked(), seed=0),
        hypermodel=_Looked(), directory=str(tmp_path), project_name="p", overwrite=overwrite)
  first = tuner(3, True)
  first.search(verbose=0)
  again = tuner(8, False)
  again.search(verbose=0)
  values = [tuple(sorted(t.hyperparameters.values.items()))
            for t in again.oracle.trials.values()]
  assert len(values) == 6 and len(set(values)) == 6


def test_the_best_model_is_retrained_longer_and_exported_for_tensorflow_alone(tmp_path):
  """Slow: 2 trials, a longer retraining, an export and a reload in a fresh process."""
  x, y, val = _data()
  search = KerasSearch(build, search="random", max_trials=2, output_dir=str(tmp_path / "r"))
  search.search(x, y, validation_data=val, epochs=1, batch_size=32)
  longer = search.retrain_best(epochs=3)
  paths = search.export_best(str(tmp_path / "export"), model=longer)
  expected = longer.predict(val[0][:5], verbose=0)
  np.save(tmp_path / "x.npy", val[0][:5])
  code = ("import sys, numpy as np\nsys.modules['nas_tf'] = None\nimport tensorflow as tf\n"
          f"m = tf.saved_model.load({paths['saved_model']!r})\n"
          f"print(np.asarray(m.serve(np.load({str(tmp_path / 'x.npy')!r}))).tolist())")
  out = launch.run(["-c", code], capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  np.testing.assert_allclose(np.array(json.loads(out.stdout.strip().splitlines()[-1])),
                             expected, rtol=1e-4, atol=1e-5)
  assert isinstance(keras.saving.load_model(paths["keras"]), keras.Model)


def test_the_example_runs_the_controller_inside_keras_tuner(tmp_path):
  """Slow: examples/keras_model_search.py with KerasTuner's own Tuner, 2 trials."""
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  root = pathlib.Path(__file__).resolve().parent.parent
  example = root / "examples" / "keras_model_search.py"
  done = launch.run([example, "--front_end=keras_tuner",
                         "--search=rl", "--max_trials=2", "--epochs=1",
                         f"--output_dir={tmp_path}"], capture_output=True, text=True,
                        timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "Score:" in done.stdout and (tmp_path / "nas_tf-rl" / "oracle.json").exists()


def test_tf_data_datasets_and_the_users_callbacks_go_to_every_trials_fit(tmp_path):
  x, y, val = _data()
  train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
  valid = tf.data.Dataset.from_tensor_slices(val).batch(32)
  seen = []

  class Epochs(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
      seen.append((epoch, sorted(logs)))

  search = KerasSearch(build, search="random", max_trials=2, seed=0,
                       output_dir=str(tmp_path / "d"), report=False)
  search.search(train, validation_data=valid, epochs=2, callbacks=[Epochs()])
  recs = ResultsLog(str(tmp_path / "d" / "results.jsonl")).records
  assert [r["status"] for r in recs] == ["ok", "ok"], recs
  assert [e for e, _ in seen] == [0, 1, 0, 1]  # both trials, each epoch
  assert "val_accuracy" in seen[0][1]
  for r in recs:
    assert r["val_metric"] == max(r["metrics"]["val_accuracy_history"])
