"""Core layers through the layer harness, plus custom Layer subclasses."""
import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras


@pytest.mark.parametrize("kwargs", [
    {"units": 3},
    {"units": 4, "activation": "relu", "use_bias": False},
    {"units": 2, "activation": "tanh", "kernel_regularizer": "l2",
     "kernel_constraint": "max_norm"},
])
def test_dense(kwargs):
    layer = run_layer_test(keras.layers.Dense, kwargs, (5, 6),
                           expected_output_shape=(5, kwargs["units"]),
                           expected_num_trainable_weights=1 + kwargs.get("use_bias", True))
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("f4")
    kernel = layer.get_weights()[0]
    pre = x @ kernel + (layer.get_weights()[1] if layer.use_bias else 0)
    expected = {"relu": np.maximum(pre, 0), "tanh": np.tanh(pre)}.get(kwargs.get("activation"), pre)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_dense_on_sequences_uses_the_last_axis():
    run_layer_test(keras.layers.Dense, {"units": 3}, (2, 4, 5), expected_output_shape=(2, 4, 3))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "gelu", "elu", "selu",
                                  "softplus", "softsign", "swish", "silu", "leaky_relu",
                                  "hard_sigmoid", "exponential", "linear", "relu6", "log_softmax"])
def test_activation_layer_matches_numpy(name):
    from scipy.special import erf

    x = np.linspace(-3, 3, 24, dtype="f4").reshape(4, 6)
    sig = 1 / (1 + np.exp(-x))
    sm = np.exp(x - x.max(-1, keepdims=True))
    sm = sm / sm.sum(-1, keepdims=True)
    a, s = 1.6732632423543772, 1.0507009873554805
    expected = {
        "relu": np.maximum(x, 0), "sigmoid": sig, "tanh": np.tanh(x), "softmax": sm,
        "gelu": 0.5 * x * (1 + erf(x / np.sqrt(2))), "elu": np.where(x > 0, x, np.exp(x) - 1),
        "selu": s * np.where(x > 0, x, a * (np.exp(x) - 1)), "softplus": np.log1p(np.exp(x)),
        "softsign": x / (1 + np.abs(x)), "swish": x * sig, "silu": x * sig,
        "leaky_relu": np.where(x > 0, x, 0.2 * x), "hard_sigmoid": np.clip(x / 6 + 0.5, 0, 1),
        "exponential": np.exp(x), "linear": x, "relu6": np.clip(x, 0, 6),
        "log_softmax": np.log(sm),
    }[name]
    np.testing.assert_allclose(keras.layers.Activation(name)(x), expected, rtol=1e-5, atol=1e-6)
    assert keras.activations.serialize(keras.activations.get(name)) in (name, "silu")


def test_dropout_layer():
    run_layer_test(keras.layers.Dropout, {"rate": 0.3}, (4, 10), expected_output_shape=(4, 10))
    with pytest.raises(ValueError, match="rate=1.5"):
        keras.layers.Dropout(1.5)


class Linear(keras.layers.Layer):
    """The Keras guide's custom layer: weights in build(), math in call()."""

    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal",
                                 trainable=True, name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True,
                                 name="b")
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                     name="calls")

    def call(self, inputs, training=None):
        if training:
            self.calls.assign(self.calls + 1.0)
        return keras.ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def test_custom_layer_subclass():
    layer = run_layer_test(Linear, {"units": 3}, (4, 5), expected_output_shape=(4, 3),
                           expected_num_trainable_weights=2,
                           expected_num_non_trainable_weights=1)
    assert [v.path for v in layer.weights] == [f"{layer.name}/w", f"{layer.name}/b",
                                               f"{layer.name}/calls"]
    layer.trainable = False
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 3
    layer.trainable = True
    inputs = keras.Input((5,))
    model = keras.Model(inputs, Linear(2, name="lin")(inputs))
    model.compile("sgd", "mse")
    x, y = np.ones((8, 5), "f4"), np.ones((8, 2), "f4")
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert float(model.get_layer("lin").calls.numpy()) == 4.0  # training=True in fit steps
    model.predict(x, verbose=0)
    assert float(model.get_layer("lin").calls.numpy()) == 4.0  # and False in predict


