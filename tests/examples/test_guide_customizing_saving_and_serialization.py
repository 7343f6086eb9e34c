"""keras.io guide "Customizing Saving and Serialization"
(guides/customizing_saving_and_serialization.py).

Each test walks one section of the guide with its code as written; `import tensorflow as tf;
import keras` are `import kgraph as tf; from kgraph import keras`, and the `.keras` files are
written in the test's temporary folder (the guide writes them where it runs). The guide's own
asserts are kept; each test also checks that the restored model computes what the saved one did.

**xfail**, as on Keras 3.15 itself (checked with real Keras on JAX): the `get_build_config`
section (Keras records both `build(input_shape, layer_init)` arguments, so its build config is a
`shapes_dict` and `build_from_config` finds no "input_shape") and the `get_compile_config`
section (the subclassed model's `__init__` takes none of its config's keys, so it cannot be
rebuilt).
"""

import os

import numpy as np
import pytest


def test_save_own_variables_and_load_own_variables(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras

    monkeypatch.chdir(tmp_path)

    @keras.utils.register_keras_serializable(package="my_custom_package")
    class LayerWithCustomVariables(keras.layers.Dense):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)
            self.stored_variables = tf.Variable(np.random.random((10,)), name="special_arr",
                                                dtype=tf.float32)

        def save_own_variables(self, store):
            super().save_own_variables(store)
            store["variables"] = self.stored_variables.numpy()

        def load_own_variables(self, store):
            self.stored_variables.assign(store["variables"])
            for i, v in enumerate(self.weights):
                v.assign(store[f"{i}"])

        def call(self, inputs):
            return super().call(inputs) * self.stored_variables

    model = keras.Sequential([
        LayerWithCustomVariables(1)
    ])
    ref_input = np.random.random((8, 10))
    ref_output = np.random.random((8,))
    model.compile(optimizer="adam", loss="mean_squared_error")
    model.fit(ref_input, ref_output)

    model.save("custom_vars_model.keras")
    restored_model = keras.models.load_model("custom_vars_model.keras")
    np.testing.assert_allclose(
        model.layers[0].stored_variables.numpy(),
        restored_model.layers[0].stored_variables.numpy()
    )
    np.testing.assert_allclose(restored_model.predict(ref_input, verbose=0),
                               model.predict(ref_input, verbose=0), rtol=1e-6)


