"""keras.io example "Evaluating and exporting scikit-learn metrics in a Keras callback"
(examples/keras_recipes/sklearn_metric_callbacks.py).

The Keras 3 source (TensorFlow backend) as written, with `import tensorflow as tf; import keras`
swapped for kgraph: the `JaccardScoreCallback` (no `super().__init__()`, a `keras.metrics.Mean`
fed the per-class scores after `self.model.predict` in `on_epoch_end`, `.result().numpy()`,
`tf.summary.create_file_writer` / `with writer.as_default(): tf.summary.scalar(...)` /
`flush`), the MNIST convnet (34,826 parameters, as Keras prints), `to_categorical` targets,
`validation_split`. scikit-learn is not installed here (nor a kgraph dependency), so
`sklearn.metrics.jaccard_score(..., average=None)` is replaced by its definition in numpy (per
label of either array, |both| / |either|); MNIST by random arrays of its shapes (256 train, 64
test), 15 epochs by 2. Checked: the event file holds one `jaccard_score` per epoch, each the
mean of the per-class scores of that epoch's predictions.
"""

import os

import numpy as np
import pytest
from example_datasets import mnist_load_data

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator")


def jaccard_score(y_true, y_pred, average=None):
    """sklearn.metrics.jaccard_score with average=None: per label (sorted, of either array)."""
    assert average is None
    labels = np.union1d(y_true, y_pred)
    return np.array([np.sum((y_true == c) & (y_pred == c)) / np.sum((y_true == c) | (y_pred == c))
                     for c in labels])


def test_sklearn_metric_callbacks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    written = []

    class JaccardScoreCallback(keras.callbacks.Callback):
        """Computes the Jaccard score and logs the results to TensorBoard."""

        def __init__(self, name, x_test, y_test, log_dir):
            self.x_test = x_test
            self.y_test = y_test
            self.keras_metric = keras.metrics.Mean("jaccard_score")
            self.epoch = 0
            self.summary_writer = tf.summary.create_file_writer(os.path.join(log_dir, name))

        def on_epoch_end(self, batch, logs=None):
            self.epoch += 1
            self.keras_metric.reset_state()
            predictions = self.model.predict(self.x_test)
            jaccard_value = jaccard_score(
                np.argmax(predictions, axis=-1), self.y_test, average=None
            )
            self.keras_metric.update_state(jaccard_value)
            self._write_metric(
                self.keras_metric.name, self.keras_metric.result().numpy().astype(float)
            )
            written.append((self.epoch, float(np.mean(jaccard_value))))

        def _write_metric(self, name, value):
            with self.summary_writer.as_default():
                tf.summary.scalar(
                    name,
                    value,
                    step=self.epoch,
                )
                self.summary_writer.flush()

    # Model / data parameters
    num_classes = 10
    input_shape = (28, 28, 1)

    # The data, split between train and test sets
    (x_train, y_train), (x_test, y_test) = mnist_load_data()

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # Convert class vectors to binary class matrices.
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential(
        [
            keras.Input(shape=input_shape),
            layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

    model.summary()
    assert model.count_params() == 34_826

    batch_size = 128
    epochs = 2

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    callbacks = [
        JaccardScoreCallback(model.name, x_test, np.argmax(y_test, axis=-1), "logs")
    ]
    model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.1,
        callbacks=callbacks,
    )

    acc = event_accumulator.EventAccumulator(os.path.join("logs", model.name))
    acc.Reload()
    logged = [(e.step, e.value) for e in acc.Scalars("jaccard_score")]
    assert [s for s, _ in logged] == [1, 2] == [s for s, _ in written]
    np.testing.assert_allclose([v for _, v in logged], [v for _, v in written], rtol=1e-6)
