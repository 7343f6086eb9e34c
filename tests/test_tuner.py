"""kgraph.tuner (issue 13, part 3): the KerasTuner API on Optuna. HyperParameters (ranges,
log sampling, conditional scopes), RandomSearch/BayesianOptimization/Hyperband, best models
and hyperparameters, resumable projects and the pruning callback."""
import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from kgraph import keras, tuner  # noqa: E402
from kgraph.tuner.tuners import hyperband_trials  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _trials(n, seed=0):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [study.ask() for _ in range(n)]


def test_defaults_outside_a_trial():
    hp = tuner.HyperParameters()
    assert hp.Int("units", 8, 64, step=8) == 8
    assert hp.Float("lr", 1e-4, 1e-2, sampling="log", default=1e-3) == 1e-3
    assert hp.Choice("act", ["tanh", "relu"]) == "tanh"
    assert hp.Boolean("bn") is False and hp.Fixed("depth", 3) == 3
    assert hp.values == {"units": 8, "lr": 1e-3, "act": "tanh", "bn": False, "depth": 3}
    assert hp["units"] == 8 and "act" in hp


@pytest.mark.parametrize("declare, text", [
    (lambda hp: hp.Int("n", 5, 1), "min_value=5, max_value=1"),
    (lambda hp: hp.Int("n", 1.5, 4), "min_value=1.5"),
    (lambda hp: hp.Float("lr", 0.0, 1.0, sampling="log"), "min_value=0.0"),
    (lambda hp: hp.Float("lr", 0.1, 1.0, sampling="reverse_log"), "sampling='reverse_log'"),
    (lambda hp: hp.Choice("c", []), "values=[]"),
    (lambda hp: hp.Choice("c", ["a"], default="b"), "default='b'"),
    (lambda hp: hp.get("missing"), "'missing'"),
])
def test_bad_declarations_quote_the_value(declare, text):
    with pytest.raises((ValueError, KeyError)) as info:
        declare(tuner.HyperParameters())
    assert text in str(info.value)


def test_values_come_from_the_optuna_trial_within_their_ranges():
    seen = set()
    for trial in _trials(40):
        hp = tuner.HyperParameters(trial)
        units = hp.Int("units", 8, 64, step=8)
        assert units % 8 == 0 and 8 <= units <= 64 and hp.Int("units", 8, 64, step=8) == units
        assert 0.1 <= hp.Float("rate", 0.1, 0.5, step=0.1) <= 0.5
        seen.add(hp.Choice("act", ["relu", "tanh", "gelu"]))
        assert isinstance(hp.Boolean("bn"), bool)
        assert trial.params["units"] == units
    assert seen == {"relu", "tanh", "gelu"}


def test_log_sampling_is_uniform_in_the_exponent():
    values = [tuner.HyperParameters(t).Float("lr", 1e-5, 1e-1, sampling="log")
              for t in _trials(400, seed=1)]
    exponents = np.log10(values)
    assert exponents.min() >= -5 and exponents.max() <= -1
    assert abs(np.median(exponents) + 3) < 0.3  # linear sampling would put it near -1.3
    assert abs(np.mean(exponents < -4) - 0.25) < 0.07
    ints = [tuner.HyperParameters(t).Int("n", 1, 1000, sampling="log") for t in _trials(400)]
    assert abs(np.median(np.log10(ints)) - 1.5) < 0.3


def test_conditional_scopes_sample_only_the_active_branch():
    branches = {}
    for trial in _trials(30, seed=2):
        hp = tuner.HyperParameters(trial)
        kind = hp.Choice("kind", ["mlp", "cnn"])
        with hp.conditional_scope("kind", ["mlp"]):
            units = hp.Int("units", 16, 32, default=16)
        with hp.conditional_scope("kind", "cnn"):
            filters = hp.Int("filters", 4, 8, default=4)
        branches.setdefault(kind, []).append((units, filters))
        assert set(trial.params) == {"kind", "units" if kind == "mlp" else "filters"}
        assert set(hp.values) == set(trial.params)
    assert all(f == 4 for _, f in branches["mlp"]) and all(u == 16 for u, _ in branches["cnn"])
    with pytest.raises(ValueError, match="'undeclared'"):
        with tuner.HyperParameters().conditional_scope("undeclared", [1]):
            pass


def test_objective_directions():
    assert tuner.Objective.get("val_accuracy").direction == "max"
    assert tuner.Objective.get("val_loss").direction == "min"
    assert tuner.Objective.get(tuner.Objective("score", "max")).name == "score"
    with pytest.raises(ValueError, match="direction='up'"):
        tuner.Objective("score", "up")


