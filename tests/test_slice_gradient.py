"""The Slice gradient pads the upstream gradient back to the input's shape, also for a slice
that is empty because its stop lies before its start (the keras.io deep dream example's
`activation[:, 2:-2, 2:-2, :]` of a 3-wide feature map)."""
import numpy as np
import pytest

import kgraph as tf


@pytest.mark.parametrize("size", [3, 4, 5, 7])
def test_gradient_of_an_inner_slice_has_the_input_shape(size):
    x = tf.constant(np.arange(2 * size * 4, dtype="float32").reshape(2, size, 4))

    @tf.function
    def grad(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            loss = tf.reduce_sum(tf.square(v[:, 2:-2, 1:]))
        return tape.gradient(loss, v)

    expected = np.zeros((2, size, 4), "float32")
    expected[:, 2:-2, 1:] = 2 * np.asarray(x)[:, 2:-2, 1:]
    np.testing.assert_array_equal(grad(x), expected)
