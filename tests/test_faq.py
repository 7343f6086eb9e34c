"""The Keras FAQ's code blocks run with `tensorflow` replaced by `kgraph`.

Where a block is pseudo-code (`model.compile(...)`, an undefined `ResNet50Base`, `data`),
the test defines the missing names in a prelude or fills the `...` with concrete arguments,
and says so; the block's own lines are otherwise run as written."""
import os

import numpy as np
import pytest

from faq_blocks import FAQ, block, doctest_source


PRELUDE = """
import numpy as np
import kgraph as tf
from kgraph import keras
from kgraph.keras import layers
from kgraph.keras.layers import Dense, Dropout
from kgraph.keras.models import Sequential


def ResNet50Base(input_shape, weights=None):
    # stand-in for the FAQ's imaginary pretrained base: a small functional model
    inputs = keras.Input(shape=input_shape)
    x = layers.Flatten()(inputs)
    x = layers.Dense(16, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(8, activation="relu")(x), name="resnet50_base")
"""


def run(code, namespace=None):
    namespace = namespace if namespace is not None else {}
    exec(compile(PRELUDE, "prelude", "exec"), namespace)
    exec(compile(code, "faq", "exec"), namespace)
    return namespace


def test_reproducibility_block():
    ns = run(block("reproducible results", 0))
    tf = ns["tf"]
    a = ns["keras"].layers.Dense(4)
    a.build((None, 3))
    run(block("reproducible results", 0), ns)
    b = ns["keras"].layers.Dense(4)
    b.build((None, 3))
    np.testing.assert_array_equal(a.get_weights()[0], b.get_weights()[0])
    assert tf.random is not None


def test_freezing_layers_doctest_block():
    code = doctest_source(block("freeze layers", 0))
    ns = run(code)
    assert ns["layer"].trainable is False and ns["layer"].trainable_weights == []


def test_freezing_with_fit_block():
    fill = ("model.compile(optimizer='adam', loss='mse')",
            "model.fit(np.random.rand(16, 32, 32, 3), np.random.rand(16, 10), epochs=1, verbose=0)")
    code = block("freeze layers", 1).replace("model.compile(...)", fill[0]).replace(
        "model.fit(...)", fill[1])
    ns = run("frozen_before = None\n" + code)
    base = ns["model"].layers[0]
    assert base.trainable_weights == [] and len(ns["model"].trainable_weights) == 2


def test_gan_trainable_is_captured_per_compile():
    code = block("freeze layers", 3)
    prelude = """
discriminator = Sequential([keras.Input((4,)), Dense(1, name='disc')])
generator = Sequential([keras.Input((2,)), Dense(4, name='gen')])
gan = Sequential([generator, discriminator])
"""
    code = code.replace("discriminator.compile(...)", "discriminator.compile('sgd', 'mse')")
    code = code.replace("gan.compile(...)", "gan.compile('sgd', 'mse')")
    ns = run(prelude + code)
    disc, gan, gen = ns["discriminator"], ns["gan"], ns["generator"]
    x4, x2, y = np.random.rand(8, 4), np.random.rand(8, 2), np.random.rand(8, 1)
    w = disc.get_weights()[0].copy()
    disc.fit(x4, y, verbose=0)  # compiled while trainable: the discriminator learns
    assert not np.allclose(w, disc.get_weights()[0])
    w, g = disc.get_weights()[0].copy(), gen.get_weights()[0].copy()
    gan.fit(x2, y, verbose=0)  # compiled while frozen: only the generator learns
    np.testing.assert_array_equal(w, disc.get_weights()[0])
    assert not np.allclose(g, gen.get_weights()[0])


def test_training_argument_block():
    ns = run("x = np.ones((64, 100), 'float32')\n" + block("`training` argument", 0))
    y = np.asarray(ns["y"])
    assert set(np.unique(y).tolist()) == {0.0, 2.0}  # dropped or rescaled: training mode


AUTO_SCALE_DROPOUT = """
class AutoScaleDropout(keras.layers.Layer):
    # the FAQ's imaginary layer: dropout whose output scale is learned
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.dropout = keras.layers.Dropout(rate)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, inputs, training=False):
        return self.dropout(inputs, training=training) * self.scale

x = np.ones((8, 50), "float32")
"""


def test_autoscale_dropout_blocks():
    ns = run(AUTO_SCALE_DROPOUT + block("`training` argument", 2))
    assert np.asarray(ns["y"]).min() == 0.0
    ns = run(AUTO_SCALE_DROPOUT + block("`training` argument", 3))
    assert ns["layer"].trainable_weights == []
    assert np.asarray(ns["y"]).min() == 0.0  # still dropping at "inference" time


def test_intermediate_layer_model_block():
    prelude = """
model = keras.Sequential([keras.Input((6,)), layers.Dense(5, name='my_layer'),
                          layers.Dense(2)])
data = np.random.rand(3, 6).astype('float32')
"""
    code = block("intermediate layer", 1).replace("model = ...  # create the original model\n", "")
    ns = run(prelude + code)
    kernel, bias = ns["model"].get_layer("my_layer").get_weights()
    np.testing.assert_allclose(ns["intermediate_output"], ns["data"] @ kernel + bias, rtol=1e-5)


def test_custom_train_step_blocks():
    first = block("customize what `fit()` does", 1)
    ns = run(first.replace("epochs=10", "epochs=2, verbose=0"))
    assert len(ns["model"].history.history["loss"]) == 2
    second = block("customize what `fit()` does", 2)
    ns = run(second.replace("epochs=10", "epochs=2, verbose=0"))
    assert ns["model"].history.history["loss"][-1] > 0
    third = block("customize what `fit()` does", 3)
    ns = run(third + """
inputs = keras.Input(shape=(32,))
model = MyCustomModel(inputs, keras.layers.Dense(1)(inputs))
model.compile(optimizer='adam', loss='mse', metrics=['mae'])
result = model.evaluate(np.random.random((64, 32)), np.random.random((64, 1)), verbose=0)
""")
    assert len(ns["result"]) == 2


def test_custom_training_loop_block():
    prelude = """
model = keras.Sequential([keras.Input((8,)), layers.Dense(4, activation='softmax')])
xs = np.random.rand(64, 8).astype('float32')
ys = np.random.dirichlet(np.ones(4), 64).astype('float32')
dataset = [(xs[i:i + 16], ys[i:i + 16]) for i in range(0, 64, 16)]
before = model.get_weights()[0].copy()
"""
    ns = run(prelude + block("customize what `fit()` does", 0))
    assert not np.allclose(ns["before"], ns["model"].get_weights()[0])
