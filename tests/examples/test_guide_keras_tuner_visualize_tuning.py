"""keras.io guide "Visualize the hyperparameter tuning process"
(guides/keras_tuner/visualize_tuning.py).

The guide's code as written; `import keras_tuner` is `from kgraph import tuner as keras_tuner`
(kgraph's KerasTuner API over Optuna; the test skips without `optuna`), `import keras` is
kgraph's; MNIST is random arrays of its shapes (64 train images), max_trials 10 -> 2, epochs
2 -> 1, and the guide's `/tmp/tb` and `/tmp/tb_logs` are folders of the test's temporary
directory. Checked: `hp.values["model_type"] = ...` set before building selects the CNN or the
MLP, and the `keras.callbacks.TensorBoard` passed to `search` writes event files.

Partly: KerasTuner's TensorBoard integration also writes each trial's hyperparameters for the
HParams dashboard (a per-trial log folder and HParams summaries); kgraph.tuner passes the
callback to `fit` as it is, so the loss and metric curves are logged but no HParams data.
"""

import numpy as np
import pytest

from example_datasets import mnist_load_data

pytest.importorskip("optuna")


def test_visualize_tuning(tmp_path):
    from kgraph import keras
    from kgraph import tuner as keras_tuner
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = mnist_load_data(n_train=64, n_test=8)
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print(x_train.shape)

    def build_model(hp):
        inputs = keras.Input(shape=(28, 28, 1))
        model_type = hp.Choice("model_type", ["mlp", "cnn"])
        x = inputs
        if model_type == "mlp":
            x = layers.Flatten()(x)
            for i in range(hp.Int("mlp_layers", 1, 3)):
                x = layers.Dense(
                    units=hp.Int(f"units_{i}", 32, 128, step=32),
                    activation="relu",
                )(x)
        else:
            for i in range(hp.Int("cnn_layers", 1, 3)):
                x = layers.Conv2D(
                    hp.Int(f"filters_{i}", 32, 128, step=32),
                    kernel_size=(3, 3),
                    activation="relu",
                )(x)
                x = layers.MaxPooling2D(pool_size=(2, 2))(x)
            x = layers.Flatten()(x)
        if hp.Boolean("dropout"):
            x = layers.Dropout(0.5)(x)
        outputs = layers.Dense(units=10, activation="softmax")(x)
        model = keras.Model(inputs=inputs, outputs=outputs)
        model.compile(
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            optimizer="adam",
        )
        return model

    hp = keras_tuner.HyperParameters()
    hp.values["model_type"] = "cnn"
    model = build_model(hp)
    model(x_train[:100])
    model.summary()
    assert any(isinstance(layer, layers.Conv2D) for layer in model.layers)

    hp.values["model_type"] = "mlp"
    model = build_model(hp)
    model(x_train[:100])
    model.summary()
    assert not any(isinstance(layer, layers.Conv2D) for layer in model.layers)

    tuner = keras_tuner.RandomSearch(
        build_model,
        max_trials=2,  # 10 in the guide
        overwrite=True,
        objective="val_accuracy",
        directory=str(tmp_path / "tb"),  # "/tmp/tb"
    )
    tuner.search(
        x_train,
        y_train,
        validation_split=0.2,
        epochs=1,  # 2 in the guide
        callbacks=[keras.callbacks.TensorBoard(str(tmp_path / "tb_logs"))],  # "/tmp/tb_logs"
    )
    assert len(tuner.study.trials) == 2
    assert list((tmp_path / "tb_logs").rglob("events.out.tfevents.*"))
