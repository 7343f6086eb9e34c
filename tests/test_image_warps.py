"""keras.ops.image.map_coordinates, affine_transform, perspective_transform and
elastic_transform (one gather-and-weight sampler): eager against real Keras 3 (JAX backend)
in every fill mode, interpolation and data format, traced on an unknown batch (onnxruntime),
under kgraph.function and in a functional model at two batch sizes, gradients against jax.grad
and float64 central differences, typed errors."""
from __future__ import annotations

import jax
import keras as real_keras
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.ops.image_warp import _displace

from test_fourier_and_patches import run_traced  # noqa: E402 - unknown batch, onnxruntime
from test_stft import check_central_differences  # noqa: E402 - float64 autodiff vs FD

ops = keras.ops
RNG = np.random.default_rng(11)
MODES = ["constant", "nearest", "wrap", "mirror", "reflect"]
IMAGES = RNG.uniform(size=(3, 7, 9, 2)).astype("float32")
SHIFTED = (np.array([1, 0, 0, 0, 1, 0, 0, 0], "float32") +
           RNG.normal(scale=0.3, size=(3, 8)).astype("float32") * [1, 1, 4, 1, 1, 4, 0, 0])
CORNERS = np.array([[0, 0], [8, 0], [0, 6], [8, 6]], "float32")
START = np.stack([CORNERS] * 3)
END = START + RNG.uniform(-1.5, 1.5, size=(3, 4, 2)).astype("float32")


def channels_first(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", MODES)
def test_map_coordinates_equals_real_keras(mode, order):
    inputs = RNG.normal(size=(5, 6)).astype("float32")
    coordinates = RNG.uniform(-4, 10, size=(2, 4, 3)).astype("float32")
    coordinates[:, 0, :2] = [[1.5, -0.5], [2.5, 4.0]]  # halves round away from zero
    want = real_keras.ops.image.map_coordinates(inputs, coordinates, order, mode, 0.7)
    got = ops.image.map_coordinates(inputs, coordinates, order, mode, 0.7)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_map_coordinates_on_three_axes_and_integer_inputs():
    inputs = RNG.integers(0, 50, size=(3, 4, 5)).astype("int32")
    coordinates = [RNG.uniform(-1, 5, size=(6,)).astype("float32") for _ in range(3)]
    want = real_keras.ops.image.map_coordinates(inputs, np.stack(coordinates), 1, "mirror")
    got = ops.image.map_coordinates(inputs, coordinates, 1, "mirror")
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, np.asarray(want))


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
@pytest.mark.parametrize("mode", MODES)
def test_affine_transform_equals_real_keras(mode, interpolation, data_format):
    images = IMAGES if data_format == "channels_last" else channels_first(IMAGES)
    transform = SHIFTED.copy()
    transform[0, 6:] = [0.5, -0.25]  # Keras' JAX backend adds c0 (c1) times the channel index
    args = (images, transform, interpolation, mode, 0.3, data_format)
    np.testing.assert_allclose(ops.image.affine_transform(*args),
                               np.asarray(real_keras.ops.image.affine_transform(*args)),
                               rtol=1e-5, atol=1e-5)


def test_affine_transform_of_one_image_and_a_shared_transform():
    want = real_keras.ops.image.affine_transform(IMAGES[0], SHIFTED[0])
    np.testing.assert_allclose(ops.image.affine_transform(IMAGES[0], SHIFTED[0]),
                               np.asarray(want), rtol=1e-5, atol=1e-5)
    # one transform for the whole batch (Keras' JAX backend wants one per image)
    shared = ops.image.affine_transform(IMAGES, SHIFTED[1])
    np.testing.assert_allclose(shared[2], ops.image.affine_transform(IMAGES[2], SHIFTED[1]),
                               rtol=1e-6)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("interpolation", ["nearest", "bilinear"])
