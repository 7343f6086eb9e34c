"""`==`/`!=` on a traced tensor: elementwise against numbers and arrays, as Keras; identity
against another tensor, None or other objects (the IR keys dicts by tensors and tests `in` on
lists of them)."""

import numpy as np

import kgraph as tf
from kgraph import keras
from kgraph.keras import ops

X = np.float32([[0, 1, 2], [2, 0, -1]])


def test_comparison_with_numbers_and_arrays_is_elementwise():
    @tf.function(input_signature=[tf.TensorSpec((None, 3), "float32")])
    def compare(x):
        return {"eq": x == 0, "ne": x != -1.0, "eq_left": np.float32(2) == x,
                "ne_array": x != np.float32([0, 1, 0]), "int": ops.cast(x, "int32") == 2}

    for x in (X, X[:1]):
        out = compare(x)
        np.testing.assert_array_equal(out["eq"], x == 0)
        np.testing.assert_array_equal(out["ne"], x != -1)
        np.testing.assert_array_equal(out["eq_left"], x == 2)
        np.testing.assert_array_equal(out["ne_array"], x != np.float32([0, 1, 0]))
        np.testing.assert_array_equal(out["int"], x == 2)
        assert out["eq"].dtype == bool


def test_comparison_between_tensors_stays_identity():
    seen = {}

    @tf.function(input_signature=[tf.TensorSpec((None, 3), "float32")])
    def probe(x):
        y = x + 1.0
        seen.update(same=x == x, other=x == y, differ=x != y, none=x == None,  # noqa: E711
                    found=y in [x, y], keyed={x: 1, y: 2}[y])
        return ops.equal(x, y)

    np.testing.assert_array_equal(probe(X), np.zeros_like(X, bool))
    assert seen == {"same": True, "other": False, "differ": True, "none": False,
                    "found": True, "keyed": 2}


def test_a_layer_masking_by_comparison():
    """A padding mask written `x == 0` in `call` (once a Python False, a scalar 0)."""
    class PaddingMask(keras.layers.Layer):
        def call(self, x):
            return ops.cast(x == 0, x.dtype)

    model = keras.Sequential([keras.Input((3,)), PaddingMask()])
    np.testing.assert_array_equal(model.predict(X, verbose=0), (X == 0).astype("float32"))


def test_functional_tensors_take_python_operators_as_keras():
    """`x ** 2`, `x @ w`, `1 / x`, `x // 2`, `x % 2`, comparisons, `abs`, `~`, `&`, `|` on
    KerasTensors build layers of the functional model (TypeError before, except + - * /);
    `==` stays identity (functional code looks KerasTensors up in lists)."""
    x = keras.Input((3,))
    w = np.arange(6, dtype="float32").reshape(3, 2)
    outs = [x ** 2, 2.0 ** x, x @ w, x // 2.0, x % 2.0, 1.0 / x, x > 0.5, 0.5 < x, x <= 0.7,
            abs(-x), ~(x > 0.5), (x > 0.1) & (x < 0.9), (x > 0.9) | (x < 0.1)]
    got = keras.Model(x, outs).predict(np.array([[0.2, 0.7, 1.5]], "float32"), verbose=0)
    d = np.array([[0.2, 0.7, 1.5]], "float32")
    want = [d ** 2, 2.0 ** d, d @ w, d // 2.0, d % 2.0, 1.0 / d, d > 0.5, 0.5 < d, d <= 0.7,
            abs(-d), ~(d > 0.5), (d > 0.1) & (d < 0.9), (d > 0.9) | (d < 0.1)]
    for g, v in zip(got, want):
        assert g.dtype == v.dtype
        np.testing.assert_allclose(g, v, rtol=1e-6)
    assert (x == x) is True and x in [x] and not (x == keras.Input((3,)))
