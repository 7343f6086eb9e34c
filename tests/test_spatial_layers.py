"""Spatial shape layers: ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D.

The same checks as the pooling layers (tests/test_pooling_layers.py): the layer harness, numpy
implementations written from the Keras definitions, real Keras 3 where installed, input
gradients against central differences and on onnxruntime with an unknown batch dim, config
round trips, symbolic shapes and argument errors. Bilinear upsampling is checked against TF's
half-pixel formula written per output pixel (source = (i + 0.5) * in / out - 0.5, neighbours
clamped to the edge)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kgraph import keras
from kgraph.keras.layers import spatial
from test_pooling_layers import case_tests, check_tvm, distinct

L = keras.layers
CF = "channels_first"


# -- numpy from the Keras definitions ----------------------------------------------------------
def _pairs(value, dims):
    if isinstance(value, int):
        return [(value, value)] * dims
    return [(v, v) if isinstance(v, int) else tuple(v) for v in value]


def _spatial(x, data_format):
    return list(range(1, x.ndim - 1)) if data_format != CF else list(range(2, x.ndim))


def np_zero_padding(x, padding, data_format="channels_last"):
    widths = [(0, 0)] * x.ndim
    pairs = [tuple(padding)] if x.ndim == 3 and not isinstance(padding, int) else \
        _pairs(padding, x.ndim - 2)
    for axis, pair in zip(_spatial(x, data_format), pairs):
        widths[axis] = pair
    return np.pad(x, widths)


def np_cropping(x, cropping, data_format="channels_last"):
    pairs = [tuple(cropping)] if x.ndim == 3 and not isinstance(cropping, int) else \
        _pairs(cropping, x.ndim - 2)
    index = [slice(None)] * x.ndim
    for axis, (lo, hi) in zip(_spatial(x, data_format), pairs):
        index[axis] = slice(lo, x.shape[axis] - hi)
    return x[tuple(index)]


def np_nearest(x, size, data_format="channels_last"):
    sizes = (size,) * (x.ndim - 2) if isinstance(size, int) else size
    for axis, factor in zip(_spatial(x, data_format), sizes):
        x = np.repeat(x, factor, axis=axis)
    return x


def np_bilinear(x, size, data_format="channels_last"):
    """tf.image.resize(..., "bilinear"), half-pixel centers, one output pixel at a time."""
    if data_format == CF:
        x = np.moveaxis(x, 1, -1)
    fh, fw = (size, size) if isinstance(size, int) else size
    n, h, w, c = x.shape
    out = np.zeros((n, h * fh, w * fw, c))

    def taps(i, size_in, size_out):
        source = (i + 0.5) * (size_in / size_out) - 0.5
        low, high = max(math.floor(source), 0), min(math.ceil(source), size_in - 1)
        return low, high, source - math.floor(source)

    for i in range(h * fh):
        top, bottom, dy = taps(i, h, h * fh)
        for j in range(w * fw):
            left, right, dx = taps(j, w, w * fw)
            upper = x[:, top, left] * (1 - dx) + x[:, top, right] * dx
            lower = x[:, bottom, left] * (1 - dx) + x[:, bottom, right] * dx
            out[:, i, j] = upper * (1 - dy) + lower * dy
    return np.moveaxis(out, -1, 1) if data_format == CF else out


CASES = [
    ("pad1d", L.ZeroPadding1D, {}, (2, 4, 3), lambda x: np_zero_padding(x, (1, 1))),
    ("pad1d_asym", L.ZeroPadding1D, {"padding": (0, 2)}, (2, 4, 3),
     lambda x: np_zero_padding(x, (0, 2))),
    ("pad2d", L.ZeroPadding2D, {}, (2, 3, 4, 2), lambda x: np_zero_padding(x, 1)),
    ("pad2d_pairs_cf", L.ZeroPadding2D, {"padding": ((1, 0), (2, 3)), "data_format": CF},
     (2, 2, 3, 4), lambda x: np_zero_padding(x, ((1, 0), (2, 3)), CF)),
    ("pad2d_sym", L.ZeroPadding2D, {"padding": (2, 0)}, (1, 3, 3, 1),
     lambda x: np_zero_padding(x, (2, 0))),
    ("pad3d", L.ZeroPadding3D, {"padding": (1, 0, 2)}, (1, 2, 3, 2, 2),
     lambda x: np_zero_padding(x, (1, 0, 2))),
    ("pad3d_cf", L.ZeroPadding3D, {"padding": ((0, 1), (1, 0), (1, 1)), "data_format": CF},
     (1, 2, 2, 3, 2), lambda x: np_zero_padding(x, ((0, 1), (1, 0), (1, 1)), CF)),
    ("crop1d", L.Cropping1D, {}, (2, 5, 3), lambda x: np_cropping(x, (1, 1))),
    ("crop1d_end0", L.Cropping1D, {"cropping": (2, 0)}, (2, 5, 3),
     lambda x: np_cropping(x, (2, 0))),
    ("crop2d", L.Cropping2D, {"cropping": ((1, 0), (1, 2))}, (2, 4, 5, 2),
     lambda x: np_cropping(x, ((1, 0), (1, 2)))),
    ("crop2d_int_cf", L.Cropping2D, {"cropping": 1, "data_format": CF}, (2, 2, 4, 5),
     lambda x: np_cropping(x, 1, CF)),
    ("crop3d", L.Cropping3D, {}, (1, 3, 4, 5, 2), lambda x: np_cropping(x, 1)),
    ("crop3d_cf", L.Cropping3D, {"cropping": ((0, 1), (1, 0), (2, 1)), "data_format": CF},
     (1, 2, 3, 3, 5), lambda x: np_cropping(x, ((0, 1), (1, 0), (2, 1)), CF)),
    ("up1d", L.UpSampling1D, {}, (2, 3, 2), lambda x: np_nearest(x, 2)),
    ("up1d_3", L.UpSampling1D, {"size": 3}, (2, 3, 2), lambda x: np_nearest(x, 3)),
    ("up2d", L.UpSampling2D, {}, (2, 3, 2, 2), lambda x: np_nearest(x, 2)),
    ("up2d_cf", L.UpSampling2D, {"size": (1, 3), "data_format": CF}, (2, 2, 3, 2),
     lambda x: np_nearest(x, (1, 3), CF)),
    ("up2d_bilinear", L.UpSampling2D, {"interpolation": "bilinear"}, (2, 3, 4, 2),
     lambda x: np_bilinear(x, 2)),
    ("up2d_bilinear_3x2", L.UpSampling2D, {"size": (3, 2), "interpolation": "Bilinear"},
     (1, 3, 2, 2), lambda x: np_bilinear(x, (3, 2))),
    ("up2d_bilinear_cf", L.UpSampling2D,
     {"size": (2, 3), "interpolation": "bilinear", "data_format": CF}, (1, 2, 2, 3),
     lambda x: np_bilinear(x, (2, 3), CF)),
    ("up3d", L.UpSampling3D, {}, (1, 2, 2, 1, 2), lambda x: np_nearest(x, 2)),
    ("up3d_cf", L.UpSampling3D, {"size": (1, 2, 3), "data_format": CF}, (1, 2, 2, 2, 1),
     lambda x: np_nearest(x, (1, 2, 3), CF)),
]
IDS = [c[0] for c in CASES]


globals().update(case_tests(CASES, ("pad2d_pairs_cf", "crop3d", "up1d_3", "up2d_bilinear", "up3d_cf")))


# -- specifics ---------------------------------------------------------------------------------
def test_bilinear_upsampling_of_a_ramp():
    x = np.array([0.0, 4.0, 8.0], np.float32).reshape(1, 1, 3, 1)
    got = L.UpSampling2D((1, 2), interpolation="bilinear")(x).reshape(6)
    np.testing.assert_allclose(got, [0, 1, 3, 5, 7, 8])  # edges clamp, inside interpolates


def test_bilinear_matrices_rows_sum_to_one():
    for size, factor in [(1, 3), (4, 2), (5, 3)]:
        matrix = spatial.bilinear_matrix(size, factor)
        assert matrix.shape == (size * factor, size)
        np.testing.assert_allclose(matrix.sum(1), 1.0)


def test_symbolic_shapes_keep_the_batch_unknown():
    cases = [(L.ZeroPadding2D(((1, 2), (0, 1))), (3, 4, 2), (None, 6, 5, 2)),
             (L.ZeroPadding1D(2), (None, 3), (None, None, 3)),
             (L.Cropping1D((1, 2)), (6, 3), (None, 3, 3)),
             (L.Cropping2D(((1, 0), (0, 2)), data_format=CF), (2, 5, 6), (None, 2, 4, 4)),
             (L.Cropping3D(), (None, 4, 4, 2), (None, None, 2, 2, 2)),
             (L.UpSampling1D(3), (4, 2), (None, 12, 2)),
             (L.UpSampling2D(interpolation="bilinear"), (3, 4, 2), (None, 6, 8, 2)),
             (L.UpSampling3D((1, 2, 2), data_format=CF), (2, 3, 3, 1), (None, 2, 3, 6, 2))]
    for layer, shape, expected in cases:
        assert tuple(layer(keras.Input(shape=shape)).shape) == expected
        assert tuple(layer.compute_output_shape((None,) + shape)) == expected


def test_keras_default_configs():
    assert L.ZeroPadding1D().get_config()["padding"] == (1, 1)
    assert L.ZeroPadding2D().get_config()["padding"] == ((1, 1), (1, 1))
    assert L.ZeroPadding2D((1, 2)).get_config()["padding"] == ((1, 1), (2, 2))
    assert L.ZeroPadding3D(2).get_config()["padding"] == ((2, 2),) * 3
    assert L.Cropping1D().get_config()["cropping"] == (1, 1)
    assert "data_format" not in L.Cropping1D().get_config()
    assert L.Cropping2D().get_config()["cropping"] == ((0, 0), (0, 0))
    assert L.Cropping3D().get_config()["cropping"] == ((1, 1),) * 3
    assert L.UpSampling1D().get_config()["size"] == 2
    up = L.UpSampling2D(3, interpolation="BILINEAR").get_config()
    assert up["size"] == (3, 3) and up["interpolation"] == "bilinear"
    assert L.UpSampling3D().get_config()["size"] == (2, 2, 2)
    assert set(spatial.__all__) <= set(dir(L))


@pytest.mark.parametrize("make, text", [
    (lambda: L.ZeroPadding1D(-1), "padding=-1"),
    (lambda: L.ZeroPadding1D((1, 2, 3)), "padding=(1, 2, 3)"),
    (lambda: L.ZeroPadding2D((1, 2, 3)), "padding=(1, 2, 3)"),
    (lambda: L.ZeroPadding2D(((1, -1), (0, 0))), "(1, -1)"),
    (lambda: L.ZeroPadding3D("same"), "padding='same'"),
    (lambda: L.ZeroPadding2D(data_format="nchw"), "data_format='nchw'"),
    (lambda: L.Cropping1D(-2), "cropping=-2"),
    (lambda: L.Cropping2D(-1), "cropping=-1"),
    (lambda: L.Cropping3D(((1, 1), (1, 1))), "cropping=((1, 1), (1, 1))"),
    (lambda: L.Cropping1D((2, 3))(np.zeros((1, 5, 2), np.float32)), "cropping=(2, 3)"),
    (lambda: L.Cropping2D(((1, 1), (3, 3)))(keras.Input((4, 6, 1))), "cropping=((1, 1), (3, 3))"),
    (lambda: L.UpSampling1D(0), "size=0"),
    (lambda: L.UpSampling2D((2, 0)), "size=(2, 0)"),
    (lambda: L.UpSampling3D((2, 2)), "size=(2, 2)"),
    (lambda: L.UpSampling2D(interpolation="bicubic"), "interpolation='bicubic'"),
    (lambda: L.UpSampling2D()(np.zeros((1, 2, 2), np.float32)), "expected ndim=4"),
    (lambda: L.UpSampling2D(interpolation="bilinear")(keras.Input((None, 4, 1))),
     "known spatial dims"),
])
def test_bad_arguments_raise_value_errors_that_quote_the_value(make, text):
    with pytest.raises(ValueError) as info:
        make()
    assert text.lower() in str(info.value).lower()


def test_upsampling_1d_size_must_be_an_int_as_in_keras():
    with pytest.raises(TypeError, match="size=2.5"):
        L.UpSampling1D(2.5)


@pytest.mark.tvm
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tvm_runs_forward_and_backward(case):
    _, cls, kwargs, shape, _ = case
    check_tvm(cls(**kwargs), distinct(shape))


def test_second_order_gradient_through_zero_padding_with_an_open_batch_dim():
    """ZeroPadding2D's gradient is a slice over every axis, the batch one whole; a gradient
    penalty (WGAN-GP) differentiates that slice again, in a step whose batch is open: its
    gradient must not need the batch size. Checked against the same penalty on a fixed batch."""
    import kgraph as tf
    from kgraph import keras as k

    model = k.Sequential([k.Input((6, 6, 1)), k.layers.ZeroPadding2D(2),
                          k.layers.Conv2D(2, 3, activation="tanh"), k.layers.Flatten(),
                          k.layers.Dense(1)])
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 1)).astype("float32")

    def penalty_grads(x):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                pred = model(x)
            grads = inner.gradient(pred, x)
            penalty = k.ops.sum(grads * grads)
        return outer.gradient(penalty, model.trainable_weights)

    open_batch = tf.function(penalty_grads,
                             input_signature=[tf.TensorSpec((None, 6, 6, 1), "float32")])
    fixed_batch = tf.function(penalty_grads)
    got_all, want_all = open_batch(x), fixed_batch(x)
    # the Dense bias does not reach the input gradient: no gradient, as in TensorFlow
    assert [g is None for g in got_all] == [g is None for g in want_all] == [
        False, False, False, True]
    for got, want in zip(got_all[:3], want_all[:3]):
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # the same penalty run eagerly: the inner tape's gradient is recorded on the outer one
    eager = penalty_grads(x)
    assert eager[3] is None
    for got, want in zip(eager[:3], want_all[:3]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer, rank, size", [(L.UpSampling1D, 3, 3), (L.UpSampling2D, 4, 2),
                                                 (L.UpSampling3D, 5, 2)])
def test_nearest_upsampling_of_open_spatial_dims(layer, rank, size):
    """mirnet.py: UpSampling2D inside a model on `Input(shape=[None, None, 3])`, traced once
    and run at several sizes, with a gradient through it."""
    import kgraph as tf

    inputs = keras.Input((None,) * (rank - 2) + (2,))
    model = keras.Model(inputs, layer(size)(inputs))
    rng = np.random.default_rng(6)
    for dims in ((3,) * (rank - 2), (1,) + (4,) * (rank - 3)):
        x = rng.normal(size=(2,) + dims + (2,)).astype("float32")
        np.testing.assert_array_equal(model.predict(x, verbose=0), np_nearest(x, size))

    @tf.function(input_signature=[tf.TensorSpec((1,) + (None,) * (rank - 2) + (2,),
                                                "float32")])
    def gradient(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = keras.ops.sum(layer(size)(x) * 3.0)
        return tape.gradient(total, x)

    x = rng.normal(size=(1,) + (3,) * (rank - 2) + (2,)).astype("float32")
    np.testing.assert_allclose(gradient(x), np.full(x.shape, 3.0 * size ** (rank - 2)))
