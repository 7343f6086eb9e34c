"""`keras.ops` elementwise math added in Keras 3.15 (`fabs`, `fmax`, `fmin`, `fmod`,
`rad2deg`, `sinc`, `erfc`, `i0`, `allclose`, `cdist`), composed from the primitives, so each
traces, differentiates and runs on onnxruntime and TVM like the rest.

`erfc` and `i0` are special functions without an ONNX op: `erfc` is `1 - erf` where that keeps
full precision (x < 0.5) and a Chebyshev fit (Numerical Recipes' `erfcc`, relative error under
1.2e-7) in the tail, where `1 - erf` would cancel to 0; `i0` is Cephes' Chebyshev expansion (the
one numpy's `i0` evaluates) in float64, Abramowitz and Stegun's polynomials in float32.
"""
from __future__ import annotations

import math

from kgraph.ir.types import is_float
from kgraph.ops import elementwise as ew
from kgraph.ops.api_util import dtype_of, rank, shape_of, to_float


def fabs(x):
    """Absolute value as a float (`keras.ops.fabs`): integer input gives floatx."""
    return ew.abs(to_float(x))


def rad2deg(x):
    """Radians to degrees (`keras.ops.rad2deg`)."""
    return to_float(x) * (180.0 / math.pi)


def _nan_aware(pick):
    def fn(x1, x2):
        x1, x2 = ew._pair(x1, x2)
        picked = pick(x1, x2)
        if not is_float(dtype_of(picked)):
            return picked
        # a NaN loses to a number; two NaNs give NaN
        return ew.where(ew.isnan(x1), x2, ew.where(ew.isnan(x2), x1, picked))
    return fn


def fmax(x1, x2):
    """Elementwise maximum that ignores NaNs (`keras.ops.fmax`, numpy's `fmax`)."""
    return _nan_aware(ew.maximum)(x1, x2)


def fmin(x1, x2):
    """Elementwise minimum that ignores NaNs (`keras.ops.fmin`, numpy's `fmin`)."""
    return _nan_aware(ew.minimum)(x1, x2)


def fmod(x1, x2):
    """Remainder of `x1 / x2` with the sign of `x1` (C's `fmod`, `keras.ops.fmod`), from the
    exact `Mod` (numpy's sign-of-divisor rule) moved by one divisor where the signs differ.
    Integers divided by 0 give 0, as Keras; floats give NaN."""
    x1, x2 = ew._pair(x1, x2)
    if not is_float(dtype_of(x1)):
        zero = ew.cast(0, dtype_of(x2))
        x2 = ew.where(ew.equal(x2, zero), ew.cast(1, dtype_of(x2)), x2)
    r = ew.mod(x1, x2)
    zero = ew.cast(0, dtype_of(r))
    # moved where r is not 0 and its sign is not x1's
    moved = ew.logical_and(ew.not_equal(r, zero), ew.not_equal(ew.sign(r), ew.sign(x1)))
    return ew.where(moved, r - x2, r)


def sinc(x):
    """`sin(pi x) / (pi x)`, 1 at 0 (`keras.ops.sinc`); the gradient at 0 is 0."""
    x = to_float(x)
    zero = ew.equal(x, 0.0)
    safe = ew.where(zero, 1.0, x) * math.pi  # keeps 0/0 out of the value and the gradient
    return ew.where(zero, 1.0, ew.sin(safe) / safe)


# Numerical Recipes' erfcc: erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z / 2), for z >= 0
_ERFC_POLY = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
              -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _horner(t, coefficients):
    """The polynomial with these coefficients (lowest power first) at `t`."""
    out = ew.cast(coefficients[-1], dtype_of(t))
    for c in reversed(coefficients[:-1]):
        out = out * t + c
    return out


def erfc(x):
    """The complementary error function `1 - erf(x)` (`keras.ops.erfc`), precise in the tail
    (`erfc(5)` is 1.5e-12, not 0)."""
    x = to_float(x)
    z = ew.where(ew.less(x, 0.5), 0.5, x)  # a Where, not Max: NaN stays NaN on TVM too
    t = ew.reciprocal(z * 0.5 + 1.0)
    poly = _horner(t, _ERFC_POLY)
    # exp(-z^2) as exp(-h^2) exp(-(z - h)(z + h)), h = z to 4 fraction bits: h^2 is exact, so
    # float32 keeps the tail's relative precision where z^2 alone would round by 8e-6
    h = ew.floor(z * 16.0) * (1.0 / 16.0)
    tail = t * ew.exp(poly) * ew.exp(-h * h) * ew.exp((h - z) * (z + h))
    return ew.where(ew.less(x, 0.5), 1.0 - ew.erf(x), tail)


# Cephes' Chebyshev coefficients for exp(-x) i0(x) on [0, 8] and exp(-x) sqrt(x) i0(x) on (8, inf)
_I0_A = (-4.41534164647933937950e-18, 3.33079451882223809783e-17, -2.43127984654795469359e-16,
         1.71539128555513303061e-15, -1.16853328779934516808e-14, 7.67618549860493561688e-14,
         -4.85644678311192946090e-13, 2.95505266312963983461e-12, -1.72682629144155570723e-11,
         9.67580903537323691224e-11, -5.18979560163526290666e-10, 2.65982372468238665035e-9,
         -1.30002500998624804212e-8, 6.04699502254191894932e-8, -2.67079385394061173391e-7,
         1.11738753912010371815e-6, -4.41673835845875056359e-6, 1.64484480707288970893e-5,
         -5.75419501008210370398e-5, 1.88502885095841655729e-4, -5.76375574538582365885e-4,
         1.63947561694133579842e-3, -4.32430999505057594430e-3, 1.05464603945949983183e-2,
         -2.37374148058994688156e-2, 4.93052842396707084878e-2, -9.49010970480476444210e-2,
         1.71620901522208775349e-1, -3.04682672343198398683e-1, 6.76795274409476084995e-1)
