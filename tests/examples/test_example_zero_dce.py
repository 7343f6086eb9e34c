"""keras.io example "Zero-DCE for low-light image enhancement" (examples/vision/zero_dce.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow
as tf; from tensorflow import keras; from tensorflow.keras import layers`, swapped for kgraph):
a tf.data pipeline of PNG paths mapped with `num_parallel_calls=tf.data.AUTOTUNE` and batched
with `drop_remainder=True`, the DCE-Net (seven 3x3 convolutions with skip concatenations on
`Input(shape=[None, None, 3])`), the four zero-reference losses in TensorFlow ops
(`tf.reduce_mean(axis=(1, 2), keepdims=True)`, `tf.nn.avg_pool2d`, `tf.shape` slices,
`tf.nn.conv2d` with fixed difference kernels in a `keras.losses.Loss(reduction="none")`
subclass), the `ZeroDCE` model whose `compile(learning_rate)` sets its own Adam and whose
`train_step`/`test_step` return a dict of the five losses, and `infer` on whole test images
(`tf.cast(..., dtype=np.uint8)`, `.numpy()`, `ImageOps.autocontrast`).

Replaced: the LOL dataset download (gdown) by random PNGs written with Pillow in its layout;
`load_data`'s `tf.io.read_file` + `tf.image.decode_png` (TensorFlow string tensors) by
`keras.utils.load_img` + `img_to_array`. Sizes cut: IMAGE_SIZE 256 -> 32, BATCH_SIZE 16 -> 4,
485 training images -> 12 (MAX_TRAIN_IMAGES 400 -> 8), 15 test images -> 3, epochs 100 -> 1.
The matplotlib curves and panels are left out (their histories and images are checked).
"""

import os
import random
from glob import glob

import numpy as np

# `illumination_smoothness_loss` does arithmetic on `tf.shape(x)` dims of the
# DCE-Net's open height and width: dims unknown while tracing (kgraph/ops/symbolic_shape.py
# gives them as scalars of the graph).


def _write_lol(root, rng):
    from PIL import Image

    for folder, count in (("our485/low", 12), ("eval15/low", 3)):
        path = os.path.join(root, "lol_dataset", folder)
        os.makedirs(path)
        for i in range(count):
            pixels = rng.integers(0, 60, (30, 40, 3), dtype=np.uint8)  # dark, 600x400 in LOL
            Image.fromarray(pixels).save(os.path.join(path, f"{i + 1}.png"))


