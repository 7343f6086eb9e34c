"""TensorFlow shape idioms in functional builds and traced steps, and eager calls whose `call`
reads tensor values with numpy (the keras.io StyleGAN example's code as written)."""
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras

RNG = np.random.default_rng(0)


def test_nn_moments_matches_numpy():
    x = RNG.normal(size=(4, 3, 5)).astype("float32")
    mean, var = tf.nn.moments(x, axes=(0))
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, x.var(0), rtol=1e-5, atol=1e-6)
    mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    assert mean.shape == var.shape == (4, 1, 1)
    np.testing.assert_allclose(var, x.var((1, 2), keepdims=True), rtol=1e-5)
    assert hasattr(mean, "numpy")


def test_size_of_a_tensor_and_of_a_shape():
    x = np.zeros((2, 3, 4), "float32")
    assert int(tf.size(x)) == 24 and tf.size(x).dtype == "int32"
    assert int(tf.size(tf.shape(x))) == 3
    np.testing.assert_array_equal(tf.range(1, tf.size(tf.shape(x))), [1, 2])


def test_reduce_sum_over_a_tensor_of_axes_and_square_of_a_list():
    x = RNG.normal(size=(2, 3, 4)).astype("float32")
    np.testing.assert_allclose(tf.reduce_sum(x, axis=tf.range(1, 3)), x.sum((1, 2)), rtol=1e-5)
    # TensorFlow stacks a list of tensors given where a tensor goes
    squared = tf.square([x])
    assert squared.shape == (1, 2, 3, 4)
    np.testing.assert_allclose(squared[0], x**2, rtol=1e-6)


def _minibatch_std(input_tensor, epsilon=1e-8):
    n, h, w, c = tf.shape(input_tensor)
    group_size = tf.minimum(2, n)
    x = tf.reshape(input_tensor, [group_size, -1, h, w, c])
    _, group_var = tf.nn.moments(x, axes=(0), keepdims=False)
    avg_std = tf.reduce_mean(tf.sqrt(group_var + epsilon), axis=[1, 2, 3], keepdims=True)
    return tf.concat([input_tensor, tf.tile(avg_std, [group_size, h, w, 1])], axis=-1)


def _minibatch_std_numpy(x):
    grouped = x.reshape(2, -1, *x.shape[1:])
    avg = np.sqrt(grouped.var(0) + 1e-8).mean((1, 2, 3), keepdims=True)
    return np.concatenate([x, np.tile(avg, (2, *x.shape[1:3], 1))], -1)


def test_shape_of_a_functional_input_gives_the_batch_as_a_symbolic_scalar():
    inputs = keras.Input((3, 2, 4))
    n, h, w, c = tf.shape(inputs)
    assert (h, w, c) == (3, 2, 4) and isinstance(n, keras.KerasTensor)
    assert n.shape == () and "int" in str(n.dtype)
    model = keras.Model(inputs, _minibatch_std(inputs))
    assert model.output.shape == (None, 3, 2, 5)
    for batch in (4, 6):  # the run-time batch reaches tf.minimum/reshape/tile
        x = RNG.normal(size=(batch, 3, 2, 4)).astype("float32")
        np.testing.assert_allclose(model.predict(x, verbose=0), _minibatch_std_numpy(x),
                                   rtol=1e-5, atol=1e-6)


def test_ones_of_a_traced_batch_size():
    @tf.function
    def labels(x):
        batch_size = tf.shape(x)[0]
        return tf.ones(batch_size), -tf.ones(batch_size)

    ones, minus = labels(np.zeros((5, 2), "float32"))
    np.testing.assert_array_equal(ones, np.ones(5))
    np.testing.assert_array_equal(minus, -np.ones(5))


class _ToImages(keras.Model):
    """A subclassed model whose `call` ends in numpy, as the StyleGAN's does."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)

    def call(self, inputs):
        images = self.dense(inputs["z"]) * inputs.get("scale", 1.0)
        return np.clip((images * 0.5 + 0.5) * 255, 0, 255).astype(np.uint8)


def test_eager_call_whose_call_uses_numpy_runs_op_by_op():
    model = _ToImages()
    z = RNG.normal(size=(4, 2)).astype("float32")
    out = model({"z": z, "scale": 2.0})
    kernel, bias = (w.numpy() for w in model.dense.weights)
    want = np.clip(((z @ kernel + bias) * 2.0 * 0.5 + 0.5) * 255, 0, 255).astype(np.uint8)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, want)
    model.dense.kernel.assign(kernel * 3)  # the next call (op by op again) sees new weights
    want = np.clip(((z @ (kernel * 3) + bias) * 2.0 * 0.5 + 0.5) * 255, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(model({"z": z, "scale": 2.0}), want)


def test_eager_call_op_by_op_returns_eager_tensors():
    class Half(keras.layers.Layer):
        def call(self, x):
            if float(np.asarray(x).max()) > 10:  # a Python branch on a value
                return x / 2, np.asarray(x).shape
            return x, np.asarray(x).shape

    out, shape = Half()(np.full((2, 3), 20.0, "float32"))
    assert shape == (2, 3) and hasattr(out, "numpy")
    np.testing.assert_array_equal(out, np.full((2, 3), 10.0))
    out, _ = Half()(np.ones((2, 3), "float32"))
    np.testing.assert_array_equal(out, np.ones((2, 3)))


def test_symbolic_value_error_is_a_value_error():
    from kgraph.tape import SymbolicValueError

    with pytest.raises(SymbolicValueError, match="is symbolic"):
        tf.function(lambda x: np.asarray(x) + 1)(np.zeros(2, "float32"))
