"""Inverse trigonometry and ordering: the primitives `Asin`, `Acos`, `Atan` and `TopK`, and the
ordering ops built on them (`top_k`, `sort`, `argsort`, `take_along_axis`, `median`, ...).

`TopK` returns only the int64 indices of the `k` largest (or smallest) entries along the last
axis, ties broken toward the lower index as ONNX specifies. Values are gathered from the input
with `take_along_axis`, so their gradient is the gather's (a one-hot contraction), and `TopK`
itself needs no gradient rule. ONNX TopK takes `k` as an input: it is emitted as a constant,
which TVM's importer requires.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops import elementwise as ew
from kgraph.ops.api_util import axis_index, rank, shape_of, static_dim, to_float
from kgraph.ops.registry import apply, defop, same_as_input

defop("Asin", same_as_input, lambda x: np.arcsin(x).astype(x.dtype),
      grad=lambda g, y, x: (g / ew.sqrt(1.0 - x * x),))
defop("Acos", same_as_input, lambda x: np.arccos(x).astype(x.dtype),
      grad=lambda g, y, x: (-g / ew.sqrt(1.0 - x * x),))
defop("Atan", same_as_input, lambda x: np.arctan(x).astype(x.dtype),
      grad=lambda g, y, x: (g / (x * x + 1.0),))


def _topk_infer(types, k, largest):
    (t,) = types
    n = t.shape[-1]
    if n is not None and not 0 < k <= n:
        raise ValueError(f"TopK: k must be in [1, {n}] for a last axis of {n}. Received: k={k}")
    return [TensorType(t.shape[:-1] + (k,), "int64")]


def _topk_ref(x, k, largest):
    order = np.argsort(-x if largest else x, axis=-1, kind="stable")
    return order[..., :k].astype(np.int64)


def _topk_onnx(ctx, node, ins, outs):
    k = ctx.const(np.asarray([node.attrs["k"]], np.int64))
    ctx.node("TopK", [ins[0], k], [ctx.fresh("topk_values"), outs[0]], axis=-1,
             largest=int(node.attrs["largest"]), sorted=1)


defop("TopK", _topk_infer, _topk_ref, differentiable=False, attrs=("k", "largest"),
      onnx=_topk_onnx)


def arcsin(x):
    return apply("Asin", to_float(x))


def arccos(x):
    return apply("Acos", to_float(x))


def arctan(x):
    return apply("Atan", to_float(x))


def arctan2(x1, x2):
    """Elementwise angle of the point `(x2, x1)`, in `[-pi, pi]` (`keras.ops.arctan2`)."""
    x1, x2 = ew._pair(to_float(x1), to_float(x2))
    safe = ew.where(ew.equal(x2, 0.0), 1.0, x2)
    base = arctan(x1 / safe)
    left = ew.where(ew.greater_equal(x1, 0.0), base + np.pi, base - np.pi)
    quarter = ew.sign(x1) * (np.pi / 2)
    return ew.where(ew.greater(x2, 0.0), base, ew.where(ew.less(x2, 0.0), left, quarter))


# -- ordering ----------------------------------------------------------------------------------
def _last_axis(x, axis, op):
    """`x` with `axis` moved last, and a function that moves a result's last axis back."""
    from kgraph.ops.movement import transpose

    n = rank(x)
    axis = axis_index(axis, n, op)
    if axis == n - 1:
        return x, lambda y: y
    perm = [i for i in range(n) if i != axis] + [axis]
    back = tuple(int(i) for i in np.argsort(perm))
    return transpose(x, perm), lambda y: transpose(y, back)


def _topk_indices(x, k, largest):
    return apply("TopK", x, k=int(k), largest=bool(largest))


def take_along_axis(x, indices, axis=None):
    """Values of `x` at `indices` along `axis` (`keras.ops.take_along_axis`).

    Lowered to a one-hot selection (`sum(where(one_hot(indices), x, 0))`), which both backends
    run on any shape, unknown batch included, and whose gradient is exact; it costs
    `indices.size * x.shape[axis]` selects (a select, so an inf or NaN elsewhere in the row
    does not turn the sum into NaN).

    Args:
        x: input tensor.
        indices: integer tensor broadcastable to `x` except along `axis`; negative ones count
            from the end.
        axis: the axis to take along; `None` flattens both first.

    Returns:
        A tensor shaped like `indices` (broadcast against `x`), of `x`'s dtype.
    """
    from kgraph.ops.movement import expand_dims, reshape
    from kgraph.ops.reduce import sum as reduce_sum

    if axis is None:
        x, indices, axis = reshape(x, (-1,)), reshape(indices, (-1,)), 0
    x_last, back = _last_axis(x, axis, "take_along_axis")
    i_last, _ = _last_axis(indices, axis, "take_along_axis")
    n = static_dim(x_last, -1, "take_along_axis")
    i_last = ew.cast(i_last, "int64")
    i_last = ew.where(ew.less(i_last, 0), i_last + np.int64(n), i_last)
    hits = ew.equal(expand_dims(i_last, -1), np.arange(n, dtype=np.int64))
    if x_last.dtype == "bool":
        picked = reduce_sum(ew.cast(hits, "int64") * ew.cast(expand_dims(x_last, -2), "int64"), -1)
        return back(ew.greater(picked, 0))
    zero = ew.cast(0, x_last.dtype)
    return back(reduce_sum(ew.where(hits, expand_dims(x_last, -2), zero), -1))


def top_k(x, k, sorted=True):  # noqa: A002 - the Keras name
    """The `k` largest entries along the last axis and their indices (`keras.ops.top_k`).

    Returns:
        `(values, indices)`: values of `x`'s dtype, int32 indices as Keras returns them.
    """
    indices = _topk_indices(x, k, True)
    return take_along_axis(x, indices, -1), ew.cast(indices, "int32")


