"""Calls Keras 3 accepts that the keras.io GPT example (nlp/Generative_Pretrained_Transformer)
makes: a `Sequential` without an `Input`, built by its first call, called on another length;
a subclassed model whose eager call returns `(logits, None)`."""
import numpy as np

from kgraph import keras
from kgraph.keras import layers


def test_sequential_built_by_its_first_call_takes_another_length_as_keras():
    keras.utils.set_random_seed(0)
    net = keras.Sequential([layers.Dense(8, activation="relu"), layers.Dense(4)])
    long = np.random.default_rng(0).normal(size=(2, 32, 6)).astype("float32")
    out_long = np.asarray(net(long))
    out_short = np.asarray(net(long[:1, :1]))  # Keras 3: no input spec, the layers just run
    assert out_short.shape == (1, 1, 4)
    np.testing.assert_allclose(out_short, out_long[:1, :1], rtol=1e-5, atol=1e-6)
    # a Sequential given an Input still checks it
    fixed = keras.Sequential([keras.Input((32, 6)), layers.Dense(4)])
    try:
        fixed(long[:1, :1])
    except ValueError as error:
        assert "incompatible" in str(error)
    else:
        raise AssertionError("a Sequential with an Input took another length")


def test_eager_call_of_a_model_returning_none_among_its_outputs():
    class Model(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3)

        def call(self, x, targets=None):
            logits = self.dense(x)
            if targets is None:
                return logits, None
            return logits, keras.ops.mean((logits - targets) ** 2)

    model = Model()
    x = np.ones((2, 5), "float32")
    logits, loss = model(x)
    assert loss is None and np.asarray(logits).shape == (2, 3)
    logits, loss = model(x, np.zeros((2, 3), "float32"))
    np.testing.assert_allclose(float(loss), np.mean(np.asarray(logits) ** 2), rtol=1e-5)


def test_sequential_first_built_inside_a_traced_step_on_generated_kernels():
    # intro_to_keras_for_researchers.py's hypernetwork: the main network's layers are marked
    # built, their kernels set to tensors of the traced step, and the Sequential is built by
    # its first call inside that step
    import kgraph as tf

    main = keras.Sequential([layers.Dense(3)])
    for layer in main.layers:
        layer.built = True
    generator = keras.Sequential([layers.Dense(4 * 3 + 3)])
    x = np.random.default_rng(0).normal(size=(1, 4)).astype("float32")

    @tf.function
    def step(x):
        coeffs = generator(x)
        main.layers[0].kernel = tf.reshape(coeffs[:, :12], (4, 3))
        main.layers[0].bias = tf.reshape(coeffs[:, 12:], (3,))
        return main(x), coeffs

    out, coeffs = (np.asarray(v) for v in step(x))
    np.testing.assert_allclose(out, x @ coeffs[0, :12].reshape(4, 3) + coeffs[0, 12:],
                               rtol=1e-5, atol=1e-6)
    assert main.weights == []
