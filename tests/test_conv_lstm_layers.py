"""ConvLSTM1D/2D/3D against a numpy implementation of Keras' ConvLSTMCell equations (direct
n-d correlation, TF "SAME" padding), weights and configs, and training through `fit`."""
from __future__ import annotations

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras

L = keras.layers


def np_conv(x, kernel, padding):
    """Channels-last n-d correlation, stride 1: x (batch, *spatial, in), kernel
    (*window, in, out)."""
    window = kernel.shape[:-2]
    if padding == "same":
        pads = [(0, 0)] + [((k - 1) // 2, k - 1 - (k - 1) // 2) for k in window] + [(0, 0)]
        x = np.pad(x, pads)
    patches = np.lib.stride_tricks.sliding_window_view(x, window, axis=tuple(
        range(1, len(window) + 1)))  # (batch, *out, in, *window)
    letters = "ijk"[:len(window)]
    return np.einsum(f"b...c{letters},{letters}co->b...o", patches, kernel)


def np_conv_lstm(x, kernel, recurrent, bias, padding, backwards=False):
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    steps = range(x.shape[1] - 1, -1, -1) if backwards else range(x.shape[1])
    h = c = None
    outputs = []
    for t in steps:
        z = np_conv(x[:, t], kernel, padding) + bias
        if h is None:
            h = c = np.zeros(z.shape[:-1] + (kernel.shape[-1] // 4,))
        z = z + np_conv(h, recurrent, "same")
        i, f, g, o = np.split(z, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, 1), h, c


@pytest.mark.parametrize("cls, shape, kwargs", [
    (L.ConvLSTM1D, (2, 4, 7, 3), {"filters": 2, "kernel_size": 3}),
    (L.ConvLSTM2D, (2, 3, 5, 4, 2), {"filters": 3, "kernel_size": (3, 2), "padding": "same"}),
    (L.ConvLSTM2D, (2, 3, 5, 4, 2), {"filters": 2, "kernel_size": 2, "go_backwards": True}),
    (L.ConvLSTM3D, (1, 2, 4, 3, 4, 1), {"filters": 2, "kernel_size": 2, "padding": "same"}),
])
def test_conv_lstm_matches_numpy_reference(cls, shape, kwargs):
    layer = cls(return_sequences=True, return_state=True, **kwargs)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    sequence, h, c = layer(x)
    kernel, recurrent, bias = [w.astype(np.float64) for w in layer.get_weights()]
    assert [w.path for w in layer.weights] == ["conv_lstm_cell/kernel",
                                               "conv_lstm_cell/recurrent_kernel",
                                               "conv_lstm_cell/bias"]
    filters = kwargs["filters"]
    assert kernel.shape[-2:] == (shape[-1], 4 * filters)
    assert recurrent.shape[-2:] == (filters, 4 * filters)
    np.testing.assert_array_equal(bias, np.r_[np.zeros(filters), np.ones(filters),
                                              np.zeros(2 * filters)])  # unit_forget_bias
    bias = np.random.default_rng(1).normal(size=bias.shape)
    layer.set_weights([kernel.astype("float32"), recurrent.astype("float32"),
                       bias.astype("float32")])
    sequence, h, c = layer(x)
    want = np_conv_lstm(x.astype(np.float64), kernel, recurrent, bias,
                        kwargs.get("padding", "valid"), kwargs.get("go_backwards", False))
    for got, ref in zip((sequence, h, c), want):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_conv_lstm_harness_config_and_training():
    run_layer_test(L.ConvLSTM2D, {"filters": 2, "kernel_size": 2, "padding": "same"},
                   (2, 3, 4, 4, 1), expected_output_shape=(2, 4, 4, 2),
                   expected_num_trainable_weights=3)
    config = L.ConvLSTM1D(2, 3, return_sequences=True).get_config()
    assert config["kernel_size"] == (3,) and config["recurrent_initializer"]["class_name"] \
        == "Orthogonal"
    with pytest.raises(NotImplementedError, match="dropout"):
        L.ConvLSTM2D(2, 3, dropout=0.1)
    with pytest.raises(ValueError, match="rank 5"):
        L.ConvLSTM2D(2, 3)(np.zeros((2, 3, 4, 1), "float32"))


def test_a_functional_model_with_an_open_number_of_frames_runs_each_length():
    """`Input(shape=(None, h, w, c))` (the keras.io next-frame example): building the model
    needs only types; each call unrolls the length it is given, and a ConvLSTM called eagerly
    on an open length still says why it cannot."""
    from kgraph import keras as k

    inputs = k.Input((None, 6, 6, 1))
    outputs = k.layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)(inputs)
    model = k.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, None, 6, 6, 2)
    video = np.random.default_rng(0).normal(size=(1, 4, 6, 6, 1)).astype("float32")
    short, long = (model.predict(video[:, :frames], verbose=0) for frames in (2, 4))
    assert short.shape == (1, 2, 6, 6, 2) and long.shape == (1, 4, 6, 6, 2)
    # the first two outputs of the longer run are the shorter run's (a causal recurrence)
    np.testing.assert_allclose(long[:, :2], short, rtol=1e-5, atol=1e-6)
