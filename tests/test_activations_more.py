"""The activations Keras 3 added (celu, glu, hard_shrink, hard_tanh, log_sigmoid, mish,
soft_shrink, sparse_plus, sparse_sigmoid, sparsemax, squareplus, tanh_shrink, threshold):
numpy references, gradients, use by name in layers, and equality with real Keras 3 on JAX
where it is installed (sparsemax: see `test_sparsemax_is_the_simplex_projection`)."""
from __future__ import annotations

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras

A = keras.activations
RNG = np.random.default_rng(7)
X = (RNG.standard_normal((4, 6)) * 2.0).astype(np.float32)


def _softplus(x):
    return np.logaddexp(x, 0.0)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _sparsemax(x):
    """Martins & Astudillo (2016), Algorithm 1, row by row (last axis)."""
    out = np.zeros_like(x, dtype=np.float64)
    for i, row in enumerate(np.asarray(x, np.float64).reshape(-1, x.shape[-1])):
        z = np.sort(row)[::-1]
        k = np.arange(1, len(z) + 1)
        support = 1 + k * z > np.cumsum(z)
        size = k[support][-1]
        tau = (np.cumsum(z)[size - 1] - 1) / size
        out.reshape(-1, x.shape[-1])[i] = np.maximum(row - tau, 0.0)
    return out


# name, kwargs, float64 numpy reference
CASES = [
    ("celu", {}, lambda x: np.maximum(x, 0) + np.minimum(np.expm1(x), 0)),
    ("celu", {"alpha": 0.5}, lambda x: np.maximum(x, 0) + np.minimum(0.5 * np.expm1(x / 0.5), 0)),
    ("glu", {}, lambda x: x[:, :3] * _sigmoid(x[:, 3:])),
    ("glu", {"axis": 0}, lambda x: x[:2] * _sigmoid(x[2:])),
    ("hard_shrink", {}, lambda x: np.where(np.abs(x) > 0.5, x, 0.0)),
    ("hard_shrink", {"threshold": 1.5}, lambda x: np.where(np.abs(x) > 1.5, x, 0.0)),
    ("hard_tanh", {}, lambda x: np.clip(x, -1, 1)),
    ("log_sigmoid", {}, lambda x: -_softplus(-x)),
    ("mish", {}, lambda x: x * np.tanh(_softplus(x))),
    ("soft_shrink", {}, lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.5, 0)),
    ("sparse_plus", {}, lambda x: np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4))),
    ("sparse_sigmoid", {}, lambda x: np.clip((x + 1) / 2, 0, 1)),
    ("sparsemax", {}, _sparsemax),
    ("squareplus", {}, lambda x: (x + np.sqrt(x * x + 4)) / 2),
    ("squareplus", {"b": 1}, lambda x: (x + np.sqrt(x * x + 1)) / 2),
    ("tanh_shrink", {}, lambda x: x - np.tanh(x)),
    ("threshold", {"threshold": 0.3, "default_value": -1.0},
     lambda x: np.where(x > 0.3, x, -1.0)),
]


@pytest.mark.parametrize("name,kwargs,reference", CASES)
def test_activation_equals_numpy_reference(name, kwargs, reference):
    got = getattr(A, name)(X, **kwargs)
    np.testing.assert_allclose(np.asarray(got), reference(X.astype(np.float64)), rtol=1e-5,
                               atol=1e-6)
    assert A.get(name) is getattr(A, name)
    assert A.serialize(getattr(A, name)) == name
    assert A.deserialize(name) is getattr(A, name)


@pytest.mark.parametrize("name,kwargs", [(n, k) for n, k, _ in CASES if n != "sparsemax"])
def test_activation_and_gradient_equal_real_keras(name, kwargs):
    real = pytest.importorskip("keras")
    jax = pytest.importorskip("jax")
    ours = getattr(A, name)
    np.testing.assert_allclose(np.asarray(ours(X, **kwargs)),
                               np.asarray(getattr(real.activations, name)(X, **kwargs)),
                               rtol=1e-5, atol=1e-6)
    weights = RNG.standard_normal(np.asarray(ours(X, **kwargs)).shape).astype(np.float32)
    variable = tf.Variable(X)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(ours(variable, **kwargs) * weights)
    theirs = jax.grad(lambda x: (getattr(real.activations, name)(x, **kwargs) * weights).sum())
    np.testing.assert_allclose(np.asarray(tape.gradient(total, variable)),
                               np.asarray(theirs(X)), rtol=1e-5, atol=1e-6)


