"""keras.io guide "Transfer learning & fine-tuning"
(guides/transfer_learning.py).

The guide's trainable/non-trainable weight bookkeeping, freezing, recursive
`trainable`, and its freeze-train-unfreeze-fine-tune workflow with data
augmentation and a `training=False` base. The guide's base, an ImageNet
`keras.applications.Xception`, is built as written with `weights=None` (no
download) and trains its new head for one small epoch (marked slow); the
freeze-train-unfreeze-fine-tune workflow also runs on a small functional conv
base with BatchNormalization standing in. Data: random images, small.
"""

import numpy as np
import pytest

from kgraph import keras
from kgraph.keras import layers


def test_trainable_and_non_trainable_weights():
    layer = keras.layers.Dense(3)
    layer.build((None, 4))
    assert len(layer.weights) == 2 and len(layer.trainable_weights) == 2
    assert len(layer.non_trainable_weights) == 0
    bn = keras.layers.BatchNormalization()
    bn.build((None, 4))
    assert len(bn.weights) == 4 and len(bn.trainable_weights) == 2
    assert len(bn.non_trainable_weights) == 2
    layer.trainable = False
    assert len(layer.trainable_weights) == 0 and len(layer.non_trainable_weights) == 2


def test_frozen_layer_does_not_update():
    layer1 = keras.layers.Dense(3, activation="relu")
    layer2 = keras.layers.Dense(3, activation="sigmoid")
    model = keras.Sequential([keras.Input(shape=(3,)), layer1, layer2])
    layer1.trainable = False
    initial_layer1_weights_values = layer1.get_weights()
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.random.random((2, 3)), np.random.random((2, 3)), verbose=0)
    final_layer1_weights_values = layer1.get_weights()
    np.testing.assert_allclose(initial_layer1_weights_values[0],
                               final_layer1_weights_values[0], rtol=1e-6)
    np.testing.assert_allclose(initial_layer1_weights_values[1],
                               final_layer1_weights_values[1], rtol=1e-6)


def test_recursive_trainable():
    inner_model = keras.Sequential([keras.Input(shape=(3,)),
                                    keras.layers.Dense(3, activation="relu"),
                                    keras.layers.Dense(3, activation="relu")])
    model = keras.Sequential([keras.Input(shape=(3,)), inner_model,
                              keras.layers.Dense(3, activation="sigmoid")])
    model.trainable = False
    assert inner_model.trainable is False
    assert inner_model.layers[0].trainable is False


def _small_base(input_shape=(32, 32, 3)):
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(8, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same")(x)
    return keras.Model(inputs, x, name="base")


def _classifier(base_model, size=32):
    data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                          layers.RandomRotation(0.1)])
    inputs = keras.Input(shape=(size, size, 3))
    x = data_augmentation(inputs)
    scale_layer = keras.layers.Rescaling(scale=1 / 127.5, offset=-1)
    x = scale_layer(x)
    x = base_model(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(1)(x)
    return keras.Model(inputs, outputs)


def test_freeze_train_then_fine_tune():
    base_model = _small_base()
    base_model.trainable = False
    model = _classifier(base_model)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 2, (32, 1)).astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy()])
    frozen = [np.array(w) for w in base_model.get_weights()]
    model.fit(images, labels, epochs=1, batch_size=16, validation_data=(images, labels),
              verbose=0)
    for before, after in zip(frozen, base_model.get_weights()):
        np.testing.assert_array_equal(before, after)
    base_model.trainable = True
    model.compile(optimizer=keras.optimizers.Adam(1e-5),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy()])
    model.fit(images, labels, epochs=1, batch_size=16, verbose=0)
    after = base_model.get_weights()
    bn = base_model.layers[2]
    assert isinstance(bn, layers.BatchNormalization)
    moving = [np.array(v) for v in bn.non_trainable_weights]
    np.testing.assert_array_equal(moving[0], 0.0)  # training=False: statistics untouched
    assert not np.allclose(frozen[0], after[0])


@pytest.mark.slow
def test_xception_base_as_written():
    base_model = keras.applications.Xception(weights=None, input_shape=(150, 150, 3),
                                             include_top=False)
    base_model.trainable = False
    data_augmentation = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)])
    inputs = keras.Input(shape=(150, 150, 3))
    x = data_augmentation(inputs)
    scale_layer = keras.layers.Rescaling(scale=1 / 127.5, offset=-1)
    x = scale_layer(x)
    x = base_model(x, training=False)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy()])
    assert len(model.trainable_weights) == 2  # only the new Dense head
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 150, 150, 3)).astype("float32")
    labels = rng.integers(0, 2, (8, 1)).astype("float32")
    base_before = [np.array(w) for w in base_model.get_weights()]
    head_before = [np.array(w) for w in model.layers[-1].get_weights()]
    history = model.fit(images, labels, epochs=1, batch_size=4, verbose=0)
    assert set(history.history) == {"loss", "binary_accuracy"}
    for b, a in zip(base_before, base_model.get_weights()):
        np.testing.assert_array_equal(a, b)  # frozen, BatchNorm statistics included
    assert not np.allclose(head_before[0], model.layers[-1].get_weights()[0])
