"""Random image augmentation inside the graph: `RandomFlip`, `RandomContrast`,
`RandomBrightness`, `RandomCrop` (and, in affine.py, `RandomRotation`, `RandomZoom`,
`RandomTranslation`), with Keras 3 names, arguments, defaults and transformation formulas.

They change images only when `training` is True: inside `fit`, or in a direct call on arrays
(Keras' default for these layers); `predict`/`evaluate` pass images through. Each draw is a
pure function of the step's rng key (`kgraph.random.graph_key()`), the layer's seed and the
element index, so a step is reproducible. The draws differ from Keras' (another generator);
the transformations given the draws follow Keras: affine warps sample with Keras'
`map_coordinates` rules (bilinear or nearest; fill modes reflect, wrap, constant, nearest).
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph import random as krandom
from kgraph.ir.graph import current_graph
from kgraph.keras.layers.base import KerasTensor, Layer
from kgraph.keras.layers.preprocessing.image import _data_format, sized_shape, spatial_axes
from kgraph.ops.random import uniform_like

__all__ = ["RandomBrightness", "RandomContrast", "RandomCrop", "RandomFlip"]

_STREAMS = (0, 0x9E3779B9, 0x7F4A7C15, 0x94D049BB)  # independent draws of one layer


def factor_range(factor, name, layer, symmetric=True):
    """(lower, upper) from a float (`-f, f`, or `0, f` when not symmetric) or a pair."""
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(f"{layer}: `{name}` must be a float or a pair of floats. "
                             f"Received: {name}={factor!r}")
        return float(factor[0]), float(factor[1])
    factor = float(factor)
    return (-factor if symmetric else 0.0), factor


class RandomLayer(Layer):
    """What the random layers share: `training` defaults to True on a direct call (as in
    Keras), per-sample uniform draws from the step's rng key, single images as batches."""

    def __init__(self, seed=None, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = krandom.SeedGenerator(seed)
        self.data_format = _data_format(data_format)
        self.supports_masking = False

    def __call__(self, *args, **kwargs):
        symbolic = any(isinstance(a, KerasTensor) for a in args)
        if "training" not in kwargs and not symbolic and current_graph() is None:
            kwargs["training"] = True  # Keras: a direct call augments
        return super().__call__(*args, **kwargs)

    def draw(self, images, n, stream=0, low=0.0, high=1.0):
        """`(batch, n)` uniforms in [low, high) for a batch of images."""
        rank = len(images.shape)
        rows = ops.sum(ops.zeros_like(images), axis=tuple(range(1, rank)))
        like = ops.expand_dims(rows, -1) + np.zeros((1, n), np.float32)
        u = uniform_like(like, krandom.graph_key(), self.seed_generator.seed ^ _STREAMS[stream])
        return u * (high - low) + low if (low, high) != (0.0, 1.0) else u

    def call(self, inputs, training=True):
        x = ops.cast(inputs, self.compute_dtype)
        if not training:
            return x
        single = len(x.shape) == 3
        out = self.augment(ops.expand_dims(x, 0) if single else x)
        return out[0] if single else out

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed, "data_format": self.data_format}


def per_sample(values, rank):
    """A `(batch,)` column broadcastable against rank-`rank` images."""
    return ops.reshape(values, (-1,) + (1,) * (rank - 1))


