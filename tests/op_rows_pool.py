"""Op-table rows of the pooling primitives (kgraph/ops/pool.py): MaxPool and AveragePool over
1, 2 and 3 spatial dims, both layouts, strides equal to, below (overlapping windows) and above
(gaps) the pool size, valid and TF "SAME" padding.

The expectations are written independently of the op's reference loops: every window at once
with `sliding_window_view`, strided, on the padded input (-inf for max; for average the sum
over the zero-padded input divided by the same sum over a padded array of ones). Inputs are
`grid` values (distinct multiples of 0.5), so no window has a tied maximum and central
differences never cross a kink."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kgraph import ops
from op_table import Row, grid, spot


def np_pool(x, kernel, strides, pads, channels_last, mode):
    """Pooling of `x` by one strided sliding-window view of the padded input."""
    dims = len(kernel)
    if channels_last:
        x = np.moveaxis(x, -1, 1)
    spatial = tuple(range(2, 2 + dims))
    widths = [(0, 0), (0, 0)] + [tuple(p) for p in pads]
    step = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)
    window_axes = tuple(range(-dims, 0))

    def window_sums(a, fill, reduce):
        views = sliding_window_view(np.pad(a, widths, constant_values=fill), kernel, spatial)
        return reduce(views[step], axis=window_axes)

    if mode == "max":
        out = window_sums(x, -np.inf, np.max)
    else:
        out = window_sums(x, 0.0, np.sum) / window_sums(np.ones_like(x), 0.0, np.sum)
    return np.moveaxis(out, 1, -1) if channels_last else out


def np_max_pool_grad(g, x, kernel, strides, pads, channels_last):
    """Each window's g added at the window's first maximum (row-major), from one strided
    sliding-window view of the padded input and a scatter-add."""
    dims = len(kernel)
    if channels_last:
        x, g = np.moveaxis(x, -1, 1), np.moveaxis(g, -1, 1)
    widths = [(0, 0), (0, 0)] + [tuple(p) for p in pads]
    padded = np.pad(x, widths, constant_values=-np.inf)
    views = sliding_window_view(padded, kernel, tuple(range(2, 2 + dims)))
    views = views[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)]
    flat = views.reshape(views.shape[:2 + dims] + (-1,))
    offsets = np.unravel_index(np.argmax(flat, axis=-1), kernel)  # first max of each window
    dx = np.zeros_like(padded)
    n, c, *sites = np.indices(g.shape)
    where = [n, c] + [site * s + o for site, s, o in zip(sites, strides, offsets)]
    np.add.at(dx, tuple(where), g)
    dx = dx[(slice(None), slice(None)) + tuple(slice(lo, dx.shape[2 + i] - hi)
                                               for i, (lo, hi) in enumerate(pads))]
    return np.moveaxis(dx, 1, -1) if channels_last else dx


def max_pool_grad_row(id, shape, kernel, strides, pads, channels_last, covers=False,
                      spots=()):
    """MaxPoolGrad(g, MaxPool(x), x), differentiated with respect to g (it is linear in g;
    the routing is piecewise constant in x)."""
    attrs = dict(kernel=kernel, strides=strides, pads=pads, channels_last=channels_last)
    pooled = np_pool(np.zeros(shape), kernel, strides, pads, channels_last, "max").shape
    return Row(id, lambda g, x: ops.apply("MaxPoolGrad", g, ops.apply("MaxPool", x, **attrs),
                                          x, **attrs),
               (grid(*pooled, offset=0.25), grid(*shape)),
               lambda g, x: np_max_pool_grad(g, x, kernel, strides, pads, channels_last),
               op="MaxPoolGrad" if covers else None, wrt=(0,), spots=spots)


def pool_row(id, op, shape, kernel, strides, pads, channels_last, spots=(), covers=False):
    attrs = dict(kernel=kernel, strides=strides, pads=pads, channels_last=channels_last)
    mode = "max" if op == "MaxPool" else "average"
    return Row(id, lambda x: ops.apply(op, x, **attrs), (grid(*shape),),
               lambda x: np_pool(x, kernel, strides, pads, channels_last, mode),
               op=op if covers else None, spots=spots)


F32 = np.float32
_SQUARE = F32([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).reshape(1, 3, 3, 1)
_SIXTEEN = np.arange(1, 17, dtype=F32).reshape(1, 4, 4, 1)

ROWS = [
    pool_row("MaxPool", "MaxPool", (2, 4, 6, 2), (2, 2), (2, 2), ((0, 0), (0, 0)), True,
             covers=True, spots=(spot([_SIXTEEN], F32([[6, 8], [14, 16]]).reshape(1, 2, 2, 1)),)),
    pool_row("MaxPool_overlap_same", "MaxPool", (2, 5, 6, 2), (3, 3), (2, 1),
             ((1, 1), (1, 1)), True),
    pool_row("MaxPool_1d_channels_first", "MaxPool", (2, 3, 7), (3,), (2,), ((1, 1),), False),
    pool_row("MaxPool_gaps_remainder", "MaxPool", (2, 7, 8, 1), (2, 1), (3, 3),
             ((0, 0), (0, 0)), True),
    pool_row("MaxPool_3d", "MaxPool", (1, 4, 5, 3, 2), (2, 3, 2), (2, 1, 1),
             ((0, 0), (1, 1), (0, 1)), True),
    pool_row("MaxPool_3d_channels_first", "MaxPool", (1, 2, 3, 4, 4), (2, 2, 2), (1, 2, 2),
             ((0, 0), (0, 0), (0, 0)), False),
    max_pool_grad_row("MaxPoolGrad", (2, 4, 6, 2), (2, 2), (2, 2), ((0, 0), (0, 0)), True,
                      covers=True),
    max_pool_grad_row("MaxPoolGrad_overlap_same_channels_first", (2, 3, 5, 6), (3, 3), (2, 1),
                      ((1, 1), (1, 1)), False),
    # windows that tile the input (channels first: the upsampling form), a remainder row and
    # column that get no gradient; the spot has tied maxima: the first in row-major order wins
    max_pool_grad_row("MaxPoolGrad_tiled_channels_first", (2, 3, 7, 5), (2, 2), (2, 2),
                      ((0, 0), (0, 0)), False,
                      spots=(spot([F32([[[[1, 2]]]]), F32([[[[5, 5, 3, 7], [5, 1, 7, 7],
                                                             [9, 9, 9, 9]]]])],
                                  F32([[[[1, 0, 0, 2], [0, 0, 0, 0], [0, 0, 0, 0]]]])),)),
    Row("Upsample", lambda x: ops.apply("Upsample", x, scales=(1, 1, 2, 3)), (grid(2, 3, 2, 4),),
        lambda x: x.repeat(2, axis=2).repeat(3, axis=3), op="Upsample"),
    max_pool_grad_row("MaxPoolGrad_3d_gaps", (1, 5, 4, 7, 2), (2, 1, 2), (3, 2, 2),
                      ((0, 0), (0, 0), (1, 0)), True),
    pool_row("AveragePool", "AveragePool", (2, 5, 5, 2), (2, 2), (2, 2), ((0, 1), (0, 1)), True,
             covers=True,
             spots=(spot([_SQUARE], F32([[3, 4.5], [7.5, 9]]).reshape(1, 2, 2, 1)),)),
    pool_row("AveragePool_overlap_same", "AveragePool", (2, 6, 5, 3), (3, 2), (1, 2),
             ((1, 1), (0, 1)), True),
    pool_row("AveragePool_1d", "AveragePool", (3, 9, 2), (2,), (3,), ((0, 0),), True),
    pool_row("AveragePool_2d_channels_first", "AveragePool", (2, 2, 5, 6), (3, 3), (2, 2),
             ((1, 1), (1, 1)), False),
    pool_row("AveragePool_3d", "AveragePool", (1, 3, 4, 5, 2), (2, 2, 3), (1, 2, 2),
             ((0, 1), (0, 0), (1, 1)), True),
]