def test_perspective_transform_equals_real_keras(interpolation, data_format):
    images = IMAGES if data_format == "channels_last" else channels_first(IMAGES)
    args = (images, START, END, interpolation, 0.2, data_format)
    np.testing.assert_allclose(ops.image.perspective_transform(*args),
                               np.asarray(real_keras.ops.image.perspective_transform(*args)),
                               rtol=1e-5, atol=1e-5)
    one = (IMAGES[0], CORNERS, END[0], interpolation)
    np.testing.assert_allclose(ops.image.perspective_transform(*one),
                               np.asarray(real_keras.ops.image.perspective_transform(*one)),
                               rtol=1e-5, atol=1e-5)


def keras_displace(images, noise, alpha, sigma, interpolation, mode, fill_value):
    """Keras' JAX elastic_transform after its random draws, in real Keras ops: the noise
    times sigma blurred, scaled by alpha, sampled per image and channel."""
    size = int(6 * sigma) | 1
    blur = real_keras.ops.image.gaussian_blur
    dx, dy = (np.asarray(blur(n[..., None] * sigma, (size, size), (sigma, sigma),
                              "channels_last"))[..., 0] for n in noise)
    col, row = np.meshgrid(np.arange(images.shape[2]), np.arange(images.shape[1]))
    out = np.zeros_like(images)
    for b in range(images.shape[0]):
        coordinates = np.stack([row + alpha * dy[b], col + alpha * dx[b]])
        for c in range(images.shape[3]):
            out[b, ..., c] = real_keras.ops.image.map_coordinates(
                images[b, ..., c], coordinates, {"nearest": 0, "bilinear": 1}[interpolation],
                mode, fill_value)
    return out


@pytest.mark.parametrize("interpolation, mode", [("bilinear", "reflect"), ("nearest", "wrap"),
                                                 ("bilinear", "constant")])
def test_elastic_transform_warps_as_keras_for_the_same_draws(interpolation, mode):
    noise = RNG.normal(size=(2, 3, 7, 9)).astype("float32")
    got = _displace(IMAGES, noise, 2.0, 1.2, interpolation, mode, 0.5)
    want = keras_displace(IMAGES, noise, 2.0, 1.2, interpolation, mode, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_elastic_transform_draws_by_seed_in_both_formats():
    first = ops.image.elastic_transform(IMAGES, 3.0, 1.0, seed=4)
    np.testing.assert_array_equal(first, ops.image.elastic_transform(IMAGES, 3.0, 1.0, seed=4))
    assert first.shape == IMAGES.shape and not np.allclose(first, IMAGES)
    assert not np.allclose(first, ops.image.elastic_transform(IMAGES, 3.0, 1.0, seed=5))
    moved = ops.image.elastic_transform(channels_first(IMAGES), 3.0, 1.0, seed=4,
                                        data_format="channels_first")
    np.testing.assert_allclose(moved, channels_first(first), rtol=1e-6)
    np.testing.assert_allclose(ops.image.elastic_transform(IMAGES, 0.0, 1.0), IMAGES,
                               rtol=1e-6)


# (name, extra inputs batched like the images, keyword arguments)
TRACED = [
    ("affine_transform", (SHIFTED,), {"interpolation": "bilinear", "fill_mode": "reflect"}),
    ("affine_transform", (SHIFTED,), {"interpolation": "nearest", "fill_mode": "constant",
                                      "fill_value": 0.5}),
    ("perspective_transform", (), {"start_points": CORNERS, "end_points": END[1]}),
]


def keras_want(name, images, extra, kwargs):
    fn = getattr(real_keras.ops.image, name)
    if name == "perspective_transform":  # Keras' JAX backend wants one point set per image
        points = {k: np.stack([v] * len(images)) for k, v in kwargs.items()}
        return np.asarray(fn(images, **points))
    return np.asarray(fn(images, *extra, **kwargs))


@pytest.mark.parametrize("name, extra, kwargs", TRACED, ids=[t[0] for t in TRACED])
def test_traced_on_an_unknown_batch_under_function_and_in_a_model(name, extra, kwargs):
    fn = getattr(ops.image, name)
    inputs = [keras.Input(IMAGES.shape[1:])] + [keras.Input(e.shape[1:]) for e in extra]
    model = keras.Model(inputs, fn(*inputs, **kwargs))
    compiled = tf.function(lambda *t: fn(*t, **kwargs))
    for batch in (1, 3):
        arrays = [IMAGES[:batch]] + [e[:batch] for e in extra]
        want = keras_want(name, arrays[0], [a for a in arrays[1:]], kwargs)
        np.testing.assert_allclose(run_traced(lambda *t: fn(*t, **kwargs), *arrays), want,
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.predict(arrays, verbose=0), want, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(np.asarray(compiled(*arrays)), want, rtol=1e-5, atol=1e-5)


def test_elastic_transform_traced_on_an_unknown_batch():
    out = run_traced(lambda x: ops.image.elastic_transform(x, 2.0, 1.0, seed=3), IMAGES)
    assert out.shape == IMAGES.shape and np.all(np.isfinite(out))
    assert np.all(out >= IMAGES.min() - 1e-6) and np.all(out <= IMAGES.max() + 1e-6)


@pytest.mark.parametrize("mode", ["constant", "mirror", "reflect"])
def test_gradients_equal_jax_grad_through_real_keras(mode):
    weights = RNG.normal(size=IMAGES.shape).astype("float32")
    variable = tf.Variable(IMAGES)
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.image.affine_transform(variable, SHIFTED, fill_mode=mode) * weights)
    (grad,) = tape.gradient(loss, [variable])
    expected = jax.grad(lambda x: (real_keras.ops.image.affine_transform(
        x, SHIFTED, fill_mode=mode) * weights).sum())(IMAGES)
    np.testing.assert_allclose(grad, np.asarray(expected), rtol=1e-4, atol=1e-4)


def test_map_coordinates_gradients_reach_inputs_and_coordinates():
    inputs = RNG.normal(size=(5, 6)).astype("float32")
    coordinates = RNG.uniform(-1, 6, size=(2, 7)).astype("float32")
    weights = RNG.normal(size=(7,)).astype("float32")
    x, c = tf.Variable(inputs), tf.Variable(coordinates)
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.image.map_coordinates(x, c, 1, "wrap") * weights)
    grads = tape.gradient(loss, [x, c])
    expected = jax.grad(lambda a, b: (real_keras.ops.image.map_coordinates(
        a, b, 1, "wrap") * weights).sum(), argnums=(0, 1))(inputs, coordinates)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, np.asarray(e), rtol=1e-4, atol=1e-4)