class RandomFlip(RandomLayer):
    """Flips each image horizontally and/or vertically with probability 1/2 (training only).

    Args:
        mode: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (default).
        seed: int seed.

    Example:
        >>> RandomFlip("horizontal")(images, training=True)
    """

    def __init__(self, mode="horizontal_and_vertical", seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if mode not in ("horizontal", "vertical", "horizontal_and_vertical"):
            raise ValueError(f"RandomFlip layer {self.name} received an invalid mode argument: "
                             f"{mode}. Expected one of 'horizontal', 'vertical' or "
                             f"'horizontal_and_vertical'.")
        self.mode = mode

    def augment(self, x):
        h_axis, w_axis = spatial_axes(4, self.data_format)
        u = self.draw(x, 2)
        flips = [(w_axis, 0)] if self.mode == "horizontal" else [(h_axis, 1)] \
            if self.mode == "vertical" else [(w_axis, 0), (h_axis, 1)]
        for axis, column in flips:
            keep = per_sample(ops.cast(ops.less(u[:, column], 0.5), x.dtype), 4)
            x = x * keep + ops.flip(x, axis) * (1.0 - keep)
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


class _FactorLayer(RandomLayer):
    """A random layer with a `factor` range and the `value_range` its output is clipped to."""

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor, self.value_range = factor, tuple(value_range)
        self._lower, self._upper = factor_range(factor, "factor", type(self).__name__)
        if not self._valid_factor():
            raise ValueError(f"{type(self).__name__}: `factor` is out of range. "
                             f"Received: factor={factor!r}")

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "value_range": list(self.value_range)}


class RandomContrast(_FactorLayer):
    """Scales each image's contrast by a random factor in `[1 - lower, 1 + upper]`:
    `(x - mean) * factor + mean` (mean over height and width, per channel), clipped to
    `value_range`.

    Args:
        factor: float or `(lower, upper)`.
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def _valid_factor(self):
        return abs(self._lower) <= 1 and self._upper >= 0

    def augment(self, x):
        factor = per_sample(self.draw(x, 1, low=1.0 - abs(self._lower),
                                      high=1.0 + self._upper)[:, 0], 4)
        axes = spatial_axes(4, self.data_format)
        mean = ops.mean(x, axis=axes, keepdims=True)
        return ops.clip((x - mean) * factor + mean, *self.value_range)

class RandomBrightness(_FactorLayer):
    """Adds a random brightness delta in `[lower, upper] * (value_range width)` to each
    image, clipped to `value_range`.

    Args:
        factor: float or `(lower, upper)` within [-1, 1].
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def _valid_factor(self):
        return -1 <= self._lower <= self._upper <= 1

    def augment(self, x):
        span = self.value_range[1] - self.value_range[0]
        delta = per_sample(self.draw(x, 1, low=self._lower * span,
                                     high=self._upper * span)[:, 0], 4)
        return ops.clip(x + delta, *self.value_range)


class RandomCrop(RandomLayer):
    """Crops a random `(height, width)` box (one offset per batch, as Keras) in training and
    the central box in inference (resizing images smaller than the box).

    Args:
        height, width: output size.
        seed: int seed.
    """

    def __init__(self, height, width, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.height, self.width = int(height), int(width)

    def call(self, inputs, training=True):
        from kgraph.keras.layers.preprocessing.image import CenterCrop

        x = ops.cast(inputs, self.compute_dtype)
        axes = spatial_axes(len(x.shape), self.data_format)
        dh, dw = x.shape[axes[0]] - self.height, x.shape[axes[1]] - self.width
        if not training or dh < 0 or dw < 0:
            return CenterCrop(self.height, self.width, data_format=self.data_format,
                              dtype=self.dtype_policy).call(x)
        return self._random_box(x, axes, dh, dw)

    def _random_box(self, x, axes, dh, dw):
        from kgraph.ops import movement

        batch = x if len(x.shape) == 4 else ops.expand_dims(x, 0)
        u = self.draw(batch, 2)[0]  # one box for the whole batch
        for axis, extra, size, column in ((axes[0], dh, self.height, 0),
                                          (axes[1], dw, self.width, 1)):
            if extra == 0:
                continue
            start = ops.cast(ops.floor(u[column] * (extra + 1)), "int64")
            x = movement.dynamic_slice(x, start, start + np.int64(size), axis)
            shape = list(x.shape)
            shape[axis] = size
            x = movement.reshape_to(x, shape)
        return x

    def compute_output_shape(self, input_shape):
        return sized_shape(input_shape, self.height, self.width, self.data_format)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}
