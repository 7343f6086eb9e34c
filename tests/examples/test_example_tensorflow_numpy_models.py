"""keras.io example "Writing Keras Models With TensorFlow NumPy"
(examples/keras_recipes/tensorflow_numpy_models.py).

The Keras 3 source (TensorFlow backend) as written, with `import tensorflow as tf;
import tensorflow.experimental.numpy as tnp; import keras` swapped for kgraph
(`import kgraph.experimental.numpy as tnp`): the subclassed `TNPForwardFeedRegressionNetwork`
(weights made by `add_weight` in the Model's own `build`, `tnp.matmul`/`tnp.maximum` in
`call`), a `tnp_mse` loss function, the `TNPDense` layer with a `tnp_relu` activation in
Sequentials built with `model.build((None, input_dim))` and mixed with `layers.Dense`,
`keras.backend.clear_session()`, the strategy branch (`tf.config.list_logical_devices("GPU")`,
`tf.distribute.get_strategy()` on a CPU machine) and the TensorBoard loop. The
`boston_housing.load_data` download is replaced by random arrays of its shapes and dtypes (64
train, 16 test rows of 13 float64 features), 200 epochs by 2. Checked: parameter counts as
real Keras 3 gives them, `TNPDense` against numpy, `tnp_mse` against numpy, the MAPE metric
evaluated, the TensorBoard runs written.
"""

import os

import numpy as np


def _boston_housing_like(n_train=64, n_test=16, seed=0):
    rng = np.random.default_rng(seed)

    def split(n):
        x = rng.uniform(0, 100, (n, 13))
        return x, rng.uniform(5, 50, (n,))

    return split(n_train), split(n_test)


