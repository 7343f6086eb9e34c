"""Layers added for Keras 3.15 parity: adaptive pooling, SpectralNormalization,
ReversibleEmbedding, Pipeline, MelSpectrogram. Each is compared with real Keras 3 on JAX
(outputs, configs, weight names and order, `.keras` files both ways) where it is installed."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from harness import run_layer_test
from kgraph import keras

real_keras = pytest.importorskip("keras")
L = keras.layers


def theirs_of(layer, config=None):
    """The real-Keras layer of the same class and config."""
    return getattr(real_keras.layers, type(layer).__name__).from_config(
        config or layer.get_config())


def check_file_both_ways(layer, x, tmp_path, atol=1e-5):
    """A `.keras` file of Input -> layer written by kgraph reloads in kgraph and in real Keras
    with the same predictions."""
    model = keras.Sequential([keras.Input(x.shape[1:]), layer])
    want = model.predict(x, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path).predict(x, verbose=0), want,
                               rtol=1e-5, atol=atol)
    theirs = real_keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(theirs.predict(x, verbose=0)), want, rtol=1e-5,
                               atol=atol)


# -- adaptive pooling --------------------------------------------------------------------------
ADAPTIVE = [("AdaptiveAveragePooling1D", 4, (2, 10, 3), "channels_last"),
            ("AdaptiveMaxPooling1D", 3, (2, 7, 2), "channels_first"),
            ("AdaptiveAveragePooling2D", (3, 2), (2, 7, 5, 3), "channels_last"),
            ("AdaptiveMaxPooling2D", 3, (2, 2, 8, 7), "channels_first"),
            ("AdaptiveAveragePooling3D", (2, 3, 2), (1, 5, 6, 4, 2), "channels_last"),
            ("AdaptiveMaxPooling3D", 2, (1, 2, 5, 3, 4), "channels_first")]


@pytest.mark.parametrize("name,size,shape,data_format", ADAPTIVE)
def test_adaptive_pooling_equals_real_keras(name, size, shape, data_format):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    ours = getattr(L, name)(size, data_format=data_format)
    theirs = getattr(real_keras.layers, name)(size, data_format=data_format)
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-5, atol=1e-6)
    config = {k: v for k, v in ours.get_config().items() if k not in ("name", "dtype")}
    want = {k: v for k, v in theirs.get_config().items() if k not in ("name", "dtype")}
    assert config == want
    assert ours.compute_output_shape((None,) + shape[1:]) == \
        tuple(theirs.compute_output_shape((None,) + shape[1:]))


def test_adaptive_pooling_harness_and_files(tmp_path):
    run_layer_test(L.AdaptiveAveragePooling2D, {"output_size": (2, 3)}, (2, 6, 7, 3),
                   expected_output_shape=(2, 2, 3, 3))
    x = np.random.default_rng(1).normal(size=(2, 9, 3)).astype(np.float32)
    check_file_both_ways(L.AdaptiveMaxPooling1D(4), x, tmp_path)


def test_adaptive_pooling_trains_through_fit():
    model = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3),
                              L.AdaptiveAveragePooling2D(2), L.Flatten(), L.Dense(1)])
    model.compile(keras.optimizers.SGD(0.05), "mse")
    x = np.random.default_rng(2).normal(size=(8, 8, 8, 2)).astype(np.float32)
    y = np.ones((8, 1), np.float32)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before


@pytest.mark.parametrize("name,size,error", [
    ("AdaptiveAveragePooling1D", (2, 3), ValueError),
    ("AdaptiveMaxPooling2D", (2, 3, 4), TypeError),
    ("AdaptiveMaxPooling3D", "2", TypeError)])
def test_adaptive_pooling_bad_output_size(name, size, error):
    with pytest.raises(error, match="output_size|Received"):
        getattr(L, name)(size)
    with pytest.raises(error):
        getattr(real_keras.layers, name)(size)


# -- SpectralNormalization ---------------------------------------------------------------------
def spectral_pair(make, shape, power_iterations):
    """The same wrapped layer in kgraph and real Keras, built on `shape`, same weights."""
    ours = L.SpectralNormalization(make(keras), power_iterations=power_iterations)
    theirs = real_keras.layers.SpectralNormalization(make(real_keras),
                                                     power_iterations=power_iterations)
    ours.build(shape)
    theirs.build(shape)
    theirs.set_weights(ours.get_weights())
    return ours, theirs


SPECTRAL = [(lambda k: k.layers.Dense(3), (4, 5), "float32", 1),
            (lambda k: k.layers.Conv2D(2, 2), (2, 5, 5, 3), "float32", 2),
            (lambda k: k.layers.Embedding(7, 3), (2, 4), "int32", 1)]


@pytest.mark.parametrize("make,shape,dtype,iterations", SPECTRAL)
def test_spectral_normalization_equals_real_keras(make, shape, dtype, iterations):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 7, shape).astype(dtype) if dtype == "int32" else \
        rng.normal(size=shape).astype(dtype)
    ours, theirs = spectral_pair(make, shape, iterations)
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights]
    # a direct training call normalizes the kernel and writes it back, with the new vector_u
    # (one Keras call per case: each compiles for a second)
    np.testing.assert_allclose(ours(x, training=True), np.asarray(theirs(x, training=True)),
                               rtol=1e-5, atol=1e-6)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # inference: the wrapped layer on the stored kernel, cast to the input dtype as Keras
    # (an Embedding's floats become ints there)
    np.testing.assert_array_equal(ours(x), np.asarray(ours.layer(x)).astype(x.dtype))
    kernel = ours.get_weights()[0].reshape(-1, ours.get_weights()[0].shape[-1])
    # power iteration under-estimates sigma: the normalized kernel's norm is at least 1
    assert np.linalg.svd(kernel, compute_uv=False)[0] >= 1.0 - 1e-5


def test_spectral_normalization_fit_equals_real_keras():
    """In fit, Keras on JAX keeps the raw kernel and differentiates through kernel / sigma:
    two SGD steps give the same kernel, vector_u and bias."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(8, 5)).astype("f"), rng.normal(size=(8, 3)).astype("f")
    models = [k.Sequential([k.Input((5,)), k.layers.SpectralNormalization(
        k.layers.Dense(3), power_iterations=2)]) for k in (keras, real_keras)]
    models[1].set_weights(models[0].get_weights())
    for model, k in zip(models, (keras, real_keras)):
        model.compile(k.optimizers.SGD(0.1), "mse")
        model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(models[0].predict(x, verbose=0),
                               np.asarray(models[1].predict(x, verbose=0)), rtol=1e-5, atol=1e-6)


