"""keras.ops.jvp (the double-vjp trick over kgraph's reverse mode): eager against real Keras 3
(`jax.jvp` on the JAX backend) for elementwise, matmul, softmax, convolution, pooling, gather
and normalization functions, several primals and outputs, `has_aux`; traced under
kgraph.function and in a functional model at two batch sizes; float64 central differences;
typed errors."""
from __future__ import annotations

import keras as real_keras
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras

ops = keras.ops
RNG = np.random.default_rng(9)
X = RNG.normal(size=(2, 6, 5, 3)).astype("float32")
W = RNG.normal(size=(3, 3, 3, 4)).astype("float32")
M = RNG.normal(size=(4, 7)).astype("float32")


def tangent_like(*arrays):
    return tuple(RNG.normal(size=np.shape(a)).astype("float32") for a in arrays)


def mlp(ops_):
    return lambda x, m: ops_.softmax(ops_.tanh(ops_.matmul(ops_.relu(x[..., :1, :4, 0]), m)))


def conv_pool(ops_):
    return lambda x, w: ops_.max_pool(ops_.sigmoid(ops_.conv(x, w, padding="same")), (2, 2), (2, 2))


def gather_norm(ops_):
    return lambda x: ops_.take(x / ops_.sqrt(ops_.mean(x * x, axis=-1, keepdims=True) + 1e-3),
                               np.array([2, 0, 2]), axis=1)


def two_outputs(ops_):
    return lambda x, m: (ops_.sum(ops_.exp(x), axis=(1, 2)), ops_.abs(m) * ops_.sin(m))


CASES = [("sin", lambda o: o.sin, (np.float32(0.1),)), ("mlp", mlp, (X, M)),
         ("conv_pool", conv_pool, (X, W)), ("gather_norm", gather_norm, (X,)),
         ("two_outputs", two_outputs, (X, M))]


def flat(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


@pytest.mark.parametrize("name, make, primals", CASES, ids=[c[0] for c in CASES])
def test_jvp_equals_real_keras(name, make, primals):
    tangents = tangent_like(*primals)
    out, tangent_out = ops.jvp(make(ops), primals, tangents)
    want_out, want_tangent = real_keras.ops.jvp(make(real_keras.ops), primals, tangents)
    for got, want in zip(flat(out) + flat(tangent_out), flat(want_out) + flat(want_tangent)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_has_aux_returns_the_auxiliary_data():
    def fun(x):
        return ops.square(x), {"scale": 2.0}

    out, tangent, aux = ops.jvp(lambda x: (ops.square(x), ops.sum(x)), (M,), (M,),
                                has_aux=True)
    np.testing.assert_allclose(tangent, 2 * M * M, rtol=1e-6)
    np.testing.assert_allclose(aux, M.sum(), rtol=1e-5)
    assert ops.jvp(fun, (M,), (M,), has_aux=True)[2] == {"scale": 2.0}


def test_jvp_traced_under_function_and_in_a_model_at_two_batch_sizes():
    fun = mlp(ops)
    direction = RNG.normal(size=M.shape).astype("float32")

    def tangent_of(x):
        return ops.jvp(lambda m: fun(x, m), (M,), (direction,))[1]

    compiled = tf.function(lambda x: ops.jvp(fun, (x, M), (x, direction))[1])
    inputs = keras.Input(X.shape[1:])
    model = keras.Model(inputs, keras.layers.Lambda(tangent_of)(inputs))
    for batch in (1, 2):
        x = X[:batch]
        want = np.asarray(real_keras.ops.jvp(mlp(real_keras.ops), (x, M), (x, direction))[1])
        np.testing.assert_allclose(np.asarray(compiled(x)), want, rtol=1e-5, atol=1e-5)
        want_m = np.asarray(real_keras.ops.jvp(lambda m: mlp(real_keras.ops)(x, m), (M,),
                                               (direction,))[1])
        np.testing.assert_allclose(model.predict(x, verbose=0), want_m, rtol=1e-5, atol=1e-5)


def test_jvp_matches_central_differences_in_float64():
    x, w = X[:1].astype("float64"), W.astype("float64")
    tx, tw = (t.astype("float64") for t in tangent_like(x, w))
    fun = conv_pool(ops)
    _, tangent = ops.jvp(fun, (x, w), (tx, tw))
    eps = 1e-6
    numeric = (np.asarray(fun(x + eps * tx, w + eps * tw)) -
               np.asarray(fun(x - eps * tx, w - eps * tw))) / (2 * eps)
    np.testing.assert_allclose(tangent, numeric, rtol=1e-6, atol=1e-6)


def test_typed_errors_quote_the_bad_value():
    with pytest.raises(ValueError, match="same length. Received: 2 primals and 1 tangents"):
        ops.jvp(ops.add, (M, M), (M,))
    with pytest.raises(ValueError, match=r"tangent shape \(7, 4\)"):
        ops.jvp(ops.sin, (M,), (M.T,))
    with pytest.raises(TypeError, match="dtype int32"):
        ops.jvp(ops.sin, (np.arange(3, dtype="int32"),), (np.ones(3, "int32"),))
    with pytest.raises(TypeError, match="must be tuples or lists"):
        ops.jvp(ops.sin, M, M)