def test_custom_layer_with_sublayers_and_add_loss():
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.inner = keras.layers.Dense(3)
            self.outer = keras.layers.Dense(1)

        def call(self, x):
            h = self.inner(x)
            self.add_loss(0.1 * keras.ops.sum(keras.ops.square(h)))
            return self.outer(h)

    block = Block()
    inputs = keras.Input((2,))
    model = keras.Model(inputs, block(inputs))
    assert len(block.trainable_weights) == 4 and len(model.trainable_weights) == 4
    block.trainable = False
    assert block.inner.trainable is False and model.trainable_weights == []
    block.trainable = True
    x, y = np.ones((4, 2), "f4"), np.zeros((4, 1), "f4")
    model.compile(keras.optimizers.SGD(0.0), "mse")
    train_loss = model.fit(x, y, batch_size=4, verbose=0).history["loss"][0]
    h = x @ block.inner.get_weights()[0] + block.inner.get_weights()[1]
    np.testing.assert_allclose(train_loss, np.mean(model.predict(x, verbose=0) ** 2)
                               + 0.1 * np.sum(h ** 2), rtol=1e-5)


def test_layer_errors_quote_values():
    with pytest.raises(ValueError, match="units=0"):
        keras.layers.Dense(0)
    with pytest.raises(ValueError, match="nope"):
        keras.layers.Dense(2, activation="nope")
    with pytest.raises(TypeError, match="bogus"):
        keras.layers.Dense(2, bogus=1)
    layer = keras.layers.Dense(2)
    layer(np.ones((1, 3), "f4"))
    with pytest.raises(ValueError, match=r"value 3.*\(None, 4\)"):
        layer(np.ones((1, 4), "f4"))
    with pytest.raises(ValueError, match="min_ndim=2"):
        keras.layers.Dense(2)(keras.Input(shape=()))


def test_build_without_shape_argument_is_called_bare():
    # Keras calls a `def build(self)` with no shape (the keras.io GRN/VSN example's
    # VariableSelection declares one "to remove the build warnings"), eagerly and symbolically.
    class Scale(keras.layers.Layer):
        def build(self):
            self.scale = self.add_weight(shape=(), initializer="ones")
            self.built = True

        def call(self, inputs):
            return inputs * self.scale

    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_allclose(np.asarray(Scale()(x)), x)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Scale()(inputs))
    assert model.count_params() == 1
    np.testing.assert_allclose(model.predict(x, verbose=0), x)


def test_string_input_feeds_host_layers_only():
    import kgraph as tf
    from kgraph.keras.layers.preprocessing.host_layer import StringInputError

    assert tf.string == tf.dtypes.string == "string"
    user_id = keras.Input(shape=(1,), dtype=tf.string, name="user_id")
    assert user_id.dtype == "string" and user_id.shape == (None, 1)
    with pytest.raises(StringInputError, match=r"Dense layer 'dense_s'.*'user_id'.*StringLookup"):
        keras.layers.Dense(2, name="dense_s")(user_id)


@pytest.mark.parametrize("make_layer, shape", [
    (lambda: keras.layers.Dense(3, activation="softmax"), (2, 4)),
    (lambda: keras.layers.Conv2D(3, 2, activation="relu"), (2, 5, 5, 2)),
    (lambda: keras.layers.DepthwiseConv2D(2, activation="relu"), (2, 5, 5, 2)),
    (lambda: keras.layers.SeparableConv2D(3, 2, activation="relu"), (2, 5, 5, 2)),
    (lambda: keras.layers.Conv2DTranspose(3, 2, activation="relu"), (2, 5, 5, 2)),
])
def test_activation_set_to_none_after_the_build_is_linear(make_layer, shape):
    # grad_cam.py removes a model's softmax with `model.layers[-1].activation = None`
    x = np.random.default_rng(1).normal(size=shape).astype("f4")
    layer = make_layer()
    inputs = keras.Input(shape[1:])
    model = keras.Model(inputs, layer(inputs))
    linear = make_layer()
    linear.activation = keras.activations.get("linear")
    linear(x)
    linear.set_weights(layer.get_weights())
    layer.activation = None
    np.testing.assert_allclose(model.predict(x, verbose=0), linear(x), rtol=1e-5, atol=1e-6)
    assert layer.get_config()["activation"] == "linear"


def test_training_defaults_to_the_call_signature_as_keras_resolves_it():
    # semisupervised_simclr.py: `def call(self, images, training=True)` augments when called
    # without `training`, also inside a Sequential called without it; an explicit value or
    # an outer call's value wins
    class Marked(keras.layers.Layer):
        def call(self, inputs, training=True):
            return inputs + (1.0 if training else 0.0)

    class Plain(keras.layers.Layer):
        def call(self, inputs, training=None):
            return inputs + (1.0 if training else 0.0)

    x = np.zeros((2, 3), "float32")
    np.testing.assert_array_equal(Marked()(x), x + 1)
    np.testing.assert_array_equal(Marked()(x, training=False), x)
    np.testing.assert_array_equal(Plain()(x), x)
    model = keras.Sequential([keras.Input((3,)), Marked(), Plain()])
    np.testing.assert_array_equal(model(x), x + 1)
    np.testing.assert_array_equal(model(x, training=True), x + 2)
    np.testing.assert_array_equal(model(x, training=False), x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)  # predict: training=False


