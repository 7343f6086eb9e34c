"""The golden CNN trained by real Keras 3 (tests/golden/cnn.*, copied unedited from the
project's shared/golden; see its README):
Conv2D -> BatchNormalization -> ReLU -> MaxPooling2D -> Flatten -> Dense with the saved
weights must reproduce Keras' outputs in inference (moving statistics) and in training mode
(batch statistics) within 1e-5.

The BatchNormalization part is also checked on its own, with the convolution and the layers
after it written in numpy, so it runs before Conv2D/MaxPooling2D exist."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from kgraph import keras

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
TOL = 1e-5
# layer name in the model -> its group in the .weights.h5 (Keras names list items by class)
H5_GROUPS = {"conv": "conv2d", "bn": "batch_normalization", "relu": "re_lu",
             "pool": "max_pooling2d", "flatten": "flatten", "head": "dense"}


def golden(name):
    return np.load(os.path.join(GOLDEN, name))


def h5_weights(group):
    with h5py.File(os.path.join(GOLDEN, "cnn.weights.h5"), "r") as f:
        vars_ = f[f"layers/{group}/vars"]
        return vars_.attrs.get("name"), [vars_[str(i)][()] for i in range(len(vars_))]




# -- BatchNormalization alone, the rest in numpy -------------------------------------------------
def np_conv2d_valid(x, kernel, bias):
    n, h, w, _ = x.shape
    kh, kw, _, _ = kernel.shape
    out = np.zeros((n, h - kh + 1, w - kw + 1, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i:i + h - kh + 1, j:j + w - kw + 1, :].astype(np.float64)
            out += np.einsum("nhwc,co->nhwo", patch, kernel[i, j])
    return (out + bias).astype("float32")


def np_head(h, kernel, bias):
    """ReLU -> MaxPooling2D(2) -> Flatten -> Dense."""
    h = np.maximum(np.asarray(h, np.float64), 0)
    n, rows, cols, c = h.shape
    h = h[:, :rows // 2 * 2, :cols // 2 * 2].reshape(n, rows // 2, 2, cols // 2, 2, c)
    return h.max(axis=(2, 4)).reshape(n, -1) @ kernel + bias


def test_batch_normalization_reproduces_the_golden_cnn():
    name, (kernel, bias) = h5_weights("conv2d")
    assert name == "conv"
    _, bn_weights = h5_weights("batch_normalization")
    _, (dense_kernel, dense_bias) = h5_weights("dense")
    features = np_conv2d_valid(golden("cnn_x.npy"), kernel, bias)
    bn = keras.layers.BatchNormalization(name="bn")
    bn.build((None,) + features.shape[1:])
    bn.set_weights(bn_weights)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), golden("cnn_bn_moving_mean.npy"))
    np.testing.assert_array_equal(bn.moving_variance.numpy(),
                                  golden("cnn_bn_moving_variance.npy"))
    np.testing.assert_allclose(np_head(bn(features, training=False), dense_kernel, dense_bias),
                               golden("cnn_y.npy"), rtol=0, atol=TOL)
    np.testing.assert_allclose(np_head(bn(features, training=True), dense_kernel, dense_bias),
                               golden("cnn_y_training.npy"), rtol=0, atol=TOL)


# -- the whole model -------------------------------------------------------------------------
def build_cnn():
    L = keras.layers
    return keras.Sequential([
        keras.Input((10, 10, 2), name="image"), L.Conv2D(4, 3, name="conv"),
        L.BatchNormalization(name="bn"), L.ReLU(name="relu"), L.MaxPooling2D(name="pool"),
        L.Flatten(name="flatten"), L.Dense(3, name="head")], name="cnn")


def check_cnn(model):
    """Inference, moving statistics, then training mode (which also updates the statistics)."""
    x = golden("cnn_x.npy")
    np.testing.assert_allclose(model(x, training=False), golden("cnn_y.npy"), rtol=0, atol=TOL)
    np.testing.assert_allclose(model.predict(x, verbose=0), golden("cnn_y.npy"), rtol=0,
                               atol=TOL)
    bn = model.get_layer("bn")
    np.testing.assert_allclose(bn.moving_mean.numpy(), golden("cnn_bn_moving_mean.npy"),
                               rtol=0, atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance.numpy(), golden("cnn_bn_moving_variance.npy"),
                               rtol=0, atol=1e-7)
    np.testing.assert_allclose(model(x, training=True), golden("cnn_y_training.npy"), rtol=0,
                               atol=TOL)
    batch = model.get_layer("conv")(x)
    expected = 0.99 * golden("cnn_bn_moving_mean.npy") + 0.01 * np.mean(batch, axis=(0, 1, 2))
    np.testing.assert_allclose(bn.moving_mean.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_golden_cnn_from_weights_read_with_h5py():
    model = build_cnn()
    for layer in model.layers:
        name, weights = h5_weights(H5_GROUPS[layer.name])
        assert name == layer.name, f"{H5_GROUPS[layer.name]} holds layer {name!r}"
        assert len(weights) == len(layer.weights), layer.name
        layer.set_weights(weights)
    assert [v.name for v in model.get_layer("bn").weights] == [
        "gamma", "beta", "moving_mean", "moving_variance"]
    check_cnn(model)


def test_golden_cnn_from_keras_file():
    model = keras.models.load_model(os.path.join(GOLDEN, "cnn.keras"))
    assert [layer.name for layer in model.layers] == list(H5_GROUPS)
    check_cnn(model)


def test_golden_cnn_weights_file_loads_by_path():
    model = build_cnn()
    model.load_weights(os.path.join(GOLDEN, "cnn.weights.h5"))
    check_cnn(model)
