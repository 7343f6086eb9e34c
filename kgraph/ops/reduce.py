"""Reductions over static axes: sum, max, min (mean is sum / count), argmax."""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops.registry import apply, defop


def _axes(rank, axes):
    if axes is None:
        return tuple(range(rank))
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    out = []
    for a in axes:
        if not -rank <= a < rank:
            raise ValueError(f"Reduction axis out of range for rank {rank}. Received: axis={a}")
        out.append(a % rank)
    return tuple(sorted(set(out)))


def _reduce_infer(types, axes, keepdims):
    (t,) = types
    shape = tuple((1 if keepdims else None) if i in axes else d for i, d in enumerate(t.shape))
    if not keepdims:
        shape = tuple(d for i, d in enumerate(t.shape) if i not in axes)
    return [TensorType(shape, t.dtype)]


def _keep_shape(shape, axes):
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _sum_grad(g, y, x, axes, keepdims):
    from kgraph.ops.movement import broadcast_like, reshape_to

    if not keepdims:
        g = reshape_to(g, _keep_shape(x.shape, axes), like=None)
    return (broadcast_like(g, x),)


def _extreme_grad(g, y, x, axes, keepdims):
    from kgraph.ops.elementwise import cast, equal
    from kgraph.ops.movement import broadcast_like, reshape_to

    if not keepdims:
        g = reshape_to(g, _keep_shape(x.shape, axes), like=None)
        y = reshape_to(y, _keep_shape(x.shape, axes), like=None)
    hit = cast(equal(x, y), x.dtype)  # ties share the gradient equally, as TF does
    share = hit / apply("ReduceSum", hit, axes=axes, keepdims=True)
    return (broadcast_like(g, x) * share,)


def _ref(fn):
    return lambda x, axes, keepdims: np.asarray(fn(x, axis=axes, keepdims=keepdims)).astype(x.dtype)


def _onnx_reduce(name):
    def emit(ctx, node, ins, outs):
        if not node.attrs["axes"]:  # ONNX reads empty axes as "all axes"
            return ctx.node("Identity", ins, outs)
        axes = ctx.const(np.asarray(node.attrs["axes"], np.int64))
        ctx.node(name, [ins[0], axes], outs, keepdims=int(node.attrs["keepdims"]))
    return emit


for _name, _fn, _grad in [("ReduceSum", np.sum, _sum_grad), ("ReduceMax", np.max, _extreme_grad),
                          ("ReduceMin", np.min, _extreme_grad)]:
    defop(_name, _reduce_infer, _ref(_fn), grad=_grad, attrs=("axes", "keepdims"),
          onnx=_onnx_reduce(_name))


def _argmax_infer(types, axis, keepdims):
    (t,) = types
    shape = tuple(d for i, d in enumerate(t.shape) if i != axis or keepdims)
    shape = tuple(1 if (i == axis and keepdims) else d for i, d in enumerate(shape))
    return [TensorType(shape, "int64")]


defop("ArgMax", _argmax_infer,
      lambda x, axis, keepdims: np.expand_dims(np.argmax(x, axis), axis) if keepdims
      else np.argmax(x, axis).astype(np.int64),
      differentiable=False, attrs=("axis", "keepdims"))


# -- public functions --------------------------------------------------------------------------
def _rank(x):
    return np.ndim(x) if not hasattr(x, "shape") else len(x.shape)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - Keras name
    return apply("ReduceSum", x, axes=_axes(_rank(x), axis), keepdims=bool(keepdims))


def max(x, axis=None, keepdims=False):  # noqa: A001
    return apply("ReduceMax", x, axes=_axes(_rank(x), axis), keepdims=bool(keepdims))


def min(x, axis=None, keepdims=False):  # noqa: A001
    return apply("ReduceMin", x, axes=_axes(_rank(x), axis), keepdims=bool(keepdims))


def mean(x, axis=None, keepdims=False):
    from kgraph.ops.elementwise import cast
    from kgraph.ops.movement import count

    axes = _axes(_rank(x), axis)
    return sum(x, axes, keepdims) / cast(count(x, axes), x.dtype)


def argmax(x, axis=-1, keepdims=False):
    return apply("ArgMax", x, axis=axis % _rank(x), keepdims=bool(keepdims))
