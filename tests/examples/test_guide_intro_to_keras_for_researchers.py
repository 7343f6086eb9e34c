"""keras.io guide "Introduction to Keras for Researchers" (guides/intro_to_keras_for_researchers.py,
the TensorFlow-era guide).

Each test walks one section of the guide with its code as written; `import tensorflow as tf;
from tensorflow import keras; from tensorflow.keras import layers` are kgraph's, MNIST is
random arrays of its shapes (tests/examples/example_datasets.py: 256 images, so the guide's
`x_train.reshape(60000, 784)` is `reshape(-1, 784)`), and the loops that stop after 1000 steps
stop after 3. Checked beside the guide's own asserts: gradients against the analytic ones,
the sums of `ComputeSum`, the activity loss against numpy. The guide's two end-to-end
experiments (the VAE and the hypernetwork) are in test_guide_intro_to_keras_for_researchers_e2e.py.
"""

import numpy as np

from example_datasets import mnist_load_data


def _dataset(batch, labels=True, n=256):
    import kgraph as tf

    (x_train, y_train), _ = mnist_load_data(n_train=n, n_test=8)
    x = x_train.reshape(-1, 784).astype("float32") / 255  # reshape(60000, 784)
    dataset = tf.data.Dataset.from_tensor_slices((x, y_train) if labels else x)
    return dataset.shuffle(buffer_size=1024).batch(batch)


def _linear():
    import kgraph as tf
    from kgraph import keras

    class Linear(keras.layers.Layer):
        """y = w.x + b"""

        def __init__(self, units=32):
            super(Linear, self).__init__()
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(
                shape=(input_shape[-1], self.units),
                initializer="random_normal",
                trainable=True,
            )
            self.b = self.add_weight(
                shape=(self.units,), initializer="random_normal", trainable=True
            )

        def call(self, inputs):
            return tf.matmul(inputs, self.w) + self.b

    return Linear


def test_tensors_variables_math_and_gradients():
    import kgraph as tf

    x = tf.constant([[5, 2], [1, 3]])
    print(x)
    np.testing.assert_array_equal(x.numpy(), [[5, 2], [1, 3]])
    assert x.dtype == "int32" and x.shape == (2, 2)
    print(tf.ones(shape=(2, 1)))
    print(tf.zeros(shape=(2, 1)))
    x = tf.random.normal(shape=(2, 2), mean=0.0, stddev=1.0)
    x = tf.random.uniform(shape=(2, 2), minval=0, maxval=10, dtype="int32")
    assert x.dtype == "int32" and 0 <= np.min(x) and np.max(x) < 10

    initial_value = tf.random.normal(shape=(2, 2))
    a = tf.Variable(initial_value)
    print(a)
    new_value = tf.random.normal(shape=(2, 2))
    a.assign(new_value)
    for i in range(2):
        for j in range(2):
            assert a[i, j] == new_value[i, j]
    added_value = tf.random.normal(shape=(2, 2))
    a.assign_add(added_value)
    for i in range(2):
        for j in range(2):
            assert a[i, j] == new_value[i, j] + added_value[i, j]

    a = tf.random.normal(shape=(2, 2))
    b = tf.random.normal(shape=(2, 2))
    c = a + b
    d = tf.square(c)
    e = tf.exp(d)
    np.testing.assert_allclose(e, np.exp(np.square(np.asarray(a) + np.asarray(b))), rtol=1e-5)

    a = tf.random.normal(shape=(2, 2))
    b = tf.random.normal(shape=(2, 2))
    with tf.GradientTape() as tape:
        tape.watch(a)  # Start recording the history of operations applied to `a`
        c = tf.sqrt(tf.square(a) + tf.square(b))  # Do some math using `a`
        dc_da = tape.gradient(c, a)
        print(dc_da)
    an, bn = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(dc_da, an / np.sqrt(an**2 + bn**2), rtol=1e-4)

    a = tf.Variable(a)
    with tf.GradientTape() as tape:
        c = tf.sqrt(tf.square(a) + tf.square(b))
        dc_da = tape.gradient(c, a)
        print(dc_da)
    np.testing.assert_allclose(dc_da, an / np.sqrt(an**2 + bn**2), rtol=1e-4)

    with tf.GradientTape() as outer_tape:
        with tf.GradientTape() as tape:
            c = tf.sqrt(tf.square(a) + tf.square(b))
            dc_da = tape.gradient(c, a)
        d2c_da2 = outer_tape.gradient(dc_da, a)
        print(d2c_da2)
    np.testing.assert_allclose(d2c_da2, bn**2 / (an**2 + bn**2) ** 1.5, rtol=1e-3)


