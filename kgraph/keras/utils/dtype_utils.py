"""Keras 3's dtype names and type promotion: `keras.backend.standardize_dtype`,
`is_float_dtype`, `is_int_dtype` and `result_type`.

The promotion is Keras 3's (JAX's) lattice with weak Python scalars: `int` and `float`
arguments take the kind, not the width, of the other side (`result_type("float16", float)` is
float16) and resolve to `floatx()`'s width when alone. Keras on JAX then narrows every 64-bit
result to 32 bits; kgraph computes int64 and float64 (as Keras on TensorFlow keeps them), so
its `result_type` keeps 64-bit results and matches what `keras.ops` give here.
"""
from __future__ import annotations

import functools

ALLOWED_DTYPES = ("float16", "float32", "float64", "uint8", "uint16", "uint32", "uint64",
                  "int8", "int16", "int32", "int64", "bfloat16", "bool", "string",
                  "float8_e4m3fn", "float8_e5m2", "complex64", "complex128")
FLOAT8_DTYPES = ("float8_e4m3fn", "float8_e5m2")
# what a Python type means as a dtype (Keras on JAX: `int` is int32, as kgraph's constants)
_PYTHON_DTYPES = {bool: "bool", int: "int32", float: "float32", str: "string",
                  complex: "complex64", "int": "int32"}


def standardize_dtype(dtype):
    """The Keras name of `dtype` (a string, a numpy dtype or type, a Python type, an object
    with `.name`); `None` is `floatx()`.

    Raises:
        ValueError: `dtype` names no dtype Keras knows (`"Invalid dtype: foo"`).

    Example:
        >>> keras.backend.standardize_dtype(np.float32), keras.backend.standardize_dtype(int)
        ('float32', 'int32')
    """
    if dtype is None:
        from kgraph import config

        return config.floatx()
    try:
        dtype = _PYTHON_DTYPES.get(dtype, dtype)
    except TypeError:  # unhashable: no dtype, said below
        pass
    if hasattr(dtype, "name"):
        dtype = dtype.name
    elif hasattr(dtype, "__name__"):
        dtype = dtype.__name__
    elif "torch" in str(dtype) or "jax.numpy" in str(dtype):
        dtype = str(dtype).split(".")[-1]
    if dtype not in ALLOWED_DTYPES:
        raise ValueError(f"Invalid dtype: {dtype}")
    return dtype


def is_float_dtype(dtype) -> bool:
    """True for float16/32/64, bfloat16 and the float8 dtypes."""
    dtype = standardize_dtype(dtype)
    return dtype.startswith(("float", "bfloat"))


def is_int_dtype(dtype) -> bool:
    """True for the signed and unsigned integer dtypes (not bool)."""
    dtype = standardize_dtype(dtype)
    return dtype.startswith(("int", "uint"))


# -- the promotion lattice: each type and the types just above it (JAX's, as Keras 3) ----------
_WEAK_INT, _WEAK_FLOAT = "int", "float"
_ABOVE = {
    "bool": [_WEAK_INT],
    "uint8": ["int16", "uint16"], "uint16": ["int32", "uint32"],
    "uint32": ["int64", "uint64"], "uint64": [_WEAK_FLOAT],
    _WEAK_INT: ["uint8", "int8", "complex64"],
    "int8": ["int16"], "int16": ["int32"], "int32": ["int64"], "int64": [_WEAK_FLOAT],
    _WEAK_FLOAT: ["bfloat16", "float16"],
    "bfloat16": ["float32"], "float16": ["float32"], "float32": ["float64", "complex64"],
    "float64": ["complex128"], "complex64": ["complex128"], "complex128": [],
}


def _upper_bounds():
    """Every type's set of types at or above it (the transitive closure of `_ABOVE`)."""
    bounds = {}
    for node in _ABOVE:
        seen, todo = {node}, [node]
        while todo:
            for up in _ABOVE[todo.pop()]:
                if up not in seen:
                    seen.add(up)
                    todo.append(up)
        bounds[node] = seen
    return bounds


_UPPER_BOUNDS = _upper_bounds()


@functools.lru_cache(512)
def _least_upper_bound(*nodes):
    unknown = [n for n in nodes if n not in _UPPER_BOUNDS]
    if unknown:
        raise ValueError(f"dtype={unknown[0]!r} is not a valid dtype for Keras type promotion.")
    common = set.intersection(*(_UPPER_BOUNDS[n] for n in nodes))
    least = [c for c in common if common <= _UPPER_BOUNDS[c]]
    if len(least) != 1:
        raise ValueError(f"Input dtypes {tuple(nodes)} have no available implicit dtype "
                         "promotion path. Try explicitly casting inputs to the desired output "
                         "type.")
    return least[0]


def _weak(dtype):
    """The weak (width-less) kind of a Python scalar's dtype (`int`, `float`; bool stays)."""
    if dtype == "bool":
        return dtype
    return _WEAK_FLOAT if "float" in dtype else _WEAK_INT


def _resolve_weak(dtype):
    """A weak result at `floatx()`'s width (int32/float32 by default), by its kind."""
    from kgraph import config

    bits = config.floatx()[-2:]
    kind = "f" if dtype == "bfloat16" else dtype[:1]
    return {"b": "bool", "i": f"int{bits}", "u": f"uint{bits}"}.get(kind, f"float{bits}")


def result_type(*dtypes):
    """The dtype Keras 3's promotion rules give to an operation on `dtypes`.

    Each argument is read by `standardize_dtype` (`None` is `floatx()`); the Python types
    `int` and `float` are weak: they take the other arguments' width. No argument gives
    `floatx()`. Unlike Keras on JAX, 64-bit results stay 64-bit (kgraph computes them).

    Raises:
        ValueError: a float8 argument (no implicit conversion), or dtypes without a common
            promotion.

    Example:
        >>> keras.backend.result_type("int32", "float16"), keras.backend.result_type("bfloat16", int)
        ('float16', 'bfloat16')
    """
    from kgraph import config

    if not dtypes:
        return config.floatx()
    if any(isinstance(d, str) and d in FLOAT8_DTYPES for d in dtypes):
        raise ValueError("There is no implicit conversions from float8 dtypes to others. You "
                         f"must cast it internally. Received: {dtypes}")
    names, weak = [], []
    for d in dtypes:
        names.append(standardize_dtype(config.floatx() if d is None else d))
        weak.append(d is int or d is float)
    if len(names) == 1:
        out, out_weak = names[0], weak[0]
    elif len(set(names)) == 1 and not all(weak):
        out, out_weak = names[0], False
    elif all(weak):
        out, out_weak = _least_upper_bound(*sorted(set(names))), True
    else:
        nodes = {_weak(n) if w else n for n, w in zip(names, weak)}
        out = _least_upper_bound(*sorted(nodes))
        out_weak = out in (_WEAK_INT, _WEAK_FLOAT)
    if out_weak and out != "bool":
        out = _resolve_weak(out)
    return out
