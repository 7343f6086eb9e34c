"""keras.io guide "The Sequential model" (guides/sequential_model.py).

Each test walks one section of the guide with its layer stacks and calls;
imports are kgraph's and the data is random arrays of the guide's shapes.
"""

import numpy as np

from kgraph import keras
from kgraph.keras import layers, ops


def _three_layers():
    return [layers.Dense(2, activation="relu", name="layer1"),
            layers.Dense(3, activation="relu", name="layer2"),
            layers.Dense(4, name="layer3")]


def test_sequential_equals_chained_layers():
    model = keras.Sequential(_three_layers())
    x = ops.ones((3, 3))
    y = model(x)
    layer1, layer2, layer3 = model.layers
    np.testing.assert_allclose(np.asarray(layer3(layer2(layer1(x)))), np.asarray(y), atol=1e-6)
    assert np.asarray(y).shape == (3, 4)


def test_add_pop_and_name():
    model = keras.Sequential()
    model.add(layers.Dense(2, activation="relu"))
    model.add(layers.Dense(3, activation="relu"))
    model.add(layers.Dense(4))
    model.pop()
    assert len(model.layers) == 2
    named = keras.Sequential(name="my_sequential")
    named.add(layers.Dense(2, activation="relu", name="layer1"))
    assert named.name == "my_sequential"


def test_weights_created_on_first_call():
    layer = layers.Dense(3)
    assert layer.weights == []
    x = ops.ones((1, 4))
    layer(x)
    assert len(layer.weights) == 2
    model = keras.Sequential([layers.Dense(2, activation="relu"),
                              layers.Dense(3, activation="relu"), layers.Dense(4)])
    model(x)
    assert len(model.weights) == 6
    model.summary()


def test_input_object_and_summary_as_you_go():
    model = keras.Sequential()
    model.add(keras.Input(shape=(4,)))
    model.add(layers.Dense(2, activation="relu"))
    assert len(model.layers) == 1
    model.summary()
    cnn = keras.Sequential()
    cnn.add(keras.Input(shape=(250, 250, 3)))
    cnn.add(layers.Conv2D(32, 5, strides=2, activation="relu"))
    cnn.add(layers.Conv2D(32, 3, activation="relu"))
    cnn.add(layers.MaxPooling2D(3))
    cnn.add(layers.Conv2D(32, 3, activation="relu"))
    cnn.add(layers.Conv2D(32, 3, activation="relu"))
    cnn.add(layers.MaxPooling2D(3))
    cnn.add(layers.Conv2D(32, 3, activation="relu"))
    cnn.add(layers.Conv2D(32, 3, activation="relu"))
    cnn.add(layers.MaxPooling2D(2))
    cnn.add(layers.GlobalMaxPooling2D())
    cnn.add(layers.Dense(10))
    assert tuple(cnn.outputs[0].shape) == (None, 10)


def test_feature_extraction():
    initial_model = keras.Sequential([
        keras.Input(shape=(250, 250, 3)),
        layers.Conv2D(32, 5, strides=2, activation="relu"),
        layers.Conv2D(32, 3, activation="relu", name="my_intermediate_layer"),
        layers.Conv2D(32, 3, activation="relu"),
    ])
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=initial_model.get_layer(name="my_intermediate_layer").output)
    x = ops.ones((1, 250, 250, 3))
    assert tuple(feature_extractor(x).shape) == (1, 121, 121, 32)
    all_features = keras.Model(inputs=initial_model.inputs,
                               outputs=[layer.output for layer in initial_model.layers])
    assert len(all_features(x)) == 3


def test_transfer_learning_freeze_all_but_last():
    model = keras.Sequential([
        keras.Input(shape=(784,)),
        layers.Dense(32, activation="relu"),
        layers.Dense(32, activation="relu"),
        layers.Dense(32, activation="relu"),
        layers.Dense(10),
    ])
    for layer in model.layers[:-1]:
        layer.trainable = False
    frozen_before = [np.array(w) for w in model.layers[0].get_weights()]
    last_before = np.array(model.layers[-1].get_weights()[0])
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 784)).astype("float32"),
              rng.random((32, 10)).astype("float32"), epochs=1, verbose=0)
    for before, after in zip(frozen_before, model.layers[0].get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not np.allclose(last_before, model.layers[-1].get_weights()[0])
