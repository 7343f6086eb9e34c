"""keras.io guide "Getting started with KerasTuner" (guides/keras_tuner/getting_started.py).

Each test walks one section of the guide with its code as written; `import keras_tuner` is
`from kgraph import tuner as keras_tuner` (kgraph's KerasTuner API over Optuna; the `optuna`
package is the `tuner` extra, so the tests skip without it), the Keras imports are kgraph's,
MNIST is random arrays of its shapes (96 train, 32 validation images), and each tuner's
`directory="my_dir"` lives under the test's temporary folder (the guide writes it where it runs).
Sizes cut: max_trials 3 -> 2, executions_per_trial 2 -> 1, the "tune anything" search 20 -> 8
trials, epochs 2 -> 1. Checked: defaults of a fresh `HyperParameters`, the number of trials
and their recorded hyperparameters, the best model's shapes, the objective each tuner reads
(History, a float, a dict key, a custom metric), the best `x` of `x * x + 1`.

The last section's `keras_tuner.applications.HyperResNet` is `kgraph.tuner.applications`'
(KerasTuner's search space and architectures; max_trials 2 -> 1: each trial traces a ResNet
of up to 36 blocks in its fourth stack).
"""

import os

import numpy as np
import pytest

from example_datasets import mnist_load_data

pytest.importorskip("optuna")


def _mnist():
    from kgraph import keras

    (x, y), (x_test, y_test) = mnist_load_data(n_train=128, n_test=8)
    x_train, x_val = x[:-32], x[-32:]  # x[:-10000], x[-10000:]
    y_train, y_val = y[:-32], y[-32:]
    x_train = np.expand_dims(x_train, -1).astype("float32") / 255.0
    x_val = np.expand_dims(x_val, -1).astype("float32") / 255.0
    num_classes = 10
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_val = keras.utils.to_categorical(y_val, num_classes)
    return x_train, y_train, x_val, y_val


def _build_model():
    from kgraph import keras
    from kgraph.keras import layers

    def build_model(hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        for i in range(hp.Int("num_layers", 1, 3)):
            model.add(
                layers.Dense(
                    units=hp.Int(f"units_{i}", min_value=32, max_value=512, step=32),
                    activation=hp.Choice("activation", ["relu", "tanh"]),
                )
            )
        if hp.Boolean("dropout"):
            model.add(layers.Dropout(rate=0.25))
        model.add(layers.Dense(10, activation="softmax"))
        learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    return build_model


def test_define_the_search_space():
    from kgraph import keras
    from kgraph import tuner as keras_tuner
    from kgraph.keras import layers

    def build_model(hp):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(
            layers.Dense(
                units=hp.Int("units", min_value=32, max_value=512, step=32),
                activation=hp.Choice("activation", ["relu", "tanh"]),
            )
        )
        if hp.Boolean("dropout"):
            model.add(layers.Dropout(rate=0.25))
        model.add(layers.Dense(10, activation="softmax"))
        learning_rate = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    model = build_model(keras_tuner.HyperParameters())
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense", "Dense"]

    hp = keras_tuner.HyperParameters()
    print(hp.Int("units", min_value=32, max_value=512, step=32))
    assert hp.values == {"units": 32}

    def call_existing_code(units, activation, dropout, lr):
        model = keras.Sequential()
        model.add(layers.Flatten())
        model.add(layers.Dense(units=units, activation=activation))
        if dropout:
            model.add(layers.Dropout(rate=0.25))
        model.add(layers.Dense(10, activation="softmax"))
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=lr),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def build_model(hp):
        units = hp.Int("units", min_value=32, max_value=512, step=32)
        activation = hp.Choice("activation", ["relu", "tanh"])
        dropout = hp.Boolean("dropout")
        lr = hp.Float("lr", min_value=1e-4, max_value=1e-2, sampling="log")
        model = call_existing_code(units=units, activation=activation, dropout=dropout, lr=lr)
        return model

    build_model(keras_tuner.HyperParameters())
    hp = keras_tuner.HyperParameters()
    _build_model()(hp)
    assert hp.values["num_layers"] == 1 and "units_1" not in hp.values  # conditional


def test_start_the_search_and_query_the_results(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner

    keras.utils.set_random_seed(0)
    build_model = _build_model()
    tuner = keras_tuner.RandomSearch(
        hypermodel=build_model,
        objective="val_accuracy",
        max_trials=2,  # 3 in the guide
        executions_per_trial=1,  # 2
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="helloworld",
    )
    tuner.search_space_summary()
    x_train, y_train, x_val, y_val = _mnist()
    tuner.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))

    models = tuner.get_best_models(num_models=2)
    best_model = models[0]
    best_model.build(input_shape=(None, 28, 28))
    best_model.summary()
    assert len(models) == 2 and best_model.predict(x_val, verbose=0).shape == (32, 10)
    tuner.results_summary()

    best_hps = tuner.get_best_hyperparameters(5)
    assert len(best_hps) == 2 and {"num_layers", "lr", "units_0"} <= set(best_hps[0].values)
    model = build_model(best_hps[0])
    x_all = np.concatenate((x_train, x_val))
    y_all = np.concatenate((y_train, y_val))
    model.fit(x=x_all, y=y_all, epochs=1)


