"""keras.io example "Enhanced Deep Residual Networks for single-image super-resolution"
(examples/vision/edsr.py).

The example's code as written, `import tensorflow as tf; from tensorflow import keras` (and
`tensorflow.keras.layers`) swapped for kgraph: the tf.data pipeline over `(lowres, highres)`
pairs (`.cache()`, a random crop by `tf.random.uniform` offsets bounded by `tf.shape`,
`tf.image.rot90` by a random count, a `tf.cond` choice of `tf.image.flip_left_right`,
`batch`, `repeat`, `prefetch`), an `EDSRModel` whose `train_step` calls
`self.compiled_loss(..., regularization_losses=self.losses)` and `self.compiled_metrics` and
whose `predict_step` clips, rounds and casts to uint8, the EDSR network on `(None, None, 3)`
inputs (Rescaling, residual blocks, `tf.nn.depth_to_space` upsampling on KerasTensors of
unknown height and width), Adam over a `PiecewiseConstantDecay`, L1 loss with a `PSNR` metric
from `tf.image.psnr`, and super-resolution of `tf.image.random_crop` patches of validation
images. The DIV2K `tfds` download is replaced by datasets of random uint8 image pairs of
varied sizes (low resolution 26-31 x 28, high resolution 4x that); 16 residual blocks -> 2,
100 epochs of 200 steps -> 1 epoch of 2 steps, the final 150x150 crops -> 20x20, 10 validation
images -> 2. matplotlib is left out (the arrays it shows are checked). Marked slow.
"""
import numpy as np
import pytest


def _div2k_pairs(tf, count, seed):
    """Like `div2k_data.as_dataset(split=..., as_supervised=True)`: (lowres, highres) uint8
    images, the high resolution one 4x the low resolution one."""
    rng = np.random.default_rng(seed)

    def pairs():
        for i in range(count):
            lowres = rng.integers(0, 256, (26 + i % 6, 28, 3), dtype=np.uint8)
            highres = np.repeat(np.repeat(lowres, 4, axis=0), 4, axis=1)
            yield lowres, highres

    spec = tf.TensorSpec(shape=(None, None, 3), dtype="uint8")
    return tf.data.Dataset.from_generator(pairs, output_signature=(spec, spec))


