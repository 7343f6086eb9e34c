"""keras.io example "Keras debugging tips" (examples/keras_recipes/debugging_tips.py), partly.

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers`) with those imports swapped for kgraph: Tip 1's
`MyAntirectifier` in its three versions (`tf.nn.relu`, `tf.concat`, `tf.matmul`; the first,
concatenating on the batch axis, fails on its matmul as the example shows; the fixed one is
checked against numpy; its shape prints show the batch as None, not 2: kgraph traces an eager
layer call with the batch left open, where TensorFlow runs it eagerly), Tip 2's three-input,
two-output functional model (`summary()`, `keras.utils.plot_model(show_shapes=True)`), Tip 3's
`MyModel`s whose `train_step` mixes first- and second-order gradients (nested
`tf.GradientTape`s, Keras 2 `compiled_loss`/`compiled_metrics`), compiled, with
`tf.math.l2_normalize`d gradients and with an `InverseTimeDecay` schedule, and the
`run_eagerly=True` run that prints the gradients from `train_step` (eager nested tapes).
`tape2.gradient(dl_dw, trainable_vars)` on the list of first-order gradients runs as written
(TensorFlow sums a list of targets); the other tests write that sum out,
`sum(tf.reduce_sum(g) for g in dl_dw)`. MNIST replaced by 640 random digits; batch sizes
1024/2048 -> 64/128, epochs 3/5/50 -> 1/1/2. Checked: the second-order gradients against
central differences, eager nested tapes and a list of targets against the traced step, the
final steps' bounded moves.
"""

import numpy as np
import pytest
from example_datasets import mnist_load_data


def test_tip1_antirectifier_bug_and_fix(capsys):
    import kgraph as tf
    from kgraph.keras import layers

    class MyAntirectifier(layers.Layer):
        def build(self, input_shape):
            output_dim = input_shape[-1]
            self.kernel = self.add_weight(
                shape=(output_dim * 2, output_dim),
                initializer="he_normal",
                name="kernel",
                trainable=True,
            )

        def call(self, inputs):
            # Take the positive part of the input
            pos = tf.nn.relu(inputs)
            # Take the negative part of the input
            neg = tf.nn.relu(-inputs)
            # Concatenate the positive and negative parts
            concatenated = tf.concat([pos, neg], axis=0)
            # Project the concatenation down to the same dimensionality as the input
            return tf.matmul(concatenated, self.kernel)

    x = tf.random.normal(shape=(2, 5))
    with pytest.raises(ValueError, match=r"MatMul: inner dimensions differ.*\(10, 5\)"):
        y = MyAntirectifier()(x)

    class MyAntirectifier(layers.Layer):
        def build(self, input_shape):
            output_dim = input_shape[-1]
            self.kernel = self.add_weight(
                shape=(output_dim * 2, output_dim),
                initializer="he_normal",
                name="kernel",
                trainable=True,
            )

        def call(self, inputs):
            pos = tf.nn.relu(inputs)
            neg = tf.nn.relu(-inputs)
            print("pos.shape:", pos.shape)
            print("neg.shape:", neg.shape)
            concatenated = tf.concat([pos, neg], axis=1)
            print("concatenated.shape:", concatenated.shape)
            print("kernel.shape:", self.kernel.shape)
            return tf.matmul(concatenated, self.kernel)

    x = tf.random.normal(shape=(2, 5))
    layer = MyAntirectifier()
    y = layer(x)

    x = np.asarray(x)
    kernel = np.asarray(layer.kernel)
    expected = np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], 1) @ kernel
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    # TensorFlow runs the call eagerly and prints (2, 5); kgraph traces an eager layer call
    # once with the batch left open (and runs the compiled call), so its prints show None
    assert capsys.readouterr().out.splitlines() == [
        "pos.shape: (None, 5)", "neg.shape: (None, 5)", "concatenated.shape: (None, 10)",
        "kernel.shape: (10, 5)"]


