"""Image layers added for Keras 3.15 parity (kgraph/keras/layers/preprocessing/color.py):
deterministic ones equal real Keras 3 on JAX; random ones equal Keras' `transform_images`
given the same draws, and their draws are checked in the graph (ranges, probabilities,
seed reproducibility, identity at inference, training in `fit`)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from kgraph import keras

real_keras = pytest.importorskip("keras")
L = keras.layers
GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "layers_more_golden.npz"))
IMAGES = np.random.default_rng(0).uniform(0, 255, (3, 6, 5, 3)).astype("float32").round()
U = np.array([0.1, 0.55, 0.9], np.float32)  # per-image draws fed to both sides

# layer, kwargs, kgraph's draws, the same draws in Keras' transformation layout
COLOR_CASES = [
    ("Solarization", {"addition_factor": 0.3, "threshold_factor": (0.2, 0.8)},
     {"additions": U * 60, "thresholds": U[::-1] * 200},
     {"additions": (U * 60).reshape(-1, 1, 1, 1),
      "thresholds": (U[::-1] * 200).reshape(-1, 1, 1, 1)}),
    ("RandomInvert", {}, {"apply_inversion": U < 0.5}, {"apply_inversion": U < 0.5}),
    ("RandomPosterization", {"factor": (1, 8)}, {"shift_factor": np.float32([7, 4, 1])},
     {"shift_factor": np.uint8([7, 4, 1])}),
    ("RandomGrayscale", {"factor": 0.4}, {"should_apply": U < 0.5},
     (U < 0.5).reshape(-1, 1, 1, 1)),
    ("RandomColorDegeneration", {"factor": 0.7}, {"factor": U * 1.4 - 0.7},
     {"factor": (U * 1.4 - 0.7).reshape(-1, 1, 1, 1)}),
    ("RandomSaturation", {"factor": 0.5}, {"factor": U * 2}, {"factor": U * 2}),
    ("RandomHue", {"factor": 0.5, "value_range": (0, 255)}, {"factor": U - 0.5},
     {"factor": U - 0.5}),
    ("RandomSharpness", {"factor": 0.8}, {"factor": U * 0.8}, {"factor": U * 0.8}),
    ("RandomSharpness", {"factor": (0.2, 0.9), "data_format": "channels_first"},
     {"factor": U * 0.8}, {"factor": U * 0.8}),
]


def strip(config):
    return {k: v for k, v in config.items() if k not in ("name", "dtype")}


@pytest.mark.parametrize("name,kwargs,ours_draws,their_draws", COLOR_CASES,
                         ids=[c[0] + str(i) for i, c in enumerate(COLOR_CASES)])
def test_transform_equals_real_keras_given_the_draws(name, kwargs, ours_draws, their_draws):
    ours, theirs = getattr(L, name)(**kwargs), getattr(real_keras.layers, name)(**kwargs)
    images = IMAGES.transpose(0, 3, 1, 2) if kwargs.get("data_format") else IMAGES
    want = np.asarray(theirs.transform_images(images, their_draws, training=True))
    got = np.asarray(ours.transform(images, ours_draws))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-4)
    assert strip(ours.get_config()) == strip(theirs.get_config())
    assert strip(type(ours).from_config(theirs.get_config()).get_config()) == \
        strip(ours.get_config())


@pytest.mark.parametrize("case,cls,source", [
    ("equalization0", L.Equalization, "images"), ("equalization1", L.Equalization, "images01"),
    ("auto_contrast0", L.AutoContrast, "images01")])
def test_deterministic_layers_equal_real_keras(case, cls, source):
    """Recorded from Keras 3.15 (tests/data/make_layers_more_golden.py)."""
    config = json.loads(str(GOLDEN[case + "_config"]))
    layer = cls.from_config(config)
    source = GOLDEN["input_" + source]
    np.testing.assert_allclose(layer(source, training=True), GOLDEN[case], rtol=1e-5,
                               atol=1e-5)
    assert strip(layer.get_config()) == strip(config)


def test_auto_contrast_live_and_constant_channel():
    x = IMAGES.copy()
    x[1, :, :, 2] = 7.0  # a constant channel stays as it is (Keras: NaN -> the original)
    ours, theirs = L.AutoContrast(), real_keras.layers.AutoContrast()
    want = np.asarray(theirs(x))
    np.testing.assert_allclose(ours(x), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ours(x, training=False), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ours(x[0]), want[0], rtol=1e-5, atol=1e-4)  # one image
    model = keras.Sequential([keras.Input((6, 5, 3)), L.AutoContrast()])
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-5, atol=1e-4)


def test_equalization_small_bins_live():
    ours, theirs = L.Equalization(bins=8), real_keras.layers.Equalization(bins=8)
    np.testing.assert_allclose(ours(IMAGES), np.asarray(theirs(IMAGES, training=True)),
                               rtol=1e-5)
    np.testing.assert_array_equal(ours(IMAGES, training=False), IMAGES)


RANDOM = [(L.Solarization, {"addition_factor": 0.2, "threshold_factor": 0.5}),
          (L.RandomInvert, {}), (L.RandomPosterization, {"factor": (2, 6)}),
          (L.RandomGrayscale, {"factor": 0.5}), (L.RandomColorDegeneration, {"factor": 0.5}),
          (L.RandomSaturation, {"factor": 0.5}), (L.RandomHue, {"factor": 0.5}),
          (L.RandomSharpness, {"factor": 0.9})]


@pytest.mark.parametrize("cls,kwargs", RANDOM, ids=[c.__name__ for c, _ in RANDOM])
def test_random_layers_train_only_seeded_and_in_range(cls, kwargs):
    x = np.random.default_rng(1).uniform(0, 255, (16, 5, 4, 3)).astype("float32")
    layer = cls(seed=7, **kwargs)
    np.testing.assert_array_equal(layer(x, training=False), x)
    keras.utils.set_random_seed(5)
    first = np.asarray(layer(x))  # a direct call augments
    assert first.shape == x.shape and not np.allclose(first, x)
    assert first.min() >= -1e-3 and first.max() <= 255 + 1e-3
    keras.utils.set_random_seed(5)  # same global seed and layer seed: the same draws
    np.testing.assert_array_equal(cls(seed=7, **kwargs)(x), first)
    keras.utils.set_random_seed(5)
    assert not np.array_equal(cls(seed=8, **kwargs)(x), first)
    inputs = keras.Input((5, 4, 3))
    model = keras.Model(inputs, L.Dense(1)(L.Flatten()(cls(seed=1, **kwargs)(inputs))))
    model.compile("sgd", "mse")
    dense = model.layers[-1]
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               x.reshape(16, -1) @ dense.kernel.numpy() + dense.bias.numpy(),
                               rtol=1e-4, atol=1e-2)
    model.fit(x / 255.0, np.zeros((16, 1), "float32"), epochs=1, verbose=0)


def test_random_draw_statistics():
    """Probabilities and ranges of the draws over many images (binomial 5-sigma bounds)."""
    n = 400
    x = np.random.default_rng(2).uniform(10, 245, (n, 2, 2, 3)).astype("float32")
    gray = np.asarray(L.RandomGrayscale(factor=0.3, seed=1)(x))
    share = np.mean(np.ptp(gray, axis=-1).max(axis=(1, 2)) < 1e-3)
    assert abs(share - 0.3) < 5 * np.sqrt(0.3 * 0.7 / n)
    inverted = np.asarray(L.RandomInvert(factor=(0.5, 0.5), seed=2)(x))
    share = np.mean(np.all(np.isclose(inverted, 255 - x), axis=(1, 2, 3)))
    assert abs(share - 0.5) < 5 * np.sqrt(0.25 / n)
    # posterization keeps b bits, b uniform in [2, 6): each image is a multiple of 2**(8-b)
    levels = np.asarray(L.RandomPosterization((2, 6), seed=3)(x))
    bits = [min(b for b in range(2, 6) if np.all(img % 2 ** (8 - b) == 0)) for img in levels]
    counts = np.bincount(bits, minlength=6)[2:]
    assert set(bits) <= {2, 3, 4, 5} and counts.min() > n / 4 - 5 * np.sqrt(n * 3 / 16)


def test_color_layer_errors():
    with pytest.raises(ValueError, match="factor=1.5"):
        L.RandomGrayscale(factor=1.5)
    with pytest.raises(ValueError, match=r"Received: factor=9"):
        L.RandomPosterization(9)
    with pytest.raises(ValueError, match="value_range=3"):
        L.AutoContrast(value_range=3)
    with pytest.raises(ValueError, match="input_number=2"):
        L.Solarization(addition_factor=2)
