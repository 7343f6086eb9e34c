"""keras.ops.image.scale_and_translate (per-axis weight matrices built with kgraph ops) and
keras.ops.image.ssim (Gaussian-window statistics by convolution): eager against real Keras 3
(JAX backend) for every method and data format, traced on an unknown batch (onnxruntime, a
traced scale and translation too), under kgraph.function and in a functional model at two
batch sizes, gradients against jax.grad and float64 central differences, typed errors."""
from __future__ import annotations

import jax
import keras as real_keras
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing

from test_fourier_and_patches import run_traced  # noqa: E402 - unknown batch, onnxruntime
from test_stft import check_central_differences  # noqa: E402 - float64 autodiff vs FD

ops = keras.ops
RNG = np.random.default_rng(5)
IMAGES = RNG.uniform(size=(3, 6, 7, 2)).astype("float32")
NOISY = np.clip(IMAGES + RNG.normal(scale=0.1, size=IMAGES.shape), 0, 1).astype("float32")
METHODS = ["linear", "bilinear", "trilinear", "cubic", "bicubic", "tricubic", "lanczos3",
           "lanczos5"]
# (output height, width, scale, translation): up, down, mixed with shifts
GEOMETRIES = [((9, 4), [1.6, 0.55], [0.3, -0.7]), ((3, 14), [0.5, 2.0], [0.0, 0.0]),
              ((6, 7), [1.0, 1.0], [1.25, -2.5])]


def arguments(geometry, images=IMAGES):
    (h, w), scale, translation = geometry
    return ((len(images), h, w, images.shape[-1]), np.array(scale, "float32"),
            np.array(translation, "float32"), (1, 2))


@pytest.mark.parametrize("antialias", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_scale_and_translate_equals_real_keras(method, antialias):
    aliases = method not in ("linear", "cubic", "lanczos3", "lanczos5")  # same kernels
    for geometry in GEOMETRIES[:1] if aliases else GEOMETRIES:
        args = (IMAGES, *arguments(geometry), method, antialias)
        np.testing.assert_allclose(ops.image.scale_and_translate(*args),
                                   np.asarray(real_keras.ops.image.scale_and_translate(*args)),
                                   rtol=1e-5, atol=1e-5)


def test_scale_and_translate_on_other_dims_and_int_images():
    signal = RNG.integers(0, 9, size=(5, 4)).astype("int32")
    args = (signal, (8, 4), np.array([1.7], "float32"), np.array([0.2], "float32"), (0,),
            "cubic")
    got = ops.image.scale_and_translate(*args)
    assert got.dtype == np.float32  # as JAX promotes integer images
    np.testing.assert_allclose(got, np.asarray(real_keras.ops.image.scale_and_translate(*args)),
                               rtol=1e-5, atol=1e-5)


def test_scale_and_translate_traced_with_a_traced_scale_and_translation():
    shape, scale, translation, dims = arguments(GEOMETRIES[0])
    graph = Graph("scale")
    x = graph.placeholder("x", (None,) + IMAGES.shape[1:], "float32")
    s = graph.placeholder("s", (2,), "float32")
    t = graph.placeholder("t", (2,), "float32")
    with tracing(graph):
        out = ops.image.scale_and_translate(x, shape, s, t, dims, "lanczos3")
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    for batch in (1, 3):
        got = compiled.to_numpy(compiled.run({"x": IMAGES[:batch], "s": scale,
                                              "t": translation})[0])
        want = real_keras.ops.image.scale_and_translate(
            IMAGES[:batch], (batch,) + shape[1:], scale, translation, dims, "lanczos3")
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_scale_and_translate_gradients_reach_images_scale_and_translation():
    shape, scale, translation, dims = arguments(GEOMETRIES[0])
    weights = RNG.normal(size=shape).astype("float32")
    variables = [tf.Variable(IMAGES), tf.Variable(scale), tf.Variable(translation)]
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.image.scale_and_translate(variables[0], shape, variables[1],
                                                     variables[2], dims, "cubic") * weights)
    grads = tape.gradient(loss, variables)
    expected = jax.grad(lambda x, s, t: (real_keras.ops.image.scale_and_translate(
        x, shape, s, t, dims, "cubic") * weights).sum(), argnums=(0, 1, 2))(
        IMAGES, scale, translation)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, np.asarray(e), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs", [{}, {"filter_size": 5, "filter_sigma": 0.8, "max_val": 2.0},
                                    {"filter_size": 3, "k1": 0.02, "k2": 0.05}])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_ssim_equals_real_keras(kwargs, data_format):
    a, b = (IMAGES, NOISY) if data_format == "channels_last" else (
        np.ascontiguousarray(np.moveaxis(x, -1, 1)) for x in (IMAGES, NOISY))
    if kwargs.get("filter_size", 11) > 6:  # the default 11x11 window needs larger images
        a, b = (np.tile(x, (1, 2, 2, 1) if data_format == "channels_last" else (1, 1, 2, 2))
                for x in (a, b))
    want = real_keras.ops.image.ssim(a, b, data_format=data_format, **kwargs)
    got = ops.image.ssim(a, b, data_format=data_format, **kwargs)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)
    one = ops.image.ssim(a[0], b[0], data_format=data_format, **kwargs)
    assert one.shape == ()
    np.testing.assert_allclose(one, np.asarray(want)[0], rtol=1e-5, atol=1e-5)