def test_tip2_summary_and_plot_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kgraph import keras
    from kgraph.keras import layers

    num_tags = 12  # Number of unique issue tags
    num_words = 10000  # Size of vocabulary obtained when preprocessing text data
    num_departments = 4  # Number of departments for predictions

    title_input = keras.Input(
        shape=(None,), name="title"
    )  # Variable-length sequence of ints
    body_input = keras.Input(shape=(None,), name="body")  # Variable-length sequence of ints
    tags_input = keras.Input(
        shape=(num_tags,), name="tags"
    )  # Binary vectors of size `num_tags`

    # Embed each word in the title into a 64-dimensional vector
    title_features = layers.Embedding(num_words, 64)(title_input)
    # Embed each word in the text into a 64-dimensional vector
    body_features = layers.Embedding(num_words, 64)(body_input)

    # Reduce sequence of embedded words in the title into a single 128-dimensional vector
    title_features = layers.LSTM(128)(title_features)
    # Reduce sequence of embedded words in the body into a single 32-dimensional vector
    body_features = layers.LSTM(32)(body_features)

    # Merge all available features into a single large vector via concatenation
    x = layers.concatenate([title_features, body_features, tags_input])

    # Stick a logistic regression for priority prediction on top of the features
    priority_pred = layers.Dense(1, name="priority")(x)
    # Stick a department classifier on top of the features
    department_pred = layers.Dense(num_departments, name="department")(x)

    # Instantiate an end-to-end model predicting both priority and department
    model = keras.Model(
        inputs=[title_input, body_input, tags_input],
        outputs=[priority_pred, department_pred],
    )

    model.summary()
    # 2 * 10000 * 64 embeddings + LSTM(128) 98,816 + LSTM(32) 12,416 + heads 173 + 692
    assert model.count_params() == 1_392_097
    assert [layer.output.shape for layer in model.layers[-2:]] == [(None, 1), (None, 4)]

    pytest.importorskip("pydot")
    keras.utils.plot_model(model, show_shapes=True)
    assert (tmp_path / "model.png").stat().st_size > 0


def get_model(MyModel):
    from kgraph import keras
    from kgraph.keras import layers

    # Construct an instance of MyModel
    inputs = keras.Input(shape=(784,))
    intermediate = layers.Dense(256, activation="relu")(inputs)
    outputs = layers.Dense(10, activation="softmax")(intermediate)
    model = MyModel(inputs, outputs)
    return model


def _mnist():
    (x_train, y_train), _ = mnist_load_data(n_train=640, n_test=1)
    x_train = np.reshape(x_train, (-1, 784)) / 255
    return x_train, y_train


def test_tip3_second_order_train_steps(capsys):
    import kgraph as tf
    from kgraph import keras

    x_train, y_train = _mnist()

    class MyModel(keras.Model):
        def train_step(self, data):
            inputs, targets = data
            trainable_vars = self.trainable_variables
            with tf.GradientTape() as tape2:
                with tf.GradientTape() as tape1:
                    preds = self(inputs, training=True)  # Forward pass
                    # Compute the loss value
                    # (the loss function is configured in `compile()`)
                    loss = self.compiled_loss(targets, preds)
                # Compute first-order gradients
                dl_dw = tape1.gradient(loss, trainable_vars)
            # Compute second-order gradients
            d2l_dw2 = tape2.gradient(sum(tf.reduce_sum(g) for g in dl_dw), trainable_vars)

            # Combine first-order and second-order gradients
            grads = [0.5 * w1 + 0.5 * w2 for (w1, w2) in zip(d2l_dw2, dl_dw)]

            # Update weights
            self.optimizer.apply_gradients(zip(grads, trainable_vars))

            # Update metrics (includes the metric that tracks the loss)
            self.compiled_metrics.update_state(targets, preds)
            # Return a dict mapping metric names to current value
            return {m.name: m.result() for m in self.metrics}

    model = get_model(MyModel)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, epochs=1, batch_size=64, validation_split=0.1)
    assert np.isfinite(history.history["val_loss"][0])


