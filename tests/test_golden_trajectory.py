"""Numerics equal real Keras: the Keras 3.15.1 SGD trajectory in shared/golden/traj_*."""
import json
import os

import h5py
import numpy as np
import pytest

from kgraph import keras

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def _weights(path, group):
    with h5py.File(os.path.join(GOLDEN, path), "r") as f:
        return [f[f"layers/{group}/vars/{i}"][()] for i in range(2)]


def _mlp():
    model = keras.Sequential([
        keras.layers.Dense(16, activation="relu", name="dense_a", input_shape=(8,)),
        keras.layers.Dense(4, activation="softmax", name="dense_b")], name="mlp")
    model.layers[0].set_weights(_weights("traj_initial.weights.h5", "dense"))
    model.layers[1].set_weights(_weights("traj_initial.weights.h5", "dense_1"))
    return model


def _trajectory_setup():
    x = np.load(os.path.join(GOLDEN, "traj_x.npy"))
    y = np.load(os.path.join(GOLDEN, "traj_y.npy"))
    with open(os.path.join(GOLDEN, "traj_sgd_history.json")) as f:
        ref = json.load(f)
    model = _mlp()
    model.compile(keras.optimizers.SGD(learning_rate=0.1), "mse")
    return model, x, y, ref


def test_sgd_trajectory_matches_keras():
    model, x, y, ref = _trajectory_setup()
    history = model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["loss"], ref["history_loss"], atol=1e-5, rtol=0)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(pred, np.load(os.path.join(GOLDEN, "traj_sgd_final_y.npy")),
                               atol=1e-5, rtol=0)
    final = _weights("traj_sgd_final.weights.h5", "dense") + \
        _weights("traj_sgd_final.weights.h5", "dense_1")
    for got, want in zip(model.get_weights(), final):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_per_step_losses_match_keras():
    model, x, y, ref = _trajectory_setup()
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["loss"])

    model.fit(x, y, batch_size=16, epochs=5, shuffle=False, verbose=0, callbacks=[Record()])
    np.testing.assert_allclose(seen, ref["step_logs_loss_running_mean"], atol=1e-5, rtol=0)


def test_predictions_of_keras_model():
    model = _mlp()
    x = np.load(os.path.join(GOLDEN, "mlp_x.npy"))
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               np.load(os.path.join(GOLDEN, "mlp_y.npy")), atol=1e-5, rtol=0)
