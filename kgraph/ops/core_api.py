"""`keras.ops` core: tensor conversion and dtype helpers, slicing and scatter updates.

`slice`, `slice_update`, `scatter` and `scatter_update` take static start indices and index
arrays (numpy or Python ints); they lower to Slice/Pad/Concat and to the Gather/ScatterAdd
primitives, so their gradients are exact.
"""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import (constant, dtype_of, eager_only, is_symbolic, rank, shape_of,
                                 static_dim)


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """A tensor of `x`: symbolic tensors pass through (cast to `dtype`), everything else
    becomes a numpy array; Python floats become floatx and Python ints int32, as Keras."""
    from kgraph.variables import Variable

    if is_symbolic(x):
        return x if dtype is None else ew.cast(x, dtype)
    if isinstance(x, (list, tuple)) and _holds_symbolic(x):
        return _pack(x, dtype)
    if isinstance(x, Variable):
        x = x.numpy()
    array = np.asarray(x)
    if dtype is not None:
        return array.astype(ew._np_dtype(ew.dtype_name(dtype)))
    if not isinstance(x, (np.ndarray, np.generic)):
        if array.dtype == np.float64:
            from kgraph.ops.api_util import floatx

            array = array.astype(floatx())
        elif array.dtype == np.int64:
            array = array.astype(np.int32)
    return array


def _holds_symbolic(items):
    return any(_holds_symbolic(i) if isinstance(i, (list, tuple)) else is_symbolic(i)
               for i in items)


def _pack(items, dtype):
    """A list holding traced scalars (`[ops.shape(x)[0], 1, 1]`) as one tensor, as
    TensorFlow's convert_to_tensor packs it: Python numbers take the traced items' dtype."""
    parts = [convert_to_tensor(i, dtype) for i in items]
    like = next(p for p in parts if is_symbolic(p))
    dtype = dtype_of(like) if dtype is None else ew.dtype_name(dtype)
    parts = [ew.cast(p, dtype) if is_symbolic(p) else
             constant(np.asarray(p, ew._np_dtype(dtype)), like) for p in parts]
    return mv.concatenate([mv.expand_dims(p, 0) for p in parts], 0)


def convert_to_numpy(x):
    """A numpy array of `x`; a symbolic tensor has no value while tracing (TypeError)."""
    if is_symbolic(x):
        raise TypeError(f"convert_to_numpy: {x!r} is a symbolic tensor of the graph being "
                        f"traced and has no value yet. Return it from the model (or a "
                        f"train_step) and read the result instead.")
    from kgraph.variables import Variable

    return x.numpy() if isinstance(x, Variable) else np.asarray(x)


def is_tensor(x):
    from kgraph.variables import Variable

    return is_symbolic(x) or isinstance(x, (np.ndarray, Variable))


def dtype(x):
    return dtype_of(x)


def cast(x, dtype):  # noqa: F811 - the Keras name
    return ew.cast(x, dtype)


def saturate_cast(x, dtype):
    """Cast with values clipped to the target dtype's range first (`keras.ops.saturate_cast`)."""
    target = np.dtype(ew._np_dtype(ew.dtype_name(dtype)))
    info = np.iinfo(target) if target.kind in "iu" else np.finfo(target)
    source = dtype_of(x)
    low, high = float(info.min), float(info.max)
    if source != "bool" and np.dtype(ew._np_dtype(source)).kind in "iu":
        src = np.iinfo(ew._np_dtype(source))
        low, high = max(low, src.min), min(high, src.max)
        if target.kind == "f":
            return ew.cast(x, dtype)
    if source == "bool":
        return ew.cast(x, dtype)
    from kgraph.ops.nn import clip

    bounds = np.asarray([low, high], dtype=ew._np_dtype(source)) if np.dtype(
        ew._np_dtype(source)).kind == "f" else np.asarray([low, high]).astype(ew._np_dtype(source))
    return ew.cast(clip(x, bounds[0], bounds[1]), dtype)


def slice(inputs, start_indices, shape):  # noqa: A001 - the Keras name
    """The block of `shape` starting at `start_indices` (static ints; -1 = to the end)."""
    starts = tuple(int(s) for s in start_indices)
    ends = tuple(2**62 if int(d) == -1 else s + int(d) for s, d in zip(starts, shape))
    return mv.apply("Slice", inputs, starts=starts, ends=ends, axes=tuple(range(len(starts))))