def test_spectral_normalization_config_file_and_errors(tmp_path):
    layer = L.SpectralNormalization(L.Dense(3), power_iterations=3)
    x = np.random.default_rng(2).normal(size=(2, 4)).astype("f")
    layer(x)
    config = layer.get_config()
    theirs = theirs_of(layer)
    assert theirs.power_iterations == 3 and type(theirs.layer).__name__ == "Dense"
    assert L.SpectralNormalization.from_config(config).get_config() == config
    check_file_both_ways(L.SpectralNormalization(L.Dense(3)), x, tmp_path)
    with pytest.raises(ValueError, match="power_iterations=0"):
        L.SpectralNormalization(L.Dense(3), power_iterations=0)
    with pytest.raises(ValueError, match="nor 'embeddings'"):
        L.SpectralNormalization(L.Flatten())(x)


def test_spectral_normalization_and_reversible_embedding_harness():
    # the harness's own gradient check assumes trainable weights lead get_weights(); Keras
    # puts vector_u between kernel and bias: the fit test above checks the gradients instead
    run_layer_test(L.SpectralNormalization, {"layer": L.Dense(3)}, (2, 4),
                   expected_output_shape=(2, 3), run_gradient_check=False)
    run_layer_test(L.ReversibleEmbedding, {"input_dim": 5, "output_dim": 3}, (2, 4),
                   expected_output_shape=(2, 4, 3), input_dtype="int32")


def test_spectral_normalization_zero_kernel_stays():
    layer = L.SpectralNormalization(L.Dense(2, kernel_initializer="zeros"))
    x = np.ones((2, 3), "f")
    out = layer(x, training=True)
    assert np.all(np.isfinite(out)) and not layer.get_weights()[0].any()


# -- ReversibleEmbedding -----------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"tie_weights": False, "logit_soft_cap": 2.0},
                                    {"reverse_dtype": "float16", "mask_zero": True}])
def test_reversible_embedding_equals_real_keras(kwargs):
    ids = np.random.default_rng(0).integers(0, 7, (2, 5))
    ours, theirs = L.ReversibleEmbedding(7, 4, name="tokens", **kwargs), \
        real_keras.layers.ReversibleEmbedding(7, 4, name="tokens", **kwargs)
    ours.build()
    theirs.build()
    assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
    theirs.set_weights(ours.get_weights())
    hidden = np.asarray(ours(ids))
    np.testing.assert_allclose(hidden, np.asarray(theirs(ids)), rtol=1e-5)
    logits = ours(hidden, reverse=True)
    want = np.asarray(theirs(hidden, reverse=True))
    assert np.asarray(logits).dtype == want.dtype
    np.testing.assert_allclose(logits, want, rtol=1e-5 if "reverse_dtype" not in kwargs else 1e-3,
                               atol=1e-6 if "reverse_dtype" not in kwargs else 1e-4)
    strip = lambda c: {k: v for k, v in c.items() if k != "name"}  # noqa: E731
    assert strip(ours.get_config()) == strip(theirs.get_config())


