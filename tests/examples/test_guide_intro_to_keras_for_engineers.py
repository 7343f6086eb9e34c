"""keras.io guide "Introduction to Keras for engineers" (guides/intro_to_keras_for_engineers.py).

Each test walks one section of the guide with its models and calls; `import keras` is
`from kgraph import keras` (the guide's `KERAS_BACKEND="jax"` line has nothing to choose here),
`import tensorflow as tf` is `import kgraph as tf` (for `tf.data`), and MNIST is random arrays of
its shapes (tests/examples/example_datasets.py: 128 train, 32 test images). Epochs 20 -> 1.
The PyTorch `DataLoader` section runs when torch is installed (it is not a kgraph dependency;
the `dev` environment has it) and is marked slow (importing torch takes most of its ~3 s).
Checked: the convnet's 260,298 parameters, checkpoint files per epoch, the reloaded model's
predictions and scores, `MyDense` against numpy, the `SeedGenerator` state in
`MyDropout.variables` (as Keras 3 tracks it), dropout's 0 / 2x values.
"""

import numpy as np
import pytest

from example_datasets import mnist_load_data


def _mnist():
    (x_train, y_train), (x_test, y_test) = mnist_load_data(n_train=128, n_test=32)
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    return (x_train, y_train), (x_test, y_test)


def _custom_components():
    from kgraph import keras

    class MyDense(keras.layers.Layer):
        def __init__(self, units, activation=None, name=None):
            super().__init__(name=name)
            self.units = units
            self.activation = keras.activations.get(activation)

        def build(self, input_shape):
            input_dim = input_shape[-1]
            self.w = self.add_weight(
                shape=(input_dim, self.units),
                initializer=keras.initializers.GlorotNormal(),
                name="kernel",
                trainable=True,
            )
            self.b = self.add_weight(
                shape=(self.units,),
                initializer=keras.initializers.Zeros(),
                name="bias",
                trainable=True,
            )

        def call(self, inputs):
            x = keras.ops.matmul(inputs, self.w) + self.b
            return self.activation(x)

    class MyDropout(keras.layers.Layer):
        def __init__(self, rate, name=None):
            super().__init__(name=name)
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

    class MyModel(keras.Model):
        def __init__(self, num_classes):
            super().__init__()
            self.conv_base = keras.Sequential(
                [
                    keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                    keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
                    keras.layers.MaxPooling2D(pool_size=(2, 2)),
                    keras.layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
                    keras.layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
                    keras.layers.GlobalAveragePooling2D(),
                ]
            )
            self.dp = MyDropout(0.5)
            self.dense = MyDense(num_classes, activation="softmax")

        def call(self, x):
            x = self.conv_base(x)
            x = self.dp(x)
            return self.dense(x)

    return MyDense, MyDropout, MyModel


def _compiled(model):
    from kgraph import keras

    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(),
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="acc"),
        ],
    )
    return model


def test_a_first_example_mnist_convnet(tmp_path, monkeypatch):
    from kgraph import keras

    monkeypatch.chdir(tmp_path)  # the checkpoints and final_model.keras land here
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = _mnist()
    num_classes = 10
    input_shape = (28, 28, 1)

    model = keras.Sequential(
        [
            keras.layers.Input(shape=input_shape),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
            keras.layers.Conv2D(128, kernel_size=(3, 3), activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.summary()
    assert model.count_params() == 260_298  # as keras.io prints
    _compiled(model)

    batch_size = 128
    epochs = 1  # 20 in the guide
    callbacks = [
        keras.callbacks.ModelCheckpoint(filepath="model_at_epoch_{epoch}.keras"),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=2),
    ]
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=epochs,
        validation_split=0.15,
        callbacks=callbacks,
    )
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    score = model.evaluate(x_test, y_test, verbose=0)
    assert (tmp_path / "model_at_epoch_1.keras").exists()

    model.save("final_model.keras")
    reloaded = keras.saving.load_model("final_model.keras")
    predictions = reloaded.predict(x_test)
    np.testing.assert_allclose(predictions, model.predict(x_test, verbose=0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(reloaded.evaluate(x_test, y_test, verbose=0), score, rtol=1e-5)


def test_writing_cross_framework_custom_components():
    from kgraph import keras

    keras.utils.set_random_seed(0)
    (x_train, y_train), _ = _mnist()
    MyDense, MyDropout, MyModel = _custom_components()

    dense = MyDense(3, activation="relu")
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    out = np.asarray(dense(x))
    w, b = (np.asarray(v) for v in dense.weights)
    np.testing.assert_allclose(out, np.maximum(x @ w + b, 0), rtol=1e-5, atol=1e-6)
    dropout = MyDropout(0.5)
    assert len(dropout.variables) == 1  # the SeedGenerator's state is tracked
    dropped = np.asarray(dropout(np.ones((64, 8), "float32")))
    assert set(np.unique(dropped)) <= {0.0, 2.0} and 0.2 < (dropped == 0).mean() < 0.8

    model = _compiled(MyModel(num_classes=10))
    history = model.fit(
        x_train,
        y_train,
        batch_size=128,
        epochs=1,  # For speed
        validation_split=0.15,
    )
    assert np.isfinite(history.history["val_loss"][0])


@pytest.mark.slow  # ~3 s, most of it importing torch
def test_training_on_a_torch_dataloader():
    torch = pytest.importorskip("torch")
    from kgraph import keras

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = _mnist()
    _, _, MyModel = _custom_components()
    batch_size = 64

    train_torch_dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(x_train), torch.from_numpy(y_train)
    )
    val_torch_dataset = torch.utils.data.TensorDataset(
        torch.from_numpy(x_test), torch.from_numpy(y_test)
    )
    train_dataloader = torch.utils.data.DataLoader(
        train_torch_dataset, batch_size=batch_size, shuffle=True
    )
    val_dataloader = torch.utils.data.DataLoader(
        val_torch_dataset, batch_size=batch_size, shuffle=False
    )

    model = _compiled(MyModel(num_classes=10))
    history = model.fit(train_dataloader, epochs=1, validation_data=val_dataloader)
    assert np.isfinite(history.history["loss"][0]) and "val_acc" in history.history


def test_training_on_tf_data():
    import kgraph as tf
    from kgraph import keras

    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = _mnist()
    _, _, MyModel = _custom_components()
    batch_size = 64

    train_dataset = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    test_dataset = (
        tf.data.Dataset.from_tensor_slices((x_test, y_test))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    model = _compiled(MyModel(num_classes=10))
    history = model.fit(train_dataset, epochs=1, validation_data=test_dataset)
    assert np.isfinite(history.history["loss"][0]) and "val_acc" in history.history
