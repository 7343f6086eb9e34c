"""Strided convolutions and poolings with padding="same" on inputs whose spatial size is open
(`Input((None, None, 3))`, a fully convolutional model): TF SAME padding depends on the size
mod the stride, so the input is padded at run time (ops/conv_padding.py `padded_for_conv`), and the
input gradient is cut to the run-time size. One program serves every size; checked equal to
the same layers on inputs of fixed size (the static path, itself checked against Keras)."""
from __future__ import annotations

import numpy as np
import pytest

from kgraph import keras

L = keras.layers


def _layers(kind):
    if kind == "conv2d":
        return [L.Conv2D(5, 3, strides=2, padding="same", activation="relu"),
                L.Conv2D(4, 4, strides=(3, 2), padding="same")]
    if kind == "dilated_and_depthwise":
        return [L.Conv2D(4, 2, strides=2, padding="same"),
                L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2),
                L.Conv2D(3, 3, dilation_rate=2, padding="same")]
    if kind == "separable":
        return [L.SeparableConv2D(4, 3, strides=2, padding="same")]
    if kind == "conv1d":
        return [L.Conv1D(4, 5, strides=3, padding="same")]
    if kind == "pooling":
        return [L.Conv2D(4, 3, padding="same"), L.MaxPooling2D(3, strides=2, padding="same"),
                L.AveragePooling2D(2, padding="same"),
                L.AveragePooling2D(3, strides=(2, 3), padding="same")]
    if kind == "pooling1d":
        return [L.Conv1D(4, 2, padding="same"), L.AveragePooling1D(3, strides=2, padding="same"),
                L.MaxPooling1D(2, padding="same")]
    return [L.Conv3D(3, 2, strides=2, padding="same"), L.MaxPooling3D(2, padding="same")]


_RANK = {"conv1d": 1, "pooling1d": 1, "conv3d": 3}


def _model(kind, spatial, seed=2):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(tuple(spatial) + (3,))
    h = inputs
    for layer in _layers(kind):
        h = layer(h)
    pool = {1: L.GlobalAveragePooling1D, 2: L.GlobalAveragePooling2D,
            3: L.GlobalAveragePooling3D}[len(spatial)]
    model = keras.Model(inputs, L.Dense(2)(pool()(h)))
    model.compile(keras.optimizers.SGD(0.1), "mse")
    return model


def _sizes(kind):
    rank = _RANK.get(kind, 2)
    return [s[:rank] for s in [(17, 20, 6), (9, 11, 5), (4, 5, 4), (1, 2, 3), (12, 12, 7)]]


@pytest.mark.parametrize("kind", ["conv2d", "dilated_and_depthwise", "separable", "conv1d",
                                  "conv3d", "pooling", "pooling1d"])
def test_open_size_predicts_as_fixed_size(kind):
    rank = _RANK.get(kind, 2)
    model = _model(kind, (None,) * rank)
    assert model.output_shape == (None, 2)
    rng = np.random.default_rng(0)
    for size in _sizes(kind):
        x = rng.normal(size=(2,) + size + (3,)).astype("float32")
        fixed = _model(kind, size)
        fixed.set_weights(model.get_weights())
        np.testing.assert_allclose(model.predict(x, verbose=0), fixed.predict(x, verbose=0),
                                   rtol=1e-5, atol=1e-6)
    assert len([k for k in model._programs if k[0] == "predict"]) == 1


def test_symbolic_shapes_follow_tf_same():
    inputs = keras.Input((None, 7, 3))
    y = L.Conv2D(2, 3, strides=2, padding="same")(inputs)
    assert tuple(y.shape) == (None, None, 4, 2)


@pytest.mark.parametrize("kind", ["conv2d", "dilated_and_depthwise", "conv1d", "pooling",
                                  "pooling1d"])
def test_one_program_for_every_size_trains_as_one_per_size(kind):
    rank = _RANK.get(kind, 2)
    models = {"open": _model(kind, (None,) * rank), "sized": _model(kind, (None,) * rank)}
    models["sized"]._open_axes = lambda x, steps: {}  # a program per size, static padding
    rng = np.random.default_rng(1)
    batches = [(rng.normal(size=(3,) + size + (3,)).astype("float32"),
                rng.normal(size=(3, 2)).astype("float32")) for size in _sizes(kind)]
    for model in models.values():
        for x, y in batches:
            model.train_on_batch(x, y)
    # a pooling's gradient needs static sizes (ops/pool.py `_geometry`): one program per size
    programs = 1 if "pooling" not in kind else len(batches)
    assert len([k for k in models["open"]._programs if k[0] == "train"]) == programs
    assert len([k for k in models["sized"]._programs if k[0] == "train"]) == len(batches)
    for a, b in zip(models["open"].get_weights(), models["sized"].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", pytest.param("tvm", marks=pytest.mark.tvm)])
def test_open_size_runs_on_the_other_executors(backend):
    if backend == "tvm":
        pytest.importorskip("tvm")
    from kgraph import config

    model = _model("conv2d", (None, None))
    x = np.random.default_rng(4).normal(size=(2, 9, 11, 3)).astype("float32")
    fixed = _model("conv2d", (9, 11))
    fixed.set_weights(model.get_weights())
    old = config.backend()
    config.set_backend(backend)
    try:
        got = _model("conv2d", (None, None))
        got.set_weights(model.get_weights())
        out = got.predict(x, verbose=0)
    finally:
        config.set_backend(old)
    np.testing.assert_allclose(out, fixed.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
