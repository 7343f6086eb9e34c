"""tf.image.flip_left_right / rot90 / psnr against numpy, and depth_to_space on images of
unknown height and width (tf.nn and keras.ops), traced and differentiated."""
import numpy as np
import pytest

import kgraph as tf
from kgraph import keras

IMAGE = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)


def _depth_to_space_reference(x, b):
    n, h, w, c = x.shape
    y = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * b, w * b, c // (b * b))


def test_flip_left_right_and_rot90_as_numpy():
    np.testing.assert_array_equal(tf.image.flip_left_right(IMAGE), IMAGE[:, ::-1])
    batch = np.stack([IMAGE, IMAGE[::-1]])
    for k in range(5):
        np.testing.assert_array_equal(tf.image.rot90(IMAGE, k), np.rot90(IMAGE, k))
        np.testing.assert_array_equal(tf.image.rot90(batch, np.int32(k)),
                                      np.rot90(batch, k, axes=(1, 2)))
    with pytest.raises(ValueError, match="rank 3 or 4"):
        tf.image.rot90(IMAGE[0], 1)


def test_psnr_per_image_as_tensorflow():
    other = np.clip(IMAGE.astype(np.int64) + 3, 0, 255).astype(np.uint8)
    mse = np.mean((IMAGE.astype(np.float64) - other) ** 2)
    expected = 20 * np.log10(255.0) - 10 * np.log10(mse)
    np.testing.assert_allclose(tf.image.psnr(IMAGE, other, max_val=255), expected, rtol=1e-5)
    batch = tf.image.psnr(np.stack([IMAGE, IMAGE]), np.stack([other, other]), 255)
    assert batch.shape == (2,)
    # integer images and max_val scaled into [0, 1] (TensorFlow's convert_image_dtype) agree
    np.testing.assert_allclose(tf.image.psnr(IMAGE / 255.0, other / 255.0, max_val=1.0),
                               expected, rtol=1e-5)


def test_cond_and_round_as_tensorflow():
    # the EDSR example's eager tf.cond over a tf.random.uniform draw, returning a pair
    pair = tf.cond(np.float32(0.7) < 0.5, lambda: (IMAGE, IMAGE),
                   lambda: (tf.image.flip_left_right(IMAGE), IMAGE))
    np.testing.assert_array_equal(pair[0], IMAGE[:, ::-1])
    np.testing.assert_array_equal(tf.round(np.float32([0.5, 1.5, 2.5, -0.5, 2.6])),
                                  [0.0, 2.0, 2.0, -0.0, 3.0])  # halves to even


def test_depth_to_space_with_unknown_height_and_width_traces_and_trains():
    x = np.arange(2 * 2 * 3 * 8, dtype="float32").reshape(2, 2, 3, 8)
    np.testing.assert_array_equal(tf.nn.depth_to_space(x, 2), _depth_to_space_reference(x, 2))
    inputs = keras.Input((None, None, 8))
    outputs = tf.nn.depth_to_space(keras.layers.Conv2D(8, 1)(inputs), block_size=2)
    model = keras.Model(inputs, outputs)
    assert model.output_shape == (None, None, None, 2)
    conv = model.layers[1]
    expected = _depth_to_space_reference(
        np.einsum("nhwc,cd->nhwd", x, conv.kernel.numpy()[0, 0]) + conv.bias.numpy(), 2)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-4)
    small = x[:, :1, :2] / 100.0  # another height and width through the same model
    assert model.predict(small, verbose=0).shape == (2, 2, 4, 2)
    model.compile(optimizer="adam", loss="mse")
    target = _depth_to_space_reference(small, 2)
    losses = model.fit(small, target, epochs=5, verbose=0).history["loss"]
    assert losses[-1] < losses[0]


