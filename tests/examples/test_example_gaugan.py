"""keras.io example "GauGAN for conditional image generation" (examples/generative/gaugan.py).

The stored source (TensorFlow-era: `import tensorflow as tf; import tensorflow_addons as tfa;
from tensorflow import keras; from tensorflow.keras import layers`) with the imports swapped
for kgraph, as written: the file split, the `tf.data` loader (`tf.io.read_file`,
`tf.image.decode_png`/`decode_bmp(channels=0)`, `tf.squeeze`, `_random_crop` with
`tf.random.uniform(maxval=margins[0], dtype=tf.int32)` offsets sliced into three images,
`tf.one_hot` label maps, `batch(drop_remainder=True)`), the `SPADE` layer (nearest
`tf.image.resize` of the mask to the size recorded in `build`, `tf.nn.moments(axes=(0, 1, 2))`),
`ResBlock` (sublayers made in `build`, a learned skip when the filters change,
`tf.nn.leaky_relu`), `GaussianSampler`, the `downsample` Sequentials, encoder, generator
(`tf.nn.tanh` of a Conv2D) and multi-scale patch discriminator, the feature-matching, VGG19
perceptual and hinge losses as `keras.losses.Loss` subclasses (`self.weights` set on a loss),
`GanMonitor` (`self.model.predict`), and the `GauGAN` model: a combined model built with the
discriminator frozen, its own `compile`, `train_discriminator`/`train_generator` with
`self.discriminator.trainable` switched between the tapes, `train_step`/`test_step`, `call`
and `predict([latent, labels])`.

Changes: TensorFlow Addons' `InstanceNormalization` is `layers.GroupNormalization(groups=-1)`;
the facades download is replaced by 4 generated image/segmentation-map PNG/label-BMP triples;
VGG19's `weights="imagenet"` by `None`. Sizes: 256x256 crops -> 32x32 of 40x40 files, so the
generator's six ResBlock/UpSampling stages from 4x4 become three (4 -> 32), its 1024..128
filters 8 and its Dense(16384) Dense(4 * 4 * 8); the encoder's and discriminator's 64 base
filters -> 4, latent_dim 256 -> 8, NUM_CLASSES 12 -> 4, BATCH_SIZE 4 -> 2, 15 epochs -> 1; the
inference loop's 5 batches -> 1; plots left out. Checked: the loader's shapes, value ranges and
one-hot maps, SPADE against numpy, the discriminator's and generator's weights move, the
combined model holds the generator's weights, the encoder's stay as they were (as written, its
`mean, variance` are computed before the generator's tape opens, so it gets no gradient: the
"Gradients do not exist" warning TensorFlow gives too), the losses' log keys, the monitor's
predictions. Marked slow (a GAN step and a test step with a VGG19 loss, ~3.5 s).
"""
import os

import numpy as np
import pytest


