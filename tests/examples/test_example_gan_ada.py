"""keras.io example "Data-efficient GANs with Adaptive Discriminator Augmentation"
(examples/generative/gan_ada.py).

The stored source (TensorFlow-era: `import tensorflow as tf; from tensorflow import keras;
from tensorflow.keras import layers`) with those imports swapped for kgraph: the bounding-box
crop in `preprocess_image` (`tf.shape`, `tf.stack`, `tf.maximum`, `tf.reduce_min` of a list,
`tf.math.round` ints into `tf.image.crop_to_bounding_box`, `tf.image.resize(method=
tf.image.ResizeMethod.AREA)`, `tf.clip_by_value`) over a dict dataset, the KID metric around
InceptionV3 (`layers.InputLayer(input_shape=...)`, Rescaling, Resizing, `Lambda(preprocess_input)`,
polynomial kernels masked by `tf.eye(batch_size)`), the `AdaptiveAugmenter` model (a
`tf.Variable` probability, RandomFlip/RandomTranslation/RandomRotation/RandomZoom, `tf.where`
between augmented and original images, the integral-control `update` with `tf.sign`), the DCGAN
generator and discriminator, the `GAN_ADA` model (`keras.models.clone_model` EMA generator,
`metrics` property, a persistent-tape `train_step` through the augmenter, EMA `assign`s, a KID
`test_step`), a `LambdaCallback(on_epoch_end=model.plot_images)` and a best-`val_kid` weights
checkpoint reloaded with `load_weights`. Changes: `tfds.load("caltech_birds2011")` is a
dataset of random images with random boxes, InceptionV3's `weights="imagenet"` (a download) is
`None`, the checkpoint path ends in Keras 3's `.weights.h5`, `plot_images` keeps its
`generate` call and leaves the matplotlib figure out; sizes: image_size 64 -> 32 (depth 4 -> 3),
width 128 -> 16, noise 64 -> 16, batch 128 -> 4, 8 training and 8 validation images, 10 epochs
-> 1. Checked: the crop against the box, the augmentation probability's update, the EMA
weights, the KID against numpy on the encoder's features. Marked slow (~6 s: InceptionV3 in
the KID metric).
"""

import numpy as np
import pytest


def birds_load(name, split, shuffle_files):
    """Stand-in for `tfds.load("caltech_birds2011", split=...)`: {"image", "bbox"} elements."""
    from kgraph import data

    assert name == "caltech_birds2011"
    rng = np.random.default_rng(0 if split == "train" else 1)
    count = 8
    low = rng.uniform(0.05, 0.4, (count, 2))
    high = low + rng.uniform(0.3, 0.55, (count, 2))
    bbox = np.concatenate([low, high], 1)[:, [0, 1, 2, 3]].astype("float32")
    return data.Dataset.from_tensor_slices(
        {"image": rng.integers(0, 256, (count, 60, 72, 3), dtype=np.uint8), "bbox": bbox})


