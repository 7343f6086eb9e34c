"""`keras.ops.linalg`: `norm` is composed (traced and eager); the factorizations and solvers
(`det`, `inv`, `solve`, `qr`, `cholesky`, `svd`, `eig`, ...) run eagerly on arrays with numpy
and raise `TracedModeNotSupportedError` on symbolic tensors: they have no lowering to the
portable ONNX op set yet."""
from __future__ import annotations

import functools

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


def _eager(fn):
    """`fn` (written with Keras' parameter names, which `inspect.signature` shows) on arrays;
    TracedModeNotSupportedError on symbolic tensors."""
    def as_array(a):
        return np.asarray(a) if hasattr(a, "shape") else a

    @functools.wraps(fn)
    def op(*args, **kwargs):
        eager_only(f"linalg.{fn.__name__}", *args, *kwargs.values())
        return fn(*map(as_array, args), **{k: as_array(v) for k, v in kwargs.items()})
    op.__doc__ = (f"`keras.ops.{fn.__name__}` on arrays (numpy); raises "
                  f"TracedModeNotSupportedError on symbolic tensors.")
    return op


@_eager
def det(x):
    return np.linalg.det(x)


@_eager
def inv(x):
    return np.linalg.inv(x)


@_eager
def solve(a, b):
    return np.linalg.solve(a, b)


@_eager
def qr(x, mode="reduced"):
    return np.linalg.qr(x, mode)


@_eager
def cholesky(x, upper=False):
    lower = np.linalg.cholesky(x)
    return np.swapaxes(lower, -1, -2) if upper else lower


@_eager
def cholesky_inverse(x, upper=False):
    return np.linalg.inv((np.swapaxes(x, -1, -2) @ x) if upper else (x @ np.swapaxes(x, -1, -2)))


@_eager
def svd(x, full_matrices=True, compute_uv=True):
    return np.linalg.svd(x, full_matrices, compute_uv)


@_eager
def eig(x):
    return np.linalg.eig(x)


@_eager
def eigh(x):
    return np.linalg.eigh(x)


@_eager
def lstsq(a, b, rcond=None):
    return np.linalg.lstsq(a, b, rcond)[0]


@_eager
def lu_factor(x):
    from scipy.linalg import lu_factor as scipy_lu_factor

    lu, piv = scipy_lu_factor(x)
    return lu, piv.astype(np.int32)


@_eager
def solve_triangular(a, b, lower=False):
    from scipy.linalg import solve_triangular as scipy_solve_triangular

    return scipy_solve_triangular(a, b, lower=lower)


@_eager
def slogdet(x):
    return tuple(np.linalg.slogdet(x))


@_eager
def pinv(x, rcond=None):
    """The Moore-Penrose pseudo-inverse; singular values below `rcond` times the largest count
    as zero (default `10 * max(M, N) * eps`, as JAX)."""
    x = _as_float(x, "pinv")
    if rcond is None:
        rcond = 10 * max(x.shape[-2:]) * np.finfo(x.dtype).eps
    return np.linalg.pinv(x, rcond=rcond).astype(x.dtype)


@_eager
def matrix_rank(x, tol=None):
    """The number of singular values above `tol` (default: the largest times
    `max(M, N) * eps`), as int32."""
    x = _as_float(x, "matrix_rank")
    return np.asarray(np.linalg.matrix_rank(x, tol=tol), np.int32)


def _as_float(x, op):
    if x.ndim < 2:
        raise ValueError(f"{op}: expected input to have rank >= 2. Received input with shape "
                         f"{x.shape}")
    from kgraph.ops.api_util import floatx

    return x if x.dtype.kind == "f" else x.astype(floatx())
