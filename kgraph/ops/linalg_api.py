"""`keras.ops.linalg`: `norm` is composed (traced and eager); the factorizations and solvers
(`det`, `inv`, `solve`, `qr`, `cholesky`, `svd`, `eig`, ...) run eagerly on arrays with numpy
and raise `TracedModeNotSupportedError` on symbolic tensors: they have no lowering to the
portable ONNX op set yet."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import reduce as rd
from kgraph.ops.api_util import eager_only, rank, to_float


def norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002 - the Keras name
    """Vector or matrix norm (`keras.ops.norm`, numpy's `ord` values: None/'fro', 'nuc' is
    eager-only, inf, -inf, 0, 1, -1, 2, -2 for matrices eager-only, any p for vectors)."""
    x = to_float(x)
    if axis is None:
        axis = tuple(range(rank(x)))
        if ord is None or rank(x) == 1:
            return _vector_norm(x, ord, axis if ord is None else 0, keepdims)
    axis = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axis) == 1:
        return _vector_norm(x, ord, axis[0], keepdims)
    return _matrix_norm(x, ord, axis, keepdims)


def _vector_norm(x, ord, axis, keepdims):
    if ord is None or ord == 2:
        return ew.sqrt(rd.sum(ew.square(x), axis, keepdims))
    a = ew.abs(x)
    if ord == np.inf:
        return rd.max(a, axis, keepdims)
    if ord == -np.inf:
        return rd.min(a, axis, keepdims)
    if ord == 0:
        return rd.sum(ew.cast(ew.not_equal(x, 0.0), x.dtype if hasattr(x, "dtype") else
                              "float32"), axis, keepdims)
    if ord == 1:
        return rd.sum(a, axis, keepdims)
    return ew.power(rd.sum(ew.power(a, float(ord)), axis, keepdims), 1.0 / float(ord))


def _matrix_norm(x, ord, axis, keepdims):
    r, c = axis
    if ord in (None, "fro"):
        return ew.sqrt(rd.sum(ew.square(x), axis, keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        over, then = (r, c) if ord in (1, -1) else (c, r)
        sums = rd.sum(ew.abs(x), over, keepdims=True)
        pick = rd.max if ord in (1, np.inf) else rd.min
        return pick(sums, then, keepdims) if keepdims else _squeeze_two(pick(sums, then, True),
                                                                          axis)
    eager_only(f"norm(ord={ord!r})", x)
    return np.linalg.norm(np.asarray(x), ord, axis, keepdims)


def _squeeze_two(x, axis):
    from kgraph.ops.shape_api import squeeze

    return squeeze(x, axis)


def _eager(name, fn):
    def op(*args, **kwargs):
        eager_only(f"linalg.{name}", *args, *kwargs.values())
        return fn(*[np.asarray(a) if hasattr(a, "shape") else a for a in args], **kwargs)
    op.__name__ = name
    op.__doc__ = (f"`keras.ops.{name}` on arrays (numpy); raises TracedModeNotSupportedError "
                  f"on symbolic tensors.")
    return op


def _solve_triangular(a, b, lower=False):
    from scipy.linalg import solve_triangular

    return solve_triangular(a, b, lower=lower)


def _lu_factor(x):
    from scipy.linalg import lu_factor

    lu, piv = lu_factor(x)
    return lu, piv.astype(np.int32)


det = _eager("det", np.linalg.det)
inv = _eager("inv", np.linalg.inv)
solve = _eager("solve", np.linalg.solve)
qr = _eager("qr", lambda x, mode="reduced": np.linalg.qr(x, mode))
cholesky = _eager("cholesky", lambda x, upper=False: np.swapaxes(np.linalg.cholesky(x), -1, -2)
                  if upper else np.linalg.cholesky(x))
cholesky_inverse = _eager("cholesky_inverse", lambda x, upper=False: np.linalg.inv(
    (np.swapaxes(x, -1, -2) @ x) if upper else (x @ np.swapaxes(x, -1, -2))))
svd = _eager("svd", lambda x, full_matrices=True, compute_uv=True: np.linalg.svd(
    x, full_matrices, compute_uv))
eig = _eager("eig", np.linalg.eig)
eigh = _eager("eigh", np.linalg.eigh)
lstsq = _eager("lstsq", lambda a, b, rcond=None: np.linalg.lstsq(a, b, rcond)[0])
lu_factor = _eager("lu_factor", _lu_factor)
solve_triangular = _eager("solve_triangular", _solve_triangular)
slogdet = _eager("slogdet", lambda x: tuple(np.linalg.slogdet(x)))
