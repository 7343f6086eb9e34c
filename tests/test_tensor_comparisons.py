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