def test_zero_dce(tmp_path, monkeypatch):
    from PIL import Image, ImageOps

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    _write_lol(str(tmp_path), np.random.default_rng(0))
    monkeypatch.chdir(tmp_path)
    random.seed(0)
    keras.utils.set_random_seed(0)

    IMAGE_SIZE = 32
    BATCH_SIZE = 4
    MAX_TRAIN_IMAGES = 8

    def load_data(image_path):
        # tf.io.read_file + tf.image.decode_png(image, channels=3) in the example
        image = keras.utils.img_to_array(keras.utils.load_img(image_path), dtype="uint8")
        image = tf.image.resize(images=image, size=[IMAGE_SIZE, IMAGE_SIZE])
        image = image / 255.0
        return image

    def data_generator(low_light_images):
        dataset = tf.data.Dataset.from_tensor_slices((low_light_images))
        dataset = dataset.map(load_data, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(BATCH_SIZE, drop_remainder=True)
        return dataset

    train_low_light_images = sorted(glob("./lol_dataset/our485/low/*"))[:MAX_TRAIN_IMAGES]
    val_low_light_images = sorted(glob("./lol_dataset/our485/low/*"))[MAX_TRAIN_IMAGES:]
    test_low_light_images = sorted(glob("./lol_dataset/eval15/low/*"))

    train_dataset = data_generator(train_low_light_images)
    val_dataset = data_generator(val_low_light_images)

    print("Train Dataset:", train_dataset)
    print("Validation Dataset:", val_dataset)

    def build_dce_net():
        input_img = keras.Input(shape=[None, None, 3])
        conv1 = layers.Conv2D(
            32, (3, 3), strides=(1, 1), activation="relu", padding="same"
        )(input_img)
        conv2 = layers.Conv2D(
            32, (3, 3), strides=(1, 1), activation="relu", padding="same"
        )(conv1)
        conv3 = layers.Conv2D(
            32, (3, 3), strides=(1, 1), activation="relu", padding="same"
        )(conv2)
        conv4 = layers.Conv2D(
            32, (3, 3), strides=(1, 1), activation="relu", padding="same"
        )(conv3)
        int_con1 = layers.Concatenate(axis=-1)([conv4, conv3])
        conv5 = layers.Conv2D(
            32, (3, 3), strides=(1, 1), activation="relu", padding="same"
        )(int_con1)
        int_con2 = layers.Concatenate(axis=-1)([conv5, conv2])
        conv6 = layers.Conv2D(
            32, (3, 3), strides=(1, 1), activation="relu", padding="same"
        )(int_con2)
        int_con3 = layers.Concatenate(axis=-1)([conv6, conv1])
        x_r = layers.Conv2D(24, (3, 3), strides=(1, 1), activation="tanh", padding="same")(
            int_con3
        )
        return keras.Model(inputs=input_img, outputs=x_r)

    def color_constancy_loss(x):
        mean_rgb = tf.reduce_mean(x, axis=(1, 2), keepdims=True)
        mr, mg, mb = mean_rgb[:, :, :, 0], mean_rgb[:, :, :, 1], mean_rgb[:, :, :, 2]
        d_rg = tf.square(mr - mg)
        d_rb = tf.square(mr - mb)
        d_gb = tf.square(mb - mg)
        return tf.sqrt(tf.square(d_rg) + tf.square(d_rb) + tf.square(d_gb))

    def exposure_loss(x, mean_val=0.6):
        x = tf.reduce_mean(x, axis=3, keepdims=True)
        mean = tf.nn.avg_pool2d(x, ksize=16, strides=16, padding="VALID")
        return tf.reduce_mean(tf.square(mean - mean_val))

    def illumination_smoothness_loss(x):
        batch_size = tf.shape(x)[0]
        h_x = tf.shape(x)[1]
        w_x = tf.shape(x)[2]
        count_h = (tf.shape(x)[2] - 1) * tf.shape(x)[3]
        count_w = tf.shape(x)[2] * (tf.shape(x)[3] - 1)
        h_tv = tf.reduce_sum(tf.square((x[:, 1:, :, :] - x[:, : h_x - 1, :, :])))
        w_tv = tf.reduce_sum(tf.square((x[:, :, 1:, :] - x[:, :, : w_x - 1, :])))
        batch_size = tf.cast(batch_size, dtype=tf.float32)
        count_h = tf.cast(count_h, dtype=tf.float32)
        count_w = tf.cast(count_w, dtype=tf.float32)
        return 2 * (h_tv / count_h + w_tv / count_w) / batch_size

    class SpatialConsistencyLoss(keras.losses.Loss):
        def __init__(self, **kwargs):
            super(SpatialConsistencyLoss, self).__init__(reduction="none")

            self.left_kernel = tf.constant(
                [[[[0, 0, 0]], [[-1, 1, 0]], [[0, 0, 0]]]], dtype=tf.float32
            )
            self.right_kernel = tf.constant(
                [[[[0, 0, 0]], [[0, 1, -1]], [[0, 0, 0]]]], dtype=tf.float32
            )
            self.up_kernel = tf.constant(
                [[[[0, -1, 0]], [[0, 1, 0]], [[0, 0, 0]]]], dtype=tf.float32
            )
            self.down_kernel = tf.constant(
                [[[[0, 0, 0]], [[0, 1, 0]], [[0, -1, 0]]]], dtype=tf.float32
            )

        def call(self, y_true, y_pred):

            original_mean = tf.reduce_mean(y_true, 3, keepdims=True)
            enhanced_mean = tf.reduce_mean(y_pred, 3, keepdims=True)
            original_pool = tf.nn.avg_pool2d(
                original_mean, ksize=4, strides=4, padding="VALID"
            )
            enhanced_pool = tf.nn.avg_pool2d(
                enhanced_mean, ksize=4, strides=4, padding="VALID"
            )

            d_original_left = tf.nn.conv2d(
                original_pool, self.left_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )
            d_original_right = tf.nn.conv2d(
                original_pool, self.right_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )
            d_original_up = tf.nn.conv2d(
                original_pool, self.up_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )
            d_original_down = tf.nn.conv2d(
                original_pool, self.down_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )

            d_enhanced_left = tf.nn.conv2d(
                enhanced_pool, self.left_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )
            d_enhanced_right = tf.nn.conv2d(
                enhanced_pool, self.right_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )
            d_enhanced_up = tf.nn.conv2d(
                enhanced_pool, self.up_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )
            d_enhanced_down = tf.nn.conv2d(
                enhanced_pool, self.down_kernel, strides=[1, 1, 1, 1], padding="SAME"
            )

            d_left = tf.square(d_original_left - d_enhanced_left)
            d_right = tf.square(d_original_right - d_enhanced_right)
            d_up = tf.square(d_original_up - d_enhanced_up)
            d_down = tf.square(d_original_down - d_enhanced_down)
            return d_left + d_right + d_up + d_down

    class ZeroDCE(keras.Model):
        def __init__(self, **kwargs):
            super(ZeroDCE, self).__init__(**kwargs)
            self.dce_model = build_dce_net()

        def compile(self, learning_rate, **kwargs):
            super(ZeroDCE, self).compile(**kwargs)
            self.optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
            self.spatial_constancy_loss = SpatialConsistencyLoss(reduction="none")

        def get_enhanced_image(self, data, output):
            r1 = output[:, :, :, :3]
            r2 = output[:, :, :, 3:6]
            r3 = output[:, :, :, 6:9]
            r4 = output[:, :, :, 9:12]
            r5 = output[:, :, :, 12:15]
            r6 = output[:, :, :, 15:18]
            r7 = output[:, :, :, 18:21]
            r8 = output[:, :, :, 21:24]
            x = data + r1 * (tf.square(data) - data)
            x = x + r2 * (tf.square(x) - x)
            x = x + r3 * (tf.square(x) - x)
            enhanced_image = x + r4 * (tf.square(x) - x)
            x = enhanced_image + r5 * (tf.square(enhanced_image) - enhanced_image)
            x = x + r6 * (tf.square(x) - x)
            x = x + r7 * (tf.square(x) - x)
            enhanced_image = x + r8 * (tf.square(x) - x)
            return enhanced_image

        def call(self, data):
            dce_net_output = self.dce_model(data)
            return self.get_enhanced_image(data, dce_net_output)

        def compute_losses(self, data, output):
            enhanced_image = self.get_enhanced_image(data, output)
            loss_illumination = 200 * illumination_smoothness_loss(output)
            loss_spatial_constancy = tf.reduce_mean(
                self.spatial_constancy_loss(enhanced_image, data)
            )
            loss_color_constancy = 5 * tf.reduce_mean(color_constancy_loss(enhanced_image))
            loss_exposure = 10 * tf.reduce_mean(exposure_loss(enhanced_image))
            total_loss = (
                loss_illumination
                + loss_spatial_constancy
                + loss_color_constancy
                + loss_exposure
            )
            return {
                "total_loss": total_loss,
                "illumination_smoothness_loss": loss_illumination,
                "spatial_constancy_loss": loss_spatial_constancy,
                "color_constancy_loss": loss_color_constancy,
                "exposure_loss": loss_exposure,
            }

        def train_step(self, data):
            with tf.GradientTape() as tape:
                output = self.dce_model(data)
                losses = self.compute_losses(data, output)
            gradients = tape.gradient(
                losses["total_loss"], self.dce_model.trainable_weights
            )
            self.optimizer.apply_gradients(
                zip(gradients, self.dce_model.trainable_weights))
            return losses

        def test_step(self, data):
            output = self.dce_model(data)
            return self.compute_losses(data, output)

        def save_weights(self, filepath, overwrite=True, save_format=None, options=None):
            """While saving the weights, we simply save the weights of the DCE-Net"""
            self.dce_model.save_weights(
                filepath, overwrite=overwrite, save_format=save_format, options=options
            )

        def load_weights(self, filepath, by_name=False, skip_mismatch=False, options=None):
            """While loading the weights, we simply load the weights of the DCE-Net"""
            self.dce_model.load_weights(
                filepath=filepath,
                by_name=by_name,
                skip_mismatch=skip_mismatch,
                options=options,
            )

    zero_dce_model = ZeroDCE()
    zero_dce_model.compile(learning_rate=1e-4)
    history = zero_dce_model.fit(train_dataset, validation_data=val_dataset, epochs=1)

    for item in ["total_loss", "illumination_smoothness_loss", "spatial_constancy_loss",
                 "color_constancy_loss", "exposure_loss"]:
        assert len(history.history[item]) == len(history.history["val_" + item]) == 1
        assert np.isfinite(history.history[item][0])

    def infer(original_image):
        image = keras.preprocessing.image.img_to_array(original_image)
        image = image.astype("float32") / 255.0
        image = np.expand_dims(image, axis=0)
        output_image = zero_dce_model(image)
        output_image = tf.cast((output_image[0, :, :, :] * 255), dtype=np.uint8)
        output_image = Image.fromarray(output_image.numpy())
        return output_image

    for val_image_file in test_low_light_images:
        original_image = Image.open(val_image_file)
        enhanced_image = infer(original_image)
        panels = [original_image, ImageOps.autocontrast(original_image), enhanced_image]
        assert all(panel.size == (40, 30) for panel in panels)

    # the losses in numpy on one batch: the parts add up to the total
    batch = next(iter(val_dataset))
    output = zero_dce_model.dce_model(batch)
    losses = zero_dce_model.compute_losses(batch, output)
    np.testing.assert_allclose(
        float(losses["total_loss"]),
        sum(float(losses[k]) for k in losses if k != "total_loss"), rtol=1e-5)
    out = np.asarray(output)
    h_tv = np.sum(np.square(out[:, 1:] - out[:, :-1]))
    w_tv = np.sum(np.square(out[:, :, 1:] - out[:, :, :-1]))
    expected = 2 * (h_tv / ((32 - 1) * 24) + w_tv / (32 * (24 - 1))) / 4
    np.testing.assert_allclose(float(losses["illumination_smoothness_loss"]), 200 * expected,
                               rtol=1e-4)
    assert sum(int(np.prod(w.shape)) for w in zero_dce_model.dce_model.weights) == 79416
