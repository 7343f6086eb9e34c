"""Regularization layers: SpatialDropout1D/2D/3D, GaussianNoise, GaussianDropout,
AlphaDropout, ActivityRegularization (Keras 3 names, arguments and configs).

The noise is drawn inside the compiled step from the step's rng key and the layer's seed
(`kgraph.ops.random`), so a training step stays a pure function of its inputs. Every noise
layer is the identity in inference mode.
"""
from __future__ import annotations

import math

import numpy as np

from kgraph import config as kconfig
from kgraph import ops
from kgraph import random as krandom
from kgraph.keras import regularizers
from kgraph.keras.layers.base import IncompatibleInputError, Layer
from kgraph.keras.layers.core import Dropout
from kgraph.ops import nn as ops_nn
from kgraph.ops.random import uniform_like

__all__ = ["ActivityRegularization", "AlphaDropout", "GaussianDropout", "GaussianNoise",
           "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D"]


def _fraction(layer, arg, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 <= value <= 1:
        raise ValueError(f"Invalid value received for argument `{arg}` of {layer}. Expected a "
                         f"float value between 0 and 1. Received: {arg}={value!r}")
    return float(value)


def _data_format(value):
    value = kconfig.image_data_format() if value is None else str(value).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError(f"The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: data_format={value!r}")
    return value


class _SpatialDropout(Dropout):
    """Dropout of whole feature maps: one keep/drop draw per (sample, channel)."""

    rank = None  # spatial dims: 1, 2 or 3

    def __init__(self, rate, data_format=None, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)
        self.data_format = _data_format(data_format if self.rank > 1 else "channels_last")

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2:
            raise IncompatibleInputError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected ndim={self.rank + 2}, found ndim={len(input_shape)}. "
                f"Full shape received: {tuple(input_shape)}")
        self.built = True

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            return inputs * 0.0
        # noise shaped (batch, 1.., channels): draw it on a one-pixel slice of the input
        spatial = range(2, self.rank + 2) if self.data_format == "channels_first" else \
            range(1, self.rank + 1)
        corner = inputs
        for axis in spatial:
            corner = ops.slice_axis(corner, 0, 1, axis)
        keep = ops.greater_equal(uniform_like(corner, krandom.graph_key(),
                                              self.seed_generator.seed), np.float32(self.rate))
        scale = ops.where(keep, np.float32(1.0 / (1.0 - self.rate)), np.float32(0.0))
        return inputs * ops.cast(scale, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        # Keras 3 writes exactly these keys (its __init__ takes no other arguments)
        config = {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}
        if self.rank > 1:
            config["data_format"] = self.data_format
        return config


class SpatialDropout1D(_SpatialDropout):
    """Dropout that drops whole 1D feature maps (channels) of `(batch, steps, channels)`
    inputs in training and scales the kept ones by `1 / (1 - rate)`.

    Args:
        rate: float in [0, 1], the fraction of channels to drop.
        seed: optional int for reproducible masks.

    Example:
        >>> SpatialDropout1D(0.5)(np.ones((2, 3, 4), "float32"), training=True)
    """

    rank = 1

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        kwargs.pop("data_format", None)
        super().__init__(rate, seed=seed, name=name, dtype=dtype, **kwargs)


class SpatialDropout2D(_SpatialDropout):
    """Dropout that drops whole 2D feature maps of 4D inputs in training.

    Args:
        rate: float in [0, 1], the fraction of channels to drop.
        data_format: "channels_last" (default from the config file) or "channels_first".
        seed: optional int for reproducible masks.
    """

    rank = 2


class SpatialDropout3D(_SpatialDropout):
    """Dropout that drops whole 3D feature maps of 5D inputs in training.

    Args:
        rate: float in [0, 1], the fraction of channels to drop.
        data_format: "channels_last" (default from the config file) or "channels_first".
        seed: optional int for reproducible masks.
    """

    rank = 3


class _NoiseLayer(Layer):
    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = krandom.SeedGenerator(seed)
        self.supports_masking = True

    def _normal(self, inputs, mean, stddev):
        noise = ops_nn.random_normal_like(inputs, krandom.graph_key(), self.seed_generator.seed,
                                          mean=mean, stddev=stddev)
        return ops.cast(noise, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


class GaussianNoise(_NoiseLayer):
    """Adds zero-centered Gaussian noise of standard deviation `stddev` in training.

    Args:
        stddev: float in [0, 1], the standard deviation of the noise.
        seed: optional int for reproducible noise.

    Example:
        >>> GaussianNoise(0.1)(np.zeros((2, 3), "float32"), training=True)
    """

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.stddev = _fraction("GaussianNoise", "stddev", stddev)

    def call(self, inputs, training=False):
        if not training or self.stddev == 0:
            return inputs
        return inputs + self._normal(inputs, 0.0, self.stddev)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_NoiseLayer):
    """Multiplies the inputs by 1-centered Gaussian noise of standard deviation
    `sqrt(rate / (1 - rate))` in training.

    Args:
        rate: float in [0, 1), the drop probability it mimics (as with `Dropout`).
        seed: optional int for reproducible noise.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _fraction("GaussianDropout", "rate", rate)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            raise ValueError(f"GaussianDropout {self.name!r}: rate=1.0 gives infinite noise in "
                             f"training; use a rate below 1. Received: rate={self.rate}")
        return inputs * self._normal(inputs, 1.0, math.sqrt(self.rate / (1.0 - self.rate)))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class AlphaDropout(_NoiseLayer):
    """Dropout that keeps the mean and variance of SELU activations: dropped units are set to
    the SELU saturation value `-alpha * scale`, then `a * x + b` restores the moments.

    Args:
        rate: float in [0, 1], the drop probability.
        noise_shape: optional shape of the keep mask (None entries follow the input).
        seed: optional int for reproducible masks.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.rate = _fraction("AlphaDropout", "rate", rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)

    def call(self, inputs, training=False):
        if not training or self.rate == 0:
            return inputs
        if self.rate == 1:
            raise ValueError(f"AlphaDropout {self.name!r}: rate=1.0 drops every unit and has no "
                             f"affine correction; use a rate below 1. Received: rate={self.rate}")
        like = inputs
        for axis, size in enumerate(self.noise_shape or ()):
            if size == 1:
                like = ops.slice_axis(like, 0, 1, axis)
        keep = ops.greater_equal(uniform_like(like, krandom.graph_key(),
                                              self.seed_generator.seed), np.float32(self.rate))
        keep = ops.cast(keep, inputs.dtype)
        alpha_p = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        a = ((1 - self.rate) * (1 + self.rate * alpha_p ** 2)) ** -0.5
        b = -a * alpha_p * self.rate
        return (inputs * keep + (1.0 - keep) * alpha_p) * a + b

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed,
                "noise_shape": list(self.noise_shape) if self.noise_shape else None}


class ActivityRegularization(Layer):
    """Identity layer that adds `l1 * sum(|x|) + l2 * sum(x**2)` of its inputs to the loss.

    Args:
        l1: float >= 0, the L1 factor.
        l2: float >= 0, the L2 factor.
    """

    def __init__(self, l1=0.0, l2=0.0, **kwargs):
        kwargs.pop("activity_regularizer", None)
        super().__init__(activity_regularizer=regularizers.L1L2(l1=l1, l2=l2), **kwargs)
        self.l1, self.l2 = float(l1), float(l2)
        self.supports_masking = True

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
