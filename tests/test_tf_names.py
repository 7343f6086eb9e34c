"""TensorFlow's top-level tensor functions under `import kgraph as tf` (kgraph/tf_names.py):
TensorFlow's names, argument names and defaults, checked against numpy, eagerly and traced."""
import numpy as np
import pytest

import kgraph as tf
from kgraph.tf_names import __all__ as NAMES

X = np.arange(12, dtype="float32").reshape(3, 4) - 5.0


CASES = {
    "concat": (lambda: tf.concat([X, X], 1), np.concatenate([X, X], 1)),
    "stack": (lambda: tf.stack([X, X]), np.stack([X, X])),
    "ones": (lambda: tf.ones((2, 1)), np.ones((2, 1), "float32")),
    "zeros": (lambda: tf.zeros((2,), "int64"), np.zeros(2, "int64")),
    "fill": (lambda: tf.fill([2, 3], 7), np.full((2, 3), 7, "int32")),  # TensorFlow's int32
    "ones_like": (lambda: tf.ones_like(X), np.ones_like(X)),
    "zeros_like": (lambda: tf.zeros_like(X), np.zeros_like(X)),
    "shape": (lambda: tuple(tf.shape(X)), (3, 4)),
    "constant": (lambda: tf.constant(2.0, shape=(2, 2)), np.full((2, 2), 2.0, "float32")),
    "convert_to_tensor": (lambda: tf.convert_to_tensor([1, 2], dtype="float32"),
                          np.float32([1, 2])),
    "cast": (lambda: tf.cast(X, "int64"), X.astype("int64")),
    "reshape": (lambda: tf.reshape(X, (4, 3)), X.reshape(4, 3)),
    "expand_dims": (lambda: tf.expand_dims(X, 0), X[None]),
    "squeeze": (lambda: tf.squeeze(X[None]), X),
    "transpose": (lambda: tf.transpose(X), X.T),
    "tile": (lambda: tf.tile(X, (2, 1)), np.tile(X, (2, 1))),
    "gather": (lambda: tf.gather(X, [2, 0]), X[[2, 0]]),
    "norm": (lambda: tf.norm(X, axis=1, keepdims=True), np.linalg.norm(X, axis=1, keepdims=True)),
    "matmul": (lambda: tf.matmul(X, X, transpose_b=True), X @ X.T),
    "reduce_sum": (lambda: tf.reduce_sum(X, axis=1, keepdims=True), X.sum(1, keepdims=True)),
    "reduce_mean": (lambda: tf.reduce_mean(X), X.mean()),
    "size": (lambda: tf.size(X), X.size),
    "gather_nd": (lambda: tf.gather_nd(X, np.array([[2, 1], [0, 3]])), X[[2, 0], [1, 3]]),
    "tensor_scatter_nd_add": (lambda: tf.tensor_scatter_nd_add(X, np.array([[1], [1]]), X[:2]),
                              X + np.array([[0] * 4, list(X[0] + X[1]), [0] * 4])),
    "cumprod": (lambda: tf.math.cumprod(X + 1, axis=1, exclusive=True)
                + tf.cumprod(X, reverse=True),
                np.concatenate([np.ones((3, 1)), np.cumprod(X + 1, 1)[:, :-1]], 1)
                + np.cumprod(X[::-1], 0)[::-1]),
    "meshgrid": (lambda: tf.meshgrid(np.arange(3.0), np.arange(2.0)),
                 np.meshgrid(np.arange(3.0), np.arange(2.0))),
    "broadcast_to": (lambda: tf.broadcast_to([1.0], tf.shape(X)), np.ones_like(X)),
    "reduce_any": (lambda: tf.reduce_any(X > 1, axis=1), (X > 1).any(1)),
    "reduce_all": (lambda: tf.reduce_all(X > -5), (X > -5).all()),
    "reduce_max": (lambda: tf.reduce_max(X, 0), X.max(0)),
    "reduce_min": (lambda: tf.reduce_min(X, 1), X.min(1)),
    "reduce_prod": (lambda: tf.reduce_prod(X[:, :2], 1), X[:, :2].prod(1)),
    "argmax": (lambda: tf.argmax(X), X.argmax(0)),  # TensorFlow's default axis is 0
    "argmin": (lambda: tf.argmin(X, 1), X.argmin(1)),
    "one_hot": (lambda: tf.one_hot([0, 2], 3, on_value=5.0, off_value=-1.0),
                np.float32([[5, -1, -1], [-1, -1, 5]])),
    "clip_by_value": (lambda: tf.clip_by_value(X, -1.0, 2.0), np.clip(X, -1, 2)),
    "range": (lambda: tf.range(2, 8, 3), np.arange(2, 8, 3)),
    "linspace": (lambda: tf.linspace(0.0, 0.1, 3), np.float32([0.0, 0.05, 0.1])),
    "where": (lambda: tf.where(X > 0, X, 0.0), np.where(X > 0, X, 0)),
    "abs": (lambda: tf.abs(X), np.abs(X)),
    "exp": (lambda: tf.exp(X / 10), np.exp(X / 10)),
    "floor": (lambda: tf.floor(X / 3), np.floor(X / 3)),
    "round": (lambda: tf.round(X / 2), np.round(X / 2)),  # halves to even
    "cond": (lambda: tf.cond(X[0, 0] < 0, lambda: X + 1, lambda: X - 1), X + 1),
    "log": (lambda: tf.log(X + 6), np.log(X + 6)),
    "sqrt": (lambda: tf.sqrt(X + 5), np.sqrt(X + 5)),
    "square": (lambda: tf.square(X), X * X),
    "sigmoid": (lambda: tf.sigmoid(X), 1 / (1 + np.exp(-X))),
    "tanh": (lambda: tf.tanh(X), np.tanh(X)),
    "maximum": (lambda: tf.maximum(X, 0.0), np.maximum(X, 0)),
    "minimum": (lambda: tf.minimum(X, 0.0), np.minimum(X, 0)),
    "identity": (lambda: tf.identity(X), X),
    "add": (lambda: tf.add(X, 1.0), X + 1),
    "subtract": (lambda: tf.subtract(X, 1.0), X - 1),
    "multiply": (lambda: tf.multiply(X, X), X * X),
    "divide": (lambda: tf.divide(np.int32([3, 4]), np.int32([2, 8])), np.float64([1.5, 0.5])),
    "less": (lambda: tf.less(X, 0.0), X < 0),
    "greater": (lambda: tf.greater(X, 0.0), X > 0),
    "equal": (lambda: tf.equal(X, 1.0), X == 1),
    "cumsum": (lambda: tf.cumsum(X, axis=1, exclusive=True, reverse=True),
               np.cumsum(X[:, ::-1], 1)[:, ::-1] - X),
    "einsum": (lambda: tf.einsum("ab,cb->ac", X, X), X @ X.T),
    "unstack": (lambda: tf.unstack(X, axis=1)[2], X[:, 2]),
    "repeat": (lambda: tf.repeat(X[tf.newaxis, :2], 2, axis=1), np.repeat(X[None, :2], 2, 1)),
    "split": (lambda: np.concatenate(tf.split(X, [1, -1, 1], axis=1)[::-1], 1),
              np.concatenate([X[:, 3:], X[:, 1:3], X[:, :1]], 1)),
    "cos": (lambda: tf.cos(X), np.cos(X)),
    "sin": (lambda: tf.sin(X), np.sin(X)),
    "acos": (lambda: tf.acos(X / 10), np.arccos(X / 10)),
    "eye": (lambda: tf.eye(2, 3), np.eye(2, 3, dtype="float32")),
    "stop_gradient": (lambda: tf.stop_gradient(X), X),
    "reverse": (lambda: tf.reverse(X, axis=[0, 1]) - tf.reverse(X, [0]), X[::-1, ::-1] - X[::-1]),
    "sign": (lambda: tf.sign(X) + tf.math.sign(X) * tf.math.round(X / 4),
             np.sign(X) * (1 + np.round(X / 4))),
    "pow": (lambda: tf.pow(X * X + 1, 1.25) - tf.math.pow(2.0, X), (X * X + 1) ** 1.25 - 2.0 ** X),
    "argsort": (lambda: tf.argsort(X, axis=1), np.argsort(X, axis=1, kind="stable")),
    "slice": (lambda: tf.slice(X, [1, 1], [-1, 2]), X[1:, 1:3]),
    "roll": (lambda: tf.roll(X, shift=[-1, 2], axis=[0, 1]), np.roll(X, [-1, 2], [0, 1])),
    "tensordot": (lambda: tf.tensordot(X, X, axes=(1, 1)), X @ X.T),
    "pad": (lambda: tf.pad(X, [[1, 1], [2, 2]], mode="REFLECT") + tf.pad(X, [[1, 1], [2, 2]]),
            np.pad(X, ((1, 1), (2, 2)), mode="reflect") + np.pad(X, ((1, 1), (2, 2)))),
}