def test_save_assets_and_load_assets(tmp_path, monkeypatch):
    from kgraph import keras

    monkeypatch.chdir(tmp_path)

    @keras.saving.register_keras_serializable(package="my_custom_package")
    class LayerWithCustomAssets(keras.layers.Dense):
        def __init__(self, vocab=None, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.vocab = vocab

        def save_assets(self, inner_path):
            with open(os.path.join(inner_path, "vocabulary.txt"), "w") as f:
                f.write(self.vocab)

        def load_assets(self, inner_path):
            with open(os.path.join(inner_path, "vocabulary.txt"), "r") as f:
                text = f.read()
            self.vocab = text.replace("<unk>", "little")

    model = keras.Sequential([
        LayerWithCustomAssets(vocab='Mary had a <unk> lamb.', units=5)
    ])
    x = np.random.random((10, 10))
    y = model(x)

    model.save("custom_assets_model.keras")
    restored_model = keras.models.load_model("custom_assets_model.keras")
    np.testing.assert_string_equal(
        restored_model.layers[0].vocab, "Mary had a little lamb."
    )
    np.testing.assert_allclose(restored_model(x), y, rtol=1e-6)


@pytest.mark.xfail(strict=True, reason="fails on Keras 3.15 too: build() records both of its "
                   "arguments, get_build_config gives a shapes_dict, config['input_shape'] "
                   "is missing")
def test_get_build_config_and_build_from_config(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras

    monkeypatch.chdir(tmp_path)

    @keras.saving.register_keras_serializable(package="my_custom_package")
    class LayerWithCustomBuild(keras.layers.Layer):
        def __init__(self, units=32, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def call(self, inputs):
            return tf.matmul(inputs, self.w) + self.b

        def get_config(self):
            return dict(units=self.units, **super().get_config())

        def build(self, input_shape, layer_init):
            super().build(input_shape)
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units),
                initializer=layer_init,
                trainable=True,
            )
            self.b = self.add_weight(
                shape=(self.units,),
                initializer=layer_init,
                trainable=True,
            )
            self.layer_init = layer_init

        def get_build_config(self):
            build_config = super().get_build_config()  # only gives `input_shape`
            build_config.update(
                {"layer_init": self.layer_init}  # Stores our initializer for `build()`
            )
            return build_config

        def build_from_config(self, config):
            self.build(config["input_shape"], config["layer_init"])

    custom_layer = LayerWithCustomBuild(units=16)
    custom_layer.build(input_shape=(8,), layer_init="random_normal")

    model = keras.Sequential(
        [
            custom_layer,
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    x = np.random.random((16, 8))
    y = model(x)

    model.save("custom_build_model.keras")
    restored_model = keras.models.load_model("custom_build_model.keras")
    np.testing.assert_equal(restored_model.layers[0].layer_init, "random_normal")
    np.testing.assert_equal(restored_model.built, True)
    np.testing.assert_allclose(restored_model(x), y, rtol=1e-5)


@pytest.mark.xfail(strict=True, reason="fails on Keras 3.15 too: the subclassed model's "
                   "__init__ takes no config keys, so it cannot be rebuilt from its config")
def test_get_compile_config_and_compile_from_config(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras

    monkeypatch.chdir(tmp_path)

    @keras.saving.register_keras_serializable(package="my_custom_package")
    def small_square_sum_loss(y_true, y_pred):
        loss = tf.math.squared_difference(y_pred, y_true)
        loss = loss / 10.0
        loss = tf.reduce_sum(loss, axis=1)
        return loss

    @keras.saving.register_keras_serializable(package="my_custom_package")
    def mean_pred(y_true, y_pred):
        return tf.reduce_mean(y_pred)

    @keras.saving.register_keras_serializable(package="my_custom_package")
    class ModelWithCustomCompile(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense1 = keras.layers.Dense(8, activation="relu")
            self.dense2 = keras.layers.Dense(4, activation="softmax")

        def call(self, inputs):
            x = self.dense1(inputs)
            return self.dense2(x)

        def compile(self, optimizer, loss_fn, metrics):
            super().compile(optimizer=optimizer, loss=loss_fn, metrics=metrics)
            self.model_optimizer = optimizer
            self.loss_fn = loss_fn
            self.loss_metrics = metrics

        def get_compile_config(self):
            return {
                "model_optimizer": self.model_optimizer,
                "loss_fn": self.loss_fn,
                "metric": self.loss_metrics,
            }

        def compile_from_config(self, config):
            optimizer = keras.utils.deserialize_keras_object(config["model_optimizer"])
            loss_fn = keras.utils.deserialize_keras_object(config["loss_fn"])
            metrics = keras.utils.deserialize_keras_object(config["metric"])
            self.compile(optimizer=optimizer, loss_fn=loss_fn, metrics=metrics)

    model = ModelWithCustomCompile()
    model.compile(
        optimizer="SGD", loss_fn=small_square_sum_loss, metrics=["accuracy", mean_pred]
    )
    x = np.random.random((4, 8))
    y = np.random.random((4,))
    model.fit(x, y)

    model.save("custom_compile_model.keras")
    restored_model = keras.models.load_model("custom_compile_model.keras")
    np.testing.assert_equal(model.model_optimizer, restored_model.model_optimizer)
    np.testing.assert_equal(model.loss_fn, restored_model.loss_fn)
    np.testing.assert_equal(model.loss_metrics, restored_model.loss_metrics)
    np.testing.assert_allclose(restored_model.predict(x, verbose=0),
                               model.predict(x, verbose=0), rtol=1e-6)
