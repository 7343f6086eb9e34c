"""`keras.ops` reductions and scans beyond sum/max/min: mean (float for ints), var, std, prod,
any/all, nan-aware reductions, argmin, cumsum/cumprod, diff, average, ptp, count_nonzero.

`prod` and `cumprod` multiply slices along the axis (its size must be known while tracing), so
their gradients are exact at zeros too; `cumsum` is a matmul with a triangle of ones.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import is_float
from kgraph.ops import elementwise as ew
from kgraph.ops import reduce as rd
from kgraph.ops.api_util import axis_index, constant, dtype_of, floatx, rank, static_dim, to_float


def _axes(x, axis):
    return rd._axes(rank(x), axis)


def mean(x, axis=None, keepdims=False):
    """Mean over `axis`; integer and bool inputs give floatx, as Keras (`keras.ops.mean`)."""
    return rd.mean(to_float(x), axis, keepdims)


def var(x, axis=None, keepdims=False):
    from kgraph.ops.nn import moments

    x = to_float(x)
    return moments(x, _axes(x, axis), keepdims=keepdims)[1]


def std(x, axis=None, keepdims=False):
    return ew.sqrt(var(x, axis, keepdims))


def max(x, axis=None, keepdims=False, initial=None):  # noqa: A001 - the Keras name
    out = rd.max(x, axis, keepdims)
    return out if initial is None else ew.maximum(out, initial)


def min(x, axis=None, keepdims=False, initial=None):  # noqa: A001
    out = rd.min(x, axis, keepdims)
    return out if initial is None else ew.minimum(out, initial)


amax, amin = max, min


def _bool_reduce(x, axis, keepdims, reducer):
    as_int = ew.cast(ew.not_equal(x, ew.cast(0, dtype_of(x))) if dtype_of(x) != "bool" else x,
                     "int32")
    return ew.greater(reducer(as_int, axis, keepdims), 0)  # a weakly typed python 0


def any(x, axis=None, keepdims=False):  # noqa: A001
    return _bool_reduce(x, axis, keepdims, rd.max)


def all(x, axis=None, keepdims=False):  # noqa: A001
    return _bool_reduce(x, axis, keepdims, rd.min)


def count_nonzero(x, axis=None):
    nonzero = ew.cast(ew.not_equal(x, ew.cast(0, dtype_of(x))), "int32")
    return rd.sum(nonzero, axis)


def prod(x, axis=None, keepdims=False, dtype=None):
    """Product over `axis` (`keras.ops.prod`), as a chain of multiplies of slices."""
    from kgraph.ops.movement import reshape

    if isinstance(x, (list, tuple, int, float)):
        x = np.asarray(x)  # a Python shape tuple, as `tf.math.reduce_prod(adjacency_shape)`
        x = x.astype("int32" if x.dtype.kind in "iu" else floatx())
    if dtype is not None:
        x = ew.cast(x, dtype)
    out = x
    for a in reversed(_axes(x, axis)):
        n = static_dim(out, a, "prod")
        total = out[(slice(None),) * a + (0,)]
        for i in range(1, n):
            total = total * out[(slice(None),) * a + (i,)]
        out = total if n else ew.cast(np.ones(()), dtype_of(x))
    if keepdims:
        kept = tuple(1 if i in _axes(x, axis) else d for i, d in enumerate(x.shape))
        out = reshape(out, kept)
    return out


def _nan_filled(x, fill):
    return ew.where(ew.isnan(x), fill, x) if is_float(dtype_of(x)) else x


def nansum(x, axis=None, keepdims=False):
    return rd.sum(_nan_filled(x, 0.0), axis, keepdims)


def nanprod(x, axis=None, keepdims=False):
    return prod(_nan_filled(x, 1.0), axis, keepdims)


def nanmax(x, axis=None, keepdims=False):
    return rd.max(_nan_filled(x, -np.inf), axis, keepdims)


def nanmin(x, axis=None, keepdims=False):
    return rd.min(_nan_filled(x, np.inf), axis, keepdims)


def nanmean(x, axis=None, keepdims=False):
    x = to_float(x)
    valid = ew.cast(ew.logical_not(ew.isnan(x)), dtype_of(x))
    return rd.sum(_nan_filled(x, 0.0), axis, keepdims) / rd.sum(valid, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """Index of the first minimum (`keras.ops.argmin`): the first maximum of `-x`."""
    return argmax(-x if dtype_of(x) != "bool" else ew.logical_not(x), axis, keepdims)


def argmax(x, axis=None, keepdims=False):
    """Index of the first maximum, int32 as Keras; `axis=None` searches the flattened input."""
    from kgraph.ops.movement import reshape

    if axis is None:
        flat = rd.argmax(reshape(x, (-1,)), 0)
        out = reshape(flat, (1,) * rank(x)) if keepdims else flat
    else:
        if dtype_of(x) == "bool":
            x = ew.cast(x, "int32")
        out = rd.argmax(x, axis, keepdims)
    return ew.cast(out, "int32")


def ptp(x, axis=None, keepdims=False):
    return rd.max(x, axis, keepdims) - rd.min(x, axis, keepdims)


def average(x, axis=None, weights=None):
    """Weighted mean along `axis` (`keras.ops.average`); 1-D weights run along `axis`."""
    x = to_float(x)
    if weights is None:
        return mean(x, axis)
    weights = ew.cast(weights, dtype_of(x))
    if rank(weights) == 1 and rank(x) > 1 and axis is not None:
        shape = [1] * rank(x)
        shape[axis_index(axis, rank(x), "average")] = weights.shape[0]
        from kgraph.ops.movement import reshape

        weights = reshape(weights, tuple(shape))
    from kgraph.ops.numpy_api import zeros_like

    return rd.sum(x * weights, axis) / rd.sum(weights + zeros_like(x), axis)


def _scan_axis(x, axis, op):
    """`x` (flattened when axis is None) with the scanned axis moved last, and the way back."""
    from kgraph.ops.movement import reshape
    from kgraph.ops.sort import _last_axis

    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    moved, back = _last_axis(x, axis, op)
    return moved, back, static_dim(moved, -1, op)


def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along `axis` (`keras.ops.cumsum`): a matmul with a triangle of ones."""
    from kgraph.ops.linalg import matmul

    if dtype is not None:
        x = ew.cast(x, dtype)
    if dtype_of(x) == "bool":
        x = ew.cast(x, "int32")
    moved, back, n = _scan_axis(x, axis, "cumsum")
    upper = np.triu(np.ones((n, n), dtype=ew._np_dtype(dtype_of(x))))
    return back(matmul(moved, constant(upper, moved)))


