"""keras.io guide "Handling failed trials in KerasTuner" (guides/keras_tuner/failed_trials.py).

Each test walks one section of the guide with its code as written; `import keras_tuner` is
`from kgraph import tuner as keras_tuner` (kgraph's KerasTuner API over Optuna; the tests skip
without `optuna`), the Keras imports are kgraph's, and the tuners' default directory (the
working directory) is the test's temporary folder. Epochs 10 -> 1. Checked: the grid's 12
combinations all run (5 of them fail: the models over 1,200 parameters), failing builds are
retried (4 builds each) unless they raise `FailedTrialError` (1 build), the best trial is one
of the small models, and a `FatalError` ends the search at the first large model.
"""

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")


def _build_model(raise_error, builds):
    from kgraph import keras
    from kgraph.keras import layers

    def build_model(hp):
        units_1 = hp.Int("units_1", 10, 40, step=10)
        units_2 = hp.Int("units_2", 10, 30, step=10)
        builds.append((units_1, units_2))
        model = keras.Sequential([
            layers.Dense(units=units_1, input_shape=(20,)),
            layers.Dense(units=units_2),
            layers.Dense(units=1),
        ])
        model.compile(loss="mse")
        n_params = model.count_params()
        if n_params > 1200:
            raise raise_error(f"Model too large! It contains {n_params} params.")
        return model

    return build_model


def _search(tuner):
    tuner.search(
        x=np.random.rand(100, 20),
        y=np.random.rand(100, 1),
        validation_data=(
            np.random.rand(100, 20),
            np.random.rand(100, 1),
        ),
        epochs=1,  # 10 in the guide
    )


def _states(tuner):
    return sorted(t.state.name for t in tuner.study.trials)


LARGE = {(30, 20), (30, 30), (40, 10), (40, 20), (40, 30)}  # over 1,200 parameters


def test_tolerate_failed_trials(tmp_path, monkeypatch):
    from kgraph import tuner as keras_tuner

    monkeypatch.chdir(tmp_path)
    builds = []
    tuner = keras_tuner.GridSearch(
        hypermodel=_build_model(ValueError, builds),
        objective="val_loss",
        overwrite=True,
        max_retries_per_trial=3,
        max_consecutive_failed_trials=8,
    )
    _search(tuner)
    tuner.results_summary()
    assert _states(tuner) == ["COMPLETE"] * 7 + ["FAIL"] * 5
    assert sum(b in LARGE for b in builds) == 5 * 4  # each large model built 1 + 3 times
    best = tuner.get_best_hyperparameters()[0].values
    assert (best["units_1"], best["units_2"]) not in LARGE


def test_mark_a_trial_as_failed(tmp_path, monkeypatch):
    from kgraph import tuner as keras_tuner

    monkeypatch.chdir(tmp_path)
    builds = []
    tuner = keras_tuner.GridSearch(
        hypermodel=_build_model(keras_tuner.errors.FailedTrialError, builds),
        objective="val_loss",
        overwrite=True,
        max_retries_per_trial=3,
        max_consecutive_failed_trials=8,
    )
    _search(tuner)
    tuner.results_summary()
    assert _states(tuner) == ["COMPLETE"] * 7 + ["FAIL"] * 5
    assert sum(b in LARGE for b in builds) == 5  # FailedTrialError: no retries


def test_terminate_the_search_programmatically(tmp_path, monkeypatch):
    from kgraph import tuner as keras_tuner

    monkeypatch.chdir(tmp_path)
    builds = []
    tuner = keras_tuner.GridSearch(
        hypermodel=_build_model(keras_tuner.errors.FatalError, builds),
        objective="val_loss",
        overwrite=True,
        max_retries_per_trial=3,
        max_consecutive_failed_trials=8,
    )
    terminated = False
    try:
        _search(tuner)
    except keras_tuner.errors.FatalError:
        print("The search is terminated.")
        terminated = True
    assert terminated and builds[-1] in LARGE and sum(b in LARGE for b in builds) == 1
