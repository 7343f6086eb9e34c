"""keras.io example "CycleGAN" (examples/generative/cyclegan.py), partly.

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers`) with those imports swapped for kgraph: the tf.data
pipeline (`tf.image.random_flip_left_right`/`resize`/`random_crop`, `cache`/`shuffle`/`batch`,
`tf.data.Dataset.zip`), the `ReflectionPadding2D` layer (`tf.pad(..., mode="REFLECT")`,
checked against numpy), the ResNet generators (reflection padding, residual blocks,
Conv2DTranspose upsampling) and PatchGAN discriminators, the `CycleGan` model's `train_step`
with one persistent `tf.GradientTape` differentiated four times and four Adam optimizers, the
MSE/MAE adversarial, cycle and identity losses (`tf.ones_like`/`zeros_like`), the `GANMonitor`
callback (`self.model.gen_G(img)[0].numpy()`, `keras.preprocessing.image.array_to_img` PNGs)
and a per-epoch `ModelCheckpoint`. Changes: TensorFlow Addons' `InstanceNormalization` is
`layers.GroupNormalization(groups=-1)` (instance normalization, as the Keras 3 ports write
it); the checkpoint path gets Keras 3's `.weights.h5` ending with `save_weights_only=True`
(a TensorFlow checkpoint prefix is tf.keras 2 only); the 90-epoch checkpoint download and its
`load_weights(...).expect_partial()` are left out, and so are the plots; tfds horse2zebra is
replaced by random uint8 images. Sizes: 286/256 -> 40/32 pixels, the generators' 64 filters
and 9 residual blocks -> 8 and 2, the discriminators' 64 filters -> 8, 4 images a domain.
Checked: every generator and discriminator weight moves, the losses are finite, the PNGs and
the checkpoint are written and reload into a fresh model. Marked slow (~6 s: four models in
one train step).
"""

import numpy as np
import pytest


def _horse2zebra_like(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 48, 48, 3), dtype=np.uint8), np.zeros(n, np.int64)


