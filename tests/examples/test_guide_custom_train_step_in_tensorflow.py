"""keras.io guide "Customizing what happens in `fit()` with TensorFlow"
(guides/custom_train_step_in_tensorflow.py; the Keras 3 guide, which has no
backend-agnostic version: it uses `tf.GradientTape` and a few `tf.*` ops).

`import kgraph as tf` gives `GradientTape`; the guide's train/test steps run
with it. The end-to-end GAN runs twice: as written (`tf.concat`/`tf.ones`/
`tf.zeros`/`tf.shape` from kgraph/tf_names.py) and with those four calls
spelled `keras.ops.*`, as the JAX and PyTorch versions of the guide spell them.
It needs a tape entered mid-step to record only what runs inside it, as
TensorFlow's: `test_tape_records_only_inside_its_block` checks that alone.
Data: random arrays of the guide's shapes, small sizes, one epoch.
"""

import numpy as np

import kgraph as tf
from kgraph import keras
from kgraph.keras import layers, ops


def _xy(n=128, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 32)), rng.random((n, 1))


class CustomModel(keras.Model):
    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply(gradients, trainable_vars)
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def _fit_simple():
    inputs = keras.Input(shape=(32,))
    outputs = keras.layers.Dense(1)(inputs)
    model = CustomModel(inputs, outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = _xy()
    return model.fit(x, y, epochs=3, verbose=0).history


def test_simple_train_step():
    losses = _fit_simple()["loss"]
    assert losses[-1] < losses[0]


def test_simple_train_step_logs_compiled_metrics():
    """`self.metrics` lists "compile_metrics" (Keras 3), whose dict result is spread into
    the logs: the guide's loop updates and reports 'mae'."""
    history = _fit_simple()
    assert set(history) == {"loss", "mae"} and np.all(np.isfinite(history["mae"]))


def test_lower_level_own_metrics_and_loss():
    class LowLevelModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.loss_fn(y, y_pred)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            self.loss_tracker.update_state(loss)
            self.mae_metric.update_state(y, y_pred)
            return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

        @property
        def metrics(self):
            return [self.loss_tracker, self.mae_metric]

    inputs = keras.Input(shape=(32,))
    model = LowLevelModel(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam")
    x, y = _xy()
    history = model.fit(x, y, epochs=2, verbose=0)
    assert set(history.history) >= {"loss", "mae"}


def _fit_and_evaluate_weighted():
    class WeightedModel(keras.Model):
        def train_step(self, data):
            x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply(gradients, trainable_vars)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sample_weight)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            x, y = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

    inputs = keras.Input(shape=(32,))
    model = WeightedModel(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = _xy()
    sw = np.random.default_rng(1).random((len(x), 1))
    history = model.fit(x, y, sample_weight=sw, epochs=1, verbose=0)
    result = model.evaluate(x, y, verbose=0, return_dict=True)
    assert np.isfinite(history.history["loss"][0]) and np.isfinite(result["loss"])
    return result


def test_sample_weight_train_step_and_test_step():
    _fit_and_evaluate_weighted()


def test_custom_test_step_logs_compiled_metrics():
    assert set(_fit_and_evaluate_weighted()) == {"loss", "mae"}


def _gan_networks(latent_dim=128):
    discriminator = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(64, (3, 3), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, (3, 3), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.GlobalMaxPooling2D(),
        layers.Dense(1),
    ], name="discriminator")
    generator = keras.Sequential([
        keras.Input(shape=(latent_dim,)),
        layers.Dense(7 * 7 * 128),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Reshape((7, 7, 128)),
        layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(128, (4, 4), strides=(2, 2), padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(1, (7, 7), padding="same", activation="sigmoid"),
    ], name="generator")
    return discriminator, generator


def _gan_class(t):
    """The guide's GAN, its `tf.concat/ones/zeros/shape` calls taken from `t`."""

    class GAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim):
            super().__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
            self.seed_generator = keras.random.SeedGenerator(1337)

        @property
        def metrics(self):
            return [self.d_loss_tracker, self.g_loss_tracker]

        def compile(self, d_optimizer, g_optimizer, loss_fn):
            super().compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.loss_fn = loss_fn

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            batch_size = t.shape(real_images)[0]
            random_latent_vectors = keras.random.normal(
                shape=(batch_size, self.latent_dim), seed=self.seed_generator)
            generated_images = self.generator(random_latent_vectors)
            combined_images = t.concat([generated_images, real_images], axis=0)
            labels = t.concat([t.ones((batch_size, 1)), t.zeros((batch_size, 1))], axis=0)
            labels += 0.05 * keras.random.uniform(t.shape(labels), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                predictions = self.discriminator(combined_images)
                d_loss = self.loss_fn(labels, predictions)
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply(grads, self.discriminator.trainable_weights)
            random_latent_vectors = keras.random.normal(
                shape=(batch_size, self.latent_dim), seed=self.seed_generator)
            misleading_labels = t.zeros((batch_size, 1))
            with tf.GradientTape() as tape:
                predictions = self.discriminator(self.generator(random_latent_vectors))
                g_loss = self.loss_fn(misleading_labels, predictions)
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply(grads, self.generator.trainable_weights)
            self.d_loss_tracker.update_state(d_loss)
            self.g_loss_tracker.update_state(g_loss)
            return {"d_loss": self.d_loss_tracker.result(),
                    "g_loss": self.g_loss_tracker.result()}

    return GAN


class _OpsAsTf:
    concat = staticmethod(lambda xs, axis: ops.concatenate(xs, axis=axis))
    ones = staticmethod(ops.ones)
    zeros = staticmethod(ops.zeros)
    shape = staticmethod(ops.shape)


def _run_gan(t):
    discriminator, generator = _gan_networks()
    all_digits = np.random.default_rng(2).integers(0, 256, (64, 28, 28)).astype("float32")
    all_digits = np.reshape(all_digits / 255.0, (-1, 28, 28, 1))
    gan = _gan_class(t)(discriminator=discriminator, generator=generator, latent_dim=128)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                g_optimizer=keras.optimizers.Adam(learning_rate=0.0003),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    before = [np.array(w) for w in generator.get_weights()]
    history = gan.fit(all_digits, batch_size=32, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["d_loss"] + history.history["g_loss"]))
    assert any(not np.allclose(b, a) for b, a in zip(before, generator.get_weights()))


def test_gan_end_to_end_with_keras_ops():
    _run_gan(_OpsAsTf)


def test_gan_end_to_end_as_written():
    _run_gan(tf)


def test_tape_records_only_inside_its_block():
    """The kgraph fix behind the GAN: in a traced train_step, a second tape does not
    differentiate through an update made before it was entered (there, through Adam's
    sqrt(v) at v=0, it gave NaN). With w updated from a gradient involving u, the
    second tape's d(loss)/du must be the plain 2*w*u*x**2 of loss = (w*u*x)**2."""

    class TwoTapes(keras.Model):
        def __init__(self):
            super().__init__()
            self.w = self.add_weight(shape=(), initializer="ones", name="w")
            self.u = self.add_weight(shape=(), initializer="ones", name="u")
            self.tracker = keras.metrics.Mean(name="du")

        @property
        def metrics(self):
            return [self.tracker]

        def train_step(self, x):
            with tf.GradientTape() as tape:
                loss = ops.mean(ops.square(self.w * self.u * x))
            (gw,) = tape.gradient(loss, [self.w])
            self.w.assign(self.w - 0.1 * gw)
            with tf.GradientTape() as tape:
                loss = ops.mean(ops.square(self.w * self.u * x))
            (gu,) = tape.gradient(loss, [self.u])
            self.tracker.update_state(gu)
            return {"du": self.tracker.result()}

    model = TwoTapes()
    model.compile()
    x = np.full((4, 1), 2.0, dtype="float32")
    history = model.fit(x, batch_size=4, epochs=1, verbose=0)
    w1 = 1.0 - 0.1 * 2 * 1.0 * 1.0 * 4.0  # w after the first update (u = 1, x = 2)
    np.testing.assert_allclose(history.history["du"][0], 2 * w1 * w1 * 4.0, rtol=1e-5)
