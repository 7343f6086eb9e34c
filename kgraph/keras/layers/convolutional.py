"""Convolution layers with Keras 3 names, arguments, defaults, weights and configs.

Weights keep the Keras layouts, so Keras weight files load unchanged: Conv kernels
`(*window, in / groups, filters)`, depthwise kernels `(*window, in, depth_multiplier)`,
pointwise kernels `(*ones, in * depth_multiplier, filters)`, transposed-convolution kernels
`(*window, filters, in)`. The layers call the Keras-facing functions of kgraph/ops/conv.py,
which lower to channels-first `Conv`/`ConvTranspose` primitives (ONNX's layout) with the
transposes that the `cancel_transposes` pass removes between consecutive layers.
"""
from __future__ import annotations

from kgraph.keras import activations, constraints, initializers, regularizers
from kgraph.keras.layers.base import IncompatibleInputError, Layer
from kgraph.ops import reshape
from kgraph.ops.conv import (conv, conv_transpose, depthwise_conv, normalize_data_format,
                              normalize_padding, normalize_tuple, separable_conv)

__all__ = ["Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
           "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose",
           "Conv3DTranspose", "Convolution1D", "Convolution2D", "Convolution3D",
           "SeparableConvolution1D", "SeparableConvolution2D", "Convolution1DTranspose",
           "Convolution2DTranspose", "Convolution3DTranspose"]

_CODECS = {"_initializer": (initializers.serialize, initializers.get),
           "_regularizer": (regularizers.serialize, regularizers.get),
           "_constraint": (constraints.serialize, constraints.get),
           "activation": (activations.serialize, activations.get)}


def _codec(key):
    return next((codec for suffix, codec in _CODECS.items() if key.endswith(suffix)), None)


def _positive_int(layer, name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{layer}: invalid value for argument `{name}`. Expected a strictly "
                         f"positive integer. Received: {name}={value!r}")
    return value


class _BaseConv(Layer):
    """What every convolution layer shares: argument checks, the channel axis, the bias,
    the activation, and a config written in the key order of its Keras class."""

    rank = None
    _config_keys = ()

    def _setup(self, kernel_size, strides, padding, data_format, dilation_rate, activation,
               use_bias, allow_causal=False, forbid_strided_dilation=True):
        name = type(self).__name__
        self.kernel_size = normalize_tuple(kernel_size, self.rank, "kernel_size")
        self.strides = normalize_tuple(strides, self.rank, "strides")
        self.dilation_rate = normalize_tuple(dilation_rate, self.rank, "dilation_rate")
        self.padding = normalize_padding(padding, allow_causal)
        self.data_format = normalize_data_format(data_format)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        if forbid_strided_dilation and max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError(f"{name}: `strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.input_spec_ndim = self.rank + 2

    def _set_objects(self, **objects):
        for key, value in objects.items():
            setattr(self, key, _codec(key)[1](value))

    def _input_channels(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != self.rank + 2:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) expects inputs of "
                             f"rank {self.rank + 2}. Received: input_shape={input_shape}")
        channels = input_shape[-1 if self.data_format == "channels_last" else 1]
        if channels is None:
            raise ValueError(f"Layer {self.name!r}: the channel dimension of the inputs must "
                             f"be defined. Received: input_shape={input_shape}")
        self.input_channels = channels
        return channels

    def _check_channels(self, inputs):
        channels = inputs.shape[-1 if self.data_format == "channels_last" else 1]
        if channels != self.input_channels or len(inputs.shape) != self.rank + 2:
            raise IncompatibleInputError(
                f"Input 0 of layer {self.name!r} is incompatible with the layer: "
                f"expected rank {self.rank + 2} with {self.input_channels} "
                f"channels ({self.data_format}). Received: shape "
                f"{tuple(inputs.shape)}")

    def _add_bias(self, size, name="bias"):
        if not self.use_bias:
            return None
        return self.add_weight(shape=(size,), initializer=self.bias_initializer,
                               regularizer=self.bias_regularizer,
                               constraint=self.bias_constraint, name=name)

    def _add_kernel(self, shape, prefix, name):
        return self.add_weight(shape=shape, initializer=getattr(self, f"{prefix}_initializer"),
                               regularizer=getattr(self, f"{prefix}_regularizer"),
                               constraint=getattr(self, f"{prefix}_constraint"), name=name)

    def get_config(self):
        config = super().get_config()
        for key in self._config_keys:
            codec = _codec(key)
            value = getattr(self, key)
            config[key] = codec[0](value) if codec else value
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key, value in config.items():
            codec = _codec(key)
            if codec is not None:
                config[key] = codec[1](value)
        return cls(**config)