def test_tune_model_training_and_data_preprocessing(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)

    class MyHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            model = keras.Sequential()
            model.add(layers.Flatten())
            model.add(
                layers.Dense(
                    units=hp.Int("units", min_value=32, max_value=512, step=32),
                    activation="relu",
                )
            )
            model.add(layers.Dense(10, activation="softmax"))
            model.compile(
                optimizer="adam",
                loss="categorical_crossentropy",
                metrics=["accuracy"],
            )
            return model

        def fit(self, hp, model, x, y, **kwargs):
            if hp.Boolean("normalize"):
                x = layers.Normalization()(x)
            return model.fit(
                x,
                y,
                shuffle=hp.Boolean("shuffle"),
                **kwargs,
            )

    hp = keras_tuner.HyperParameters()
    hypermodel = MyHyperModel()
    model = hypermodel.build(hp)
    history = hypermodel.fit(hp, model, np.random.rand(100, 28, 28), np.random.rand(100, 10))
    assert hp.values == {"units": 32, "normalize": False, "shuffle": False}
    assert len(history.history["loss"]) == 1

    class MyHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            image_size = hp.Int("image_size", 10, 28)
            inputs = keras.Input(shape=(image_size, image_size))
            outputs = layers.Flatten()(inputs)
            outputs = layers.Dense(
                units=hp.Int("units", min_value=32, max_value=512, step=32),
                activation="relu",
            )(outputs)
            outputs = layers.Dense(10, activation="softmax")(outputs)
            model = keras.Model(inputs, outputs)
            model.compile(
                optimizer="adam",
                loss="categorical_crossentropy",
                metrics=["accuracy"],
            )
            return model

        def fit(self, hp, model, x, y, validation_data=None, **kwargs):
            if hp.Boolean("normalize"):
                x = layers.Normalization()(x)
            image_size = hp.get("image_size")
            cropped_x = x[:, :image_size, :image_size, :]
            if validation_data:
                x_val, y_val = validation_data
                cropped_x_val = x_val[:, :image_size, :image_size, :]
                validation_data = (cropped_x_val, y_val)
            return model.fit(
                cropped_x,
                y,
                shuffle=hp.Boolean("shuffle"),
                validation_data=validation_data,
                **kwargs,
            )

    tuner = keras_tuner.RandomSearch(
        MyHyperModel(),
        objective="val_accuracy",
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="tune_hypermodel",
    )
    x_train, y_train, x_val, y_val = _mnist()
    tuner.search(x_train, y_train, epochs=1, validation_data=(x_val, y_val))

    hypermodel = MyHyperModel()
    best_hp = tuner.get_best_hyperparameters()[0]
    model = hypermodel.build(best_hp)
    x_all = np.concatenate((x_train, x_val))
    y_all = np.concatenate((y_train, y_val))
    hypermodel.fit(best_hp, model, x_all, y_all, epochs=1)
    size = best_hp.get("image_size")
    assert model.input_shape == (None, size, size) and 10 <= size <= 28


def _regressor(metrics):
    from kgraph import keras
    from kgraph.keras import layers

    def build_regressor(hp):
        model = keras.Sequential(
            [
                layers.Dense(units=hp.Int("units", 32, 128, 32), activation="relu"),
                layers.Dense(units=1),
            ]
        )
        model.compile(optimizer="adam", loss="mean_squared_error", metrics=metrics)
        return model

    return build_regressor


def _search_data():
    return dict(x=np.random.rand(100, 10), y=np.random.rand(100, 1),
                validation_data=(np.random.rand(20, 10), np.random.rand(20, 1)))