def test_rgb_to_yuv_is_bt601_luma_and_scaled_colour_differences():
    """`tf.image.rgb_to_yuv` (the keras.io sub-pixel super-resolution example's input): Y is
    the BT.601 luma, U and V the scaled B - Y and R - Y; grey pixels have U = V = 0; traced
    on a functional tensor with unknown height and width it gives the same values."""
    rgb = IMAGE / 255.0
    yuv = tf.image.rgb_to_yuv(rgb)
    luma = rgb @ np.asarray([0.299, 0.587, 0.114])
    np.testing.assert_allclose(yuv[..., 0], luma, rtol=1e-5)
    np.testing.assert_allclose(yuv[..., 1], 0.492111 * (rgb[..., 2] - luma), atol=1e-5)
    np.testing.assert_allclose(yuv[..., 2], 0.877283 * (rgb[..., 0] - luma), atol=1e-5)
    grey = tf.image.rgb_to_yuv(np.full((2, 2, 3), 0.5, np.float32))
    np.testing.assert_allclose(grey, [[[0.5, 0.0, 0.0]] * 2] * 2, atol=1e-6)
    assert grey.dtype == np.float32
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Lambda(tf.image.rgb_to_yuv)(inputs))
    np.testing.assert_allclose(model.predict(rgb[None].astype("float32"), verbose=0)[0], yuv,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(2, 3), (4, 5), (10, 12)])
def test_resize_area_averages_the_covered_pixels(size):
    """`method="area"` (TensorFlow's): each output pixel is the mean of the input it covers,
    weighted by overlap. Reference: repeat every pixel by the output size (nearest), then
    average blocks of the input size, which integrates exactly over the covered area."""
    images = np.random.default_rng(1).normal(size=(2, 4, 6, 3)).astype("float32")
    h, w = size
    fine = images.repeat(h, axis=1).repeat(w, axis=2)  # (2, 4h, 6w, 3)
    expected = fine.reshape(2, h, 4, w, 6, 3).mean(axis=(2, 4))
    got = tf.image.resize(images, size, method="area")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.image.resize(images, size, interpolation="area"),
                               expected, rtol=1e-5, atol=1e-6)


def test_convert_image_dtype_rescales_between_ranges_as_tensorflow():
    # integer -> float: 0..MAX onto 0..1 (the keras.io Reptile example's uint8 Omniglot)
    np.testing.assert_allclose(tf.image.convert_image_dtype(IMAGE, tf.float32), IMAGE / 255.0,
                               rtol=1e-6)
    assert tf.image.convert_image_dtype(IMAGE, tf.float32).dtype == np.float32
    # float -> integer: times MAX + 0.5, truncated; saturate clips first
    values = np.float32([0.0, 0.25, 0.5, 0.999, 1.0])
    np.testing.assert_array_equal(tf.image.convert_image_dtype(values, "uint8"),
                                  (values * 255.5).astype(np.uint8))
    np.testing.assert_array_equal(
        tf.image.convert_image_dtype(np.float32([-0.5, 1.5]), "uint8", saturate=True), [0, 255])
    # integer -> integer: by the power of two between the ranges; float -> float: a cast
    np.testing.assert_array_equal(tf.image.convert_image_dtype(np.uint16([0, 511, 65535]),
                                                               "uint8"), [0, 1, 255])
    np.testing.assert_array_equal(tf.image.convert_image_dtype(np.uint8([1, 255]), "uint16"),
                                  [256, 65280])
    assert tf.image.convert_image_dtype(values, "float64").dtype == np.float64
    with pytest.raises(ValueError, match="integer or floating dtype"):
        tf.image.convert_image_dtype(np.bool_([True]), "float32")


def test_rgb_to_grayscale_is_luma_in_the_images_dtype():
    weights = np.float32([0.2989, 0.5870, 0.1140])
    luma = (IMAGE / np.float32(255.0)).astype(np.float32) @ weights
    gray = tf.image.rgb_to_grayscale(IMAGE)
    assert gray.shape == (5, 6, 1) and gray.dtype == np.uint8  # back to uint8, 0..255
    np.testing.assert_array_equal(gray[..., 0], (luma * np.float32(255.5)).astype(np.uint8))
    floats = np.stack([IMAGE, IMAGE]) / np.float32(255.0)
    np.testing.assert_allclose(tf.image.rgb_to_grayscale(floats)[..., 0],
                               np.stack([luma, luma]), rtol=1e-5)
    # traced inside a model, as the example's Dataset.map runs it per image
    inputs = keras.Input((5, 6, 3), dtype="uint8")
    model = keras.Model(inputs, tf.image.rgb_to_grayscale(
        tf.image.convert_image_dtype(inputs, tf.float32)))
    np.testing.assert_allclose(model.predict(IMAGE[None], verbose=0)[0, ..., 0], luma,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [(16, 16), (7, 30), (40, 9)])