_KERNEL_KEYS = ("kernel_initializer", "bias_initializer", "kernel_regularizer",
                "bias_regularizer", "activity_regularizer", "kernel_constraint",
                "bias_constraint")


class _Conv(_BaseConv):
    _config_keys = ("filters", "kernel_size", "strides", "padding", "data_format",
                    "dilation_rate", "groups", "activation", "use_bias") + _KERNEL_KEYS

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        name = type(self).__name__
        if lora_rank is not None or lora_alpha is not None:
            raise ValueError(f"{name}: LoRA is not supported by kgraph. Received: "
                             f"lora_rank={lora_rank!r}, lora_alpha={lora_alpha!r}")
        self.filters = _positive_int(name, "filters", filters)
        self.groups = _positive_int(name, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"{name}: the number of filters must be evenly divisible by the "
                             f"number of groups. Received: groups={groups}, filters={filters}")
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation,
                    use_bias, allow_causal=self.rank == 1)
        self._set_objects(kernel_initializer=kernel_initializer,
                          bias_initializer=bias_initializer,
                          kernel_regularizer=kernel_regularizer,
                          bias_regularizer=bias_regularizer,
                          kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def build(self, input_shape):
        channels = self._input_channels(input_shape)
        if channels % self.groups:
            raise ValueError(f"Layer {self.name!r}: the number of input channels must be evenly "
                             f"divisible by the number of groups. Received: groups="
                             f"{self.groups}, input_shape={tuple(input_shape)}")
        shape = self.kernel_size + (channels // self.groups, self.filters)
        self.kernel = self._add_kernel(shape, "kernel", "kernel")
        self.bias = self._add_bias(self.filters)
        self.built = True

    def convolution_op(self, inputs, kernel):
        """The layer's convolution without bias or activation, as Keras' `convolution_op`:
        a subclass overrides it (e.g. to standardize `kernel`) and keeps `call`'s bias and
        activation, or calls it from its own `call`."""
        return conv(inputs, kernel, self.strides, self.padding, self.data_format,
                    self.dilation_rate)

    def call(self, inputs):
        self._check_channels(inputs)
        if type(self).convolution_op is _Conv.convolution_op:
            # the bias goes inside the ONNX Conv; an overridden op gets it added after, as Keras
            outputs = conv(inputs, self.kernel, self.strides, self.padding, self.data_format,
                           self.dilation_rate, bias=self.bias)
        else:
            outputs = self.convolution_op(inputs, self.kernel)
            if self.bias is not None:
                outputs = outputs + (self.bias if self.data_format == "channels_last" else
                                     reshape(self.bias, (self.filters,) + (1,) * self.rank))
        # None when a user sets it after the build (Keras checks it too)
        return outputs if self.activation is None else self.activation(outputs)


class Conv1D(_Conv):
    """1D convolution layer (e.g. temporal convolution).

    Args:
        filters: int, the number of output channels.
        kernel_size: int or tuple of 1 int, the window length.
        strides: int or tuple of 1 int.
        padding: `"valid"`, `"same"` (TF SAME: the odd element of padding goes at the end)
            or `"causal"` (all padding before: output t sees inputs up to t only).
        data_format: `"channels_last"` (`(batch, steps, channels)`) or `"channels_first"`.
        dilation_rate: int or tuple of 1 int; `> 1` is incompatible with `strides > 1`.
        groups: int, the channels are split in `groups` groups convolved separately.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint: as Dense.

    Weights: `kernel` `(kernel_size, channels / groups, filters)`, `bias` `(filters,)`.

    Example:
        >>> Conv1D(4, 3, padding="causal")(np.zeros((2, 10, 3))).shape
        (2, 10, 4)
    """

    rank = 1


class Conv2D(_Conv):
    """2D convolution layer (spatial convolution over images).

    Args as `Conv1D`, with 2-tuples, and `padding` `"valid"` or `"same"`. Kernel
    `(kh, kw, channels / groups, filters)`.

    Example:
        >>> Conv2D(8, 3, strides=2, padding="same")(np.zeros((1, 7, 7, 3))).shape
        (1, 4, 4, 8)
    """

    rank = 2


class Conv3D(_Conv):
    """3D convolution layer (spatial convolution over volumes).

    Args as `Conv2D`, with 3-tuples. Kernel `(kd, kh, kw, channels / groups, filters)`.

    Example:
        >>> Conv3D(2, 2)(np.zeros((1, 4, 4, 4, 1))).shape
        (1, 3, 3, 3, 2)
    """

    rank = 3


Convolution1D, Convolution2D, Convolution3D = Conv1D, Conv2D, Conv3D


_DEPTHWISE_KEYS = ("depthwise_initializer", "bias_initializer", "depthwise_regularizer",
                   "bias_regularizer", "activity_regularizer", "depthwise_constraint",
                   "bias_constraint")


class _DepthwiseConv(_BaseConv):
    _config_keys = ("depth_multiplier", "kernel_size", "strides", "padding", "data_format",
                    "dilation_rate", "activation", "use_bias") + _DEPTHWISE_KEYS

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.depth_multiplier = _positive_int(type(self).__name__, "depth_multiplier",
                                              depth_multiplier)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation,
                    use_bias, forbid_strided_dilation=False)
        self._set_objects(depthwise_initializer=depthwise_initializer,
                          bias_initializer=bias_initializer,
                          depthwise_regularizer=depthwise_regularizer,
                          bias_regularizer=bias_regularizer,
                          depthwise_constraint=depthwise_constraint,
                          bias_constraint=bias_constraint)

    def build(self, input_shape):
        channels = self._input_channels(input_shape)
        shape = self.kernel_size + (channels, self.depth_multiplier)
        self.kernel = self._add_kernel(shape, "depthwise", "kernel")
        self.bias = self._add_bias(channels * self.depth_multiplier)
        self.built = True

    def call(self, inputs):
        self._check_channels(inputs)
        outputs = depthwise_conv(inputs, self.kernel, self.strides, self.padding,
                                 self.data_format, self.dilation_rate, bias=self.bias)
        # None when a user sets it after the build (Keras checks it too)
        return outputs if self.activation is None else self.activation(outputs)


class DepthwiseConv1D(_DepthwiseConv):
    """1D depthwise convolution: each input channel is convolved with its own
    `depth_multiplier` filters (output channel `c * depth_multiplier + m`).

    Args:
        kernel_size, strides, padding (`"valid"`/`"same"`), data_format, dilation_rate:
            as `Conv1D`.
        depth_multiplier: int, filters per input channel.
        activation, use_bias, depthwise_initializer, bias_initializer,
        depthwise_regularizer, bias_regularizer, activity_regularizer,
        depthwise_constraint, bias_constraint: as `Conv1D`'s kernel/bias arguments.

    Weights: `kernel` `(kernel_size, channels, depth_multiplier)`, `bias`
    `(channels * depth_multiplier,)`.

    Example:
        >>> DepthwiseConv1D(3, depth_multiplier=2)(np.zeros((1, 8, 3))).shape
        (1, 6, 6)
    """

    rank = 1


class DepthwiseConv2D(_DepthwiseConv):
    """2D depthwise convolution; args as `DepthwiseConv1D` with 2-tuples.

    Weights: `kernel` `(kh, kw, channels, depth_multiplier)`, `bias`
    `(channels * depth_multiplier,)`.

    Example:
        >>> DepthwiseConv2D(3, padding="same")(np.zeros((1, 5, 5, 4))).shape
        (1, 5, 5, 4)
    """

    rank = 2


class _SeparableConv(_BaseConv):
    _config_keys = ("depth_multiplier", "filters", "kernel_size", "strides", "padding",
                    "data_format", "dilation_rate", "activation", "use_bias",
                    "depthwise_initializer", "pointwise_initializer", "bias_initializer",
                    "depthwise_regularizer", "pointwise_regularizer", "bias_regularizer",
                    "activity_regularizer", "depthwise_constraint", "pointwise_constraint",
                    "bias_constraint")

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None,
                 **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        name = type(self).__name__
        self.filters = _positive_int(name, "filters", filters)
        self.depth_multiplier = _positive_int(name, "depth_multiplier", depth_multiplier)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation,
                    use_bias, forbid_strided_dilation=False)
        self._set_objects(depthwise_initializer=depthwise_initializer,
                          pointwise_initializer=pointwise_initializer,
                          bias_initializer=bias_initializer,
                          depthwise_regularizer=depthwise_regularizer,
                          pointwise_regularizer=pointwise_regularizer,
                          bias_regularizer=bias_regularizer,
                          depthwise_constraint=depthwise_constraint,
                          pointwise_constraint=pointwise_constraint,
                          bias_constraint=bias_constraint)

    def build(self, input_shape):
        channels = self._input_channels(input_shape)
        depthwise = self.kernel_size + (channels, self.depth_multiplier)
        pointwise = (1,) * self.rank + (channels * self.depth_multiplier, self.filters)
        self.depthwise_kernel = self._add_kernel(depthwise, "depthwise", "depthwise_kernel")
        self.pointwise_kernel = self._add_kernel(pointwise, "pointwise", "pointwise_kernel")
        self.bias = self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        self._check_channels(inputs)
        outputs = separable_conv(inputs, self.depthwise_kernel, self.pointwise_kernel,
                                 self.strides, self.padding, self.data_format,
                                 self.dilation_rate, bias=self.bias)
        # None when a user sets it after the build (Keras checks it too)
        return outputs if self.activation is None else self.activation(outputs)