def _facades(path, n=4, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(path)
    for i in range(n):
        base = os.path.join(path, f"cmp_b{i:04d}")
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(base + ".jpg")
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(base + ".png")
        Image.fromarray(rng.integers(0, 4, (40, 40), dtype=np.uint8)).save(base + ".bmp")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning")
def test_gaugan(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    from glob import glob

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    class tfa:  # tensorflow_addons
        class layers:
            @staticmethod
            def InstanceNormalization():
                return layers.GroupNormalization(groups=-1)

    PATH = "./facades_data/"
    _facades(PATH)
    SPLIT = 0.5

    files = glob(PATH + "*.jpg")
    np.random.shuffle(files)

    split_index = int(len(files) * (1 - SPLIT))
    train_files = files[:split_index]
    val_files = files[split_index:]

    BATCH_SIZE = 2
    IMG_HEIGHT = IMG_WIDTH = 32
    NUM_CLASSES = 4
    AUTOTUNE = tf.data.AUTOTUNE

    def load(image_files, batch_size, is_train=True):
        def _random_crop(
            segmentation_map,
            image,
            labels,
            crop_size=(IMG_HEIGHT, IMG_WIDTH),
        ):
            crop_size = tf.convert_to_tensor(crop_size)
            image_shape = tf.shape(image)[:2]
            margins = image_shape - crop_size
            y1 = tf.random.uniform(shape=(), maxval=margins[0], dtype=tf.int32)
            x1 = tf.random.uniform(shape=(), maxval=margins[1], dtype=tf.int32)
            y2 = y1 + crop_size[0]
            x2 = x1 + crop_size[1]

            cropped_images = []
            images = [segmentation_map, image, labels]
            for img in images:
                cropped_images.append(img[y1:y2, x1:x2])
            return cropped_images

        def _load_data_tf(image_file, segmentation_map_file, label_file):
            image = tf.image.decode_png(tf.io.read_file(image_file), channels=3)
            segmentation_map = tf.image.decode_png(
                tf.io.read_file(segmentation_map_file), channels=3
            )
            labels = tf.image.decode_bmp(tf.io.read_file(label_file), channels=0)
            labels = tf.squeeze(labels)

            image = tf.cast(image, tf.float32) / 127.5 - 1
            segmentation_map = tf.cast(segmentation_map, tf.float32) / 127.5 - 1
            return segmentation_map, image, labels

        segmentation_map_files = [
            image_file.replace("images", "segmentation_map").replace("jpg", "png")
            for image_file in image_files
        ]
        label_files = [
            image_file.replace("images", "segmentation_labels").replace("jpg", "bmp")
            for image_file in image_files
        ]
        dataset = tf.data.Dataset.from_tensor_slices(
            (image_files, segmentation_map_files, label_files)
        )

        dataset = dataset.shuffle(batch_size * 10) if is_train else dataset
        dataset = dataset.map(_load_data_tf, num_parallel_calls=AUTOTUNE)
        dataset = dataset.map(_random_crop, num_parallel_calls=AUTOTUNE)
        dataset = dataset.map(
            lambda x, y, z: (x, y, tf.one_hot(z, NUM_CLASSES)), num_parallel_calls=AUTOTUNE
        )
        return dataset.batch(batch_size, drop_remainder=True)

    train_dataset = load(train_files, batch_size=BATCH_SIZE, is_train=True)
    val_dataset = load(val_files, batch_size=BATCH_SIZE, is_train=False)

    sample_train_batch = next(iter(train_dataset))
    segmentation_map, image, labels = (np.asarray(t) for t in sample_train_batch)
    assert segmentation_map.shape == image.shape == (2, 32, 32, 3)
    assert labels.shape == (2, 32, 32, 4) and (labels.sum(-1) == 1).all()
    assert -1 <= image.min() and image.max() <= 1

    class SPADE(layers.Layer):
        def __init__(self, filters, epsilon=1e-5, **kwargs):
            super().__init__(**kwargs)
            self.epsilon = epsilon
            self.conv = layers.Conv2D(8, 3, padding="same", activation="relu")  # 128
            self.conv_gamma = layers.Conv2D(filters, 3, padding="same")
            self.conv_beta = layers.Conv2D(filters, 3, padding="same")

        def build(self, input_shape):
            self.resize_shape = input_shape[1:3]

        def call(self, input_tensor, raw_mask):
            mask = tf.image.resize(raw_mask, self.resize_shape, method="nearest")
            x = self.conv(mask)
            gamma = self.conv_gamma(x)
            beta = self.conv_beta(x)
            mean, var = tf.nn.moments(input_tensor, axes=(0, 1, 2), keepdims=True)
            std = tf.sqrt(var + self.epsilon)
            normalized = (input_tensor - mean) / std
            output = gamma * normalized + beta
            return output

    spade = SPADE(3)
    features = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype("float32")
    out = np.asarray(spade(features, labels))
    mask = labels[:, 4::8, 4::8]  # nearest 32 -> 4 (half-pixel centers, as TensorFlow 2)
    conv = keras.Sequential([keras.Input((4, 4, 4)), spade.conv])
    hidden = conv.predict(mask, verbose=0)
    gamma = keras.Sequential([keras.Input((4, 4, 8)), spade.conv_gamma]).predict(hidden, verbose=0)
    beta = keras.Sequential([keras.Input((4, 4, 8)), spade.conv_beta]).predict(hidden, verbose=0)
    normalized = (features - features.mean((0, 1, 2))) / np.sqrt(features.var((0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(out, gamma * normalized + beta, rtol=1e-4, atol=1e-5)

    class ResBlock(layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.filters = filters

        def build(self, input_shape):
            input_filter = input_shape[-1]
            self.spade_1 = SPADE(input_filter)
            self.spade_2 = SPADE(self.filters)
            self.conv_1 = layers.Conv2D(self.filters, 3, padding="same")
            self.conv_2 = layers.Conv2D(self.filters, 3, padding="same")
            self.learned_skip = False

            if self.filters != input_filter:
                self.learned_skip = True
                self.spade_3 = SPADE(input_filter)
                self.conv_3 = layers.Conv2D(self.filters, 3, padding="same")

        def call(self, input_tensor, mask):
            x = self.spade_1(input_tensor, mask)
            x = self.conv_1(tf.nn.leaky_relu(x, 0.2))
            x = self.spade_2(x, mask)
            x = self.conv_2(tf.nn.leaky_relu(x, 0.2))
            skip = (
                self.conv_3(tf.nn.leaky_relu(self.spade_3(input_tensor, mask), 0.2))
                if self.learned_skip
                else input_tensor
            )
            output = skip + x
            return output

    class GaussianSampler(layers.Layer):
        def __init__(self, batch_size, latent_dim, **kwargs):
            super().__init__(**kwargs)
            self.batch_size = batch_size
            self.latent_dim = latent_dim

        def call(self, inputs):
            means, variance = inputs
            epsilon = tf.random.normal(
                shape=(self.batch_size, self.latent_dim), mean=0.0, stddev=1.0
            )
            samples = means + tf.exp(0.5 * variance) * epsilon
            return samples

    def downsample(
        channels,
        kernels,
        strides=2,
        apply_norm=True,
        apply_activation=True,
        apply_dropout=False,
    ):
        block = keras.Sequential()
        block.add(
            layers.Conv2D(
                channels,
                kernels,
                strides=strides,
                padding="same",
                use_bias=False,
                kernel_initializer=keras.initializers.GlorotNormal(),
            )
        )
        if apply_norm:
            block.add(tfa.layers.InstanceNormalization())
        if apply_activation:
            block.add(layers.LeakyReLU(0.2))
        if apply_dropout:
            block.add(layers.Dropout(0.5))
        return block

    def build_encoder(image_shape, encoder_downsample_factor=4, latent_dim=8):
        input_image = keras.Input(shape=image_shape)
        x = downsample(encoder_downsample_factor, 3, apply_norm=False)(input_image)
        x = downsample(2 * encoder_downsample_factor, 3)(x)
        x = downsample(4 * encoder_downsample_factor, 3)(x)
        x = downsample(8 * encoder_downsample_factor, 3)(x)
        x = downsample(8 * encoder_downsample_factor, 3)(x)
        x = layers.Flatten()(x)
        mean = layers.Dense(latent_dim, name="mean")(x)
        variance = layers.Dense(latent_dim, name="variance")(x)
        return keras.Model(input_image, [mean, variance], name="encoder")

    def build_generator(mask_shape, latent_dim=8):
        latent = keras.Input(shape=(latent_dim))
        mask = keras.Input(shape=mask_shape)
        x = layers.Dense(4 * 4 * 8)(latent)  # 16384
        x = layers.Reshape((4, 4, 8))(x)
        x = ResBlock(filters=8)(x, mask)
        x = layers.UpSampling2D((2, 2))(x)
        x = ResBlock(filters=8)(x, mask)
        x = layers.UpSampling2D((2, 2))(x)
        x = ResBlock(filters=4)(x, mask)
        x = layers.UpSampling2D((2, 2))(x)
        x = tf.nn.leaky_relu(x, 0.2)
        output_image = tf.nn.tanh(layers.Conv2D(3, 4, padding="same")(x))
        return keras.Model([latent, mask], output_image, name="generator")

    def build_discriminator(image_shape, downsample_factor=4):
        input_image_A = keras.Input(shape=image_shape, name="discriminator_image_A")
        input_image_B = keras.Input(shape=image_shape, name="discriminator_image_B")
        x = layers.Concatenate()([input_image_A, input_image_B])
        x1 = downsample(downsample_factor, 4, apply_norm=False)(x)
        x2 = downsample(2 * downsample_factor, 4)(x1)
        x3 = downsample(4 * downsample_factor, 4)(x2)
        x4 = downsample(8 * downsample_factor, 4, strides=1)(x3)
        x5 = layers.Conv2D(1, 4)(x4)
        outputs = [x1, x2, x3, x4, x5]
        return keras.Model([input_image_A, input_image_B], outputs)

    def generator_loss(y):
        return -tf.reduce_mean(y)

    def kl_divergence_loss(mean, variance):
        return -0.5 * tf.reduce_sum(1 + variance - tf.square(mean) - tf.exp(variance))

    class FeatureMatchingLoss(keras.losses.Loss):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.mae = keras.losses.MeanAbsoluteError()

        def call(self, y_true, y_pred):
            loss = 0
            for i in range(len(y_true) - 1):
                loss += self.mae(y_true[i], y_pred[i])
            return loss

    class VGGFeatureMatchingLoss(keras.losses.Loss):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.encoder_layers = [
                "block1_conv1",
                "block2_conv1",
                "block3_conv1",
                "block4_conv1",
                "block5_conv1",
            ]
            self.weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]
            vgg = keras.applications.VGG19(include_top=False, weights=None)  # "imagenet"
            layer_outputs = [vgg.get_layer(x).output for x in self.encoder_layers]
            self.vgg_model = keras.Model(vgg.input, layer_outputs, name="VGG")
            self.mae = keras.losses.MeanAbsoluteError()

        def call(self, y_true, y_pred):
            y_true = keras.applications.vgg19.preprocess_input(127.5 * (y_true + 1))
            y_pred = keras.applications.vgg19.preprocess_input(127.5 * (y_pred + 1))
            real_features = self.vgg_model(y_true)
            fake_features = self.vgg_model(y_pred)
            loss = 0
            for i in range(len(real_features)):
                loss += self.weights[i] * self.mae(real_features[i], fake_features[i])
            return loss

    class DiscriminatorLoss(keras.losses.Loss):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.hinge_loss = keras.losses.Hinge()

        def call(self, y, is_real):
            label = 1.0 if is_real else -1.0
            return self.hinge_loss(label, y)

    monitored = []

    class GanMonitor(keras.callbacks.Callback):
        def __init__(self, val_dataset, n_samples, epoch_interval=5):
            self.val_images = next(iter(val_dataset))
            self.n_samples = n_samples
            self.epoch_interval = epoch_interval

        def infer(self):
            latent_vector = tf.random.normal(
                shape=(self.model.batch_size, self.model.latent_dim), mean=0.0, stddev=2.0
            )
            return self.model.predict([latent_vector, self.val_images[2]])

        def on_epoch_end(self, epoch, logs=None):
            if epoch % self.epoch_interval == 0:
                generated_images = self.infer()
                for _ in range(self.n_samples):
                    grid_row = min(generated_images.shape[0], 3)
                    monitored.append((grid_row, generated_images.shape))

    class GauGAN(keras.Model):
        def __init__(
            self,
            image_size,
            num_classes,
            batch_size,
            latent_dim,
            feature_loss_coeff=10,
            vgg_feature_loss_coeff=0.1,
            kl_divergence_loss_coeff=0.1,
            **kwargs,
        ):
            super().__init__(**kwargs)

            self.image_size = image_size
            self.latent_dim = latent_dim
            self.batch_size = batch_size
            self.num_classes = num_classes
            self.image_shape = (image_size, image_size, 3)
            self.mask_shape = (image_size, image_size, num_classes)
            self.feature_loss_coeff = feature_loss_coeff
            self.vgg_feature_loss_coeff = vgg_feature_loss_coeff
            self.kl_divergence_loss_coeff = kl_divergence_loss_coeff

            self.discriminator = build_discriminator(self.image_shape)
            self.generator = build_generator(self.mask_shape)
            self.encoder = build_encoder(self.image_shape)
            self.sampler = GaussianSampler(batch_size, latent_dim)
            self.patch_size, self.combined_model = self.build_combined_generator()

            self.disc_loss_tracker = tf.keras.metrics.Mean(name="disc_loss")
            self.gen_loss_tracker = tf.keras.metrics.Mean(name="gen_loss")
            self.feat_loss_tracker = tf.keras.metrics.Mean(name="feat_loss")
            self.vgg_loss_tracker = tf.keras.metrics.Mean(name="vgg_loss")
            self.kl_loss_tracker = tf.keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [
                self.disc_loss_tracker,
                self.gen_loss_tracker,
                self.feat_loss_tracker,
                self.vgg_loss_tracker,
                self.kl_loss_tracker,
            ]

        def build_combined_generator(self):
            self.discriminator.trainable = False
            mask_input = keras.Input(shape=self.mask_shape, name="mask")
            image_input = keras.Input(shape=self.image_shape, name="image")
            latent_input = keras.Input(shape=(self.latent_dim), name="latent")
            generated_image = self.generator([latent_input, mask_input])
            discriminator_output = self.discriminator([image_input, generated_image])
            patch_size = discriminator_output[-1].shape[1]
            combined_model = keras.Model(
                [latent_input, mask_input, image_input],
                [discriminator_output, generated_image],
            )
            return patch_size, combined_model

        def compile(self, gen_lr=1e-4, disc_lr=4e-4, **kwargs):
            super().compile(**kwargs)
            self.generator_optimizer = keras.optimizers.Adam(
                gen_lr, beta_1=0.0, beta_2=0.999
            )
            self.discriminator_optimizer = keras.optimizers.Adam(
                disc_lr, beta_1=0.0, beta_2=0.999
            )
            self.discriminator_loss = DiscriminatorLoss()
            self.feature_matching_loss = FeatureMatchingLoss()
            self.vgg_loss = VGGFeatureMatchingLoss()

        def train_discriminator(self, latent_vector, segmentation_map, real_image, labels):
            fake_images = self.generator([latent_vector, labels])
            with tf.GradientTape() as gradient_tape:
                pred_fake = self.discriminator([segmentation_map, fake_images])[-1]
                pred_real = self.discriminator([segmentation_map, real_image])[-1]
                loss_fake = self.discriminator_loss(pred_fake, False)
                loss_real = self.discriminator_loss(pred_real, True)
                total_loss = 0.5 * (loss_fake + loss_real)

            self.discriminator.trainable = True
            gradients = gradient_tape.gradient(
                total_loss, self.discriminator.trainable_variables
            )
            self.discriminator_optimizer.apply_gradients(
                zip(gradients, self.discriminator.trainable_variables)
            )
            return total_loss

        def train_generator(
            self, latent_vector, segmentation_map, labels, image, mean, variance
        ):
            self.discriminator.trainable = False
            with tf.GradientTape() as tape:
                real_d_output = self.discriminator([segmentation_map, image])
                fake_d_output, fake_image = self.combined_model(
                    [latent_vector, labels, segmentation_map]
                )
                pred = fake_d_output[-1]

                g_loss = generator_loss(pred)
                kl_loss = self.kl_divergence_loss_coeff * kl_divergence_loss(mean, variance)
                vgg_loss = self.vgg_feature_loss_coeff * self.vgg_loss(image, fake_image)
                feature_loss = self.feature_loss_coeff * self.feature_matching_loss(
                    real_d_output, fake_d_output
                )
                total_loss = g_loss + kl_loss + vgg_loss + feature_loss

            all_trainable_variables = (
                self.combined_model.trainable_variables + self.encoder.trainable_variables
            )

            gradients = tape.gradient(total_loss, all_trainable_variables)
            self.generator_optimizer.apply_gradients(
                zip(gradients, all_trainable_variables)
            )
            return total_loss, feature_loss, vgg_loss, kl_loss

        def train_step(self, data):
            segmentation_map, image, labels = data
            mean, variance = self.encoder(image)
            latent_vector = self.sampler([mean, variance])
            discriminator_loss = self.train_discriminator(
                latent_vector, segmentation_map, image, labels
            )
            (generator_loss, feature_loss, vgg_loss, kl_loss) = self.train_generator(
                latent_vector, segmentation_map, labels, image, mean, variance
            )

            self.disc_loss_tracker.update_state(discriminator_loss)
            self.gen_loss_tracker.update_state(generator_loss)
            self.feat_loss_tracker.update_state(feature_loss)
            self.vgg_loss_tracker.update_state(vgg_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            results = {m.name: m.result() for m in self.metrics}
            return results

        def test_step(self, data):
            segmentation_map, image, labels = data
            mean, variance = self.encoder(image)

            latent_vector = self.sampler([mean, variance])

            fake_images = self.generator([latent_vector, labels])

            pred_fake = self.discriminator([segmentation_map, fake_images])[-1]
            pred_real = self.discriminator([segmentation_map, image])[-1]
            loss_fake = self.discriminator_loss(pred_fake, False)
            loss_real = self.discriminator_loss(pred_real, True)
            total_discriminator_loss = 0.5 * (loss_fake + loss_real)
            real_d_output = self.discriminator([segmentation_map, image])
            fake_d_output, fake_image = self.combined_model(
                [latent_vector, labels, segmentation_map]
            )
            pred = fake_d_output[-1]
            g_loss = generator_loss(pred)
            kl_loss = self.kl_divergence_loss_coeff * kl_divergence_loss(mean, variance)
            vgg_loss = self.vgg_feature_loss_coeff * self.vgg_loss(image, fake_image)
            feature_loss = self.feature_loss_coeff * self.feature_matching_loss(
                real_d_output, fake_d_output
            )
            total_generator_loss = g_loss + kl_loss + vgg_loss + feature_loss

            self.disc_loss_tracker.update_state(total_discriminator_loss)
            self.gen_loss_tracker.update_state(total_generator_loss)
            self.feat_loss_tracker.update_state(feature_loss)
            self.vgg_loss_tracker.update_state(vgg_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            results = {m.name: m.result() for m in self.metrics}
            return results

        def call(self, inputs):
            latent_vectors, labels = inputs
            return self.generator([latent_vectors, labels])

    gaugan = GauGAN(IMG_HEIGHT, NUM_CLASSES, BATCH_SIZE, latent_dim=8)
    gaugan.compile()
    assert gaugan.patch_size == 1
    encoder = [w.numpy() for w in gaugan.encoder.weights]
    critic = [w.numpy() for w in gaugan.discriminator.weights]
    generator = [w.numpy() for w in gaugan.generator.weights]
    history = gaugan.fit(
        train_dataset,
        validation_data=val_dataset,
        epochs=1,
        callbacks=[GanMonitor(val_dataset, BATCH_SIZE)],
    )
    names = ["disc_loss", "gen_loss", "feat_loss", "vgg_loss", "kl_loss"]
    assert set(history.history) == set(names + ["val_" + n for n in names])
    assert all(np.isfinite(v[0]) for v in history.history.values())
    assert monitored == [(2, (2, 32, 32, 3))] * BATCH_SIZE
    assert any(not np.array_equal(a, w.numpy())
               for a, w in zip(critic, gaugan.discriminator.weights))
    assert any(not np.array_equal(a, w.numpy())
               for a, w in zip(generator, gaugan.generator.weights))
    for a, w in zip(encoder, gaugan.encoder.weights):
        np.testing.assert_array_equal(a, w.numpy())
    # the combined model holds the generator's own weights (trained in train_generator)
    combined = {id(w) for w in gaugan.combined_model.weights}
    assert all(id(w) in combined for w in gaugan.generator.weights)

    val_iterator = iter(val_dataset)

    for _ in range(1):  # 5
        val_images = next(val_iterator)
        latent_vector = tf.random.normal(
            shape=(gaugan.batch_size, gaugan.latent_dim), mean=0.0, stddev=2.0
        )
        fake_images = gaugan.predict([latent_vector, val_images[2]])

        real_images = val_images
        grid_row = min(fake_images.shape[0], 3)
        assert fake_images.shape == np.asarray(real_images[1]).shape and grid_row == 2
        assert np.abs(fake_images).max() <= 1  # tanh