def cumprod(x, axis=None, dtype=None):
    """Cumulative product along `axis` (`keras.ops.cumprod`), one multiply per position."""
    from kgraph.ops.movement import concatenate, expand_dims

    if dtype is not None:
        x = ew.cast(x, dtype)
    moved, back, n = _scan_axis(x, axis, "cumprod")
    running, parts = None, []
    for i in range(n):
        running = moved[..., i] if running is None else running * moved[..., i]
        parts.append(expand_dims(running, -1))
    return back(concatenate(parts, -1))


def diff(a, n=1, axis=-1):
    """The `n`-th discrete difference along `axis` (`keras.ops.diff`)."""
    from kgraph.ops.movement import slice_axis

    for _ in range(n):
        size = static_dim(a, axis, "diff")
        a = slice_axis(a, 1, size, axis) - slice_axis(a, 0, size - 1, axis)
    return a


def logdet(x):
    from kgraph.ops.api_util import eager_only

    eager_only("logdet", x)
    return np.linalg.slogdet(np.asarray(x))[1].astype(floatx() if not is_float(
        dtype_of(x)) else dtype_of(x))


def segment_sum(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Sum of the rows of `data` per segment id (`keras.ops.segment_sum`), a one-hot
    contraction; `num_segments` must be given while tracing (a Python int or a traced
    scalar such as `ops.shape(x)[0]`)."""
    return _segment(data, segment_ids, num_segments, "segment_sum")


def segment_max(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Maximum of the rows of `data` per segment id; empty segments give the dtype's lowest."""
    return _segment(data, segment_ids, num_segments, "segment_max")


def segment_min(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Minimum of the rows of `data` per segment id (`keras.ops.segment_min`); empty segments
    give the dtype's largest value (TensorFlow's rule, as `segment_max` gives the lowest)."""
    return _segment(data, segment_ids, num_segments, "segment_min")


def segment_prod(data, segment_ids, num_segments=None, sorted=False):  # noqa: A002
    """Product of the rows of `data` per segment id (`keras.ops.segment_prod`); empty
    segments give 1. A chain of multiplies over the rows, so while tracing the number of rows
    must be known; the gradient is exact at zeros."""
    return _segment(data, segment_ids, num_segments, "segment_prod")


def _segment(data, segment_ids, num_segments, op):
    from kgraph.ops.api_util import StaticShapeRequiredError, is_symbolic
    from kgraph.ops.movement import expand_dims

    if num_segments is None:
        if is_symbolic(segment_ids):
            raise StaticShapeRequiredError(f"{op}: pass num_segments (a Python int) while "
                                           f"tracing; the output size cannot follow the data")
        num_segments = int(np.max(np.asarray(segment_ids))) + 1
    ids = ew.cast(segment_ids, "int64")
    if is_symbolic(num_segments):  # a traced size (`ops.shape(nodes)[0]` of an open axis)
        from kgraph.ops import arange

        segments = expand_dims(ew.cast(arange(num_segments), "int64"), -1)
    else:
        segments = np.arange(int(num_segments), dtype=np.int64)[:, None]
    hits = ew.equal(expand_dims(ids, 0), segments)
    extra = rank(data) - 1
    for _ in range(extra):
        hits = expand_dims(hits, -1)
    rows = expand_dims(data, 0)
    if op == "segment_sum":
        return rd.sum(ew.cast(hits, dtype_of(data)) * rows, 1)
    if op == "segment_prod":
        static_dim(data, 0, op)  # the chain runs over the rows
        return prod(ew.where(hits, rows, ew.cast(1, dtype_of(data))), 1)
    info = np.finfo if is_float(dtype_of(data)) else np.iinfo
    limits = info(ew._np_dtype(dtype_of(data)))
    empty, reduce = (limits.min, rd.max) if op == "segment_max" else (limits.max, rd.min)
    return reduce(ew.where(hits, rows, constant(np.asarray(empty, limits.dtype), rows)), 1)


def erfinv(x):
    from kgraph.ops.api_util import eager_only
    from scipy.special import erfinv as scipy_erfinv

    eager_only("erfinv", x)
    return scipy_erfinv(np.asarray(x)).astype(dtype_of(to_float(x)))
