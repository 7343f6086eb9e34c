"""keras.ops.fft/fft2/ifft2/rfft/irfft (DFT matmuls over (real, imag) pairs) and
keras.ops.image.extract_patches (an identity-kernel convolution): eager against numpy.fft and
real Keras, traced on an unknown batch on onnxruntime, gradients against the transform's
adjoint; broadcast_to a traced `ops.shape` with an unknown batch."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing

ops = keras.ops
RNG = np.random.default_rng(0)
RE = RNG.normal(size=(3, 6, 8)).astype("float32")
IM = RNG.normal(size=(3, 6, 8)).astype("float32")


def run_traced(fn, *arrays):
    """Trace `fn` on placeholders with an unknown first dim and run it on onnxruntime."""
    graph = Graph("fourier")
    phs = [graph.placeholder(f"in{i}", (None,) + a.shape[1:], a.dtype)
           for i, a in enumerate(arrays)]
    with tracing(graph):
        out = fn(*phs)
    graph.set_outputs({"out": out})
    compiled = compile_graph(graph)
    return compiled.to_numpy(compiled.run({f"in{i}": a for i, a in enumerate(arrays)})[0])


def complex_of(pair):
    return np.asarray(pair[0]) + 1j * np.asarray(pair[1])


@pytest.mark.parametrize("name, got, want", [
    ("fft", lambda: ops.fft((RE, IM)), lambda: np.fft.fft(RE + 1j * IM)),
    ("fft2", lambda: ops.fft2((RE, IM)), lambda: np.fft.fft2(RE + 1j * IM)),
    ("ifft2", lambda: ops.ifft2((RE, IM)), lambda: np.fft.ifft2(RE + 1j * IM)),
    ("rfft", lambda: ops.rfft(RE), lambda: np.fft.rfft(RE)),
    ("rfft_cut", lambda: ops.rfft(RE, 5), lambda: np.fft.rfft(RE, 5)),
    ("rfft_padded", lambda: ops.rfft(RE, 11), lambda: np.fft.rfft(RE, 11)),
])
def test_transforms_match_numpy_fft(name, got, want):
    np.testing.assert_allclose(complex_of(got()), want(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [None, 5, 8, 11, 20])
def test_irfft_matches_numpy_and_inverts_rfft(length):
    np.testing.assert_allclose(ops.irfft((RE, IM), length), np.fft.irfft(RE + 1j * IM, length),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ops.irfft(ops.rfft(RE), 8), RE, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["fft", "fft2", "ifft2"])
def test_transforms_equal_real_keras(name):
    real_keras = pytest.importorskip("keras")
    want = getattr(real_keras.ops, name)((RE, IM))
    got = getattr(ops, name)((RE, IM))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)


def test_fft2_traced_on_an_unknown_batch():
    got = run_traced(lambda re, im: ops.fft2((re, im))[1], RE, IM)
    np.testing.assert_allclose(got, np.fft.fft2(RE + 1j * IM).imag, rtol=1e-5, atol=1e-5)


def test_fft2_gradient_is_the_adjoint_transform():
    # loss = sum(w * real(fft2(x))): d loss / dx = real(conj(F) w) summed over both axes
    x = tf.Variable(RE)
    weights = RNG.normal(size=RE.shape).astype("float32")
    with tf.GradientTape() as tape:
        real, _ = ops.fft2((x, ops.zeros_like(x)))
        loss = ops.sum(real * weights)
    (grad,) = tape.gradient(loss, [x])
    np.testing.assert_allclose(grad, np.fft.fft2(weights).real, rtol=1e-4, atol=1e-4)


def test_fft_needs_a_real_imag_pair():
    with pytest.raises(ValueError, match=r"fft: expects a tuple \(real, imag\)"):
        ops.fft(RE)


@pytest.mark.parametrize("kwargs", [
    {"size": 4}, {"size": (3, 2), "strides": (2, 3)}, {"size": 3, "padding": "same"},
    {"size": (2, 2), "strides": 1, "dilation_rate": 2}])
def test_extract_patches_equals_real_keras(kwargs):
    real_keras = pytest.importorskip("keras")
    images = RNG.normal(size=(2, 12, 10, 3)).astype("float32")
    want = np.asarray(real_keras.ops.image.extract_patches(images, **kwargs))
    np.testing.assert_array_equal(ops.image.extract_patches(images, **kwargs), want)
    np.testing.assert_array_equal(ops.image.extract_patches(images[0], **kwargs), want[0])


def test_extract_patches_lays_out_each_window_row_major():
    images = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    patches = ops.image.extract_patches(images, 2)
    assert patches.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(patches[1, 0, 1], images[1, 0:2, 2:4].reshape(-1))
    volumes = np.arange(4 * 4 * 4, dtype="float32").reshape(1, 4, 4, 4, 1)
    cubes = ops.image.extract_patches_3d(volumes, 2)
    np.testing.assert_array_equal(cubes[0, 1, 0, 1], volumes[0, 2:4, 0:2, 2:4].reshape(-1))


def test_extract_patches_traced_and_broadcast_to_a_traced_shape():
    images = RNG.normal(size=(3, 8, 8, 2)).astype("float32")
    table = RNG.normal(size=(4, 32)).astype("float32")

    def patches_plus_table(x):
        patches = ops.image.extract_patches(x, 4)
        patches = ops.reshape(patches, (ops.shape(patches)[0], 4, 32))
        return patches + ops.broadcast_to(table, ops.shape(patches))

    want = ops.image.extract_patches(images, 4).reshape(3, 4, 32) + table
    np.testing.assert_allclose(run_traced(patches_plus_table, images), want, rtol=1e-6)
