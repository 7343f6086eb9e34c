"""Deterministic image preprocessing inside the graph: `Resizing` and `CenterCrop` (Keras 3
names, arguments and numerics: jax.image.resize half-pixel bilinear/nearest, the crop/pad
boxes of Keras' `crop_to_aspect_ratio` / `pad_to_aspect_ratio`)."""
from __future__ import annotations

from kgraph import config as kconfig
from kgraph import ops
from kgraph.keras.layers.base import Layer

__all__ = ["CenterCrop", "Resizing"]


def spatial_axes(rank, data_format):
    """(height axis, width axis) of a rank-3 (one image) or rank-4 (batch) input."""
    base = rank - 3
    return (base + 1, base + 2) if data_format == "channels_first" else (base, base + 1)


def sized_shape(input_shape, height, width, data_format):
    """`input_shape` with its spatial dims set to (height, width)."""
    shape = list(input_shape)
    axes = spatial_axes(len(shape), data_format)
    shape[axes[0]], shape[axes[1]] = height, width
    return tuple(shape)


def slice_box(x, axes, starts, sizes):
    """`x` cut to `sizes` from `starts` along the spatial `axes` (static slices)."""
    index = [slice(None)] * len(x.shape)
    for axis, start, size in zip(axes, starts, sizes):
        index[axis] = slice(int(start), int(start) + int(size))
    return x[tuple(index)]


def crop_to_aspect(x, axes, height, width):
    """The largest centred box of the target aspect ratio (Keras' `crop_to_aspect_ratio`)."""
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    target = width / height
    crop_h = max(min(h, int(float(w / target))), 1)
    crop_w = max(min(w, int(float(h * target))), 1)
    return slice_box(x, axes, (int(float(h - crop_h) / 2), int(float(w - crop_w) / 2)),
                     (crop_h, crop_w))


def pad_to_aspect(x, axes, height, width, fill_value):
    """`x` centred in a box of the target aspect ratio, padded with `fill_value`."""
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    target = width / height
    pad_h, pad_w = max(h, int(float(w / target))), max(w, int(float(h * target)))
    top, left = int(float(pad_h - h) / 2), int(float(pad_w - w) / 2)
    pads = [(0, 0)] * len(x.shape)
    pads[axes[0]], pads[axes[1]] = (top, pad_h - h - top), (left, pad_w - w - left)
    return ops.pad(x, pads, constant_values=fill_value)


def _data_format(value):
    return value or kconfig.image_data_format()


class Resizing(Layer):
    """Resizes images to `(height, width)`.

    Args:
        height, width: output size.
        interpolation: `"bilinear"` (default) or `"nearest"`.
        crop_to_aspect_ratio: first crop the largest centred box of the target aspect ratio.
        pad_to_aspect_ratio: first pad to the target aspect ratio with `fill_value`.
        fill_mode, fill_value: padding of `pad_to_aspect_ratio` (`"constant"` only).
        antialias: widen the bilinear kernel when downsampling (every input pixel counts).
        data_format: `"channels_last"` or `"channels_first"`.

    Example:
        >>> Resizing(2, 2)(np.ones((1, 4, 4, 3), "float32")).shape  # (1, 2, 2, 3)
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False,
                 pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
                 antialias=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(f"Resizing: kgraph supports interpolation='bilinear' or "
                             f"'nearest'. Received: interpolation={interpolation!r}")
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Only one of `crop_to_aspect_ratio` and `pad_to_aspect_ratio` "
                             "can be True.")
        self.height, self.width = int(height), int(width)
        self.interpolation, self.antialias = interpolation, antialias
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = \
            crop_to_aspect_ratio, pad_to_aspect_ratio
        self.fill_mode, self.fill_value = fill_mode, fill_value
        self.data_format = _data_format(data_format)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        axes = spatial_axes(len(x.shape), self.data_format)
        if self.crop_to_aspect_ratio:
            x = crop_to_aspect(x, axes, self.height, self.width)
        elif self.pad_to_aspect_ratio:
            x = pad_to_aspect(x, axes, self.height, self.width, self.fill_value)
        return ops.image.resize(x, (self.height, self.width), interpolation=self.interpolation,
                                antialias=self.antialias, data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        return sized_shape(input_shape, self.height, self.width, self.data_format)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "interpolation": self.interpolation,
                "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
                "pad_to_aspect_ratio": self.pad_to_aspect_ratio, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "antialias": self.antialias,
                "data_format": self.data_format}


class CenterCrop(Layer):
    """Crops the central `(height, width)` box of images; an image smaller than that is
    resized instead (after cropping to the target aspect ratio), as Keras does.

    Args:
        height, width: output size.
        data_format: `"channels_last"` or `"channels_first"`.

    Example:
        >>> CenterCrop(2, 2)(np.ones((1, 4, 4, 3), "float32")).shape  # (1, 2, 2, 3)
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = int(height), int(width)
        self.data_format = _data_format(data_format)

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        axes = spatial_axes(len(x.shape), self.data_format)
        h, w = x.shape[axes[0]], x.shape[axes[1]]
        if h is None or w is None:
            raise ValueError(f"CenterCrop needs known image sizes. Received: input shape "
                             f"{tuple(x.shape)}")
        dh, dw = h - self.height, w - self.width
        if dh >= 0 and dw >= 0:
            return slice_box(x, axes, (int(dh / 2), int(dw / 2)), (self.height, self.width))
        x = crop_to_aspect(x, axes, self.height, self.width)
        return ops.image.resize(x, (self.height, self.width), data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        return sized_shape(input_shape, self.height, self.width, self.data_format)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "data_format": self.data_format}