def argsort(x, axis=-1):
    """Indices that sort `x` along `axis`, ascending and stable (`keras.ops.argsort`)."""
    moved, back = _last_axis(x, axis, "argsort")
    n = static_dim(moved, -1, "argsort")
    return ew.cast(back(_topk_indices(moved, n, False)), "int32")


def sort(x, axis=-1):
    """`x` sorted ascending along `axis` (`keras.ops.sort`); the gradient flows to the inputs
    that land at each position."""
    moved, back = _last_axis(x, axis, "sort")
    n = static_dim(moved, -1, "sort")
    return back(take_along_axis(moved, _topk_indices(moved, n, False), -1))


def argpartition(x, kth, axis=-1):
    """Indices that partition `x` around its `kth` smallest entry (`keras.ops.argpartition`);
    a full stable sort is one valid partition."""
    return argsort(x, axis)


def in_top_k(targets, predictions, k):
    """Whether each target class is among the top `k` predictions (`keras.ops.in_top_k`).

    A target whose score ties the k-th largest counts as in, as TensorFlow counts it."""
    from kgraph.ops.movement import expand_dims
    from kgraph.ops.reduce import min as reduce_min

    k_values = take_along_axis(predictions, _topk_indices(predictions, k, True), -1)
    kth = reduce_min(k_values, -1)
    target = take_along_axis(predictions, expand_dims(ew.cast(targets, "int64"), -1), -1)
    return ew.greater_equal(target[..., 0], kth)


def quantile(x, q, axis=None, method="linear", keepdims=False):
    """The `q`-th quantiles of `x` along `axis` (`keras.ops.quantile`), numpy's methods
    `linear`, `lower`, `higher`, `midpoint` and `nearest`, on a sort of the data."""
    from kgraph.ops.movement import reshape

    x = to_float(x)
    if axis is None:
        x, axis, full_rank = reshape(x, (-1,)), 0, rank(x)
    else:
        full_rank = None
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) != 1:
        raise ValueError(f"quantile: one axis at a time. Received: axis={axis}")
    ordered, back = _last_axis(sort(x, axes[0]), axes[0], "quantile")
    n = static_dim(ordered, -1, "quantile")
    qs = np.asarray(q, dtype=np.float64)
    picks = [_quantile_at(ordered, float(v) * (n - 1), method, n) for v in qs.reshape(-1)]
    return _stack_quantiles(picks, qs, ordered, back, keepdims, full_rank)


def _quantile_at(ordered, position, method, n):
    lo, hi = int(np.floor(position)), int(np.ceil(position))
    low, high = ordered[..., lo], ordered[..., min(hi, n - 1)]
    fraction = position - lo
    if method == "lower" or lo == hi:
        return low
    if method == "higher":
        return high
    if method == "midpoint":
        return (low + high) * 0.5
    if method == "nearest":
        return low if round(position) == lo else high
    if method == "linear":
        return low + (high - low) * fraction
    raise ValueError(f"quantile: unknown method. Received: method={method!r}")


def _stack_quantiles(picks, qs, ordered, back, keepdims, full_rank):
    from kgraph.ops.movement import concatenate, expand_dims, reshape

    if keepdims:
        picks = [back(expand_dims(p, -1)) for p in picks]
        if full_rank is not None:
            picks = [reshape(p, (1,) * full_rank) for p in picks]
    if qs.ndim == 0:
        return picks[0]
    stacked = concatenate([expand_dims(p, 0) for p in picks], 0)
    return reshape(stacked, tuple(qs.shape) + tuple(shape_of(stacked)[1:]))


def median(x, axis=None, keepdims=False):
    """Median of `x` along `axis` (`keras.ops.median`); float results for integer input."""
    return quantile(x, 0.5, axis=axis, keepdims=keepdims)


def unique(x, sorted=True, return_index=False, return_inverse=False,  # noqa: A002
           return_counts=False, axis=None, size=None, fill_value=None):
    """The unique entries of `x` (`keras.ops.unique`), sorted, as numpy's `unique`.

    Eager only: the number of unique entries is known only from the data, so the op has no
    graph form (a symbolic `x` raises `TracedModeNotSupportedError`). As JAX, `size` pads
    (or cuts) the result to that length: values with `fill_value` (default the smallest
    unique value), indices with the first one, counts with 0. Indices, inverse and counts
    are int32. `sorted=False` gives sorted values too (Keras leaves the order unspecified).

    Returns:
        The unique values, or a tuple of them and the indices / inverse / counts asked for.
    """
    from kgraph.ops.api_util import eager_only

    eager_only("unique", x)
    x = np.asarray(x)
    values, index, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                               return_counts=True, axis=axis)
    if axis is None:
        inverse = inverse.reshape(x.shape)
    if size is not None:
        along = 0 if axis is None else axis
        size, have = int(size), values.shape[along]
        first = np.take(values, [0], axis=along)
        fill = first if fill_value is None else np.full_like(first, fill_value)
        missing = max(size - have, 0)
        values = np.concatenate([np.take(values, np.arange(min(size, have)), axis=along)] +
                                [fill] * missing, axis=along)
        index = np.concatenate([index[:size], np.full(missing, index[0])])
        counts = np.concatenate([counts[:size], np.zeros(missing, counts.dtype)])
    out = [values] + [a.astype(np.int32) for a, wanted in ((index, return_index),
                                                           (inverse, return_inverse),
                                                           (counts, return_counts)) if wanted]
    return out[0] if len(out) == 1 else tuple(out)