def test_every_name_has_a_case():
    assert sorted(CASES) == sorted(NAMES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_eager_result_matches_numpy(name):
    make, want = CASES[name]
    np.testing.assert_allclose(np.asarray(make()), want, rtol=1e-6, atol=1e-6)


def test_inside_a_traced_function_with_an_open_batch_dim():
    @tf.function(input_signature=[tf.TensorSpec((None, 4), "float32")])
    def labels_for(images):
        n = tf.shape(images)[0]
        return tf.concat([tf.ones((n, 1)), tf.zeros((n, 1))], axis=0) + tf.reduce_sum(images)

    @tf.function(input_signature=[tf.TensorSpec((None, 2, 4), "float32")])
    def keep_per_example(x):  # the keras.io CCT example's stochastic depth
        shape = (tf.shape(x)[0],) + (1,) * (tf.shape(x).shape[0] - 1)
        return x * tf.floor(0.5 + tf.random.uniform(shape, 0, 1))

    kept = keep_per_example(np.ones((5, 2, 4), "float32"))
    assert kept.shape == (5, 2, 4) and (kept == kept[:, :1, :1]).all()
    assert tf.shape(X).shape == (2,) and tf.shape(X) == (3, 4)

    out = labels_for(X)
    np.testing.assert_allclose(out, np.concatenate([np.ones((3, 1)), np.zeros((3, 1))]) + X.sum(),
                               rtol=1e-6)
    assert labels_for(X[:1]).shape == (2, 1)


def tf_extract_patches_reference(images, size, stride, rate, padding):
    """TensorFlow's extract_patches in numpy: SAME pads (k_eff - 1) - ... with the odd element
    after, as its convolutions; each window flattened rows, cols, channels."""
    k = [(s - 1) * r + 1 for s, r in zip(size, rate)]
    spatial = images.shape[1:3]
    if padding == "SAME":
        out = [-(-n // s) for n, s in zip(spatial, stride)]
        total = [max((o - 1) * s + kk - n, 0) for o, s, kk, n in zip(out, stride, k, spatial)]
        images = np.pad(images, [(0, 0), (total[0] // 2, total[0] - total[0] // 2),
                                 (total[1] // 2, total[1] - total[1] // 2), (0, 0)])
    else:
        out = [(n - kk) // s + 1 for n, s, kk in zip(spatial, stride, k)]
    rows = []
    for i in range(out[0]):
        cols = []
        for j in range(out[1]):
            window = images[:, i * stride[0]:i * stride[0] + k[0]:rate[0],
                            j * stride[1]:j * stride[1] + k[1]:rate[1], :]
            cols.append(window.reshape(len(images), -1))
        rows.append(np.stack(cols, 1))
    return np.stack(rows, 1)


@pytest.mark.parametrize("size, stride, rate, padding", [
    ((3, 3), (1, 1), (1, 1), "SAME"), ((2, 3), (2, 2), (1, 1), "VALID"),
    ((3, 2), (2, 3), (1, 1), "SAME"), ((2, 2), (1, 1), (2, 1), "VALID")])
def test_image_extract_patches_matches_tensorflows_layout(size, stride, rate, padding):
    images = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype("float32")
    got = tf.image.extract_patches(images=images, sizes=[1, *size, 1], strides=[1, *stride, 1],
                                   rates=[1, *rate, 1], padding=padding)
    np.testing.assert_allclose(got, tf_extract_patches_reference(images, size, stride, rate,
                                                                 padding), rtol=1e-6)


def test_image_extract_patches_names_a_bad_window():
    with pytest.raises(ValueError, match=r"sizes must be \[1, rows, cols, 1\]"):
        tf.image.extract_patches(np.zeros((1, 4, 4, 1)), [2, 2], [1, 1, 1, 1], [1, 1, 1, 1],
                                 "VALID")


def test_math_top_k_and_dtypes():
    values, indices = tf.math.top_k(X, k=2)
    np.testing.assert_array_equal(values, np.sort(X, 1)[:, ::-1][:, :2])
    assert indices.dtype == np.int32 and (indices == 3 - np.arange(2)).all()
    np.testing.assert_array_equal(tf.math.cumsum(X, axis=0), np.cumsum(X, 0))
    assert tf.dtypes.float32 == tf.float32 == "float32" and tf.dtypes.int32 == "int32"


def test_eager_results_are_tensorflow_eager_tensors():
    # the keras.io VQ-VAE example: `tf.argmin(distances, axis=1)` ... `.numpy()`
    indices = tf.argmin(X, axis=1)
    np.testing.assert_array_equal(indices.numpy(), X.argmin(1))
    values, _ = tf.math.top_k(X, k=1)
    assert isinstance(values.numpy(), np.ndarray) and float(tf.reduce_sum(X)) == X.sum()
    assert tf.unstack(X)[0].numpy().shape == (4,) and tf.shape(X) == (3, 4)
    init = tf.random_uniform_initializer()(shape=(50, 50), dtype="float32")
    assert init.shape == (50, 50) and np.abs(init).max() <= 0.05  # TensorFlow's defaults


def test_nn_functions_take_tensorflows_arguments():
    # tf.nn.gelu is exact by default; tf.nn.softmax(axis=None) is the last axis
    from scipy.special import erf

    np.testing.assert_allclose(tf.nn.gelu(X), 0.5 * X * (1 + erf(X / np.sqrt(2))), rtol=1e-5,
                               atol=1e-6)
    e = np.exp(X - X.max(0))
    np.testing.assert_allclose(tf.nn.softmax(X, axis=0), e / e.sum(0), rtol=1e-6)
    e = np.exp(X - X.max(1, keepdims=True))
    np.testing.assert_allclose(tf.nn.softmax(X), e / e.sum(1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(tf.nn.log_softmax(X), np.log(e / e.sum(1, keepdims=True)),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tf.nn.relu(X), np.maximum(X, 0))
    np.testing.assert_allclose(tf.nn.relu6(X + 4), np.clip(X + 4, 0, 6))
    np.testing.assert_allclose(tf.nn.silu(X, beta=2.0), X / (1 + np.exp(-2 * X)), atol=1e-6)
    assert tf.nn.swish is tf.nn.silu and tf.nn.tanh(X).numpy().shape == (3, 4)
    np.testing.assert_allclose(tf.math.floor(X / 4), np.floor(X / 4))


def test_nn_l2_normalize_clamps_the_squared_norm_and_takes_keras_tensors():
    # TensorFlow's axis=None normalizes over every axis; epsilon bounds the sum of squares
    from kgraph import keras

    np.testing.assert_allclose(tf.nn.l2_normalize(X, axis=1),
                               X / np.linalg.norm(X, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(tf.nn.l2_normalize(X), X / np.linalg.norm(X), atol=1e-6)
    small = np.full((2,), 1e-4, "float32")
    np.testing.assert_allclose(tf.nn.l2_normalize(small, epsilon=1.0), small, rtol=1e-6)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, tf.nn.l2_normalize(keras.layers.Dense(3)(inputs), axis=-1))
    np.testing.assert_allclose(np.linalg.norm(model.predict(X, verbose=0), axis=1), 1.0,
                               rtol=1e-6)
    # TensorFlow also names it tf.math.l2_normalize (the supervised-contrastive example)
    assert tf.math.l2_normalize is tf.nn.l2_normalize


def test_nn_gelu_as_a_dense_activation_trains():
    from kgraph import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation=tf.nn.gelu),
                              keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(X, np.ones((3, 1)), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_image_resize_random_crop_and_flip_as_tensorflow():
    # the keras.io MobileViT example's tf.data preprocessing of one uint8 image
    image = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    resized = tf.image.resize(image, (10, 12))
    assert resized.dtype == np.float32 and resized.shape == (10, 12, 3)
    np.testing.assert_allclose(tf.image.resize(image, (5, 6)), image)
    offsets = set()
    for _ in range(40):
        crop = tf.image.random_crop(image, (4, 4, 3))
        found = [(i, j) for i in range(2) for j in range(3)
                 if (image[i:i + 4, j:j + 4] == crop).all()]
        assert crop.dtype == np.uint8 and found
        offsets.add(found[0])
    assert len(offsets) == 6  # every offset is drawn
    flips = {tf.image.random_flip_left_right(image)[:, ::-1].tobytes() == image.tobytes()
             for _ in range(20)}
    assert flips == {True, False}
    with pytest.raises(ValueError, match="one entry per axis"):
        tf.image.random_crop(image, (6, 4, 3))


def test_image_random_crop_and_flip_traced_draw_per_step():
    @tf.function(input_signature=[tf.TensorSpec((None, 5, 6, 1), "float32")])
    def augment(images):
        return tf.image.random_flip_left_right(tf.image.random_crop(images, (3, 3, 3, 1)))

    images = np.arange(90, dtype="float32").reshape(3, 5, 6, 1)
    seen = {augment(images).tobytes() for _ in range(6)}
    assert len(seen) > 1 and augment(images).shape == (3, 3, 3, 1)


def test_image_crop_and_pad_to_bounding_box():
    # the keras.io ShiftViT example's shift: crop a window, pad it back into zeros
    images = np.arange(2 * 4 * 5 * 3, dtype="float32").reshape(2, 4, 5, 3) + 1
    crop = tf.image.crop_to_bounding_box(images, 1, 2, 3, 2)
    np.testing.assert_array_equal(crop, images[:, 1:4, 2:4])
    np.testing.assert_array_equal(tf.image.crop_to_bounding_box(images[0], 0, 0, 4, 5),
                                  images[0])
    padded = tf.image.pad_to_bounding_box(crop, 1, 2, 4, 5)
    assert padded.shape == images.shape
    np.testing.assert_array_equal(padded[:, 1:4, 2:4], crop)
    assert padded.sum() == crop.sum()
    with pytest.raises(ValueError, match="must lie inside"):
        tf.image.crop_to_bounding_box(images, 2, 0, 3, 5)
    with pytest.raises(ValueError, match="must fit"):
        tf.image.pad_to_bounding_box(images, 1, 0, 4, 5)

    @tf.function(input_signature=[tf.TensorSpec((None, 4, 5, 3), "float32")])
    def shift_down(x):
        return tf.image.pad_to_bounding_box(tf.image.crop_to_bounding_box(x, 1, 0, 3, 5),
                                            1, 0, 4, 5)

    out = shift_down(images)
    np.testing.assert_array_equal(out[:, 1:], images[:, 1:])
    assert (out[:, 0] == 0).all()


def test_image_central_crop_takes_tensorflows_box():
    # the keras.io knowledge-distillation recipe's evaluation crop
    image = np.arange(48 * 48 * 3, dtype="float32").reshape(48, 48, 3)
    np.testing.assert_array_equal(tf.image.central_crop(image, central_fraction=0.875),
                                  image[3:45, 3:45])  # int((48 - 42) / 2) = 3 off each side
    batch = np.arange(2 * 5 * 7, dtype="float32").reshape(2, 5, 7, 1)
    # int((5 - 2.5) / 2) = 1 and int((7 - 3.5) / 2) = 1: TensorFlow truncates the offset
    np.testing.assert_array_equal(tf.image.central_crop(batch, 0.5), batch[:, 1:4, 1:6])
    np.testing.assert_array_equal(tf.image.central_crop(batch, 1.0), batch)
    with pytest.raises(ValueError, match=r"central_fraction=1\.5"):
        tf.image.central_crop(batch, 1.5)


def _same_pads(size, window, stride):
    total = max((-(-size // stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2  # TensorFlow's SAME: the extra pixel after


def _windows(x, window, stride, padding, fill):
    """numpy (n, h_out, w_out, kh, kw, c) windows of NHWC `x`, TensorFlow's padding rule."""
    (kh, kw), (sh, sw) = window, stride
    if padding == "SAME":
        pads = [(0, 0), _same_pads(x.shape[1], kh, sh), _same_pads(x.shape[2], kw, sw), (0, 0)]
        x = np.pad(x, pads, constant_values=fill)
    rows = range(0, x.shape[1] - kh + 1, sh)
    cols = range(0, x.shape[2] - kw + 1, sw)
    return np.stack([np.stack([x[:, i:i + kh, j:j + kw] for j in cols], 1) for i in rows], 1)


@pytest.mark.parametrize("strides, padding", [([1, 1, 1, 1], "SAME"), (2, "VALID"),
                                              ([2, 1], "SAME")])
def test_nn_conv2d_and_pools_take_tensorflows_window_arguments(strides, padding):
    """`tf.nn.conv2d` (HWIO filters) and `tf.nn.avg_pool2d`/`max_pool2d` (the keras.io
    Zero-DCE losses) against numpy windows, with TensorFlow's int / 2 / 4-entry strides and
    upper-case padding; NCHW gives the transposed result."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 7, 6, 3)).astype("float32")
    filters = rng.normal(size=(1, 3, 3, 4)).astype("float32")
    step = (strides, strides) if isinstance(strides, int) else tuple(strides[-3:-1]
                                                                      if len(strides) == 4
                                                                      else strides)
    got = tf.nn.conv2d(x, filters, strides=strides, padding=padding)
    windows = _windows(x, (1, 3), step, padding, 0.0)
    np.testing.assert_allclose(got, np.einsum("nhwijc,ijco->nhwo", windows, filters),
                               rtol=1e-4, atol=1e-5)
    avg = tf.nn.avg_pool2d(x, ksize=2, strides=strides, padding="VALID")
    np.testing.assert_allclose(avg, _windows(x, (2, 2), step, "VALID", 0).mean((3, 4)),
                               rtol=1e-5, atol=1e-6)
    top = tf.nn.max_pool2d(x, ksize=[1, 2, 2, 1], strides=strides, padding=padding)
    np.testing.assert_allclose(top, _windows(x, (2, 2), step, padding, -np.inf).max((3, 4)))
    first = tf.nn.conv2d(x.transpose(0, 3, 1, 2), filters, strides=1, padding="SAME",
                         data_format="NCHW")
    np.testing.assert_allclose(first.transpose(0, 2, 3, 1),
                               tf.nn.conv2d(x, filters, strides=1, padding="SAME"),
                               rtol=1e-4, atol=1e-5)


def test_nn_conv2d_names_a_bad_argument():
    x, filters = np.zeros((1, 4, 4, 1), "float32"), np.zeros((3, 3, 1, 1), "float32")
    with pytest.raises(ValueError, match=r"padding=\[\[0, 0\]"):
        tf.nn.conv2d(x, filters, 1, padding=[[0, 0], [1, 1], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"strides=\[2, 1, 1, 1\]"):
        tf.nn.conv2d(x, filters, strides=[2, 1, 1, 1], padding="SAME")
    with pytest.raises(ValueError, match="data_format='NWC'"):
        tf.nn.avg_pool2d(x, 2, 2, "VALID", data_format="NWC")


def _np_segments(data, ids, n, reduce, empty):
    out = np.full((n,) + data.shape[1:], empty, data.dtype)
    for i in range(n):
        rows = data[np.asarray(ids) == i]
        if len(rows):
            out[i] = reduce(rows, axis=0)
    return out


def test_math_unsorted_segment_sum_mean_max_as_tensorflow():
    data = np.random.default_rng(0).normal(size=(7, 2, 3)).astype("float32")
    ids = [0, 2, 0, 3, -1, 2, 2]  # segment 1 and 4 empty, a negative id dropped
    lowest = np.finfo(np.float32).min
    np.testing.assert_allclose(tf.math.unsorted_segment_sum(data, ids, 5),
                               _np_segments(data, ids, 5, np.sum, 0.0), rtol=1e-6)
    np.testing.assert_allclose(tf.math.unsorted_segment_mean(data, ids, num_segments=5),
                               _np_segments(data, ids, 5, np.mean, 0.0), rtol=1e-6)
    np.testing.assert_array_equal(tf.math.unsorted_segment_max(data, ids, 5),
                                  _np_segments(data, ids, 5, np.max, lowest))
    # ids over two leading axes: those axes are the rows
    grid = np.array([[0, 1], [1, 1], [2, 0], [0, 0], [1, 2], [2, 2], [0, 1]])
    np.testing.assert_allclose(tf.math.unsorted_segment_mean(data, grid, 3),
                               _np_segments(data.reshape(14, 3), grid.ravel(), 3, np.mean, 0.0),
                               rtol=1e-6)
    with pytest.raises(TypeError, match="num_segments must be a Python int"):
        tf.math.unsorted_segment_sum(data, ids, np.float32(5.0))


def test_math_unsorted_segment_mean_traced_over_neighbours_with_an_unknown_batch():
    # the traffic example's graph convolution: nodes first, the unknown batch on axis 1;
    # neighbour rows gathered by edge and averaged per node
    from kgraph import keras

    nodes, neighbours = [0, 0, 1, 2, 2, 2], [1, 2, 0, 0, 1, 3]
    inputs = keras.Input((4, 3))  # (batch, nodes, features)
    by_node = tf.transpose(inputs, [1, 0, 2])
    mean = tf.math.unsorted_segment_mean(tf.gather(by_node, neighbours), nodes, num_segments=4)
    model = keras.Model(inputs, tf.transpose(mean, [1, 0, 2]))
    x = np.random.default_rng(1).normal(size=(5, 4, 3)).astype("float32")
    expected = _np_segments(x.transpose(1, 0, 2)[neighbours], nodes, 4, np.mean, 0.0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected.transpose(1, 0, 2),
                               rtol=1e-5, atol=1e-6)


def test_tensor_type_matches_eager_functional_and_traced_tensors():
    from kgraph import keras

    seen = []

    class Probe(keras.layers.Layer):
        def call(self, features: tf.Tensor):  # an annotation, as TensorFlow code writes it
            seen.append(isinstance(features, tf.Tensor))
            return features

    assert isinstance(tf.ones((2,)), tf.Tensor) and isinstance(keras.Input((2,)), tf.Tensor)
    assert not isinstance(np.ones(2), tf.Tensor) and not isinstance(tf.Variable(1.0), tf.Tensor)
    inputs = keras.Input((3,))
    model = keras.Model(inputs, Probe()(inputs))
    model.predict(X[:, :3], verbose=0)
    assert seen and all(seen)  # the functional call and the traced predict step


def test_cast_to_string_returns_text_unchanged_and_refuses_numbers():
    # TensorFlow: casting a string tensor to "string" is the tensor itself (the GRN/VSN
    # example's tf.data map does it); Cast has no numeric -> string kernel.
    text = np.array([b" Yes", b" No"])
    np.testing.assert_array_equal(np.asarray(tf.cast(text, "string")), text)
    words = np.array(["a", "bc"])
    np.testing.assert_array_equal(tf.cast(words, "string"), words)
    with pytest.raises(TypeError, match="only text casts to 'string'"):
        tf.cast(np.float32([1.5]), "string")


def test_fill_takes_one_size_and_a_traced_batch():
    # The keras.io DDPM example's `tf.fill(num_images, t)`; inside a traced step the size
    # may be the batch dim.
    np.testing.assert_array_equal(tf.fill(3, 2.5), np.full(3, 2.5, "float32"))
    assert np.asarray(tf.fill(3, 2.5)).dtype == np.float32

    @tf.function
    def per_example(x):
        return tf.fill([tf.shape(x)[0]], 4)

    np.testing.assert_array_equal(per_example(np.zeros((5, 2), "float32")), np.full(5, 4))


def test_acos_and_eye_as_tensorflow():
    # the keras.io DDIM example: tf.acos of the signal rates, tf.eye of a traced batch size
    np.testing.assert_allclose(tf.acos(np.float32([0.95, 0.02])), np.arccos([0.95, 0.02]),
                               rtol=1e-6)
    np.testing.assert_array_equal(tf.eye(3), np.eye(3, dtype="float32"))
    np.testing.assert_array_equal(tf.eye(2, 3, dtype="int32"), np.eye(2, 3, dtype="int32"))
    assert tf.eye(2, batch_shape=[4]).shape == (4, 2, 2)

    @tf.function(input_signature=[tf.TensorSpec((None, 3), "float32")])
    def masked_sum(features):
        kernel = features @ tf.transpose(features)
        return tf.reduce_sum(kernel * (1.0 - tf.eye(tf.shape(features)[0])))

    x = np.random.default_rng(4).normal(size=(5, 3)).astype("float32")
    kernel = x @ x.T
    np.testing.assert_allclose(masked_sum(x), kernel.sum() - np.trace(kernel), rtol=1e-5)


def test_variable_arithmetic_gives_eager_tensors():
    # tf.Variable operators return tensors with .numpy() (the keras.io sample-size example's
    # `(a * x**b).numpy()` with x a Python list); inside a tape they stay differentiable.
    a, b = tf.Variable(2.0), tf.Variable(0.5)
    x = [1.0, 4.0, 9.0]
    np.testing.assert_allclose((a * x**b).numpy(), [2.0, 4.0, 6.0])
    assert (-a).numpy() == -2.0 and (a - 1.0).numpy() == 1.0
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(a * x**b)
    grad_a, grad_b = tape.gradient(y, [a, b])
    np.testing.assert_allclose([float(grad_a), float(grad_b)],
                               [6.0, sum(2.0 * np.sqrt(v) * np.log(v) for v in x)], rtol=1e-5)


def test_tf_linalg_names():
    # semantic_image_clustering.py: tf.linalg.matmul(a, b, transpose_b=True), tf.linalg.einsum
    a = np.random.default_rng(5).normal(size=(3, 4)).astype("float32")
    np.testing.assert_allclose(tf.linalg.matmul(a, a, transpose_b=True), a @ a.T, rtol=1e-5)
    np.testing.assert_allclose(tf.linalg.einsum("ij,kj->ik", a, a), a @ a.T, rtol=1e-5)
    np.testing.assert_array_equal(tf.linalg.eye(2, batch_shape=[3]), np.tile(np.eye(2), (3, 1, 1)))


def test_argsort_and_gather_with_batch_dims():
    # masked_image_modeling.py: tf.argsort of random draws, tf.gather(axis=1, batch_dims=1)
    values = np.array([[3.0, 1.0, 2.0, 1.0], [0.0, 5.0, 4.0, 9.0]], "float32")
    np.testing.assert_array_equal(tf.argsort(values), np.argsort(values, kind="stable"))
    np.testing.assert_array_equal(tf.argsort(values, axis=0, direction="DESCENDING"),
                                  np.argsort(-values, axis=0, kind="stable"))
    assert tf.argsort(values).dtype == np.int32
    params = np.random.default_rng(6).normal(size=(3, 5, 2)).astype("float32")
    indices = np.array([[4, 0], [1, 1], [2, 3]], "int32")
    expected = np.take_along_axis(params, indices[:, :, None], axis=1)
    np.testing.assert_allclose(tf.gather(params, indices, axis=1, batch_dims=1), expected)
    traced = tf.function(lambda p, i: tf.gather(p, i, axis=1, batch_dims=1),
                         input_signature=[tf.TensorSpec((None, 5, 2), "float32"),
                                          tf.TensorSpec((None, 2), "int32")])
    for n in (1, 3):
        np.testing.assert_allclose(np.asarray(traced(params[:n], indices[:n])), expected[:n])
    with pytest.raises(ValueError, match="direction='UP'"):
        tf.argsort(values, direction="UP")
    with pytest.raises(NotImplementedError, match="axis=2"):
        tf.gather(params, indices, axis=2, batch_dims=1)


def test_image_resize_method_names_tensorflows_methods():
    # the keras.io GAN-ADA example: tf.image.resize(..., method=tf.image.ResizeMethod.AREA)
    image = np.arange(16, dtype="float32").reshape(4, 4, 1)
    np.testing.assert_allclose(tf.image.resize(image, (2, 2), method=tf.image.ResizeMethod.AREA),
                               image.reshape(2, 2, 2, 2, 1).mean(axis=(1, 3)))
    assert tf.image.ResizeMethod.NEAREST_NEIGHBOR == "nearest"
    assert tf.image.ResizeMethod.BILINEAR == "bilinear"


def test_swin_transformer_tensorflow_names():
    # swin_transformers.py: x.get_shape().as_list() of traced and eager tensors,
    # tf.initializers.Zeros(), tf.math.divide, an int tf.Variable kept int
    seen = {}

    @tf.function(input_signature=[tf.TensorSpec((None, 4, 3), "float32")])
    def shapes(x):
        seen["traced"] = x.get_shape().as_list()
        return tf.math.divide(x, 2.0) * tf.math.multiply(1.0, 2.0)

    np.testing.assert_allclose(shapes(np.ones((2, 4, 3), "float32")), np.ones((2, 4, 3)))
    assert seen["traced"] == [None, 4, 3]
    eager = tf.convert_to_tensor(np.zeros((2, 5)))
    assert eager.get_shape().as_list() == [2, 5] and eager.get_shape()[0] == 2
    assert tf.TensorShape([None, 3]).as_list() == [None, 3]
    assert isinstance(tf.initializers.Zeros(), tf.keras.initializers.Zeros)
    index = tf.Variable(initial_value=tf.convert_to_tensor(np.arange(4)), trainable=False)
    assert index.dtype == "int64" and tf.Variable(np.ones(2, bool)).dtype == "bool"
    assert tf.Variable([1.5, 2.0]).dtype == "float32" and tf.Variable(np.ones(2)).dtype == "float32"


def test_linalg_set_diag_norm_and_reduce_prod_of_a_shape_tuple():
    # wgan-graphs.py: Dense(tf.math.reduce_prod(adjacency_shape)), tf.norm(grads, axis=1),
    # tf.linalg.set_diag(adjacency, tf.zeros(tf.shape(adjacency)[:-1]))
    assert int(tf.math.reduce_prod((5, 9, 9))) == 405 and tf.reduce_prod((5, 9, 9)).dtype == "int32"
    np.testing.assert_allclose(tf.reduce_prod([2.0, 3.0]), 6.0)
    from kgraph import keras

    assert keras.layers.Dense(tf.math.reduce_prod((2, 3))).units == 6  # an eager int scalar
    assert float(tf.norm(X)) == pytest.approx(np.linalg.norm(X))
    for shape in [(2, 3, 3), (2, 3, 4), (2, 4, 3)]:
        a = np.random.default_rng(0).normal(size=shape).astype("float32")
        d = np.arange(2 * min(shape[1:]), dtype="float32").reshape(2, -1)
        want = a.copy()
        for i in range(min(shape[1:])):
            want[:, i, i] = d[:, i]
        np.testing.assert_allclose(tf.linalg.set_diag(a, d).numpy(), want)
        traced = tf.function(lambda a, d: tf.linalg.set_diag(a, d))
        np.testing.assert_allclose(traced(a, d), want)
    with pytest.raises(NotImplementedError, match="k=1"):
        tf.linalg.set_diag(a, d, k=1)


def test_math_comparisons_and_logic():
    # image_captioning.py: tf.math.not_equal(seq, 0), tf.math.logical_and(mask, accuracy)
    a, b = np.array([0, 1, 2]), np.array([True, False, True])
    np.testing.assert_array_equal(tf.math.not_equal(a, 0), [False, True, True])
    np.testing.assert_array_equal(tf.math.logical_and(b, a > 0), [False, False, True])
    np.testing.assert_array_equal(tf.math.logical_or(b, a > 0), [True, True, True])
    np.testing.assert_array_equal(tf.math.logical_not(b).numpy(), [False, True, False])
    np.testing.assert_array_equal(tf.math.greater_equal(a, 1), [False, True, True])
    np.testing.assert_array_equal(tf.math.less_equal(a, 1), [True, True, False])
    traced = tf.function(lambda s: tf.math.logical_and(tf.math.not_equal(s, 0), s < 2))
    np.testing.assert_array_equal(traced(a), [False, True, False])


def test_tensorflow_era_names_of_the_researchers_guide():
    # intro_to_keras_for_researchers.py: tf.zeros_initializer, tf.nn.dropout,
    # tf.keras.backend.random_normal, metric.reset_states()
    from kgraph import keras

    np.testing.assert_array_equal(tf.zeros_initializer()(shape=(2,), dtype="float32"), [0, 0])
    np.testing.assert_array_equal(tf.ones_initializer()(shape=(2,), dtype="float32"), [1, 1])
    dropped = np.asarray(tf.nn.dropout(np.ones((200, 5), "float32"), rate=0.5))
    assert set(np.unique(dropped)) == {0.0, 2.0} and 0.3 < (dropped == 0).mean() < 0.7
    assert np.asarray(keras.backend.random_normal(shape=(3, 2), mean=5.0)).shape == (3, 2)
    metric = keras.metrics.Mean()
    metric.update_state([1.0, 3.0])
    metric.reset_states()
    assert float(metric.result()) == 0.0


def test_math_squared_difference():
    # keras_tuner/getting_started.py's custom metric: tf.math.squared_difference(y_pred, y_true)
    np.testing.assert_allclose(tf.math.squared_difference(X, 1.0), (X - 1.0) ** 2)
    traced = tf.function(lambda a, b: tf.math.squared_difference(a, b))
    np.testing.assert_allclose(traced(X, X[::-1]), (X - X[::-1]) ** 2)


def test_dtypes_cast():
    # keras_tuner/custom_tuner.py: tf.dtypes.cast(images, "float32") / 255.0
    out = tf.dtypes.cast(np.array([[1, 2]], "uint8"), "float32")
    assert out.dtype == "float32" and np.asarray(out).tolist() == [[1.0, 2.0]]


def test_gather_nd_with_an_open_batch_and_tf_keras_backend_functions():
    # keras.io mnist_moe: tf.gather_nd(outputs, stack([batch_ids, top_k_ids], 2)) in a
    # traced step; K.sum/K.log/K.mean/K.square/K.softmax/K.relu of tf.keras 2's backend
    from kgraph.keras import backend as K

    outputs = np.random.default_rng(0).normal(size=(5, 4, 3)).astype("float32")
    top = np.array([[3, 1], [0, 2], [1, 1], [2, 0], [3, 3]])

    def gathered(values, top_k):
        batch = tf.tile(tf.expand_dims(tf.range(tf.shape(values)[0]), 1), [1, 2])
        return tf.gather_nd(values, tf.stack([batch, top_k], axis=2))

    want = outputs[np.arange(5)[:, None], top]
    np.testing.assert_allclose(gathered(outputs, top), want)
    np.testing.assert_allclose(tf.function(gathered)(outputs, top), want)
    with pytest.raises(NotImplementedError, match="batch_dims=1"):
        tf.gather_nd(outputs, top[:, :1], batch_dims=1)
    x = np.array([[-1.0, 2.0], [0.5, -3.0]], "float32")
    np.testing.assert_allclose(K.sum(x, axis=1), x.sum(1))
    np.testing.assert_allclose(K.mean(K.square(x)), (x ** 2).mean())
    np.testing.assert_allclose(K.log(np.abs(x)), np.log(np.abs(x)), rtol=1e-6)
    np.testing.assert_allclose(K.softmax(x), np.exp(x) / np.exp(x).sum(1, keepdims=True),
                               rtol=1e-6)
    np.testing.assert_allclose(K.relu(x, alpha=0.1, max_value=1.0),
                               np.minimum(np.where(x > 0, x, 0.1 * x), 1.0), rtol=1e-6)


def test_where_with_only_a_condition_gives_tensorflows_coordinates():
    """tf.where(cond) is one int64 (count, rank) tensor of the True entries' coordinates
    (keras.ops.where(cond) gives a tuple of index arrays, as numpy)."""
    cond = np.array([[True, False, True], [False, True, False]])
    got = tf.where(cond)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, [[0, 0], [0, 2], [1, 1]])
    assert tf.where(np.zeros(4, bool)).shape == (0, 1)
    np.testing.assert_array_equal(tf.where(cond, 1.0, 0.0), cond.astype("float32"))
