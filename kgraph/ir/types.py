"""Tensor types of the op IR: a shape whose dims may be unknown (None) and a dtype name."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
DTYPES = FLOAT_DTYPES + INT_DTYPES + ("bool",)

Shape = tuple  # of int | None


@dataclass(frozen=True)
class TensorType:
    shape: Shape
    dtype: str

    def __post_init__(self):
        if self.dtype not in DTYPES:
            raise TypeError(f"Unknown dtype. Received: dtype={self.dtype!r}")

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __repr__(self):
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


def dtype_name(dtype) -> str:
    """Normalise numpy dtypes, python types and strings to a kgraph dtype name."""
    if isinstance(dtype, str) and dtype in DTYPES:
        return dtype
    if dtype is float:
        return "float32"
    if dtype is int:
        return "int64"
    if dtype is bool:
        return "bool"
    if isinstance(dtype, np.dtype):  # numpy builds `.name` anew on every read: remember it
        name = _NUMPY_NAMES.get(dtype)
        if name is not None:
            return name
    name = np.dtype(dtype).name
    if name not in DTYPES:
        raise TypeError(f"Unsupported dtype. Received: dtype={dtype!r}")
    if isinstance(dtype, np.dtype):
        _NUMPY_NAMES[dtype] = name
    return name


_NUMPY_NAMES: dict = {}  # np.dtype -> kgraph name (a few dozen at most)


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_DTYPES


def broadcast_shapes(a: Shape, b: Shape, op: str = "op") -> Shape:
    """Numpy broadcasting over shapes with unknown (None) dims."""
    rank = max(len(a), len(b))
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    out = []
    for x, y in zip(a, b):
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        elif x is None or y is None:
            out.append(x if y is None else y)
        else:
            raise ValueError(
                f"{op}: shapes cannot be broadcast together. Received: shapes {a} and {b}")
    return tuple(out)
