"""keras.io example "Packaging Keras models for wide distribution using Functional
Subclassing" (examples/keras_recipes/packaging_keras_models_for_wide_distribution.py).

The Keras 3 code as written, with `import kgraph as tf` / `from kgraph import keras`:
functional subclasses on `Input(shape=(None, None, 1), dtype="uint8")` (any image size)
through strided `padding="same"` convolutions, a tf.data pipeline (map, batch, cache,
shuffle, repeat), model introspection, model surgery through
`get_layer(...).input`, and dict inputs. `mnist.load_data()` is replaced by random arrays of
MNIST's shapes (256 train, 64 test); BATCH_SIZE 256 -> 32, EPOCHS 5 -> 1. Checked besides:
the unconstrained input really takes images of other sizes, one program serving them all.
"""

import numpy as np
from example_datasets import mnist_load_data

import kgraph as tf
from kgraph import keras


class MnistModel(keras.Model):
    def __init__(self, **kwargs):
        inputs = keras.layers.Input(shape=(None, None, 1), dtype="uint8")
        y = keras.layers.Rescaling(1 / 255.0)(inputs)
        y = keras.layers.Conv2D(
            filters=16, kernel_size=3, padding="same", activation="relu"
        )(y)
        y = keras.layers.Conv2D(
            filters=32, kernel_size=6, padding="same", activation="relu", strides=2
        )(y)
        y = keras.layers.Conv2D(
            filters=48, kernel_size=6, padding="same", activation="relu", strides=2
        )(y)
        y = keras.layers.GlobalAveragePooling2D()(y)
        y = keras.layers.Dense(48, activation="relu")(y)
        y = keras.layers.Dropout(0.4)(y)
        outputs = keras.layers.Dense(
            10, activation="softmax", name="classification_head"  # 10 classes
        )(y)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)


class MnistDictModel(keras.Model):
    def __init__(self, **kwargs):
        inputs = {
            "image": keras.layers.Input(
                shape=(None, None, 1),  # 1-channel monochrome
                dtype="uint8",
                name="image",
            )
        }
        y = keras.layers.Rescaling(1 / 255.0)(inputs["image"])
        y = keras.layers.Conv2D(
            filters=16, kernel_size=3, padding="same", activation="relu"
        )(y)
        y = keras.layers.Conv2D(
            filters=32, kernel_size=6, padding="same", activation="relu", strides=2
        )(y)
        y = keras.layers.Conv2D(
            filters=48, kernel_size=6, padding="same", activation="relu", strides=2
        )(y)
        y = keras.layers.GlobalAveragePooling2D()(y)
        y = keras.layers.Dense(48, activation="relu")(y)
        y = keras.layers.Dropout(0.4)(y)
        outputs = keras.layers.Dense(
            10, activation="softmax", name="classification_head"  # 10 classes
        )(y)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)


def _data():
    BATCH_SIZE = 32
    (x_train, train_labels), (x_test, test_labels) = mnist_load_data()
    train_data = tf.data.Dataset.from_tensor_slices((x_train, train_labels))
    train_data = train_data.map(
        lambda x, y: (tf.expand_dims(x, axis=-1), y)
    )  # 1-channel monochrome
    train_data = train_data.batch(BATCH_SIZE)
    train_data = train_data.cache()
    train_data = train_data.shuffle(5000, reshuffle_each_iteration=True)
    train_data = train_data.repeat()

    test_data = tf.data.Dataset.from_tensor_slices((x_test, test_labels))
    test_data = test_data.map(
        lambda x, y: (tf.expand_dims(x, axis=-1), y)
    )  # 1-channel monochrome
    test_data = test_data.batch(10000)
    test_data = test_data.cache()
    return train_data, test_data, len(train_labels) // BATCH_SIZE


def test_functional_subclass_trains_and_takes_any_image_size():
    keras.utils.set_random_seed(0)
    train_data, test_data, STEPS_PER_EPOCH = _data()
    EPOCHS = 1
    model = MnistModel()
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = model.fit(
        train_data,
        steps_per_epoch=STEPS_PER_EPOCH,
        epochs=EPOCHS,
        validation_data=test_data,
        verbose=0,
    )
    assert set(history.history) == {"loss", "sparse_categorical_accuracy", "val_loss",
                                    "val_sparse_categorical_accuracy"}
    assert np.isfinite(history.history["loss"][0])

    # "Unconstrained inputs": the same weights on images of other sizes, one program
    rng = np.random.default_rng(1)
    for size in [(28, 28), (20, 33), (7, 5)]:
        images = rng.integers(0, 256, (3,) + size + (1,), dtype=np.uint8)
        probs = model.predict(images, verbose=0)
        assert probs.shape == (3, 10)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert len([k for k in model._programs if k[0] == "predict"]) == 1

    # the same layers on a fixed 20x33 input give the same predictions
    images = rng.integers(0, 256, (3, 20, 33, 1), dtype=np.uint8)
    inputs = keras.Input((20, 33, 1), dtype="uint8")
    y = inputs
    for layer in model.layers[1:]:
        y = layer(y)
    fixed = keras.Model(inputs, y)
    np.testing.assert_allclose(fixed.predict(images, verbose=0),
                               model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def test_introspection_and_model_surgery():
    keras.utils.set_random_seed(0)
    train_data, test_data, STEPS_PER_EPOCH = _data()
    EPOCHS = 1
    model = MnistModel()
    model.summary()
    names = []

    def walk_layers(layer):
        if hasattr(layer, "layers"):
            for layer in layer.layers:
                walk_layers(layer)
        else:
            names.append(layer.name)

    walk_layers(model)
    assert names[-1] == "classification_head" and len(names) == 9

    model = MnistModel()
    input = model.input
    # cut before the classification head
    y = model.get_layer("classification_head").input
    output = keras.layers.Dense(
        1,  # single class for binary classification
        activation="sigmoid",
        name="binary_classification_head",
    )(y)
    binary_model = keras.Model(input, output)
    binary_model.summary()

    bin_train_data = train_data.map(
        lambda x, y: (x, tf.cast(tf.math.equal(y, tf.zeros_like(y)), dtype=tf.uint8))
    )
    bin_test_data = test_data.map(
        lambda x, y: (x, tf.cast(tf.math.equal(y, tf.zeros_like(y)), dtype=tf.uint8))
    )
    binary_model.compile(
        optimizer="adam", loss="binary_crossentropy", metrics=["binary_accuracy"]
    )
    history = binary_model.fit(
        bin_train_data,
        steps_per_epoch=STEPS_PER_EPOCH,
        epochs=EPOCHS,
        validation_data=bin_test_data,
        verbose=0,
    )
    assert 0.0 <= history.history["val_binary_accuracy"][0] <= 1.0
    # the surgery kept the trunk: the binary model shares the convolutions' weights
    assert binary_model.layers[2] is model.layers[2]


def test_dict_inputs():
    keras.utils.set_random_seed(0)
    train_data, test_data, STEPS_PER_EPOCH = _data()
    EPOCHS = 1
    model = MnistDictModel()
    dict_train_data = train_data.map(lambda x, y: ({"image": x}, y))
    dict_test_data = test_data.map(lambda x, y: ({"image": x}, y))
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    )
    history = model.fit(
        dict_train_data,
        steps_per_epoch=STEPS_PER_EPOCH,
        epochs=EPOCHS,
        validation_data=dict_test_data,
        verbose=0,
    )
    assert np.isfinite(history.history["val_loss"][0])
