"""keras.io example "Image Super-Resolution using an Efficient Sub-Pixel CNN"
(examples/vision/super_resolution_sub_pixel.py).

The Keras 3 code as written (`import keras`, `from keras import layers, ops`, `keras.utils`
image helpers, `keras.preprocessing.image_dataset_from_directory`, `import tensorflow as tf
#  only for data preprocessing`) with the imports swapped for kgraph: unlabelled
`image_dataset_from_directory` train/validation subsets, `dataset.map` with
`tf.image.rgb_to_yuv`, `tf.split` and `tf.image.resize(method="area")`, `prefetch`, a
`DepthToSpace` layer whose `call` unpacks `batch, height, width, depth = ops.shape(input)` of
an `Input(shape=(None, None, 1))` and reshapes by those dims, the ESPCNCallback computing PSNR
from `logs["loss"]` in `on_test_batch_end` and upscaling a PIL image (YCbCr split, predict,
merge) at epoch ends, EarlyStopping, a best-only `.keras` ModelCheckpoint read back with
`load_weights`, and `tf.image.psnr` of bicubic and model reconstructions.

BSDS500's download is replaced by random JPEGs written with Pillow in its layout
(`BSDS500/data/images/{train,val,test}`, landscape and portrait); sizes cut: crop_size 300 ->
24 (input 8x8), batch_size 8 -> 4, 500 images -> 64 (60 test images, so `test_img_paths[50:60]`
is as written), epochs 100 -> 1; the checkpoint "/tmp/checkpoint.keras" is under pytest's
tmp_path. IPython's `display` and the matplotlib `plot_results` figures are left out (the
arrays they show are built).
"""

import math
import os

import numpy as np

# `DepthToSpace.call` reshapes by `batch, height, width, depth = ops.shape(input)` of an
# `Input((None, None, 1))`: dims unknown while tracing (kgraph/ops/symbolic_shape.py
# gives them as scalars of the graph).


def _write_bsds(root, rng):
    from PIL import Image

    for split, count in (("train", 2), ("val", 2), ("test", 60)):
        folder = os.path.join(root, "BSDS500", "data", "images", split)
        os.makedirs(folder)
        for i in range(count):
            size = (36, 27) if i % 2 else (27, 36)  # landscape and portrait, as BSDS500
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, f"{i:03d}.jpg"))


