"""`GradientTape.watch` on eager tensors, as TensorFlow's autodiff guide uses it: numpy
arithmetic on a watched tensor (`x * x`, `x ** 2`) is recorded while the tape records, so
`gradient` differentiates with respect to constants and input batches, to any order."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras


def test_the_guides_first_example():
    x = tf.constant(3.0)
    with tf.GradientTape() as g:
        g.watch(x)
        y = x * x
    dy_dx = g.gradient(y, x)
    assert float(dy_dx) == 6.0


def test_unwatched_constant_gets_no_gradient_and_numpy_stays_numpy():
    x = tf.constant(3.0)
    with tf.GradientTape() as g:
        y = x * x
    assert isinstance(y, type(x))  # not recorded: an eager tensor, as before
    assert g.gradient(y, x) is None
    assert float(x * x) == 9.0 and isinstance(x * x, type(x))


def test_persistent_tape_chain_matches_finite_differences():
    x0 = np.array([1.0, 2.0, -0.5], np.float32)
    x = tf.constant(x0)
    with tf.GradientTape(persistent=True) as t:
        t.watch(x)
        y = tf.reduce_sum(x ** 2 / 4.0 - np.sin(x))
        z = tf.exp(y) * 0.5
    np.testing.assert_allclose(t.gradient(y, x), x0 / 2 - np.cos(x0), rtol=1e-6)

    def f(v):
        return 0.5 * np.exp(np.sum(v ** 2 / 4.0 - np.sin(v)))

    x64, eps = x0.astype(np.float64), 1e-6
    numeric = [(f(x64 + eps * e) - f(x64 - eps * e)) / (2 * eps) for e in np.eye(3)]
    np.testing.assert_allclose(t.gradient(z, x), numeric, rtol=1e-5)


def test_nested_tapes_give_the_second_derivative():
    x = tf.constant(3.0)
    with tf.GradientTape() as g:
        g.watch(x)
        with tf.GradientTape() as gg:
            gg.watch(x)
            y = x * x * x
        dy_dx = gg.gradient(y, x)
    d2y_dx2 = g.gradient(dy_dx, x)
    assert float(dy_dx) == pytest.approx(27.0)
    assert float(d2y_dx2) == pytest.approx(18.0)


def test_gradient_with_respect_to_a_watched_input_batch():
    """The fast-gradient-sign pattern: an input batch converted to a tensor, scaled with
    numpy arithmetic, through a model; d loss / d input against finite differences."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.Dense(1)])
    batch = np.random.default_rng(0).normal(size=(2, 4)).astype("float32")
    image = tf.convert_to_tensor(batch)
    with tf.GradientTape() as tape:
        tape.watch(image)
        prediction = model(image * 2.0 - 1.0)
        loss = tf.reduce_mean(tf.square(prediction))
    gradient = np.asarray(tape.gradient(loss, image))
    assert gradient.shape == (2, 4)

    def loss_of(b):
        return float(np.mean(np.square(model.predict(b * 2.0 - 1.0, verbose=0))))

    eps = 1e-2
    for i, j in [(0, 0), (1, 3)]:
        step = np.zeros_like(batch)
        step[i, j] = eps
        numeric = (loss_of(batch + step) - loss_of(batch - step)) / (2 * eps)
        assert gradient[i, j] == pytest.approx(numeric, rel=2e-2, abs=1e-4)


def test_eager_tensor_ufuncs_keep_numpys_results():
    v = tf.constant([0.0, 1.0, 2.0])
    assert isinstance(v * 2, type(v)) and isinstance(np.sum(v), type(v))
    q, r = np.divmod(v, 2)
    assert isinstance(q, type(v)) and np.array_equal(r, [0.0, 1.0, 0.0])
    out = np.zeros(3, np.float32)
    assert np.add(v, 1, out=out) is out and np.array_equal(out, [1.0, 2.0, 3.0])


def test_recorded_tensors_print_and_format_their_values():
    """`print(loss)` and `f"{loss:.4f}"` inside an eager tape show the value, as TensorFlow's
    eager tensors do; a tensor of a graph being compiled prints its description."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="ones")])
    x = np.ones((2, 3), np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model(x) ** 2)
        assert str(loss) == "9.0" and f"{loss:.2f}" == "9.00"
    assert f"step loss {loss:.1f}" == "step loss 9.0"
    assert tape.gradient(loss, model.trainable_weights)[0].shape == (3, 1)

    seen = []

    @tf.function
    def traced(v):
        seen.append(str(v * 2))
        return v * 2

    traced(np.ones(2, np.float32))
    assert seen[0].startswith("<Value")
