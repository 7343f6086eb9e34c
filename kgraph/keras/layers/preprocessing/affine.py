"""Random affine augmentation: `RandomRotation`, `RandomZoom`, `RandomTranslation`.

Each draws a per-image transform `[a0, a1, a2, b0, b1, b2]` that maps an output pixel
`(x, y)` to the input point `(a0 x + a1 y + a2, b0 x + b1 y + b2)` (Keras' convention and
matrices), then samples the input there as Keras' `map_coordinates` does: `bilinear` (order 1)
or `nearest` (rounded), out-of-range points by `fill_mode` (`reflect`: d c b a | a b c d |
d c b a, `wrap`, `nearest`, `constant` with `fill_value`). The gather runs on the flattened
batch with `batch index * H * W + y * W + x` indices.
"""
from __future__ import annotations

import math

import numpy as np

from kgraph import ops
from kgraph.keras.layers.preprocessing.augmentation import (RandomLayer, factor_range,
                                                            spatial_axes)

__all__ = ["RandomRotation", "RandomTranslation", "RandomZoom"]

FILL_MODES = ("reflect", "wrap", "constant", "nearest")
MAX_DYNAMIC_BATCH = 1 << 16  # the batch index comes from a slice of a constant range


def _mirror(index, size):
    s = size - 1  # half wavelength of the triangular wave
    return ops.abs(ops.mod(index + s, 2 * s) - s) if s > 0 else index * 0


def fix_index(index, size, fill_mode):
    """Integer-valued float coordinates mapped into [0, size) by `fill_mode`."""
    if fill_mode == "reflect":
        return ops.floor_divide(_mirror(2 * index + 1, 2 * size + 1) - 1, 2)
    if fill_mode == "wrap":
        return ops.mod(index, float(size))
    return ops.clip(index, 0.0, float(size - 1))  # nearest, and constant (masked apart)


def _batch_offsets(images, pixels):
    from kgraph.ops import movement

    if images.shape[0] is not None:
        return np.arange(images.shape[0], dtype=np.float32)[:, None] * pixels
    rows = movement.dynamic_slice(np.arange(MAX_DYNAMIC_BATCH, dtype=np.float32),
                                  np.asarray(0, np.int64), movement.count(images, (0,)), 0)
    return ops.expand_dims(rows, 1) * float(pixels)


def _gather(flat, offsets, ys, xs, width):
    index = ops.cast(offsets + ys * float(width) + xs, "int64")
    return ops.take(flat, ops.reshape(index, (-1,)), axis=0)


def affine_transform(images, transform, interpolation="bilinear", fill_mode="reflect",
                     fill_value=0.0):
    """Warp channels-last `(batch, H, W, C)` images by per-image `(batch, 6)` transforms."""
    _, h, w, _ = images.shape
    grid_x, grid_y = output_grid(h, w)
    t = [transform[:, i:i + 1] for i in range(6)]
    src_x = t[0] * grid_x + t[1] * grid_y + t[2]  # (batch, H*W)
    src_y = t[3] * grid_x + t[4] * grid_y + t[5]
    return sample(images, src_x, src_y, interpolation, fill_mode, fill_value)


def output_grid(h, w):
    """(x, y) of every output pixel, each `(1, H*W)` in row-major order."""
    grid_y, grid_x = np.meshgrid(np.arange(h, dtype=np.float32),
                                 np.arange(w, dtype=np.float32), indexing="ij")
    return grid_x.reshape(1, -1), grid_y.reshape(1, -1)


def sample(images, src_x, src_y, interpolation="bilinear", fill_mode="reflect", fill_value=0.0):
    """Channels-last `(batch, H, W, C)` images read at the `(batch, H*W)` input points
    `(src_x, src_y)` of each output pixel, by Keras' `map_coordinates` rules."""
    _, h, w, c = images.shape
    flat = ops.reshape(images, (-1, c))
    offsets = _batch_offsets(images, h * w)
    if interpolation == "nearest":
        corners = [(ops.round(src_y), ops.round(src_x), None)]
    else:
        y0, x0 = ops.floor(src_y), ops.floor(src_x)
        fy, fx = src_y - y0, src_x - x0
        corners = [(y0, x0, (1 - fy) * (1 - fx)), (y0, x0 + 1, (1 - fy) * fx),
                   (y0 + 1, x0, fy * (1 - fx)), (y0 + 1, x0 + 1, fy * fx)]
    out = 0.0
    for ys, xs, weight in corners:
        value = ops.reshape(_gather(flat, offsets, fix_index(ys, h, fill_mode),
                                    fix_index(xs, w, fill_mode), w), (-1, h * w, c))
        if fill_mode == "constant":
            inside = ops.logical_and(ops.logical_and(ys >= 0, ys <= h - 1),
                                     ops.logical_and(xs >= 0, xs <= w - 1))
            value = ops.where(ops.expand_dims(inside, -1), value, float(fill_value))
        out = out + (value if weight is None else value * ops.expand_dims(weight, -1))
    return ops.reshape(out, (-1, h, w, c))


