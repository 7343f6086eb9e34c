"""`keras.ops` NaN-aware reductions, scans and quantiles (`nanargmax`, `nanargmin`,
`nancumsum`, `nancumprod`, `nanvar`, `nanstd`, `nanquantile`, `nanpercentile`, `nanmedian`)
and `percentile`, as compositions: NaNs are replaced by the reduction's identity and counted
out, so each traces and differentiates like its NaN-free form.

`nanquantile` sorts with NaNs replaced by +inf (they sort last) and reads each slice at
`q * (count - 1)`, `count` the slice's non-NaN entries, with a gather by run-time positions; an
all-NaN slice gives NaN. The quantile axis must have a known size while tracing (a sort).
Results follow JAX's (the reference Keras backend): `nanargmax` of an all-NaN slice is -1.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import is_float
from kgraph.ops import elementwise as ew
from kgraph.ops import reduce as rd
from kgraph.ops.api_util import dtype_of, rank, static_dim, to_float


def _filled(x, value):
    return ew.where(ew.isnan(x), value, x) if is_float(dtype_of(x)) else x


def _nan_arg(x, axis, keepdims, fill, pick):
    from kgraph.ops.reduce_api import all as all_of

    index = pick(_filled(x, fill), axis, keepdims)
    if not is_float(dtype_of(x)):
        return index
    return ew.where(all_of(ew.isnan(x), axis, keepdims), -1, index)


def nanargmax(x, axis=None, keepdims=False):
    """Index of the first maximum ignoring NaNs (`keras.ops.nanargmax`); -1 for an all-NaN
    slice, as JAX."""
    from kgraph.ops.reduce_api import argmax

    return _nan_arg(x, axis, keepdims, -np.inf, argmax)


def nanargmin(x, axis=None, keepdims=False):
    """Index of the first minimum ignoring NaNs (`keras.ops.nanargmin`); -1 for an all-NaN
    slice, as JAX."""
    from kgraph.ops.reduce_api import argmin

    return _nan_arg(x, axis, keepdims, np.inf, argmin)


def nancumsum(x, axis=None, dtype=None):
    """Cumulative sum treating NaNs as 0 (`keras.ops.nancumsum`)."""
    from kgraph.ops.reduce_api import cumsum

    return cumsum(_filled(x, 0.0), axis, dtype)


def nancumprod(x, axis=None, dtype=None):
    """Cumulative product treating NaNs as 1 (`keras.ops.nancumprod`)."""
    from kgraph.ops.reduce_api import cumprod

    return cumprod(_filled(x, 1.0), axis, dtype)


def nanvar(x, axis=None, keepdims=False):
    """Variance of the non-NaN entries (`keras.ops.nanvar`); NaN for an all-NaN slice."""
    x = to_float(x)
    valid = ew.logical_not(ew.isnan(x))
    count = rd.sum(ew.cast(valid, dtype_of(x)), axis, True)
    filled = ew.where(valid, x, 0.0)  # NaN-free, so no NaN reaches the gradient either
    mean = rd.sum(filled, axis, True) / count
    deviation = ew.where(valid, filled - mean, 0.0)
    out = rd.sum(deviation * deviation, axis, True) / count
    return out if keepdims else _drop(out, axis)


def _drop(x, axis):
    from kgraph.ops.movement import squeeze

    axes = range(rank(x)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    for a in sorted((a % rank(x) for a in axes), reverse=True):
        x = squeeze(x, a)
    return x


def nanstd(x, axis=None, keepdims=False):
    """Standard deviation of the non-NaN entries (`keras.ops.nanstd`)."""
    return ew.sqrt(nanvar(x, axis, keepdims))


def percentile(x, q, axis=None, method="linear", keepdims=False):
    """The `q`-th percentiles (`q` in [0, 100]) along `axis` (`keras.ops.percentile`)."""
    from kgraph.ops.sort import quantile

    return quantile(x, np.asarray(q, np.float64) / 100.0, axis, method, keepdims)


def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    """`percentile` of the non-NaN entries (`keras.ops.nanpercentile`)."""
    return nanquantile(x, np.asarray(q, np.float64) / 100.0, axis, method, keepdims)


def nanmedian(x, axis=None, keepdims=False):
    """Median of the non-NaN entries (`keras.ops.nanmedian`)."""
    return nanquantile(x, 0.5, axis=axis, keepdims=keepdims)


def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    """The `q`-th quantiles of the non-NaN entries along `axis` (`keras.ops.nanquantile`),
    numpy's methods `linear`, `lower`, `higher`, `midpoint` and `nearest`.

    Args:
        x: input tensor; integers compute as floatx.
        q: a float or a list/array of floats in [0, 1] (a Python value, not a tensor).
        axis: one axis, or None for all entries.
        method: how to pick between the two neighbours of a position between entries.
        keepdims: keep the reduced axis with size 1.

    Returns:
        `q`'s shape followed by the reduced shape of `x`; NaN for an all-NaN slice.
    """
    from kgraph.ops.movement import reshape
    from kgraph.ops.sort import _last_axis, _stack_quantiles, sort

    if method not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise ValueError(f"nanquantile: unknown method. Received: method={method!r}")
    x = to_float(x)
    full_rank = None
    if axis is None:
        x, axis, full_rank = reshape(x, (-1,)), 0, rank(x)
    elif not isinstance(axis, (int, np.integer)):
        if len(axis) != 1:
            raise ValueError(f"nanquantile: one axis at a time. Received: axis={axis}")
        axis = axis[0]
    static_dim(x, axis, "nanquantile")
    moved, back = _last_axis(x, axis, "nanquantile")
    nan = ew.isnan(moved)
    ordered = sort(ew.where(nan, np.inf, moved), -1)
    count = rd.sum(ew.cast(ew.logical_not(nan), dtype_of(x)), -1, True)
    qs = np.asarray(q, dtype=np.float64)
    picks = [_pick(ordered, count, float(v), method) for v in qs.reshape(-1)]
    return _stack_quantiles(picks, qs, ordered, back, keepdims, full_rank)


def _pick(ordered, count, q, method):
    """The quantile `q` of each row of `ordered` (ascending, its first `count` entries valid),
    as a tensor without the last axis."""
    from kgraph.ops.sort import take_along_axis

    position = ew.maximum(count - 1.0, 0.0) * q
    low_index, high_index = ew.floor(position), -ew.floor(-position)
    fraction = position - low_index

    def at(index):
        return take_along_axis(ordered, ew.cast(index, "int64"), -1)

    low, high = at(low_index), at(high_index)
    if method == "lower":
        out = low
    elif method == "higher":
        out = high
    elif method == "midpoint":
        out = (low + high) * 0.5
    elif method == "nearest":
        out = at(ew.round(position))  # ties to even, as numpy
    else:
        # written so that equal neighbours (inf included) give themselves, not inf - inf
        out = ew.where(ew.equal(low, high), low, low + (high - low) * fraction)
    out = ew.where(ew.equal(count, 0.0), np.nan, out)
    return out[..., 0]

