"""`keras.initializers`: callables `(shape, dtype) -> tensor` (an eager numpy array), Keras 3
defaults and fans.

Unseeded initializers draw from kgraph.random's generator, so `set_seed` fixes them; seeded
ones give the same values on every call.
"""
from __future__ import annotations

import math

import numpy as np

from kgraph import random as krandom
from kgraph.keras.serialization import lookup


def compute_fans(shape):
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    def __call__(self, shape, dtype=None):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _rng(self):
        seed = getattr(self, "seed", None)
        return np.random.default_rng(seed) if seed is not None else krandom.generator()


def _cast(x, dtype):
    from kgraph.keras.layers.base import _eager
    from kgraph.variables import _np

    return _eager(np.asarray(x).astype(_np(dtype or "float32")))


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype=None):
        return _cast(np.full(shape, self.value), dtype)

    def get_config(self):
        return {"value": self.value}


class Zeros(Initializer):
    def __call__(self, shape, dtype=None):
        return _cast(np.zeros(shape), dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype=None):
        return _cast(np.ones(shape), dtype)


class Identity(Initializer):
    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape. Received: shape={shape}")
        return _cast(self.gain * np.eye(*shape), dtype)

    def get_config(self):
        return {"gain": self.gain}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype=None):
        return _cast(self._rng().uniform(self.minval, self.maxval, shape), dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return _cast(self._rng().normal(self.mean, self.stddev, shape), dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(rng, shape, stddev):
    out = rng.normal(0.0, 1.0, shape)
    bad = np.abs(out) > 2.0
    while bad.any():  # resample outside two standard deviations, as TF/JAX do
        out[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
        bad = np.abs(out) > 2.0
    return out * stddev


class TruncatedNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype=None):
        return _cast(self.mean + _truncated_normal(self._rng(), shape, self.stddev), dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(Initializer):
    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        if scale <= 0:
            raise ValueError(f"VarianceScaling: scale must be positive. Received: scale={scale}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"VarianceScaling: invalid mode. Received: mode={mode!r}")
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"VarianceScaling: invalid distribution. Received: "
                             f"distribution={distribution!r}")
        self.scale, self.mode, self.distribution, self.seed = scale, mode, distribution, seed

    def __call__(self, shape, dtype=None):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "truncated_normal":
            out = _truncated_normal(rng, shape, math.sqrt(scale) / 0.87962566103423978)
        elif self.distribution == "untruncated_normal":
            out = rng.normal(0.0, math.sqrt(scale), shape)
        else:
            limit = math.sqrt(3.0 * scale)
            out = rng.uniform(-limit, limit, shape)
        return _cast(out, dtype)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}


def _variance(name, scale, mode, distribution):
    class _Init(VarianceScaling):
        # input_axes/output_axes (Keras 3.15) only matter for EinsumDense kernels
        def __init__(self, seed=None, input_axes=None, output_axes=None):
            super().__init__(scale, mode, distribution, seed)
            self.input_axes, self.output_axes = input_axes, output_axes

        def get_config(self):
            return {"seed": self.seed, "input_axes": self.input_axes,
                    "output_axes": self.output_axes}

    _Init.__name__ = _Init.__qualname__ = name
    return _Init


GlorotUniform = _variance("GlorotUniform", 1.0, "fan_avg", "uniform")
GlorotNormal = _variance("GlorotNormal", 1.0, "fan_avg", "truncated_normal")
HeUniform = _variance("HeUniform", 2.0, "fan_in", "uniform")
HeNormal = _variance("HeNormal", 2.0, "fan_in", "truncated_normal")
LecunUniform = _variance("LecunUniform", 1.0, "fan_in", "uniform")
LecunNormal = _variance("LecunNormal", 1.0, "fan_in", "truncated_normal")


class Orthogonal(Initializer):
    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype=None):
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self._rng().normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return _cast(self.gain * q.reshape(shape), dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


ALL = {c.__name__: c for c in (Constant, Zeros, Ones, Identity, RandomUniform, RandomNormal,
                               TruncatedNormal, VarianceScaling, GlorotUniform, GlorotNormal,
                               HeUniform, HeNormal, LecunUniform, LecunNormal, Orthogonal)}
ALIASES = {"zeros": Zeros, "ones": Ones, "constant": Constant, "identity": Identity,
           "uniform": RandomUniform, "random_uniform": RandomUniform,
           "normal": RandomNormal, "random_normal": RandomNormal,
           "truncated_normal": TruncatedNormal, "glorot_uniform": GlorotUniform,
           "glorot_normal": GlorotNormal, "he_uniform": HeUniform, "he_normal": HeNormal,
           "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
           "variance_scaling": VarianceScaling}

# Keras 3 also exports the snake_case names as module attributes (the class itself:
# `keras.initializers.glorot_uniform()(shape=...)`, the keras.io traffic-forecasting example)
constant, zeros, ones, identity = Constant, Zeros, Ones, Identity
random_uniform, random_normal, truncated_normal = RandomUniform, RandomNormal, TruncatedNormal
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, \
    HeNormal
lecun_uniform, lecun_normal = LecunUniform, LecunNormal
orthogonal, variance_scaling = Orthogonal, VarianceScaling


def get(identifier):
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    found = lookup("initializer", identifier, {**ALL, **ALIASES})
    return found() if isinstance(found, type) else found


def serialize(init):
    return {"module": "keras.initializers", "class_name": type(init).__name__,
            "config": init.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    return get(config)


class STFT(Initializer):
    """Keras 3's `STFT` (`STFTInitializer`) initializer: the real (`cos`) or imaginary (`-sin`)
    DFT basis of a `(frame_length, 1, fft_length // 2 + 1)` kernel, `kernel[t, 0, k] =
    cos|sin(-2 pi t k / fft_length)`, times a scipy window (`"hann"`, `"hamming"`, ... or an
    array) divided by its `"density"` (root of the summed squares) or `"spectrum"` (sum)
    scaling; `STFTSpectrogram` convolves frames with it."""

    def __init__(self, side="real", window="hann", scaling="density", periodic=False):
        if side not in ("real", "imag"):
            raise ValueError(f"STFT: side must be 'real' or 'imag'. Received: side={side!r}")
        if scaling not in (None, "density", "spectrum"):
            raise ValueError(f"STFT: scaling must be None, 'density' or 'spectrum'. "
                             f"Received: scaling={scaling!r}")
        if isinstance(window, str):
            import scipy.signal

            scipy.signal.get_window(window, 1)  # an unknown window name raises here
        self.side, self.window, self.scaling, self.periodic = side, window, scaling, periodic

    def __call__(self, shape, dtype=None):
        frame_length, _, bins = shape
        t = np.arange(frame_length, dtype=np.float64)[:, None, None]
        k = np.arange(bins, dtype=np.float64)[None, None, :]
        angle = -2.0 * np.pi * t * k / ((bins - 1) * 2)
        kernel = np.cos(angle) if self.side == "real" else np.sin(angle)
        if self.window is not None:
            window = self.window
            if isinstance(window, str):
                import scipy.signal

                window = scipy.signal.get_window(window, frame_length, self.periodic)
            window = np.asarray(window, dtype=np.float64)
            if window.shape != (frame_length,):
                raise ValueError(f"STFT: the window must have shape ({frame_length},), the "
                                 f"frame length. Received: window shape={window.shape}")
            scale = {"density": np.sqrt(np.sum(window ** 2)), "spectrum": np.sum(np.abs(window)),
                     None: 1.0}[self.scaling]
            kernel = kernel * window[:, None, None] / scale
        return _cast(kernel, dtype)

    def get_config(self):
        return {"side": self.side, "window": self.window, "periodic": self.periodic,
                "scaling": self.scaling}


STFTInitializer = stft = ALL["STFT"] = ALL["STFTInitializer"] = ALIASES["stft"] = STFT
# Keras 3's longer public names of the same classes
IdentityInitializer, OrthogonalInitializer = Identity, Orthogonal
ALIASES.update({"IdentityInitializer": Identity, "OrthogonalInitializer": Orthogonal})
