"""AutoGraph for `if` statements (kgraph/autograph.py): a Python `if` on a tensor inside
`tf.function` branches per value, as TensorFlow's AutoGraph makes it; Python conditions keep
Python's semantics. (A layer `call` branching on a random number per predict is the
migrating_to_keras_3 guide's test.)"""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.autograph import AutoGraphError


@tf.function
def _assigning(x, y):
    z = x
    if tf.reduce_sum(x) > 0:
        z = x * 10
        w = 1.0
    elif tf.reduce_sum(x) < -5:
        w = 3.0
    else:
        w = 2.0
    return z + w, y


def test_assignments_in_branches_are_selected_per_value():
    one = np.ones(3, np.float32)
    for x, expected in [(one, 11.0), (-one, 1.0), (-3 * one, 0.0)]:
        out, y = _assigning(x, 5)
        np.testing.assert_allclose(out, expected * one if expected else x + 3.0)
        assert y == 5


@tf.function
def _returning(x):
    if tf.reduce_max(x) > 1:
        return x / tf.reduce_max(x)
    return x


def test_returns_in_both_branches_and_after_the_if():
    np.testing.assert_allclose(_returning(np.array([2.0, 4.0], np.float32)), [0.5, 1.0])
    np.testing.assert_allclose(_returning(np.array([0.5, 1.0], np.float32)), [0.5, 1.0])


@tf.function
def _python_condition(x, scale):
    if scale > 1:  # a Python value: only the taken branch runs, as in Python
        only_here = x * scale
        return only_here
    for i in range(2):  # an `if` inside a Python loop is converted too
        if tf.reduce_sum(x) > i:
            x = x + 1.0
    return x


def test_python_conditions_and_ifs_in_loops():
    x = np.zeros(2, np.float32)
    np.testing.assert_allclose(_python_condition(x + 1, 3), [3.0, 3.0])
    np.testing.assert_allclose(_python_condition(x, 1), [0.0, 0.0])  # 0 > 0, 0 > 1: no
    np.testing.assert_allclose(_python_condition(x + 0.4, 1), [2.4, 2.4])  # 0.8 > 0, 2.8 > 1
    np.testing.assert_allclose(_python_condition(x - 0.1, 1), [-0.1, -0.1])


def test_gradients_flow_through_the_selected_branch():
    w = tf.Variable(3.0)

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            if tf.reduce_mean(x) > 0:
                y = tf.reduce_sum(x * w * w)
            else:
                y = tf.reduce_sum(x * w)
        return tape.gradient(y, w)

    x = np.array([1.0, 2.0], np.float32)
    assert float(grad(x)) == pytest.approx(2 * 3.0 * 3.0)  # d(sum(x) w^2)/dw = 2 w sum(x)
    assert float(grad(-x)) == pytest.approx(-3.0)


def test_zero_argument_super_in_a_converted_method():
    class Scaled(keras.layers.Dense):
        @tf.function
        def call(self, inputs):
            out = super().call(inputs)
            if tf.reduce_sum(inputs) < 0:
                out = -out
            return out

    layer = Scaled(2, kernel_initializer="ones")
    np.testing.assert_allclose(layer(np.ones((1, 3), np.float32)), [[3.0, 3.0]])
    np.testing.assert_allclose(layer(-np.ones((1, 3), np.float32)), [[3.0, 3.0]])


def test_refused_forms_name_the_problem():
    v = tf.Variable(0.0)

    @tf.function
    def assigns(x):
        if tf.reduce_sum(x) > 0:
            v.assign(1.0)
        return x

    with pytest.raises(AutoGraphError, match="assigns a variable"):
        assigns(np.ones(2, np.float32))

    @tf.function
    def one_sided(x):
        if tf.reduce_sum(x) > 0:
            fresh = x * 2
        return fresh

    with pytest.raises(AutoGraphError, match="only one branch"):
        one_sided(np.ones(2, np.float32))

    @tf.function(autograph=False)
    def unconverted(x):
        if tf.reduce_sum(x) > 0:
            return x
        return -x

    with pytest.raises(TypeError, match="no truth value"):
        unconverted(np.ones(2, np.float32))


def test_functions_without_an_if_or_source_are_left_as_they_are():
    from kgraph.autograph import convert

    def plain(x):
        return x + 1

    assert convert(plain) is plain
    square = eval("lambda x: x * x")  # noqa: S307 - no source to read
    assert convert(square) is square
    np.testing.assert_allclose(tf.function(square)(np.float32(3)), 9.0)


def test_free_variables_are_read_when_called_not_when_decorated():
    def make():
        scale = None

        @tf.function
        def step(x):
            if tf.reduce_sum(x) > 0:
                return x * scale
            return x

        scale = 3.0  # bound after the decoration, as a model built after its train step
        return step

    np.testing.assert_allclose(make()(np.ones(2, np.float32)), [3.0, 3.0])


def test_a_layer_call_stopped_by_an_if_on_a_tensor_runs_converted():
    """A user layer's `call` (not a tf.function) with an `if` on a tensor: converted when the
    traced call stops on it, as TensorFlow's AutoGraph converts what a compiled step calls;
    a loss added before the `if` is counted once."""

    class Normalize(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(tf.reduce_mean(inputs))
            if tf.reduce_max(inputs) > 1.0:
                inputs = inputs / tf.reduce_max(inputs)
            return inputs

    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(1, kernel_initializer="zeros")(Normalize()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "mse")
    big = np.array([[1.0, 2.0, 4.0]], np.float32)
    np.testing.assert_allclose(model.layers[1](big), [[0.25, 0.5, 1.0]])
    np.testing.assert_allclose(model.layers[1](big / 8), big / 8)
    loss = model.evaluate(big, np.zeros((1, 1), np.float32), verbose=0)
    assert loss == pytest.approx(7.0 / 3.0)  # the added loss once (mse is 0)