def test_resize_with_antialias_equals_real_keras(size):
    """`antialias=True` (the keras.io DDIM example's `tf.image.resize(..., antialias=True)`):
    downsampling averages every covered pixel with a widened triangle kernel; upsampling is
    plain bilinear. Compared with Keras' own resize (JAX backend)."""
    real_keras = pytest.importorskip("keras")
    images = np.random.default_rng(2).uniform(0, 255, (2, 32, 24, 3)).astype("float32")
    want = np.asarray(real_keras.ops.image.resize(images, size, antialias=True))
    np.testing.assert_allclose(keras.ops.image.resize(images, size, antialias=True), want,
                               rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(tf.image.resize(images, size, antialias=True), want,
                               rtol=1e-5, atol=1e-3)
    layer = keras.layers.Resizing(*size, antialias=True)
    np.testing.assert_allclose(layer(images), want, rtol=1e-5, atol=1e-3)
    assert keras.layers.Resizing.from_config(layer.get_config()).antialias


def test_tf_image_results_are_eager_tensors():
    # TensorFlow code reads eager results with `.numpy()` (the keras.io sample-size example:
    # `tf.image.resize(img, image_size).numpy()`); traced calls still give graph values.
    resized = tf.image.resize(IMAGE, (4, 3))
    assert resized.numpy().shape == (4, 3, 3) and resized.numpy().dtype == np.float32
    np.testing.assert_array_equal(tf.image.flip_left_right(IMAGE).numpy(), IMAGE[:, ::-1])

    @tf.function
    def flipped(x):
        return tf.image.flip_left_right(x)

    np.testing.assert_array_equal(flipped(IMAGE.astype("float32")), IMAGE[:, ::-1])


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_resize_of_an_open_size_equals_real_keras(interpolation):
    """learnable_resizer.py: `Resizing(150, 150)` on `Input(shape=[None, None, 3])`, traced
    once and run at several input sizes (smaller, larger, equal to the target), with a
    gradient through it."""
    real_keras = pytest.importorskip("keras")
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Resizing(5, 4, interpolation=interpolation)(inputs))
    rng = np.random.default_rng(3)
    for shape in ((2, 7, 9, 3), (1, 3, 2, 3), (1, 5, 4, 3)):
        x = rng.uniform(size=shape).astype("float32")
        want = np.asarray(real_keras.ops.image.resize(x, (5, 4), interpolation=interpolation))
        np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-6)
    traced = tf.function(lambda x: _resize_gradient(x, interpolation),
                         input_signature=[tf.TensorSpec((1, None, None, 1), "float32")])
    grad = traced(rng.uniform(size=(1, 6, 3, 1)).astype("float32"))
    weights = np.asarray(real_keras.ops.image.resize(np.eye(18).reshape(18, 6, 3, 1), (5, 4),
                                                     interpolation=interpolation))
    np.testing.assert_allclose(np.asarray(grad).reshape(-1), weights.sum(axis=(1, 2, 3)),
                               rtol=1e-5, atol=1e-6)


