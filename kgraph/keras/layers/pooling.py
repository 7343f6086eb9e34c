"""Pooling layers: MaxPooling1D/2D/3D, AveragePooling1D/2D/3D and the global poolings
(Keras 3 names, arguments, defaults and configs).

Windowed pooling lowers to the MaxPool/AveragePool primitives of kgraph/ops/pool.py, which keep
the layer's data format (channels-last data is transposed only inside the ONNX emission).
Global pooling is a reduction over the spatial axes. Spatial dims of windowed pooling must be
known; the batch dim may be unknown."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.layers.base import IncompatibleInputError, Layer
from kgraph.keras.layers.reshaping import standardize_data_format
from kgraph.ops.pool import average_pool, max_pool

__all__ = ["AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "AvgPool1D", "AvgPool2D",
           "AvgPool3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
           "GlobalAveragePooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D",
           "GlobalMaxPool1D", "GlobalMaxPool2D", "GlobalMaxPool3D", "GlobalMaxPooling1D",
           "GlobalMaxPooling2D", "GlobalMaxPooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D",
           "MaxPooling1D", "MaxPooling2D", "MaxPooling3D"]


def standardize_tuple(value, n, name, allow_zero=False):
    """`value` (an int or n ints) as a tuple of n ints, >= 0 with `allow_zero`, else > 0."""
    values = (value,) * n if isinstance(value, (int, np.integer)) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   for v in values):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. "
                         f"Received: {name}={value!r}")
    if any(v < 0 or (v == 0 and not allow_zero) for v in values):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers "
                         f"{'>= 0' if allow_zero else '> 0'}. Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def check_ndim(layer, inputs, ndim):
    if len(inputs.shape) != ndim:
        raise IncompatibleInputError(
            f"Input 0 of layer {layer.name!r} is incompatible with the layer: "
            f"expected ndim={ndim}, found ndim={len(inputs.shape)}. Full shape "
            f"received: {tuple(inputs.shape)}")


class BasePooling(Layer):
    """Windowed max or average pooling over `pool_dimensions` spatial dims.

    The window of `pool_size` slides by `strides` over the spatial dims, for each channel
    separately. Output size per spatial dim: `floor((input - pool_size) / strides) + 1` with
    `"valid"` padding, `ceil(input / strides)` with `"same"`.

    Args:
        pool_size: int or tuple of ints (one per spatial dim), the window size.
        strides: int, tuple of ints, or None (defaults to `pool_size`).
        padding: `"valid"` (no padding) or `"same"` (pads evenly, the odd element at the
            end; an average divides by the number of unpadded elements), case-insensitive.
        data_format: `"channels_last"` (`(batch, *spatial, channels)`, the default from the
            config) or `"channels_first"` (`(batch, channels, *spatial)`).
    """

    def __init__(self, pool_size, strides, pool_dimensions, pool_mode="max", padding="valid",
                 data_format=None, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size = standardize_tuple(pool_size, pool_dimensions, "pool_size")
        strides = pool_size if strides is None else strides
        self.strides = standardize_tuple(strides, pool_dimensions, "strides")
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError("The `padding` argument must be one of 'valid', 'same'. "
                             f"Received: padding={padding!r}")
        if pool_mode not in ("max", "average"):
            raise ValueError("`pool_mode` must be either 'max' or 'average'. "
                             f"Received: pool_mode={pool_mode!r}")
        self.pool_mode = pool_mode
        self.padding = padding  # kept as given: Keras writes it to the config unchanged
        self.data_format = standardize_data_format(data_format)
        self.input_spec_ndim = pool_dimensions + 2

    def call(self, inputs):
        check_ndim(self, inputs, self.input_spec_ndim)
        pool = max_pool if self.pool_mode == "max" else average_pool
        return pool(inputs, self.pool_size, self.strides, self.padding, self.data_format)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "padding": self.padding,
                "strides": self.strides, "data_format": self.data_format}


class MaxPooling1D(BasePooling):
    """Max pooling for 1D temporal data: `(batch, steps, features)`. Arguments as
    `BasePooling`; `pool_size` defaults to 2.

    Example:
        >>> keras.layers.MaxPooling1D(2, strides=1)(np.zeros((1, 5, 3))).shape
        (1, 4, 3)
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, 1, "max", padding, data_format, name, **kwargs)


class MaxPooling2D(BasePooling):
    """Max pooling for 2D spatial data: `(batch, height, width, channels)`. Arguments as
    `BasePooling`; `pool_size` defaults to (2, 2).

    Example:
        >>> keras.layers.MaxPooling2D()(np.zeros((1, 4, 5, 3))).shape
        (1, 2, 2, 3)
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, 2, "max", padding, data_format, name, **kwargs)


class MaxPooling3D(BasePooling):
    """Max pooling for 3D data: `(batch, dim1, dim2, dim3, channels)`. Arguments as
    `BasePooling`; `pool_size` defaults to (2, 2, 2).

    Example:
        >>> keras.layers.MaxPooling3D(padding="same")(np.zeros((1, 3, 4, 5, 2))).shape
        (1, 2, 2, 3, 2)
    """

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, 3, "max", padding, data_format, name, **kwargs)


class AveragePooling1D(BasePooling):
    """Average pooling for 1D temporal data: `(batch, steps, features)`. Arguments as
    `BasePooling`; `pool_size` defaults to 2, as in tf.keras 2 (Keras 3 requires it;
    the keras.io KerasTuner custom-tuner guide writes `AveragePooling2D()`).

    Example:
        >>> keras.layers.AveragePooling1D(2, padding="same")(np.zeros((1, 5, 3))).shape
        (1, 3, 3)
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, 1, "average", padding, data_format, name,
                         **kwargs)


