"""Preprocessing layers: Rescaling and Normalization (Keras 3 names, arguments, weights).

EfficientNet starts with both: `Rescaling(1/255)` then `Normalization(axis=channels)`, whose
`mean`, `variance` and `count` weights come from the Keras weight file.
"""
from __future__ import annotations

import numbers

import numpy as np

from kgraph import config as kconfig
from kgraph import ops
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.preprocessing.adapt_data import iterate_batches

__all__ = ["Normalization", "Rescaling"]


def _numbers(layer, arg, value):
    """A float or a list of floats (one per channel), as Keras accepts them."""
    values = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
               for v in np.asarray(values, dtype=object).ravel()):
        raise ValueError(f"`{arg}` of a {layer} layer must be a number or a list of numbers. "
                         f"Received: {arg}={value!r}")
    return value if isinstance(value, numbers.Real) else [float(v) for v in values]


def _channel_shaped(value, rank):
    """`value` as a float array that broadcasts along the channel axis of a rank-`rank` input
    (the last axis, or axis 1 under channels_first)."""
    array = np.asarray(value, dtype=kconfig.floatx())
    if array.ndim == 0 or kconfig.image_data_format() == "channels_last" or rank < 3:
        return array
    return array.reshape((-1,) + (1,) * (rank - 2))


class Rescaling(Layer):
    """Multiplies inputs by `scale` and adds `offset`: `inputs * scale + offset`.

    Args:
        scale: float, or a list of floats (one per channel).
        offset: float, or a list of floats (one per channel).

    Example:
        >>> Rescaling(1 / 127.5, offset=-1)(np.array([[0.0, 255.0]]))  # [[-1., 1.]]
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = _numbers("Rescaling", "scale", scale)
        self.offset = _numbers("Rescaling", "offset", offset)

    def call(self, inputs):
        rank = len(inputs.shape)
        inputs = ops.cast(inputs, kconfig.floatx())
        return inputs * _channel_shaped(self.scale, rank) + _channel_shaped(self.offset, rank)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


class Normalization(Layer):
    """Shifts and scales inputs to zero mean and unit variance per index of `axis`:
    `(inputs - mean) / max(sqrt(variance), epsilon)` (`invert=True` undoes it).

    The statistics are either given (`mean` and `variance`) or weights (`mean`, `variance` and
    Keras' legacy `count`, all non-trainable) set by `adapt(data)` or loaded from a file.

    Args:
        axis: int, tuple of ints or None; the axes that keep their own statistics (None: one
            scalar mean and variance for everything).
        mean, variance: optional fixed statistics, broadcastable to the kept axes.
        invert: apply the inverse transformation.

    Example:
        >>> layer = Normalization(axis=None)
        >>> layer.adapt(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
        >>> layer(np.array([1.0, 3.0]))  # [-1.414, 0.]
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = () if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        if not all(isinstance(a, int) and not isinstance(a, bool) for a in self.axis):
            raise TypeError(f"`axis` of a Normalization layer must be an int, a tuple of ints "
                            f"or None. Received: axis={axis!r}")
        if (mean is None) != (variance is None):
            raise ValueError(f"Normalization needs both `mean` and `variance` or neither. "
                             f"Received: mean={mean!r}, variance={variance!r}")
        self.input_mean, self.input_variance, self.invert = mean, variance, bool(invert)

    def build(self, input_shape):
        rank = len(input_shape)
        for a in self.axis:
            if not -rank <= a < rank or input_shape[a] is None:
                raise ValueError(f"Each `axis` of a Normalization layer must be a known axis of "
                                 f"the input. Received: axis={self.axis}, "
                                 f"input_shape={tuple(input_shape)}")
        self._keep = tuple(sorted(a % rank for a in self.axis))
        self._reduce = tuple(d for d in range(rank) if d not in self._keep)
        self._broadcast = tuple(input_shape[d] if d in self._keep else 1 for d in range(rank))
        shape = tuple(input_shape[d] for d in self._keep)
        if self.input_mean is None:
            self.mean = self.add_weight(shape=shape, name="mean", initializer="zeros",
                                        trainable=False)
            self.variance = self.add_weight(shape=shape, name="variance", initializer="ones",
                                            trainable=False)
            self.count = self.add_weight(shape=(), name="count", dtype="int64",
                                         initializer="zeros", trainable=False)
        self.built = True

    def adapt(self, data):
        """Set `mean` and `variance` from `data`: a numpy array, a Dataset (or PyDataset, or
        any iterable) of batches. Batch statistics are merged exactly (Chan et al.), so a
        Dataset gives the statistics of the whole sample, as Keras' adapt does."""
        count, mean, var = 0, 0.0, 0.0
        for batch in iterate_batches(data):
            batch = np.asarray(batch, dtype=np.float64)
            if not self.built:
                self.build(batch.shape)
            n = int(np.prod([batch.shape[d] for d in self._reduce]))
            if n == 0:
                continue
            b_mean, b_var = np.mean(batch, axis=self._reduce), np.var(batch, axis=self._reduce)
            total = count + n
            delta = b_mean - mean
            var = (var * count + b_var * n + delta ** 2 * count * n / total) / total
            mean, count = mean + delta * n / total, total
        if count == 0:
            raise ValueError(f"Normalization.adapt() received no data. Received: data={data!r}")
        self.mean.assign(np.broadcast_to(mean, self.mean.shape).astype(self.mean.dtype))
        self.variance.assign(np.broadcast_to(var, self.variance.shape).astype(
            self.variance.dtype))
        self.count.assign(np.array(count, dtype="int64"))

    def _statistics(self):
        if self.input_mean is not None:
            return tuple(np.broadcast_to(np.asarray(v, kconfig.floatx()), self._broadcast)
                         for v in (self.input_mean, self.input_variance))
        return ops.reshape(self.mean, self._broadcast), ops.reshape(self.variance,
                                                                    self._broadcast)

    def call(self, inputs):
        inputs = ops.cast(inputs, kconfig.floatx())
        mean, variance = self._statistics()
        spread = ops.maximum(ops.sqrt(variance), kconfig.epsilon())
        return mean + inputs * spread if self.invert else (inputs - mean) / spread

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        def plain(v):
            return np.asarray(v).tolist() if v is not None else None

        axis = None if self.axis == () else list(self.axis) if len(self.axis) > 1 else \
            self.axis[0]
        return {**super().get_config(), "axis": axis, "mean": plain(self.input_mean),
                "variance": plain(self.input_variance), "invert": self.invert}