def test_ssim_of_an_image_with_itself_is_one():
    np.testing.assert_allclose(ops.image.ssim(IMAGES, IMAGES, filter_size=3), np.ones(3),
                               rtol=1e-6)


@pytest.mark.parametrize("name, fn", [
    ("ssim", lambda x: ops.image.ssim(x, x * 0.9 + 0.05, filter_size=3)),
    ("scale_and_translate", lambda x: ops.image.scale_and_translate(
        x, (keras.ops.shape(x)[0], 9, 4, 2), np.array([1.6, 0.55], "float32"),
        np.array([0.3, -0.7], "float32"), (1, 2), "lanczos5"))])
def test_traced_on_an_unknown_batch_under_function_and_in_a_model(name, fn):
    inputs = keras.Input(IMAGES.shape[1:])
    model = keras.Model(inputs, fn(inputs)) if name == "ssim" else None
    compiled = tf.function(fn)
    for batch in (1, 3):
        want = fn(IMAGES[:batch])
        np.testing.assert_allclose(run_traced(fn, IMAGES[:batch]), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(compiled(IMAGES[:batch])), want, rtol=1e-5,
                                   atol=1e-5)
        if model is not None:
            np.testing.assert_allclose(model.predict(IMAGES[:batch], verbose=0), want,
                                       rtol=1e-5, atol=1e-5)


def test_ssim_gradient_equals_jax_grad_through_real_keras():
    variable = tf.Variable(NOISY)
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.image.ssim(IMAGES, variable, filter_size=5) * [1.0, -2.0, 0.5])
    (grad,) = tape.gradient(loss, [variable])
    expected = jax.grad(lambda x: (real_keras.ops.image.ssim(IMAGES, x, filter_size=5) *
                                   np.array([1.0, -2.0, 0.5], "float32")).sum())(NOISY)
    np.testing.assert_allclose(grad, np.asarray(expected), rtol=1e-4, atol=1e-4)


def test_gradients_match_central_differences_in_float64():
    images = IMAGES[:2].astype("float64")
    check_central_differences(lambda x: ops.image.ssim(x, NOISY[:2].astype("float64"),
                                                       filter_size=3), images)
    check_central_differences(lambda x: ops.image.scale_and_translate(
        x, (2, 9, 4, 2), np.array([1.6, 0.55]), np.array([0.3, -0.7]), (1, 2), "cubic"),
        images)


