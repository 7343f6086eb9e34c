"""`MelSpectrogram`: the mel-scaled (and by default decibel) power spectrogram of audio
signals inside the graph, with Keras 3's arguments, matrix and numerics: `keras.ops.stft`
(centred, reflect-padded frames), `|STFT| ** mag_exp`, the HTK mel filterbank (triangles of
peak 1, the DC bin zeroed, built in float32 as Keras), `10 log10` relative to `ref_power`
clipped `top_db` below the maximum of the whole batch (as Keras), then
`(batch, num_mel_bins, frames)`."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.layers.base import Layer

__all__ = ["MelSpectrogram"]

_MEL_HIGH_FREQUENCY_Q = 1127.0
_MEL_BREAK_FREQUENCY_HERTZ = 700.0


def hertz_to_mel(frequencies):
    return _MEL_HIGH_FREQUENCY_Q * np.log(1.0 + frequencies / np.float32(
        _MEL_BREAK_FREQUENCY_HERTZ))


def linear_to_mel_weight_matrix(num_mel_bins=20, num_spectrogram_bins=129, sampling_rate=8000,
                                lower_edge_hertz=125.0, upper_edge_hertz=3800.0):
    """`(num_spectrogram_bins, num_mel_bins)` float32 matrix taking linear-frequency bins in
    `[0, sampling_rate / 2]` to HTK mel bands in `[lower_edge_hertz, upper_edge_hertz]`."""
    f32 = np.float32
    linear = np.linspace(f32(0), f32(sampling_rate) / f32(2), num_spectrogram_bins,
                         dtype=f32)[1:]
    bins_mel = hertz_to_mel(linear)[:, None]
    edges = np.linspace(hertz_to_mel(f32(lower_edge_hertz)), hertz_to_mel(f32(upper_edge_hertz)),
                        num_mel_bins + 2, dtype=f32)
    lower, center, upper = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    slopes = np.minimum((bins_mel - lower) / (center - lower), (upper - bins_mel) / (upper - center))
    return np.pad(np.maximum(f32(0), slopes), [(1, 0), (0, 0)]).astype(f32)


class MelSpectrogram(Layer):
    """Mel-frequency spectrograms of `(batch, samples)` (or `(samples,)`) audio signals.

    Args:
        fft_length: FFT size (default 2048), `>= sequence_length`.
        sequence_stride: hop between frames (default 512).
        sequence_length: frame length (default `fft_length`).
        window: `"hann"` (default), `"hamming"` or None.
        sampling_rate: samples per second (default 16000).
        num_mel_bins: mel bands (default 128).
        min_freq, max_freq: band range in Hz (default 20 and `sampling_rate / 2`).
        power_to_db: convert to decibels (default True).
        top_db: dynamic range kept below the maximum, in dB (default 80).
        mag_exp: exponent of the STFT magnitude (default 2: power).
        min_power: floor before the logarithm (default 1e-10).
        ref_power: reference power of 0 dB (default 1).

    Example:
        >>> MelSpectrogram(num_mel_bins=64)(np.random.rand(2, 16000).astype("float32")).shape
        (2, 64, 32)
    """

    def __init__(self, fft_length=2048, sequence_stride=512, sequence_length=None, window="hann",
                 sampling_rate=16000, num_mel_bins=128, min_freq=20.0, max_freq=None,
                 power_to_db=True, top_db=80.0, mag_exp=2.0, min_power=1e-10, ref_power=1.0,
                 **kwargs):
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.sequence_length = sequence_length or fft_length
        if self.fft_length < self.sequence_length:
            raise ValueError(f"`fft_length` must be greater than or equal to  `sequence_length`."
                             f" Received: `sequence_length`={self.sequence_length}, "
                             f"`fft_length`={self.fft_length}.")
        self.window, self.sampling_rate, self.num_mel_bins = window, sampling_rate, num_mel_bins
        self.min_freq = min_freq
        self.max_freq = max_freq or int(sampling_rate / 2)
        self.power_to_db, self.top_db, self.mag_exp = power_to_db, top_db, mag_exp
        self.min_power, self.ref_power = min_power, ref_power
        super().__init__(**kwargs)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (np.ndarray, list)) and np.ndim(inputs) == 1:
            # one signal: eager calls trace with the first axis open, stft needs the length
            return super().__call__(np.asarray(inputs)[None], *args, **kwargs)[0]
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs):
        dtype = self.compute_dtype if self.compute_dtype in ("float32", "float64") else "float32"
        real, imag = ops.stft(ops.cast(inputs, dtype), self.sequence_length,
                              self.sequence_stride, self.fft_length, window=self.window,
                              center=True)
        spec = ops.power(ops.sqrt(ops.square(real) + ops.square(imag)), self.mag_exp)
        matrix = linear_to_mel_weight_matrix(self.num_mel_bins, spec.shape[-1],
                                             self.sampling_rate, self.min_freq, self.max_freq)
        out = ops.tensordot(spec, matrix.astype(dtype), axes=1)
        if self.power_to_db:
            out = self._dbscale(out)
        return ops.cast(ops.swapaxes(out, -1, -2), self.compute_dtype)

    def _dbscale(self, power):
        log_spec = 10.0 * ops.log10(ops.maximum(power, self.min_power))
        log_spec = log_spec - 10.0 * float(np.log10(np.maximum(
            np.abs(np.float32(self.ref_power)), np.float32(self.min_power))))
        return ops.maximum(log_spec, ops.max(log_spec) - self.top_db)

    def compute_output_shape(self, input_shape):
        time = input_shape[-1]
        frames = None if time is None else (time + self.sequence_stride + 1) // \
            self.sequence_stride
        return (*input_shape[:-1], self.num_mel_bins, frames)

    def get_config(self):
        return {**super().get_config(), "fft_length": self.fft_length,
                "sequence_stride": self.sequence_stride,
                "sequence_length": self.sequence_length, "window": self.window,
                "sampling_rate": self.sampling_rate, "num_mel_bins": self.num_mel_bins,
                "min_freq": self.min_freq, "max_freq": self.max_freq,
                "power_to_db": self.power_to_db, "top_db": self.top_db,
                "mag_exp": self.mag_exp, "min_power": self.min_power,
                "ref_power": self.ref_power}
