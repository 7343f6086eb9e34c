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


# A sum over the batch and a block of axes of a large tensor (a convolution's bias gradient:
# batch and space, channels first or last) as a batched product with a vector of ones:
# onnxruntime's ReduceSum over such axes ran 7x slower than the product (64x26x26x32, axes
# 0, 1, 2: 0.55 ms against 0.08 ms).
SUM_AS_PRODUCT_MIN_ROWS = 64


def _sum_as_product(ctx, node, ins, outs):
    """Emit ReduceSum over the batch axis plus the axes 1..k-1 (leading block) or k..r-1
    (trailing block) as Reshape(-1, P, M) and a product with ones(1, P) or ones(M, 1), then
    a small ReduceSum over the batch; None when the shapes do not allow it (every dim but the
    batch static, the summed block at least SUM_AS_PRODUCT_MIN_ROWS elements, float data)."""
    x = node.inputs[0]
    axes, shape, rank = tuple(node.attrs["axes"]), x.shape, len(x.shape)
    if x.dtype not in ("float16", "float32", "float64") or len(axes) < 2 or axes[0] != 0 \
            or len(axes) == rank or None in shape[1:]:
        return None
    if axes == tuple(range(len(axes))):  # (N, summed..., kept...)
        summed, kept, leading = shape[1:len(axes)], shape[len(axes):], True
    elif axes[1:] == tuple(range(rank - len(axes) + 1, rank)):  # (N, kept..., summed...)
        summed, kept, leading = shape[rank - len(axes) + 1:], shape[1:rank - len(axes) + 1], False
    else:
        return None
    rows, width = int(np.prod(summed)), int(np.prod(kept))
    if rows < SUM_AS_PRODUCT_MIN_ROWS:
        return None
    dims = [-1, rows, width] if leading else [-1, width, rows]
    flat = ctx.node("Reshape", [ins[0], ctx.const(np.asarray(dims, np.int64))])
    ones = ctx.const(np.ones((1, rows) if leading else (rows, 1), dtype=x.dtype))
    product = ctx.node("MatMul", [ones, flat] if leading else [flat, ones])  # (N, 1, M)/(N, M, 1)
    summed_out = ctx.node("ReduceSum", [product, ctx.const(
        np.asarray([0, 1] if leading else [0, 2], np.int64))], keepdims=0)
    out_shape = [1 if i in axes else d for i, d in enumerate(shape)] if node.attrs["keepdims"] \
        else list(kept)
    return ctx.node("Reshape", [summed_out, ctx.const(np.asarray(out_shape, np.int64))], outs)


def _onnx_reduce(name):
    def emit(ctx, node, ins, outs):
        if not node.attrs["axes"]:  # ONNX reads empty axes as "all axes"
            return ctx.node("Identity", ins, outs)
        if name == "ReduceSum" and _sum_as_product(ctx, node, ins, outs) is not None:
            return None
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
    """Sum over `axis`; bool data counts its True entries as int32, as Keras sums them."""
    from kgraph.ops.api_util import dtype_of

    if dtype_of(x) == "bool":
        from kgraph.ops.elementwise import cast

        x = cast(x, "int32")
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
