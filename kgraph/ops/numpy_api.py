"""`keras.ops` numpy-like creation and elementwise math, composed from the primitives.

Creation ops (`ones`, `arange`, `eye`, ...) return numpy arrays: inside a traced graph an array
becomes a constant where it meets a tensor. The `*_like` ops follow their argument: a symbolic
tensor gives a broadcast constant (unknown batch included), an array gives an array.
Integer and bool inputs to float-valued math are cast to floatx first, as Keras does.
"""
from __future__ import annotations

import math

import numpy as np

from kgraph.ir.types import dtype_name, is_float
from kgraph.ops import elementwise as ew
from kgraph.ops import symbolic_shape
from kgraph.ops.api_util import constant, dtype_of, eager_only, floatx, is_symbolic, to_float


def _np_dtype(dtype, default):
    return ew._np_dtype(dtype_name(dtype) if dtype is not None else default)


# -- creation ----------------------------------------------------------------------------------
def _check_shape(shape, op):
    dims = symbolic_shape.fill_open_dim(symbolic_shape.as_dims(shape, op))
    if None in dims:
        raise ValueError(f"{op}: every dimension must be a known int or a dim of a traced "
                         f"tensor (`ops.shape(x)[0]`). Received: shape={shape}. For a shape "
                         f"that follows a tensor use {op}_like or that tensor's ops.shape.")
    return dims


def _fill_dtype(value, dtype):
    if dtype is not None:
        return dtype_name(dtype)
    if hasattr(value, "dtype"):
        return dtype_of(value)
    if isinstance(value, bool):
        return "bool"
    return "int64" if isinstance(value, (int, np.integer)) else floatx()


def _filled(dims, value, dtype):
    """`value` (a number or a traced tensor) broadcast to `dims`, which hold dims of a traced
    tensor (`ops.ones((ops.shape(x)[0], 1))`): a tensor that follows their run-time sizes."""
    from kgraph.ops.movement import broadcast_to

    if is_symbolic(value):
        return broadcast_to(value if dtype is None else ew.cast(value, dtype), dims)
    like = next(d for d in dims if is_symbolic(d))
    return broadcast_to(constant(np.asarray(value, ew._np_dtype(_fill_dtype(value, dtype))),
                                 like), dims)


def full(shape, fill_value, dtype=None):
    """An array of `shape` filled with `fill_value` (`keras.ops.full`); a dim of a traced
    tensor in `shape` (`ops.shape(x)[0]`) makes it a tensor of the graph."""
    dims = _check_shape(shape, "full")
    if is_symbolic(fill_value) or symbolic_shape.has_dims(dims):
        return _filled(dims, fill_value, dtype)
    return np.full(dims, fill_value, dtype=ew._np_dtype(_fill_dtype(fill_value, dtype)))


def ones(shape, dtype=None):
    dims = _check_shape(shape, "ones")
    if symbolic_shape.has_dims(dims):
        return _filled(dims, 1, dtype or floatx())
    return np.ones(dims, dtype=_np_dtype(dtype, floatx()))


def zeros(shape, dtype=None):
    dims = _check_shape(shape, "zeros")
    if symbolic_shape.has_dims(dims):
        return _filled(dims, 0, dtype or floatx())
    return np.zeros(dims, dtype=_np_dtype(dtype, floatx()))


def empty(shape, dtype=None):
    return zeros(shape, dtype)


def full_like(x, fill_value, dtype=None):
    """A tensor shaped like `x` filled with `fill_value` (`keras.ops.full_like`)."""
    dtype = dtype_name(dtype) if dtype is not None else dtype_of(x)
    if not is_symbolic(x):
        return np.full(np.shape(x), fill_value, dtype=ew._np_dtype(dtype))
    from kgraph.ops.movement import broadcast_like

    value = ew.cast(fill_value, dtype) if is_symbolic(fill_value) else \
        constant(np.asarray(fill_value, dtype=ew._np_dtype(dtype)), x)  # x may be a Variable
    return broadcast_like(value, x)


def ones_like(x, dtype=None):
    return full_like(x, 1, dtype)


def zeros_like(x, dtype=None):
    return full_like(x, 0, dtype)


