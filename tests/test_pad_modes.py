"""`keras.ops.pad` (kgraph/ops/pad_api.py): numpy's modes against numpy and real Keras 3,
gradients against central differences, traced with an open batch, Keras' errors."""
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.keras import ops

X = np.random.default_rng(0).normal(size=(2, 4, 5, 3)).astype("float32")
CASES = [  # (pad_width, mode)
    (((0, 0), (1, 2), (3, 1), (0, 0)), "reflect"),
    (((0, 0), (2, 2), (1, 1), (0, 0)), "symmetric"),
    (((0, 0), (1, 0), (0, 4), (0, 0)), "edge"),
    (((0, 0), (3, 1), (2, 2), (0, 0)), "wrap"),
    (((0, 0), (6, 1), (1, 7), (0, 0)), "reflect"),  # wider than the axis: numpy repeats
    (((1, 1),), "symmetric"),
    (1, "edge"),
]


@pytest.mark.parametrize("pad_width, mode", CASES)
def test_modes_match_numpy(pad_width, mode):
    widths = np.broadcast_to(np.reshape(pad_width, (-1, 2)) if np.ndim(pad_width) else pad_width,
                             (4, 2))
    np.testing.assert_array_equal(ops.pad(X, pad_width, mode=mode), np.pad(X, widths, mode))


@pytest.mark.parametrize("pad_width, mode", CASES[:4] + [(((2, 3),), "reflect")])
def test_modes_match_real_keras(pad_width, mode):
    real = pytest.importorskip("keras")
    np.testing.assert_array_equal(ops.pad(X, pad_width, mode=mode),
                                  np.asarray(real.ops.pad(X, pad_width, mode=mode)))
    np.testing.assert_array_equal(ops.pad(X, pad_width, constant_values=1.5),
                                  np.asarray(real.ops.pad(X, pad_width, constant_values=1.5)))


@pytest.mark.parametrize("mode", ["reflect", "symmetric", "edge", "wrap"])
def test_gradient_sums_into_the_copied_positions(mode):
    x = tf.Variable(X[0, :, :, 0].astype("float64"))
    weights = np.random.default_rng(1).normal(size=(4 + 5, 5 + 6))
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.pad(x, ((2, 3), (4, 2)), mode=mode) * weights)
    grad = np.asarray(tape.gradient(loss, x))
    base = X[0, :, :, 0].astype("float64")
    numeric = np.zeros_like(base)
    for i in np.ndindex(base.shape):  # linear in x: exact differences
        bumped = base.copy()
        bumped[i] += 1.0
        numeric[i] = np.sum((np.pad(bumped, ((2, 3), (4, 2)), mode) -
                             np.pad(base, ((2, 3), (4, 2)), mode)) * weights)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


def test_traced_with_an_open_batch_in_a_model():
    inputs = keras.Input((4, 5, 3))
    outputs = keras.layers.Lambda(
        lambda t: ops.pad(t, ((0, 0), (1, 1), (2, 2), (0, 0)), mode="reflect"))(inputs)
    model = keras.Model(inputs, outputs)
    assert model.output.shape == (None, 6, 9, 3)
    for n in (2, 5):
        batch = np.repeat(X, 3, axis=0)[:n]
        np.testing.assert_array_equal(model.predict(batch, verbose=0),
                                      np.pad(batch, ((0, 0), (1, 1), (2, 2), (0, 0)), "reflect"))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="statistics modes.*mode='median'"):
        ops.pad(X, 1, mode="median")
    with pytest.raises(ValueError, match="constant_values=2.*mode='reflect'"):
        ops.pad(X, 1, mode="reflect", constant_values=2)
    with pytest.raises(ValueError, match=r"pad_width=\[1, 2, 3\]"):
        ops.pad(X, [1, 2, 3])
    with pytest.raises(ValueError, match="must not be negative"):
        ops.pad(X, -1)
    with pytest.raises(ValueError, match="mode='WRAP'"):
        tf.pad(X, [[0, 0]] * 4, mode="WRAP")

    @tf.function(input_signature=[tf.TensorSpec((None, 5), "float32")])
    def reflect_rows(t):
        return ops.pad(t, ((1, 1), (0, 0)), mode="reflect")

    with pytest.raises(Exception, match="known size along axis 0"):
        reflect_rows(X[0, :, :, 0])