class AveragePooling2D(BasePooling):
    """Average pooling for 2D spatial data: `(batch, height, width, channels)`. Arguments as
    `BasePooling`; `pool_size` defaults to (2, 2), as in tf.keras 2 (Keras 3 requires it;
    the keras.io KerasTuner custom-tuner guide writes `AveragePooling2D()`).

    Example:
        >>> keras.layers.AveragePooling2D(2)(np.zeros((1, 4, 4, 3))).shape
        (1, 2, 2, 3)
    """

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, 2, "average", padding, data_format, name,
                         **kwargs)


class AveragePooling3D(BasePooling):
    """Average pooling for 3D data: `(batch, dim1, dim2, dim3, channels)`. Arguments as
    `BasePooling`; `pool_size` defaults to (2, 2, 2), as in tf.keras 2 (Keras 3 requires it;
    the keras.io KerasTuner custom-tuner guide writes `AveragePooling2D()`).

    Example:
        >>> keras.layers.AveragePooling3D(2)(np.zeros((1, 4, 4, 4, 3))).shape
        (1, 2, 2, 2, 3)
    """

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(pool_size, strides, 3, "average", padding, data_format, name,
                         **kwargs)


class BaseGlobalPooling(Layer):
    """The max or the average over every spatial dim.

    Args:
        data_format: `"channels_last"` (default from the config) or `"channels_first"`.
        keepdims: keep the spatial dims with length 1 (`(batch, 1, ..., channels)`) instead
            of returning `(batch, channels)`. Defaults to False.
    """

    def __init__(self, pool_dimensions, pool_mode, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format)
        self.keepdims = keepdims
        self.pool_mode = pool_mode
        self.input_spec_ndim = pool_dimensions + 2

    def spatial_axes(self):
        first = 1 if self.data_format == "channels_last" else 2
        return tuple(range(first, first + self.input_spec_ndim - 2))

    def call(self, inputs):
        check_ndim(self, inputs, self.input_spec_ndim)
        reduce = ops.max if self.pool_mode == "max" else ops.mean
        return reduce(inputs, axis=self.spatial_axes(), keepdims=self.keepdims)

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format,
                "keepdims": self.keepdims}


class GlobalMaxPooling1D(BaseGlobalPooling):
    """Global max pooling for 1D temporal data. Arguments as `BaseGlobalPooling`.

    Example:
        >>> keras.layers.GlobalMaxPooling1D()(np.zeros((2, 5, 3))).shape
        (2, 3)
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, "max", data_format, keepdims, **kwargs)


class GlobalMaxPooling2D(BaseGlobalPooling):
    """Global max pooling for 2D spatial data. Arguments as `BaseGlobalPooling`.

    Example:
        >>> keras.layers.GlobalMaxPooling2D(keepdims=True)(np.zeros((2, 4, 5, 3))).shape
        (2, 1, 1, 3)
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "max", data_format, keepdims, **kwargs)


class GlobalMaxPooling3D(BaseGlobalPooling):
    """Global max pooling for 3D data. Arguments as `BaseGlobalPooling`.

    Example:
        >>> keras.layers.GlobalMaxPooling3D()(np.zeros((2, 3, 4, 5, 6))).shape
        (2, 6)
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(3, "max", data_format, keepdims, **kwargs)


class GlobalAveragePooling1D(BaseGlobalPooling):
    """Global average pooling for 1D temporal data. Arguments as `BaseGlobalPooling`.

    Call arguments:
        mask: optional `(batch, steps)` boolean mask; masked steps are left out of the
            average (Keras semantics). The output carries no mask.

    Example:
        >>> keras.layers.GlobalAveragePooling1D()(np.ones((2, 5, 3))).shape
        (2, 3)
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(1, "average", data_format, keepdims, **kwargs)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        check_ndim(self, inputs, 3)
        (steps,) = self.spatial_axes()
        if mask is None:
            return ops.mean(inputs, axis=steps, keepdims=self.keepdims)
        keep = ops.expand_dims(ops.cast(mask, "bool"), 2 if steps == 1 else 1)
        total = ops.sum(ops.where(keep, inputs, 0.0), axis=steps, keepdims=self.keepdims)
        return total / ops.sum(ops.cast(keep, inputs.dtype), axis=steps, keepdims=self.keepdims)

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalAveragePooling2D(BaseGlobalPooling):
    """Global average pooling for 2D spatial data. Arguments as `BaseGlobalPooling`.

    Example:
        >>> keras.layers.GlobalAveragePooling2D()(np.zeros((2, 4, 5, 3))).shape
        (2, 3)
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(2, "average", data_format, keepdims, **kwargs)


class GlobalAveragePooling3D(BaseGlobalPooling):
    """Global average pooling for 3D data. Arguments as `BaseGlobalPooling`.

    Example:
        >>> keras.layers.GlobalAveragePooling3D()(np.zeros((2, 3, 4, 5, 6))).shape
        (2, 6)
    """

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(3, "average", data_format, keepdims, **kwargs)


MaxPool1D, MaxPool2D, MaxPool3D = MaxPooling1D, MaxPooling2D, MaxPooling3D
AvgPool1D, AvgPool2D, AvgPool3D = AveragePooling1D, AveragePooling2D, AveragePooling3D
GlobalMaxPool1D, GlobalMaxPool2D, GlobalMaxPool3D = (GlobalMaxPooling1D, GlobalMaxPooling2D,
                                                     GlobalMaxPooling3D)
GlobalAvgPool1D, GlobalAvgPool2D, GlobalAvgPool3D = (GlobalAveragePooling1D,
                                                     GlobalAveragePooling2D,
                                                     GlobalAveragePooling3D)