def test_keras_activation_names_all_resolve():
    real = pytest.importorskip("keras")
    from keras.src.activations import ALL_OBJECTS_DICT

    for name in ALL_OBJECTS_DICT:
        assert callable(A.get(name)), name
    assert {n for n in dir(real.activations) if not n.startswith("_")} <= set(dir(A))


def test_sparsemax_is_the_simplex_projection():
    # Keras 3.15.1's sparsemax is wrong once two entries are in the support (its threshold sums
    # the cumulative sums; keras-team/keras#23425): we check the paper's projection, and real
    # Keras only where the support has one entry, where both agree.
    x = np.array([[0.0, 0.5, 1.0], [0.1, 0.2, 0.25], [3.0, 0.0, 0.0]], np.float32)
    got = np.asarray(A.sparsemax(x))
    np.testing.assert_allclose(got, [[0, 0.25, 0.75], [0.25, 0.35, 0.4], [1, 0, 0]], atol=1e-6)
    np.testing.assert_allclose(got.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(A.sparsemax(X.T, axis=0)), _sparsemax(X).T,
                               rtol=1e-5, atol=1e-6)
    # gradient: the Jacobian is diag(s) - s s^T / |S| with s the support indicator
    weights = RNG.standard_normal(X.shape).astype(np.float32)
    variable = tf.Variable(X)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(A.sparsemax(variable) * weights)
    support = (_sparsemax(X) > 0).astype(np.float64)
    centred = weights - (weights * support).sum(-1, keepdims=True) / support.sum(-1,
                                                                               keepdims=True)
    np.testing.assert_allclose(np.asarray(tape.gradient(total, variable)), support * centred,
                               rtol=1e-5, atol=1e-6)
    real = pytest.importorskip("keras")
    one_hot_like = np.array([[4.0, 1.0, 0.5], [0.0, 2.5, 0.1]], np.float32)
    np.testing.assert_allclose(np.asarray(A.sparsemax(one_hot_like)),
                               np.asarray(real.activations.sparsemax(one_hot_like)), atol=1e-6)


CHAIN = ["mish", "celu", "log_sigmoid", "squareplus", "sparse_plus", "soft_shrink"]


def test_dense_activations_by_name_train_as_real_keras():
    """Six Dense layers, one new activation each: predictions and one SGD step of fit (the
    gradients run inside the compiled step) equal a jitted JAX step over real Keras'
    activations with the same weights."""
    real = pytest.importorskip("keras")
    jax = pytest.importorskip("jax")
    x = RNG.standard_normal((8, 4)).astype(np.float32)
    y = RNG.standard_normal((8, 1)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,))]
                             + [keras.layers.Dense(4, activation=name) for name in CHAIN]
                             + [keras.layers.Dense(1)])
    weights = [w * 1.5 for w in model.get_weights()]  # larger pre-activations: every branch
    model.set_weights(weights)
    assert [layer.get_config()["activation"] for layer in model.layers[:-1]] == CHAIN

    def forward(params, x):
        for i, name in enumerate(CHAIN + ["linear"]):
            x = getattr(real.activations, name)(x @ params[2 * i] + params[2 * i + 1])
        return x

    def loss(params):
        return ((forward(params, x) - y) ** 2).mean()

    want, grads = jax.jit(lambda params: (forward(params, x), jax.grad(loss)(params)))(weights)
    np.testing.assert_allclose(model.predict(x, verbose=0), np.asarray(want), rtol=1e-5,
                               atol=1e-6)
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for got, w, g in zip(model.get_weights(), weights, grads):
        np.testing.assert_allclose(got, w - 0.1 * np.asarray(g), rtol=1e-5, atol=1e-6)


def test_threshold_needs_its_arguments_and_glu_needs_even_halves():
    with pytest.raises(TypeError):
        A.threshold(X)
    with pytest.raises(ValueError, match="glu"):
        A.glu(X[:, :5])