@pytest.mark.slow
def test_gan_ada(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import types

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    tfds = types.SimpleNamespace(load=birds_load)
    keras.utils.set_random_seed(0)

    # data
    num_epochs = 1
    image_size = 32
    kid_image_size = 75  # resolution of KID measurement
    padding = 0.25
    dataset_name = "caltech_birds2011"

    # adaptive discriminator augmentation
    max_translation = 0.125
    max_rotation = 0.125
    max_zoom = 0.25
    target_accuracy = 0.8
    integration_steps = 1000

    # architecture
    noise_size = 16
    depth = 3
    width = 16
    leaky_relu_slope = 0.2
    dropout_rate = 0.4

    # optimization
    batch_size = 4
    learning_rate = 2e-4
    beta_1 = 0.5  # not using the default value of 0.9 is important
    ema = 0.99

    def round_to_int(float_value):
        return tf.cast(tf.math.round(float_value), dtype=tf.int32)

    def preprocess_image(data):
        # unnormalize bounding box coordinates
        height = tf.cast(tf.shape(data["image"])[0], dtype=tf.float32)
        width = tf.cast(tf.shape(data["image"])[1], dtype=tf.float32)
        bounding_box = data["bbox"] * tf.stack([height, width, height, width])

        # calculate center and length of longer side, add padding
        target_center_y = 0.5 * (bounding_box[0] + bounding_box[2])
        target_center_x = 0.5 * (bounding_box[1] + bounding_box[3])
        target_size = tf.maximum(
            (1.0 + padding) * (bounding_box[2] - bounding_box[0]),
            (1.0 + padding) * (bounding_box[3] - bounding_box[1]),
        )

        # modify crop size to fit into image
        target_height = tf.reduce_min(
            [target_size, 2.0 * target_center_y, 2.0 * (height - target_center_y)]
        )
        target_width = tf.reduce_min(
            [target_size, 2.0 * target_center_x, 2.0 * (width - target_center_x)]
        )

        # crop image
        image = tf.image.crop_to_bounding_box(
            data["image"],
            offset_height=round_to_int(target_center_y - 0.5 * target_height),
            offset_width=round_to_int(target_center_x - 0.5 * target_width),
            target_height=round_to_int(target_height),
            target_width=round_to_int(target_width),
        )

        # resize and clip
        # for image downsampling, area interpolation is the preferred method
        image = tf.image.resize(
            image, size=[image_size, image_size], method=tf.image.ResizeMethod.AREA
        )
        return tf.clip_by_value(image / 255.0, 0.0, 1.0)

    # the crop is the box's square, padded by a quarter, within the image
    sample = next(iter(birds_load(dataset_name, "train", True)))
    box = sample["bbox"] * np.float32([60, 72, 60, 72])
    side = 1.25 * max(box[2] - box[0], box[3] - box[1])
    cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    crop_h = min(side, 2 * cy, 2 * (60 - cy))
    crop_w = min(side, 2 * cx, 2 * (72 - cx))
    top, left = int(np.round(cy - crop_h / 2)), int(np.round(cx - crop_w / 2))
    crop = sample["image"][top:top + int(np.round(crop_h)), left:left + int(np.round(crop_w))]
    np.testing.assert_allclose(
        preprocess_image(sample),
        np.clip(np.asarray(tf.image.resize(crop, [32, 32], method="area")) / 255.0, 0, 1),
        rtol=1e-5, atol=1e-6)

    def prepare_dataset(split):
        # the validation dataset is shuffled as well, because data order matters
        # for the KID calculation
        return (
            tfds.load(dataset_name, split=split, shuffle_files=True)
            .map(preprocess_image, num_parallel_calls=tf.data.AUTOTUNE)
            .cache()
            .shuffle(10 * batch_size)
            .batch(batch_size, drop_remainder=True)
            .prefetch(buffer_size=tf.data.AUTOTUNE)
        )

    train_dataset = prepare_dataset("train")
    val_dataset = prepare_dataset("test")

    class KID(keras.metrics.Metric):
        def __init__(self, name="KID", **kwargs):
            super().__init__(name=name, **kwargs)

            # KID is estimated per batch and is averaged across batches
            self.kid_tracker = keras.metrics.Mean()

            self.encoder = keras.Sequential(
                [
                    layers.InputLayer(input_shape=(image_size, image_size, 3)),
                    layers.Rescaling(255.0),
                    layers.Resizing(height=kid_image_size, width=kid_image_size),
                    layers.Lambda(keras.applications.inception_v3.preprocess_input),
                    keras.applications.InceptionV3(
                        include_top=False,
                        input_shape=(kid_image_size, kid_image_size, 3),
                        weights=None,
                    ),
                    layers.GlobalAveragePooling2D(),
                ],
                name="inception_encoder",
            )

        def polynomial_kernel(self, features_1, features_2):
            feature_dimensions = tf.cast(tf.shape(features_1)[1], dtype=tf.float32)
            return (features_1 @ tf.transpose(features_2) / feature_dimensions + 1.0) ** 3.0

        def update_state(self, real_images, generated_images, sample_weight=None):
            real_features = self.encoder(real_images, training=False)
            generated_features = self.encoder(generated_images, training=False)

            # compute polynomial kernels using the two sets of features
            kernel_real = self.polynomial_kernel(real_features, real_features)
            kernel_generated = self.polynomial_kernel(
                generated_features, generated_features
            )
            kernel_cross = self.polynomial_kernel(real_features, generated_features)

            # estimate the squared maximum mean discrepancy using the average kernel values
            batch_size = tf.shape(real_features)[0]
            batch_size_f = tf.cast(batch_size, dtype=tf.float32)
            mean_kernel_real = tf.reduce_sum(kernel_real * (1.0 - tf.eye(batch_size))) / (
                batch_size_f * (batch_size_f - 1.0)
            )
            mean_kernel_generated = tf.reduce_sum(
                kernel_generated * (1.0 - tf.eye(batch_size))
            ) / (batch_size_f * (batch_size_f - 1.0))
            mean_kernel_cross = tf.reduce_mean(kernel_cross)
            kid = mean_kernel_real + mean_kernel_generated - 2.0 * mean_kernel_cross

            # update the average KID estimate
            self.kid_tracker.update_state(kid)

        def result(self):
            return self.kid_tracker.result()

        def reset_state(self):
            self.kid_tracker.reset_state()

    # KID against numpy on the encoder's features
    kid_metric = KID()
    rng = np.random.default_rng(3)
    real, fake = rng.uniform(0, 1, (2, 4, image_size, image_size, 3)).astype("float32")
    kid_metric.update_state(real, fake)
    fr = np.asarray(kid_metric.encoder(real, training=False), np.float64)
    fg = np.asarray(kid_metric.encoder(fake, training=False), np.float64)

    def kernel(a, b):
        return (a @ b.T / a.shape[1] + 1.0) ** 3

    off = 1.0 - np.eye(4)
    expected = (np.sum(kernel(fr, fr) * off) / 12 + np.sum(kernel(fg, fg) * off) / 12
                - 2 * np.mean(kernel(fr, fg)))
    assert float(kid_metric.result()) == pytest.approx(expected, rel=1e-3, abs=1e-6)

    # "hard sigmoid", useful for binary accuracy calculation from logits
    def step(values):
        # negative values -> 0.0, positive values -> 1.0
        return 0.5 * (1.0 + tf.sign(values))

    # augments images with a probability that is dynamically updated during training
    class AdaptiveAugmenter(keras.Model):
        def __init__(self):
            super().__init__()

            # stores the current probability of an image being augmented
            self.probability = tf.Variable(0.0)

            self.augmenter = keras.Sequential(
                [
                    layers.InputLayer(input_shape=(image_size, image_size, 3)),
                    # blitting/x-flip:
                    layers.RandomFlip("horizontal"),
                    # blitting/integer translation:
                    layers.RandomTranslation(
                        height_factor=max_translation,
                        width_factor=max_translation,
                        interpolation="nearest",
                    ),
                    # geometric/rotation:
                    layers.RandomRotation(factor=max_rotation),
                    # geometric/isotropic and anisotropic scaling:
                    layers.RandomZoom(
                        height_factor=(-max_zoom, 0.0), width_factor=(-max_zoom, 0.0)
                    ),
                ],
                name="adaptive_augmenter",
            )

        def call(self, images, training):
            if training:
                augmented_images = self.augmenter(images, training)

                # during training either the original or the augmented images are selected
                # based on self.probability
                augmentation_values = tf.random.uniform(
                    shape=(batch_size, 1, 1, 1), minval=0.0, maxval=1.0
                )
                augmentation_bools = tf.math.less(augmentation_values, self.probability)

                images = tf.where(augmentation_bools, augmented_images, images)
            return images

        def update(self, real_logits):
            current_accuracy = tf.reduce_mean(step(real_logits))

            # the augmentation probability is updated based on the dicriminator's
            # accuracy on real images
            accuracy_error = current_accuracy - target_accuracy
            self.probability.assign(
                tf.clip_by_value(
                    self.probability + accuracy_error / integration_steps, 0.0, 1.0
                )
            )

    # DCGAN generator
    def get_generator():
        noise_input = keras.Input(shape=(noise_size,))
        x = layers.Dense(4 * 4 * width, use_bias=False)(noise_input)
        x = layers.BatchNormalization(scale=False)(x)
        x = layers.ReLU()(x)
        x = layers.Reshape(target_shape=(4, 4, width))(x)
        for _ in range(depth - 1):
            x = layers.Conv2DTranspose(
                width, kernel_size=4, strides=2, padding="same", use_bias=False,
            )(x)
            x = layers.BatchNormalization(scale=False)(x)
            x = layers.ReLU()(x)
        image_output = layers.Conv2DTranspose(
            3, kernel_size=4, strides=2, padding="same", activation="sigmoid",
        )(x)

        return keras.Model(noise_input, image_output, name="generator")

    # DCGAN discriminator
    def get_discriminator():
        image_input = keras.Input(shape=(image_size, image_size, 3))
        x = image_input
        for _ in range(depth):
            x = layers.Conv2D(
                width, kernel_size=4, strides=2, padding="same", use_bias=False,
            )(x)
            x = layers.BatchNormalization(scale=False)(x)
            x = layers.LeakyReLU(alpha=leaky_relu_slope)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(dropout_rate)(x)
        output_score = layers.Dense(1)(x)

        return keras.Model(image_input, output_score, name="discriminator")

    generated = []

    class GAN_ADA(keras.Model):
        def __init__(self):
            super().__init__()

            self.augmenter = AdaptiveAugmenter()
            self.generator = get_generator()
            self.ema_generator = keras.models.clone_model(self.generator)
            self.discriminator = get_discriminator()

            self.generator.summary()
            self.discriminator.summary()

        def compile(self, generator_optimizer, discriminator_optimizer, **kwargs):
            super().compile(**kwargs)

            # separate optimizers for the two networks
            self.generator_optimizer = generator_optimizer
            self.discriminator_optimizer = discriminator_optimizer

            self.generator_loss_tracker = keras.metrics.Mean(name="g_loss")
            self.discriminator_loss_tracker = keras.metrics.Mean(name="d_loss")
            self.real_accuracy = keras.metrics.BinaryAccuracy(name="real_acc")
            self.generated_accuracy = keras.metrics.BinaryAccuracy(name="gen_acc")
            self.augmentation_probability_tracker = keras.metrics.Mean(name="aug_p")
            self.kid = KID()

        @property
        def metrics(self):
            return [
                self.generator_loss_tracker,
                self.discriminator_loss_tracker,
                self.real_accuracy,
                self.generated_accuracy,
                self.augmentation_probability_tracker,
                self.kid,
            ]

        def generate(self, batch_size, training):
            latent_samples = tf.random.normal(shape=(batch_size, noise_size))
            # use ema_generator during inference
            if training:
                generated_images = self.generator(latent_samples, training)
            else:
                generated_images = self.ema_generator(latent_samples, training)
            return generated_images

        def adversarial_loss(self, real_logits, generated_logits):
            # this is usually called the non-saturating GAN loss

            real_labels = tf.ones(shape=(batch_size, 1))
            generated_labels = tf.zeros(shape=(batch_size, 1))

            # the generator tries to produce images that the discriminator considers as real
            generator_loss = keras.losses.binary_crossentropy(
                real_labels, generated_logits, from_logits=True
            )
            # the discriminator tries to determine if images are real or generated
            discriminator_loss = keras.losses.binary_crossentropy(
                tf.concat([real_labels, generated_labels], axis=0),
                tf.concat([real_logits, generated_logits], axis=0),
                from_logits=True,
            )

            return tf.reduce_mean(generator_loss), tf.reduce_mean(discriminator_loss)

        def train_step(self, real_images):
            real_images = self.augmenter(real_images, training=True)

            # use persistent gradient tape because gradients will be calculated twice
            with tf.GradientTape(persistent=True) as tape:
                generated_images = self.generate(batch_size, training=True)
                # gradient is calculated through the image augmentation
                generated_images = self.augmenter(generated_images, training=True)

                # separate forward passes for the real and generated images, meaning
                # that batch normalization is applied separately
                real_logits = self.discriminator(real_images, training=True)
                generated_logits = self.discriminator(generated_images, training=True)

                generator_loss, discriminator_loss = self.adversarial_loss(
                    real_logits, generated_logits
                )

            # calculate gradients and update weights
            generator_gradients = tape.gradient(
                generator_loss, self.generator.trainable_weights
            )
            discriminator_gradients = tape.gradient(
                discriminator_loss, self.discriminator.trainable_weights
            )
            self.generator_optimizer.apply_gradients(
                zip(generator_gradients, self.generator.trainable_weights)
            )
            self.discriminator_optimizer.apply_gradients(
                zip(discriminator_gradients, self.discriminator.trainable_weights)
            )

            # update the augmentation probability based on the discriminator's performance
            self.augmenter.update(real_logits)

            self.generator_loss_tracker.update_state(generator_loss)
            self.discriminator_loss_tracker.update_state(discriminator_loss)
            self.real_accuracy.update_state(1.0, step(real_logits))
            self.generated_accuracy.update_state(0.0, step(generated_logits))
            self.augmentation_probability_tracker.update_state(self.augmenter.probability)

            # track the exponential moving average of the generator's weights to decrease
            # variance in the generation quality
            for weight, ema_weight in zip(
                self.generator.weights, self.ema_generator.weights
            ):
                ema_weight.assign(ema * ema_weight + (1 - ema) * weight)

            # KID is not measured during the training phase for computational efficiency
            return {m.name: m.result() for m in self.metrics[:-1]}

        def test_step(self, real_images):
            generated_images = self.generate(batch_size, training=False)

            self.kid.update_state(real_images, generated_images)

            # only KID is measured during the evaluation phase for computational efficiency
            return {self.kid.name: self.kid.result()}

        def plot_images(self, epoch=None, logs=None, num_rows=3, num_cols=6, interval=5):
            # plot random generated images for visual evaluation of generation quality
            if epoch is None or (epoch + 1) % interval == 0:
                num_images = num_rows * num_cols
                generated_images = self.generate(num_images, training=False)
                generated.append(np.asarray(generated_images))  # (the figure is left out)

    # create and compile the model
    model = GAN_ADA()
    model.compile(
        generator_optimizer=keras.optimizers.Adam(learning_rate, beta_1),
        discriminator_optimizer=keras.optimizers.Adam(learning_rate, beta_1),
    )

    # save the best model based on the validation KID metric
    checkpoint_path = "gan_model.weights.h5"
    checkpoint_callback = tf.keras.callbacks.ModelCheckpoint(
        filepath=checkpoint_path,
        save_weights_only=True,
        monitor="val_kid",
        mode="min",
        save_best_only=True,
    )

    ema_before = [np.array(w) for w in model.ema_generator.weights]
    # the KID metric is named "KID", so the logs hold "val_KID", not the monitored "val_kid":
    # Keras 3 warns and saves every epoch, as kgraph does
    with pytest.warns(UserWarning, match="only with val_kid available"):
        history = model.fit(
            train_dataset,
            epochs=num_epochs,
            validation_data=val_dataset,
            callbacks=[
                keras.callbacks.LambdaCallback(on_epoch_end=model.plot_images),
                checkpoint_callback,
            ],
        )
    assert {"g_loss", "d_loss", "real_acc", "gen_acc", "aug_p", "val_KID"} <= set(
        history.history)

    # the probability moved by (accuracy - 0.8) / 1000 per step, clipped at 0
    assert 0.0 <= float(model.augmenter.probability.numpy()) <= 2 * 0.2 / 1000
    # two batches of `ema_weight <- 0.99 ema_weight + 0.01 weight`: the EMA weights are
    # 0.99^2 of their start plus 0.0199 of the generator's (whose trainable weights moved
    # little in between; its batch-norm statistics did, so they are left out)
    for e, w, g in zip(ema_before, model.ema_generator.weights, model.generator.weights):
        if not g.trainable:
            continue
        np.testing.assert_allclose(np.asarray(w), ema**2 * e + (1 - ema**2) * np.asarray(g),
                                   atol=2e-5)

    # load the best model and generate images
    model.load_weights(checkpoint_path)
    model.plot_images()
    assert generated[-1].shape == (18, image_size, image_size, 3)
