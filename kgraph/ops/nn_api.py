"""`keras.ops.nn` names beyond kgraph/ops/nn.py: more activations, the crossentropies,
normalize/multi_hot, layer and RMS normalization, dot-product attention, depth/space moves.
All are compositions of primitives (gradients and both backends for free)."""
from __future__ import annotations

import math

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops import nn as nn_ops
from kgraph.ops import reduce as rd
from kgraph.ops.api_util import axis_index, constant, dtype_of, rank, shape_of, static_dim, to_float


def log_sigmoid(x):
    return -nn_ops.softplus(-to_float(x))


def sparse_plus(x):
    x = to_float(x)
    return ew.where(ew.less_equal(x, -1.0), 0.0, ew.where(ew.greater_equal(x, 1.0), x,
                                                          (x + 1.0) * (x + 1.0) * 0.25))


def sparse_sigmoid(x):
    x = to_float(x)
    return nn_ops.clip((x + 1.0) * 0.5, 0.0, 1.0)


def squareplus(x, b=4):
    x = to_float(x)
    return (x + ew.sqrt(x * x + float(b))) * 0.5


def hard_tanh(x):
    return nn_ops.clip(to_float(x), -1.0, 1.0)


def hard_shrink(x, threshold=0.5):
    x = to_float(x)
    return ew.where(ew.greater(ew.abs(x), float(threshold)), x, 0.0)


def soft_shrink(x, threshold=0.5):
    x = to_float(x)
    t = float(threshold)
    return ew.where(ew.greater(x, t), x - t, ew.where(ew.less(x, -t), x + t, 0.0))


def tanh_shrink(x):
    x = to_float(x)
    return x - ew.tanh(x)


def threshold(x, threshold, default_value):
    x = to_float(x)
    return ew.where(ew.greater(x, float(threshold)), x, float(default_value))


def celu(x, alpha=1.0):
    x = to_float(x)
    a = float(alpha)
    return ew.relu(x) + ew.minimum(ew.exp(ew.minimum(x, 0.0) / a) - 1.0, 0.0) * a


def crelu(x, axis=-1):
    """Concatenated ReLU: `concatenate([relu(x), relu(-x)], axis)`."""
    x = to_float(x)
    return mv.concatenate([ew.relu(x), ew.relu(-x)], axis)