def test_a_layer_called_with_its_first_argument_by_name_builds_from_it():
    # masked_image_modeling.py: `patch_encoder(patches=patches)`, a `build(input_shape)` that
    # unpacks the shape
    class Encoder(keras.layers.Layer):
        def build(self, input_shape):
            (_, self.count, self.width) = input_shape
            self.projection = keras.layers.Dense(2)

        def call(self, patches):
            return self.projection(patches) * float(self.count)

    x = np.ones((2, 3, 4), "float32")
    layer = Encoder()
    out = layer(patches=x)
    assert (layer.count, layer.width) == (3, 4) and out.shape == (2, 3, 2)
    np.testing.assert_allclose(out, layer(x), rtol=1e-6)


def test_training_passed_by_position_is_bound_by_name():
    # the keras.io GAN-ADA example: `self.augmenter(images, training)` into a Sequential and
    # a Model subclass whose `call(self, images, training)` takes it positionally
    import kgraph as tf
    from kgraph import keras

    seen = []

    class Probe(keras.layers.Layer):
        def call(self, x, training=None):
            seen.append(training)
            return x * 2.0

    class Wrapper(keras.Model):
        def __init__(self):
            super().__init__()
            self.inner = keras.Sequential([keras.Input((2,)), Probe(),
                                           keras.layers.Dropout(0.999)])

        def call(self, x, training):
            return self.inner(x, training)

    model, x = Wrapper(), np.ones((3, 2), "float32")
    np.testing.assert_array_equal(model(x, False), 2 * x)  # eager, no dropout
    assert seen[-1] is False
    dropped = model(x, True)
    assert seen[-1] is True and float(np.sum(np.asarray(dropped) == 0)) >= 1

    @tf.function
    def traced(v):
        return model(v, False)

    np.testing.assert_array_equal(traced(x), 2 * x)


def test_build_runs_outside_the_graph_being_traced():
    # swin_transformers.py: `build` computes a mask with tf ops on numpy arrays and keeps it in
    # a non-trainable tf.Variable, while the layer is first called on a KerasTensor
    import kgraph as tf

    class Masked(keras.layers.Layer):
        def build(self, input_shape):
            grid = tf.convert_to_tensor(np.arange(4.0).reshape(2, 2))
            mask = tf.where(tf.expand_dims(grid, 0) - tf.expand_dims(grid, 1) != 0, -1.0, 0.0)
            self.mask = tf.Variable(initial_value=mask, trainable=False)

        def call(self, x):
            return x + self.mask

    inputs = keras.Input((2, 2, 2))
    layer = Masked()
    model = keras.Model(inputs, layer(inputs))
    expected = np.where(np.arange(4.0).reshape(2, 2)[None] != np.arange(4.0).reshape(2, 2)[:, None],
                        -1.0, 0.0)
    np.testing.assert_array_equal(np.asarray(layer.mask), expected)
    np.testing.assert_array_equal(model.predict(np.zeros((1, 2, 2, 2), "float32"), verbose=0),
                                  expected[None])


def test_tensors_a_call_stores_on_its_layers_are_eager_after_an_eager_call():
    # focal_modulation_network.py reads `model.basic_layers[1].blocks[-1].modulation.gates`
    # after `model(images)`; the layer sits in lists of lists
    class Gate(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            self.gates = self.dense(x) * 2.0
            self._private = self.gates  # private attributes are left alone
            return self.gates + 1.0

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.stages = [[Gate()], [Gate()]]

        def call(self, x):
            return self.stages[1][0](self.stages[0][0](x))

    net = Net()
    for batch in (np.ones((2, 3), "float32"), np.zeros((4, 3), "float32")):
        out = net(batch)
        gates = net.stages[1][0].gates
        assert hasattr(gates, "numpy") and gates.shape == (len(batch), 2)
        np.testing.assert_allclose(np.asarray(gates) + 1.0, out, rtol=1e-6)


def test_an_unbuilt_sequential_called_from_several_threads_builds_once():
    # focal_modulation_network.py maps an augmentation Sequential without an Input over a
    # dataset with num_parallel_calls
    from concurrent.futures import ThreadPoolExecutor

    model = keras.Sequential([keras.layers.Rescaling(0.5), keras.layers.Dense(3)])
    images = [np.full((4, 2), float(i), "float32") for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(model, images))
    kernel, bias = model.layers[-1].get_weights()
    for x, out in zip(images, outs):
        np.testing.assert_allclose(out, x * 0.5 @ kernel + bias, rtol=1e-5, atol=1e-6)
