"""Layers added for Keras 3.15 parity: adaptive pooling, SpectralNormalization,
ReversibleEmbedding, Pipeline, MelSpectrogram. Each is compared with real Keras 3 on JAX
(outputs, configs, weight names and order, `.keras` files both ways) where it is installed."""
from __future__ import annotations

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras

real_keras = pytest.importorskip("keras")
L = keras.layers


def theirs_of(layer, config=None):
    """The real-Keras layer of the same class and config."""
    return getattr(real_keras.layers, type(layer).__name__).from_config(
        config or layer.get_config())


def check_file_both_ways(layer, x, tmp_path, atol=1e-5):
    """A `.keras` file of Input -> layer written by kgraph reloads in kgraph and in real Keras
    with the same predictions."""
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    want = model.predict(x, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), want,
                               rtol=1e-5, atol=atol)
    theirs = real_keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), want, rtol=1e-5,
                               atol=atol)


# -- adaptive pooling --------------------------------------------------------------------------
ADAPTIVE = [("AdaptiveAveragePooling1D", 4, (2, 10, 3), "channels_last"),
            ("AdaptiveMaxPooling1D", 3, (2, 7, 2), "channels_first"),
            ("AdaptiveAveragePooling2D", (3, 2), (2, 7, 5, 3), "channels_last"),
            ("AdaptiveMaxPooling2D", 3, (2, 2, 8, 7), "channels_first"),
            ("AdaptiveAveragePooling3D", (2, 3, 2), (1, 5, 6, 4, 2), "channels_last"),
            ("AdaptiveMaxPooling3D", 2, (1, 2, 5, 3, 4), "channels_first")]


@pytest.mark.parametrize("name,size,shape,data_format", ADAPTIVE)
def test_adaptive_pooling_equals_real_keras(name, size, shape, data_format):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    ours = getattr(L, name)(size, data_format=data_format)
    theirs = getattr(real_keras.layers, name)(size, data_format=data_format)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    config = {k: v for k, v in ours.get_config().items() if k not in ("name", "dtype")}
    want = {k: v for k, v in theirs.get_config().items() if k not in ("name", "dtype")}
    assert config == want
    assert ours.compute_output_shape((None,) + shape[1:]) == \
        tuple(theirs.compute_output_shape((None,) + shape[1:]))


def test_adaptive_pooling_harness_and_files(tmp_path):
    run_layer_test(L.AdaptiveAveragePooling2D, {"output_size": (2, 3)}, (2, 6, 7, 3),
                   expected_output_shape=(2, 2, 3, 3))
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype(np.float32)
    check_file_both_ways(L.AdaptiveMaxPooling1D(4), x, tmp_path)


def test_adaptive_pooling_trains_through_fit():
    model = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3),
                              L.AdaptiveAveragePooling2D(2), L.Flatten(), L.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    x = np.random.default_rng(2).normal(size=(8, 8, 8, 2)).astype(np.float32)
    y = np.ones((8, 1), np.float32)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("name,size,error", [
    ("AdaptiveAveragePooling1D", (2, 3), ValueError),
    ("AdaptiveMaxPooling2D", (2, 3, 4), TypeError),
    ("AdaptiveMaxPooling3D", "2", TypeError)])
def test_adaptive_pooling_bad_output_size(name, size, error):
    with pytest.raises(error, match="output_size|Received"):
        getattr(L, name)(size)
    with pytest.raises(error):
        getattr(real_keras.layers, name)(size)