def empty_like(x, dtype=None):
    return zeros_like(x, dtype)


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in `[start, stop)` (`keras.ops.arange`; `step` 1 by default):
    int32 for int arguments, floatx otherwise, as Keras."""
    if stop is None:
        start, stop = 0, start
    if step is None:
        step = 1
    if any(is_symbolic(v) for v in (start, stop, step)):
        return _arange_traced(start, stop, step, dtype)
    ints = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
    return np.arange(start, stop, step, dtype=_np_dtype(dtype, "int32" if ints else floatx()))


def _arange_traced(start, stop, step, dtype):
    """`arange` with bounds known at run time (`ops.arange(ops.shape(x)[1])`): a Range of
    int64 values, or of the count of values scaled by `step` and shifted by `start`."""
    from kgraph.ops.registry import apply

    ints = all(symbolic_shape.is_dim(v) or isinstance(v, (int, np.integer)) for v in
               (start, stop, step))
    dtype = dtype_name(dtype) if dtype is not None else "int32" if ints else floatx()
    if ints and symbolic_shape.constant_int(step) == 1:
        low, high = (ew.cast(v, "int64") if is_symbolic(v) else np.int64(v) for v in (start, stop))
        return ew.cast(apply("Range", low, high), dtype)
    if ints:
        low, high, by = (ew.cast(v, "int64") if is_symbolic(v) else np.int64(v)
                         for v in (start, stop, step))
        count = ew.negative(floor_divide(ew.subtract(low, high), by))  # ceil((high - low) / by)
    else:
        count = ew.cast(ceil(ew.divide(ew.subtract(to_float(stop), start), step)), "int64")
    index = ew.cast(apply("Range", np.int64(0), count), dtype)
    return ew.add(ew.multiply(index, ew.cast(step, dtype)), ew.cast(start, dtype))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """`num` evenly spaced values from `start` to `stop`; `start` and `stop` may be traced
    tensors (`tf.linspace(tf.math.log(1.0), ...)` in a Lambda, the keras.io DDIM example)."""
    if is_symbolic(start) or is_symbolic(stop):
        return _linspace_traced(start, stop, int(num), endpoint, retstep, dtype, axis)
    out = np.linspace(start, stop, num, endpoint=endpoint, retstep=retstep, axis=axis)
    values = out[0] if retstep else out
    values = values.astype(_np_dtype(dtype, floatx()))
    return (values, out[1]) if retstep else values


def _linspace_traced(start, stop, num, endpoint, retstep, dtype, axis):
    """`start + i * step` for i in [0, num), broadcast over the shapes of start and stop, the
    samples along `axis`; with `endpoint` the last sample is `stop` itself, as numpy's."""
    from kgraph.ops.api_util import shape_of
    from kgraph.ops.movement import reshape
    from kgraph.ops.shape_api import moveaxis

    dtype = dtype_name(dtype) if dtype is not None else floatx()
    start, stop = ew.cast(start, dtype), ew.cast(stop, dtype)
    step = ew.divide(ew.subtract(stop, start), np.asarray(max(num - endpoint, 1), dtype))
    rank = max(len(shape_of(start)), len(shape_of(stop)))
    index = np.arange(num, dtype=dtype).reshape((num,) + (1,) * rank)
    values = ew.add(start, ew.multiply(index, step))
    if endpoint and num > 1:
        last = np.arange(num).reshape((num,) + (1,) * rank) == num - 1
        values = ew.where(last, stop, values)
    values = moveaxis(values, 0, axis) if rank else reshape(values, (num,))
    return (values, step) if retstep else values


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    out = np.logspace(start, stop, num, endpoint=endpoint, base=base, axis=axis)
    return out.astype(_np_dtype(dtype, floatx()))


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """`num` values evenly spaced on a log scale from `start` to `stop` (same sign, nonzero),
    `keras.ops.geomspace`; `start` and `stop` may be traced tensors."""
    if is_symbolic(start) or is_symbolic(stop):
        dtype = dtype_name(dtype) if dtype is not None else floatx()
        start, stop = ew.cast(start, dtype), ew.cast(stop, dtype)
        logs = _linspace_traced(ew.log(ew.abs(start)), ew.log(ew.abs(stop)), int(num),
                                endpoint, False, dtype, axis)
        sign = ew.sign(start)
        return ew.exp(logs) * (_expand_dims(sign, axis) if len(sign.shape) else sign)
    out = np.geomspace(start, stop, num, endpoint=endpoint, axis=axis)
    return out.astype(_np_dtype(dtype, floatx()))


