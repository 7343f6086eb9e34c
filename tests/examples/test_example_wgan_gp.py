"""keras.io example "WGAN-GP overriding `Model.train_step`" (examples/generative/wgan_gp.py).

The example's code as written, with `import tensorflow as tf; from tensorflow import keras`
swapped for `import kgraph as tf; from kgraph import keras`: the critic with ZeroPadding2D and
four strided 5x5 convolutions, the generator with UpSampling2D/BatchNormalization/Cropping2D,
and the `train_step` whose gradient penalty differentiates the critic's output with respect
to its interpolated input (`gp_tape.watch`), then differentiates that gradient's norm with
respect to the critic's weights (a gradient of a gradient), for three critic steps and one
generator step per batch; `tf.shape`, `tf.random.normal` with the traced batch size,
`tf.reduce_sum/reduce_mean/sqrt/square`, and the GANMonitor's
`keras.preprocessing.image.array_to_img` PNGs. Fashion-MNIST is replaced by 16 random images
in [-1, 1], the batch size of 512 by 8, 20 epochs by 1; marked slow.
"""
import numpy as np
import pytest


@pytest.mark.slow
def test_wgan_gp_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    IMG_SHAPE = (28, 28, 1)
    BATCH_SIZE = 8
    noise_dim = 128
    train_images = np.random.default_rng(0).integers(0, 256, (16, 28, 28)).astype("uint8")
    train_images = train_images.reshape(train_images.shape[0], *IMG_SHAPE).astype("float32")
    train_images = (train_images - 127.5) / 127.5

    def conv_block(x, filters, activation, kernel_size=(3, 3), strides=(1, 1),
                   padding="same", use_bias=True, use_bn=False, use_dropout=False,
                   drop_value=0.5):
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                          use_bias=use_bias)(x)
        if use_bn:
            x = layers.BatchNormalization()(x)
        x = activation(x)
        if use_dropout:
            x = layers.Dropout(drop_value)(x)
        return x

    def get_discriminator_model():
        img_input = layers.Input(shape=IMG_SHAPE)
        x = layers.ZeroPadding2D((2, 2))(img_input)
        x = conv_block(x, 64, kernel_size=(5, 5), strides=(2, 2), use_bn=False, use_bias=True,
                       activation=layers.LeakyReLU(0.2), use_dropout=False, drop_value=0.3)
        x = conv_block(x, 128, kernel_size=(5, 5), strides=(2, 2), use_bn=False,
                       activation=layers.LeakyReLU(0.2), use_bias=True, use_dropout=True,
                       drop_value=0.3)
        x = conv_block(x, 256, kernel_size=(5, 5), strides=(2, 2), use_bn=False,
                       activation=layers.LeakyReLU(0.2), use_bias=True, use_dropout=True,
                       drop_value=0.3)
        x = conv_block(x, 512, kernel_size=(5, 5), strides=(2, 2), use_bn=False,
                       activation=layers.LeakyReLU(0.2), use_bias=True, use_dropout=False,
                       drop_value=0.3)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Dense(1)(x)
        d_model = keras.models.Model(img_input, x, name="discriminator")
        return d_model

    d_model = get_discriminator_model()

    def upsample_block(x, filters, activation, kernel_size=(3, 3), strides=(1, 1),
                       up_size=(2, 2), padding="same", use_bn=False, use_bias=True,
                       use_dropout=False, drop_value=0.3):
        x = layers.UpSampling2D(up_size)(x)
        x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                          use_bias=use_bias)(x)
        if use_bn:
            x = layers.BatchNormalization()(x)
        if activation:
            x = activation(x)
        if use_dropout:
            x = layers.Dropout(drop_value)(x)
        return x

    def get_generator_model():
        noise = layers.Input(shape=(noise_dim,))
        x = layers.Dense(4 * 4 * 256, use_bias=False)(noise)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Reshape((4, 4, 256))(x)
        x = upsample_block(x, 128, layers.LeakyReLU(0.2), strides=(1, 1), use_bias=False,
                           use_bn=True, padding="same", use_dropout=False)
        x = upsample_block(x, 64, layers.LeakyReLU(0.2), strides=(1, 1), use_bias=False,
                           use_bn=True, padding="same", use_dropout=False)
        x = upsample_block(x, 1, layers.Activation("tanh"), strides=(1, 1), use_bias=False,
                           use_bn=True)
        x = layers.Cropping2D((2, 2))(x)
        g_model = keras.models.Model(noise, x, name="generator")
        return g_model

    g_model = get_generator_model()

    class WGAN(keras.Model):
        def __init__(self, discriminator, generator, latent_dim, discriminator_extra_steps=3,
                     gp_weight=10.0):
            super(WGAN, self).__init__()
            self.discriminator = discriminator
            self.generator = generator
            self.latent_dim = latent_dim
            self.d_steps = discriminator_extra_steps
            self.gp_weight = gp_weight

        def compile(self, d_optimizer, g_optimizer, d_loss_fn, g_loss_fn):
            super(WGAN, self).compile()
            self.d_optimizer = d_optimizer
            self.g_optimizer = g_optimizer
            self.d_loss_fn = d_loss_fn
            self.g_loss_fn = g_loss_fn

        def gradient_penalty(self, batch_size, real_images, fake_images):
            alpha = tf.random.normal([batch_size, 1, 1, 1], 0.0, 1.0)
            diff = fake_images - real_images
            interpolated = real_images + alpha * diff
            with tf.GradientTape() as gp_tape:
                gp_tape.watch(interpolated)
                pred = self.discriminator(interpolated, training=True)
            grads = gp_tape.gradient(pred, [interpolated])[0]
            norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
            gp = tf.reduce_mean((norm - 1.0) ** 2)
            return gp

        def train_step(self, real_images):
            if isinstance(real_images, tuple):
                real_images = real_images[0]
            batch_size = tf.shape(real_images)[0]
            for i in range(self.d_steps):
                random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
                with tf.GradientTape() as tape:
                    fake_images = self.generator(random_latent_vectors, training=True)
                    fake_logits = self.discriminator(fake_images, training=True)
                    real_logits = self.discriminator(real_images, training=True)
                    d_cost = self.d_loss_fn(real_img=real_logits, fake_img=fake_logits)
                    gp = self.gradient_penalty(batch_size, real_images, fake_images)
                    d_loss = d_cost + gp * self.gp_weight
                d_gradient = tape.gradient(d_loss, self.discriminator.trainable_variables)
                self.d_optimizer.apply_gradients(
                    zip(d_gradient, self.discriminator.trainable_variables))
            random_latent_vectors = tf.random.normal(shape=(batch_size, self.latent_dim))
            with tf.GradientTape() as tape:
                generated_images = self.generator(random_latent_vectors, training=True)
                gen_img_logits = self.discriminator(generated_images, training=True)
                g_loss = self.g_loss_fn(gen_img_logits)
            gen_gradient = tape.gradient(g_loss, self.generator.trainable_variables)
            self.g_optimizer.apply_gradients(
                zip(gen_gradient, self.generator.trainable_variables))
            return {"d_loss": d_loss, "g_loss": g_loss}

    class GANMonitor(keras.callbacks.Callback):
        def __init__(self, num_img=6, latent_dim=128):
            self.num_img = num_img
            self.latent_dim = latent_dim

        def on_epoch_end(self, epoch, logs=None):
            random_latent_vectors = tf.random.normal(shape=(self.num_img, self.latent_dim))
            generated_images = self.model.generator(random_latent_vectors)
            generated_images = (generated_images * 127.5) + 127.5
            for i in range(self.num_img):
                img = generated_images[i].numpy()
                img = keras.preprocessing.image.array_to_img(img)
                img.save("generated_img_{i}_{epoch}.png".format(i=i, epoch=epoch))

    generator_optimizer = keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5, beta_2=0.9)
    discriminator_optimizer = keras.optimizers.Adam(learning_rate=0.0002, beta_1=0.5,
                                                    beta_2=0.9)

    def discriminator_loss(real_img, fake_img):
        real_loss = tf.reduce_mean(real_img)
        fake_loss = tf.reduce_mean(fake_img)
        return fake_loss - real_loss

    def generator_loss(fake_img):
        return -tf.reduce_mean(fake_img)

    epochs = 1
    cbk = GANMonitor(num_img=3, latent_dim=noise_dim)
    wgan = WGAN(discriminator=d_model, generator=g_model, latent_dim=noise_dim,
                discriminator_extra_steps=3)
    wgan.compile(d_optimizer=discriminator_optimizer, g_optimizer=generator_optimizer,
                 g_loss_fn=generator_loss, d_loss_fn=discriminator_loss)
    d_before = [np.array(w) for w in d_model.get_weights()]
    g_before = [np.array(w) for w in g_model.get_weights()]
    history = wgan.fit(train_images, batch_size=BATCH_SIZE, epochs=epochs, callbacks=[cbk],
                       verbose=0)

    assert set(history.history) == {"d_loss", "g_loss"}
    assert all(np.isfinite(v).all() for v in history.history.values())
    assert d_model.count_params() == 4_305_409 and g_model.count_params() == 910_660
    changed = lambda before, model: any(  # noqa: E731
        not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))
    assert changed(d_before, d_model) and changed(g_before, g_model)
    for i in range(3):
        assert (tmp_path / f"generated_img_{i}_0.png").exists()
