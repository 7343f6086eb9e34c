"""keras.io example "Endpoint layer pattern"
(examples/keras_recipes/endpoint_layer_pattern.py).

The Keras 3 code as written; only the imports changed (the example's
TensorFlow `tf.nn.softmax` is spelled `keras.ops.softmax`, kgraph has no
`tf.nn`), 1000 samples cut to 64, epochs as written (2).
"""

import numpy as np


def _logistic_endpoint_class():
    from kgraph import keras

    class LogisticEndpoint(keras.layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)

        def call(self, logits, targets=None, sample_weight=None):
            if targets is not None:
                # Compute the training-time loss value and add it
                # to the layer using `self.add_loss()`.
                loss = self.loss_fn(targets, logits, sample_weight)
                self.add_loss(loss)

            # Return the inference-time prediction tensor (for `.predict()`).
            return keras.ops.softmax(logits)

    return LogisticEndpoint


def _data(n=64):
    return {
        "inputs": np.random.random((n, 764)),
        "targets": np.random.random((n, 1)),
        "sample_weight": np.random.random((n, 1)),
    }


def test_endpoint_layer_functional_and_inference_model():
    from kgraph import keras

    LogisticEndpoint = _logistic_endpoint_class()

    inputs = keras.Input((764,), name="inputs")
    logits = keras.layers.Dense(1)(inputs)
    targets = keras.Input((1,), name="targets")
    sample_weight = keras.Input((1,), name="sample_weight")
    preds = LogisticEndpoint()(logits, targets, sample_weight)
    model = keras.Model([inputs, targets, sample_weight], preds)

    data = _data()

    model.compile(keras.optimizers.Adam(1e-3))
    history = model.fit(data, epochs=2)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))

    inputs = keras.Input((764,), name="inputs")
    logits = keras.layers.Dense(1)(inputs)
    preds = LogisticEndpoint()(logits, targets=None, sample_weight=None)
    inference_model = keras.Model(inputs, preds)

    inference_model.set_weights(model.get_weights())

    preds = inference_model.predict(np.random.random((64, 764)))
    # softmax over a single logit is 1 everywhere, as in Keras
    np.testing.assert_allclose(preds, np.ones((64, 1)), rtol=1e-6)


def test_endpoint_layer_subclassed_model():
    from kgraph import keras

    LogisticEndpoint = _logistic_endpoint_class()

    class LogReg(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.logistic_endpoint = LogisticEndpoint()

        def call(self, inputs):
            # Note that all inputs should be in the first argument
            # since we want to be able to call `model.fit(inputs)`.
            logits = self.dense(inputs["inputs"])
            preds = self.logistic_endpoint(
                logits=logits,
                targets=inputs["targets"],
                sample_weight=inputs["sample_weight"],
            )
            return preds

    model = LogReg()
    data = _data()

    model.compile(keras.optimizers.Adam(1e-3))
    history = model.fit(data, epochs=2)
    losses = history.history["loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
