"""keras.io example "Regression Model on Boston Housing Dataset"
(examples/structured_data/regression_boston_housing.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers`) with those imports swapped for kgraph and nothing else
changed but the epochs (100 -> 3): `tf.keras.datasets.boston_housing.load_data(path=...,
test_split=0.3, seed=42)` reads a generated `boston_housing.npz` (506 rows of 13 features, as
Keras' file) from the dataset cache in `$KGRAPH_HOME`, the Sequential with `input_shape=`,
`metrics=["mae", "mse"]`, `EarlyStopping(patience=10)` with `validation_split=0.3`, evaluate
unpacked into three values, `predict(...).flatten()`; plots left out (pandas is imported and
unused). Checked: the 70:30 split of the 506 rows, the 1,537 parameters, the evaluated loss
equal to its mse metric and to numpy's on the predictions.
"""

import numpy as np


def test_regression_boston_housing(tmp_path, monkeypatch):
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 100, (506, 13)), rng.uniform(5, 50, (506,))
    (tmp_path / "home" / "datasets").mkdir(parents=True)
    np.savez(tmp_path / "home" / "datasets" / "boston_housing.npz", x=x, y=y)

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    # The dataset is splitted by 70:30 proportion
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.boston_housing.load_data(
        path="boston_housing.npz", test_split=0.3, seed=42
    )

    print("Train Dimension:", x_train.shape)
    print("Test Dimension:", x_test.shape)
    assert x_train.shape == (354, 13) and x_test.shape == (152, 13)

    def build_model():
        model = keras.Sequential(
            [
                # input_shape is number of features
                layers.Dense(32, activation="relu", input_shape=[x_train.shape[1]]),
                layers.Dense(32, activation="relu"),
                layers.Dense(1),
            ]
        )

        # The loss function is mean squared error
        # The metrics is Mean Absolute Error and Mean Squared Error
        model.compile(loss="mse", optimizer="adam", metrics=["mae", "mse"])
        return model

    # Build the model
    model = build_model()
    model.summary()
    assert model.count_params() == 14 * 32 + 33 * 32 + 33

    # Use early stopping to break the training if the val_loss doesn't changed in 10 epochs
    early_stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10)

    history = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=3,
        verbose=0,
        validation_split=0.3,
        callbacks=[early_stop],
    )
    assert {"loss", "val_loss", "mae", "val_mae", "mse", "val_mse"} <= set(history.history)

    # Test Loss
    loss, mae, mse = model.evaluate(x_test, y_test, verbose=2)

    prediction = model.predict(x_test).flatten()

    error = prediction - y_test
    np.testing.assert_allclose([loss, mse, mae],
                               [np.mean(error**2), np.mean(error**2), np.mean(np.abs(error))],
                               rtol=1e-4)
