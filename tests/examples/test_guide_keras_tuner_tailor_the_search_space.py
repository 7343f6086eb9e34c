"""keras.io guide "Tailor the search space" (guides/keras_tuner/tailor_the_search_space.py).

Each test walks one section of the guide with its code as written; `import keras_tuner` is
`from kgraph import tuner as keras_tuner` (kgraph's KerasTuner API over Optuna; the tests skip
without `optuna`), the Keras imports are kgraph's, `directory="my_dir"` is under the test's
temporary folder, max_trials 3 -> 2. Checked: only the listed hyperparameter is sampled (the
others keep their defaults: 64 units, no dropout), a `Fixed` entry stays fixed while the rest
vary, and the compile overrides reach the best model (its loss is "mse").

The last section's `keras_tuner.applications.HyperXception` is `kgraph.tuner.applications`'
(KerasTuner's search space and architecture): only the listed learning rate is sampled, the
rest keep their defaults, the loss override reaches the model (max_trials 3 -> 2).
"""

import numpy as np
import pytest

pytest.importorskip("optuna")


def _build_model():
    from kgraph import keras
    from kgraph.keras import layers

    def build_model(hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(
            layers.Dense(
                units=hp.Int("units", min_value=32, max_value=128, step=32, default=64)
            )
        )
        if hp.Boolean("dropout"):
            model.add(layers.Dropout(rate=0.25))
        model.add
        model.compile(
            optimizer=keras.optimizers.Adam(
                learning_rate=hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
            ),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    return build_model


def _data():
    rng = np.random.default_rng(0)
    x_train = rng.random((100, 28, 28, 1))
    y_train = rng.integers(0, 10, (100, 1))
    x_val = rng.random((20, 28, 28, 1))
    y_val = rng.integers(0, 10, (20, 1))
    return x_train, y_train, x_val, y_val


def _values(tuner):
    return [t.user_attrs["values"] for t in tuner.study.trials]


def test_search_a_few_and_fix_the_rest(tmp_path):
    from kgraph import tuner as keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Float("learning_rate", min_value=1e-4, max_value=1e-2, sampling="log")
    tuner = keras_tuner.RandomSearch(
        hypermodel=_build_model(),
        hyperparameters=hp,
        tune_new_entries=False,
        objective="val_accuracy",
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="search_a_few",
    )
    x_train, y_train, x_val, y_val = _data()
    tuner.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    tuner.search_space_summary()
    assert all(set(t.distributions) == {"learning_rate"} for t in tuner.study.trials)
    for values in _values(tuner):
        assert values["units"] == 64 and values["dropout"] is False
        assert 1e-4 <= values["learning_rate"] <= 1e-2  # the Float, not the model's Choice


def test_fix_a_few_and_tune_the_rest(tmp_path):
    from kgraph import tuner as keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", value=1e-4)
    tuner = keras_tuner.RandomSearch(
        _build_model(),
        hyperparameters=hp,
        tune_new_entries=True,
        objective="val_accuracy",
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="fix_a_few",
    )
    x_train, y_train, x_val, y_val = _data()
    tuner.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    tuner.search_space_summary()
    assert all(set(t.distributions) == {"units", "dropout"} for t in tuner.study.trials)
    assert all(values["learning_rate"] == 1e-4 for values in _values(tuner))


def test_overriding_compilation_arguments(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner

    tuner = keras_tuner.RandomSearch(
        _build_model(),
        optimizer=keras.optimizers.Adam(1e-3),
        loss="mse",
        metrics=[
            "sparse_categorical_crossentropy",
        ],
        objective="val_loss",
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="override_compile",
    )
    x_train, y_train, x_val, y_val = _data()
    tuner.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    assert tuner.get_best_models()[0].loss == "mse"


@pytest.mark.slow  # HyperXception (256/512 separable filters) traced and trained on 100 images
def test_tailor_the_search_space_of_pre_build_hypermodels(tmp_path):
    from kgraph import tuner as keras_tuner

    x_train, y_train, x_val, y_val = _data()
    hypermodel = keras_tuner.applications.HyperXception(input_shape=(28, 28, 1), classes=10)

    hp = keras_tuner.HyperParameters()

    # This will override the `learning_rate` parameter with your
    # own selection of choices
    hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])

    tuner = keras_tuner.RandomSearch(
        hypermodel,
        hyperparameters=hp,
        # Prevents unlisted parameters from being tuned
        tune_new_entries=False,
        # Override the loss.
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        objective="val_accuracy",
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="helloworld",
    )

    # Run the search
    tuner.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))
    tuner.search_space_summary()
    assert all(set(t.distributions) == {"learning_rate"} for t in tuner.study.trials)
    for values in _values(tuner):  # KerasTuner's defaults for the rest
        assert values["activation"] == "relu" and values["sep_num_filters"] == 256
        assert values["num_residual_blocks"] == 4 and values["dropout_rate"] == 0.5
        assert values["learning_rate"] in (1e-2, 1e-3, 1e-4)
    assert tuner.get_best_models()[0].loss == "sparse_categorical_crossentropy"