def reversible_model(k):
    """ids -> embedding (mask_zero) -> masked average and tied logits."""
    ids = k.Input((5,), dtype="int32")
    embedding = k.layers.ReversibleEmbedding(7, 4, mask_zero=True, name="tokens")
    hidden = embedding(ids)
    return k.Model(ids, [k.layers.GlobalAveragePooling1D()(hidden),
                         embedding(hidden, reverse=True)])


def test_reversible_embedding_mask_file_and_training(tmp_path):
    ids = np.random.default_rng(1).integers(1, 7, (3, 5))
    ids[0, 3:] = 0  # padding the masked average leaves out
    ours, theirs = reversible_model(keras), reversible_model(real_keras)
    theirs.set_weights(ours.get_weights())
    for a, b in zip(ours.predict(ids, verbose=0), theirs.predict(ids, verbose=0)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-7)
    path = str(tmp_path / "r.keras")
    ours.save(path)
    for a, b in zip(ours.predict(ids, verbose=0),
                    real_keras.models.load_model(path).predict(ids, verbose=0)):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-5, atol=1e-7)
    # tied weights: both uses of the one matrix train it
    model = keras.Model(ours.input, ours.outputs[1])
    model.compile(keras.optimizers.SGD(0.5), "mse")
    y = np.random.default_rng(2).normal(size=(3, 5, 7)).astype("f")
    before = model.evaluate(ids, y, verbose=0)
    model.fit(ids, y, epochs=3, batch_size=3, verbose=0)
    assert model.evaluate(ids, y, verbose=0) < before


# -- Pipeline ----------------------------------------------------------------------------------
def test_pipeline_applies_layers_config_and_file(tmp_path):
    x = np.random.default_rng(0).uniform(0, 255, (4, 6, 6, 3)).astype("f")
    layers = lambda k: [k.layers.Rescaling(1 / 255.0), k.layers.CenterCrop(4, 4)]  # noqa: E731
    ours, theirs = L.Pipeline(layers(keras)), real_keras.layers.Pipeline(layers(real_keras))
    np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-6)
    config = ours.get_config()
    assert set(config) == {"layers", "name"} and len(ours.layers) == 2
    strip = lambda c: [dict(l["config"], name=None) for l in c["layers"]]  # noqa: E731
    assert strip(config) == strip(theirs.get_config())
    clone = real_keras.layers.Pipeline.from_config(config)  # Keras reads kgraph's config
    np.testing.assert_allclose(np.asarray(clone(x)), ours(x), rtol=1e-6)
    assert strip(L.Pipeline.from_config(config).get_config()) == strip(config)
    assert ours.compute_output_shape((None, 6, 6, 3)) == (None, 4, 4, 3)
    check_file_both_ways(L.Pipeline(layers(keras)), x, tmp_path)
    with pytest.raises(ValueError, match="layers="):
        L.Pipeline.from_config({"name": "p"})


def test_pipeline_augments_in_training_only():
    x = np.random.default_rng(1).uniform(size=(8, 5, 5, 1)).astype("f")
    pipeline = L.Pipeline([L.RandomFlip("horizontal", seed=3), L.Rescaling(2.0)])
    flipped = np.asarray(pipeline(x))  # a direct call trains, as Keras' default
    assert all(np.allclose(f, 2 * x[i]) or np.allclose(f, 2 * x[i, :, ::-1])
               for i, f in enumerate(flipped))
    assert not np.allclose(flipped, 2 * x)
    np.testing.assert_allclose(pipeline(x, training=False), 2 * x)
    model = keras.Sequential([keras.Input((5, 5, 1)), pipeline])
    np.testing.assert_allclose(model.predict(x, verbose=0), 2 * x)


# -- MelSpectrogram ----------------------------------------------------------------------------
# real Keras' eager MelSpectrogram takes seconds to compile its stft: its outputs and configs
# are recorded in tests/data/layers_more_golden.npz (tests/data/make_layers_more_golden.py)
GOLDEN = np.load(os.path.join(os.path.dirname(__file__), "data", "layers_more_golden.npz"))


@pytest.mark.parametrize("case", ["mel0", "mel1", "mel2"])
def test_mel_spectrogram_equals_real_keras(case):
    config = json.loads(str(GOLDEN[case + "_config"]))
    ours = L.MelSpectrogram.from_config(config)
    assert ours.get_config() == config
    for source, key in (("audio", case), ("audio_one", case + "_one")):
        want = GOLDEN[key]
        got = ours(GOLDEN["input_" + source])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    assert ours.compute_output_shape(GOLDEN["input_audio"].shape) == GOLDEN[case].shape


def test_mel_spectrogram_in_a_model_file_and_errors(tmp_path):
    x = np.random.default_rng(1).normal(size=(2, 400)).astype("f")
    check_file_both_ways(L.MelSpectrogram(fft_length=64, sequence_stride=32, num_mel_bins=8),
                         x, tmp_path, atol=1e-4)
    with pytest.raises(ValueError, match="`sequence_length`=128"):
        L.MelSpectrogram(fft_length=64, sequence_length=128)