def test_built_in_and_custom_metrics_as_the_objective(tmp_path):
    import kgraph as tf
    from kgraph import keras
    from kgraph import tuner as keras_tuner

    keras.utils.set_random_seed(0)
    tuner = keras_tuner.RandomSearch(
        hypermodel=_regressor([keras.metrics.MeanAbsoluteError()]),
        objective=keras_tuner.Objective("val_mean_absolute_error", direction="min"),
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="built_in_metrics",
    )
    tuner.search(**_search_data())
    tuner.results_summary()
    assert tuner.study.best_value >= 0 and len(tuner.study.trials) == 2

    class CustomMetric(keras.metrics.Metric):
        def __init__(self, **kwargs):
            super().__init__(name="custom_metric", **kwargs)
            self.sum = self.add_weight(name="sum", initializer="zeros")
            self.count = self.add_weight(name="count", dtype=tf.int32, initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            values = tf.math.squared_difference(y_pred, y_true)
            count = tf.shape(y_true)[0]
            if sample_weight is not None:
                sample_weight = tf.cast(sample_weight, self.dtype)
                values *= sample_weight
                count *= sample_weight
            self.sum.assign_add(tf.reduce_sum(values))
            self.count.assign_add(count)

        def result(self):
            return self.sum / tf.cast(self.count, tf.float32)

        def reset_states(self):
            self.sum.assign(0)
            self.count.assign(0)

    metric = CustomMetric()
    metric.update_state(np.array([[1.0], [2.0]]), np.array([[2.0], [4.0]]))
    assert float(metric.result()) == pytest.approx((1.0 + 4.0) / 2)

    tuner = keras_tuner.RandomSearch(
        hypermodel=_regressor([CustomMetric()]),
        objective=keras_tuner.Objective("val_custom_metric", direction="min"),
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="custom_metrics",
    )
    tuner.search(**_search_data())
    tuner.results_summary()
    assert np.isfinite(tuner.study.best_value)


def test_objectives_returned_by_hypermodel_fit(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner

    keras.utils.set_random_seed(0)
    build = _regressor(None)

    class HyperRegressor(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, x, y, validation_data, **kwargs):
            model.fit(x, y, **kwargs)
            x_val, y_val = validation_data
            y_pred = model.predict(x_val)
            return np.mean(np.abs(y_pred - y_val))

    tuner = keras_tuner.RandomSearch(
        hypermodel=HyperRegressor(),
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="custom_eval",
    )
    tuner.search(**_search_data())
    tuner.results_summary()
    assert 0 < tuner.study.best_value < 10

    class HyperRegressor(keras_tuner.HyperModel):
        def build(self, hp):
            return build(hp)

        def fit(self, hp, model, x, y, validation_data, **kwargs):
            model.fit(x, y, **kwargs)
            x_val, y_val = validation_data
            y_pred = model.predict(x_val)
            return {
                "metric_a": -np.mean(np.abs(y_pred - y_val)),
                "metric_b": np.mean(np.square(y_pred - y_val)),
            }

    tuner = keras_tuner.RandomSearch(
        hypermodel=HyperRegressor(),
        objective=keras_tuner.Objective("metric_a", "max"),
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="custom_eval_dict",
    )
    tuner.search(**_search_data())
    tuner.results_summary()
    assert tuner.study.best_value < 0  # the negative MAE, maximised


def test_tune_end_to_end_workflows(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner
    from kgraph.keras import layers

    class MyTuner(keras_tuner.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            hp = trial.hyperparameters
            x = hp.Float("x", min_value=-1.0, max_value=1.0)
            return x * x + 1

    tuner = MyTuner(
        max_trials=8,  # 20 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="tune_anything",
    )
    tuner.search()
    best_x = tuner.get_best_hyperparameters()[0].get("x")
    print(best_x)
    assert tuner.study.best_value == pytest.approx(best_x * best_x + 1)
    assert all(best_x**2 <= t.params["x"] ** 2 for t in tuner.study.trials)

    def keras_code(units, optimizer, saving_path):
        model = keras.Sequential(
            [
                layers.Dense(units=units, activation="relu"),
                layers.Dense(units=1),
            ]
        )
        model.compile(optimizer=optimizer, loss="mean_squared_error")
        x_train = np.random.rand(100, 10)
        y_train = np.random.rand(100, 1)
        x_val = np.random.rand(20, 10)
        y_val = np.random.rand(20, 1)
        model.fit(x_train, y_train)
        model.save(saving_path)
        y_pred = model.predict(x_val)
        return np.mean(np.abs(y_pred - y_val))

    class MyTuner(keras_tuner.RandomSearch):
        def run_trial(self, trial, **kwargs):
            hp = trial.hyperparameters
            return keras_code(
                units=hp.Int("units", 32, 128, 32),
                optimizer=hp.Choice("optimizer", ["adam", "adadelta"]),
                saving_path=os.path.join(str(tmp_path), f"{trial.trial_id}.keras"),  # "/tmp"
            )

    tuner = MyTuner(
        max_trials=2,  # 3 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="keep_code_separate",
    )
    tuner.search()
    best_hp = tuner.get_best_hyperparameters()[0]
    keras_code(**best_hp.values, saving_path=str(tmp_path / "best_model.keras"))
    assert sorted(p.name for p in tmp_path.glob("*.keras")) == ["00.keras", "01.keras",
                                                                "best_model.keras"]


@pytest.mark.slow  # one random ResNet (up to 36 blocks in its fourth stack) traced and trained
def test_pre_made_tunable_applications(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner

    keras.utils.set_random_seed(0)
    x_train, y_train, x_val, y_val = _mnist()

    from kgraph.tuner.applications import HyperResNet  # keras_tuner.applications

    hypermodel = HyperResNet(input_shape=(28, 28, 1), classes=10)

    tuner = keras_tuner.RandomSearch(
        hypermodel,
        objective="val_accuracy",
        max_trials=1,  # 2 in the guide
        overwrite=True,
        directory=str(tmp_path / "my_dir"),
        project_name="built_in_hypermodel",
    )

    tuner.search(
        x_train[:100], y_train[:100], epochs=1, validation_data=(x_val[:100], y_val[:100])
    )
    values = tuner.get_best_hyperparameters()[0].values
    assert set(values) == {"version", "conv3_depth", "conv4_depth", "pooling", "optimizer",
                           "learning_rate"}
    assert tuner.get_best_models(1)[0].predict(x_val, verbose=0).shape == (32, 10)
