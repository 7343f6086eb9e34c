"""`keras.ops` array manipulation: stack/split, tile/repeat, flip/roll, triangles and diagonals,
products (outer, tensordot, kron), selection and index arithmetic.

Everything is composed from Reshape/Transpose/Slice/Concat/Gather/MatMul, so gradients and both
backends come for free. Ops whose result size depends on a dimension (flip, roll, split, tile,
diag, ...) need that dimension known while tracing and raise `StaticShapeRequiredError` otherwise.
Ops whose result shape depends on the data (`nonzero`, `bincount` without `minlength`, ...) run
eagerly on arrays only.
"""
from __future__ import annotations

import builtins

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops import symbolic_shape
from kgraph.ops.api_util import (axis_index, constant, dtype_of, eager_only, is_symbolic, rank,
                                 shape_of, static_dim, to_float)


def _index(axis, ndim, value):
    """The getitem index that picks `value` (an int or a slice) along `axis`."""
    return (slice(None),) * axis + (value,)


def _as_tensor(x):
    """Python numbers and lists as Keras converts them (floats floatx, ints int32)."""
    from kgraph.ops.core_api import convert_to_tensor

    return x if hasattr(x, "shape") else convert_to_tensor(x)


def expand_dims(x, axis):
    x = _as_tensor(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_rank = rank(x) + len(axes)
    for a in sorted(a % out_rank for a in axes):
        x = mv.expand_dims(x, a)
    return x


def squeeze(x, axis=None):
    """Drop length-1 axes: `axis` (int or tuple), or every known length-1 axis."""
    x = _as_tensor(x)
    shape = shape_of(x)
    if axis is None:
        axes = [i for i, d in enumerate(shape) if d == 1]
    else:
        axes = [axis_index(a, len(shape), "squeeze") for a in
                ((axis,) if isinstance(axis, int) else axis)]
        bad = [a for a in axes if shape[a] not in (1, None)]
        if bad:
            raise ValueError(f"squeeze: axis {bad[0]} has size {shape[bad[0]]}, not 1. "
                             f"Received: shape={shape}, axis={axis}")
    for a in sorted(axes, reverse=True):
        x = mv.squeeze(x, a)
    return x


def ravel(x):
    return mv.reshape(x, (-1,))


def size(x):
    shape = shape_of(x)
    if None in shape:
        return mv.count(x, tuple(range(len(shape))))
    return int(np.prod(shape, dtype=np.int64))


def ndim(x):
    return rank(x)


def moveaxis(x, source, destination):
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    n = rank(x)
    src, dst = [axis_index(a, n, "moveaxis") for a in src], [axis_index(a, n, "moveaxis")
                                                             for a in dst]
    order = [a for a in range(n) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return mv.transpose(x, order)


def stack(x, axis=0):
    out_rank = rank(x[0]) + 1
    return mv.concatenate([mv.expand_dims(t, axis % out_rank) for t in x], axis % out_rank)


def unstack(x, num=None, axis=0):
    n = static_dim(x, axis, "unstack")
    axis = axis_index(axis, rank(x), "unstack")
    return [x[_index(axis, rank(x), i)] for i in range(n)]


def _split_points(n, indices_or_sections, op, exact):
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if exact and n % sections:
            raise ValueError(f"{op}: a size of {n} does not split into {sections} equal "
                             f"sections. Received: indices_or_sections={sections}")
        sizes = [n // sections + (1 if i < n % sections else 0) for i in range(sections)]
        return list(np.cumsum([0] + sizes))
    return [0] + [int(i) for i in indices_or_sections] + [n]


def split(x, indices_or_sections, axis=0):
    """Split `x` along `axis` into equal sections or at the given indices (`keras.ops.split`)."""
    n = static_dim(x, axis, "split")
    points = _split_points(n, indices_or_sections, "split", exact=True)
    return [mv.slice_axis(x, builtins.min(a, n), builtins.min(b, n), axis)
            for a, b in zip(points[:-1], points[1:])]


def array_split(x, indices_or_sections, axis=0):
    n = static_dim(x, axis, "array_split")
    points = _split_points(n, indices_or_sections, "array_split", exact=False)
    return [mv.slice_axis(x, a, b, axis) for a, b in zip(points[:-1], points[1:])]


def vsplit(x, indices_or_sections):
    return split(x, indices_or_sections, axis=0)


def hsplit(x, indices_or_sections):
    """`split` along axis 1 (axis 0 of a 1-D tensor), as `keras.ops.hsplit`."""
    return split(x, indices_or_sections, axis=0 if rank(x) == 1 else 1)


def dsplit(x, indices_or_sections):
    """`split` along axis 2 (`keras.ops.dsplit`); `x` must have rank >= 3."""
    _need_rank(x, 3, "dsplit")
    return split(x, indices_or_sections, axis=2)


def _need_rank(x, least, op):
    if rank(x) < least:
        raise ValueError(f"{op}: the input must have rank >= {least}. Received: "
                         f"x.shape={tuple(shape_of(x))}")


def _at_least(x, n):
    while rank(x) < n:
        x = mv.expand_dims(x, 0) if rank(x) < 2 or n == 2 else mv.expand_dims(x, rank(x))
    return x


def hstack(xs):
    return mv.concatenate(list(xs), 0 if rank(xs[0]) == 1 else 1)


def vstack(xs):
    return mv.concatenate([_at_least(x, 2) for x in xs], 0)


def dstack(xs):
    def three(x):
        if rank(x) == 1:
            x = mv.expand_dims(x, 0)
        return mv.expand_dims(x, 2) if rank(x) == 2 else x
    return mv.concatenate([three(x) for x in xs], 2)


def append(x1, x2, axis=None):
    if axis is None:
        return mv.concatenate([ravel(x1), ravel(x2)], 0)
    return mv.concatenate([x1, x2], axis)


def flip(x, axis=None):
    """Reverse the order of elements along `axis` (all axes when None)."""
    axes = range(rank(x)) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    for a in axes:
        n = static_dim(x, a, "flip")
        x = mv.apply("Gather", x, np.arange(n - 1, -1, -1, dtype=np.int64),
                     axis=axis_index(a, rank(x), "flip"))
    return x


def fliplr(x):
    """Reverse axis 1 (`keras.ops.fliplr`); `x` must have rank >= 2."""
    _need_rank(x, 2, "fliplr")
    return flip(x, 1)


def flipud(x):
    """Reverse axis 0 (`keras.ops.flipud`); `x` must have rank >= 1."""
    _need_rank(x, 1, "flipud")
    return flip(x, 0)


def roll(x, shift, axis=None):
    """Shift elements along `axis`, wrapping around (`keras.ops.roll`)."""
    if axis is None:
        return mv.reshape(roll(ravel(x), shift, 0), shape_of(x))
    shifts = (shift,) if isinstance(shift, int) else tuple(shift)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for s, a in zip(shifts, axes):
        n = static_dim(x, a, "roll")
        s = s % n if n else 0
        if s:
            x = mv.concatenate([mv.slice_axis(x, n - s, n, a), mv.slice_axis(x, 0, n - s, a)], a)
    return x


def rot90(array, k=1, axes=(0, 1)):
    k = k % 4
    a, b = axes
    for _ in range(k):
        array = mv.swapaxes(flip(array, b), a, b)
    return array


def tile(x, repeats):
    """Repeat `x` whole along each axis (`keras.ops.tile`) by broadcast and reshape. A repeat
    may be a dim of a traced tensor (`tile(token, (ops.shape(x)[0], 1, 1))`) and `repeats` a
    1-D int tensor of them (`ops.concatenate([ops.expand_dims(batch, -1), [1, 1]])`)."""
    reps = symbolic_shape.fill_open_dim(symbolic_shape.as_dims(repeats, "tile"))
    if None in reps:
        raise ValueError(f"tile: a None repeat has no count; use the dim of a traced tensor "
                         f"(`ops.shape(x)[0]`) for one known only at run time. Received: "
                         f"repeats={tuple(reps)}")
    out_rank = builtins.max(rank(x), len(reps))
    dims = list(symbolic_shape.shape(x) if is_symbolic(x) else shape_of(x))
    if len(dims) < out_rank:
        dims = [1] * (out_rank - len(dims)) + dims
        x = mv.reshape(x, dims)
    reps = [1] * (out_rank - len(reps)) + reps
    if builtins.all(isinstance(r, int) and r == 1 for r in reps):
        return x
    spread, broadcast, merged = [], [], []  # x with a unit axis before each tiled one
    for r, d in zip(reps, dims):
        if isinstance(r, int) and r == 1:
            spread, broadcast, merged = spread + [d], broadcast + [d], merged + [d]
        elif isinstance(d, int) and d == 1:
            spread, broadcast, merged = spread + [1], broadcast + [r], merged + [r]
        else:
            spread, broadcast, merged = spread + [1, d], broadcast + [r, d], merged + [r * d]
    big = mv.broadcast_to(mv.reshape(x, spread) if len(spread) > len(dims) else x, broadcast)
    return mv.reshape(big, merged) if len(merged) < len(broadcast) else big


def repeat(x, repeats, axis=None):
    """Repeat each element `repeats` times along `axis` (`keras.ops.repeat`)."""
    if axis is None:
        x, axis = ravel(x), 0
    axis = axis_index(axis, rank(x), "repeat")
    if (repeats is None or symbolic_shape.is_dim(repeats)) and shape_of(x)[axis] == 1:
        # `ops.shape(x)[0]` of a traced batch: a (1, ...) token repeated per example (the
        # keras.io PatchConvNet example's class token) is that tile
        return tile(x, [repeats if i == axis else 1 for i in range(rank(x))])
    if (shape_of(x)[axis] is None and np.size(repeats) == 1 and shape_of(x).count(None) == 1
            and dtype_of(x) != "bool"):
        return _repeat_each(x, int(np.ravel(repeats)[0]), axis)
    n = static_dim(x, axis, "repeat")
    counts = np.broadcast_to(np.asarray(repeats, np.int64), (n,))
    indices = np.repeat(np.arange(n, dtype=np.int64), counts)
    return mv.apply("Gather", x, indices, axis=axis)


def _repeat_each(x, count, axis):
    """`repeat` by one count along an axis of unknown size (the traced batch): each element
    tiled on a new axis after it, then the two axes merged."""
    shape = list(shape_of(x))
    ones = [1] * (len(shape) + 1)
    ones[axis + 1] = count
    ones = np.ones(ones, ew._np_dtype(dtype_of(x)))
    tiled = ew.multiply(mv.expand_dims(x, axis + 1), ones)  # broadcasts along the unknown axis
    return mv.reshape_to(tiled, shape)


# -- triangles, diagonals -----------------------------------------------------------------------
def _triangle(x, k, lower):
    rows, cols = static_dim(x, -2, "tril/triu"), static_dim(x, -1, "tril/triu")
    keep = np.tri(rows, cols, k, dtype=bool) if lower else ~np.tri(rows, cols, k - 1, dtype=bool)
    if dtype_of(x) == "bool":
        return ew.logical_and(x, keep)
    return ew.where(keep, x, ew.cast(0, dtype_of(x)))


def tril(x, k=0):
    return _triangle(x, k, lower=True)


def triu(x, k=0):
    return _triangle(x, k, lower=False)


def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal at `offset` of the matrices on `axis1`, `axis2`, as a last axis."""
    n = rank(x)
    a1, a2 = axis_index(axis1, n, "diagonal"), axis_index(axis2, n, "diagonal")
    rows, cols = static_dim(x, a1, "diagonal"), static_dim(x, a2, "diagonal")
    moved = moveaxis(x, (a1, a2), (-2, -1))
    i = np.arange(builtins.max(0, -offset), rows)
    i = i[(i + offset >= 0) & (i + offset < cols)]
    flat = mv.reshape_to(moved, shape_of(moved)[:-2] + (rows * cols,), like=None)
    return mv.apply("Gather", flat, (i * cols + i + offset).astype(np.int64), axis=n - 2)


def trace(x, offset=0, axis1=0, axis2=1):
    from kgraph.ops.reduce import sum as reduce_sum

    return reduce_sum(diagonal(x, offset, axis1, axis2), -1)


def diag(x, k=0):
    """The `k`-th diagonal of a matrix, or a matrix with vector `x` on it (`keras.ops.diag`)."""
    if rank(x) == 2:
        return diagonal(x, k)
    if rank(x) != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D. Received: shape={shape_of(x)}")
    n = static_dim(x, 0, "diag")
    size = n + builtins.abs(k)
    rows = np.arange(n) + builtins.max(0, -k)
    cols = np.arange(n) + builtins.max(0, k)
    place = np.zeros((size * size, n), dtype=ew._np_dtype(_float_or(x)))
    place[rows * size + cols, np.arange(n)] = 1
    from kgraph.ops.linalg import matmul

    value = to_float(x) if dtype_of(x) == "bool" else x
    return mv.reshape(matmul(constant(place, value), value), (size, size))


def _float_or(x):
    return dtype_of(x) if dtype_of(x) != "bool" else "float32"


def diagflat(x, k=0):
    return diag(ravel(x), k)


# -- products ---------------------------------------------------------------------------------
def outer(x1, x2):
    x1, x2 = ew._pair(x1, x2)
    return mv.expand_dims(ravel(x1), 1) * mv.expand_dims(ravel(x2), 0)


def inner(x1, x2):
    from kgraph.ops.reduce import sum as reduce_sum

    if rank(x1) == 0 or rank(x2) == 0:
        return ew.multiply(x1, x2)
    return tensordot(x1, x2, axes=([-1], [-1])) if rank(x1) + rank(x2) > 2 else reduce_sum(
        ew.multiply(x1, x2))


def vdot(x1, x2):
    from kgraph.ops.reduce import sum as reduce_sum

    return reduce_sum(ew.multiply(ravel(x1), ravel(x2)))


def kron(x1, x2):
    x1, x2 = ew._pair(x1, x2)
    n = builtins.max(rank(x1), rank(x2))
    a = mv.reshape(x1, (1,) * (n - rank(x1)) + shape_of(x1))
    b = mv.reshape(x2, (1,) * (n - rank(x2)) + shape_of(x2))
    sa, sb = shape_of(a), shape_of(b)
    wide = mv.reshape(a, [d for s in sa for d in (s, 1)]) * mv.reshape(b, [d for s in sb
                                                                        for d in (1, s)])
    return mv.reshape(wide, [p * q for p, q in zip(sa, sb)])


def tensordot(x1, x2, axes=2):
    """Sum products over `axes` (`keras.ops.tensordot`): transposes, reshapes and a matmul."""
    from kgraph.ops.einsum import _reshape_groups
    from kgraph.ops.linalg import matmul

    x1, x2 = ew._pair(x1, x2)
    if isinstance(axes, int):
        a1, a2 = list(range(rank(x1) - axes, rank(x1))), list(range(axes))
    else:
        a1, a2 = ([axes[0]] if isinstance(axes[0], int) else list(axes[0]),
                  [axes[1]] if isinstance(axes[1], int) else list(axes[1]))
    a1 = [axis_index(a, rank(x1), "tensordot") for a in a1]
    a2 = [axis_index(a, rank(x2), "tensordot") for a in a2]
    free1 = [i for i in range(rank(x1)) if i not in a1]
    free2 = [i for i in range(rank(x2)) if i not in a2]
    s1, s2 = shape_of(x1), shape_of(x2)
    k = _prod(s1, a1) if _prod(s1, a1) is not None else _prod(s2, a2)
    if k is None and None in (_prod(s1, free1), _prod(s2, free2)):
        static_dim(x1, next(a for a in a1 if s1[a] is None), "tensordot")  # raises: 2 unknowns
    left = mv.reshape_to(mv.transpose(x1, free1 + a1), [_prod(s1, free1), k])
    right = mv.reshape_to(mv.transpose(x2, a2 + free2), [k, _prod(s2, free2)])
    out_shape = [s1[i] for i in free1] + [s2[i] for i in free2]
    # free dims of both operands may be unknown (x with itself over a traced batch, the
    # keras.io PointNet regularizer): the run-time target comes from each operand's Shape
    groups = [(x1, (i,)) for i in free1] + [(x2, (i,)) for i in free2]
    return _reshape_groups(matmul(left, right), groups, out_shape)


def _prod(shape, axes):
    dims = [shape[a] for a in axes]
    return None if None in dims else int(np.prod(dims, dtype=np.int64))


# -- selection and index arithmetic ----------------------------------------------------------------
def select(condlist, choicelist, default=0):
    """The first choice whose condition holds, else `default` (`keras.ops.select`)."""
    out = default
    for condition, choice in reversed(list(zip(condlist, choicelist))):
        out = ew.where(condition, choice, out)
    return out


def isin(x1, x2, assume_unique=False, invert=False):
    from kgraph.ops.reduce_api import any as reduce_any

    hits = reduce_any(ew.equal(mv.expand_dims(x1, -1), ravel(x2)), -1)
    return ew.logical_not(hits) if invert else hits


def digitize(x, bins):
    """Index of the bin each value falls in (`keras.ops.digitize`, numpy's right=False)."""
    from kgraph.ops.reduce import sum as reduce_sum

    edges = np.asarray(bins)
    if edges.ndim != 1 or np.any(np.diff(edges) < 0):
        raise ValueError(f"digitize: bins must be 1-D and increasing. Received: bins={bins}")
    above = ew.greater_equal(mv.expand_dims(x, -1), constant(edges.astype(ew._np_dtype(
        dtype_of(x))), x))
    return reduce_sum(ew.cast(above, "int32"), -1)


def searchsorted(sorted_sequence, values, side="left"):
    """Insertion indices that keep `sorted_sequence` (1-D) sorted (`keras.ops.searchsorted`)."""
    from kgraph.ops.reduce import sum as reduce_sum

    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right'. Received: {side!r}")
    compare = ew.less if side == "left" else ew.less_equal
    below = compare(mv.expand_dims(sorted_sequence, 0), mv.expand_dims(ravel(values), 1))
    counts = reduce_sum(ew.cast(below, "int32"), -1)
    return mv.reshape(counts, shape_of(values)) if rank(values) != 1 else counts


def unravel_index(indices, shape):
    strides = np.cumprod((1,) + tuple(shape[::-1]))[:-1][::-1]
    return tuple(ew.mod(floor_div(indices, int(s)), int(d)) for s, d in zip(strides, shape))


def floor_div(x, n):
    from kgraph.ops.numpy_api import floor_divide

    return floor_divide(x, ew.cast(n, dtype_of(x)) if hasattr(x, "dtype") else n)


def meshgrid(*x, indexing="xy"):
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij'. Received: {indexing!r}")
    vectors = [ravel(v) for v in x]
    sizes = [static_dim(v, 0, "meshgrid") for v in vectors]
    if indexing == "xy" and len(vectors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for i, v in enumerate(vectors):
        position = (1 - i if i < 2 else i) if indexing == "xy" and len(vectors) >= 2 else i
        shape = [1] * len(vectors)
        shape[position] = shape_of(v)[0]
        grids.append(mv.broadcast_to(mv.reshape(v, tuple(shape)), tuple(sizes)))
    return grids


def vander(x, N=None, increasing=False):  # noqa: N803
    n = static_dim(x, 0, "vander") if N is None else N
    powers = np.arange(n) if increasing else np.arange(n - 1, -1, -1)
    base = mv.expand_dims(to_float(x), 1)
    return ew.power(base, constant(powers.astype(ew._np_dtype(dtype_of(base))), base))


def trapezoid(y, x=None, dx=1.0, axis=-1):
    from kgraph.ops.reduce import sum as reduce_sum

    y = to_float(y)
    n = static_dim(y, axis, "trapezoid")
    mid = (mv.slice_axis(y, 1, n, axis) + mv.slice_axis(y, 0, n - 1, axis)) * 0.5
    if x is None:
        return reduce_sum(mid, axis) * float(dx)
    from kgraph.ops.reduce_api import diff

    return reduce_sum(mid * diff(to_float(x), axis=axis if rank(x) > 1 else -1), axis)


def cross(x1, x2, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors along the last axes (`keras.ops.cross`)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = moveaxis(x1, axisa, -1), moveaxis(x2, axisb, -1)
    if static_dim(a, -1, "cross") != 3 or static_dim(b, -1, "cross") != 3:
        raise ValueError(f"cross: vectors must have 3 components. Received: shapes "
                         f"{shape_of(x1)} and {shape_of(x2)}")
    a0, a1, a2 = (a[..., i] for i in range(3))
    b0, b1, b2 = (b[..., i] for i in range(3))
    out = stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], -1)
    return moveaxis(out, -1, axisc)


def nonzero(x):
    eager_only("nonzero", x)
    return tuple(i.astype(np.int32) for i in np.nonzero(np.asarray(x)))


def bincount(x, weights=None, minlength=0, sparse=False):
    eager_only("bincount", x, weights)
    return np.bincount(np.asarray(x).reshape(-1), weights, minlength)


def histogram(x, bins=10, range=None):  # noqa: A002 - the Keras name
    eager_only("histogram", x)
    return np.histogram(np.asarray(x), bins=bins, range=range)


def correlate(x1, x2, mode="valid"):
    eager_only("correlate", x1, x2)
    return np.correlate(np.asarray(x1), np.asarray(x2), mode)


def corrcoef(x):
    """Pearson correlation of the rows of `x` (`keras.ops.corrcoef`)."""
    from kgraph.ops.linalg import matmul
    from kgraph.ops.reduce import mean

    x = to_float(x)
    centered = x - mean(x, -1, keepdims=True)
    cov = matmul(centered, mv.transpose(centered))
    d = ew.sqrt(diagonal(cov))
    return cov / (mv.expand_dims(d, 1) * mv.expand_dims(d, 0))


def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of `sequence_length` every `sequence_stride` along the last axis
    (`keras.ops.extract_sequences`): shape `(..., frames, sequence_length)`."""
    n = static_dim(x, -1, "extract_sequences")
    frames = 1 + (n - sequence_length) // sequence_stride
    index = (np.arange(frames)[:, None] * sequence_stride + np.arange(sequence_length)[None, :])
    return mv.apply("Gather", x, index.astype(np.int64), axis=rank(x) - 1)
