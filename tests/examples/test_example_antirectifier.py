"""keras.io example "Simple custom layer example: Antirectifier"
(examples/keras_recipes/antirectifier.py).

The Keras 3 code as written; only the imports changed, `mnist.load_data()`
replaced by random arrays of MNIST's shapes (256 train, 64 test) and the
epochs cut from 20 to 1.
"""

import numpy as np
from example_datasets import mnist_load_data



def _antirectifier_class():
    from kgraph import keras
    from kgraph.keras import layers, ops

    class Antirectifier(layers.Layer):
        def __init__(self, initializer="he_normal", **kwargs):
            super().__init__(**kwargs)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape):
            output_dim = input_shape[-1]
            self.kernel = self.add_weight(
                shape=(output_dim * 2, output_dim),
                initializer=self.initializer,
                name="kernel",
                trainable=True,
            )

        def call(self, inputs):
            inputs -= ops.mean(inputs, axis=-1, keepdims=True)
            pos = ops.relu(inputs)
            neg = ops.relu(-inputs)
            concatenated = ops.concatenate([pos, neg], axis=-1)
            mixed = ops.matmul(concatenated, self.kernel)
            return mixed

        def get_config(self):
            # Implement get_config to enable serialization. This is optional.
            base_config = super().get_config()
            config = {"initializer": keras.initializers.serialize(self.initializer)}
            return dict(list(base_config.items()) + list(config.items()))

    return Antirectifier


def test_antirectifier_layer_matches_numpy():
    Antirectifier = _antirectifier_class()
    layer = Antirectifier()
    x = np.random.default_rng(1).normal(size=(4, 6)).astype("float32")
    out = np.asarray(layer(x))
    kernel = np.asarray(layer.kernel)
    centered = x - x.mean(axis=-1, keepdims=True)
    cat = np.concatenate([np.maximum(centered, 0), np.maximum(-centered, 0)], -1)
    np.testing.assert_allclose(out, cat @ kernel, rtol=1e-5, atol=1e-5)
    config = layer.get_config()
    assert Antirectifier.from_config(config).get_config() == config


def test_antirectifier_example():
    from kgraph import keras
    from kgraph.keras import layers

    Antirectifier = _antirectifier_class()

    # Training parameters
    batch_size = 128
    num_classes = 10
    epochs = 1

    # The data, split between train and test sets
    (x_train, y_train), (x_test, y_test) = mnist_load_data()

    x_train = x_train.reshape(-1, 784)
    x_test = x_test.reshape(-1, 784)
    x_train = x_train.astype("float32")
    x_test = x_test.astype("float32")
    x_train /= 255
    x_test /= 255
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # Build the model
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            layers.Dense(256),
            Antirectifier(),
            layers.Dense(256),
            Antirectifier(),
            layers.Dropout(0.5),
            layers.Dense(10),
        ]
    )

    # Compile the model
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )

    # Train the model
    history = model.fit(
        x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.15
    )

    # Test the model
    result = model.evaluate(x_test, y_test)
    assert num_classes == 10 and np.isfinite(history.history["loss"][0])
    assert np.isfinite(result[0]) and 0.0 <= result[1] <= 1.0