class SeparableConv1D(_SeparableConv):
    """1D separable convolution: a depthwise convolution (one set of `depth_multiplier`
    filters per input channel) followed by a pointwise (1-wide) convolution to `filters`.

    Args:
        filters, kernel_size, strides, padding (`"valid"`/`"same"`), data_format,
        dilation_rate: as `Conv1D` (strides, padding and dilation apply to the depthwise step).
        depth_multiplier: int, depthwise filters per input channel.
        activation, use_bias, and `depthwise_*`, `pointwise_*`, `bias_*` initializers,
        regularizers and constraints, activity_regularizer.

    Weights, in Keras order: `depthwise_kernel` `(kernel_size, channels, depth_multiplier)`,
    `pointwise_kernel` `(1, channels * depth_multiplier, filters)`, `bias` `(filters,)`.

    Example:
        >>> SeparableConv1D(4, 3)(np.zeros((1, 8, 2))).shape
        (1, 6, 4)
    """

    rank = 1


class SeparableConv2D(_SeparableConv):
    """2D separable convolution; args as `SeparableConv1D` with 2-tuples.

    Weights: `depthwise_kernel` `(kh, kw, channels, depth_multiplier)`, `pointwise_kernel`
    `(1, 1, channels * depth_multiplier, filters)`, `bias` `(filters,)`.

    Example:
        >>> SeparableConv2D(4, 3, padding="same")(np.zeros((1, 5, 5, 2))).shape
        (1, 5, 5, 4)
    """

    rank = 2


