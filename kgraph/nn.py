"""`tf.nn`: TensorFlow's neural-network functions under the module path code written against
TensorFlow reaches them by (`layers.Dense(units, activation=tf.nn.gelu)`,
`tf.nn.softmax(scores, axis=1)`; the keras.io CCT and Perceiver examples). Each is the
`keras.ops` function of the same meaning, with TensorFlow's argument names and defaults
(`tf.nn.gelu` is exact unless `approximate=True`; `axis=None` is the last axis)."""
from kgraph.keras import ops
from kgraph.tf_names import _unary, eager_tensors, sigmoid, tanh  # noqa: F401

__all__ = ["depth_to_space", "gelu", "l2_normalize", "log_softmax", "relu", "relu6", "sigmoid",
           "silu", "softmax", "swish", "tanh"]


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
def silu(features, beta=1.0, name=None):
    return features * ops.sigmoid(beta * features) if beta != 1.0 else ops.silu(features)


swish = silu