def test_tensorflow_numpy_models(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    import kgraph.experimental.numpy as tnp
    from kgraph import keras
    from kgraph.keras import layers

    (x_train, y_train), (x_test, y_test) = _boston_housing_like()
    input_dim = x_train.shape[1]

    errors = []

    def evaluate_model(model: keras.Model):
        loss, percent_error = model.evaluate(x_test, y_test, verbose=0)
        print("Mean absolute percent error before training: ", percent_error)
        model.fit(x_train, y_train, epochs=2, verbose=0)
        loss, percent_error = model.evaluate(x_test, y_test, verbose=0)
        print("Mean absolute percent error after training:", percent_error)
        errors.append(percent_error)

    class TNPForwardFeedRegressionNetwork(keras.Model):
        def __init__(self, blocks=None, **kwargs):
            super().__init__(**kwargs)
            if not isinstance(blocks, list):
                raise ValueError(f"blocks must be a list, got blocks={blocks}")
            self.blocks = blocks
            self.block_weights = None
            self.biases = None

        def build(self, input_shape):
            current_shape = input_shape[1]
            self.block_weights = []
            self.biases = []
            for i, block in enumerate(self.blocks):
                self.block_weights.append(
                    self.add_weight(
                        shape=(current_shape, block),
                        trainable=True,
                        name=f"block-{i}",
                        initializer="glorot_normal",
                    )
                )
                self.biases.append(
                    self.add_weight(
                        shape=(block,),
                        trainable=True,
                        name=f"bias-{i}",
                        initializer="zeros",
                    )
                )
                current_shape = block

            self.linear_layer = self.add_weight(
                shape=(current_shape, 1),
                name="linear_projector",
                trainable=True,
                initializer="glorot_normal",
            )

        def call(self, inputs):
            activations = inputs
            for w, b in zip(self.block_weights, self.biases):
                activations = tnp.matmul(activations, w) + b
                # ReLu activation function
                activations = tnp.maximum(activations, 0.0)

            return tnp.matmul(activations, self.linear_layer)

    model = TNPForwardFeedRegressionNetwork(blocks=[3, 3])
    model.compile(
        optimizer="adam",
        loss="mean_squared_error",
        metrics=[keras.metrics.MeanAbsolutePercentageError()],
    )
    evaluate_model(model)
    # 13*3 + 3 + 3*3 + 3 + 3*1, as real Keras counts
    assert model.count_params() == 57 and len(model.trainable_weights) == 5

    def tnp_mse(y_true, y_pred):
        return tnp.mean(tnp.square(y_true - y_pred), axis=0)

    y_true, y_pred = np.float32([[1.0], [2.0], [4.0]]), np.float32([[0.5], [2.0], [1.0]])
    np.testing.assert_allclose(tnp_mse(y_true, y_pred), [(0.25 + 0 + 9) / 3], rtol=1e-6)

    keras.backend.clear_session()
    model = TNPForwardFeedRegressionNetwork(blocks=[3, 3])
    model.compile(
        optimizer="adam",
        loss=tnp_mse,
        metrics=[keras.metrics.MeanAbsolutePercentageError()],
    )
    evaluate_model(model)

    def tnp_relu(x):
        return tnp.maximum(x, 0)

    class TNPDense(keras.layers.Layer):
        def __init__(self, units, activation=None):
            super().__init__()
            self.units = units
            self.activation = activation

        def build(self, input_shape):
            self.w = self.add_weight(
                name="weights",
                shape=(input_shape[1], self.units),
                initializer="random_normal",
                trainable=True,
            )
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer="zeros",
                trainable=True,
            )

        def call(self, inputs):
            outputs = tnp.matmul(inputs, self.w) + self.bias
            if self.activation:
                return self.activation(outputs)
            return outputs

    dense = TNPDense(4, activation=tnp_relu)
    x = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")
    out = dense(x)
    np.testing.assert_allclose(
        out, np.maximum(x @ np.asarray(dense.w) + np.asarray(dense.bias), 0), rtol=1e-5,
        atol=1e-6)

    def create_layered_tnp_model():
        return keras.Sequential(
            [
                TNPDense(3, activation=tnp_relu),
                TNPDense(3, activation=tnp_relu),
                TNPDense(1),
            ]
        )

    model = create_layered_tnp_model()
    model.compile(
        optimizer="adam",
        loss="mean_squared_error",
        metrics=[keras.metrics.MeanAbsolutePercentageError()],
    )
    model.build((None, input_dim))
    model.summary()
    assert model.count_params() == 58  # the last TNPDense has a bias (real Keras: 58)

    evaluate_model(model)

    def create_mixed_model():
        return keras.Sequential(
            [
                TNPDense(3, activation=tnp_relu),
                # The model will have no issue using a normal Dense layer
                layers.Dense(3, activation="relu"),
                # ... or switching back to tnp layers!
                TNPDense(1),
            ]
        )

    model = create_mixed_model()
    model.compile(
        optimizer="adam",
        loss="mean_squared_error",
        metrics=[keras.metrics.MeanAbsolutePercentageError()],
    )
    model.build((None, input_dim))
    model.summary()
    assert model.count_params() == 58  # the last TNPDense has a bias (real Keras: 58)

    evaluate_model(model)

    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        strategy = tf.distribute.MirroredStrategy(gpus)
    else:
        # We can fallback to a no-op CPU strategy.
        strategy = tf.distribute.get_strategy()
    print("Running with strategy:", str(strategy.__class__.__name__))

    with strategy.scope():
        model = create_layered_tnp_model()
        model.compile(
            optimizer="adam",
            loss="mean_squared_error",
            metrics=[keras.metrics.MeanAbsolutePercentageError()],
        )
        model.build((None, input_dim))
        model.summary()
        evaluate_model(model)

    keras.backend.clear_session()

    models = [
        (
            TNPForwardFeedRegressionNetwork(blocks=[3, 3]),
            "TNPForwardFeedRegressionNetwork",
        ),
        (create_layered_tnp_model(), "layered_tnp_model"),
        (create_mixed_model(), "mixed_model"),
    ]
    for model, model_name in models:
        model.compile(
            optimizer="adam",
            loss="mean_squared_error",
            metrics=[keras.metrics.MeanAbsolutePercentageError()],
        )
        model.fit(
            x_train,
            y_train,
            epochs=2,
            verbose=0,
            callbacks=[keras.callbacks.TensorBoard(log_dir=f"logs/{model_name}")],
        )

    assert len(errors) == 5 and all(np.isfinite(e) and e >= 0 for e in errors)
    for _, model_name in models:
        assert os.listdir(os.path.join("logs", model_name, "train"))
