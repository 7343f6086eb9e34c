"""Normalization layers: BatchNormalization, LayerNormalization, GroupNormalization,
UnitNormalization (Keras 3 names, arguments, defaults, weight order and numerics).

BatchNormalization keeps its moving statistics as non-trainable variables; in a training call
the new values are assigned inside the traced graph, so the compiled train step outputs them
and the trainer stores them back (no Python-side update, no hidden executor state).
"""
from __future__ import annotations

import numpy as np

from kgraph import config as kconfig
from kgraph import ops
from kgraph.keras import constraints, initializers, regularizers
from kgraph.keras.layers.base import Layer
from kgraph.ops import nn as ops_nn
from kgraph.ops.layer_norm import layer_norm

__all__ = ["BatchNormalization", "GroupNormalization", "LayerNormalization",
           "UnitNormalization"]

_HALF = ("float16", "bfloat16")


def _float(layer, arg, value, low=None, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{arg}` of a {layer} layer must be a number. Received: {arg}={value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"`{arg}` of a {layer} layer must be {bounds}. "
                         f"Received: {arg}={value!r}")
    return float(value)


def _axis_list(layer, axis):
    """Keras accepts an int or a list/tuple of ints for `axis`; anything else is a TypeError."""
    if isinstance(axis, (list, tuple)) and all(
            isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in axis):
        return [int(a) for a in axis]
    if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        return int(axis)
    raise TypeError(f"Expected an int or a list/tuple of ints for the argument 'axis' of a "
                    f"{layer} layer. Received: axis={axis!r}")


def _resolve_axes(layer, axes, input_shape):
    """Positive axes, each in range and with a known length."""
    rank = len(input_shape)
    out = []
    for a in axes if isinstance(axes, list) else [axes]:
        if not -rank <= a < rank:
            raise ValueError(f"Axis {a} is out of bounds for input shape {tuple(input_shape)} "
                             f"of layer {layer!r}. Received: axis={axes!r}")
        if input_shape[a] is None:
            raise ValueError(f"Axis {a} of the input of layer {layer!r} must have a known "
                             f"length. Received: input_shape={tuple(input_shape)}")
        out.append(a % rank)
    return sorted(out)


class _AffineMixin:
    """The gamma/beta arguments shared by the normalization layers."""

    def _set_affine_args(self, center, scale, beta_initializer, gamma_initializer,
                         beta_regularizer, gamma_regularizer, beta_constraint,
                         gamma_constraint):
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.beta_constraint = constraints.get(beta_constraint)
        self.gamma_constraint = constraints.get(gamma_constraint)

    def _add_affine(self, shape, gamma=True, beta=True):
        self.gamma = self.add_weight(shape=shape, name="gamma", initializer=self.gamma_initializer,
                                     regularizer=self.gamma_regularizer,
                                     constraint=self.gamma_constraint) if gamma else None
        self.beta = self.add_weight(shape=shape, name="beta", initializer=self.beta_initializer,
                                    regularizer=self.beta_regularizer,
                                    constraint=self.beta_constraint) if beta else None

    def _affine_config(self):
        return {"center": self.center, "scale": self.scale,
                "beta_initializer": initializers.serialize(self.beta_initializer),
                "gamma_initializer": initializers.serialize(self.gamma_initializer),
                "beta_regularizer": regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": constraints.serialize(self.beta_constraint),
                "gamma_constraint": constraints.serialize(self.gamma_constraint)}


class BatchNormalization(_AffineMixin, Layer):
    """Normalizes its inputs per feature with batch statistics in training and moving
    statistics in inference.

    Training (`fit()`, or `training=True`): for each feature along `axis`,
    `gamma * (x - mean(batch)) / sqrt(var(batch) + epsilon) + beta`, with the biased batch
    variance over every other axis; the moving statistics are updated in the same step:
    `moving = moving * momentum + batch_stat * (1 - momentum)`.
    Inference: the same formula with `moving_mean` and `moving_variance`.

    **A frozen layer (`trainable=False`) always runs in inference mode**, even when called with
    `training=True`, and leaves its moving statistics unchanged (Keras' rule since TF 2.0;
    inside a compiled model the `trainable` value captured by `compile()` counts).

    Args:
        axis: int, the feature axis (`1` after a `channels_first` convolution).
        momentum: float in [0, 1], momentum of the moving averages.
        epsilon: float >= 0 added to the variance.
        center: whether to add the learned offset `beta`.
        scale: whether to multiply by the learned factor `gamma`.
        beta_initializer, gamma_initializer, moving_mean_initializer,
            moving_variance_initializer: initializers (zeros, ones, zeros, ones).
        beta_regularizer, gamma_regularizer: optional regularizers.
        beta_constraint, gamma_constraint: optional constraints.
        synchronized: accepted for Keras files; kgraph computes the statistics per replica
            (identical on one device).

    Call arguments:
        inputs: a tensor of any rank.
        training: bool, training or inference mode.
        mask: optional boolean tensor with one dimension less than `inputs`; masked
            positions are left out of the batch statistics.

    Weights: `gamma`, `beta` (trainable), `moving_mean`, `moving_variance` (non-trainable).

    Example:
        >>> bn = BatchNormalization()
        >>> y = bn(np.random.normal(size=(8, 3)).astype("float32"), training=True)
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, synchronized=False, **kwargs):
        for legacy in ("renorm", "fused", "virtual_batch_size"):  # tf.keras-only arguments
            if kwargs.pop(legacy, None):
                raise ValueError(f"BatchNormalization: `{legacy}` is not supported (Keras 3 "
                                 f"removed it). Received: {legacy}=True")
        for legacy in ("renorm_clipping", "renorm_momentum", "adjustment"):
            kwargs.pop(legacy, None)
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)) and len(axis) == 1:  # tf.keras wrote [3]
            axis = axis[0]
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"BatchNormalization: `axis` must be an int. Received: axis={axis!r}")
        self.axis = int(axis)
        self.momentum = _float("BatchNormalization", "momentum", momentum, 0.0, 1.0)
        self.epsilon = _float("BatchNormalization", "epsilon", epsilon, 0.0)
        self._set_affine_args(center, scale, beta_initializer, gamma_initializer,
                              beta_regularizer, gamma_regularizer, beta_constraint,
                              gamma_constraint)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.synchronized = bool(synchronized)
        self.supports_masking = True

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        Layer.trainable.fset(self, value)
        self._eager_programs = {}  # eager calls traced in the other mode are stale now

    def build(self, input_shape):
        (axis,) = _resolve_axes(self.name, self.axis, input_shape)
        shape = (input_shape[axis],)
        self._add_affine(shape, gamma=self.scale, beta=self.center)
        self.moving_mean = self.add_weight(shape=shape, name="moving_mean", trainable=False,
                                           initializer=self.moving_mean_initializer)
        self.moving_variance = self.add_weight(shape=shape, name="moving_variance",
                                               trainable=False,
                                               initializer=self.moving_variance_initializer)
        self._reduction_axes = [a for a in range(len(input_shape)) if a != axis]
        self.built = True

    def call(self, inputs, training=None, mask=None):
        if mask is not None and len(mask.shape) != len(inputs.shape) - 1:
            raise ValueError(f"The mask provided should be one dimension less than the inputs "
                             f"of layer {self.name!r}. Received: mask.shape={mask.shape}, "
                             f"inputs.shape={inputs.shape}")
        dtype = inputs.dtype
        x = ops.cast(inputs, "float32") if dtype in _HALF else inputs
        if training and self.trainable:
            mean, variance = self._moments(x, mask)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean.value * m + mean * (1.0 - m))
            self.moving_variance.assign(self.moving_variance.value * m + variance * (1.0 - m))
        else:
            mean, variance = self.moving_mean.value, self.moving_variance.value
        outputs = ops_nn.batch_normalization(
            x, mean, variance, axis=self.axis, epsilon=self.epsilon,
            offset=self.beta.value if self.center else None,
            scale=self.gamma.value if self.scale else None)
        return ops.cast(outputs, dtype) if dtype in _HALF else outputs

    def _moments(self, x, mask):
        """Batch mean and biased variance, shaped like the moving statistics."""
        features = self.moving_mean.shape
        if mask is None:
            mean, variance = ops_nn.moments(x, self._reduction_axes, keepdims=True)
        else:  # Keras' masked moments: weights from the mask, its epsilon in the count
            weights = ops.expand_dims(ops.cast(mask, x.dtype), -1)
            count = ops.sum(weights, self._reduction_axes, keepdims=True) + kconfig.epsilon()
            weighted = x * weights
            mean = ops.sum(weighted, self._reduction_axes, keepdims=True) / count
            variance = ops.sum(weights * ops.square(weighted - mean), self._reduction_axes,
                               keepdims=True) / count
        return ops.reshape_to(mean, features), ops.reshape_to(variance, features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, **self._affine_config(),
                "moving_mean_initializer": initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer":
                    initializers.serialize(self.moving_variance_initializer),
                "synchronized": self.synchronized}


class LayerNormalization(_AffineMixin, Layer):
    """Normalizes each sample over `axis` (Ba et al., 2016):
    `gamma * (x - mean) / sqrt(var + epsilon) + beta`, with the mean and biased variance of
    each sample over `axis`; `gamma` and `beta` span the normalized axes.

    Args:
        axis: int or list/tuple of ints, the axes to normalize over.
        epsilon: float >= 0 added to the variance.
        center: whether to add `beta`.
        scale: whether to multiply by `gamma`.
        rms_scaling: if True, `center` and `scale` are ignored and the output is
            `x * gamma / sqrt(var + epsilon)` (Keras' definition: the variance, not the mean
            square).
        beta_initializer, gamma_initializer, beta_regularizer, gamma_regularizer,
            beta_constraint, gamma_constraint: as in `BatchNormalization`.

    Example:
        >>> LayerNormalization()(np.array([[1.0, 3.0]]))  # [[-0.9995, 0.9995]]
    """

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_list("LayerNormalization", axis)
        self.epsilon = _float("LayerNormalization", "epsilon", epsilon, 0.0)
        self.rms_scaling = bool(rms_scaling)
        self._set_affine_args(center, scale, beta_initializer, gamma_initializer,
                              beta_regularizer, gamma_regularizer, beta_constraint,
                              gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        axes = _resolve_axes(self.name, self.axis, input_shape)
        shape = tuple(input_shape[a] for a in axes)
        self._add_affine(shape, gamma=self.scale or self.rms_scaling,
                         beta=self.center and not self.rms_scaling)
        if not isinstance(self.axis, list):
            self.axis = [self.axis]  # as Keras: the config lists the axes once built
        self._axes = axes
        self.built = True

    def _along_axes(self, v, rank):
        if v is None:
            return None
        shape = [1] * rank
        for a, d in zip(self._axes, v.shape):
            shape[a] = d
        return ops.reshape_to(v.value, shape)

    def call(self, inputs):
        dtype = inputs.dtype
        x = ops.cast(inputs, "float32") if dtype in _HALF else inputs
        rank = len(x.shape)
        if list(self._axes) == [rank - 1] and x.shape[-1] is not None and \
                self.gamma is not None and self.beta is not None and not self.rms_scaling:
            # the common case: one op with its own gradient (kgraph/ops/layer_norm.py)
            outputs = layer_norm(x, ops.cast(self.gamma.value, x.dtype),
                                 ops.cast(self.beta.value, x.dtype), self.epsilon)
            return ops.cast(outputs, dtype) if dtype in _HALF else outputs
        gamma, beta = self._along_axes(self.gamma, rank), self._along_axes(self.beta, rank)
        if self.rms_scaling:
            _, variance = ops_nn.moments(x, self._axes, keepdims=True)
            outputs = x * ops.reciprocal(ops.sqrt(variance + self.epsilon)) * gamma
        else:
            mean, variance = ops_nn.moments(x, self._axes, keepdims=True)
            outputs = ops_nn.batch_normalization(x, mean, variance, axis=-1, offset=beta,
                                                 scale=gamma, epsilon=self.epsilon)
        return ops.cast(outputs, dtype) if dtype in _HALF else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon,
                "rms_scaling": self.rms_scaling, **self._affine_config()}


class GroupNormalization(_AffineMixin, Layer):
    """Splits the channels into `groups` and normalizes each sample over every axis but the
    batch within each group (Wu & He, 2018); `gamma`/`beta` are per channel.

    `groups=1` is close to LayerNormalization over all non-batch axes; `groups=-1` (one group
    per channel) is instance normalization.

    Args:
        groups: int, number of groups; must divide the number of channels (`-1`: one per
            channel).
        axis: int, the channel axis.
        epsilon: float >= 0 added to the variance.
        center, scale, beta_initializer, gamma_initializer, beta_regularizer,
            gamma_regularizer, beta_constraint, gamma_constraint: as in `BatchNormalization`.

    Example:
        >>> GroupNormalization(groups=2)(np.random.normal(size=(2, 5, 4)).astype("float32"))
    """

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or \
                not (groups >= 1 or groups == -1):
            raise ValueError(f"GroupNormalization: `groups` must be a positive integer or -1. "
                             f"Received: groups={groups!r}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise ValueError(f"GroupNormalization: `axis` must be an int. Received: axis={axis!r}")
        self.groups, self.axis = int(groups), int(axis)
        self.epsilon = _float("GroupNormalization", "epsilon", epsilon, 0.0)
        self._set_affine_args(center, scale, beta_initializer, gamma_initializer,
                              beta_regularizer, gamma_regularizer, beta_constraint,
                              gamma_constraint)
        self.supports_masking = True

    def build(self, input_shape):
        (axis,) = _resolve_axes(self.name, self.axis, input_shape)
        if axis == 0:
            raise ValueError(f"GroupNormalization {self.name!r}: the channel axis cannot be the "
                             f"batch axis. Received: axis={self.axis}")
        dim = input_shape[axis]
        if self.groups == -1:
            self.groups = dim
        if dim < self.groups:
            raise ValueError(f"Number of groups ({self.groups}) cannot be more than the number "
                             f"of channels ({dim}).")
        if dim % self.groups:
            raise ValueError(f"Number of groups ({self.groups}) must be a divisor of the number "
                             f"of channels ({dim}).")
        self._add_affine((dim,), gamma=self.scale, beta=self.center)
        self._channel_axis = axis
        self.built = True

    def _group_mean(self, x):
        """Mean over each (sample, group), broadcast back to one value per channel. Reducing
        the non-channel axes first leaves only the batch dim unknown for the regrouping."""
        axis, rank = self._channel_axis, len(x.shape)
        others = [a for a in range(1, rank) if a != axis]
        per_channel = ops.mean(x, others, keepdims=True) if others else x
        shape = list(per_channel.shape)
        grouped = ops.reshape_to(per_channel, shape[:axis] + [
            self.groups, shape[axis] // self.groups] + shape[axis + 1:])
        grouped_mean = ops.mean(grouped, axis + 1, keepdims=True)
        return ops.reshape_to(ops.broadcast_like(grouped_mean, grouped), shape)

    def call(self, inputs):
        dtype = inputs.dtype
        x = ops.cast(inputs, "float32") if dtype in _HALF else inputs
        mean = self._group_mean(x)
        variance = self._group_mean(ops.square(x - ops.stop_gradient(mean)))
        outputs = ops_nn.batch_normalization(
            x, mean, variance, axis=self._channel_axis, epsilon=self.epsilon,
            offset=self.beta.value if self.center else None,
            scale=self.gamma.value if self.scale else None)
        return ops.cast(outputs, dtype) if dtype in _HALF else outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "axis": self.axis,
                "epsilon": self.epsilon, **self._affine_config()}


class UnitNormalization(Layer):
    """Scales each sample to unit L2 norm over `axis`: `x / sqrt(max(sum(x**2), 1e-12))`.

    Args:
        axis: int or list/tuple of ints, the axes the norm runs over.

    Example:
        >>> UnitNormalization()(np.array([[3.0, 4.0]]))  # [[0.6, 0.8]]
    """

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = _axis_list("UnitNormalization", axis)
        self.supports_masking = True

    def call(self, inputs):
        square_sum = ops.sum(ops.square(inputs), self.axis, keepdims=True)
        return inputs * ops.reciprocal(ops.sqrt(ops.maximum(square_sum, 1e-12)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}
