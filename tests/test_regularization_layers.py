"""Regularization layers: the layer harness, whole-channel masks of the spatial dropouts,
statistics of the Gaussian noise layers, inference is the identity, the activity penalty in
the training loss, configs and argument errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import kgraph as tf
from harness import run_layer_test
from kgraph import keras

L = keras.layers
SELU_ALPHA_P = -1.6732632423543772 * 1.0507009873554805


def _data(*shape, seed=0, loc=0.0):
    return np.random.default_rng(seed).normal(loc, 1.0, size=shape).astype("float32")


@pytest.mark.parametrize("cls, kwargs, shape", [
    (L.SpatialDropout1D, {"rate": 0.5}, (2, 3, 4)),
    (L.SpatialDropout2D, {"rate": 0.5}, (2, 3, 3, 4)),
    (L.SpatialDropout2D, {"rate": 0.5, "data_format": "channels_first"}, (2, 4, 3, 3)),
    (L.SpatialDropout3D, {"rate": 0.3, "seed": 3}, (2, 2, 2, 2, 3)),
    (L.GaussianNoise, {"stddev": 0.2}, (3, 4)),
    (L.GaussianDropout, {"rate": 0.2, "seed": 1}, (3, 4)),
    (L.AlphaDropout, {"rate": 0.2}, (3, 4)),
    (L.ActivityRegularization, {"l1": 0.1, "l2": 0.2}, (3, 4)),
])
def test_harness_and_inference_is_identity(cls, kwargs, shape):
    layer = run_layer_test(cls, kwargs, shape, expected_output_shape=shape,
                           expected_num_trainable_weights=0,
                           expected_num_non_trainable_weights=0)
    x = _data(*shape)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer(x, training=False), x)


def _channel_maps(y, data_format, rank):
    """(samples * channels, spatial size) view of y."""
    if data_format == "channels_last":
        y = np.moveaxis(y, -1, 1)
    return y.reshape(y.shape[0] * y.shape[1], -1)


@pytest.mark.parametrize("cls, shape, data_format", [
    (L.SpatialDropout1D, (300, 5, 8), "channels_last"),
    (L.SpatialDropout2D, (300, 3, 4, 8), "channels_last"),
    (L.SpatialDropout2D, (300, 8, 3, 4), "channels_first"),
    (L.SpatialDropout3D, (300, 2, 3, 2, 8), "channels_last"),
    (L.SpatialDropout3D, (300, 8, 2, 3, 2), "channels_first"),
])
def test_spatial_dropout_drops_whole_channels(cls, shape, data_format):
    rate = 0.4
    kwargs = {} if cls is L.SpatialDropout1D else {"data_format": data_format}
    layer = cls(rate, seed=11, **kwargs)
    x = np.abs(_data(*shape)) + 0.5  # no zeros in the input
    maps_in = _channel_maps(x, data_format, cls.rank)
    maps = _channel_maps(np.asarray(layer(x, training=True)), data_format, cls.rank)
    dropped = np.all(maps == 0, axis=1)
    kept = np.all(maps != 0, axis=1)
    assert np.all(dropped | kept), "a channel map was partly dropped"
    assert abs(dropped.mean() - rate) < 0.03, dropped.mean()
    np.testing.assert_allclose(maps[kept], maps_in[kept] / (1 - rate), rtol=1e-6)


def test_spatial_dropout_masks_differ_per_sample_and_per_step_and_follow_the_seed():
    layer = L.SpatialDropout1D(0.5, seed=4)
    x = np.ones((64, 3, 16), "float32")
    a, b = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert not np.array_equal(a, b)  # a new rng key per step
    assert not all(np.array_equal(a[0], a[i]) for i in range(1, 64))
    tf.random.set_seed(7)
    c = np.asarray(layer(x, training=True))
    tf.random.set_seed(7)
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), c)


def test_spatial_dropout_edge_rates_config_and_errors():
    x = _data(2, 3, 4)
    np.testing.assert_array_equal(L.SpatialDropout1D(0.0)(x, training=True), x)
    np.testing.assert_array_equal(L.SpatialDropout1D(1.0)(x, training=True), np.zeros_like(x))
    config = L.SpatialDropout2D(0.25, data_format="channels_first", seed=2, name="sd").get_config()
    assert config == {"rate": 0.25, "seed": 2, "name": "sd", "dtype": "float32",
                      "data_format": "channels_first"}  # exactly Keras 3's keys
    assert L.SpatialDropout2D.from_config(config).get_config() == config
    assert set(L.SpatialDropout1D(0.1).get_config()) == {"rate", "seed", "name", "dtype"}
    assert isinstance(L.SpatialDropout3D(0.1), L.Dropout)
    with pytest.raises(ValueError, match="rate=1.5"):
        L.SpatialDropout1D(1.5)
    with pytest.raises(ValueError, match="data_format='channels_middle'"):
        L.SpatialDropout2D(0.1, data_format="channels_middle")
    with pytest.raises(ValueError, match="expected ndim=4, found ndim=3"):
        L.SpatialDropout2D(0.1)(x)


def test_gaussian_noise_statistics():
    stddev = 0.3
    noise = np.asarray(L.GaussianNoise(stddev, seed=5)(np.zeros((400, 500), "float32"),
                                                        training=True))
    n = noise.size
    assert abs(noise.mean()) < 4 * stddev / math.sqrt(n)
    assert abs(noise.std() / stddev - 1) < 0.01
    # Gaussian shape: about 68.3% within one stddev, 95.4% within two
    assert abs(np.mean(np.abs(noise) < stddev) - 0.6827) < 0.005
    assert abs(np.mean(np.abs(noise) < 2 * stddev) - 0.9545) < 0.003
    x = _data(50, 40)
    y = np.asarray(L.GaussianNoise(stddev)(x, training=True))
    assert abs((y - x).std() / stddev - 1) < 0.05


def test_gaussian_dropout_statistics():
    rate = 0.2
    y = np.asarray(L.GaussianDropout(rate, seed=6)(np.full((400, 500), 2.0, "float32"),
                                                    training=True))
    factor = y / 2.0
    assert abs(factor.mean() - 1) < 0.005
    assert abs(factor.std() / math.sqrt(rate / (1 - rate)) - 1) < 0.01


def test_alpha_dropout_keeps_selu_moments():
    rate = 0.3
    x = _data(400, 500)
    y = np.asarray(L.AlphaDropout(rate, seed=8)(x, training=True))
    a = ((1 - rate) * (1 + rate * SELU_ALPHA_P ** 2)) ** -0.5
    b = -a * SELU_ALPHA_P * rate
    dropped = np.isclose(y, a * SELU_ALPHA_P + b, atol=1e-6)
    assert abs(dropped.mean() - rate) < 0.01
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] + b, rtol=1e-5, atol=1e-6)
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1) < 0.01
    x = np.abs(x) + 0.1  # far from the saturation value, so kept units never match it
    y = np.asarray(L.AlphaDropout(rate, noise_shape=(None, 1), seed=8)(x, training=True))
    rows_dropped = np.isclose(y, a * SELU_ALPHA_P + b, atol=1e-6)
    assert np.all(rows_dropped.all(1) | ~rows_dropped.any(1))  # one draw per row


def test_noise_layers_are_on_in_fit_and_off_in_predict():
    inputs = keras.Input((6,))
    model = keras.Model(inputs, L.GaussianNoise(1.0, seed=1)(inputs))
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x = _data(64, 6)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    assert model.evaluate(x, x, verbose=0) == 0.0
    loss = model.fit(x, x, batch_size=64, verbose=0).history["loss"][0]
    assert abs(loss - 1.0) < 0.2  # mse of unit-variance noise


def test_activity_regularization_adds_its_penalty_to_the_training_loss():
    inputs = keras.Input((3,))
    hidden = L.Dense(2, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    model = keras.Model(inputs, L.ActivityRegularization(l1=0.1, l2=0.01)(hidden))
    model.compile(keras.optimizers.SGD(0.0), "mse")
    x, y = _data(4, 3), np.zeros((4, 2), "float32")
    h = x @ np.ones((3, 2))
    loss = model.fit(x, y, batch_size=4, verbose=0).history["loss"][0]
    # the penalty is divided by the batch size (4), as Keras 3
    expected = np.mean(h ** 2) + (0.1 * np.abs(h).sum() + 0.01 * (h ** 2).sum()) / 4
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # evaluate reports it too: Keras 3.15's compute_loss adds `model.losses` whatever
    # `training` is (checked with real Keras: fit and evaluate both 4.1397 on arange data)
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), expected, rtol=1e-5)


@pytest.mark.parametrize("batch_size", [5, 2])
def test_activity_regularizer_penalty_per_example_equals_real_keras(batch_size):
    """A layer's `activity_regularizer` adds its penalty divided by the output's batch size
    (Keras 3), so a custom regularizer (the keras.io PointNet's) weighs the same per example
    whatever the batch; the training loss equals real Keras' for full and partial batches."""
    real_keras = pytest.importorskip("keras")
    x, y = _data(5, 3), np.zeros((5, 4), "float32")

    def train_loss(k):
        def penalty(t):
            return k.ops.sum(0.1 * k.ops.square(t))

        model = k.Sequential([k.Input((3,)), k.layers.Dense(
            4, kernel_initializer="ones", activity_regularizer=penalty)])
        model.compile(k.optimizers.SGD(0.0), "mse")
        return model.fit(x, y, batch_size=batch_size, verbose=0).history["loss"][0]

    np.testing.assert_allclose(train_loss(keras), train_loss(real_keras), rtol=1e-5)


@pytest.mark.parametrize("make, match", [
    (lambda: L.GaussianNoise(1.5), "stddev=1.5"),
    (lambda: L.GaussianNoise("big"), "stddev='big'"),
    (lambda: L.GaussianDropout(-0.1), "rate=-0.1"),
    (lambda: L.AlphaDropout(2), "rate=2"),
    (lambda: L.ActivityRegularization(l1=-1.0), "l1=-1.0"),
])
def test_bad_arguments_quote_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_configs_round_trip():
    for layer in (L.GaussianNoise(0.1, seed=3), L.GaussianDropout(0.4),
                  L.AlphaDropout(0.1, noise_shape=(None, 1)),
                  L.ActivityRegularization(l1=0.5)):
        config = layer.get_config()
        assert type(layer).from_config(config).get_config() == config
    assert L.ActivityRegularization(l2=0.3).get_config()["l2"] == 0.3
    assert "activity_regularizer" not in L.ActivityRegularization().get_config()
