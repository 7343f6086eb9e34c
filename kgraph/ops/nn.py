"""Composite ops: decompositions into primitives, so they get gradients, ONNX and TVM for free."""
from __future__ import annotations

import math

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops import reduce as rd


def clip(x, x_min, x_max):
    return ew.minimum(ew.maximum(x, x_min), x_max)


def softmax(x, axis=-1):
    """exp(x - max) / sum over `axis`, as one op with its own gradient
    (kgraph/ops/softmax_ops.py; its expansion is this formula)."""
    from kgraph.ops.softmax_ops import softmax as softmax_op

    return softmax_op(x, axis)


def log_softmax(x, axis=-1):
    shifted = x - mv_stop(rd.max(x, axis, keepdims=True))
    return shifted - ew.log(rd.sum(ew.exp(shifted), axis, keepdims=True))


def logsumexp(x, axis=None, keepdims=False):
    m = mv_stop(rd.max(x, axis, keepdims=True))
    out = ew.log(rd.sum(ew.exp(x - m), axis, keepdims=True)) + m
    return out if keepdims else _drop(out, x, axis)


def _drop(out, x, axis):
    axes = rd._axes(len(x.shape), axis)
    return mv.reshape_to(out, [d for i, d in enumerate(x.shape) if i not in axes])


def mv_stop(x):
    """Stop gradient: the max shift in softmax changes nothing mathematically."""
    return stop_gradient(x)


def stop_gradient(x):
    from kgraph.ops.registry import apply

    return apply("StopGradient", x)


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return ew.relu(x)
    if threshold != 0.0:
        pos = ew.where(x > threshold, x, 0.0)
    else:
        pos = ew.relu(x)
    if max_value is not None:
        pos = ew.minimum(pos, float(max_value))
    if negative_slope != 0.0:
        pos = pos + ew.where(x < threshold, (x - threshold) * float(negative_slope), 0.0)
    return pos


def relu6(x):
    return ew.minimum(ew.relu(x), 6.0)


def leaky_relu(x, negative_slope=0.2):
    return ew.where(x >= 0.0, x, x * float(negative_slope))


def elu(x, alpha=1.0):
    return ew.where(x > 0.0, x, (ew.exp(ew.minimum(x, 0.0)) - 1.0) * float(alpha))


def selu(x):
    alpha, scale = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
    return elu(x, alpha) * scale


def softplus(x):
    return ew.relu(x) + ew.log(ew.exp(-ew.abs(x)) + 1.0)


def softsign(x):
    return x / (ew.abs(x) + 1.0)


def silu(x):
    return x * ew.sigmoid(x)


swish = silu


def gelu(x, approximate=True):  # Keras' op default (keras.activations.gelu is exact)
    if approximate:
        c = math.sqrt(2.0 / math.pi)
        return x * 0.5 * (ew.tanh((x + ew.power(x, 3.0) * 0.044715) * c) + 1.0)
    return x * 0.5 * (ew.erf(x * (1.0 / math.sqrt(2.0))) + 1.0)


def hard_sigmoid(x):
    return relu6(x + 3.0) / 6.0


def hard_silu(x):
    return x * hard_sigmoid(x)


def exponential(x):
    return ew.exp(x)


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """One-hot by comparison with a range (TVM mis-types ONNX OneHot); the class axis is
    `axis` of the result, `dtype` floatx by default (Keras' signature; `sparse=True` is
    refused: kgraph has no sparse tensors)."""
    from kgraph import config

    indices, dtype = x, dtype or config.floatx()
    if sparse:
        raise ValueError("one_hot(sparse=True): kgraph has no sparse tensors. "
                         "Received: sparse=True")
    from kgraph.ops import symbolic_shape

    if symbolic_shape.is_dim(num_classes):  # a run-time count: `ops.shape(logits)[-1]`
        from kgraph.ops.numpy_api import arange

        classes = arange(num_classes, dtype="int64")
    elif isinstance(num_classes, (int, np.integer)) and not isinstance(num_classes, bool):
        classes = np.arange(num_classes, dtype=np.int64)
    else:
        raise ValueError(f"one_hot: `num_classes` must be an integer (or a dim of a traced "
                         f"tensor). Received: num_classes={num_classes!r}")
    indices = ew.cast(indices, "int64")
    hot = ew.cast(ew.equal(mv.expand_dims(indices, -1), classes), dtype)
    rank = len(hot.shape)
    if axis in (-1, rank - 1):
        return hot
    if not -rank <= axis < rank:
        raise ValueError(f"one_hot: axis must be in [-{rank}, {rank}) for {rank - 1}-D "
                         f"indices. Received: axis={axis}")
    order = list(range(rank - 1))
    order.insert(axis % rank, rank - 1)
    return mv.transpose(hot, tuple(order))


def dropout(x, rate, key, seed):
    from kgraph.ops.random import uniform_like

    keep = ew.greater_equal(uniform_like(x, key, seed), np.float32(rate))
    return x * ew.cast(keep, x.dtype) * (1.0 / (1.0 - rate))  # a multiply by the mask, as TF


