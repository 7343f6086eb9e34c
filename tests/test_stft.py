"""keras.ops.stft / istft (frames, windows and DFT matmuls over (real, imag) pairs): eager
against real Keras 3 (JAX backend), traced on an unknown batch on onnxruntime and under
kgraph.function, gradients against jax.grad and float64 central differences, typed errors."""
from __future__ import annotations

import jax
import keras as real_keras
import numpy as np
import pytest
import scipy.signal

import kgraph as tf
from kgraph import keras
from kgraph.compiler.autodiff import gradients
from kgraph.compiler.build import compile_graph
from kgraph.ir.graph import Graph, tracing

from test_fourier_and_patches import run_traced  # noqa: E402 - unknown batch, onnxruntime

ops = keras.ops
RNG = np.random.default_rng(3)
SIGNAL = RNG.normal(size=(3, 2, 50)).astype("float32")
WINDOW = RNG.uniform(0.2, 1.0, size=12).astype("float32")

# (sequence_length, sequence_stride, fft_length, window, center)
CASES = [(16, 4, 16, "hann", True), (12, 5, 16, "hamming", False), (15, 3, 17, None, True),
         (12, 3, 12, WINDOW, False), (10, 3, 10, "hann", False), (6, 7, 8, "hamming", True)]
IDS = [f"{s}-{h}-{n}-{w if isinstance(w, str) or w is None else 'array'}-{c}"
       for s, h, n, w, c in CASES]


