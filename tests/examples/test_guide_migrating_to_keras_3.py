"""keras.io guide "Migrating Keras 2 code to multi-backend Keras 3" (guides/migrating_to_keras_3.py).

Each test walks one section's fix as written; `import keras; import tensorflow as tf` are
`from kgraph import keras; import kgraph as tf` (the guide's `KERAS_BACKEND` line has nothing
to choose here), files go to the test's temporary folder. `model.export("saved_model")` writes
kgraph's export format (ONNX), not a TensorFlow SavedModel.

**xfail** (TensorFlow-only, as the guide's fixes are written): the `jit_compile` section's
model calls `tf.strings.as_string`/`tf.strings.to_number` (kgraph graphs carry no strings);
`keras.layers.TFSMLayer` reads a TensorFlow SavedModel. The autograph section's `@tf.function`
`call` that branches with a Python `if` on a random tensor runs (kgraph/autograph.py converts
the `if`; each predict doubles or halves, checked). Also **xfail**, as
on Keras 3.15 itself (checked with real Keras): the multi-output `evaluate(x_test, y_test)`
with one target array for two outputs that both have a loss. Not asserted: the
guide's contrast of stateless `keras.random.normal(seed=123)` with TensorFlow's stateful
`tf.random.normal(seed=123)` (kgraph's `tf.random` is `keras.random`: both repeat).
"""

import numpy as np
import pytest


@pytest.mark.xfail(strict=True,
                   reason="tf.strings.as_string/to_number: kgraph graphs carry no strings")
def test_jit_compile_section_with_tf_strings():
    import kgraph as tf
    from kgraph import keras

    class MyModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)

        def call(self, inputs):
            string_input = tf.strings.as_string(inputs)
            return tf.strings.to_number(string_input)

    subclass_model = MyModel()
    x_train = np.array([[1, 2, 3], [4, 5, 6]])
    subclass_model.jit_compile = False
    subclass_model.predict(x_train)


def test_saving_with_export(tmp_path, monkeypatch):
    from kgraph import keras

    monkeypatch.chdir(tmp_path)
    sequential_model = keras.Sequential([keras.layers.Dense(2)])
    sequential_model(np.random.rand(3, 5))
    sequential_model.export("saved_model")
    assert (tmp_path / "saved_model").stat().st_size > 0


@pytest.mark.xfail(strict=True, raises=AttributeError,
                   reason="TFSMLayer reloads a TensorFlow SavedModel: TensorFlow only")
def test_loading_a_tf_saved_model_with_tfsmlayer():
    from kgraph import keras

    keras.layers.TFSMLayer("saved_model", call_endpoint="serving_default")


def test_nested_inputs_replaced_by_flat_dicts():
    from kgraph import keras

    inputs = {
        "foo": keras.Input(shape=(1,), name="foo"),
        "bar": keras.Input(shape=(1,), name="bar"),
    }
    outputs = inputs["foo"] + inputs["bar"]
    model = keras.Model(inputs, outputs)
    out = model({"foo": np.ones((2, 1)), "bar": np.full((2, 1), 2.0)})
    np.testing.assert_allclose(out, 3.0)


def test_tf_autograph_section():
    import kgraph as tf
    from kgraph import keras

    class MyCustomLayer(keras.layers.Layer):
        @tf.function()
        def call(self, inputs):
            if tf.random.uniform(()) > 0.5:
                return inputs * 2
            else:
                return inputs / 2

    layer = MyCustomLayer()
    data = np.random.uniform(size=[3, 3])
    model = keras.models.Sequential([layer])
    model.compile(optimizer="adam", loss="mse")
    model.predict(data)
    # AutoGraph (kgraph/autograph.py): each call doubles or halves, by its random number
    ratios = {float(np.round(np.mean(model.predict(data, verbose=0) / data), 4))
              for _ in range(12)}
    assert ratios == {0.5, 2.0}


def test_keras_ops_on_a_keras_tensor():
    from kgraph import keras

    input = keras.layers.Input([2, 2, 1])
    assert keras.ops.squeeze(input).shape == (None, 2, 2)


@pytest.mark.xfail(strict=True, raises=ValueError,
                   reason="fails on Keras 3.15 too (KeyError): one target array for a model "
                   "with two outputs, each with a loss")
def test_multi_output_model_evaluate():
    from kgraph import keras
    from kgraph.keras import layers

    inputs = layers.Input(shape=(10,))
    x1 = layers.Dense(5, activation="relu")(inputs)
    x2 = layers.Dense(5, activation="relu")(x1)
    output_1 = layers.Dense(5, activation="softmax", name="output_1")(x1)
    output_2 = layers.Dense(5, activation="softmax", name="output_2")(x2)
    x_test = np.random.uniform(size=[10, 10])
    y_test = np.random.uniform(size=[10, 5])
    multi_output_model = keras.Model(inputs=inputs, outputs=[output_1, output_2])
    multi_output_model.compile(
        optimizer="adam",
        loss="categorical_crossentropy",
        metrics=["categorical_crossentropy", "categorical_crossentropy"],
    )
    results = multi_output_model.evaluate(x_test, y_test, return_dict=True)
    assert {"loss", "output_1_categorical_crossentropy",
            "output_2_categorical_crossentropy"} <= set(results)
    np.testing.assert_allclose(results["loss"],
                               results["output_1_categorical_crossentropy"]
                               + results["output_2_categorical_crossentropy"], rtol=1e-5)


