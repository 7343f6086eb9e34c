"""Spatial shape layers: ZeroPadding1D/2D/3D, Cropping1D/2D/3D, UpSampling1D/2D/3D (Keras 3
names, arguments, defaults and configs).

They lower to Pad, Slice, Reshape/Expand (nearest upsampling: each element repeated) and, for
bilinear upsampling, two matmuls with fixed interpolation matrices: exact, differentiable and
plain ONNX MatMul for every backend. The batch dim may be unknown; upsampling needs the other
dims known."""
from __future__ import annotations

import math

import numpy as np

from kgraph import ops
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.pooling import check_ndim, standardize_tuple
from kgraph.keras.layers.reshaping import standardize_data_format
from kgraph.ops.pool import constant

__all__ = ["Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D",
           "UpSampling3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"]

_ORDINALS = ("1st", "2nd", "3rd")


def standardize_pairs(value, dims, name):
    """An int, or `dims` entries each an int or an (int, int) pair, as `dims` pairs of
    non-negative ints (Keras' padding/cropping argument)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"`{name}` cannot be negative. Received: {name}={value!r}")
        return ((int(value), int(value)),) * dims
    if not hasattr(value, "__len__") or isinstance(value, str) or len(value) != dims:
        raise ValueError(f"`{name}` should be an int or a tuple of {dims} entries, each an int "
                         f"or a tuple of 2 ints. Received: {name}={value!r}")
    return tuple(standardize_tuple(v, 2, f"{_ORDINALS[i]} entry of {name}", allow_zero=True)
                 for i, v in enumerate(value))


def spatial_axes(data_format, dims):
    first = 1 if data_format == "channels_last" else 2
    return tuple(range(first, first + dims))


class ZeroPadding(Layer):
    """Pads the spatial dims with zeros: `padding` holds one (before, after) pair per dim."""

    def __init__(self, padding, dims, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        if dims == 1:
            self.padding = standardize_tuple(padding, 2, "padding", allow_zero=True)
        else:
            self.padding = standardize_pairs(padding, dims, "padding")
        self.input_spec_ndim = dims + 2

    def call(self, inputs):
        check_ndim(self, inputs, self.input_spec_ndim)
        pairs = (self.padding,) if isinstance(self.padding[0], int) else self.padding
        widths = [(0, 0)] * len(inputs.shape)
        for axis, pair in zip(spatial_axes(self.data_format, len(pairs)), pairs):
            widths[axis] = pair
        return ops.pad(inputs, widths)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding,
                "data_format": self.data_format}


class ZeroPadding1D(ZeroPadding):
    """Zero-padding for 1D input `(batch, steps, features)`.

    Args:
        padding: int (both ends) or tuple of 2 ints (start, end). Defaults to 1.
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> keras.layers.ZeroPadding1D((1, 2))(np.ones((1, 3, 2))).shape
        (1, 6, 2)
    """

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(padding, 1, data_format, **kwargs)


class ZeroPadding2D(ZeroPadding):
    """Zero-padding for 2D input `(batch, height, width, channels)`.

    Args:
        padding: int, tuple of 2 ints (symmetric height and width padding), or tuple of 2
            tuples of 2 ints `((top, bottom), (left, right))`. Defaults to (1, 1).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> keras.layers.ZeroPadding2D(((1, 0), (0, 2)))(np.ones((1, 3, 3, 1))).shape
        (1, 4, 5, 1)
    """

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(padding, 2, data_format, **kwargs)


class ZeroPadding3D(ZeroPadding):
    """Zero-padding for 3D input `(batch, dim1, dim2, dim3, channels)`.

    Args:
        padding: int, tuple of 3 ints, or tuple of 3 tuples of 2 ints (before, after) per
            spatial dim. Defaults to ((1, 1), (1, 1), (1, 1)).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> keras.layers.ZeroPadding3D(1)(np.ones((1, 2, 2, 2, 1))).shape
        (1, 4, 4, 4, 1)
    """

    def __init__(self, padding=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(padding, 3, data_format, **kwargs)


class Cropping(Layer):
    """Crops the spatial dims: `cropping` holds one (before, after) pair per dim."""

    def __init__(self, cropping, dims, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if dims == 1:
            self.cropping = standardize_tuple(cropping, 2, "cropping", allow_zero=True)
        else:
            self.data_format = standardize_data_format(data_format)
            self.cropping = standardize_pairs(cropping, dims, "cropping")
        self.input_spec_ndim = dims + 2

    def call(self, inputs):
        check_ndim(self, inputs, self.input_spec_ndim)
        pairs = (self.cropping,) if isinstance(self.cropping[0], int) else self.cropping
        axes = spatial_axes(getattr(self, "data_format", "channels_last"), len(pairs))
        for axis, (lo, hi) in zip(axes, pairs):
            if inputs.shape[axis] is not None and lo + hi >= inputs.shape[axis]:
                raise ValueError(f"Layer {self.name!r}: values in `cropping` must be smaller "
                                 "than the corresponding spatial dim of the input. Received: "
                                 f"inputs.shape={tuple(inputs.shape)}, "
                                 f"cropping={self.cropping}")
        ends = tuple(-hi if hi else 2**62 for _, hi in pairs)
        return ops.apply("Slice", inputs, starts=tuple(lo for lo, _ in pairs), ends=ends,
                         axes=axes)

    def get_config(self):
        config = {**super().get_config(), "cropping": self.cropping}
        if hasattr(self, "data_format"):
            config["data_format"] = self.data_format
        return config


class Cropping1D(Cropping):
    """Crops along the time dim of `(batch, steps, features)` input.

    Args:
        cropping: int (both ends) or tuple of 2 ints (start, end). Defaults to (1, 1).

    Example:
        >>> keras.layers.Cropping1D((1, 2))(np.ones((1, 6, 2))).shape
        (1, 3, 2)
    """

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(cropping, 1, **kwargs)


class Cropping2D(Cropping):
    """Crops the spatial dims of 2D input `(batch, height, width, channels)`.

    Args:
        cropping: int, tuple of 2 ints (symmetric height and width), or tuple of 2 tuples of
            2 ints `((top, bottom), (left, right))`. Defaults to ((0, 0), (0, 0)).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> keras.layers.Cropping2D(((1, 0), (1, 2)))(np.ones((1, 4, 5, 3))).shape
        (1, 3, 2, 3)
    """

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping, 2, data_format, **kwargs)


class Cropping3D(Cropping):
    """Crops the spatial dims of 3D input `(batch, dim1, dim2, dim3, channels)`.

    Args:
        cropping: int, tuple of 3 ints, or tuple of 3 tuples of 2 ints (before, after) per
            spatial dim. Defaults to ((1, 1), (1, 1), (1, 1)).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> keras.layers.Cropping3D(1)(np.ones((1, 4, 4, 4, 2))).shape
        (1, 2, 2, 2, 2)
    """

    def __init__(self, cropping=((1, 1), (1, 1), (1, 1)), data_format=None, **kwargs):
        super().__init__(cropping, 3, data_format, **kwargs)


# -- upsampling -------------------------------------------------------------------------------
def repeat(x, repeats, axis):
    """Each element of `x` repeated `repeats` times along `axis` (numpy `repeat`): copies
    joined along a new axis, then merged into `axis`. Non-batch dims unknown while tracing
    (`Input(shape=[None, None, c])`) are read at run time for the merge.
    (Not an Expand: TVM's ONNX importer cannot Expand a tensor with a dynamic batch dim to a
    constant shape.)"""
    shape = list(x.shape)
    if repeats == 1:
        return x
    column = ops.expand_dims(x, axis + 1)
    joined = ops.concatenate([column] * repeats, axis + 1)
    if any(d is None for d in shape[1:]):
        from kgraph.ops.symbolic_shape import shape as run_time_shape

        dims = list(run_time_shape(x))
        dims[axis] = dims[axis] * repeats
        return ops.reshape(joined, dims)
    shape[axis] *= repeats
    return ops.reshape_to(joined, shape)


def bilinear_matrix(size, factor):
    """(size * factor, size) matrix of TF/JAX bilinear resizing with half-pixel centers and
    no antialiasing (Keras `ops.image.resize(..., "bilinear")`): output i samples the input
    at (i + 0.5) / factor - 0.5, clamped to the edge samples."""
    matrix = np.zeros((size * factor, size), np.float64)
    for i in range(size * factor):
        source = (i + 0.5) / factor - 0.5
        low = math.floor(source)
        fraction = source - low
        matrix[i, min(max(low, 0), size - 1)] += 1.0 - fraction
        matrix[i, min(max(low + 1, 0), size - 1)] += fraction
    return matrix


class UpSampling1D(Layer):
    """Repeats each time step `size` times: `(batch, steps, features)` to
    `(batch, steps * size, features)`.

    Args:
        size: positive int, the upsampling factor. Defaults to 2.

    Example:
        >>> keras.layers.UpSampling1D(3)(np.arange(2.0).reshape(1, 2, 1))[0, :, 0]
        array([0., 0., 0., 1., 1., 1.], dtype=float32)
    """

    def __init__(self, size=2, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
            raise TypeError(f"Expected an integer value for `size`. Received: size={size!r}")
        if size <= 0:
            raise ValueError(f"Argument `size` should be a positive integer. Received: "
                             f"size={size!r}")
        self.size = int(size)
        self.input_spec_ndim = 3

    def call(self, inputs):
        check_ndim(self, inputs, 3)
        return repeat(inputs, self.size, 1)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


class UpSampling2D(Layer):
    """Upsamples rows and columns by `size`: nearest (each pixel repeated) or bilinear
    (as Keras `ops.image.resize`: half-pixel centers, edges clamped, no antialiasing).

    Args:
        size: int or tuple of 2 ints, the row and column factors. Defaults to (2, 2).
        data_format: `"channels_last"` (default) or `"channels_first"`.
        interpolation: `"nearest"` (default) or `"bilinear"`, case-insensitive.

    Example:
        >>> keras.layers.UpSampling2D(interpolation="bilinear")(np.ones((1, 2, 3, 1))).shape
        (1, 4, 6, 1)
    """

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.size = standardize_tuple(size, 2, "size")
        if not isinstance(interpolation, str) or \
                interpolation.lower() not in ("nearest", "bilinear"):
            raise ValueError("`interpolation` must be 'nearest' or 'bilinear' (the other "
                             "resize methods of Keras are not supported). Received: "
                             f"interpolation={interpolation!r}")
        self.interpolation = interpolation.lower()
        self.input_spec_ndim = 4

    def call(self, inputs):
        check_ndim(self, inputs, 4)
        rows, cols = spatial_axes(self.data_format, 2)
        if self.interpolation == "nearest":
            return repeat(repeat(inputs, self.size[0], rows), self.size[1], cols)
        if any(inputs.shape[a] is None for a in (rows, cols)):
            raise ValueError(f"Bilinear upsampling needs known spatial dims. Received: "
                             f"shape={tuple(inputs.shape)}")
        x = inputs if self.data_format == "channels_first" else \
            ops.transpose(inputs, (0, 3, 1, 2))
        dtype = np.dtype(inputs.dtype)
        along_rows = bilinear_matrix(inputs.shape[rows], self.size[0]).astype(dtype)
        along_cols = bilinear_matrix(inputs.shape[cols], self.size[1]).T.astype(dtype)
        y = ops.matmul(ops.matmul(constant(along_rows), x), constant(along_cols))
        return y if self.data_format == "channels_first" else ops.transpose(y, (0, 2, 3, 1))

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format,
                "interpolation": self.interpolation}


class UpSampling3D(Layer):
    """Repeats each element `size` times along each of the 3 spatial dims.

    Args:
        size: int or tuple of 3 ints, the factors. Defaults to (2, 2, 2).
        data_format: `"channels_last"` (default) or `"channels_first"`.

    Example:
        >>> keras.layers.UpSampling3D((1, 2, 3))(np.ones((1, 2, 2, 2, 1))).shape
        (1, 2, 4, 6, 1)
    """

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.size = standardize_tuple(size, 3, "size")
        self.input_spec_ndim = 5

    def call(self, inputs):
        check_ndim(self, inputs, 5)
        for axis, factor in zip(spatial_axes(self.data_format, 3), self.size):
            inputs = repeat(inputs, factor, axis)
        return inputs

    def get_config(self):
        return {**super().get_config(), "size": self.size, "data_format": self.data_format}
