"""keras.io example "Trainer pattern" (examples/keras_recipes/trainer_pattern.py).

The code as written, `import tensorflow as tf; from tensorflow import keras` swapped for
`import kgraph as tf; from kgraph import keras`: one `keras.Model` subclass whose
`train_step` (a `tf.GradientTape`, the Keras 2 `self.compiled_loss(..., regularization_losses=
self.losses)` and `self.compiled_metrics.update_state`) trains two wrapped models, a Sequential
(`Flatten(input_shape=(28, 28))`) and a functional one on `Input((28, 28, 1))` fed (N, 28, 28)
arrays. MNIST (a download) is replaced by random digits of its shapes (256 train, 64 test),
epochs 5 -> 2.
"""
import numpy as np

from example_datasets import mnist_load_data


def test_trainer_pattern():
    import kgraph as tf
    from kgraph import keras

    # Load MNIST dataset and standardize the data
    (x_train, y_train), (x_test, y_test) = mnist_load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0

    class MyTrainer(keras.Model):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self.model(x, training=True)  # Forward pass
                # Compute loss value
                loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)

            # Compute gradients
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)

            # Update weights
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))

            # Update metrics configured in `compile()`
            self.compiled_metrics.update_state(y, y_pred)

            # Return a dict mapping metric names to current value.
            return {m.name: m.result() for m in self.metrics}

        def call(self, x):
            # Equivalent to `call()` of the wrapped keras.Model
            x = self.model(x)
            return x

    # A model defined using Sequential API
    model_a = keras.models.Sequential(
        [
            keras.layers.Flatten(input_shape=(28, 28)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )

    # A model defined using Functional API
    func_input = keras.Input(shape=(28, 28, 1))
    x = keras.layers.Flatten(input_shape=(28, 28))(func_input)
    x = keras.layers.Dense(512, activation="relu")(x)
    x = keras.layers.Dropout(0.4)(x)
    func_output = keras.layers.Dense(10, activation="softmax")(x)

    model_b = keras.Model(func_input, func_output)

    trainer_1 = MyTrainer(model_a)
    trainer_2 = MyTrainer(model_b)

    trainer_1.compile(
        keras.optimizers.SGD(), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history_1 = trainer_1.fit(
        x_train, y_train, epochs=2, batch_size=64, validation_data=(x_test, y_test)
    )

    trainer_2.compile(
        keras.optimizers.Adam(),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history_2 = trainer_2.fit(
        x_train, y_train, epochs=2, batch_size=64, validation_data=(x_test, y_test)
    )

    for trainer, history in ((trainer_1, history_1), (trainer_2, history_2)):
        hist = history.history
        assert set(hist) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert all(len(v) == 2 for v in hist.values())
        assert np.isfinite(hist["loss"]).all() and np.isfinite(hist["val_loss"]).all()
        assert all(0.0 <= a <= 1.0 for a in hist["accuracy"] + hist["val_accuracy"])
        # the trainer's weights are its wrapped model's: fit trained them
        assert trainer.trainable_weights and len(trainer.trainable_weights) == 4
        # validation (Keras' default test_step) reports the same loss as evaluate
        loss, _ = trainer.evaluate(x_test, y_test, verbose=0)
        np.testing.assert_allclose(loss, hist["val_loss"][-1], rtol=1e-5)
    assert model_a.count_params() == 784 * 256 + 256 + 256 * 10 + 10
    assert model_b.count_params() == 784 * 512 + 512 + 512 * 10 + 10