def test_variables_tracked_with_add_weight():
    from kgraph import keras

    class MyCustomLayer(keras.layers.Layer):
        def __init__(self, units):
            super().__init__()
            self.units = units

        def build(self, input_shape):
            input_dim = input_shape[-1]
            self.w = self.add_weight(
                shape=[input_dim, self.units],
                initializer="zeros",
            )
            self.b = self.add_weight(
                shape=[
                    self.units,
                ],
                initializer="zeros",
            )

        def call(self, inputs):
            return keras.ops.matmul(inputs, self.w) + self.b

    layer = MyCustomLayer(3)
    data = np.random.uniform(size=[3, 3])
    model = keras.models.Sequential([layer])
    model.compile(optimizer="adam", loss="mse")
    model.predict(data)
    for layer in model.layers:
        print(layer.trainable_variables)
    assert [v.shape for v in model.layers[0].trainable_variables] == [(3, 3), (3,)]


def test_none_entries_in_nested_call_arguments():
    from kgraph import keras

    class CustomLayer(keras.layers.Layer):
        def __init__(self):
            super().__init__()

        def call(self, inputs):
            foo = inputs["foo"]
            baz = inputs["bar"]["baz"]
            return foo + baz

    layer = CustomLayer()
    inputs = {
        "foo": keras.Input(shape=(1,), name="foo"),
        "bar": {
            "baz": keras.Input(shape=(1,), name="bar"),
        },
    }
    assert layer(inputs).shape == (None, 1)

    class CustomLayer(keras.layers.Layer):
        def __init__(self):
            super().__init__()

        def call(self, foo, baz=None):
            if baz is not None:
                return foo + baz
            return foo

    layer = CustomLayer()
    foo = keras.Input(shape=(1,), name="foo")
    baz = None
    assert layer(foo, baz=baz).shape == (None, 1)
    np.testing.assert_allclose(layer(np.ones((2, 1)), baz=np.ones((2, 1))), 2.0)


def test_positional_embedding_with_a_build_and_compute_loss_override():
    from kgraph import keras
    from kgraph.keras import layers

    class PositionalEmbedding(keras.layers.Layer):
        def __init__(self, sequence_length, output_dim, **kwargs):
            super().__init__(**kwargs)
            self.position_embeddings = layers.Embedding(
                input_dim=sequence_length, output_dim=output_dim
            )
            self.sequence_length = sequence_length
            self.output_dim = output_dim

        def build(self, input_shape):
            self.position_embeddings.build(input_shape)

        def call(self, inputs):
            inputs = keras.ops.cast(inputs, self.compute_dtype)
            length = keras.ops.shape(inputs)[1]
            positions = keras.ops.arange(start=0, stop=length, step=1)
            embedded_positions = self.position_embeddings(positions)
            return inputs + embedded_positions

    layer = PositionalEmbedding(sequence_length=6, output_dim=4)
    x = np.zeros((2, 5, 4), "float32")
    out = np.asarray(layer(x))
    table = np.asarray(layer.position_embeddings.embeddings)
    np.testing.assert_allclose(out, np.broadcast_to(table[:5], (2, 5, 4)), rtol=1e-6)

    class MyModel(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            loss = keras.ops.sum(keras.losses.mean_squared_error(y, y_pred, sample_weight))
            return loss

    # (the guide only defines it: Keras 3's `mean_squared_error` takes no sample_weight,
    # so this compute_loss fails when called, on Keras 3 as in kgraph)
    assert issubclass(MyModel, keras.Model)


def test_rng_using_layers():
    from kgraph import keras

    a = keras.random.normal(shape=(), seed=123)
    b = keras.random.normal(shape=(), seed=123)
    print(a, b)
    assert float(a) == float(b)  # stateless: the same seed gives the same draw
    seed_generator = keras.random.SeedGenerator(1337)
    c = keras.random.normal(shape=(), seed=seed_generator)
    d = keras.random.normal(shape=(), seed=seed_generator)
    print(c, d)
    assert float(c) != float(d)  # a SeedGenerator advances

    class RandomNoiseLayer(keras.layers.Layer):
        def __init__(self, noise_rate, **kwargs):
            super().__init__(**kwargs)
            self.noise_rate = noise_rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            noise = keras.random.uniform(
                minval=0, maxval=self.noise_rate, seed=self.seed_generator
            )
            return inputs + noise

    layer = RandomNoiseLayer(0.1)  # (the guide only defines it: its uniform has no shape)
    assert len(layer.variables) == 1  # the SeedGenerator's state
