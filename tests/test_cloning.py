"""`keras.models.clone_model` of a model holding a `Lambda`: the clone wraps the same
in-memory function (nothing is deserialized, so no stored code runs), with new weights
around it; the keras.io DDIM example clones its U-Net (a Lambda sinusoidal embedding) into
the EMA network."""
import numpy as np

from kgraph import keras
from kgraph.keras import layers, ops


def _embedding(x, scale=1.0):
    return ops.concatenate([ops.sin(x * scale), ops.cos(x)], axis=-1)


def test_clone_model_keeps_a_lambdas_function_and_arguments():
    inputs = keras.Input((4,))
    hidden = layers.Lambda(_embedding, arguments={"scale": 2.0}, name="embed")(inputs)
    model = keras.Model(inputs, layers.Dense(3)(hidden))
    clone = keras.models.clone_model(model)
    original, cloned = model.get_layer("embed"), clone.get_layer("embed")
    assert cloned is not original and cloned.function is _embedding
    assert cloned.arguments == {"scale": 2.0}
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert clone.layers[-1].kernel is not model.layers[-1].kernel