def eye(N, M=None, k=0, dtype=None):  # noqa: N803 - the Keras names
    """Ones on the k-th diagonal of an N x M matrix. N and M may be dims of a traced tensor
    (`ops.eye(ops.shape(x)[0])`, the keras.io DDIM example's KID kernel mask)."""
    if any(is_symbolic(v) for v in (N, M)):
        return _diagonal_traced(N, M, k, dtype, ew.equal)
    return np.eye(N, M, k, dtype=_np_dtype(dtype, floatx()))


def _diagonal_traced(rows, columns, k, dtype, compare):
    """`compare(column - k, row)` over the grid of a traced `rows x columns` (default square)
    matrix, as `dtype`: `equal` gives `eye`, `less_equal` gives `tri`."""
    columns = rows if columns is None else columns
    row = _expand_dims(_arange_traced(0, rows, 1, "int64"), 1)
    column = _expand_dims(_arange_traced(0, columns, 1, "int64"), 0)
    hit = compare(ew.subtract(column, np.int64(k)), row)
    return ew.cast(hit, dtype_name(dtype) if dtype is not None else floatx())


def _expand_dims(x, axis):
    from kgraph.ops.movement import expand_dims

    return expand_dims(x, axis)


def identity(n, dtype=None):
    return eye(n, dtype=dtype)


def tri(N, M=None, k=0, dtype=None):  # noqa: N803
    """Ones at and below the k-th diagonal; N and M may be dims of a traced tensor."""
    if any(is_symbolic(v) for v in (N, M)):
        return _diagonal_traced(N, M, k, dtype, ew.less_equal)
    return np.tri(N, M, k, dtype=_np_dtype(dtype, floatx()))


def array(x, dtype=None):
    """`convert_to_tensor` under its numpy name (`keras.ops.array`)."""
    from kgraph.ops.core_api import convert_to_tensor

    return convert_to_tensor(x, dtype)


def copy(x):
    return x if is_symbolic(x) else np.array(x, copy=True)


# -- elementwise math ----------------------------------------------------------------------------
def absolute(x):
    return ew.abs(x)


def ceil(x):
    return -ew.floor(-to_float(x))


def trunc(x):
    """Round toward zero; integers pass through (`keras.ops.trunc`)."""
    if not is_float(dtype_of(x)):
        return x
    return ew.sign(x) * ew.floor(ew.abs(x))


def round(x, decimals=0):  # noqa: A001 - the Keras name
    if not decimals:
        return ew.round(x)
    scale = float(10.0 ** decimals)
    return ew.round(to_float(x) * scale) / scale


def tan(x):
    x = to_float(x)
    return ew.sin(x) / ew.cos(x)


def sinh(x):
    x = to_float(x)
    return (ew.exp(x) - ew.exp(-x)) * 0.5


def cosh(x):
    x = to_float(x)
    return (ew.exp(x) + ew.exp(-x)) * 0.5


def arcsinh(x):
    x = to_float(x)
    ax = ew.abs(x)  # odd symmetry keeps log's argument >= 1 for negative x
    return ew.sign(x) * ew.log(ax + ew.sqrt(ax * ax + 1.0))


def arccosh(x):
    x = to_float(x)
    return ew.log(x + ew.sqrt(x * x - 1.0))


def arctanh(x):
    x = to_float(x)
    return ew.log((x + 1.0) / (1.0 - x)) * 0.5


def log1p(x):
    """`log(1 + x)`, computed as `log(u) * x / (u - 1)` with `u = 1 + x` (Goldberg's trick),
    which keeps full precision for small `x`."""
    x = to_float(x)
    u = x + 1.0
    exact = ew.equal(u, 1.0)
    safe = ew.where(exact, 2.0, u)
    return ew.where(exact, x, ew.log(safe) * x / (safe - 1.0))