def glu(x, axis=-1):
    """Gated linear unit: first half times sigmoid of the second half along `axis`."""
    n = static_dim(x, axis, "glu")
    if n % 2:
        raise ValueError(f"glu: axis {axis} must have an even size. Received: shape "
                         f"{shape_of(x)}")
    a, b = mv.slice_axis(x, 0, n // 2, axis), mv.slice_axis(x, n // 2, n, axis)
    return a * ew.sigmoid(b)


def sparsemax(x, axis=-1):
    """Euclidean projection of `x` onto the simplex along `axis` (Martins & Astudillo 2016)."""
    from kgraph.ops.reduce_api import cumsum
    from kgraph.ops.sort import _last_axis, sort

    moved, back = _last_axis(to_float(x), axis, "sparsemax")
    n = static_dim(moved, -1, "sparsemax")
    z = -sort(-moved, -1)  # descending
    k = np.arange(1, n + 1, dtype=ew._np_dtype(dtype_of(z)))
    support = ew.greater(z * constant(k, z) + 1.0, cumsum(z, -1))
    count = rd.sum(ew.cast(support, dtype_of(z)), -1, keepdims=True)
    total = rd.sum(ew.where(support, z, 0.0), -1, keepdims=True)
    tau = (total - 1.0) / count
    return back(ew.relu(moved - tau))


# -- losses ----------------------------------------------------------------------------------
def _clipped(p):
    from kgraph import config

    eps = float(config.epsilon())
    return nn_ops.clip(p, eps, 1.0 - eps)


def binary_crossentropy(target, output, from_logits=False):
    """Elementwise binary crossentropy (`keras.ops.binary_crossentropy`); probabilities are
    clipped to `[epsilon, 1 - epsilon]`, logits use the stable `max(x,0) - x*t + log1p(e^-|x|)`."""
    target, output = ew._pair(to_float(target), to_float(output))
    if from_logits:
        return ew.relu(output) - output * target + nn_ops.softplus(-ew.abs(output))
    p = _clipped(output)
    return -(target * ew.log(p) + (1.0 - target) * ew.log(1.0 - p))


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    target, output = ew._pair(to_float(target), to_float(output))
    if from_logits:
        return -rd.sum(target * nn_ops.log_softmax(output, axis), axis)
    output = output / rd.sum(output, axis, keepdims=True)
    return -rd.sum(target * ew.log(_clipped(output)), axis)


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    classes = static_dim(output, axis, "sparse_categorical_crossentropy")
    onehot = nn_ops.one_hot(target, classes, dtype=dtype_of(to_float(output)))
    if axis not in (-1, rank(output) - 1):
        from kgraph.ops.shape_api import moveaxis

        onehot = moveaxis(onehot, -1, axis)
    return categorical_crossentropy(onehot, output, from_logits, axis)


# -- normalization -------------------------------------------------------------------------------
def normalize(x, axis=-1, order=2, epsilon=None):
    """`x` divided by its `order`-norm along `axis` (`keras.ops.normalize`)."""
    from kgraph import config

    x = to_float(x)
    eps = float(config.epsilon() if epsilon is None else epsilon)
    if order == 2:
        squares = rd.sum(ew.square(x), axis, keepdims=True)
        return x * ew.reciprocal(ew.sqrt(ew.maximum(squares, eps * eps)))
    norm = ew.power(rd.sum(ew.power(ew.abs(x), float(order)), axis, keepdims=True),
                    1.0 / order)
    return x / ew.maximum(norm, eps)


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """1 at each class present in the last axis of `inputs` (`keras.ops.multi_hot`)."""
    num_classes = num_classes if num_classes is not None else kwargs.get("num_tokens")
    dtype = dtype or "float32"
    hot = nn_ops.one_hot(inputs, num_classes, dtype="int32")
    if rank(inputs) == 0:
        return ew.cast(hot, dtype)
    out = ew.cast(rd.max(hot, -2), dtype)
    if axis not in (-1, rank(out) - 1):
        from kgraph.ops.shape_api import moveaxis

        out = moveaxis(out, -1, axis)
    return out


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    from kgraph import config

    eps = float(config.epsilon() if epsilon is None else epsilon)  # Keras' default
    mean, variance = nn_ops.moments(x, axis, keepdims=True)
    out = (x - mean) * ew.reciprocal(ew.sqrt(variance + eps))
    if gamma is not None:
        out = out * gamma
    return out + beta if beta is not None else out


def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    from kgraph import config

    x = to_float(x)
    eps = float(config.epsilon() if epsilon is None else epsilon)
    rms = ew.sqrt(rd.mean(ew.square(x), axis, keepdims=True) + eps)
    return x / rms if scale is None else x / rms * scale


def psnr(x1, x2, max_val):
    """Peak signal-to-noise ratio in dB (`keras.ops.psnr`)."""
    mse = rd.mean(ew.square(to_float(x1) - to_float(x2)))
    return (20.0 * math.log10(max_val)) - ew.log(mse) * (10.0 / math.log(10.0))


def dot_product_attention(query, key, value, bias=None, mask=None, scale=None,
                          is_causal=False, flash_attention=None, attn_logits_soft_cap=None):
    """Scaled dot-product attention on `(batch, seq, heads, dim)` tensors
    (`keras.ops.dot_product_attention`): `softmax(q k^T * scale + bias, masked) v`."""
    from kgraph.ops.linalg import matmul

    q, k, v = (mv.transpose(t, (0, 2, 1, 3)) for t in (query, key, value))  # b, h, s, d
    if scale is None:
        scale = 1.0 / math.sqrt(static_dim(query, -1, "dot_product_attention"))
    logits = matmul(q, mv.swapaxes(k, -1, -2)) * float(scale)
    if attn_logits_soft_cap is not None:
        cap = float(attn_logits_soft_cap)
        logits = ew.tanh(logits / cap) * cap
    if bias is not None:
        logits = logits + bias
    keep = None if mask is None else ew.cast(mask, "bool")
    if is_causal:
        sq = static_dim(query, 1, "dot_product_attention (causal)")
        sk = static_dim(key, 1, "dot_product_attention (causal)")
        causal = np.tril(np.ones((sq, sk), dtype=bool))
        keep = causal if keep is None else ew.logical_and(keep, causal)
    if keep is not None:
        logits = ew.where(keep, logits, float(np.finfo(np.float32).min) / 2)
    weights = nn_ops.softmax(logits, -1)
    return mv.transpose(matmul(weights, v), (0, 2, 1, 3))


def depth_to_space(x, block_size, data_format="channels_last"):
    b = int(block_size)
    if data_format == "channels_first":
        from kgraph.ops.shape_api import moveaxis

        return moveaxis(depth_to_space(moveaxis(x, 1, -1), b), -1, 1)
    _, h, w, c = shape_of(x)
    if c is None or c % (b * b):
        raise ValueError(f"depth_to_space: channels must divide by block_size**2. Received: "
                         f"shape={shape_of(x)}, block_size={b}")
    depth = c // (b * b)
    y = _reshape_scaled(x, x, ((0, 1), (1, 1), (2, 1), b, b, depth))
    y = mv.transpose(y, (0, 1, 3, 2, 4, 5))
    return _reshape_scaled(y, x, ((0, 1), (1, b), (2, b), depth))


def _reshape_scaled(x, like, dims):
    """Reshape `x` to `dims`, each an int or `(axis, factor)`: dim `axis` of `like` times
    `factor`. With several unknown dims (an image of any height and width, the keras.io EDSR
    example) the run-time target is built from slices of Shape(like)."""
    from kgraph.ir.graph import current_graph
    from kgraph.ops.registry import apply

    like_shape = shape_of(like)
    shape = tuple(d if isinstance(d, int) else
                  None if like_shape[d[0]] is None else like_shape[d[0]] * d[1] for d in dims)
    if shape.count(None) <= 1:
        return mv.reshape_to(x, shape)
    graph, runtime = current_graph(), apply("Shape", like)
    pieces = []
    for d in dims:
        if isinstance(d, int):
            pieces.append(graph.constant(np.asarray([d], np.int64)))
            continue
        piece = apply("Slice", runtime, starts=(d[0],), ends=(d[0] + 1,), axes=(0,))
        pieces.append(piece if d[1] == 1 else
                      apply("Mul", piece, graph.constant(np.asarray([d[1]], np.int64))))
    return apply("Reshape", x, apply("Concat", *pieces, axis=0), shape=shape)


def space_to_depth(x, block_size, data_format="channels_last"):
    b = int(block_size)
    if data_format == "channels_first":
        from kgraph.ops.shape_api import moveaxis

        return moveaxis(space_to_depth(moveaxis(x, 1, -1), b), -1, 1)
    h, w = static_dim(x, 1, "space_to_depth"), static_dim(x, 2, "space_to_depth")
    c = static_dim(x, 3, "space_to_depth")
    if h % b or w % b:
        raise ValueError(f"space_to_depth: height and width must divide by block_size. "
                         f"Received: shape={shape_of(x)}, block_size={b}")
    y = mv.reshape_to(x, (None, h // b, b, w // b, b, c))
    y = mv.transpose(y, (0, 1, 3, 2, 4, 5))
    return mv.reshape_to(y, (None, h // b, w // b, b * b * c))


def softmax(x, axis=-1):
    """Softmax over one axis or a tuple of axes (`keras.ops.softmax`)."""
    if isinstance(axis, int):
        return nn_ops.softmax(to_float(x), axis)
    x = to_float(x)
    axes = tuple(axis_index(a, rank(x), "softmax") for a in axis)
    shifted = x - nn_ops.stop_gradient(rd.max(x, axes, keepdims=True))
    e = ew.exp(shifted)
    return e / rd.sum(e, axes, keepdims=True)


def stop_gradient(variable):  # Keras' parameter name (kgraph/ops/nn.py's takes `x`)
    """`keras.ops.stop_gradient`: `variable` with no gradient flowing back through it."""
    return nn_ops.stop_gradient(variable)