def test_gradients_match_central_differences_in_float64():
    images = IMAGES[:1].astype("float64")
    coordinates = RNG.uniform(-1, 6, size=(2, 7)) + 0.3  # away from grid lines
    check_central_differences(
        lambda x: ops.image.affine_transform(x, SHIFTED[:1].astype("float64"),
                                             fill_mode="mirror"), images)
    check_central_differences(
        lambda x: ops.image.perspective_transform(x, CORNERS, END[0]), images)
    check_central_differences(
        lambda c: ops.image.map_coordinates(IMAGES[0, ..., 0].astype("float64"), c, 1,
                                            "reflect"), coordinates)


def test_typed_errors_quote_the_bad_value():
    with pytest.raises(ValueError, match="fill_mode='edge'"):
        ops.image.affine_transform(IMAGES, SHIFTED, fill_mode="edge")
    with pytest.raises(ValueError, match="interpolation='bicubic'"):
        ops.image.perspective_transform(IMAGES, START, END, "bicubic")
    with pytest.raises(ValueError, match=r"transform.shape=\(3, 6\)"):
        ops.image.affine_transform(IMAGES, SHIFTED[:, :6])
    with pytest.raises(ValueError, match="order=3"):
        ops.image.map_coordinates(IMAGES[0, ..., 0], np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match="coordinate leading dim of 3"):
        ops.image.map_coordinates(IMAGES[0, ..., 0], np.zeros((3, 3)), 1)
    with pytest.raises(ValueError, match=r"Received shape: \(4, 3\)"):
        ops.image.perspective_transform(IMAGES, np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="images.shape=\\(7, 9\\)"):
        ops.image.elastic_transform(IMAGES[0, ..., 0])