def check_sampling(fill_mode, interpolation):
    """Keras' errors for a `fill_mode` or `interpolation` the warps do not have."""
    if fill_mode not in FILL_MODES:
        raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one "
                                  f"{FILL_MODES}.")
    if interpolation not in ("bilinear", "nearest"):
        raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of "
                                  f"one ('bilinear', 'nearest').")


class _AffineLayer(RandomLayer):
    def __init__(self, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        check_sampling(fill_mode, interpolation)
        self.fill_mode, self.interpolation, self.fill_value = \
            fill_mode, interpolation, fill_value

    def augment(self, x):
        first = self.data_format == "channels_first"
        if first:
            x = ops.transpose(x, (0, 2, 3, 1))
        h, w = x.shape[1], x.shape[2]
        out = affine_transform(x, self.transform(x, h, w), self.interpolation,
                               self.fill_mode, self.fill_value)
        return ops.transpose(out, (0, 3, 1, 2)) if first else out

    def get_config(self):
        return {**super().get_config(), "fill_mode": self.fill_mode,
                "interpolation": self.interpolation, "fill_value": self.fill_value}


def _columns(*columns):
    return ops.concatenate([c if len(c.shape) == 2 else ops.expand_dims(c, -1)
                            for c in columns], axis=-1)


class RandomRotation(_AffineLayer):
    """Rotates each image by a random angle in `factor * 2 pi` (training only).

    Args:
        factor: float or `(lower, upper)`, fractions of a full turn (0.2: up to +-72 deg).
        fill_mode: `"reflect"` (default), `"wrap"`, `"constant"` or `"nearest"`.
        interpolation: `"bilinear"` (default) or `"nearest"`.
        seed: int seed.
        fill_value: the value outside the image for `fill_mode="constant"`.
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        kwargs.pop("value_range", None)  # written by some Keras versions; no effect here
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.factor = factor
        self._lower, self._upper = factor_range(factor, "factor", "RandomRotation")

    def transform(self, x, h, w):
        angle = self.draw(x, 1, low=self._lower * 2 * math.pi,
                          high=self._upper * 2 * math.pi)[:, 0]
        cos, sin = ops.cos(angle), ops.sin(angle)
        x_offset = ((w - 1) - (cos * (w - 1) - sin * (h - 1))) / 2.0
        y_offset = ((h - 1) - (sin * (w - 1) + cos * (h - 1))) / 2.0
        return _columns(cos, -sin, x_offset, sin, cos, y_offset)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomZoom(_AffineLayer):
    """Zooms each image by random factors: `height_factor` (and `width_factor`, default the
    same draw) in `[lower, upper]`; negative zooms in, positive zooms out (training only).

    Args:
        height_factor: float or `(lower, upper)` within [-1, ...].
        width_factor: float, pair or None (keep the aspect ratio).
        fill_mode, interpolation, seed, fill_value: as `RandomRotation`.
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = factor_range(height_factor, "height_factor", "RandomZoom")
        self._width = None if width_factor is None else \
            factor_range(width_factor, "width_factor", "RandomZoom")

    def transform(self, x, h, w):
        zh = self.draw(x, 1, 0, 1.0 + self._height[0], 1.0 + self._height[1])[:, 0]
        zw = zh if self._width is None else \
            self.draw(x, 1, 1, 1.0 + self._width[0], 1.0 + self._width[1])[:, 0]
        zero = zh * 0.0
        return _columns(zw, zero, (w - 1.0) / 2.0 * (1.0 - zw), zero, zh,
                        (h - 1.0) / 2.0 * (1.0 - zh))

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}


class RandomTranslation(_AffineLayer):
    """Shifts each image by random fractions of its height and width (training only).

    Args:
        height_factor: float or `(lower, upper)`, fractions of the height.
        width_factor: float or `(lower, upper)`, fractions of the width.
        fill_mode, interpolation, seed, fill_value: as `RandomRotation`.
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect",
                 interpolation="bilinear", seed=None, fill_value=0.0, data_format=None,
                 **kwargs):
        super().__init__(fill_mode, interpolation, seed, fill_value, data_format, **kwargs)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = factor_range(height_factor, "height_factor", "RandomTranslation")
        self._width = factor_range(width_factor, "width_factor", "RandomTranslation")

    def transform(self, x, h, w):
        dy = self.draw(x, 1, 0, self._height[0] * h, self._height[1] * h)[:, 0]
        dx = self.draw(x, 1, 1, self._width[0] * w, self._width[1] * w)[:, 0]
        one, zero = dy * 0.0 + 1.0, dy * 0.0
        return _columns(one, zero, -dx, zero, one, -dy)

    def get_config(self):
        return {**super().get_config(), "height_factor": self.height_factor,
                "width_factor": self.width_factor}
