"""Adaptive pooling layers: `AdaptiveAveragePooling1D/2D/3D` and `AdaptiveMaxPooling1D/2D/3D`
(Keras 3 names, arguments, configs). They pool to a fixed `output_size` whatever the input's
spatial size, with PyTorch's windows as Keras (`keras.ops.adaptive_average_pool` /
`adaptive_max_pool`: output `i` of an axis of size `n` pools `[floor(i n / m), ceil((i+1) n / m))`).
Spatial sizes must be known while tracing; the batch may be unknown."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.reshaping import standardize_data_format

__all__ = ["AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
           "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D"]

_AXES_NAMES = {1: "integer", 2: "(height, width)", 3: "(depth, height, width)"}


def _output_size(value, dims):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return (int(value),) * dims
    if isinstance(value, (tuple, list)) and len(value) == dims:
        return tuple(value)
    if dims == 1 and isinstance(value, (tuple, list)):
        raise ValueError(f"For 1D input, `output_size` tuple must have length 1. "
                         f"Received: {value}")
    raise TypeError(f"`output_size` must be an integer or {_AXES_NAMES[dims]} tuple. "
                    f"Received: {value} of type {type(value)}")


class _AdaptivePooling(Layer):
    """Pools `(batch, *spatial, channels)` (or channels first) to `output_size` spatial dims.

    Args:
        output_size: int or tuple of `dims` ints, the spatial output size.
        data_format: `"channels_last"` (default from the config) or `"channels_first"`.
    """

    dims = 0
    pool = None

    def __init__(self, output_size, data_format=None, **kwargs):
        output_size = _output_size(output_size, self.dims)
        super().__init__(**kwargs)
        self.output_size = output_size
        self.data_format = standardize_data_format(data_format)

    def call(self, inputs):
        return self.pool(inputs, self.output_size, data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_last":
            return (input_shape[0], *self.output_size, input_shape[-1])
        return (input_shape[0], input_shape[1], *self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size,
                "data_format": self.data_format}


class AdaptiveAveragePooling1D(_AdaptivePooling):
    """Adaptive average pooling of `(batch, steps, channels)` to `output_size` steps.

    Example:
        >>> AdaptiveAveragePooling1D(4)(np.ones((2, 10, 3), "float32")).shape  # (2, 4, 3)
    """
    dims, pool = 1, staticmethod(ops.adaptive_average_pool)


class AdaptiveAveragePooling2D(_AdaptivePooling):
    """Adaptive average pooling of images to `output_size` `(height, width)`.

    Example:
        >>> AdaptiveAveragePooling2D(2)(np.ones((1, 7, 5, 3), "float32")).shape  # (1, 2, 2, 3)
    """
    dims, pool = 2, staticmethod(ops.adaptive_average_pool)


class AdaptiveAveragePooling3D(_AdaptivePooling):
    """Adaptive average pooling of volumes to `output_size` `(depth, height, width)`."""
    dims, pool = 3, staticmethod(ops.adaptive_average_pool)


class AdaptiveMaxPooling1D(_AdaptivePooling):
    """Adaptive max pooling of `(batch, steps, channels)` to `output_size` steps."""
    dims, pool = 1, staticmethod(ops.adaptive_max_pool)


class AdaptiveMaxPooling2D(_AdaptivePooling):
    """Adaptive max pooling of images to `output_size` `(height, width)`."""
    dims, pool = 2, staticmethod(ops.adaptive_max_pool)


class AdaptiveMaxPooling3D(_AdaptivePooling):
    """Adaptive max pooling of volumes to `output_size` `(depth, height, width)`."""
    dims, pool = 3, staticmethod(ops.adaptive_max_pool)
