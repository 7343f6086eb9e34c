"""keras.io guide "Save, serialize, and export models"
(guides/serialization_and_saving.py).

The guide's `.keras` save/load with registered custom objects, config
round trips (get_config/from_config, to_json/model_from_json, clone_model),
weight transfer, `.weights.h5` files and custom
save_own_variables/load_own_variables, with kgraph's imports and small
random data.
"""

import numpy as np

from kgraph import keras


def get_model():
    inputs = keras.Input(shape=(32,))
    outputs = keras.layers.Dense(1)(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(), loss="mean_squared_error")
    return model


def test_save_and_load_keras_file(tmp_path):
    model = get_model()
    test_input = np.random.random((128, 32))
    test_target = np.random.random((128, 1))
    model.fit(test_input, test_target, verbose=0)
    path = str(tmp_path / "my_model.keras")
    model.save(path)
    reconstructed_model = keras.models.load_model(path)
    np.testing.assert_allclose(model.predict(test_input, verbose=0),
                               reconstructed_model.predict(test_input, verbose=0), atol=1e-6)
    reconstructed_model.fit(test_input, test_target, verbose=0)


def test_registered_custom_objects(tmp_path):
    @keras.saving.register_keras_serializable(package="my_package", name="custom_fn")
    def custom_fn(x):
        return x**2

    @keras.saving.register_keras_serializable(package="MyLayers")
    class CustomLayer(keras.layers.Layer):
        def __init__(self, factor):
            super().__init__()
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {"factor": self.factor}

    @keras.saving.register_keras_serializable(package="my_package", name="MyDense")
    class MyDense(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")

        def call(self, x):
            return keras.ops.matmul(x, self.kernel)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    inputs = keras.Input(shape=(4,))
    x = MyDense(8, name="my_dense")(inputs)
    x = CustomLayer(0.5)(x)
    outputs = keras.layers.Activation(custom_fn)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="rmsprop", loss="mean_squared_error")
    path = str(tmp_path / "custom_model.keras")
    model.save(path)
    reconstructed_model = keras.models.load_model(path)
    x_in = np.random.random((3, 4)).astype("float32")
    np.testing.assert_allclose(reconstructed_model.predict(x_in, verbose=0),
                               model.predict(x_in, verbose=0), atol=1e-6)


def test_config_round_trips():
    layer = keras.layers.Dense(3, activation="relu")
    new_layer = keras.layers.Dense.from_config(layer.get_config())
    assert new_layer.get_config()["units"] == 3
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(1)])
    new_model = keras.Sequential.from_config(model.get_config())
    assert tuple(new_model.outputs[0].shape) == (None, 1)
    inputs = keras.Input((32,))
    functional = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    new_functional = keras.Model.from_config(functional.get_config())
    assert len(new_functional.layers) == len(functional.layers)
    json_config = model.to_json()
    from_json = keras.models.model_from_json(json_config)
    assert len(from_json.weights) == 2
    cloned = keras.models.clone_model(model)
    assert [w.shape for w in cloned.weights] == [w.shape for w in model.weights]


def test_weight_transfer_between_models(tmp_path):
    def create_layer():
        layer = keras.layers.Dense(64, activation="relu", name="dense_2")
        layer.build((None, 784))
        return layer

    layer_1 = create_layer()
    layer_2 = create_layer()
    layer_2.set_weights(layer_1.get_weights())
    for a, b in zip(layer_1.get_weights(), layer_2.get_weights()):
        np.testing.assert_array_equal(a, b)
    inputs = keras.Input(shape=(784,), name="digits")
    x = keras.layers.Dense(64, activation="relu", name="dense_1")(inputs)
    x = keras.layers.Dense(64, activation="relu", name="dense_2")(x)
    outputs = keras.layers.Dense(10, name="predictions")(x)
    functional_model = keras.Model(inputs=inputs, outputs=outputs, name="3_layer_mlp")

    class SubclassedModel(keras.Model):
        def __init__(self, output_dim, name=None):
            super().__init__(name=name)
            self.output_dim = output_dim
            self.dense_1 = keras.layers.Dense(64, activation="relu", name="dense_1")
            self.dense_2 = keras.layers.Dense(64, activation="relu", name="dense_2")
            self.dense_3 = keras.layers.Dense(output_dim, name="predictions")

        def call(self, inputs):
            return self.dense_3(self.dense_2(self.dense_1(inputs)))

    subclassed_model = SubclassedModel(10)
    subclassed_model(np.ones((1, 784)))
    subclassed_model.set_weights(functional_model.get_weights())
    x_in = np.random.random((2, 784)).astype("float32")
    np.testing.assert_allclose(subclassed_model.predict(x_in, verbose=0),
                               functional_model.predict(x_in, verbose=0), atol=1e-5)
    path = str(tmp_path / "my_weights.weights.h5")
    functional_model.save_weights(path)
    clone = keras.models.clone_model(functional_model)
    clone.load_weights(path)
    np.testing.assert_allclose(clone.predict(x_in, verbose=0),
                               functional_model.predict(x_in, verbose=0), atol=1e-6)


def test_save_own_variables(tmp_path):
    @keras.saving.register_keras_serializable(package="my_custom_package")
    class LayerWithCustomVariable(keras.layers.Dense):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)
            self.my_variable = keras.Variable(np.random.random((units,)), name="my_variable",
                                              dtype="float32")

        def save_own_variables(self, store):
            super().save_own_variables(store)
            store["variables"] = self.my_variable.numpy()

        def load_own_variables(self, store):
            self.my_variable.assign(store["variables"])
            super().load_own_variables(store)

        def call(self, inputs):
            return super().call(inputs) * self.my_variable

    model = keras.Sequential([keras.Input((4,)), LayerWithCustomVariable(1)])
    path = str(tmp_path / "custom_vars.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.layers[0].my_variable.numpy(),
                               model.layers[0].my_variable.numpy())