def test_typed_errors_quote_the_bad_value():
    shape, scale, translation, dims = arguments(GEOMETRIES[0])
    with pytest.raises(ValueError, match="method='nearest'"):
        ops.image.scale_and_translate(IMAGES, shape, scale, translation, dims, "nearest")
    with pytest.raises(ValueError, match=r"output_shape=\(9, 4\)"):
        ops.image.scale_and_translate(IMAGES, (9, 4), scale, translation, dims, "linear")
    with pytest.raises(ValueError, match="scale="):
        ops.image.scale_and_translate(IMAGES, shape, scale[:1], translation, dims, "linear")
    with pytest.raises(ValueError, match=r"image2.shape=\(6, 7\)"):
        ops.image.ssim(IMAGES[0], IMAGES[0, ..., 0])


def tensorflow_ssim_reference(x, y, max_val, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """tf.image.ssim's definition in numpy: per channel, 'valid' Gaussian-window means m,
    luminance (2 m1 m2 + c1) / (m1^2 + m2^2 + c1) times contrast-structure
    (2 E[xy] - 2 m1 m2 + c2) / (E[x^2 + y^2] - m1^2 - m2^2 + c2), averaged."""
    from numpy.lib.stride_tricks import sliding_window_view

    g = np.exp(-0.5 * ((np.arange(size) - (size - 1) / 2) / sigma) ** 2)
    window = np.outer(g, g) / np.outer(g, g).sum()

    def mean(t):  # (batch, h, w, c) -> (batch, h', w', c)
        return np.einsum("bhwcij,ij->bhwc", sliding_window_view(t, (size, size), (1, 2)), window)

    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    m1, m2 = mean(x), mean(y)
    luminance = (2 * m1 * m2 + c1) / (m1 ** 2 + m2 ** 2 + c1)
    structure = (2 * mean(x * y) - 2 * m1 * m2 + c2) / (mean(x * x + y * y) - m1 ** 2 - m2 ** 2
                                                        + c2)
    return (luminance * structure).mean(axis=(1, 2, 3))


def test_tf_image_ssim_is_tensorflows_definition_with_its_dtype_conversion():
    a = np.tile(IMAGES, (1, 2, 2, 1)).astype("float64")
    b = np.tile(NOISY, (1, 2, 2, 1)).astype("float64")
    want = tensorflow_ssim_reference(a, b, 1.0)
    got = tf.image.ssim(a.astype("float32"), b.astype("float32"), max_val=1.0)
    assert np.asarray(got).dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    as_bytes = [np.round(x * 255).astype("uint8") for x in (a, b)]
    want = tensorflow_ssim_reference(*(x / 255.0 for x in as_bytes), 1.0)
    np.testing.assert_allclose(tf.image.ssim(*as_bytes, 255, filter_size=5),
                               tensorflow_ssim_reference(*(x / 255.0 for x in as_bytes), 1.0,
                                                         size=5), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tf.image.ssim(*as_bytes, max_val=255), want, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(NotImplementedError, match="return_index_map"):
        tf.image.ssim(a, b, 1.0, return_index_map=True)


@pytest.mark.parametrize("size,antialias", [((14, 5), False), ((3, 20), False),
                                            ((3, 4), True), ((16, 18), True)])
def test_resize_bicubic_matches_keras(size, antialias):
    # keras.io CaiT: tf.image.resize(..., method="bicubic") (Keras' JAX backend: Keys cubic,
    # a = -0.5, rows renormalized at the border; antialias widens it when downsampling)
    x = np.random.default_rng(0).random((2, 7, 9, 3)).astype("float32")
    want = np.asarray(real_keras.ops.image.resize(x, size, interpolation="bicubic",
                                                  antialias=antialias))
    got = keras.ops.image.resize(x, size, interpolation="bicubic", antialias=antialias)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tf.image.resize(x[0], size, method="bicubic",
                                               antialias=antialias), want[0], atol=1e-5)
    traced = tf.function(lambda images: keras.ops.image.resize(
        images, size, interpolation="bicubic", antialias=antialias))
    np.testing.assert_allclose(traced(x), want, rtol=1e-5, atol=1e-5)