# -- searches with real training (tiny models) ---------------------------------------------
RNG = np.random.default_rng(0)
X = RNG.random((96, 4)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]])).astype("float32")
X_VAL, Y_VAL = X[:32], Y[:32]


def build_regressor(hp):
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.Dense(hp.Int("units", 2, 16, step=2),
                                                 activation=hp.Choice("act", ["relu", "tanh"])),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")), "mse")
    return model


def test_random_search_finds_reloads_and_summarises_the_best(tmp_path, capsys):
    search = tuner.RandomSearch(build_regressor, objective="val_loss", max_trials=3,
                                directory=str(tmp_path), project_name="mlp", seed=0)
    search.search(X, Y, epochs=3, batch_size=32, validation_data=(X_VAL, Y_VAL), verbose=0)
    trials = search.study.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    best = min(trials, key=lambda t: t.value)
    assert best.value == min(best.intermediate_values.values())  # best epoch's val_loss
    hp = search.get_best_hyperparameters()[0]
    assert hp.values == best.params
    model = search.get_best_models(1)[0]
    assert model.layers[0].units == best.params["units"]
    last_epoch = best.intermediate_values[max(best.intermediate_values)]
    np.testing.assert_allclose(model.evaluate(X_VAL, Y_VAL, verbose=0), last_epoch, rtol=1e-4)
    search.results_summary(num_trials=2)
    out = capsys.readouterr().out
    assert f"Trial {best.number:04d} summary" in out and f"Score: {best.value}" in out
    assert out.count("Score:") == 2


def test_a_search_resumes_from_its_directory(tmp_path):
    builds = []

    def counted(hp):
        builds.append(hp.values)
        return build_regressor(hp)

    kwargs = dict(directory=str(tmp_path), project_name="resume", seed=1)
    fit = dict(epochs=1, validation_split=0.25, verbose=0)
    tuner.RandomSearch(counted, max_trials=2, **kwargs).search(X, Y, **fit)
    resumed = tuner.RandomSearch(counted, max_trials=3, **kwargs)
    assert len(resumed.study.trials) == 2
    resumed.search(X, Y, **fit)
    assert len(builds) == 3 and len(resumed.study.trials) == 3
    resumed.search(X, Y, **fit)  # nothing left to do
    assert len(builds) == 3
    fresh = tuner.RandomSearch(counted, max_trials=1, overwrite=True, **kwargs)
    assert fresh.study.trials == []


def test_hyperband_prunes_with_real_fits(tmp_path):
    assert hyperband_trials(3, 3, 1) == 5 and hyperband_trials(9, 3, 1) == 17
    search = tuner.Hyperband(build_regressor, max_epochs=3, factor=3,
                             directory=str(tmp_path), project_name="hb", seed=0)
    assert search.max_trials == 5
    search.search(X, Y, validation_data=(X_VAL, Y_VAL), batch_size=32, verbose=0)
    states = [t.state.name for t in search.study.trials]
    assert len(states) == 5 and set(states) <= {"COMPLETE", "PRUNED"}
    for trial in search.study.trials:
        assert len(trial.intermediate_values) == (3 if trial.state.name == "COMPLETE" else
                                                  max(trial.intermediate_values) + 1)


# -- the search engines on an objective with a known optimum (no training) ----------------
class Quadratic(tuner.HyperModel):
    """A hypermodel whose "training" reports (x - 3)^2 + 1/(epoch+1): the sampler and pruner
    logic without the cost of fitting."""

    def build(self, hp):
        self.x = hp.Float("x", -10.0, 10.0)
        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    def fit(self, hp, model, epochs=1, callbacks=()):
        history = keras.callbacks.History()
        history.history = {"score": []}
        for callback in callbacks:
            callback.set_model(model)
        model.stop_training = False
        for epoch in range(epochs):
            value = (self.x - 3.0) ** 2 + 1.0 / (epoch + 1)
            history.history["score"].append(value)
            for callback in callbacks:
                callback.on_epoch_end(epoch, {"score": value})
            if model.stop_training:
                break
        return history


def test_bayesian_optimization_beats_random_search(tmp_path):
    results = {}
    for cls in (tuner.RandomSearch, tuner.BayesianOptimization):
        errors = []
        for seed in range(3):
            search = cls(Quadratic(), objective=tuner.Objective("score", "min"), max_trials=25,
                         directory=str(tmp_path), project_name=f"{cls.__name__}{seed}",
                         seed=seed)
            search.search(epochs=1)
            errors.append(abs(search.get_best_hyperparameters()[0]["x"] - 3.0))
        results[cls.__name__] = np.mean(errors)
    assert results["BayesianOptimization"] < 0.35
    assert results["BayesianOptimization"] < results["RandomSearch"]