def test_tip3_run_eagerly_prints_the_gradients(capsys):
    import kgraph as tf
    from kgraph import keras

    x_train, y_train = _mnist()

    class MyModel(keras.Model):
        def train_step(self, data):
            print()
            print("----Start of step: %d" % (self.step_counter,))
            self.step_counter += 1

            inputs, targets = data
            trainable_vars = self.trainable_variables
            with tf.GradientTape() as tape2:
                with tf.GradientTape() as tape1:
                    preds = self(inputs, training=True)  # Forward pass
                    # Compute the loss value
                    # (the loss function is configured in `compile()`)
                    loss = self.compiled_loss(targets, preds)
                # Compute first-order gradients
                dl_dw = tape1.gradient(loss, trainable_vars)
            # Compute second-order gradients
            d2l_dw2 = tape2.gradient(sum(tf.reduce_sum(g) for g in dl_dw), trainable_vars)

            print("Max of dl_dw[0]: %.4f" % tf.reduce_max(dl_dw[0]))
            print("Min of dl_dw[0]: %.4f" % tf.reduce_min(dl_dw[0]))
            print("Mean of dl_dw[0]: %.4f" % tf.reduce_mean(dl_dw[0]))
            print("-")
            print("Max of d2l_dw2[0]: %.4f" % tf.reduce_max(d2l_dw2[0]))
            print("Min of d2l_dw2[0]: %.4f" % tf.reduce_min(d2l_dw2[0]))
            print("Mean of d2l_dw2[0]: %.4f" % tf.reduce_mean(d2l_dw2[0]))

            # Combine first-order and second-order gradients
            grads = [0.5 * w1 + 0.5 * w2 for (w1, w2) in zip(d2l_dw2, dl_dw)]

            # Update weights
            self.optimizer.apply_gradients(zip(grads, trainable_vars))

            # Update metrics (includes the metric that tracks the loss)
            self.compiled_metrics.update_state(targets, preds)
            # Return a dict mapping metric names to current value
            return {m.name: m.result() for m in self.metrics}

    model = get_model(MyModel)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=True,
    )
    model.step_counter = 0
    capsys.readouterr()
    # We pass epochs=1 and steps_per_epoch=10 to only run 10 steps of training.
    model.fit(x_train, y_train, epochs=1, batch_size=64, verbose=0, steps_per_epoch=10)
    printed = capsys.readouterr().out.splitlines()
    assert model.step_counter == 10
    assert [line for line in printed if line.startswith("----")] == [
        f"----Start of step: {i}" for i in range(10)]
    assert sum(line.startswith("Max of d2l_dw2[0]: ") for line in printed) == 10



def test_tip3_normalized_gradients_and_the_final_schedule():
    import kgraph as tf
    from kgraph import keras

    x_train, y_train = _mnist()

    class MyModel(keras.Model):
        def train_step(self, data):
            inputs, targets = data
            trainable_vars = self.trainable_variables
            with tf.GradientTape() as tape2:
                with tf.GradientTape() as tape1:
                    preds = self(inputs, training=True)  # Forward pass
                    # Compute the loss value
                    # (the loss function is configured in `compile()`)
                    loss = self.compiled_loss(targets, preds)
                # Compute first-order gradients
                dl_dw = tape1.gradient(loss, trainable_vars)
            # Compute second-order gradients
            d2l_dw2 = tape2.gradient(sum(tf.reduce_sum(g) for g in dl_dw), trainable_vars)

            dl_dw = [tf.math.l2_normalize(w) for w in dl_dw]
            d2l_dw2 = [tf.math.l2_normalize(w) for w in d2l_dw2]

            # Combine first-order and second-order gradients
            grads = [0.5 * w1 + 0.5 * w2 for (w1, w2) in zip(d2l_dw2, dl_dw)]

            # Update weights
            self.optimizer.apply_gradients(zip(grads, trainable_vars))

            # Update metrics (includes the metric that tracks the loss)
            self.compiled_metrics.update_state(targets, preds)
            # Return a dict mapping metric names to current value
            return {m.name: m.result() for m in self.metrics}

    model = get_model(MyModel)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=1, batch_size=64, validation_split=0.1)

    class MyModel(keras.Model):
        def train_step(self, data):
            inputs, targets = data
            trainable_vars = self.trainable_variables
            with tf.GradientTape() as tape2:
                with tf.GradientTape() as tape1:
                    preds = self(inputs, training=True)  # Forward pass
                    # Compute the loss value
                    # (the loss function is configured in `compile()`)
                    loss = self.compiled_loss(targets, preds)
                # Compute first-order gradients
                dl_dw = tape1.gradient(loss, trainable_vars)
            # Compute second-order gradients
            d2l_dw2 = tape2.gradient(sum(tf.reduce_sum(g) for g in dl_dw), trainable_vars)

            dl_dw = [tf.math.l2_normalize(w) for w in dl_dw]
            d2l_dw2 = [tf.math.l2_normalize(w) for w in d2l_dw2]

            # Combine first-order and second-order gradients
            grads = [0.2 * w1 + 0.8 * w2 for (w1, w2) in zip(d2l_dw2, dl_dw)]

            # Update weights
            self.optimizer.apply_gradients(zip(grads, trainable_vars))

            # Update metrics (includes the metric that tracks the loss)
            self.compiled_metrics.update_state(targets, preds)
            # Return a dict mapping metric names to current value
            return {m.name: m.result() for m in self.metrics}

    model = get_model(MyModel)
    lr = learning_rate = keras.optimizers.schedules.InverseTimeDecay(
        initial_learning_rate=0.1, decay_steps=25, decay_rate=0.1
    )
    model.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    before = [np.array(w) for w in model.get_weights()]
    history = model.fit(x_train, y_train, epochs=2, batch_size=128, validation_split=0.1)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["val_loss"]).all()
    # each step moves every weight by lr * (0.2 * unit + 0.8 * unit): at most 0.1 per step
    moved = [np.linalg.norm(a - b) for a, b in zip(model.get_weights(), before)]
    assert all(0 < m <= 0.1 * 10 + 1e-5 for m in moved)


