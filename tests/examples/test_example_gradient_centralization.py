"""keras.io example "Gradient Centralization for Better Training Performance"
(examples/vision/gradient_centralization.py).

The Keras 3 code as written; only the imports changed (`from tensorflow import data as
tf_data` is `from kgraph import data as tf_data`), and `tfds.load("horses_or_humans",
as_supervised=True)` replaced by tf.data datasets of (image, label) pairs of its shapes (random
uint8 300x300x3 images, int64 0/1 labels; 16 train, 8 test) with the metadata the example
prints. batch_size 128 -> 8, epochs 10 -> 1. As in Keras 3, the optimizer subclass's
`get_gradients` override is never called by `fit` (the example's GC optimizer trains as
RMSprop); the test checks that both runs train.
"""

from types import SimpleNamespace

import numpy as np


def horses_or_humans(n_train=16, n_test=8, seed=0):
    """Like `tfds.load("horses_or_humans", split=[TRAIN, TEST], with_info=True,
    as_supervised=True)`: unbatched (uint8 (300, 300, 3) image, int64 label) datasets and
    the metadata fields the example reads."""
    from kgraph import data as tf_data

    rng = np.random.default_rng(seed)

    def split(n):
        images = rng.integers(0, 256, (n, 300, 300, 3), dtype=np.uint8)
        return tf_data.Dataset.from_tensor_slices((images, rng.integers(0, 2, n)))

    metadata = SimpleNamespace(
        features={"image": SimpleNamespace(shape=(300, 300, 3))},
        splits={"train": SimpleNamespace(num_examples=n_train),
                "test": SimpleNamespace(num_examples=n_test)})
    return (split(n_train), split(n_test)), metadata


def test_gradient_centralization():
    from time import time

    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers, ops
    from kgraph.keras.optimizers import RMSprop

    num_classes = 2  # noqa: F841 - the example's
    input_shape = (300, 300, 3)  # noqa: F841 - the example's
    batch_size = 8
    AUTOTUNE = tf_data.AUTOTUNE

    (train_ds, test_ds), metadata = horses_or_humans()

    print(f"Image shape: {metadata.features['image'].shape}")
    print(f"Training images: {metadata.splits['train'].num_examples}")
    print(f"Test images: {metadata.splits['test'].num_examples}")

    rescale = layers.Rescaling(1.0 / 255)

    data_augmentation = [
        layers.RandomFlip("horizontal_and_vertical"),
        layers.RandomRotation(0.3),
        layers.RandomZoom(0.2),
    ]

    # Helper to apply augmentation
    def apply_aug(x):
        for aug in data_augmentation:
            x = aug(x)
        return x

    def prepare(ds, shuffle=False, augment=False):
        # Rescale dataset
        ds = ds.map(lambda x, y: (rescale(x), y), num_parallel_calls=AUTOTUNE)

        if shuffle:
            ds = ds.shuffle(1024)

        # Batch dataset
        ds = ds.batch(batch_size)

        # Use data augmentation only on the training set
        if augment:
            ds = ds.map(
                lambda x, y: (apply_aug(x), y),
                num_parallel_calls=AUTOTUNE,
            )

        # Use buffered prefecting
        return ds.prefetch(buffer_size=AUTOTUNE)

    train_ds = prepare(train_ds, shuffle=True, augment=True)
    test_ds = prepare(test_ds)

    images, labels = next(iter(train_ds))
    assert images.shape == (8, 300, 300, 3) and labels.shape == (8,)
    assert 0.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0

    model = keras.Sequential(
        [
            layers.Conv2D(16, (3, 3), activation="relu", input_shape=(300, 300, 3)),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(32, (3, 3), activation="relu"),
            layers.Dropout(0.5),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.Dropout(0.5),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Conv2D(64, (3, 3), activation="relu"),
            layers.MaxPooling2D(2, 2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(512, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )

    class GCRMSprop(RMSprop):
        def get_gradients(self, loss, params):
            # We here just provide a modified get_gradients() function since we are
            # trying to just compute the centralized gradients.

            grads = []
            gradients = super().get_gradients()
            for grad in gradients:
                grad_len = len(grad.shape)
                if grad_len > 1:
                    axis = list(range(grad_len - 1))
                    grad -= ops.mean(grad, axis=axis, keep_dims=True)
                grads.append(grad)

            return grads

    optimizer = GCRMSprop(learning_rate=1e-4)

    class TimeHistory(keras.callbacks.Callback):
        def on_train_begin(self, logs={}):  # noqa: B006 - the example's
            self.times = []

        def on_epoch_begin(self, batch, logs={}):  # noqa: B006
            self.epoch_time_start = time()

        def on_epoch_end(self, batch, logs={}):  # noqa: B006
            self.times.append(time() - self.epoch_time_start)

    time_callback_no_gc = TimeHistory()
    model.compile(
        loss="binary_crossentropy",
        optimizer=RMSprop(learning_rate=1e-4),
        metrics=["accuracy"],
    )

    model.summary()

    history_no_gc = model.fit(
        train_ds, epochs=1, verbose=1, callbacks=[time_callback_no_gc]
    )

    time_callback_gc = TimeHistory()
    model.compile(
        loss="binary_crossentropy", optimizer=optimizer, metrics=["accuracy"]
    )

    model.summary()

    history_gc = model.fit(
        train_ds, epochs=1, verbose=1, callbacks=[time_callback_gc]
    )

    print("Not using Gradient Centralization")
    print(f"Loss: {history_no_gc.history['loss'][-1]}")
    print(f"Accuracy: {history_no_gc.history['accuracy'][-1]}")
    print(f"Training Time: {sum(time_callback_no_gc.times)}")

    print("Using Gradient Centralization")
    print(f"Loss: {history_gc.history['loss'][-1]}")
    print(f"Accuracy: {history_gc.history['accuracy'][-1]}")
    print(f"Training Time: {sum(time_callback_gc.times)}")

    for history, callback in ((history_no_gc, time_callback_no_gc),
                              (history_gc, time_callback_gc)):
        assert np.isfinite(history.history["loss"]).all()
        assert 0.0 <= history.history["accuracy"][-1] <= 1.0
        assert len(callback.times) == 1 and callback.times[0] > 0
    assert optimizer.iterations.numpy() == 2  # 16 images in batches of 8
    assert model.evaluate(test_ds, verbose=0)[1] in {i / 8 for i in range(9)}
