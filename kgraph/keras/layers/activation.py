"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax (Keras 3 names, arguments, configs)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras import activations, constraints, initializers, regularizers
from kgraph.keras.layers.base import Layer

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]


def _number(layer, arg, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{arg}` of a {layer} layer must be a number. "
                         f"Received: {arg}={value!r}")
    return float(value)


def _non_negative(layer, arg, value, allow_none=False):
    value = _number(layer, arg, value, allow_none)
    if value is not None and value < 0:
        raise ValueError(f"{arg} of a {layer} layer cannot be a negative value. "
                         f"Received: {arg}={value!r}")
    return value


class ReLU(Layer):
    """Rectified linear unit: `max_value` caps the output, `negative_slope` scales inputs below
    `threshold`, and inputs above `threshold` pass through.

    Args:
        max_value: non-negative float or None (no cap).
        negative_slope: non-negative float, the slope below the threshold.
        threshold: non-negative float; inputs at or below it are not passed through.

    Example:
        >>> ReLU(max_value=1.0)(np.array([[-1.0, 0.5, 2.0]]))
        array([[0. , 0.5, 1. ]], dtype=float32)
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _non_negative("ReLU", "max_value", max_value, allow_none=True)
        self.negative_slope = _non_negative("ReLU", "negative_slope", negative_slope)
        self.threshold = _non_negative("ReLU", "threshold", threshold)
        self.supports_masking = True

    def call(self, inputs):
        return activations.relu(inputs, negative_slope=self.negative_slope,
                                max_value=self.max_value, threshold=self.threshold)

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}


class LeakyReLU(Layer):
    """`x` for `x >= 0`, `negative_slope * x` below.

    Args:
        negative_slope: non-negative float (default 0.3). `alpha` is accepted as its old name.
    """

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:  # the Keras 2 name
            negative_slope = kwargs.pop("alpha")
        super().__init__(**kwargs)
        if negative_slope is None:
            raise ValueError("The negative_slope value of a LeakyReLU layer cannot be None. "
                             "Expected a float. Received: negative_slope=None")
        self.negative_slope = _non_negative("LeakyReLU", "negative_slope", negative_slope)
        self.supports_masking = True

    def call(self, inputs):
        return activations.leaky_relu(inputs, negative_slope=self.negative_slope)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """Exponential linear unit: `x` for `x > 0`, `alpha * (exp(x) - 1)` below.

    Args:
        alpha: float (default 1.0), the value approached for large negative inputs is -alpha.
    """

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = _number("ELU", "alpha", alpha)
        self.supports_masking = True

    def call(self, inputs):
        return activations.elu(inputs, alpha=self.alpha)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


def _large_negative(dtype):
    return -3e4 if dtype == "float16" else -1e9


class Softmax(Layer):
    """Softmax over `axis` (an int or a tuple of ints). A `mask` (True or 1 = keep) gives
    masked positions probability 0.

    Args:
        axis: int or tuple of ints (default -1).

    Example:
        >>> Softmax()(np.array([[0.0, np.log(3.0)]]))
        array([[0.25, 0.75]], dtype=float32)
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        items = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        if not items or any(isinstance(a, bool) or not isinstance(a, (int, np.integer))
                            for a in items):
            raise ValueError("`axis` of a Softmax layer must be an integer or a non-empty tuple "
                             f"of integers. Received: axis={axis!r}")
        self.axis = tuple(int(a) for a in axis) if isinstance(axis, (list, tuple)) else int(axis)
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is not None:
            keep = ops.cast(mask, inputs.dtype)
            inputs = inputs + (1.0 - keep) * _large_negative(inputs.dtype)
        if isinstance(self.axis, tuple):
            outputs = ops.exp(inputs - ops.logsumexp(inputs, axis=self.axis, keepdims=True))
        else:
            outputs = activations.softmax(inputs, axis=self.axis)
        if mask is not None:
            outputs = outputs * keep
        return outputs

    def get_config(self):
        axis = list(self.axis) if isinstance(self.axis, tuple) else self.axis
        return {**super().get_config(), "axis": axis}


class PReLU(Layer):
    """Parametric ReLU: `x` for `x >= 0`, `alpha * x` below, with `alpha` a learned weight
    shaped like the input (without the batch axis; `shared_axes` get size 1).

    Args:
        alpha_initializer: initializer of `alpha` (default `"Zeros"`).
        alpha_regularizer: optional regularizer of `alpha`.
        alpha_constraint: optional constraint of `alpha`.
        shared_axes: 1-based axes along which `alpha` is shared, e.g. `[1, 2]` for images.
    """

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None,
                 alpha_constraint=None, shared_axes=None, **kwargs):
        super().__init__(**kwargs)
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.alpha_constraint = constraints.get(alpha_constraint)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = list(shared_axes) if isinstance(shared_axes, (list, tuple)) else [shared_axes]
            if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 1
                   for a in axes):
                raise ValueError("`shared_axes` of a PReLU layer must be positive (1-based) "
                                 f"axes. Received: shared_axes={shared_axes!r}")
            self.shared_axes = [int(a) for a in axes]
        self.supports_masking = True

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or []:
            if axis > len(shape):
                raise ValueError(f"PReLU layer {self.name!r}: shared axis {axis} is out of "
                                 f"range for input shape {tuple(input_shape)}")
            shape[axis - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU layer {self.name!r}: the non-batch dims must be known or "
                             f"shared. Received: input_shape={tuple(input_shape)}, "
                             f"shared_axes={self.shared_axes}")
        self.alpha = self.add_weight(shape=tuple(shape), initializer=self.alpha_initializer,
                                     regularizer=self.alpha_regularizer,
                                     constraint=self.alpha_constraint, name="alpha")
        self.built = True

    def call(self, inputs):
        return ops.relu(inputs) - ops.relu(-inputs) * self.alpha

    def get_config(self):
        return {**super().get_config(),
                "alpha_initializer": initializers.serialize(self.alpha_initializer),
                "alpha_regularizer": regularizers.serialize(self.alpha_regularizer),
                "alpha_constraint": constraints.serialize(self.alpha_constraint),
                "shared_axes": self.shared_axes}