def expm1(x):
    """`exp(x) - 1`, with Kahan's correction `(u - 1) * x / log(u)` for small `x`."""
    x = to_float(x)
    u = ew.exp(x)
    exact = ew.equal(u, 1.0)
    near = ew.less(ew.abs(x), 1.0)
    safe = ew.where(ew.logical_or(exact, ew.logical_not(near)), 2.0, u)
    small = ew.where(exact, x, (safe - 1.0) * x / ew.log(safe))
    return ew.where(near, small, u - 1.0)


def log2(x):
    return ew.log(to_float(x)) * (1.0 / math.log(2.0))


def log10(x):
    return ew.log(to_float(x)) * (1.0 / math.log(10.0))


def exp2(x):
    return ew.exp(to_float(x) * math.log(2.0))


def cbrt(x):
    x = to_float(x)
    return ew.sign(x) * ew.power(ew.abs(x), 1.0 / 3.0)


def rsqrt(x):
    return ew.reciprocal(ew.sqrt(to_float(x)))


def deg2rad(x):
    return to_float(x) * (math.pi / 180.0)


def hypot(x1, x2):
    return ew.sqrt(ew.square(to_float(x1)) + ew.square(to_float(x2)))


def logaddexp(x1, x2):
    """`log(exp(x1) + exp(x2))` without overflow."""
    x1, x2 = ew._pair(to_float(x1), to_float(x2))
    high = ew.maximum(x1, x2)
    return high + log1p(ew.exp(-ew.abs(x1 - x2)))


def logaddexp2(x1, x2):
    ln2 = math.log(2.0)
    return logaddexp(to_float(x1) * ln2, to_float(x2) * ln2) * (1.0 / ln2)


def heaviside(x1, x2):
    x1, x2 = ew._pair(to_float(x1), to_float(x2))
    return ew.where(ew.greater(x1, 0.0), 1.0, ew.where(ew.less(x1, 0.0), 0.0, x2))


def signbit(x):
    """True where `x` is negative, -0.0 included (as 1/-0 = -inf)."""
    if not is_float(dtype_of(x)):
        return ew.less(x, 0)
    return ew.logical_or(ew.less(x, 0.0), ew.less(ew.reciprocal(x), 0.0))


def isinf(x):
    if not is_float(dtype_of(x)):
        return ew.not_equal(x, x)
    return ew.equal(ew.abs(x), np.inf)


def isposinf(x):
    return ew.equal(x, np.inf) if is_float(dtype_of(x)) else ew.not_equal(x, x)


def isneginf(x):
    return ew.equal(x, -np.inf) if is_float(dtype_of(x)) else ew.not_equal(x, x)


def isfinite(x):
    if not is_float(dtype_of(x)):
        return ew.equal(x, x)
    return ew.logical_not(ew.logical_or(ew.isnan(x), isinf(x)))


def isreal(x):
    return full_like(x, True, "bool")  # kgraph tensors are real