_I0_B = (-7.23318048787475395456e-18, -4.83050448594418207126e-18, 4.46562142029675999901e-17,
         3.46122286769746109310e-17, -2.82762398051658348494e-16, -3.42548561967721913462e-16,
         1.77256013305652638360e-15, 3.81168066935262242075e-15, -9.55484669882830764870e-15,
         -4.15056934728722208663e-14, 1.54008621752140982691e-14, 3.85277838274214270114e-13,
         7.18012445138366623367e-13, -1.79417853150680611778e-12, -1.32158118404477131188e-11,
         -3.14991652796324136454e-11, 1.18891471078464383424e-11, 4.94060238822496958910e-10,
         3.39623202570838634515e-9, 2.26666899049817806459e-8, 2.04891858946906374183e-7,
         2.89137052083475648297e-6, 6.88975834691682398426e-5, 3.36911647825569408990e-3,
         8.04490411014108831608e-1)


def _chebyshev(x, coefficients):
    """Cephes' `chbevl`: the Chebyshev series at `x` (Clenshaw's recurrence)."""
    b0, b1, b2 = ew.cast(coefficients[0], dtype_of(x)), 0.0, 0.0
    for c in coefficients[1:]:
        b2, b1 = b1, b0
        b0 = x * b1 - b2 + c
    return (b0 - b2) * 0.5


# Abramowitz & Stegun 9.8.1 (i0 on [0, 3.75], error < 1.6e-7) and 9.8.2 (sqrt(x) exp(-x) i0
# on [3.75, inf), error < 1.9e-7), in powers of (x / 3.75)^2 and 3.75 / x
_I0_SMALL = (1.0, 3.5156229, 3.0899424, 1.2067492, 0.2659732, 0.0360768, 0.0045813)
_I0_LARGE = (0.39894228, 0.01328592, 0.00225319, -0.00157565, 0.00916281, -0.02057706,
             0.02635537, -0.01647633, 0.00392377)


def i0(x):
    """The modified Bessel function of the first kind, order 0 (`keras.ops.i0`).

    float64 evaluates Cephes' Chebyshev series (numpy's, full precision); other float types
    the short Abramowitz-Stegun polynomials (relative error < 5e-7, a few float32 ulps), whose
    graph is a quarter the size: TVM's build time grows fast with the length of an
    elementwise chain."""
    x = ew.abs(to_float(x))
    split, (near_series, far_series) = (8.0, (_i0_near, _i0_far)) \
        if dtype_of(x) == "float64" else (3.75, (_i0_near_short, _i0_far_short))
    near = ew.less_equal(x, split)
    small = ew.where(near, x, 0.0)  # each branch sees only its own range (no 1/0 in the far one)
    large = ew.where(near, split, x)
    half = ew.exp(x * 0.5)  # exp(x) as two halves: i0 is finite a while after exp(x) overflows
    return ew.where(near, near_series(small), far_series(large) / ew.sqrt(large)) * half * half


def _i0_near(x):  # exp(-x) i0(x) on [0, 8]
    return _chebyshev(x * 0.5 - 2.0, _I0_A)


def _i0_far(x):  # exp(-x) sqrt(x) i0(x) on (8, inf)
    return _chebyshev(32.0 / x - 2.0, _I0_B)


def _i0_near_short(x):
    t = x * (1.0 / 3.75)
    return _horner(t * t, _I0_SMALL) * ew.exp(-x)


def _i0_far_short(x):
    return _horner(3.75 / x, _I0_LARGE)


def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether every element of `x1` is close to `x2` (`keras.ops.allclose`): a bool scalar."""
    from kgraph.ops.numpy_api import isclose
    from kgraph.ops.reduce_api import all as all_of

    return all_of(isclose(x1, x2, rtol, atol, equal_nan))


def cdist(x, y):
    """Euclidean distances between the rows of `x` and of `y` (`keras.ops.cdist`): inputs of
    rank >= 2 with equal last dims; `(..., n, d)` and `(..., m, d)` give `(..., n, m)`."""
    from kgraph.ops.movement import expand_dims
    from kgraph.ops.reduce import sum as reduce_sum

    if rank(x) < 2 or rank(y) < 2:
        raise ValueError(f"cdist: inputs must have rank >= 2. Received: x.shape="
                         f"{shape_of(x)}, y.shape={shape_of(y)}")
    if None not in (shape_of(x)[-1], shape_of(y)[-1]) and shape_of(x)[-1] != shape_of(y)[-1]:
        raise ValueError(f"cdist: the last dimensions of x and y must match. Received: "
                         f"x.shape={shape_of(x)}, y.shape={shape_of(y)}")
    x, y = ew._pair(to_float(x), to_float(y))
    diff = expand_dims(x, -2) - expand_dims(y, -3)
    return ew.sqrt(reduce_sum(diff * diff, -1))