def test_pruning_callback_stops_unpromising_trials(tmp_path):
    search = tuner.Hyperband(Quadratic(), objective=tuner.Objective("score", "min"),
                             max_epochs=9, factor=3, directory=str(tmp_path),
                             project_name="quadratic", seed=0)
    search.search()
    pruned = [t for t in search.study.trials if t.state.name == "PRUNED"]
    complete = [t for t in search.study.trials if t.state.name == "COMPLETE"]
    assert len(search.study.trials) == 17 and pruned and complete
    assert all(len(t.intermediate_values) < 9 for t in pruned)
    best_pruned = min(abs(t.params["x"] - 3) for t in pruned)
    assert min(abs(t.params["x"] - 3) for t in complete) <= best_pruned


def test_missing_objective_names_the_logged_metrics(tmp_path):
    search = tuner.RandomSearch(build_regressor, objective="val_accuracy", max_trials=1,
                                directory=str(tmp_path), project_name="bad")
    with pytest.raises(KeyError, match="'val_accuracy'.*'loss'"):
        search.search(X, Y, epochs=1, verbose=0)


def test_run_trial_override_float_and_dict_objectives_and_models_built_by_data(tmp_path):
    # keras.io KerasTuner getting-started guide: a tuner without hypermodel or objective whose
    # run_trial returns a number (minimised), trial.hyperparameters / trial.trial_id,
    # HyperModel.fit returning a dict, and get_best_models of a Sequential without Input
    class Quadratic(tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            seen.append(trial.trial_id)
            x = trial.hyperparameters.Float("x", -1.0, 1.0)
            return (x - 0.5) ** 2

    seen = []
    search = Quadratic(max_trials=4, directory=str(tmp_path), project_name="q", seed=0)
    search.search()
    best = search.get_best_hyperparameters()[0].get("x")
    assert seen == ["00", "01", "02", "03"]
    assert search.study.best_value == pytest.approx((best - 0.5) ** 2)
    with pytest.raises(ValueError, match="no hypermodel"):
        tuner.RandomSearch(max_trials=1, directory=str(tmp_path), project_name="n").search()

    class Scored(tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential([keras.layers.Dense(hp.Int("units", 2, 4)),
                                      keras.layers.Dense(1)])
            model.compile("sgd", "mse")
            return model

        def fit(self, hp, model, x, y, **kwargs):
            model.fit(x, y, verbose=0, **kwargs)
            return {"neg_mse": -float(model.evaluate(x, y, verbose=0)), "other": 1.0}

    x, y = np.random.rand(16, 3).astype("f4"), np.random.rand(16, 1).astype("f4")
    search = tuner.RandomSearch(Scored(), objective=tuner.Objective("neg_mse", "max"),
                                max_trials=2, directory=str(tmp_path), project_name="d", seed=0)
    search.search(x, y, epochs=1)
    assert search.study.best_value < 0
    model = search.get_best_models(1)[0]  # built from the recorded input shape, then loaded
    assert model.built and model.predict(x, verbose=0).shape == (16, 1)
    np.testing.assert_allclose(-model.evaluate(x, y, verbose=0), search.study.best_value,
                               rtol=1e-5)


def test_tuner_hyperparameters_override_the_models_and_compile_overrides(tmp_path):
    # keras.io "Tailor the search space": hyperparameters= with tune_new_entries=False tunes
    # only the listed entries (replacing the model's declaration of the same name), the
    # others keep their defaults; optimizer=/loss= replace the built model's compile arguments
    def build(hp):
        model = keras.Sequential([keras.Input((3,)),
                                  keras.layers.Dense(hp.Int("units", 2, 8, default=4)),
                                  keras.layers.Dense(1)])
        model.compile(keras.optimizers.SGD(hp.Choice("lr", [0.1, 0.01])), "mae")
        return model

    space = tuner.HyperParameters()
    space.Float("lr", 1e-4, 1e-3, sampling="log")
    x, y = np.random.rand(16, 3).astype("f4"), np.random.rand(16, 1).astype("f4")
    search = tuner.RandomSearch(build, hyperparameters=space, tune_new_entries=False,
                                loss="mse", max_trials=2, directory=str(tmp_path),
                                project_name="t", seed=0)
    search.search(x, y, epochs=1, validation_data=(x, y), verbose=0)
    for trial in search.study.trials:
        assert set(trial.distributions) == {"lr"} and trial.user_attrs["values"]["units"] == 4
        assert 1e-4 <= trial.user_attrs["values"]["lr"] <= 1e-3
    assert search.get_best_models()[0].loss == "mse"


def test_grid_search_retries_failures_and_the_journal_storage(tmp_path):
    # keras.io "Handling failed trials": GridSearch over every combination, retries of a
    # failing build, FailedTrialError without retries, too many failures in a row end the
    # search; projects live in a journal file (an earlier kgraph's study.db is still read)
    attempts = {}

    def build(hp):
        units, act = hp.Int("units", 2, 6, step=2), hp.Choice("act", ["relu", "tanh"])
        attempts[(units, act)] = attempts.get((units, act), 0) + 1
        if units == 4 and attempts[(units, act)] == 1:
            raise RuntimeError("flaky")  # retried, then succeeds
        if units == 6:
            raise tuner.errors.FailedTrialError("too large")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, act),
                                  keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        return model

    x, y = np.random.rand(16, 3).astype("f4"), np.random.rand(16, 1).astype("f4")
    search = tuner.GridSearch(build, max_retries_per_trial=1, max_consecutive_failed_trials=3,
                              directory=str(tmp_path), project_name="g")
    search.search(x, y, epochs=1, validation_data=(x, y), verbose=0)
    states = sorted(t.state.name for t in search.study.trials)
    assert states == ["COMPLETE"] * 4 + ["FAIL"] * 2 and len(search.study.trials) == 6
    assert attempts[(4, "relu")] == 2 and attempts[(6, "relu")] == 1
    assert (tmp_path / "g" / "study.journal").exists()

    def always_fails(hp):
        hp.Int("units", 2, 6, step=2)
        raise RuntimeError("broken")

    failing = tuner.GridSearch(always_fails, max_consecutive_failed_trials=2,
                               directory=str(tmp_path), project_name="f")
    with pytest.raises(RuntimeError, match="2 consecutive trials failed.*broken"):
        failing.search(x, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"stepped Float.*\['lr'\]"):
        tuner.GridSearch(lambda hp: hp.Float("lr", 0.1, 1.0), directory=str(tmp_path),
                         project_name="u").search(x, y)

    legacy = tmp_path / "old"
    legacy.mkdir()
    old = optuna.create_study(study_name="old", storage=f"sqlite:///{legacy / 'study.db'}")
    old.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    resumed = tuner.RandomSearch(build, max_trials=2, directory=str(tmp_path),
                                 project_name="old")
    assert len(resumed.study.trials) == 2 and not (legacy / "study.journal").exists()


def test_oracle_tuner_with_hooks_and_update_trial(tmp_path):
    # keras_tuner/custom_tuner.py: Tuner(oracle=..., hypermodel=...) whose run_trial reports
    # through on_epoch_end (best value kept) or oracle.update_trial, returning nothing
    class Hooked(tuner.Tuner):
        def run_trial(self, trial):
            x = trial.hyperparameters.Float("x", -1.0, 1.0)
            if trial.hyperparameters.Boolean("direct"):
                self.oracle.update_trial(trial.trial_id, {"score": x * x})
            else:
                for epoch, value in enumerate([x * x + 2, x * x + 1]):
                    self.on_epoch_end(trial, model, epoch, logs={"score": value})

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    search = Hooked(oracle=tuner.oracles.RandomSearch(objective=tuner.Objective("score", "min"),
                                                      max_trials=4, seed=0),
                    directory=str(tmp_path), project_name="h")
    search.search()
    for t in search.study.trials:
        x, direct = t.params["x"], t.params["direct"]
        assert t.value == pytest.approx(x * x + (0 if direct else 1))

    class Silent(tuner.Tuner):
        def run_trial(self, trial):
            trial.hyperparameters.Float("x", -1.0, 1.0)

    with pytest.raises(tuner.errors.FatalError, match="reported no 'score'"):
        Silent(oracle=tuner.oracles.RandomSearch(objective=tuner.Objective("score", "min"),
                                                 max_trials=1),
               directory=str(tmp_path), project_name="s").search()


def test_values_set_by_hand_before_declaring():
    # keras_tuner/visualize_tuning.py: hp.values["model_type"] = "cnn" then build_model(hp)
    hp = tuner.HyperParameters()
    hp.values["model_type"] = "cnn"
    assert hp.Choice("model_type", ["mlp", "cnn"]) == "cnn"
    assert hp.Int("layers", 1, 3) == 1 and hp.values == {"model_type": "cnn", "layers": 1}
