"""`keras.ops.numpy`: the numpy-like names of `keras.ops`, gathered from the modules that
implement them (also re-exported at the top of `kgraph.ops`)."""
# flake8: noqa: F401
from kgraph.ops.core_api import get_item, vectorize, view
from kgraph.ops.elementwise import (abs, add, cos, equal, exp, floor, greater,
                                    greater_equal, isnan, less, less_equal, log, logical_and,
                                    logical_not, logical_or, maximum, minimum, mod, multiply,
                                    negative, not_equal, power, reciprocal, sign, sin, sqrt,
                                    square, subtract, tanh, where)
from kgraph.ops.einsum import einsum
from kgraph.ops.gather import take
from kgraph.ops.linalg import dot, matmul
from kgraph.ops.linalg_api import slogdet
from kgraph.ops.movement import broadcast_to, concatenate, reshape, swapaxes, transpose
from kgraph.ops.pad_api import pad
from kgraph.ops.reduce import sum
from kgraph.ops.nn import clip
from kgraph.ops.nan_api import (nanargmax, nanargmin, nancumprod, nancumsum, nanmedian,
                                nanpercentile, nanquantile, nanstd, nanvar, percentile)
from kgraph.ops.numpy_math_api import allclose, fabs, fmax, fmin, fmod, i0, rad2deg, sinc
from kgraph.ops.numpy_api import (bartlett, blackman, hamming, hanning, kaiser)
from kgraph.ops.numpy_api import (absolute, angle, arange, arccosh, arcsinh, arctanh, array,
                                  bitwise_and, bitwise_invert, bitwise_left_shift, bitwise_not,
                                  bitwise_or, bitwise_right_shift, bitwise_xor, cbrt, ceil,
                                  conj, conjugate, copy, cosh, deg2rad, divide_no_nan, empty,
                                  empty_like, exp2, expm1, eye, floor_divide, full, full_like,
                                  gcd, geomspace, heaviside, hypot, identity, imag, isclose, isfinite,
                                  isinf, isneginf, isposinf, isreal, lcm, ldexp, left_shift,
                                  linspace, log1p, log2, log10, logaddexp, logaddexp2,
                                  logical_xor, logspace, nan_to_num, nextafter, ones, ones_like,
                                  real, right_shift, round, signbit, sinh, tan, tri,
                                  true_divide, trunc, zeros, zeros_like)
from kgraph.ops.numpy_api import true_divide as divide  # Keras' divide: ints give floats
from kgraph.ops.reduce_api import (all, amax, amin, any, argmax, argmin, average,
                                   count_nonzero, cumprod, cumsum, diff, logdet, max, mean, min,
                                   nanmax, nanmean, nanmin, nanprod, nansum, prod, ptp, std,
                                   var)
from kgraph.ops.shape_api import (append, array_split, bincount, corrcoef, correlate, cross,
                                  diag, diagflat, diagonal, digitize, dsplit, dstack, expand_dims,
                                  flip, fliplr, flipud, histogram, hsplit, hstack, inner, isin, kron, meshgrid, moveaxis,
                                  ndim, nonzero, outer, ravel, repeat, roll, rot90,
                                  searchsorted, select, size, split, squeeze, stack, tensordot,
                                  tile, trace, trapezoid, tril, triu, unravel_index, vander,
                                  vdot, vsplit, vstack)
from kgraph.ops.sort import (arccos, arcsin, arctan, arctan2, argpartition, argsort, median,
                             quantile, sort, take_along_axis, unique)