def test_keras_layers_weights_and_layer_gradients():
    import kgraph as tf
    from kgraph import keras

    tf.keras.utils.set_random_seed(0)

    class Linear(keras.layers.Layer):
        """y = w.x + b"""

        def __init__(self, units=32, input_dim=32):
            super(Linear, self).__init__()
            w_init = tf.random_normal_initializer()
            self.w = tf.Variable(
                initial_value=w_init(shape=(input_dim, units), dtype="float32"),
                trainable=True,
            )
            b_init = tf.zeros_initializer()
            self.b = tf.Variable(
                initial_value=b_init(shape=(units,), dtype="float32"), trainable=True
            )

        def call(self, inputs):
            return tf.matmul(inputs, self.w) + self.b

    linear_layer = Linear(units=4, input_dim=2)
    y = linear_layer(tf.ones((2, 2)))
    assert y.shape == (2, 4)
    assert linear_layer.weights == [linear_layer.w, linear_layer.b]

    Linear = _linear()
    linear_layer = Linear(4)
    y = linear_layer(tf.ones((2, 2)))
    assert len(linear_layer.weights) == 2

    dataset = _dataset(64)
    linear_layer = Linear(10)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.SGD(learning_rate=1e-3)
    losses = []
    for step, (x, y) in enumerate(dataset):
        with tf.GradientTape() as tape:
            logits = linear_layer(x)
            loss = loss_fn(y, logits)
        gradients = tape.gradient(loss, linear_layer.trainable_weights)
        optimizer.apply_gradients(zip(gradients, linear_layer.trainable_weights))
        if step % 100 == 0:
            print("Step:", step, "Loss:", float(loss))
        losses.append(float(loss))
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_non_trainable_weights_nested_layers_and_added_losses():
    import kgraph as tf
    from kgraph import keras

    class ComputeSum(keras.layers.Layer):
        """Returns the sum of the inputs."""

        def __init__(self, input_dim):
            super(ComputeSum, self).__init__()
            self.total = tf.Variable(initial_value=tf.zeros((input_dim,)), trainable=False)

        def call(self, inputs):
            self.total.assign_add(tf.reduce_sum(inputs, axis=0))
            return self.total

    my_sum = ComputeSum(2)
    x = tf.ones((2, 2))
    y = my_sum(x)
    print(y.numpy())  # [2. 2.]
    np.testing.assert_array_equal(y.numpy(), [2.0, 2.0])
    y = my_sum(x)
    print(y.numpy())  # [4. 4.]
    np.testing.assert_array_equal(y.numpy(), [4.0, 4.0])
    assert my_sum.weights == [my_sum.total]
    assert my_sum.non_trainable_weights == [my_sum.total]
    assert my_sum.trainable_weights == []

    Linear = _linear()

    class MLP(keras.layers.Layer):
        """Simple stack of Linear layers."""

        def __init__(self):
            super(MLP, self).__init__()
            self.linear_1 = Linear(32)
            self.linear_2 = Linear(32)
            self.linear_3 = Linear(10)

        def call(self, inputs):
            x = self.linear_1(inputs)
            x = tf.nn.relu(x)
            x = self.linear_2(x)
            x = tf.nn.relu(x)
            return self.linear_3(x)

    mlp = MLP()
    y = mlp(tf.ones(shape=(3, 64)))
    assert len(mlp.weights) == 6

    mlp = keras.Sequential(
        [
            keras.layers.Dense(32, activation=tf.nn.relu),
            keras.layers.Dense(32, activation=tf.nn.relu),
            keras.layers.Dense(10),
        ]
    )

    class ActivityRegularization(keras.layers.Layer):
        """Layer that creates an activity sparsity regularization loss."""

        def __init__(self, rate=1e-2):
            super(ActivityRegularization, self).__init__()
            self.rate = rate

        def call(self, inputs):
            self.add_loss(self.rate * tf.reduce_sum(inputs))
            return inputs

    class SparseMLP(keras.layers.Layer):
        """Stack of Linear layers with a sparsity regularization loss."""

        def __init__(self):
            super(SparseMLP, self).__init__()
            self.linear_1 = Linear(32)
            self.regularization = ActivityRegularization(1e-2)
            self.linear_3 = Linear(10)

        def call(self, inputs):
            x = self.linear_1(inputs)
            x = tf.nn.relu(x)
            x = self.regularization(x)
            return self.linear_3(x)

    mlp = SparseMLP()
    y = mlp(tf.ones((10, 10)))
    print(mlp.losses)  # List containing one float32 scalar
    w1, b1 = (np.asarray(v) for v in mlp.linear_1.weights)
    np.testing.assert_allclose(float(mlp.losses[0]),
                               1e-2 * np.maximum(np.ones((10, 10)) @ w1 + b1, 0).sum(), rtol=1e-4)

    mlp = SparseMLP()
    mlp(tf.ones((10, 10)))
    assert len(mlp.losses) == 1
    mlp(tf.ones((10, 10)))
    assert len(mlp.losses) == 1  # No accumulation.

    dataset = _dataset(64)
    mlp = SparseMLP()
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.SGD(learning_rate=1e-3)
    for step, (x, y) in enumerate(dataset):
        with tf.GradientTape() as tape:
            logits = mlp(x)
            loss = loss_fn(y, logits)
            loss += sum(mlp.losses)
            gradients = tape.gradient(loss, mlp.trainable_weights)
        optimizer.apply_gradients(zip(gradients, mlp.trainable_weights))
        if step % 100 == 0:
            print("Step:", step, "Loss:", float(loss))
    assert np.isfinite(float(loss))


