"""`LayerNorm` and `LayerNormGrad`: a layer normalization over the last axis as one op, with
its own gradient.

`LayerNorm(x, gamma, beta, epsilon)` is Keras' `LayerNormalization` over the last axis (center
and scale on): the mean and the two-pass biased variance of each row, `inv = gamma /
sqrt(variance + epsilon)`, `y = x inv + (beta - mean inv)` (TensorFlow's order, as
`kgraph.ops.nn.batch_normalization`). Its gradient is `LayerNormGrad(dy, x, gamma, epsilon)
-> (dx, dgamma, dbeta)`: with `xhat = (x - mean) / sqrt(variance + epsilon)` and `d = dy
gamma`, `dx = (d - mean(d) - xhat mean(d xhat)) / sqrt(variance + epsilon)`, `dgamma = sum(dy
xhat)` and `dbeta = sum(dy)` over every axis but the last. Differentiating the decomposition
instead takes ~30 kernels per normalization, each a pass over the activations (a
transformer's two LayerNorms were ~2 ms of elementwise kernels in a 12 ms step).

Where a step runs on onnxruntime with kgraph's operators (runtime/native_ops.py), each is one
kernel (runtime/native/ortops.cc, float32, rows split between threads; the gradient's sums
over rows added per block of rows, blocks in order); everywhere else they are emitted as their
expansions in standard ops (`decomposed`, `decomposed_grad`; also the gradient of
`LayerNormGrad`, for second-order gradients).
"""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import reduce as rd
from kgraph.ops.registry import apply, defop, native_or_expanded


# -- the math, in numpy (references) and in kgraph ops (expansions) ---------------------------
def _stats_ref(x, epsilon):
    mean = x.mean(-1, keepdims=True)
    variance = np.square(x - mean).mean(-1, keepdims=True)
    return mean, 1 / np.sqrt(variance + x.dtype.type(epsilon))


def _layer_norm_ref(x, gamma, beta, epsilon):
    mean, inv = _stats_ref(x, epsilon)
    scaled = inv * gamma
    return (x * scaled + (beta - mean * scaled)).astype(x.dtype)


def _layer_norm_grad_ref(dy, x, gamma, epsilon):
    mean, inv = _stats_ref(x, epsilon)
    xhat = (x - mean) * inv
    d = dy * gamma
    dx = inv * (d - d.mean(-1, keepdims=True) - xhat * (d * xhat).mean(-1, keepdims=True))
    rows = tuple(range(x.ndim - 1))
    return (dx.astype(x.dtype), (dy * xhat).sum(rows).astype(x.dtype),
            dy.sum(rows).astype(x.dtype))


def decomposed(x, gamma, beta, epsilon):
    """`LayerNorm` in standard ops: what kgraph traced before the op existed, the same values."""
    from kgraph.ops.nn import batch_normalization, moments

    mean, variance = moments(x, [len(x.shape) - 1], keepdims=True)
    return batch_normalization(x, mean, variance, axis=-1, offset=beta, scale=gamma,
                               epsilon=epsilon)


def decomposed_grad(dy, x, gamma, epsilon):
    """`LayerNormGrad` in standard ops."""
    mean = rd.mean(x, -1, keepdims=True)
    centered = x - mean
    inv = ew.reciprocal(ew.sqrt(rd.mean(centered * centered, -1, keepdims=True) + epsilon))
    xhat = centered * inv
    d = dy * gamma
    dx = inv * (d - rd.mean(d, -1, keepdims=True) - xhat * rd.mean(d * xhat, -1, keepdims=True))
    rows = list(range(len(x.shape) - 1))
    return dx, rd.sum(dy * xhat, rows), rd.sum(dy, rows)


# -- shape rules and gradients ----------------------------------------------------------------
def _check(name, x, vectors):
    width = x.shape[-1] if x.shape else None
    ok = width is not None and x.dtype in ("float16", "bfloat16", "float32", "float64")
    for v in vectors:
        ok = ok and tuple(v.shape) == (width,) and v.dtype == x.dtype
    if not ok:
        raise ValueError(f"{name} takes a float tensor with a known last axis and vectors of "
                         f"its width and dtype. Received: {x!r}, " +
                         ", ".join(repr(v) for v in vectors))


def _layer_norm_infer(types, epsilon):
    x, gamma, beta = types
    _check("LayerNorm", x, [gamma, beta])
    return [x]


def _layer_norm_grad_infer(types, epsilon):
    dy, x, gamma = types
    _check("LayerNormGrad", x, [gamma])
    if dy.dtype != x.dtype or len(dy.shape) != len(x.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(dy.shape, x.shape)):
        raise ValueError(f"LayerNormGrad: the gradient {dy!r} must be like the input {x!r}")
    return [x, gamma, gamma]


def _layer_norm_grad_rule(g, y, x, gamma, beta, epsilon):
    return tuple(apply("LayerNormGrad", g, x, gamma, epsilon=epsilon))


def _layer_norm_grad_grad_rule(g, y, *inputs, epsilon):
    """The gradient of `LayerNormGrad`: the vector-Jacobian product of its expansion."""
    from kgraph.compiler.autodiff import expansion_vjp

    return expansion_vjp(decomposed_grad, inputs, g, epsilon=epsilon)


# -- ONNX emission ----------------------------------------------------------------------------
defop("LayerNorm", _layer_norm_infer, _layer_norm_ref, grad=_layer_norm_grad_rule,
      attrs=("epsilon",), onnx=native_or_expanded("LayerNorm", decomposed, ("epsilon",)))
defop("LayerNormGrad", _layer_norm_grad_infer, _layer_norm_grad_ref,
      grad=_layer_norm_grad_grad_rule, num_outputs=3, attrs=("epsilon",),
      onnx=native_or_expanded("LayerNormGrad", decomposed_grad, ("epsilon",)))


def layer_norm(x, gamma, beta, epsilon):
    """Keras' layer normalization of `x` over its last axis with scale `gamma` and offset
    `beta` (vectors of the last axis' width); see the module docstring."""
    return apply("LayerNorm", x, gamma, beta, epsilon=float(epsilon))