SeparableConvolution1D, SeparableConvolution2D = SeparableConv1D, SeparableConv2D


class _ConvTranspose(_BaseConv):
    _config_keys = ("filters", "kernel_size", "strides", "padding", "output_padding",
                    "data_format", "dilation_rate", "activation", "use_bias") + _KERNEL_KEYS

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None,
                 data_format=None, dilation_rate=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        name = type(self).__name__
        self.filters = _positive_int(name, "filters", filters)
        self._setup(kernel_size, strides, padding, data_format, dilation_rate, activation,
                    use_bias)
        self.output_padding = None if output_padding is None else normalize_tuple(
            output_padding, self.rank, "output_padding", allow_zero=True)
        if self.output_padding is not None and any(
                p >= s for p, s in zip(self.output_padding, self.strides)):
            raise ValueError(f"{name}: `output_padding` must be strictly less than `strides`. "
                             f"Received: output_padding={self.output_padding}, "
                             f"strides={self.strides}")
        self._set_objects(kernel_initializer=kernel_initializer,
                          bias_initializer=bias_initializer,
                          kernel_regularizer=kernel_regularizer,
                          bias_regularizer=bias_regularizer,
                          kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)

    def build(self, input_shape):
        channels = self._input_channels(input_shape)
        self.kernel = self._add_kernel(self.kernel_size + (self.filters, channels), "kernel",
                                       "kernel")
        self.bias = self._add_bias(self.filters)
        self.built = True

    def call(self, inputs):
        self._check_channels(inputs)
        outputs = conv_transpose(inputs, self.kernel, self.strides, self.padding,
                                 self.output_padding, self.data_format, self.dilation_rate,
                                 bias=self.bias)
        # None when a user sets it after the build (Keras checks it too)
        return outputs if self.activation is None else self.activation(outputs)