def slice_update(inputs, start_indices, updates):
    """`inputs` with the block at `start_indices` replaced by `updates` (static starts)."""
    starts = [int(s) for s in start_indices]
    sizes = shape_of(updates)
    pads = [(s, static_dim(inputs, i, "slice_update") - s - sizes[i])
            for i, s in enumerate(starts)]
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ValueError(f"slice_update: updates of shape {sizes} at {tuple(starts)} do not fit "
                         f"in shape {shape_of(inputs)}")
    pads += [(0, 0)] * (rank(inputs) - len(pads))
    updates = ew.cast(updates, dtype_of(inputs))
    mask = np.pad(np.ones(sizes, dtype=bool), pads)
    placed = mv.pad(updates, pads) if dtype_of(inputs) != "bool" else ew.cast(
        mv.pad(ew.cast(updates, "int32"), pads), "bool")
    return ew.where(mask, placed, inputs)


def _flat_positions(indices, shape):
    indices = np.asarray(indices, np.int64)
    depth = indices.shape[-1]
    strides = np.cumprod((1,) + tuple(shape[:depth][::-1]))[:-1][::-1]
    return (np.mod(indices, shape[:depth]) * strides).sum(-1), depth


def scatter(indices, values, shape):
    """Zeros of `shape` with `values` added at `indices` (`keras.ops.scatter`; repeated
    indices accumulate)."""
    from kgraph.ops.registry import apply

    shape = tuple(int(d) for d in shape)
    flat, depth = _flat_positions(indices, shape)
    rows = int(np.prod(shape[:depth]))
    values = mv.reshape(values, (flat.size,) + shape[depth:])
    out = apply("ScatterAdd", values, flat.reshape(-1), np.asarray((rows,) + shape[depth:],
                np.int64), shape=(rows,) + shape[depth:])
    return mv.reshape(out, shape)


_SCATTER_REDUCTIONS = {None: lambda old, new: new, "add": ew.add, "max": ew.maximum,
                       "min": ew.minimum, "mul": ew.multiply}


def scatter_update(inputs, indices, updates, reduction=None):
    """`inputs` with the entries at `indices` (static) replaced by `updates`, or combined
    with them by `reduction` ("add", "max", "min", "mul"), as Keras. Repeated indices are
    applied in order: the last update wins, or each one is combined in turn."""
    key = reduction.lower() if isinstance(reduction, str) else reduction
    if key not in _SCATTER_REDUCTIONS:
        raise ValueError(f"scatter_update: reduction must be None, 'add', 'max', 'min' or "
                         f"'mul'. Received: reduction={reduction!r}")
    from kgraph.ops.gather import take

    shape = tuple(static_dim(inputs, i, "scatter_update") for i in range(rank(inputs)))
    flat, depth = _flat_positions(indices, shape)
    flat = flat.reshape(-1)
    updates = mv.reshape(ew.cast(updates, dtype_of(inputs)), (flat.size,) + shape[depth:])
    occurrence = _occurrence(flat)
    out = inputs
    for turn in range(int(occurrence.max()) + 1 if flat.size else 0):
        # each turn places at most one update per position: a plain scatter, then a select
        rows = np.flatnonzero(occurrence == turn)
        these = updates if rows.size == flat.size else take(updates, rows, axis=0)
        placed = scatter(np.stack(np.unravel_index(flat[rows], shape[:depth]), -1), these,
                         shape)
        mask = np.zeros(shape, dtype=bool).reshape((-1,) + shape[depth:])
        mask[flat[rows]] = True
        out = ew.where(mask.reshape(shape), _SCATTER_REDUCTIONS[key](out, placed), out)
    return out


def _occurrence(flat):
    """For each position in `flat`, how many earlier entries name the same position."""
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    index = np.arange(flat.size)
    first = np.maximum.accumulate(np.where(np.r_[True, ordered[1:] != ordered[:-1]], index, 0))
    occurrence = np.empty(flat.size, np.int64)
    occurrence[order] = index - first
    return occurrence


def unstack(x, num=None, axis=0):
    from kgraph.ops.shape_api import unstack as _unstack

    return _unstack(x, num, axis)


def get_item(x, key):
    return x[key]


def custom_gradient(f):
    """`keras.ops.custom_gradient`: kgraph's autodiff works on its own op records, so a
    user-written gradient cannot be attached; calling the result raises a typed error."""
    def wrapped(*args, **kwargs):
        raise NotImplementedError(
            "keras.ops.custom_gradient is not supported by kgraph: gradients come from the op "
            "records. Write the forward with keras.ops (it is differentiated exactly), or "
            "wrap the part to hold constant in keras.ops.stop_gradient.")
    return wrapped


def view(x, dtype=None):
    eager_only("view", x)
    return np.asarray(x).view(dtype)


def vectorize(pyfunc, *, excluded=None, signature=None):
    """`keras.ops.vectorize`: numpy's vectorize on arrays; for traced tensors, call `pyfunc`
    directly on whole tensors (kgraph ops broadcast)."""
    vectorized = np.vectorize(pyfunc, excluded=excluded, signature=signature)

    def call(*args, **kwargs):
        if any(is_symbolic(a) for a in args):
            return pyfunc(*args, **kwargs)
        return vectorized(*args, **kwargs)
    return call
