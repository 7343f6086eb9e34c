"""keras.io example "Denoising Diffusion Probabilistic Model" (examples/generative/ddpm.py).

The stored source is the TensorFlow-era one (`import tensorflow as tf; from tensorflow import
keras; from tensorflow.keras import layers`), swapped for kgraph (`import kgraph as tf`,
`from kgraph import keras`, `from kgraph.keras import layers`), the code as written: the
tfds pipeline with `train_preprocessing` (`tf.shape` center crop by
`tf.image.crop_to_bounding_box`, `tf.cast`, antialiased `tf.image.resize`,
`tf.clip_by_value`, `tf.image.random_flip_left_right`) mapped, batched with
`drop_remainder`, shuffled and prefetched; `GaussianDiffusion` (float64 numpy schedules as
`tf.constant`s, `_extract` by `tf.gather` and `tf.reshape` to `[batch_size, 1, 1, 1]` of a
traced `tf.shape`, `q_sample`, the posterior, `p_sample` with `tf.random.normal(x.shape)`,
`tf.equal`, `tf.exp`); the U-Net (`VarianceScaling(fan_avg, uniform)` initializers, an
`AttentionBlock` layer with `tf.einsum("bhwc, bHWc->bhwHW")`, `tf.reshape` by traced dims,
`tf.nn.softmax`; a `TimeEmbedding` layer; residual blocks of GroupNormalization,
`keras.activations.swish` on KerasTensors, `Dense(...)(temb)[:, None, None, :]`,
UpSampling2D); the `DiffusionModel` `train_step` (`tf.random.uniform` int64 timesteps of
the traced batch size, `tf.GradientTape`, `self.loss`, `apply_gradients(zip(...))`, EMA
`assign`s over `network.weights`), `generate_images` (`tf.fill`, `ema_network.predict` in
the reverse-diffusion loop), fit with `LambdaCallback(on_epoch_end=model.plot_images)`.

Replaced: `tfds.load("oxford_flowers102")` (a download) by a `tf.data.Dataset` of dicts of
random uint8 40x48 images; the matplotlib grid of `plot_images` is left out (it generates
its images); the pretrained checkpoint download and `load_weights` of a TensorFlow
checkpoint at the end are left out. Sizes cut: img_size 64 -> 16, first_conv_channels
64 -> 8 (widths 8/16/32/64, groups 8), batch_size 32 -> 4, total_timesteps 1000 -> 10, 8
images, the callback's 2x8 grid -> 1x2. Checked: the diffusion utilities against numpy,
the EMA update, the generated images' shape and range. Marked slow (~6 s: the U-Net's
training step and 10 reverse-diffusion predicts).
"""
import math

import numpy as np
import pytest


def flowers_load(name, split, with_info, shuffle_files):
    """Stand-in for `tfds.load("oxford_flowers102", split=["train"])`: {"image": uint8}."""
    from kgraph import data

    assert name == "oxford_flowers102" and split == ["train"] and not with_info
    rng = np.random.default_rng(0)
    return (data.Dataset.from_tensor_slices(
        {"image": rng.integers(0, 256, (8, 40, 48, 3), dtype=np.uint8)}),)


