"""keras.io guide "Understanding masking & padding"
(guides/understanding_masking_and_padding.py).

The guide's padding, Embedding(mask_zero=True) / Masking masks, mask
propagation in functional and subclassed models, and its mask-generating
(TemporalSplit, CustomEmbedding), mask-transparent (MyActivation) and
mask-consuming (TemporalSoftmax) layers, with kgraph's imports.
"""

import numpy as np

from kgraph import keras
from kgraph.keras import layers, ops

RAW_INPUTS = [[711, 632, 71], [73, 8, 3215, 55, 927], [83, 91, 1, 645, 1253, 927]]


def test_pad_sequences():
    padded_inputs = keras.utils.pad_sequences(RAW_INPUTS, padding="post")
    np.testing.assert_array_equal(padded_inputs[0], [711, 632, 71, 0, 0, 0])
    assert padded_inputs.shape == (3, 6)


def test_embedding_and_masking_masks():
    padded_inputs = keras.utils.pad_sequences(RAW_INPUTS, padding="post")
    embedding = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)
    masked_output = embedding(padded_inputs)
    expected = padded_inputs != 0
    np.testing.assert_array_equal(np.asarray(masked_output._keras_mask), expected)
    masking_layer = layers.Masking()
    unmasked_embedding = ops.cast(
        ops.tile(ops.expand_dims(padded_inputs, axis=-1), [1, 1, 10]), "float32")
    masked_embedding = masking_layer(unmasked_embedding)
    np.testing.assert_array_equal(np.asarray(masked_embedding._keras_mask), expected)


def test_mask_propagation_functional_and_subclassed():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=5000, output_dim=16, mask_zero=True)(inputs)
    outputs = layers.LSTM(32)(x)
    model = keras.Model(inputs, outputs)
    padded = keras.utils.pad_sequences(RAW_INPUTS, padding="post")

    class MyLayer(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.embedding = layers.Embedding(input_dim=5000, output_dim=16,
                                              mask_zero=True)
            self.lstm = layers.LSTM(32)

        def call(self, inputs):
            x = self.embedding(inputs)
            mask = self.embedding.compute_mask(inputs)
            return self.lstm(x, mask=mask)

    layer = MyLayer()
    x = np.random.default_rng(0).random((32, 10)) * 100
    x = x.astype("int32")
    assert tuple(layer(x).shape) == (32, 32)
    # the padded rows give the same LSTM output as the unpadded sequence
    full = np.asarray(model.predict(padded, verbose=0))
    short = np.asarray(model.predict(np.array([RAW_INPUTS[0]]), verbose=0))
    np.testing.assert_allclose(full[0], short[0], atol=1e-5)


def test_mask_generating_and_transparent_layers():
    class TemporalSplit(keras.layers.Layer):
        """Split the input tensor into 2 tensors along the time dimension."""

        def call(self, inputs):
            return ops.split(inputs, 2, axis=1)

        def compute_mask(self, inputs, mask=None):
            if mask is None:
                return None
            return ops.split(mask, 2, axis=1)

    first_half, second_half = TemporalSplit()(
        layers.Masking()(np.random.random((32, 10, 64)).astype("float32")))
    assert tuple(first_half.shape) == (32, 5, 64)

    class CustomEmbedding(keras.layers.Layer):
        def __init__(self, input_dim, output_dim, mask_zero=False, **kwargs):
            super().__init__(**kwargs)
            self.input_dim = input_dim
            self.output_dim = output_dim
            self.mask_zero = mask_zero

        def build(self, input_shape):
            self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                              initializer="random_normal",
                                              dtype="float32")

        def call(self, inputs):
            inputs = ops.cast(inputs, "int32")
            return ops.take(self.embeddings, inputs)

        def compute_mask(self, inputs, mask=None):
            if not self.mask_zero:
                return None
            return ops.not_equal(inputs, 0)

    layer = CustomEmbedding(10, 32, mask_zero=True)
    x = np.random.default_rng(1).random((3, 10)) * 9
    x = x.astype("int32")
    y = layer(x)
    np.testing.assert_array_equal(np.asarray(layer.compute_mask(x)), x != 0)
    assert tuple(y.shape) == (3, 10)  # ops.take without axis flattens, as numpy


def test_mask_consuming_temporal_softmax():
    class MyActivation(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs):
            return ops.relu(inputs)

    class TemporalSoftmax(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs, mask=None):
            assert mask is not None
            broadcast_float_mask = ops.expand_dims(ops.cast(mask, "float32"), -1)
            inputs_exp = ops.exp(inputs) * broadcast_float_mask
            inputs_sum = ops.sum(inputs_exp * broadcast_float_mask, axis=-1, keepdims=True)
            return inputs_exp / inputs_sum

    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(input_dim=10, output_dim=32, mask_zero=True)(inputs)
    x = layers.Dense(32)(x)
    x = MyActivation()(x)
    outputs = TemporalSoftmax()(x)
    model = keras.Model(inputs, outputs)
    tokens = np.random.default_rng(2).integers(0, 10, size=(32, 100))
    y = np.asarray(model(tokens))
    assert y.shape == (32, 100, 32)
    np.testing.assert_array_equal(np.isnan(y).any(axis=-1) | (y.sum(-1) == 0),
                                  tokens == 0)


def test_eager_output_mask_passes_through_dense():
    """The kgraph fix behind the guide's `masked_output._keras_mask`: an eager call's
    outputs carry the mask the layer computed (here given, and passed by Dense)."""
    mask = np.array([[True, True, False], [True, False, False]])
    y = layers.Dense(2)(np.ones((2, 3, 4), dtype="float32"), mask=mask)
    np.testing.assert_array_equal(np.asarray(y._keras_mask), mask)
    assert getattr(layers.Dense(2)(np.ones((2, 4), dtype="float32")), "_keras_mask",
                   None) is None