def _resize_gradient(x, interpolation):
    """d sum(resize(x)) / dx, with the height and width of `x` unknown while tracing."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = keras.ops.sum(keras.ops.image.resize(x, (5, 4), interpolation=interpolation))
    return tape.gradient(out, x)


def test_sample_distorted_bounding_box_then_slice():
    """fixres.py's training crop: a box drawn in the image (area within `area_range`, aspect
    ratio within its range), sliced out with `tf.slice` (-1: the whole channel axis), then
    `set_shape` on the eager result."""
    np.random.seed(1)
    image = np.random.default_rng(4).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    for _ in range(20):
        begin, size, box = tf.image.sample_distorted_bounding_box(
            tf.shape(image), tf.zeros([0, 0, 4], tf.float32), area_range=(0.1, 0.5),
            aspect_ratio_range=(0.5, 2.0), min_object_covered=0,
            use_image_if_no_bounding_boxes=True)
        (y, x, _), (h, w, _) = np.asarray(begin), np.asarray(size)
        assert np.asarray(size)[2] == -1 and y + h <= 30 and x + w <= 40
        assert 0.08 <= h * w / 1200 <= 0.55 and 0.4 <= w / h <= 2.5
        np.testing.assert_allclose(box, [[[y / 30, x / 40, (y + h) / 30, (x + w) / 40]]])
        crop = tf.slice(image, begin, size)
        np.testing.assert_array_equal(crop, image[y:y + h, x:x + w])
        crop.set_shape([None, None, 3])
    with pytest.raises(ValueError, match="not compatible"):
        crop.set_shape([None, None, 4])
    with pytest.raises(ValueError, match="use_image_if_no_bounding_boxes"):
        tf.image.sample_distorted_bounding_box(tf.shape(image), tf.zeros([0, 0, 4]))
    # a box to cover: every crop keeps at least half of it
    target = np.array([[[0.5, 0.5, 1.0, 1.0]]], np.float32)
    for seed in range(10):
        begin, size, _ = tf.image.sample_distorted_bounding_box(
            (30, 40, 3), target, seed=seed, min_object_covered=0.5)
        (y, x, _), (h, w, _) = np.asarray(begin), np.asarray(size)
        covered = max(0, min(30, y + h) - max(15, y)) * max(0, min(40, x + w) - max(20, x))
        assert covered >= 0.5 * 15 * 20


def test_convert_image_dtype_and_grayscale_traced():
    """vivit.py's `@tf.function` preprocess: `tf.image.convert_image_dtype(frames[...,
    tf.newaxis], tf.float32)` on a traced uint8 volume (its dtype was read through
    `np.asarray` of the traced tensor)."""
    @tf.function
    def preprocess(frames):
        scaled = tf.image.convert_image_dtype(frames[..., tf.newaxis], tf.float32)
        return scaled, tf.image.rgb_to_grayscale(tf.tile(scaled, [1, 1, 1, 3]))

    volume = np.random.default_rng(5).integers(0, 256, (4, 6, 5), dtype=np.uint8)
    scaled, gray = preprocess(volume)
    np.testing.assert_allclose(scaled, volume[..., None] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(gray, volume[..., None] / 255.0, rtol=1e-3, atol=1e-4)


def test_image_gradients_and_ssim_inside_a_traced_step():
    # keras.io depth_estimation: tf.image.image_gradients and tf.image.ssim in a train_step
    # (ssim read the traced image's dtype through np.asarray and failed)
    x = np.random.default_rng(0).random((2, 5, 6, 1)).astype("float32")
    y = np.random.default_rng(1).random((2, 5, 6, 1)).astype("float32")
    dy, dx = tf.image.image_gradients(x)
    want_dy, want_dx = np.zeros_like(x), np.zeros_like(x)
    want_dy[:, :-1] = x[:, 1:] - x[:, :-1]
    want_dx[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    np.testing.assert_allclose(dy, want_dy, atol=1e-6)
    np.testing.assert_allclose(dx, want_dx, atol=1e-6)
    traced = tf.function(lambda a, b: (tf.image.image_gradients(a)[1],
                                       tf.image.ssim(a, b, max_val=1.0, filter_size=3)))
    got_dx, got_ssim = traced(x, y)
    np.testing.assert_allclose(got_dx, want_dx, atol=1e-6)
    np.testing.assert_allclose(got_ssim, tf.image.ssim(x, y, max_val=1.0, filter_size=3),
                               rtol=1e-5)
    with pytest.raises(ValueError, match="must be 4-D"):
        tf.image.image_gradients(x[0])
