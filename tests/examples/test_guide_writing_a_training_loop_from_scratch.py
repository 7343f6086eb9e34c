"""keras.io guide "Writing a training loop from scratch in TensorFlow"
(guides/writing_a_custom_training_loop_in_tensorflow.py, the Keras 3 version).

The guide's code as written, `import tensorflow as tf; import keras` swapped for
`import kgraph as tf; from kgraph import keras`: the eager GradientTape loop, the loop
with metrics, the same loop with `@tf.function` train/test steps, the activity-
regularization step, and the end-to-end GAN loop (`tf.random.normal`, `tf.concat`,
`tf.ones`, `tf.zeros` inside `@tf.function`, PNGs written with
`keras.utils.array_to_img`). MNIST is replaced by random uint8 digits of its shapes, in
fewer samples; epochs and logging intervals are as written.
"""
import os

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras


def _mnist(n_train=512, n_test=128, seed=0):
    rng = np.random.default_rng(seed)
    digits = lambda n: rng.integers(0, 256, (n, 28, 28)).astype("uint8")  # noqa: E731
    labels = lambda n: rng.integers(0, 10, n).astype("uint8")  # noqa: E731
    return (digits(n_train), labels(n_train)), (digits(n_test), labels(n_test))


def get_model():
    inputs = keras.Input(shape=(784,), name="digits")
    x1 = keras.layers.Dense(64, activation="relu")(inputs)
    x2 = keras.layers.Dense(64, activation="relu")(x1)
    outputs = keras.layers.Dense(10, name="predictions")(x2)
    model = keras.Model(inputs=inputs, outputs=outputs)
    return model


def _datasets():
    batch_size = 32
    (x_train, y_train), (x_test, y_test) = _mnist()
    x_train = np.reshape(x_train, (-1, 784))
    x_test = np.reshape(x_test, (-1, 784))
    x_val = x_train[-128:]
    y_val = y_train[-128:]
    x_train = x_train[:-128]
    y_train = y_train[:-128]
    train_dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_dataset = train_dataset.shuffle(buffer_size=1024).batch(batch_size)
    val_dataset = tf.data.Dataset.from_tensor_slices((x_val, y_val))
    val_dataset = val_dataset.batch(batch_size)
    return train_dataset, val_dataset, batch_size


@pytest.fixture
def datasets():
    return _datasets()


def test_first_end_to_end_example(datasets, capsys):
    train_dataset, _, batch_size = datasets
    keras.utils.set_random_seed(0)
    model = get_model()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    epochs = 3
    losses = []
    for epoch in range(epochs):
        print(f"\nStart of epoch {epoch}")
        for step, (x_batch_train, y_batch_train) in enumerate(train_dataset):
            with tf.GradientTape() as tape:
                logits = model(x_batch_train, training=True)
                loss_value = loss_fn(y_batch_train, logits)
            grads = tape.gradient(loss_value, model.trainable_weights)
            optimizer.apply(grads, model.trainable_weights)
            if step % 100 == 0:
                print(f"Training loss (for 1 batch) at step {step}: {float(loss_value):.4f}")
                print(f"Seen so far: {(step + 1) * batch_size} samples")
            losses.append(float(loss_value))
    assert "Training loss (for 1 batch) at step 0" in capsys.readouterr().out
    assert np.isfinite(losses).all() and len(losses) == 3 * 12


def _metrics_loop(train_step, test_step, train_dataset, val_dataset, train_acc_metric,
                  val_acc_metric, batch_size, epochs=2):
    """The guide's loop around its train and test steps (eager or `@tf.function`)."""
    accuracies = []
    for epoch in range(epochs):
        print(f"\nStart of epoch {epoch}")
        for step, (x_batch_train, y_batch_train) in enumerate(train_dataset):
            loss_value = train_step(x_batch_train, y_batch_train)
            if step % 100 == 0:
                print(f"Training loss (for 1 batch) at step {step}: {float(loss_value):.4f}")
                print(f"Seen so far: {(step + 1) * batch_size} samples")
        train_acc = train_acc_metric.result()
        print(f"Training acc over epoch: {float(train_acc):.4f}")
        train_acc_metric.reset_state()
        for x_batch_val, y_batch_val in val_dataset:
            test_step(x_batch_val, y_batch_val)
        val_acc = val_acc_metric.result()
        val_acc_metric.reset_state()
        print(f"Validation acc: {float(val_acc):.4f}")
        accuracies.append((float(train_acc), float(val_acc)))
    return accuracies


def _metric_steps(compiled):
    keras.utils.set_random_seed(0)
    model = get_model()
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc_metric = keras.metrics.SparseCategoricalAccuracy()
    val_acc_metric = keras.metrics.SparseCategoricalAccuracy()

    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = loss_fn(y, logits)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        train_acc_metric.update_state(y, logits)
        return loss_value

    def test_step(x, y):
        val_logits = model(x, training=False)
        val_acc_metric.update_state(y, val_logits)

    if compiled:
        train_step, test_step = tf.function(train_step), tf.function(test_step)
    return model, train_step, test_step, train_acc_metric, val_acc_metric