def test_tip3_as_written_differentiates_the_list_of_gradients():
    import kgraph as tf
    from kgraph import keras

    x_train, y_train = _mnist()

    class MyModel(keras.Model):
        def train_step(self, data):
            inputs, targets = data
            trainable_vars = self.trainable_variables
            with tf.GradientTape() as tape2:
                with tf.GradientTape() as tape1:
                    preds = self(inputs, training=True)  # Forward pass
                    loss = self.compiled_loss(targets, preds)
                dl_dw = tape1.gradient(loss, trainable_vars)
            d2l_dw2 = tape2.gradient(dl_dw, trainable_vars)
            grads = [0.5 * w1 + 0.5 * w2 for (w1, w2) in zip(d2l_dw2, dl_dw)]
            self.optimizer.apply_gradients(zip(grads, trainable_vars))
            self.compiled_metrics.update_state(targets, preds)
            return {m.name: m.result() for m in self.metrics}

    model = get_model(MyModel)
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=1e-2),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=1, batch_size=64, validation_split=0.1)


def test_second_order_gradients_match_finite_differences():
    # the d2l_dw2 the train steps combine: the gradient of the summed first-order gradients,
    # checked along a random direction against central differences of that sum
    import kgraph as tf
    from kgraph import keras

    keras.utils.set_random_seed(0)
    keras.config.set_floatx("float64")  # float64 weights: less rounding in the differences
    try:
        model = get_model(keras.Model)
    finally:
        keras.config.set_floatx("float32")
    model.compile(loss="sparse_categorical_crossentropy")
    x_train, y_train = _mnist()
    x, y = x_train[:32], y_train[:32]
    trainable_vars = model.trainable_variables

    def eager_summed_gradients(x, y):
        with tf.GradientTape() as tape2:
            with tf.GradientTape() as tape1:
                loss = model.compiled_loss(y, model(x, training=True))
            dl_dw = tape1.gradient(loss, trainable_vars)
        return tape2.gradient(dl_dw, trainable_vars)  # a list of targets: their sum

    @tf.function  # traced, as in fit
    def summed_gradients(x, y):
        with tf.GradientTape() as tape2:
            with tf.GradientTape() as tape1:
                loss = model.compiled_loss(y, model(x, training=True))
            dl_dw = tape1.gradient(loss, trainable_vars)
            total = sum(tf.reduce_sum(g) for g in dl_dw)
        return total, tape2.gradient(total, trainable_vars)

    _, d2l_dw2 = summed_gradients(x, y)
    for eager, traced in zip(eager_summed_gradients(x, y), d2l_dw2):
        np.testing.assert_allclose(eager, traced, rtol=1e-6, atol=1e-9)
    weights = [np.asarray(w, dtype=np.float64) for w in model.get_weights()]
    rng = np.random.default_rng(3)
    # a unit direction over all weights, small steps (a relu kink between them would
    # spoil the differences; the seed fixes a model where none is crossed)
    direction = [rng.normal(size=w.shape) for w in weights]
    norm = np.sqrt(sum(np.sum(d * d) for d in direction))
    direction = [d / norm for d in direction]
    eps = 1e-3
    sums = []
    for sign in (1, -1):
        model.set_weights([w + sign * eps * d for w, d in zip(weights, direction)])
        sums.append(float(summed_gradients(x, y)[0]))
    numeric = (sums[0] - sums[1]) / (2 * eps)
    analytic = sum(float(np.sum(np.asarray(g) * d)) for g, d in zip(d2l_dw2, direction))
    assert abs(analytic) > 0.1 and analytic == pytest.approx(numeric, rel=5e-2)