class Conv1DTranspose(_ConvTranspose):
    """1D transposed convolution (the gradient of `Conv1D` with respect to its input).

    Args:
        filters, kernel_size, strides, data_format, dilation_rate: as `Conv1D`.
        padding: `"valid"` (output `(steps - 1) * strides + max(kernel_size, strides)`) or
            `"same"` (output `steps * strides`).
        output_padding: None, or int/tuple (< strides) added at the end of the output.
        activation, use_bias and the kernel/bias initializers, regularizers, constraints.

    Weights: `kernel` `(kernel_size, filters, channels)`, `bias` `(filters,)`.

    Example:
        >>> Conv1DTranspose(2, 3, strides=2, padding="same")(np.zeros((1, 4, 3))).shape
        (1, 8, 2)
    """

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """2D transposed convolution; args as `Conv1DTranspose` with 2-tuples.

    Weights: `kernel` `(kh, kw, filters, channels)`, `bias` `(filters,)`.

    Example:
        >>> Conv2DTranspose(2, 3, strides=2)(np.zeros((1, 4, 4, 3))).shape
        (1, 9, 9, 2)
    """

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """3D transposed convolution; args as `Conv1DTranspose` with 3-tuples (Keras 3 puts
    `data_format` before `output_padding` in this class's signature).

    Weights: `kernel` `(kd, kh, kw, filters, channels)`, `bias` `(filters,)`.

    Example:
        >>> Conv3DTranspose(1, 2)(np.zeros((1, 2, 2, 2, 1))).shape
        (1, 3, 3, 3, 1)
    """

    rank = 3

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 output_padding=None, dilation_rate=1, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, output_padding, data_format,
                         dilation_rate, **kwargs)


Convolution1DTranspose, Convolution2DTranspose = Conv1DTranspose, Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose
