"""`Softmax` and `SoftmaxGrad`: a softmax over one axis as one op, with its own gradient.

`Softmax(x, axis)` is Keras' `exp(x - max) / sum(exp(x - max))` over `axis`; its gradient is
`SoftmaxGrad(g, y, axis) = y * (g - sum(g * y))`, from the output y alone. Differentiating the
decomposition instead goes through the division's two gradients, the sum's broadcast and the
exponential's: eight passes over the softmax's input where the rule needs one (in attention,
over every score of every head).

Where a train step runs on onnxruntime with kgraph's operators (runtime/native_ops.py), each
is one kernel: onnxruntime's `Softmax`, kgraph's `SoftmaxGrad` over rows of the last axis
(runtime/native/ortops.cc, float32); everywhere else they are emitted as their expansions in
standard ops (`decomposed`, `decomposed_grad`; also the gradient of `SoftmaxGrad`, for
second-order gradients).
"""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import reduce as rd
from kgraph.ops.registry import apply, defop


# -- the math, in numpy (references) and in kgraph ops (expansions) ---------------------------
def _softmax_ref(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


def _softmax_grad_ref(g, y, axis):
    return (y * (g - np.sum(g * y, axis=axis, keepdims=True))).astype(y.dtype)


def decomposed(x, axis):
    """`Softmax` in standard ops: what kgraph traced before the op existed, the same values."""
    from kgraph.ops.nn import mv_stop

    e = ew.exp(x - mv_stop(rd.max(x, axis, keepdims=True)))
    return e / rd.sum(e, axis, keepdims=True)


def decomposed_grad(g, y, axis):
    """`SoftmaxGrad` in standard ops."""
    return y * (g - rd.sum(g * y, axis, keepdims=True))


# -- shape rules and gradients ----------------------------------------------------------------
def _check_axis(name, t, axis):
    if not 0 <= axis < len(t.shape):
        raise ValueError(f"{name}: axis {axis} is out of range for a tensor of shape "
                         f"{t.shape}")


def _softmax_infer(types, axis):
    (x,) = types
    _check_axis("Softmax", x, axis)
    return [x]


def _softmax_grad_infer(types, axis):
    g, y = types
    _check_axis("SoftmaxGrad", y, axis)
    if g.dtype != y.dtype or len(g.shape) != len(y.shape) or any(
            a is not None and b is not None and a != b for a, b in zip(g.shape, y.shape)):
        raise ValueError(f"SoftmaxGrad: the gradient {g!r} must be like the softmax {y!r}")
    return [y]


def _softmax_grad_rule(g, y, x, axis):
    return (apply("SoftmaxGrad", g, y, axis=axis),)


def _softmax_grad_grad_rule(g, y, *inputs, axis):
    """The gradient of `SoftmaxGrad`: the vector-Jacobian product of its expansion."""
    from kgraph.compiler.autodiff import expansion_vjp

    return expansion_vjp(decomposed_grad, inputs, [g], axis=axis)


# -- ONNX emission ----------------------------------------------------------------------------
def _softmax_grad_onnx(ctx, node, ins, outs):
    y = node.inputs[1]
    if ctx.native and y.dtype == "float32" and node.attrs["axis"] == len(y.shape) - 1:
        return ctx.node("kgraph.SoftmaxGrad", ins, outs)
    return ctx.expand(decomposed_grad, node, ins, outs)


def _softmax_onnx(ctx, node, ins, outs):
    """onnxruntime's own Softmax kernel (MLAS: 0.5 ms for the transformer benchmark's 1M
    scores on one thread, against 1.8 ms for kgraph's row kernel and ~0.6 ms for the five
    kernels of the expansion) where the graph is for this process's onnxruntime; the
    expansion elsewhere, so exported files and TVM see what they saw before the op existed."""
    if ctx.native:
        return ctx.node("Softmax", ins, outs, axis=node.attrs["axis"])
    return ctx.expand(decomposed, node, ins, outs)


defop("Softmax", _softmax_infer, _softmax_ref, grad=_softmax_grad_rule, attrs=("axis",),
      onnx=_softmax_onnx)
defop("SoftmaxGrad", _softmax_grad_infer, _softmax_grad_ref, grad=_softmax_grad_grad_rule,
      attrs=("axis",), onnx=_softmax_grad_onnx)


def softmax(x, axis=-1):
    """Softmax of `x` over one axis (negative counts from the end)."""
    rank = len(x.shape)
    if not -rank <= axis < rank:
        raise ValueError(f"softmax: axis {axis} is out of range for a tensor of shape "
                         f"{tuple(x.shape)}")
    return apply("Softmax", x, axis=axis % rank)