@pytest.mark.slow
def test_cyclegan(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    autotune = tf.data.experimental.AUTOTUNE

    dataset = {
        name: tf.data.Dataset.from_tensor_slices(_horse2zebra_like(4, seed))
        for seed, name in enumerate(["trainA", "trainB", "testA", "testB"])
    }
    train_horses, train_zebras = dataset["trainA"], dataset["trainB"]
    test_horses, test_zebras = dataset["testA"], dataset["testB"]

    # Define the standard image size.
    orig_img_size = (40, 40)
    # Size of the random crops to be used during training.
    input_img_size = (32, 32, 3)
    # Weights initializer for the layers.
    kernel_init = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)
    # Gamma initializer for instance normalization.
    gamma_init = keras.initializers.RandomNormal(mean=0.0, stddev=0.02)

    buffer_size = 256
    batch_size = 1

    def normalize_img(img):
        img = tf.cast(img, dtype=tf.float32)
        # Map values in the range [-1, 1]
        return (img / 127.5) - 1.0

    def preprocess_train_image(img, label):
        # Random flip
        img = tf.image.random_flip_left_right(img)
        # Resize to the original size first
        img = tf.image.resize(img, [*orig_img_size])
        # Random crop to 256X256
        img = tf.image.random_crop(img, size=[*input_img_size])
        # Normalize the pixel values in the range [-1, 1]
        img = normalize_img(img)
        return img

    def preprocess_test_image(img, label):
        # Only resizing and normalization for the test images.
        img = tf.image.resize(img, [input_img_size[0], input_img_size[1]])
        img = normalize_img(img)
        return img

    # Apply the preprocessing operations to the training data
    train_horses = (
        train_horses.map(preprocess_train_image, num_parallel_calls=autotune)
        .cache()
        .shuffle(buffer_size)
        .batch(batch_size)
    )
    train_zebras = (
        train_zebras.map(preprocess_train_image, num_parallel_calls=autotune)
        .cache()
        .shuffle(buffer_size)
        .batch(batch_size)
    )

    # Apply the preprocessing operations to the test data
    test_horses = (
        test_horses.map(preprocess_test_image, num_parallel_calls=autotune)
        .cache()
        .shuffle(buffer_size)
        .batch(batch_size)
    )
    test_zebras = (
        test_zebras.map(preprocess_test_image, num_parallel_calls=autotune)
        .cache()
        .shuffle(buffer_size)
        .batch(batch_size)
    )

    for i, samples in enumerate(zip(train_horses.take(4), train_zebras.take(4))):
        horse = (((samples[0][0] * 127.5) + 127.5).numpy()).astype(np.uint8)
        zebra = (((samples[1][0] * 127.5) + 127.5).numpy()).astype(np.uint8)
        assert horse.shape == zebra.shape == input_img_size

    class ReflectionPadding2D(layers.Layer):
        """Implements Reflection Padding as a layer.

        Args:
            padding(tuple): Amount of padding for the
            spatial dimensions.

        Returns:
            A padded tensor with the same type as the input tensor.
        """

        def __init__(self, padding=(1, 1), **kwargs):
            self.padding = tuple(padding)
            super(ReflectionPadding2D, self).__init__(**kwargs)

        def call(self, input_tensor, mask=None):
            padding_width, padding_height = self.padding
            padding_tensor = [
                [0, 0],
                [padding_height, padding_height],
                [padding_width, padding_width],
                [0, 0],
            ]
            return tf.pad(input_tensor, padding_tensor, mode="REFLECT")

    sample = np.random.default_rng(5).normal(size=(2, 6, 7, 3)).astype("float32")
    np.testing.assert_array_equal(
        ReflectionPadding2D(padding=(3, 2))(sample),
        np.pad(sample, ((0, 0), (2, 2), (3, 3), (0, 0)), mode="reflect"))

    def InstanceNormalization(gamma_initializer):  # tfa.layers.InstanceNormalization
        return layers.GroupNormalization(groups=-1, gamma_initializer=gamma_initializer)

    def residual_block(
        x,
        activation,
        kernel_initializer=kernel_init,
        kernel_size=(3, 3),
        strides=(1, 1),
        padding="valid",
        gamma_initializer=gamma_init,
        use_bias=False,
    ):
        dim = x.shape[-1]
        input_tensor = x

        x = ReflectionPadding2D()(input_tensor)
        x = layers.Conv2D(
            dim,
            kernel_size,
            strides=strides,
            kernel_initializer=kernel_initializer,
            padding=padding,
            use_bias=use_bias,
        )(x)
        x = InstanceNormalization(gamma_initializer=gamma_initializer)(x)
        x = activation(x)

        x = ReflectionPadding2D()(x)
        x = layers.Conv2D(
            dim,
            kernel_size,
            strides=strides,
            kernel_initializer=kernel_initializer,
            padding=padding,
            use_bias=use_bias,
        )(x)
        x = InstanceNormalization(gamma_initializer=gamma_initializer)(x)
        x = layers.add([input_tensor, x])
        return x

    def downsample(
        x,
        filters,
        activation,
        kernel_initializer=kernel_init,
        kernel_size=(3, 3),
        strides=(2, 2),
        padding="same",
        gamma_initializer=gamma_init,
        use_bias=False,
    ):
        x = layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            kernel_initializer=kernel_initializer,
            padding=padding,
            use_bias=use_bias,
        )(x)
        x = InstanceNormalization(gamma_initializer=gamma_initializer)(x)
        if activation:
            x = activation(x)
        return x

    def upsample(
        x,
        filters,
        activation,
        kernel_size=(3, 3),
        strides=(2, 2),
        padding="same",
        kernel_initializer=kernel_init,
        gamma_initializer=gamma_init,
        use_bias=False,
    ):
        x = layers.Conv2DTranspose(
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            kernel_initializer=kernel_initializer,
            use_bias=use_bias,
        )(x)
        x = InstanceNormalization(gamma_initializer=gamma_initializer)(x)
        if activation:
            x = activation(x)
        return x

    def get_resnet_generator(
        filters=8,
        num_downsampling_blocks=2,
        num_residual_blocks=2,
        num_upsample_blocks=2,
        gamma_initializer=gamma_init,
        name=None,
    ):
        img_input = layers.Input(shape=input_img_size, name=name + "_img_input")
        x = ReflectionPadding2D(padding=(3, 3))(img_input)
        x = layers.Conv2D(filters, (7, 7), kernel_initializer=kernel_init, use_bias=False)(
            x
        )
        x = InstanceNormalization(gamma_initializer=gamma_initializer)(x)
        x = layers.Activation("relu")(x)

        # Downsampling
        for _ in range(num_downsampling_blocks):
            filters *= 2
            x = downsample(x, filters=filters, activation=layers.Activation("relu"))

        # Residual blocks
        for _ in range(num_residual_blocks):
            x = residual_block(x, activation=layers.Activation("relu"))

        # Upsampling
        for _ in range(num_upsample_blocks):
            filters //= 2
            x = upsample(x, filters, activation=layers.Activation("relu"))

        # Final block
        x = ReflectionPadding2D(padding=(3, 3))(x)
        x = layers.Conv2D(3, (7, 7), padding="valid")(x)
        x = layers.Activation("tanh")(x)

        model = keras.models.Model(img_input, x, name=name)
        return model

    def get_discriminator(
        filters=8, kernel_initializer=kernel_init, num_downsampling=3, name=None
    ):
        img_input = layers.Input(shape=input_img_size, name=name + "_img_input")
        x = layers.Conv2D(
            filters,
            (4, 4),
            strides=(2, 2),
            padding="same",
            kernel_initializer=kernel_initializer,
        )(img_input)
        x = layers.LeakyReLU(0.2)(x)

        num_filters = filters
        for num_downsample_block in range(3):
            num_filters *= 2
            if num_downsample_block < 2:
                x = downsample(
                    x,
                    filters=num_filters,
                    activation=layers.LeakyReLU(0.2),
                    kernel_size=(4, 4),
                    strides=(2, 2),
                )
            else:
                x = downsample(
                    x,
                    filters=num_filters,
                    activation=layers.LeakyReLU(0.2),
                    kernel_size=(4, 4),
                    strides=(1, 1),
                )

        x = layers.Conv2D(
            1, (4, 4), strides=(1, 1), padding="same", kernel_initializer=kernel_initializer
        )(x)

        model = keras.models.Model(inputs=img_input, outputs=x, name=name)
        return model

    # Get the generators
    gen_G = get_resnet_generator(name="generator_G")
    gen_F = get_resnet_generator(name="generator_F")

    # Get the discriminators
    disc_X = get_discriminator(name="discriminator_X")
    disc_Y = get_discriminator(name="discriminator_Y")

    class CycleGan(keras.Model):
        def __init__(
            self,
            generator_G,
            generator_F,
            discriminator_X,
            discriminator_Y,
            lambda_cycle=10.0,
            lambda_identity=0.5,
        ):
            super(CycleGan, self).__init__()
            self.gen_G = generator_G
            self.gen_F = generator_F
            self.disc_X = discriminator_X
            self.disc_Y = discriminator_Y
            self.lambda_cycle = lambda_cycle
            self.lambda_identity = lambda_identity

        def compile(
            self,
            gen_G_optimizer,
            gen_F_optimizer,
            disc_X_optimizer,
            disc_Y_optimizer,
            gen_loss_fn,
            disc_loss_fn,
        ):
            super(CycleGan, self).compile()
            self.gen_G_optimizer = gen_G_optimizer
            self.gen_F_optimizer = gen_F_optimizer
            self.disc_X_optimizer = disc_X_optimizer
            self.disc_Y_optimizer = disc_Y_optimizer
            self.generator_loss_fn = gen_loss_fn
            self.discriminator_loss_fn = disc_loss_fn
            self.cycle_loss_fn = keras.losses.MeanAbsoluteError()
            self.identity_loss_fn = keras.losses.MeanAbsoluteError()

        def train_step(self, batch_data):
            # x is Horse and y is zebra
            real_x, real_y = batch_data

            with tf.GradientTape(persistent=True) as tape:
                # Horse to fake zebra
                fake_y = self.gen_G(real_x, training=True)
                # Zebra to fake horse -> y2x
                fake_x = self.gen_F(real_y, training=True)

                # Cycle (Horse to fake zebra to fake horse): x -> y -> x
                cycled_x = self.gen_F(fake_y, training=True)
                # Cycle (Zebra to fake horse to fake zebra) y -> x -> y
                cycled_y = self.gen_G(fake_x, training=True)

                # Identity mapping
                same_x = self.gen_F(real_x, training=True)
                same_y = self.gen_G(real_y, training=True)

                # Discriminator output
                disc_real_x = self.disc_X(real_x, training=True)
                disc_fake_x = self.disc_X(fake_x, training=True)

                disc_real_y = self.disc_Y(real_y, training=True)
                disc_fake_y = self.disc_Y(fake_y, training=True)

                # Generator adverserial loss
                gen_G_loss = self.generator_loss_fn(disc_fake_y)
                gen_F_loss = self.generator_loss_fn(disc_fake_x)

                # Generator cycle loss
                cycle_loss_G = self.cycle_loss_fn(real_y, cycled_y) * self.lambda_cycle
                cycle_loss_F = self.cycle_loss_fn(real_x, cycled_x) * self.lambda_cycle

                # Generator identity loss
                id_loss_G = (
                    self.identity_loss_fn(real_y, same_y)
                    * self.lambda_cycle
                    * self.lambda_identity
                )
                id_loss_F = (
                    self.identity_loss_fn(real_x, same_x)
                    * self.lambda_cycle
                    * self.lambda_identity
                )

                # Total generator loss
                total_loss_G = gen_G_loss + cycle_loss_G + id_loss_G
                total_loss_F = gen_F_loss + cycle_loss_F + id_loss_F

                # Discriminator loss
                disc_X_loss = self.discriminator_loss_fn(disc_real_x, disc_fake_x)
                disc_Y_loss = self.discriminator_loss_fn(disc_real_y, disc_fake_y)

            # Get the gradients for the generators
            grads_G = tape.gradient(total_loss_G, self.gen_G.trainable_variables)
            grads_F = tape.gradient(total_loss_F, self.gen_F.trainable_variables)

            # Get the gradients for the discriminators
            disc_X_grads = tape.gradient(disc_X_loss, self.disc_X.trainable_variables)
            disc_Y_grads = tape.gradient(disc_Y_loss, self.disc_Y.trainable_variables)

            # Update the weights of the generators
            self.gen_G_optimizer.apply_gradients(
                zip(grads_G, self.gen_G.trainable_variables)
            )
            self.gen_F_optimizer.apply_gradients(
                zip(grads_F, self.gen_F.trainable_variables)
            )

            # Update the weights of the discriminators
            self.disc_X_optimizer.apply_gradients(
                zip(disc_X_grads, self.disc_X.trainable_variables)
            )
            self.disc_Y_optimizer.apply_gradients(
                zip(disc_Y_grads, self.disc_Y.trainable_variables)
            )

            return {
                "G_loss": total_loss_G,
                "F_loss": total_loss_F,
                "D_X_loss": disc_X_loss,
                "D_Y_loss": disc_Y_loss,
            }

    class GANMonitor(keras.callbacks.Callback):
        """A callback to generate and save images after each epoch"""

        def __init__(self, num_img=4):
            self.num_img = num_img

        def on_epoch_end(self, epoch, logs=None):
            for i, img in enumerate(test_horses.take(4)):
                prediction = self.model.gen_G(img)[0].numpy()
                prediction = (prediction * 127.5 + 127.5).astype(np.uint8)
                img = (img[0] * 127.5 + 127.5).numpy().astype(np.uint8)

                prediction = keras.preprocessing.image.array_to_img(prediction)
                prediction.save(
                    "generated_img_{i}_{epoch}.png".format(i=i, epoch=epoch + 1)
                )

    # Loss function for evaluating adversarial loss
    adv_loss_fn = keras.losses.MeanSquaredError()

    # Define the loss function for the generators
    def generator_loss_fn(fake):
        fake_loss = adv_loss_fn(tf.ones_like(fake), fake)
        return fake_loss

    # Define the loss function for the discriminators
    def discriminator_loss_fn(real, fake):
        real_loss = adv_loss_fn(tf.ones_like(real), real)
        fake_loss = adv_loss_fn(tf.zeros_like(fake), fake)
        return (real_loss + fake_loss) * 0.5

    # Create cycle gan model
    cycle_gan_model = CycleGan(
        generator_G=gen_G, generator_F=gen_F, discriminator_X=disc_X, discriminator_Y=disc_Y
    )

    # Compile the model
    cycle_gan_model.compile(
        gen_G_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
        gen_F_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
        disc_X_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
        disc_Y_optimizer=keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5),
        gen_loss_fn=generator_loss_fn,
        disc_loss_fn=discriminator_loss_fn,
    )
    # Callbacks
    plotter = GANMonitor()
    checkpoint_filepath = "./model_checkpoints/cyclegan_checkpoints.{epoch:03d}.weights.h5"
    model_checkpoint_callback = keras.callbacks.ModelCheckpoint(
        filepath=checkpoint_filepath, save_weights_only=True
    )

    before = {m.name: [np.array(w) for w in m.trainable_weights]
              for m in (gen_G, gen_F, disc_X, disc_Y)}
    history = cycle_gan_model.fit(
        tf.data.Dataset.zip((train_horses, train_zebras)),
        epochs=1,
        callbacks=[plotter, model_checkpoint_callback],
    )

    for name in ("G_loss", "F_loss", "D_X_loss", "D_Y_loss"):
        assert np.isfinite(history.history[name][0]), name
    for model in (gen_G, gen_F, disc_X, disc_Y):
        assert all(not np.array_equal(b, np.asarray(a))
                   for b, a in zip(before[model.name], model.trainable_weights)), model.name
    assert sorted(p.name for p in tmp_path.glob("generated_img_*_1.png")) == [
        f"generated_img_{i}_1.png" for i in range(4)]

    # the checkpoint reloads into a fresh CycleGAN
    fresh = CycleGan(
        generator_G=get_resnet_generator(name="generator_G"),
        generator_F=get_resnet_generator(name="generator_F"),
        discriminator_X=get_discriminator(name="discriminator_X"),
        discriminator_Y=get_discriminator(name="discriminator_Y"),
    )
    with pytest.warns(UserWarning, match="gen_G_optimizer"):  # the uncompiled model has none
        fresh.load_weights("./model_checkpoints/cyclegan_checkpoints.001.weights.h5")
    img = next(iter(test_horses))
    np.testing.assert_allclose(fresh.gen_G(img, training=False),
                               cycle_gan_model.gen_G(img, training=False), rtol=1e-5,
                               atol=1e-6)
