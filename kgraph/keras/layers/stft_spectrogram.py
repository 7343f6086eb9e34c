"""`keras.layers.STFTSpectrogram`: spectrograms of 1-D signals inside a model (Keras 3).

Each frame's DFT is a strided 1-D convolution with the `STFT` initializer's real and imaginary
kernels (trainable by default, as Keras), one channel at a time, so an open signal length
(`Input((None, 1))`) stays open with "valid" padding.
"""
from __future__ import annotations

import math
import warnings

from kgraph import ops
from kgraph.keras import initializers
from kgraph.keras.layers.base import Layer

__all__ = ["STFTSpectrogram"]

_MODES = ("log", "magnitude", "psd", "real", "imag", "angle", "stft")


class STFTSpectrogram(Layer):
    """Short-time Fourier transform of `(batch, time, channels)` signals
    (`(batch, channels, time)` with `data_format="channels_first"`).

    `mode`: "log" (log magnitude), "magnitude", "psd" (power, the inner bins doubled), "real",
    "imag", "angle" or "stft" (real then imaginary bins). Frames of `frame_length` samples every
    `frame_step` (default half a frame), `fft_length` bins (default the next power of two),
    a scipy `window` scaled by `scaling`. Output: `(batch, frames, channels * bins)`, or
    `(batch, frames, bins, channels)` with `expand_dims` (channels-first: `(batch, channels *
    bins, frames)` / `(batch, channels, frames, bins)`), the bins of each channel together.
    """

    def __init__(self, mode="log", frame_length=256, frame_step=None, fft_length=None,
                 window="hann", periodic=False, scaling="density", padding="valid",
                 expand_dims=False, data_format=None, **kwargs):
        if frame_step is not None and not 1 <= frame_step <= frame_length:
            raise ValueError(f"STFTSpectrogram: frame_step must be a positive int not above "
                             f"frame_length={frame_length}. Received: frame_step={frame_step!r}")
        if fft_length is not None and fft_length < frame_length:
            raise ValueError(f"STFTSpectrogram: fft_length must be at least frame_length="
                             f"{frame_length}. Received: fft_length={fft_length!r}")
        if fft_length is not None and fft_length & (fft_length - 1):
            warnings.warn(f"`fft_length` is recommended to be a power of two. Received "
                          f"fft_length={fft_length}", stacklevel=2)
        if mode not in _MODES:
            raise ValueError(f"STFTSpectrogram: mode must be one of {', '.join(_MODES)}. "
                             f"Received: mode={mode!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"STFTSpectrogram: padding must be 'valid' or 'same'. Received: "
                             f"padding={padding!r}")
        initializers.STFT("real", window, scaling, periodic)  # checks window and scaling
        super().__init__(**kwargs)
        from kgraph.keras import backend

        self.mode, self.frame_length, self.frame_step = mode, frame_length, frame_step
        self.fft_length, self.window, self.periodic = fft_length, window, periodic
        self.scaling, self.padding, self.expand_dims = scaling, padding, expand_dims
        self.data_format = data_format or backend.image_data_format()
        self._frame_step = frame_step or frame_length // 2
        self._fft_length = fft_length or 2 ** int(math.ceil(math.log2(frame_length)))

    def build(self, input_shape):
        shape = (self.frame_length, 1, self._fft_length // 2 + 1)
        for side in ("real", "imag"):
            if self.mode != {"real": "imag", "imag": "real"}.get(side):
                setattr(self, f"{side}_kernel", self.add_weight(
                    name=f"{side}_kernel", shape=shape, initializer=initializers.STFT(
                        side, self.window, self.scaling, self.periodic)))

    def _frames(self, signal, kernel):
        """(batch, frames, bins) of one channel's (batch, time, 1) signal."""
        return ops.conv(signal, ops.cast(kernel, signal.dtype), strides=self._frame_step,
                        padding=self.padding, data_format="channels_last")

    def _spectrum(self, signal):
        """The mode's (batch, frames, bins) for one channel."""
        real = self._frames(signal, self.real_kernel) if self.mode != "imag" else None
        imag = self._frames(signal, self.imag_kernel) if self.mode != "real" else None
        if self.mode in ("real", "imag"):
            return real if self.mode == "real" else imag
        if self.mode == "angle":
            return ops.arctan2(imag, real)
        if self.mode == "stft":
            return ops.concatenate([real, imag], axis=-1)
        power = ops.square(real) + ops.square(imag)
        if self.mode == "psd":
            return power + ops.pad(power[:, :, 1:-1], [(0, 0), (0, 0), (1, 1)])
        from kgraph.keras import backend

        magnitude = ops.sqrt(ops.maximum(power, backend.epsilon()))
        return magnitude if self.mode == "magnitude" else \
            ops.log(ops.maximum(magnitude, backend.epsilon()))

    def call(self, inputs):
        dtype = getattr(inputs, "dtype", None)
        if str(dtype) not in ("float16", "float32", "float64"):
            raise TypeError(f"STFTSpectrogram: inputs must be float16, float32 or float64. "
                            f"Received: input type={dtype}")
        first = self.data_format == "channels_first"
        channels = inputs.shape[1] if first else inputs.shape[-1]
        parts = []
        for c in range(channels):
            signal = ops.expand_dims(inputs[:, c, :], -1) if first else inputs[:, :, c:c + 1]
            parts.append(self._spectrum(signal))  # (batch, frames, bins)
        if self.expand_dims:
            return ops.stack(parts, axis=1) if first else ops.stack(parts, axis=-1)
        out = ops.concatenate(parts, axis=-1)  # (batch, frames, channels * bins)
        return ops.transpose(out, (0, 2, 1)) if first else out

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "frame_length": self.frame_length,
                "frame_step": self.frame_step, "fft_length": self.fft_length,
                "window": self.window, "periodic": self.periodic, "scaling": self.scaling,
                "padding": self.padding, "data_format": self.data_format,
                "expand_dims": self.expand_dims}
