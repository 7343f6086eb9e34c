"""`tf.nn`: TensorFlow's neural-network functions under the module path code written against
TensorFlow reaches them by (`layers.Dense(units, activation=tf.nn.gelu)`,
`tf.nn.softmax(scores, axis=1)`; the keras.io CCT and Perceiver examples). Each is the
`keras.ops` function of the same meaning, with TensorFlow's argument names and defaults
(`tf.nn.gelu` is exact unless `approximate=True`; `axis=None` is the last axis)."""
from kgraph.keras import ops
from kgraph.tf_names import _unary, eager_tensors, sigmoid, tanh  # noqa: F401

__all__ = ["avg_pool2d", "conv2d", "depth_to_space", "dropout", "gelu", "l2_normalize", "leaky_relu",
           "log_softmax", "max_pool2d", "moments", "relu", "relu6", "sigmoid", "silu", "softmax",
           "swish", "tanh"]

_FORMATS_2D = {"NHWC": "channels_last", "NCHW": "channels_first"}


def _data_format(data_format, what):
    if data_format not in _FORMATS_2D:
        raise ValueError(f"tf.nn.{what}: data_format must be 'NHWC' or 'NCHW'. "
                         f"Received: data_format={data_format!r}")
    return _FORMATS_2D[data_format]


def _spatial_2d(value, data_format, what, name):
    """TensorFlow's window arguments (`strides`, `ksize`, `dilations`): an int, 1 or 2 spatial
    sizes, or 4 entries whose batch and channel entries are 1."""
    values = [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 4:
        spatial = [1, 2] if data_format == "NHWC" else [2, 3]
        if [v for i, v in enumerate(values) if i not in spatial] != [1, 1]:
            raise ValueError(f"tf.nn.{what}: {name} over the batch or channel axis is not "
                             f"supported. Received: {name}={value}")
        values = [values[i] for i in spatial]
    if len(values) not in (1, 2):
        raise ValueError(f"tf.nn.{what}: {name} must be an int or have 1, 2 or 4 entries. "
                         f"Received: {name}={value}")
    return tuple(values * 2 if len(values) == 1 else values)


def _padding(padding, what):
    if not isinstance(padding, str) or padding.upper() not in ("SAME", "VALID"):
        raise ValueError(f"tf.nn.{what}: padding must be 'SAME' or 'VALID' (explicit paddings "
                         f"are not supported; pad with tf.pad first). Received: "
                         f"padding={padding!r}")
    return padding.lower()


@eager_tensors
def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None,  # noqa: A002
           name=None):
    """`tf.nn.conv2d`: `filters` of shape `(height, width, in, out)` slid over 4-D images (the
    keras.io Zero-DCE example's fixed difference kernels); `padding` "SAME" or "VALID"."""
    return ops.conv(input, filters, strides=_spatial_2d(strides, data_format, "conv2d", "strides"),
                    padding=_padding(padding, "conv2d"),
                    data_format=_data_format(data_format, "conv2d"),
                    dilation_rate=_spatial_2d(1 if dilations is None else dilations,
                                              data_format, "conv2d", "dilations"))


def _pool_2d(pool, what):
    @eager_tensors
    def run(input, ksize, strides, padding, data_format="NHWC", name=None):  # noqa: A002
        return pool(input, _spatial_2d(ksize, data_format, what, "ksize"),
                    strides=_spatial_2d(strides, data_format, what, "strides"),
                    padding=_padding(padding, what), data_format=_data_format(data_format, what))
    run.__name__ = run.__qualname__ = what
    run.__doc__ = (f"`tf.nn.{what}`: `ksize` windows every `strides` over 4-D images; "
                   f"`padding` \"SAME\" or \"VALID\".")
    return run


avg_pool2d = _pool_2d(ops.average_pool, "avg_pool2d")
max_pool2d = _pool_2d(ops.max_pool, "max_pool2d")


@eager_tensors
def depth_to_space(input, block_size, data_format="NHWC", name=None):  # noqa: A002
    """`tf.nn.depth_to_space`: each pixel's channels spread over a `block_size` square
    (TensorFlow's "DCR" order); height and width may be unknown (the keras.io EDSR example's
    upsampling of `(None, None, 3)` images)."""
    formats = {"NHWC": "channels_last", "NCHW": "channels_first"}
    if data_format not in formats:
        raise ValueError(f"tf.nn.depth_to_space: data_format must be 'NHWC' or 'NCHW'. "
                         f"Received: data_format={data_format!r}")
    return ops.depth_to_space(input, block_size, data_format=formats[data_format])


@eager_tensors
def gelu(features, approximate=False, name=None):
    return ops.gelu(features, approximate=approximate)


@eager_tensors
def softmax(logits, axis=None, name=None):
    return ops.softmax(logits, axis=-1 if axis is None else axis)


@eager_tensors
def log_softmax(logits, axis=None, name=None):
    return ops.log_softmax(logits, axis=-1 if axis is None else axis)


@eager_tensors
def leaky_relu(features, alpha=0.2, name=None):
    """`tf.nn.leaky_relu`: `alpha * x` below zero (TensorFlow's default slope 0.2; the keras.io
    GauGAN's `tf.nn.leaky_relu(x, 0.2)`)."""
    return ops.leaky_relu(features, negative_slope=alpha)


# one-argument functions: TensorFlow's and keras.ops' meanings agree
relu = eager_tensors(_unary(ops.relu, "relu"))
relu6 = eager_tensors(_unary(ops.relu6, "relu6"))


@eager_tensors
def l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    """`x * rsqrt(max(sum(x**2, axis), epsilon))`; TensorFlow's `axis=None` is every axis
    (`dim` its old name); the keras.io metric-learning example's embedding normalization."""
    axis = dim if axis is None else axis
    # keras.ops.normalize clamps the norm at epsilon; TensorFlow clamps the squared norm
    return ops.normalize(x, axis=axis, order=2, epsilon=float(epsilon) ** 0.5)


@eager_tensors
def moments(x, axes, shift=None, keepdims=False, name=None):
    """`tf.nn.moments`: `(mean, variance)` of `x` over `axes` (an int or a list; the keras.io
    StyleGAN's `tf.nn.moments(x, axes=(0))`). `shift` is accepted and unused, as TensorFlow's
    current implementation ignores it."""
    return ops.moments(x, axes, keepdims=keepdims)


@eager_tensors
def silu(features, beta=1.0, name=None):
    return features * ops.sigmoid(beta * features) if beta != 1.0 else ops.silu(features)


swish = silu


@eager_tensors
def dropout(x, rate, noise_shape=None, seed=None, name=None):
    """`tf.nn.dropout`: zero each entry with probability `rate`, scale the rest by
    `1 / (1 - rate)` (the keras.io researchers' guide's custom `Dropout` layer)."""
    from kgraph.keras import random

    return random.dropout(x, rate, noise_shape=noise_shape, seed=seed)
