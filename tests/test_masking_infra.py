"""Masks travel with tensors through layers that support masking (Keras semantics)."""
import numpy as np

from kgraph import keras, ops


class MakeMask(keras.layers.Layer):
    def call(self, x):
        return x

    def compute_mask(self, inputs, mask=None):
        return ops.not_equal(inputs[..., 0], 0.0)


class Passthrough(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x):
        return x * 2.0


class MaskedMean(keras.layers.Layer):
    def call(self, x, mask=None):
        weights = ops.cast(mask, x.dtype)[..., None]
        return ops.sum(x * weights, axis=1) / ops.sum(weights, axis=1)


def test_mask_reaches_a_layer_that_takes_it_through_a_masking_layer():
    inputs = keras.Input((4, 2))
    out = MaskedMean()(Passthrough()(MakeMask()(inputs)))
    model = keras.Model(inputs, out)
    x = np.zeros((1, 4, 2), "float32")
    x[0, :2] = [[1, 1], [3, 5]]
    np.testing.assert_allclose(model.predict(x, verbose=0), [[4.0, 6.0]])  # 2 * mean of 2 rows


def test_a_layer_without_masking_support_drops_the_mask():
    class Doubles(keras.layers.Layer):  # supports_masking stays False (Dense passes masks)
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((4, 2))
    dropped = Doubles()(MakeMask()(inputs))

    class NeedsMask(keras.layers.Layer):
        def call(self, x, mask=None):
            return x if mask is None else x * 0.0

    model = keras.Model(inputs, NeedsMask()(dropped))
    assert np.all(model.predict(np.ones((1, 4, 2), "float32"), verbose=0) == 2.0)