def test_metrics_loop_eager_and_with_tf_function_agree():
    """The guide runs the same loop eagerly, then with `@tf.function` steps ("Much faster,
    isn't it?"): both train the same weights to the same accuracies (each run seeds, then
    builds its model and datasets, so both see the same shuffles)."""
    results = []
    for compiled in (False, True):
        model, train_step, test_step, train_acc, val_acc = _metric_steps(compiled)
        train_dataset, val_dataset, batch_size = _datasets()
        accuracies = _metrics_loop(train_step, test_step, train_dataset, val_dataset,
                                   train_acc, val_acc, batch_size)
        results.append((accuracies, model.get_weights()))
    (eager_acc, eager_w), (compiled_acc, compiled_w) = results
    np.testing.assert_allclose(compiled_acc, eager_acc, atol=1e-6)
    for a, b in zip(compiled_w, eager_w):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert all(0.0 <= a <= 1.0 for pair in compiled_acc for a in pair)


def test_losses_tracked_by_the_model(datasets):
    train_dataset, _, _ = datasets

    class ActivityRegularizationLayer(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * tf.reduce_sum(inputs))
            return inputs

    inputs = keras.Input(shape=(784,), name="digits")
    x = keras.layers.Dense(64, activation="relu")(inputs)
    x = ActivityRegularizationLayer()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    outputs = keras.layers.Dense(10, name="predictions")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    optimizer = keras.optimizers.Adam(learning_rate=1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    train_acc_metric = keras.metrics.SparseCategoricalAccuracy()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss_value = loss_fn(y, logits)
            loss_value += sum(model.losses)
        grads = tape.gradient(loss_value, model.trainable_weights)
        optimizer.apply(grads, model.trainable_weights)
        train_acc_metric.update_state(y, logits)
        return loss_value

    x_batch, y_batch = next(iter(train_dataset))
    plain = float(loss_fn(y_batch, model(x_batch)))
    activity = float(1e-2 * np.sum(np.asarray(model.layers[2](model.layers[1](x_batch)))))
    first = float(train_step(x_batch, y_batch))
    np.testing.assert_allclose(first, plain + activity, rtol=1e-4)


@pytest.mark.slow
def test_gan_training_loop_from_scratch(tmp_path):
    discriminator = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(64, (3, 3), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(1),
        ],
        name="discriminator",
    )
    latent_dim = 128
    generator = keras.Sequential(
        [
            keras.Input(shape=(latent_dim,)),
            keras.layers.Dense(7 * 7 * 128),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Reshape((7, 7, 128)),
            keras.layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
            keras.layers.LeakyReLU(negative_slope=0.2),
            keras.layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
        ],
        name="generator",
    )
    d_optimizer = keras.optimizers.Adam(learning_rate=0.0003)
    g_optimizer = keras.optimizers.Adam(learning_rate=0.0004)
    loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
    batch_size = 64

    @tf.function
    def train_step(real_images):
        random_latent_vectors = tf.random.normal(shape=(batch_size, latent_dim))
        generated_images = generator(random_latent_vectors)
        combined_images = tf.concat([generated_images, real_images], axis=0)
        labels = tf.concat(
            [tf.ones((batch_size, 1)), tf.zeros((real_images.shape[0], 1))], axis=0
        )
        labels += 0.05 * tf.random.uniform(labels.shape)
        with tf.GradientTape() as tape:
            predictions = discriminator(combined_images)
            d_loss = loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, discriminator.trainable_weights)
        d_optimizer.apply(grads, discriminator.trainable_weights)
        random_latent_vectors = tf.random.normal(shape=(batch_size, latent_dim))
        misleading_labels = tf.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            predictions = discriminator(generator(random_latent_vectors))
            g_loss = loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, generator.trainable_weights)
        g_optimizer.apply(grads, generator.trainable_weights)
        return d_loss, g_loss, generated_images

    (x_train, _), (x_test, _) = _mnist(n_train=96, n_test=32)
    all_digits = np.concatenate([x_train, x_test])
    all_digits = all_digits.astype("float32") / 255.0
    all_digits = np.reshape(all_digits, (-1, 28, 28, 1))
    dataset = tf.data.Dataset.from_tensor_slices(all_digits)
    dataset = dataset.shuffle(buffer_size=1024).batch(batch_size)

    epochs = 1
    save_dir = str(tmp_path)
    g_before = [np.array(w) for w in generator.get_weights()]
    seen = []
    for epoch in range(epochs):
        print(f"\nStart epoch {epoch}")
        for step, real_images in enumerate(dataset):
            d_loss, g_loss, generated_images = train_step(real_images)
            if step % 100 == 0:
                print(f"discriminator loss at step {step}: {d_loss:.2f}")
                print(f"adversarial loss at step {step}: {g_loss:.2f}")
                img = keras.utils.array_to_img(generated_images[0] * 255.0, scale=False)
                img.save(os.path.join(save_dir, f"generated_img_{step}.png"))
            seen.append((float(d_loss), float(g_loss)))
            if step > 10:
                break
    assert len(seen) == 2 and np.isfinite(seen).all()
    assert os.path.exists(os.path.join(save_dir, "generated_img_0.png"))
    assert any(not np.array_equal(b, a) for b, a in zip(g_before, generator.get_weights()))