def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    x1, x2 = ew._pair(to_float(x1), to_float(x2))
    close = ew.less_equal(ew.abs(x1 - x2), ew.abs(x2) * float(rtol) + float(atol))
    close = ew.logical_or(close, ew.equal(x1, x2))  # equal infinities
    if equal_nan:
        close = ew.logical_or(close, ew.logical_and(ew.isnan(x1), ew.isnan(x2)))
    return close


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN to `nan`, infinities to `posinf`/`neginf` (default: the dtype's largest values)."""
    if not is_float(dtype_of(x)):
        return x
    info = np.finfo(ew._np_dtype(dtype_of(x)))
    high = float(info.max) if posinf is None else float(posinf)
    low = float(info.min) if neginf is None else float(neginf)
    x = ew.where(ew.isnan(x), float(nan), x)
    return ew.where(ew.equal(x, np.inf), high, ew.where(ew.equal(x, -np.inf), low, x))


def divide_no_nan(x1, x2):
    """`x1 / x2`, and 0 where `x2` is 0 (`keras.ops.divide_no_nan`); the gradient is 0 there."""
    x1, x2 = ew._pair(to_float(x1), to_float(x2))
    zero = ew.equal(x2, 0.0)
    return ew.where(zero, 0.0, x1 / ew.where(zero, 1.0, x2))


def true_divide(x1, x2):
    """`x1 / x2` as Keras and TensorFlow's `/`: integer and bool operands are divided as
    floats (`uint8_images / 255.0`), the float scalar not cast to their dtype first."""
    return ew.divide(*ew._pair(to_float(x1), to_float(x2)))


def floor_divide(x1, x2):
    """Division rounded toward -inf, as numpy's `//`, for ints and floats."""
    x1, x2 = ew._pair(x1, x2)
    if is_float(dtype_of(x1)):
        return ew.floor(x1 / x2)
    return ew.divide(x1 - ew.mod(x1, x2), x2)  # an exact division, whichever way it rounds


def logical_xor(x1, x2):
    # (an Equal of two bool tensors is emitted as an int32 comparison for TVM: elementwise.py)
    return ew.not_equal(ew.cast(x1, "bool"), ew.cast(x2, "bool"))


def conj(x):
    return x  # kgraph tensors are real


conjugate = conj


def real(x):
    return x


def imag(x):
    return zeros_like(x)


def angle(x):
    x = to_float(x)
    return ew.where(ew.less(x, 0.0), math.pi, 0.0) + zeros_like(x)


def ldexp(x1, x2):
    return to_float(x1) * exp2(x2)


def gcd(x1, x2):
    eager_only("gcd", x1, x2)
    return np.gcd(x1, x2)


def lcm(x1, x2):
    eager_only("lcm", x1, x2)
    return np.lcm(x1, x2)


def nextafter(x1, x2):
    eager_only("nextafter", x1, x2)
    return np.nextafter(x1, x2)


# -- bitwise (integers) --------------------------------------------------------------------------
def bitwise_and(x, y):
    from kgraph.ops.registry import apply

    return apply("BitwiseAnd", *ew._pair(x, y))


def bitwise_xor(x, y):
    from kgraph.ops.registry import apply

    return apply("BitwiseXor", *ew._pair(x, y))


def bitwise_or(x, y):
    return bitwise_xor(bitwise_xor(x, y), bitwise_and(x, y))  # a|b = a^b^(a&b)


def bitwise_invert(x):
    dtype = dtype_of(x)
    if dtype == "bool":
        return ew.logical_not(x)
    ones = np.iinfo(ew._np_dtype(dtype)).max if dtype.startswith("u") else -1
    return bitwise_xor(x, np.asarray(ones, dtype=ew._np_dtype(dtype)))


bitwise_not = bitwise_invert


def bitwise_left_shift(x, y):
    """`x << y` as a multiply by `2**y`: the same bits in two's-complement wrap-around."""
    dtype = ew._np_dtype(dtype_of(x))
    if is_symbolic(y):
        return ew.multiply(x, ew.cast(ew.power(2.0, ew.cast(y, "float32")), dtype_of(x)))
    return ew.multiply(x, np.asarray(2, dtype) ** np.asarray(y, dtype))


def bitwise_right_shift(x, y):
    """`x >> y`: arithmetic for signed ints (floor division by `2**y`), logical for unsigned."""
    dtype = dtype_of(x)
    if dtype.startswith("u"):
        from kgraph.ops.registry import apply

        return apply("ShiftRight", *ew._pair(x, y))
    if is_symbolic(y):
        divisor = ew.cast(ew.power(2.0, ew.cast(y, "float32")), dtype)
    else:
        divisor = np.asarray(2, ew._np_dtype(dtype)) ** np.asarray(y, ew._np_dtype(dtype))
    return floor_divide(x, divisor)


left_shift, right_shift = bitwise_left_shift, bitwise_right_shift


# -- window functions (constants) ---------------------------------------------------------------
def _window(fn):
    def window(x):
        return fn(int(x)).astype(floatx())
    window.__name__ = window.__qualname__ = fn.__name__
    window.__doc__ = f"`keras.ops.{fn.__name__}`: numpy's window as a floatx array."
    return window


bartlett, blackman, hamming, hanning = (_window(f) for f in (np.bartlett, np.blackman,
                                                               np.hamming, np.hanning))


def kaiser(x, beta):
    """`keras.ops.kaiser`: numpy's Kaiser window of `x` points and shape `beta`, floatx."""
    return np.kaiser(int(x), float(beta)).astype(floatx())
