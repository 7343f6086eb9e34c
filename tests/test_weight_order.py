"""`model.weights` (and so `get_weights`/`set_weights` lists) in Keras 3's order: layer by layer,
each layer's own weights then its sublayers', trainable or not; real Keras' `get_weights()`
list loads into the same kgraph architecture as it is."""
import numpy as np
import pytest

from kgraph import keras


def _build(k):
    L = k.layers
    inner = k.Sequential([k.Input((4,)), L.Dense(3), L.BatchNormalization()])
    inputs = k.Input((4,))
    x = inner(inputs)
    x = L.Dense(5, activation="relu")(x)
    x = L.BatchNormalization()(x)
    model = k.Model(inputs, L.Dense(2)(x))
    model.layers[2].trainable = False  # the frozen Dense still lists its weights in place
    return model


def test_weights_are_listed_layer_by_layer_as_keras():
    real = pytest.importorskip("keras")
    ours, theirs = _build(keras), _build(real)
    assert [(w.name, tuple(w.shape)) for w in ours.weights] == \
        [(w.name, tuple(w.shape)) for w in theirs.weights]
    x = np.random.default_rng(0).random((3, 4), dtype=np.float32)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(ours.predict(x, verbose=0), theirs.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