def random_normal_like(x, key, seed, mean=0.0, stddev=1.0):
    """Normal noise shaped like `x`, drawn in the graph (Box-Muller on two uniform draws).

    Like `uniform_like`, the draw is a pure function of (`key`, `seed`, element index), so a
    step that adds noise stays reproducible and replica-independent.

    Args:
        x: tensor whose (possibly dynamic) shape the noise takes.
        key: uint32 scalar, the step's rng key (`kgraph.random.graph_key()` while tracing).
        seed: int, the op's own seed (a layer's `SeedGenerator.seed`).
        mean: float, mean of the distribution.
        stddev: float, standard deviation of the distribution.

    Returns:
        float32 tensor shaped like `x`.
    """
    from kgraph.ops.random import uniform_like

    seed = int(seed) & 0xFFFFFFFF
    u1 = uniform_like(x, key, seed)
    u2 = uniform_like(x, key, seed ^ _SECOND_STREAM)
    radius = ew.sqrt(ew.log(1.0 - u1) * -2.0)  # 1 - u1 lies in (0, 1]: log never sees 0
    z = radius * ew.cos(u2 * (2.0 * math.pi))
    if stddev != 1.0:
        z = z * float(stddev)
    return z + float(mean) if mean != 0.0 else z


_SECOND_STREAM = 0x5BD1E995  # decorrelates the two uniform draws of one normal draw


def moments(x, axes, keepdims=False, synchronized=False):
    """Mean and biased variance of `x` over `axes` (`keras.ops.moments`). `synchronized`
    (cross-replica statistics) acts only on Keras' TensorFlow backend: ignored, as on Keras'
    other backends.

    The variance is two-pass, `mean(square(x - mean))`, which stays accurate when the mean is
    large; the inner mean is a stop_gradient, which is exact because `sum(x - mean) = 0`.
    float16/bfloat16 inputs are reduced in float32 and cast back, as Keras does.

    Args:
        x: input tensor.
        axes: int or sequence of ints, the axes to reduce.
        keepdims: keep the reduced axes with length 1.
        synchronized: accepted for Keras' signature; no effect.

    Returns:
        `(mean, variance)`.

    Example:
        >>> mean, variance = moments(np.array([[1.0, 3.0]]), axes=1)  # [2.], [1.]
    """
    rank = len(x.shape)
    axes = rd._axes(rank, axes)
    dtype = x.dtype
    if dtype in ("float16", "bfloat16"):
        x = ew.cast(x, "float32")
    mean = rd.mean(x, axes, keepdims=True)
    variance = rd.mean(ew.square(x - stop_gradient(mean)), axes, keepdims=True)
    if not keepdims:
        kept = [d for i, d in enumerate(x.shape) if i not in axes]
        if kept.count(None) <= 1:
            mean, variance = mv.reshape_to(mean, kept), mv.reshape_to(variance, kept)
        else:  # several unknown dims: reduce again without keepdims
            variance = rd.mean(ew.square(x - stop_gradient(mean)), axes)
            mean = rd.mean(x, axes)
    if dtype in ("float16", "bfloat16"):
        mean, variance = ew.cast(mean, dtype), ew.cast(variance, dtype)
    return mean, variance


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """Normalize `x` with given statistics (`keras.ops.batch_normalization`):
    `scale * (x - mean) / sqrt(variance + epsilon) + offset`.

    Computed as TensorFlow does: `inv = scale / sqrt(variance + epsilon)`, then
    `x * inv + (offset - mean * inv)`.

    Args:
        x: input tensor.
        mean, variance: statistics, either 1-D of length `x.shape[axis]` or already
            broadcastable against `x`.
        axis: int, the feature axis the 1-D statistics run along.
        offset, scale: optional tensors shaped like `mean` (beta and gamma).
        epsilon: float added to the variance.

    Returns:
        A tensor shaped like `x`.
    """
    rank = len(x.shape)
    axis = axis % rank

    def along_axis(v):
        if v is None or len(v.shape) == rank:
            return v
        shape = [1] * rank
        shape[axis] = v.shape[0]
        return mv.reshape_to(v, shape)

    inv = ew.reciprocal(ew.sqrt(along_axis(variance) + float(epsilon)))
    if scale is not None:
        inv = inv * along_axis(scale)
    shift = ew.negative(along_axis(mean) * inv)
    if offset is not None:
        shift = shift + along_axis(offset)
    return x * inv + shift


def _register_stop_gradient():
    from kgraph.ops.registry import defop, same_as_input

    defop("StopGradient", same_as_input, lambda x: x, onnx="Identity",
          grad=lambda g, y, x: (None,))


_register_stop_gradient()


# `keras.ops.nn` names implemented elsewhere, so that `kgraph.ops.nn` is that namespace
from kgraph.ops.conv import conv, conv_transpose, depthwise_conv, separable_conv  # noqa: E402,F401
from kgraph.ops.ctc import ctc_decode, ctc_loss  # noqa: E402,F401
from kgraph.ops.elementwise import sigmoid  # noqa: E402,F401
from kgraph.ops.nn_api import (binary_crossentropy, categorical_crossentropy, celu, crelu,  # noqa: E402,F401
                               depth_to_space, dot_product_attention, glu, hard_shrink,
                               hard_tanh, layer_normalization, log_sigmoid, multi_hot,
                               normalize, psnr, rms_normalization, soft_shrink, space_to_depth,
                               sparse_categorical_crossentropy, sparse_plus, sparse_sigmoid,
                               sparsemax, squareplus, tanh_shrink, threshold)
from kgraph.ops.pool import average_pool, max_pool  # noqa: E402,F401
from kgraph.ops.windows_api import (adaptive_average_pool, adaptive_max_pool,  # noqa: E402,F401
                                   fold, unfold)

hard_swish = hard_silu
