"""The pieces of the op table shared by tests/test_ops.py and the per-family row files
(tests/op_rows_<family>.py, each defining `ROWS`): the `Row` record and the input makers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


# -- input makers: (rng, float dtype) -> array ---------------------------------------------
def normal(*shape, scale=1.0):
    return lambda rng, f: (rng.normal(size=shape) * scale).astype(f)


def uniform(lo, hi, *shape):
    return lambda rng, f: rng.uniform(lo, hi, size=shape).astype(f)


def away(*shape, gap=0.25, center=0.0):
    """|x - center| in [gap, 2]: keeps finite differences off the kink at `center`."""
    def make(rng, f):
        magnitude = rng.uniform(gap, 2.0, size=shape)
        return (center + rng.choice([-1.0, 1.0], size=shape) * magnitude).astype(f)
    return make


def grid(*shape, offset=0.0):
    """Distinct multiples of 0.5 (+ offset), exact in any float dtype: no ties, no kinks."""
    n = int(np.prod(shape))
    return lambda rng, f: ((rng.permutation(n) - n // 2) * 0.5 + offset).reshape(shape).astype(f)


def ints(lo, hi, *shape, dtype="int64", nonzero=False):
    def make(rng, f):
        values = rng.integers(lo, hi, size=shape)
        if nonzero:
            values[values == 0] = hi - 1 if hi - 1 != 0 else lo
        return values.astype(dtype)
    return make


def bools(*shape):
    return lambda rng, f: rng.random(size=shape) < 0.5


def with_nans(*shape):
    def make(rng, f):
        x = rng.normal(size=shape).astype(f)
        x.flat[::3] = np.nan
        return x
    return make


def fixed(array):
    array = np.asarray(array)
    return lambda rng, f: array.astype(f) if array.dtype.kind == "f" else array


def key(value):
    return fixed(np.asarray(value, dtype=np.uint32))


# -- the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    id: str
    fn: Callable  # kgraph ops applied to Values
    inputs: tuple  # input makers
    expect: Callable  # independent numpy formula (inputs given in float64)
    op: str | None = None  # the registry primitive this row covers
    composite: Callable | None = None  # the kgraph.ops.nn function this row covers
    grad: str = "fd"  # "fd": central differences; "none": gradients must be None
    spots: tuple = ()  # ((input arrays...), expected output)
    exact: bool = False  # onnxruntime must be bit-identical to the numpy reference
    tol: float = 1e-5
    wrt: tuple | None = None  # positions of the inputs to differentiate (default: float ones)
    fd_eps: float = 1e-6


A34, A234 = (3, 4), (2, 3, 4)
F32 = np.float32


def spot(inputs, expected):
    return (tuple(np.asarray(a) for a in inputs), np.asarray(expected))