def check_central_differences(fn, array, eps=1e-6, directions=3):
    """d sum(fn(x) * W) / dx from kgraph's autodiff, float64, against central differences
    along random directions."""
    graph = Graph("fd")
    ph = graph.placeholder("x", array.shape, "float64")
    with tracing(graph):
        out = fn(ph)
        weights = np.random.default_rng(1).normal(size=tuple(out.shape))
        loss = ops.sum(out * graph.constant(weights))
        (grad,) = gradients(graph, loss, [ph])
    graph.set_outputs({"loss": loss, "grad": grad})
    compiled = compile_graph(graph, "numpy")
    analytic = compiled.run({"x": array})[1]
    rng = np.random.default_rng(2)
    for _ in range(directions):
        direction = rng.normal(size=array.shape)
        plus = compiled.run({"x": array + eps * direction})[0]
        minus = compiled.run({"x": array - eps * direction})[0]
        np.testing.assert_allclose(np.sum(analytic * direction), (plus - minus) / (2 * eps),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("length, stride, fft_length, window, center", CASES, ids=IDS)
def test_stft_and_istft_equal_real_keras(length, stride, fft_length, window, center):
    want = real_keras.ops.stft(SIGNAL, length, stride, fft_length, window, center)
    got = ops.stft(SIGNAL, length, stride, fft_length, window, center)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == np.float32
        np.testing.assert_allclose(g, np.asarray(w), rtol=1e-5, atol=1e-5)
    for size in (None, 30):
        back = ops.istft(got, length, stride, fft_length, size, window, center)
        expected = np.asarray(real_keras.ops.istft(want, length, stride, fft_length, size,
                                                   window, center))
        assert back.shape == expected.shape
        np.testing.assert_allclose(back, expected, rtol=1e-4, atol=1e-4)


def test_istft_with_the_stride_equal_to_fft_length_follows_scipy():
    # Keras' JAX istft passes noverlap=0 on to jax.scipy.signal.istft, which reads 0 as "not
    # given" and overlaps by half a frame; scipy's istft (Keras' numpy backend) does not
    pair = ops.stft(SIGNAL, 8, 8, 8, "hann", True)
    window = scipy.signal.get_window("hann", 8)
    _, signal = scipy.signal.istft(pair[0] + 1j * pair[1], window=window, nperseg=8,
                                   noverlap=0, nfft=8, boundary=False, time_axis=-2,
                                   freq_axis=-1)
    want = (signal / window.sum())[..., 4:-4]
    np.testing.assert_allclose(ops.istft(pair, 8, 8, 8), want, rtol=1e-5, atol=1e-5)


def test_istft_inverts_stft():
    signal = SIGNAL.astype("float64")
    back = ops.istft(ops.stft(signal, 16, 4, 16), 16, 4, 16, length=50)
    np.testing.assert_allclose(back, signal, rtol=1e-9, atol=1e-9)


def test_traced_on_an_unknown_batch_and_under_kgraph_function():
    want = real_keras.ops.stft(SIGNAL, 16, 4, 16)
    got = run_traced(lambda x: ops.stft(x, 16, 4, 16)[1], SIGNAL)
    np.testing.assert_allclose(got, np.asarray(want[1]), rtol=1e-5, atol=1e-5)
    real, imag = (np.asarray(w) for w in want)
    back = run_traced(lambda re, im: ops.istft((re, im), 16, 4, 16), real, imag)
    np.testing.assert_allclose(back, np.asarray(real_keras.ops.istft(want, 16, 4, 16)),
                               rtol=1e-4, atol=1e-4)
    compiled = tf.function(lambda x: ops.stft(x, 12, 5, 16, "hamming", False)[0])
    for batch in (1, 3):
        np.testing.assert_allclose(
            np.asarray(compiled(SIGNAL[:batch])),
            np.asarray(real_keras.ops.stft(SIGNAL[:batch], 12, 5, 16, "hamming", False)[0]),
            rtol=1e-5, atol=1e-5)


def test_in_a_functional_model_at_two_batch_sizes():
    inputs = keras.Input((2, 50))
    real, imag = ops.stft(inputs, 16, 4, 16)
    model = keras.Model(inputs, ops.istft((real, imag), 16, 4, 16, length=50))
    for batch in (1, 3):
        np.testing.assert_allclose(model.predict(SIGNAL[:batch], verbose=0), SIGNAL[:batch],
                                   rtol=1e-4, atol=1e-4)


def test_gradients_equal_jax_grad_through_real_keras():
    weights = RNG.normal(size=(3, 2, 13, 9)).astype("float32")

    def loss(stft, x):
        real, imag = stft(x, 16, 4, 16, "hann", True)
        return (real * weights).sum() + (imag * weights * 0.5).sum()

    variable = tf.Variable(SIGNAL)
    with tf.GradientTape() as tape:
        value = ops.sum(ops.stft(variable, 16, 4, 16)[0] * weights) + ops.sum(
            ops.stft(variable, 16, 4, 16)[1] * weights * 0.5)
    (grad,) = tape.gradient(value, [variable])
    expected = jax.grad(lambda x: loss(real_keras.ops.stft, x))(SIGNAL)
    np.testing.assert_allclose(grad, np.asarray(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("length, stride, fft_length, window, center", CASES[:3], ids=IDS[:3])
def test_gradients_match_central_differences_in_float64(length, stride, fft_length, window,
                                                         center):
    signal = SIGNAL[:1].astype("float64")
    check_central_differences(lambda x: ops.stft(x, length, stride, fft_length, window,
                                                 center)[1], signal)
    real, imag = ops.stft(signal, length, stride, fft_length, window, center)
    check_central_differences(lambda re: ops.istft((re, ops.zeros_like(re)), length, stride,
                                                   fft_length, None, window, center),
                              np.asarray(real))


def test_typed_errors_quote_the_bad_value():
    with pytest.raises(ValueError, match="sequence_stride=0"):
        ops.stft(SIGNAL, 8, 0, 8)
    with pytest.raises(ValueError, match="fft_length=8"):
        ops.stft(SIGNAL, 16, 4, 8)
    with pytest.raises(ValueError, match="window='bartlett'"):
        ops.stft(SIGNAL, 8, 4, 8, "bartlett")
    with pytest.raises(ValueError, match=r"window shape=\(12,\)"):
        ops.stft(SIGNAL, 8, 4, 8, WINDOW)
    with pytest.raises(TypeError, match="input type=int32"):
        ops.stft(SIGNAL.astype("int32"), 8, 4, 8)
    with pytest.raises(ValueError, match=r"istft: expects a tuple \(real, imag\)"):
        ops.istft(SIGNAL, 8, 4, 8)
