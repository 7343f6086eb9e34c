"""Matrix multiplication (numpy `matmul` semantics for operands of rank >= 2)."""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType, broadcast_shapes
from kgraph.ops.registry import apply, defop


def _matmul_infer(types):
    a, b = types
    if a.dtype != b.dtype:
        raise TypeError(f"MatMul: operands have different dtypes: {a.dtype} and {b.dtype}")
    if len(a.shape) < 2 or len(b.shape) < 2:
        raise ValueError(f"MatMul needs operands of rank >= 2. Received: {a.shape} @ {b.shape}")
    k1, k2 = a.shape[-1], b.shape[-2]
    if k1 is not None and k2 is not None and k1 != k2:
        raise ValueError(f"MatMul: inner dimensions differ. Received: {a.shape} @ {b.shape}")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], "MatMul")
    return [TensorType(batch + (a.shape[-2], b.shape[-1]), a.dtype)]


def _matmul_grad(g, y, a, b):
    from kgraph.ops.movement import swapaxes

    return (matmul(g, swapaxes(b, -1, -2)), matmul(swapaxes(a, -1, -2), g))


defop("MatMul", _matmul_infer, lambda a, b: np.matmul(a, b), grad=_matmul_grad)


def matmul(x1, x2):
    from kgraph.ops.elementwise import _pair
    from kgraph.ops.movement import expand_dims, squeeze

    a, b = _pair(x1, x2)
    a_vec, b_vec = len(a.shape) == 1, len(b.shape) == 1
    if a_vec:
        a = expand_dims(a, 0)
    if b_vec:
        b = expand_dims(b, -1)
    out = apply("MatMul", a, b)
    if b_vec:
        out = squeeze(out, -1)
    if a_vec:
        out = squeeze(out, -2 if not b_vec else -1)
    return out


def dot(x1, x2):
    return matmul(x1, x2)


# `keras.ops.linalg` names, so that `kgraph.ops.linalg` is that namespace
from kgraph.ops.linalg_api import (cholesky, cholesky_inverse, det, eig, eigh, inv,  # noqa: E402,F401
                                   lstsq, lu_factor, matrix_rank, norm, pinv, qr, solve,
                                   solve_triangular, svd)
from kgraph.ops.jvp import jvp  # noqa: E402,F401 - keras.ops.linalg.jvp