def test_super_resolution_sub_pixel(tmp_path):
    import PIL

    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras import ops
    from kgraph.keras.utils import load_img
    from kgraph.keras.utils import array_to_img
    from kgraph.keras.utils import img_to_array
    from kgraph.keras.preprocessing import image_dataset_from_directory
    import kgraph as tf  #  only for data preprocessing

    _write_bsds(str(tmp_path), np.random.default_rng(0))
    root_dir = os.path.join(str(tmp_path), "BSDS500/data")
    keras.utils.set_random_seed(0)

    crop_size = 24
    upscale_factor = 3
    input_size = crop_size // upscale_factor
    batch_size = 4

    train_ds = image_dataset_from_directory(
        root_dir,
        batch_size=batch_size,
        image_size=(crop_size, crop_size),
        validation_split=0.2,
        subset="training",
        seed=1337,
        label_mode=None,
    )

    valid_ds = image_dataset_from_directory(
        root_dir,
        batch_size=batch_size,
        image_size=(crop_size, crop_size),
        validation_split=0.2,
        subset="validation",
        seed=1337,
        label_mode=None,
    )

    def scaling(input_image):
        input_image = input_image / 255.0
        return input_image

    # Scale from (0, 255) to (0, 1)
    train_ds = train_ds.map(scaling)
    valid_ds = valid_ds.map(scaling)

    for batch in train_ds.take(1):
        for img in batch:
            assert array_to_img(img).size == (crop_size, crop_size)

    dataset = os.path.join(root_dir, "images")
    test_path = os.path.join(dataset, "test")

    test_img_paths = sorted(
        [
            os.path.join(test_path, fname)
            for fname in os.listdir(test_path)
            if fname.endswith(".jpg")
        ]
    )

    # Use TF Ops to process.
    def process_input(input, input_size, upscale_factor):
        input = tf.image.rgb_to_yuv(input)
        last_dimension_axis = len(input.shape) - 1
        y, u, v = tf.split(input, 3, axis=last_dimension_axis)
        return tf.image.resize(y, [input_size, input_size], method="area")

    def process_target(input):
        input = tf.image.rgb_to_yuv(input)
        last_dimension_axis = len(input.shape) - 1
        y, u, v = tf.split(input, 3, axis=last_dimension_axis)
        return y

    train_ds = train_ds.map(
        lambda x: (process_input(x, input_size, upscale_factor), process_target(x))
    )
    train_ds = train_ds.prefetch(buffer_size=32)

    valid_ds = valid_ds.map(
        lambda x: (process_input(x, input_size, upscale_factor), process_target(x))
    )
    valid_ds = valid_ds.prefetch(buffer_size=32)

    for batch in train_ds.take(1):
        for img in batch[0]:
            assert array_to_img(img).size == (input_size, input_size)
        for img in batch[1]:
            assert array_to_img(img).size == (crop_size, crop_size)

    class DepthToSpace(layers.Layer):
        def __init__(self, block_size):
            super().__init__()
            self.block_size = block_size

        def call(self, input):
            batch, height, width, depth = ops.shape(input)
            depth = depth // (self.block_size**2)

            x = ops.reshape(
                input, [batch, height, width, self.block_size, self.block_size, depth]
            )
            x = ops.transpose(x, [0, 1, 3, 2, 4, 5])
            x = ops.reshape(
                x, [batch, height * self.block_size, width * self.block_size, depth]
            )
            return x

    def get_model(upscale_factor=3, channels=1):
        conv_args = {
            "activation": "relu",
            "kernel_initializer": "orthogonal",
            "padding": "same",
        }
        inputs = keras.Input(shape=(None, None, channels))
        x = layers.Conv2D(64, 5, **conv_args)(inputs)
        x = layers.Conv2D(64, 3, **conv_args)(x)
        x = layers.Conv2D(32, 3, **conv_args)(x)
        x = layers.Conv2D(channels * (upscale_factor**2), 3, **conv_args)(x)
        outputs = DepthToSpace(upscale_factor)(x)

        return keras.Model(inputs, outputs)

    def get_lowres_image(img, upscale_factor):
        """Return low-resolution image to use as model input."""
        return img.resize(
            (img.size[0] // upscale_factor, img.size[1] // upscale_factor),
            PIL.Image.BICUBIC,
        )

    def upscale_image(model, img):
        """Predict the result based on input image and restore the image as RGB."""
        ycbcr = img.convert("YCbCr")
        y, cb, cr = ycbcr.split()
        y = img_to_array(y)
        y = y.astype("float32") / 255.0

        input = np.expand_dims(y, axis=0)
        out = model.predict(input)

        out_img_y = out[0]
        out_img_y *= 255.0

        # Restore the image in RGB color space.
        out_img_y = out_img_y.clip(0, 255)
        out_img_y = out_img_y.reshape((np.shape(out_img_y)[0], np.shape(out_img_y)[1]))
        out_img_y = PIL.Image.fromarray(np.uint8(out_img_y), mode="L")
        out_img_cb = cb.resize(out_img_y.size, PIL.Image.BICUBIC)
        out_img_cr = cr.resize(out_img_y.size, PIL.Image.BICUBIC)
        out_img = PIL.Image.merge("YCbCr", (out_img_y, out_img_cb, out_img_cr)).convert(
            "RGB"
        )
        return out_img

    epoch_predictions = []

    class ESPCNCallback(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.test_img = get_lowres_image(load_img(test_img_paths[0]), upscale_factor)

        # Store PSNR value in each epoch.
        def on_epoch_begin(self, epoch, logs=None):
            self.psnr = []

        def on_epoch_end(self, epoch, logs=None):
            print("Mean PSNR for epoch: %.2f" % (np.mean(self.psnr)))
            if epoch % 20 == 0:
                prediction = upscale_image(self.model, self.test_img)
                epoch_predictions.append(prediction)  # plot_results(prediction, ...)

        def on_test_batch_end(self, batch, logs=None):
            self.psnr.append(10 * math.log10(1 / logs["loss"]))

    early_stopping_callback = keras.callbacks.EarlyStopping(monitor="loss", patience=10)

    checkpoint_filepath = str(tmp_path / "checkpoint.keras")

    model_checkpoint_callback = keras.callbacks.ModelCheckpoint(
        filepath=checkpoint_filepath,
        save_weights_only=False,
        monitor="loss",
        mode="min",
        save_best_only=True,
    )

    model = get_model(upscale_factor=upscale_factor, channels=1)
    model.summary()

    espcn = ESPCNCallback()
    callbacks = [espcn, early_stopping_callback, model_checkpoint_callback]
    loss_fn = keras.losses.MeanSquaredError()
    optimizer = keras.optimizers.Adam(learning_rate=0.001)

    epochs = 1

    model.compile(
        optimizer=optimizer,
        loss=loss_fn,
    )

    history = model.fit(
        train_ds, epochs=epochs, callbacks=callbacks, validation_data=valid_ds, verbose=2
    )

    # The model weights (that are considered the best) are loaded into the model.
    model.load_weights(checkpoint_filepath)

    total_bicubic_psnr = 0.0
    total_test_psnr = 0.0

    for index, test_img_path in enumerate(test_img_paths[50:60]):
        img = load_img(test_img_path)
        lowres_input = get_lowres_image(img, upscale_factor)
        w = lowres_input.size[0] * upscale_factor
        h = lowres_input.size[1] * upscale_factor
        highres_img = img.resize((w, h))
        prediction = upscale_image(model, lowres_input)
        lowres_img = lowres_input.resize((w, h))
        lowres_img_arr = img_to_array(lowres_img)
        highres_img_arr = img_to_array(highres_img)
        predict_img_arr = img_to_array(prediction)
        bicubic_psnr = tf.image.psnr(lowres_img_arr, highres_img_arr, max_val=255)
        test_psnr = tf.image.psnr(predict_img_arr, highres_img_arr, max_val=255)

        total_bicubic_psnr += bicubic_psnr
        total_test_psnr += test_psnr

        print(
            "PSNR of low resolution image and high resolution image is %.4f" % bicubic_psnr
        )
        print("PSNR of predict and high resolution is %.4f" % test_psnr)
        assert prediction.size == highres_img.size == lowres_img.size

    print("Avg. PSNR of lowres images is %.4f" % (total_bicubic_psnr / 10))
    print("Avg. PSNR of reconstructions is %.4f" % (total_test_psnr / 10))

    assert model.count_params() == 59657  # the example's printed summary
    assert set(history.history) >= {"loss", "val_loss"}
    assert len(espcn.psnr) >= 1 and np.all(np.isfinite(espcn.psnr))
    assert epoch_predictions[0].size == (36, 27) or epoch_predictions[0].size == (27, 36)
    assert np.isfinite(float(total_test_psnr)) and np.isfinite(float(total_bicubic_psnr))

    # the layer is depth_to_space: channel (i * 3 + j) of a pixel goes to offset (i, j)
    x = np.random.default_rng(1).normal(size=(2, 2, 3, 9)).astype("float32")
    expected = x.reshape(2, 2, 3, 3, 3, 1).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 9, 1)
    np.testing.assert_allclose(DepthToSpace(3)(x), expected)
