"""`keras.layers.STFTSpectrogram` and `keras.initializers.STFT` against real Keras 3 (same
kernels from the deterministic initializer, same signals), and its argument checks."""
import numpy as np
import pytest

from kgraph.keras import initializers, layers


def _keras():
    return pytest.importorskip("keras")


@pytest.mark.parametrize("side", ["real", "imag"])
@pytest.mark.parametrize("scaling", ["density", "spectrum", None])
@pytest.mark.parametrize("periodic", [False, True])
def test_stft_initializer_matches_keras(side, scaling, periodic):
    keras = _keras()
    want = np.asarray(keras.initializers.STFT(side, "hann", scaling, periodic)((20, 1, 17)))
    got = np.asarray(initializers.STFT(side, "hann", scaling, periodic)((20, 1, 17)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert initializers.get("STFT").side == "real"


@pytest.mark.parametrize("mode", ["log", "magnitude", "psd", "real", "imag", "angle", "stft"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("expand_dims", [False, True])
def test_stft_spectrogram_matches_keras(mode, data_format, expand_dims):
    keras = _keras()
    x = np.random.default_rng(0).normal(size=(2, 100, 3)).astype(np.float32)
    if data_format == "channels_first":
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
    kwargs = dict(mode=mode, frame_length=16, frame_step=6, fft_length=32,
                  expand_dims=expand_dims, data_format=data_format)
    want = np.asarray(keras.layers.STFTSpectrogram(**kwargs)(x))
    got = np.asarray(layers.STFTSpectrogram(**kwargs)(x))
    assert got.shape == want.shape
    if mode == "angle":  # the same angle may land on either side of the +-pi cut
        got = want + np.angle(np.exp(1j * (got - want)))
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_stft_spectrogram_padding_and_open_length(padding):
    keras = _keras()
    x = np.random.default_rng(1).normal(size=(1, 90, 1)).astype(np.float32)
    kwargs = dict(frame_length=20, frame_step=5, padding=padding)
    want = np.asarray(keras.layers.STFTSpectrogram(**kwargs)(x))
    np.testing.assert_allclose(np.asarray(layers.STFTSpectrogram(**kwargs)(x)), want,
                               rtol=2e-4, atol=2e-4)
    if padding == "valid":  # in a model on an open length
        from kgraph import keras as kkeras

        model = kkeras.Sequential([layers.InputLayer((None, 1)),
                                   layers.STFTSpectrogram(**kwargs, trainable=False)])
        assert model.output_shape == (None, None, 17)
        np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=2e-4, atol=2e-4)


def test_stft_spectrogram_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        layers.STFTSpectrogram(mode="power")
    with pytest.raises(ValueError, match="frame_step"):
        layers.STFTSpectrogram(frame_length=8, frame_step=9)
    with pytest.raises(ValueError, match="fft_length"):
        layers.STFTSpectrogram(frame_length=8, fft_length=4)
    with pytest.raises(ValueError, match="padding"):
        layers.STFTSpectrogram(padding="causal")
    with pytest.raises(TypeError, match="float"):
        layers.STFTSpectrogram(frame_length=4)(np.ones((1, 8, 1), np.int32))