def test_metrics_in_a_loop_and_compiled_functions():
    import kgraph as tf
    from kgraph import keras

    dataset = _dataset(64)
    accuracy = tf.keras.metrics.SparseCategoricalAccuracy()
    model = keras.Sequential(
        [
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3)
    for epoch in range(2):
        for step, (x, y) in enumerate(dataset):
            with tf.GradientTape() as tape:
                logits = model(x)
                loss_value = loss_fn(y, logits)
            accuracy.update_state(y, logits)
            gradients = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply_gradients(zip(gradients, model.trainable_weights))
            if step % 200 == 0:
                print("Epoch:", epoch, "Step:", step)
                print("Total running accuracy so far: %.3f" % accuracy.result())
        assert 0.0 <= float(accuracy.result()) <= 1.0
        accuracy.reset_states()
        assert float(accuracy.result()) == 0.0

    model = keras.Sequential(
        [
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3)

    @tf.function  # Make it fast.
    def train_on_batch(x, y):
        with tf.GradientTape() as tape:
            logits = model(x)
            loss = loss_fn(y, logits)
            gradients = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(gradients, model.trainable_weights))
        return loss

    start = [np.array(w) for w in model.get_weights()] if model.built else None
    for step, (x, y) in enumerate(dataset):
        loss = train_on_batch(x, y)
        if step % 100 == 0:
            print("Step:", step, "Loss:", float(loss))
    assert np.isfinite(float(loss)) and int(optimizer.iterations.numpy()) == 4


def test_training_and_inference_mode_and_the_functional_api():
    import kgraph as tf
    from kgraph import keras

    Linear = _linear()

    class Dropout(keras.layers.Layer):
        def __init__(self, rate):
            super(Dropout, self).__init__()
            self.rate = rate

        def call(self, inputs, training=None):
            if training:
                return tf.nn.dropout(inputs, rate=self.rate)
            return inputs

    class MLPWithDropout(keras.layers.Layer):
        def __init__(self):
            super(MLPWithDropout, self).__init__()
            self.linear_1 = Linear(32)
            self.dropout = Dropout(0.5)
            self.linear_3 = Linear(10)

        def call(self, inputs, training=None):
            x = self.linear_1(inputs)
            x = tf.nn.relu(x)
            x = self.dropout(x, training=training)
            return self.linear_3(x)

    mlp = MLPWithDropout()
    y_train = mlp(tf.ones((2, 2)), training=True)
    y_test = mlp(tf.ones((2, 2)), training=False)
    assert y_train.shape == y_test.shape == (2, 10)
    np.testing.assert_allclose(y_test, mlp(tf.ones((2, 2)), training=False))

    inputs = tf.keras.Input(shape=(16,), dtype="float32")
    x = Linear(32)(inputs)
    x = Dropout(0.5)(x)
    outputs = Linear(10)(x)
    model = tf.keras.Model(inputs, outputs)
    assert len(model.weights) == 4
    y = model(tf.ones((2, 16)))
    assert y.shape == (2, 10)
    y = model(tf.ones((2, 16)), training=True)

    dataset = _dataset(64)
    inputs = tf.keras.Input(shape=(784,), dtype="float32")
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(10)(x)
    model = tf.keras.Model(inputs, outputs)
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        metrics=[keras.metrics.SparseCategoricalAccuracy()])
    model.fit(dataset, epochs=2)
    assert model.predict(dataset).shape == (256, 10)
    model.evaluate(dataset)

    class CustomModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.accuracy = keras.metrics.SparseCategoricalAccuracy()
            self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            self.optimizer = keras.optimizers.Adam(learning_rate=1e-3)

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)  # Forward pass
                loss = self.loss_fn(y, y_pred)
            gradients = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_weights))
            self.loss_tracker.update_state(loss)
            self.accuracy.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.accuracy]

    inputs = tf.keras.Input(shape=(784,), dtype="float32")
    x = keras.layers.Dense(32, activation="relu")(inputs)
    x = keras.layers.Dense(32, activation="relu")(x)
    outputs = keras.layers.Dense(10)(x)
    model = CustomModel(inputs, outputs)
    model.compile()
    history = model.fit(dataset, epochs=2)
    assert set(history.history) == {"loss", "accuracy"} and len(history.history["loss"]) == 2

