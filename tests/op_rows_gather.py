"""Op-table rows of the gather family (kgraph/ops/gather.py): Gather and ScatterAdd.

Index inputs are fixed arrays with repeated (and negative) indices, so the scatter-add of the
gradient must accumulate. The expected values are independent numpy formulas: fancy indexing
for the forward, a one-hot contraction for the scatter-add (the reference uses np.add.at).
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ops.registry import apply
from op_table import F32, Row, fixed, normal, spot

REPEATED = np.array([1, 3, 1, 0, 4, 1, -1, 3])  # row 1 thrice, row 3 twice, -1 is row 4
GRID = np.array([[2, 0, 2, 1], [-3, 2, 2, 0]])


def unknown_batch(x):
    """`x` with its first dim unknown to the shape rules (as in a model's batch dim)."""
    return apply("Reshape", x, apply("Shape", x), shape=(None,) + tuple(x.shape[1:]))


def scatter_add(updates, indices, rows):
    shape = (rows,) + tuple(updates.shape[len(indices.shape):])
    return apply("ScatterAdd", updates, indices, np.array(shape), shape=shape)


def np_scatter_add(updates, indices, rows):
    """sum over n of one_hot(indices[n]) (x) updates[n]: the adjoint of a row lookup."""
    flat = indices.reshape(-1) % rows
    one_hot = (flat[:, None] == np.arange(rows)[None, :]).astype(updates.dtype)
    return np.tensordot(one_hot, updates.reshape((flat.size,) + updates.shape[indices.ndim:]),
                        axes=([0], [0]))


ROWS = [
    Row("Gather_1d", lambda x, i: ops.take(x, i, axis=0), (normal(5), fixed(REPEATED)),
        lambda x, i: x[i], op="Gather",
        spots=(spot([F32([10, 20, 30]), np.array([2, -1, 0, 0])], [30, 30, 10, 10]),),
        exact=True),
    Row("Gather_2d_axis0", lambda x, i: ops.take(x, i, axis=0), (normal(5, 3), fixed(GRID)),
        lambda x, i: x[i], exact=True),
    Row("Gather_2d_axis1", lambda x, i: ops.take(x, i, axis=1), (normal(3, 5), fixed(REPEATED)),
        lambda x, i: x[:, i],
        spots=(spot([F32([[1, 2], [3, 4]]), np.array([1, 1, -2])], [[2, 2, 1], [4, 4, 3]]),)),
    Row("Gather_3d_axis1_grid", lambda x, i: ops.take(x, i, axis=-2), (normal(2, 4, 3),
        fixed(GRID)), lambda x, i: x[:, i]),
    Row("Gather_int32_indices", lambda x, i: ops.gather(x, i), (normal(5, 2),
        fixed(REPEATED.astype(np.int32))), lambda x, i: x[i]),
    Row("Gather_unknown_batch_axis0", lambda x, i: ops.take(unknown_batch(x), i, axis=0),
        (normal(6, 3), fixed(np.array([5, 0, 5, -6, 2]))), lambda x, i: x[i]),
    Row("Gather_unknown_batch_axis1", lambda x, i: ops.take(unknown_batch(x), i, axis=1),
        (normal(4, 5), fixed(REPEATED)), lambda x, i: x[:, i]),
    Row("Gather_scalar_index", lambda x: ops.take(x, -2, axis=1), (normal(3, 4),),
        lambda x: x[:, -2]),
    # constant permutations (flip, a reordering): the gradient is the inverse reordering
    Row("Gather_constant_permutation",
        lambda x: ops.take(x, np.array([2, 0, -1, 1, 3]), axis=1), (normal(3, 5),),
        lambda x: x[:, [2, 0, 4, 1, 3]]),
    Row("Gather_flip", lambda x: ops.flip(x, 0), (normal(4, 2, 3),), lambda x: x[::-1]),
    Row("take_flat", lambda x, i: ops.take(x, i), (normal(3, 4), fixed(np.array([11, 0, 11, -1]))),
        lambda x, i: x.reshape(-1)[i]),
    Row("ScatterAdd", lambda u, i: scatter_add(u, i, 5), (normal(2, 4, 3), fixed(GRID)),
        lambda u, i: np_scatter_add(u, i, 5), op="ScatterAdd",
        spots=(spot([F32([[1, 2], [3, 4], [5, 6]]), np.array([2, -1, 0])],
                    [[5, 6], [0, 0], [1, 2], [0, 0], [3, 4]]),)),
    Row("ScatterAdd_int32_1d", lambda u, i: scatter_add(u, i, 6),
        (normal(8), fixed(REPEATED.astype(np.int32))), lambda u, i: np_scatter_add(u, i, 6)),
]