@pytest.mark.slow
def test_edsr():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    AUTOTUNE = tf.data.AUTOTUNE

    train = _div2k_pairs(tf, 6, seed=0)
    train_cache = train.cache()
    val = _div2k_pairs(tf, 4, seed=1)
    val_cache = val.cache()

    def flip_left_right(lowres_img, highres_img):
        """Flips Images to left and right."""
        rn = tf.random.uniform(shape=(), maxval=1)
        return tf.cond(
            rn < 0.5,
            lambda: (lowres_img, highres_img),
            lambda: (
                tf.image.flip_left_right(lowres_img),
                tf.image.flip_left_right(highres_img),
            ),
        )

    def random_rotate(lowres_img, highres_img):
        """Rotates Images by 90 degrees."""
        rn = tf.random.uniform(shape=(), maxval=4, dtype=tf.int32)
        return tf.image.rot90(lowres_img, rn), tf.image.rot90(highres_img, rn)

    def random_crop(lowres_img, highres_img, hr_crop_size=96, scale=4):
        """Crop images.

        low resolution images: 24x24
        high resolution images: 96x96
        """
        lowres_crop_size = hr_crop_size // scale  # 96//4=24
        lowres_img_shape = tf.shape(lowres_img)[:2]  # (height,width)

        lowres_width = tf.random.uniform(
            shape=(), maxval=lowres_img_shape[1] - lowres_crop_size + 1, dtype=tf.int32
        )
        lowres_height = tf.random.uniform(
            shape=(), maxval=lowres_img_shape[0] - lowres_crop_size + 1, dtype=tf.int32
        )

        highres_width = lowres_width * scale
        highres_height = lowres_height * scale

        lowres_img_cropped = lowres_img[
            lowres_height : lowres_height + lowres_crop_size,
            lowres_width : lowres_width + lowres_crop_size,
        ]  # 24x24
        highres_img_cropped = highres_img[
            highres_height : highres_height + hr_crop_size,
            highres_width : highres_width + hr_crop_size,
        ]  # 96x96

        return lowres_img_cropped, highres_img_cropped

    def dataset_object(dataset_cache, training=True):
        ds = dataset_cache
        ds = ds.map(
            lambda lowres, highres: random_crop(lowres, highres, scale=4),
            num_parallel_calls=AUTOTUNE,
        )

        if training:
            ds = ds.map(random_rotate, num_parallel_calls=AUTOTUNE)
            ds = ds.map(flip_left_right, num_parallel_calls=AUTOTUNE)
        ds = ds.batch(16)

        if training:
            ds = ds.repeat()
        ds = ds.prefetch(buffer_size=AUTOTUNE)
        return ds

    train_ds = dataset_object(train_cache, training=True)
    val_ds = dataset_object(val_cache, training=False)

    lowres, highres = next(iter(train_ds))
    assert lowres.shape == (6, 24, 24, 3) and highres.shape == (6, 96, 96, 3)
    # the pairs stay aligned through crop, rotation and flip
    np.testing.assert_array_equal(highres.numpy()[:, ::4, ::4], lowres.numpy())
    for i in range(6):
        assert highres[i].numpy().astype("uint8").shape == (96, 96, 3)
        assert lowres[i].numpy().astype("uint8").shape == (24, 24, 3)

    def PSNR(super_resolution, high_resolution):
        """Compute the peak signal-to-noise ratio, measures quality of image."""
        psnr_value = tf.image.psnr(high_resolution, super_resolution, max_val=255)[0]
        return psnr_value

    class EDSRModel(tf.keras.Model):
        def train_step(self, data):
            x, y = data

            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)  # Forward pass
                loss = self.compiled_loss(y, y_pred, regularization_losses=self.losses)

            trainable_vars = self.trainable_variables
            gradients = tape.gradient(loss, trainable_vars)
            self.optimizer.apply_gradients(zip(gradients, trainable_vars))
            self.compiled_metrics.update_state(y, y_pred)
            return {m.name: m.result() for m in self.metrics}

        def predict_step(self, x):
            x = tf.cast(tf.expand_dims(x, axis=0), tf.float32)
            super_resolution_img = self(x, training=False)
            super_resolution_img = tf.clip_by_value(super_resolution_img, 0, 255)
            super_resolution_img = tf.round(super_resolution_img)
            super_resolution_img = tf.squeeze(
                tf.cast(super_resolution_img, tf.uint8), axis=0
            )
            return super_resolution_img

    def ResBlock(inputs):
        x = layers.Conv2D(64, 3, padding="same", activation="relu")(inputs)
        x = layers.Conv2D(64, 3, padding="same")(x)
        x = layers.Add()([inputs, x])
        return x

    def Upsampling(inputs, factor=2, **kwargs):
        x = layers.Conv2D(64 * (factor**2), 3, padding="same", **kwargs)(inputs)
        x = tf.nn.depth_to_space(x, block_size=factor)
        x = layers.Conv2D(64 * (factor**2), 3, padding="same", **kwargs)(x)
        x = tf.nn.depth_to_space(x, block_size=factor)
        return x

    def make_model(num_filters, num_of_residual_blocks):
        input_layer = layers.Input(shape=(None, None, 3))
        x = layers.Rescaling(scale=1.0 / 255)(input_layer)
        x = x_new = layers.Conv2D(num_filters, 3, padding="same")(x)

        for _ in range(num_of_residual_blocks):
            x_new = ResBlock(x_new)

        x_new = layers.Conv2D(num_filters, 3, padding="same")(x_new)
        x = layers.Add()([x, x_new])

        x = Upsampling(x)
        x = layers.Conv2D(3, 3, padding="same")(x)

        output_layer = layers.Rescaling(scale=255)(x)
        return EDSRModel(input_layer, output_layer)

    model = make_model(num_filters=64, num_of_residual_blocks=2)
    assert model.output_shape == (None, None, None, 3)

    optim_edsr = keras.optimizers.Adam(
        learning_rate=keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries=[5000], values=[1e-4, 5e-5]
        )
    )
    model.compile(optimizer=optim_edsr, loss="mae", metrics=[PSNR])
    history = model.fit(train_ds, epochs=1, steps_per_epoch=2, validation_data=val_ds,
                        verbose=0)
    assert {"loss", "PSNR", "val_loss", "val_PSNR"} <= set(history.history)
    # random pixels against an untrained network: an L1 error of tens, a PSNR of a few dB
    assert 0.0 < history.history["val_loss"][0] < 255.0
    assert 0.0 < history.history["val_PSNR"][0] < 40.0

    for lowres, highres in val.take(2):
        lowres = tf.image.random_crop(lowres, (20, 20, 3))
        preds = model.predict_step(lowres)
        preds = np.asarray(preds)
        assert preds.shape == (80, 80, 3) and preds.dtype == np.uint8