@pytest.mark.slow
def test_ddpm():
    import types

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    tfds = types.SimpleNamespace(load=flowers_load)
    plotted = []

    # -- Hyperparameters (sizes cut: see the docstring)
    batch_size = 4
    num_epochs = 1  # Just for the sake of demonstration
    total_timesteps = 10
    norm_groups = 8  # Number of groups used in GroupNormalization layer
    learning_rate = 2e-4

    img_size = 16
    img_channels = 3
    clip_min = -1.0
    clip_max = 1.0

    first_conv_channels = 8
    channel_multiplier = [1, 2, 4, 8]
    widths = [first_conv_channels * mult for mult in channel_multiplier]
    has_attention = [False, False, True, True]
    num_res_blocks = 2  # Number of residual blocks

    dataset_name = "oxford_flowers102"
    splits = ["train"]

    # Load the dataset
    (ds,) = tfds.load(dataset_name, split=splits, with_info=False, shuffle_files=True)

    def augment(img):
        """Flips an image left/right randomly."""
        return tf.image.random_flip_left_right(img)

    def resize_and_rescale(img, size):
        height = tf.shape(img)[0]
        width = tf.shape(img)[1]
        crop_size = tf.minimum(height, width)

        img = tf.image.crop_to_bounding_box(
            img,
            (height - crop_size) // 2,
            (width - crop_size) // 2,
            crop_size,
            crop_size,
        )

        # Resize
        img = tf.cast(img, dtype=tf.float32)
        img = tf.image.resize(img, size=size, antialias=True)

        # Rescale the pixel values
        img = img / 127.5 - 1.0
        img = tf.clip_by_value(img, clip_min, clip_max)
        return img

    def train_preprocessing(x):
        img = x["image"]
        img = resize_and_rescale(img, size=(img_size, img_size))
        img = augment(img)
        return img

    train_ds = (
        ds.map(train_preprocessing, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(batch_size, drop_remainder=True)
        .shuffle(batch_size * 2)
        .prefetch(tf.data.AUTOTUNE)
    )

    class GaussianDiffusion:
        def __init__(
            self,
            beta_start=1e-4,
            beta_end=0.02,
            timesteps=1000,
            clip_min=-1.0,
            clip_max=1.0,
        ):
            self.beta_start = beta_start
            self.beta_end = beta_end
            self.timesteps = timesteps
            self.clip_min = clip_min
            self.clip_max = clip_max

            # Define the linear variance schedule
            self.betas = betas = np.linspace(
                beta_start,
                beta_end,
                timesteps,
                dtype=np.float64,  # Using float64 for better precision
            )
            self.num_timesteps = int(timesteps)

            alphas = 1.0 - betas
            alphas_cumprod = np.cumprod(alphas, axis=0)
            alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])

            self.betas = tf.constant(betas, dtype=tf.float32)
            self.alphas_cumprod = tf.constant(alphas_cumprod, dtype=tf.float32)
            self.alphas_cumprod_prev = tf.constant(alphas_cumprod_prev, dtype=tf.float32)

            # Calculations for diffusion q(x_t | x_{t-1}) and others
            self.sqrt_alphas_cumprod = tf.constant(
                np.sqrt(alphas_cumprod), dtype=tf.float32
            )

            self.sqrt_one_minus_alphas_cumprod = tf.constant(
                np.sqrt(1.0 - alphas_cumprod), dtype=tf.float32
            )

            self.log_one_minus_alphas_cumprod = tf.constant(
                np.log(1.0 - alphas_cumprod), dtype=tf.float32
            )

            self.sqrt_recip_alphas_cumprod = tf.constant(
                np.sqrt(1.0 / alphas_cumprod), dtype=tf.float32
            )
            self.sqrt_recipm1_alphas_cumprod = tf.constant(
                np.sqrt(1.0 / alphas_cumprod - 1), dtype=tf.float32
            )

            # Calculations for posterior q(x_{t-1} | x_t, x_0)
            posterior_variance = (
                betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
            )
            self.posterior_variance = tf.constant(posterior_variance, dtype=tf.float32)

            # Log calculation clipped because the posterior variance is 0 at the beginning
            # of the diffusion chain
            self.posterior_log_variance_clipped = tf.constant(
                np.log(np.maximum(posterior_variance, 1e-20)), dtype=tf.float32
            )

            self.posterior_mean_coef1 = tf.constant(
                betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
                dtype=tf.float32,
            )

            self.posterior_mean_coef2 = tf.constant(
                (1.0 - alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - alphas_cumprod),
                dtype=tf.float32,
            )

        def _extract(self, a, t, x_shape):
            batch_size = x_shape[0]
            out = tf.gather(a, t)
            return tf.reshape(out, [batch_size, 1, 1, 1])

        def q_mean_variance(self, x_start, t):
            x_start_shape = tf.shape(x_start)
            mean = self._extract(self.sqrt_alphas_cumprod, t, x_start_shape) * x_start
            variance = self._extract(1.0 - self.alphas_cumprod, t, x_start_shape)
            log_variance = self._extract(
                self.log_one_minus_alphas_cumprod, t, x_start_shape
            )
            return mean, variance, log_variance

        def q_sample(self, x_start, t, noise):
            x_start_shape = tf.shape(x_start)
            return (
                self._extract(self.sqrt_alphas_cumprod, t, tf.shape(x_start)) * x_start
                + self._extract(self.sqrt_one_minus_alphas_cumprod, t, x_start_shape)
                * noise
            )

        def predict_start_from_noise(self, x_t, t, noise):
            x_t_shape = tf.shape(x_t)
            return (
                self._extract(self.sqrt_recip_alphas_cumprod, t, x_t_shape) * x_t
                - self._extract(self.sqrt_recipm1_alphas_cumprod, t, x_t_shape) * noise
            )

        def q_posterior(self, x_start, x_t, t):
            x_t_shape = tf.shape(x_t)
            posterior_mean = (
                self._extract(self.posterior_mean_coef1, t, x_t_shape) * x_start
                + self._extract(self.posterior_mean_coef2, t, x_t_shape) * x_t
            )
            posterior_variance = self._extract(self.posterior_variance, t, x_t_shape)
            posterior_log_variance_clipped = self._extract(
                self.posterior_log_variance_clipped, t, x_t_shape
            )
            return posterior_mean, posterior_variance, posterior_log_variance_clipped

        def p_mean_variance(self, pred_noise, x, t, clip_denoised=True):
            x_recon = self.predict_start_from_noise(x, t=t, noise=pred_noise)
            if clip_denoised:
                x_recon = tf.clip_by_value(x_recon, self.clip_min, self.clip_max)

            model_mean, posterior_variance, posterior_log_variance = self.q_posterior(
                x_start=x_recon, x_t=x, t=t
            )
            return model_mean, posterior_variance, posterior_log_variance

        def p_sample(self, pred_noise, x, t, clip_denoised=True):
            model_mean, _, model_log_variance = self.p_mean_variance(
                pred_noise, x=x, t=t, clip_denoised=clip_denoised
            )
            noise = tf.random.normal(shape=x.shape, dtype=x.dtype)
            # No noise when t == 0
            nonzero_mask = tf.reshape(
                1 - tf.cast(tf.equal(t, 0), tf.float32), [tf.shape(x)[0], 1, 1, 1]
            )
            return model_mean + nonzero_mask * tf.exp(0.5 * model_log_variance) * noise

    # Kernel initializer to use
    def kernel_init(scale):
        scale = max(scale, 1e-10)
        return keras.initializers.VarianceScaling(
            scale, mode="fan_avg", distribution="uniform"
        )

    class AttentionBlock(layers.Layer):
        def __init__(self, units, groups=8, **kwargs):
            self.units = units
            self.groups = groups
            super().__init__(**kwargs)

            self.norm = layers.GroupNormalization(groups=groups)
            self.query = layers.Dense(units, kernel_initializer=kernel_init(1.0))
            self.key = layers.Dense(units, kernel_initializer=kernel_init(1.0))
            self.value = layers.Dense(units, kernel_initializer=kernel_init(1.0))
            self.proj = layers.Dense(units, kernel_initializer=kernel_init(0.0))

        def call(self, inputs):
            batch_size = tf.shape(inputs)[0]
            height = tf.shape(inputs)[1]
            width = tf.shape(inputs)[2]
            scale = tf.cast(self.units, tf.float32) ** (-0.5)

            inputs = self.norm(inputs)
            q = self.query(inputs)
            k = self.key(inputs)
            v = self.value(inputs)

            attn_score = tf.einsum("bhwc, bHWc->bhwHW", q, k) * scale
            attn_score = tf.reshape(attn_score, [batch_size, height, width, height * width])

            attn_score = tf.nn.softmax(attn_score, -1)
            attn_score = tf.reshape(attn_score, [batch_size, height, width, height, width])

            proj = tf.einsum("bhwHW,bHWc->bhwc", attn_score, v)
            proj = self.proj(proj)
            return inputs + proj

    class TimeEmbedding(layers.Layer):
        def __init__(self, dim, **kwargs):
            super().__init__(**kwargs)
            self.dim = dim
            self.half_dim = dim // 2
            self.emb = math.log(10000) / (self.half_dim - 1)
            self.emb = tf.exp(tf.range(self.half_dim, dtype=tf.float32) * -self.emb)

        def call(self, inputs):
            inputs = tf.cast(inputs, dtype=tf.float32)
            emb = inputs[:, None] * self.emb[None, :]
            emb = tf.concat([tf.sin(emb), tf.cos(emb)], axis=-1)
            return emb

    def ResidualBlock(width, groups=8, activation_fn=keras.activations.swish):
        def apply(inputs):
            x, t = inputs
            input_width = x.shape[3]

            if input_width == width:
                residual = x
            else:
                residual = layers.Conv2D(
                    width, kernel_size=1, kernel_initializer=kernel_init(1.0)
                )(x)

            temb = activation_fn(t)
            temb = layers.Dense(width, kernel_initializer=kernel_init(1.0))(temb)[
                :, None, None, :
            ]

            x = layers.GroupNormalization(groups=groups)(x)
            x = activation_fn(x)
            x = layers.Conv2D(
                width, kernel_size=3, padding="same", kernel_initializer=kernel_init(1.0)
            )(x)

            x = layers.Add()([x, temb])
            x = layers.GroupNormalization(groups=groups)(x)
            x = activation_fn(x)

            x = layers.Conv2D(
                width, kernel_size=3, padding="same", kernel_initializer=kernel_init(0.0)
            )(x)
            x = layers.Add()([x, residual])
            return x

        return apply

    def DownSample(width):
        def apply(x):
            x = layers.Conv2D(
                width,
                kernel_size=3,
                strides=2,
                padding="same",
                kernel_initializer=kernel_init(1.0),
            )(x)
            return x

        return apply

    def UpSample(width, interpolation="nearest"):
        def apply(x):
            x = layers.UpSampling2D(size=2, interpolation=interpolation)(x)
            x = layers.Conv2D(
                width, kernel_size=3, padding="same", kernel_initializer=kernel_init(1.0)
            )(x)
            return x

        return apply

    def TimeMLP(units, activation_fn=keras.activations.swish):
        def apply(inputs):
            temb = layers.Dense(
                units, activation=activation_fn, kernel_initializer=kernel_init(1.0)
            )(inputs)
            temb = layers.Dense(units, kernel_initializer=kernel_init(1.0))(temb)
            return temb

        return apply

    def build_model(
        img_size,
        img_channels,
        widths,
        has_attention,
        num_res_blocks=2,
        norm_groups=8,
        interpolation="nearest",
        activation_fn=keras.activations.swish,
    ):
        image_input = layers.Input(
            shape=(img_size, img_size, img_channels), name="image_input"
        )
        time_input = keras.Input(shape=(), dtype=tf.int64, name="time_input")

        x = layers.Conv2D(
            first_conv_channels,
            kernel_size=(3, 3),
            padding="same",
            kernel_initializer=kernel_init(1.0),
        )(image_input)

        temb = TimeEmbedding(dim=first_conv_channels * 4)(time_input)
        temb = TimeMLP(units=first_conv_channels * 4, activation_fn=activation_fn)(temb)

        skips = [x]

        # DownBlock
        for i in range(len(widths)):
            for _ in range(num_res_blocks):
                x = ResidualBlock(
                    widths[i], groups=norm_groups, activation_fn=activation_fn
                )([x, temb])
                if has_attention[i]:
                    x = AttentionBlock(widths[i], groups=norm_groups)(x)
                skips.append(x)

            if widths[i] != widths[-1]:
                x = DownSample(widths[i])(x)
                skips.append(x)

        # MiddleBlock
        x = ResidualBlock(widths[-1], groups=norm_groups, activation_fn=activation_fn)(
            [x, temb]
        )
        x = AttentionBlock(widths[-1], groups=norm_groups)(x)
        x = ResidualBlock(widths[-1], groups=norm_groups, activation_fn=activation_fn)(
            [x, temb]
        )

        # UpBlock
        for i in reversed(range(len(widths))):
            for _ in range(num_res_blocks + 1):
                x = layers.Concatenate(axis=-1)([x, skips.pop()])
                x = ResidualBlock(
                    widths[i], groups=norm_groups, activation_fn=activation_fn
                )([x, temb])
                if has_attention[i]:
                    x = AttentionBlock(widths[i], groups=norm_groups)(x)

            if i != 0:
                x = UpSample(widths[i], interpolation=interpolation)(x)

        # End block
        x = layers.GroupNormalization(groups=norm_groups)(x)
        x = activation_fn(x)
        x = layers.Conv2D(3, (3, 3), padding="same", kernel_initializer=kernel_init(0.0))(x)
        return keras.Model([image_input, time_input], x, name="unet")

    class DiffusionModel(keras.Model):
        def __init__(self, network, ema_network, timesteps, gdf_util, ema=0.999):
            super().__init__()
            self.network = network
            self.ema_network = ema_network
            self.timesteps = timesteps
            self.gdf_util = gdf_util
            self.ema = ema

        def train_step(self, images):
            # 1. Get the batch size
            batch_size = tf.shape(images)[0]

            # 2. Sample timesteps uniformly
            t = tf.random.uniform(
                minval=0, maxval=self.timesteps, shape=(batch_size,), dtype=tf.int64
            )

            with tf.GradientTape() as tape:
                # 3. Sample random noise to be added to the images in the batch
                noise = tf.random.normal(shape=tf.shape(images), dtype=images.dtype)

                # 4. Diffuse the images with noise
                images_t = self.gdf_util.q_sample(images, t, noise)

                # 5. Pass the diffused images and time steps to the network
                pred_noise = self.network([images_t, t], training=True)

                # 6. Calculate the loss
                loss = self.loss(noise, pred_noise)

            # 7. Get the gradients
            gradients = tape.gradient(loss, self.network.trainable_weights)

            # 8. Update the weights of the network
            self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))

            # 9. Updates the weight values for the network with EMA weights
            for weight, ema_weight in zip(self.network.weights, self.ema_network.weights):
                ema_weight.assign(self.ema * ema_weight + (1 - self.ema) * weight)

            # 10. Return loss values
            return {"loss": loss}

        def generate_images(self, num_images=16):
            # 1. Randomly sample noise (starting point for reverse process)
            samples = tf.random.normal(
                shape=(num_images, img_size, img_size, img_channels), dtype=tf.float32
            )
            # 2. Sample from the model iteratively
            for t in reversed(range(0, self.timesteps)):
                tt = tf.cast(tf.fill(num_images, t), dtype=tf.int64)
                pred_noise = self.ema_network.predict(
                    [samples, tt], verbose=0, batch_size=num_images
                )
                samples = self.gdf_util.p_sample(
                    pred_noise, samples, tt, clip_denoised=True
                )
            # 3. Return generated samples
            return samples

        def plot_images(
            self, epoch=None, logs=None, num_rows=2, num_cols=8, figsize=(12, 5)
        ):
            """Utility to plot images using the diffusion model during training."""
            generated_samples = self.generate_images(num_images=num_rows * num_cols)
            generated_samples = (
                tf.clip_by_value(generated_samples * 127.5 + 127.5, 0.0, 255.0)
                .numpy()
                .astype(np.uint8)
            )
            plotted.append(generated_samples)  # (the matplotlib grid left out)

    # Build the unet model
    network = build_model(
        img_size=img_size,
        img_channels=img_channels,
        widths=widths,
        has_attention=has_attention,
        num_res_blocks=num_res_blocks,
        norm_groups=norm_groups,
        activation_fn=keras.activations.swish,
    )
    ema_network = build_model(
        img_size=img_size,
        img_channels=img_channels,
        widths=widths,
        has_attention=has_attention,
        num_res_blocks=num_res_blocks,
        norm_groups=norm_groups,
        activation_fn=keras.activations.swish,
    )
    ema_network.set_weights(network.get_weights())  # Initially the weights are the same

    # Get an instance of the Gaussian Diffusion utilities
    gdf_util = GaussianDiffusion(timesteps=total_timesteps)

    # Get the model
    model = DiffusionModel(
        network=network,
        ema_network=ema_network,
        gdf_util=gdf_util,
        timesteps=total_timesteps,
    )

    # Compile the model
    model.compile(
        loss=keras.losses.MeanSquaredError(),
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
    )

    initial = [np.array(w) for w in network.get_weights()]
    # Train the model
    history = model.fit(
        train_ds,
        epochs=num_epochs,
        batch_size=batch_size,
        callbacks=[keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: model.plot_images(epoch, logs, 1, 2))],
        verbose=0,
    )

    assert list(history.history) == ["loss"] and np.isfinite(history.history["loss"][0])
    assert len(plotted) == 1 and plotted[0].shape == (2, img_size, img_size, 3)
    assert plotted[0].dtype == np.uint8
    # Two steps of EMA from equal starts: ema = d^2 w0 + d(1-d) w1 + (1-d) w2, so it stays
    # between the first weights and the trained ones, 0.2% of the way.
    trained = network.get_weights()
    for w0, w2, e in zip(initial, trained, ema_network.get_weights()):
        np.testing.assert_allclose(e, w0 + (1 - 0.999 ** 2) * (w2 - w0),
                                   atol=2e-3 * np.abs(w2 - w0).max() + 1e-6)

    # The forward and posterior processes against numpy.
    betas = np.linspace(1e-4, 0.02, total_timesteps)
    alphas_cumprod = np.cumprod(1 - betas)
    rng = np.random.default_rng(1)
    x0 = rng.uniform(-1, 1, (3, 4, 4, 3)).astype("float32")
    noise = rng.normal(size=x0.shape).astype("float32")
    t = np.array([0, 4, 9])
    xt = np.asarray(gdf_util.q_sample(x0, t, noise))
    expected = (np.sqrt(alphas_cumprod[t])[:, None, None, None] * x0
                + np.sqrt(1 - alphas_cumprod[t])[:, None, None, None] * noise)
    np.testing.assert_allclose(xt, expected, rtol=1e-5, atol=1e-6)
    recon = np.asarray(gdf_util.predict_start_from_noise(xt, t, noise))
    np.testing.assert_allclose(recon, x0, atol=2e-4)
    # At t == 0 p_sample adds no noise: the posterior mean of the clipped reconstruction.
    mean0 = np.asarray(gdf_util.q_posterior(np.clip(recon, -1, 1), xt, t)[0])
    sample = np.asarray(gdf_util.p_sample(noise, xt, t))
    np.testing.assert_allclose(sample[0], mean0[0], rtol=1e-5, atol=1e-6)

    # The time embedding is the sinusoidal table.
    emb = np.asarray(TimeEmbedding(dim=8)(np.array([0, 3])))
    freqs = np.exp(np.arange(4) * -(math.log(10000) / 3))
    np.testing.assert_allclose(emb, np.concatenate([np.sin(np.outer([0, 3], freqs)),
                                                    np.cos(np.outer([0, 3], freqs))], -1),
                               rtol=1e-5, atol=1e-6)
