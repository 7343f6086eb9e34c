"""TensorFlow's most used top-level tensor functions, for code written against
`import tensorflow as tf` that reaches past Keras (the keras.io TensorFlow guides' GAN steps:
`tf.concat`, `tf.ones`, `tf.shape`, `tf.reduce_sum`, ...).

Each is the `keras.ops` function of the same meaning under TensorFlow's name, argument names
and defaults (`tf.argmax` reduces axis 0 by default; `name=` is accepted and unused). They
run eagerly on arrays and record ops inside traced steps, like `keras.ops`. `tf.shape`
returns the dims as a tuple (an int32 scalar of the graph for a dim unknown while tracing),
which indexes as TensorFlow's shape tensor does.
"""
from __future__ import annotations

import abc

import numpy as np

from kgraph.keras import ops

# (and the class Tensor, below)
__all__ = ["abs", "acos", "add", "argmax", "argmin", "argsort", "broadcast_to", "cast",
           "clip_by_value", "concat", "cond", "constant", "convert_to_tensor", "cos", "cumprod",
           "cumsum", "divide", "einsum", "equal", "exp", "expand_dims", "eye", "fill", "floor",
           "gather", "gather_nd", "greater", "identity", "less", "linspace", "log", "matmul",
           "maximum", "meshgrid", "minimum", "multiply", "norm", "one_hot", "ones", "ones_like",
           "pad", "pow", "range", "reduce_all", "reduce_any", "reduce_max", "reduce_mean",
           "reduce_min", "reduce_prod", "reduce_sum", "repeat", "reshape", "reverse", "roll",
           "round", "shape", "sigmoid", "sign", "sin", "size", "slice", "split", "sqrt", "square",
           "squeeze", "stack", "stop_gradient", "subtract", "tanh", "tensor_scatter_nd_add",
           "tensordot", "tile", "transpose", "unstack", "where", "zeros", "zeros_like"]


class Tensor(abc.ABC):
    """`tf.Tensor`, for annotations and `isinstance` checks in TensorFlow code (the keras.io
    traffic-forecasting example's `features: tf.Tensor`): kgraph's eager results
    (`EagerTensor`), values of a traced graph and functional `KerasTensor`s are instances.
    Plain numpy arrays and variables are not, as in TensorFlow."""

    @classmethod
    def __subclasshook__(cls, other):
        from kgraph.ir.graph import Value
        from kgraph.keras.layers.base import EagerTensor, KerasTensor

        return True if issubclass(other, (EagerTensor, KerasTensor, Value)) else NotImplemented


def concat(values, axis, name=None):
    return ops.concatenate(list(values), axis=axis)


def stack(values, axis=0, name=None):
    return ops.stack(list(values), axis=axis)


def ones(shape, dtype="float32", name=None):
    return ops.ones(shape, dtype=dtype)


def zeros(shape, dtype="float32", name=None):
    return ops.zeros(shape, dtype=dtype)


def ones_like(input, dtype=None, name=None):  # noqa: A002 - TensorFlow's argument name
    return ops.ones_like(input, dtype=dtype)


def zeros_like(input, dtype=None, name=None):  # noqa: A002
    return ops.zeros_like(input, dtype=dtype)


class ShapeTensor(tuple):
    """`tf.shape(x)`: x's dims as `ops.shape` gives them (an int32 scalar of the graph for a
    dim unknown while tracing) in a tuple that also answers `.shape` as TensorFlow's 1-D shape
    tensor does: `tf.shape(x).shape[0]` is the rank (the keras.io CCT example's stochastic
    depth)."""

    @property
    def shape(self):
        return (len(self),)


def _dim(x, axis):
    return ops.shape(x)[axis]


def size(input, out_type="int32", name=None):  # noqa: A002
    """tf.size: the number of elements, int32; of `tf.shape(x)` it is x's rank, a constant
    (`tf.range(1, tf.size(tf.shape(x)))`, the keras.io StyleGAN's gradient penalty)."""
    if isinstance(input, ShapeTensor):
        return np.asarray(len(input), dtype=out_type)
    return ops.cast(ops.size(input), out_type)


def shape(input, out_type=None, name=None):  # noqa: A002
    """`tf.shape(x)`. Of a functional model's symbolic input, a dim unknown there (the batch)
    is a scalar KerasTensor, an op of the model (tf.keras 2 gives a symbolic shape tensor):
    `n, h, w, c = tf.shape(inputs)` then `tf.reshape(inputs, [n, -1, h, w, c])` in a
    functional build (the keras.io StyleGAN's minibatch_std)."""
    dims = ops.shape(input)
    symbolic = ops.FUNCTIONAL_OPS.get("tensor")
    if None in dims and symbolic is not None and isinstance(input, symbolic):
        dims = [ops.FUNCTIONAL_OPS["call"](_dim, input, axis=i) if d is None else d
                for i, d in enumerate(dims)]
    return ShapeTensor(dims)


def constant(value, dtype=None, shape=None, name=None):
    out = ops.convert_to_tensor(value, dtype=dtype)
    return ops.broadcast_to(out, shape) if shape is not None else out



def fill(dims, value, name=None):
    """tf.fill: `dims` (a shape, or one size) filled with `value`, in `value`'s dtype
    (TensorFlow's: a Python int is int32, a float float32)."""
    if isinstance(value, bool):
        dtype = "bool"
    elif isinstance(value, int):
        dtype = "int32"
    elif isinstance(value, float):
        dtype = "float32"
    else:
        dtype = None
    return ops.full(dims, value, dtype=dtype)


def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None):
    return ops.convert_to_tensor(value, dtype=dtype or dtype_hint)


def cast(x, dtype, name=None):
    if isinstance(dtype, str) and dtype == "string":
        return _cast_to_string(x)
    return ops.cast(x, dtype)


def _cast_to_string(x):
    # TensorFlow's Cast has no numeric -> string kernel; a cast to the dtype a tensor already
    # has returns it as it is, so only text casts to "string" (a tf.data map does this).
    kind = getattr(getattr(x, "dtype", None), "kind", None)
    if kind is None and isinstance(x, (str, bytes, list, tuple)):
        kind = np.asarray(x).dtype.kind
    if kind in ("U", "S", "O"):
        return x
    raise TypeError("tf.cast: only text casts to 'string' (TensorFlow has no numeric-to-string "
                    "cast; format numbers with Python or numpy instead). Received: x of dtype "
                    f"{getattr(x, 'dtype', type(x).__name__)}")


def reshape(tensor, shape, name=None):
    return ops.reshape(tensor, shape)


def expand_dims(input, axis, name=None):  # noqa: A002
    return ops.expand_dims(input, axis)


def tensordot(a, b, axes, name=None):
    """tf.tensordot: `axes` an int (last axes of `a` with first of `b`) or a pair of lists."""
    return ops.tensordot(a, b, axes=axes)


def roll(input, shift, axis, name=None):  # noqa: A002
    """tf.roll: entries shifted along `axis` (ints or lists of them), wrapping around."""
    return ops.roll(input, shift, axis=axis)


def squeeze(input, axis=None, name=None):  # noqa: A002
    return ops.squeeze(input, axis=axis)


def slice(input_, begin, size, name=None):  # noqa: A001 - TensorFlow's name
    """tf.slice: the block of `input_` starting at `begin` of `size` (-1: to the end of that
    axis), as `keras.ops.slice` takes it (the FixRes example slices the box that
    `tf.image.sample_distorted_bounding_box` draws)."""
    begin = [int(b) for b in np.asarray(begin).reshape(-1)]
    dims = ops.shape(input_)
    size = [int(d) - b if int(n) == -1 else int(n)
            for n, b, d in zip(np.asarray(size).reshape(-1), begin, dims)]
    return ops.slice(input_, begin, size)


def transpose(a, perm=None, conjugate=False, name=None):
    return ops.transpose(a, axes=perm)


def tile(input, multiples, name=None):  # noqa: A002
    return ops.tile(input, multiples)


def gather(params, indices, axis=None, batch_dims=0, name=None):
    if batch_dims:
        return _gather_per_batch(params, indices, batch_dims if axis is None else axis,
                                 batch_dims)
    return ops.take(params, indices, axis=0 if axis is None else axis)


def _gather_per_batch(params, indices, axis, batch_dims):
    """tf.gather with `batch_dims=1` and `axis=1`: `out[b, k, ...] = params[b, indices[b, k],
    ...]` (masked_image_modeling.py's patch selection), as one take from the rows of params
    with the batch merged into the gathered axis (the batch may be unknown while tracing)."""
    rank = len(ops.shape(params))
    axis, batch_dims = axis % rank, batch_dims % len(ops.shape(indices))
    if (batch_dims, axis) != (1, 1):
        raise NotImplementedError(f"tf.gather with batch_dims takes batch_dims=1 and axis=1 "
                                  f"in kgraph. Received: batch_dims={batch_dims!r}, "
                                  f"axis={axis!r}")
    size = ops.shape(params)[1]
    batch = ops.shape(indices)[0]
    rows = ops.reshape(params, (-1,) + tuple(ops.shape(params)[2:]))
    offsets = ops.reshape(ops.arange(batch) * size, (-1,) + (1,) * (len(ops.shape(indices)) - 1))
    return ops.take(rows, ops.cast(indices, "int32") + ops.cast(offsets, "int32"), axis=0)


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           name=None):
    if transpose_a or adjoint_a:
        a = ops.swapaxes(a, -1, -2)
    if transpose_b or adjoint_b:
        b = ops.swapaxes(b, -1, -2)
    return ops.matmul(a, b)


def _reduction(fn):
    def reduce(input_tensor, axis=None, keepdims=False, name=None):
        if isinstance(axis, np.ndarray):  # a 1-D tensor of axes: `axis=tf.range(1, rank)`
            axis = tuple(int(a) for a in axis.reshape(-1))
        return fn(input_tensor, axis=axis, keepdims=keepdims)
    reduce.__name__ = f"reduce_{fn.__name__}"
    reduce.__doc__ = f"tf.{reduce.__name__}: keras.ops.{fn.__name__}."
    return reduce


reduce_sum, reduce_mean = _reduction(ops.sum), _reduction(ops.mean)
reduce_max, reduce_min, reduce_prod = _reduction(ops.max), _reduction(ops.min), _reduction(ops.prod)
reduce_any, reduce_all = _reduction(ops.any), _reduction(ops.all)


def argmax(input, axis=None, output_type="int64", name=None):  # noqa: A002
    return ops.cast(ops.argmax(input, axis=0 if axis is None else axis), output_type)


def argmin(input, axis=None, output_type="int64", name=None):  # noqa: A002
    return ops.cast(ops.argmin(input, axis=0 if axis is None else axis), output_type)


def argsort(values, axis=-1, direction="ASCENDING", stable=False, name=None):
    """tf.argsort: int32 indices that sort `values` along `axis` (masked_image_modeling.py
    draws random patch orders with it); "DESCENDING" sorts the negated values, so equal
    values keep their order either way."""
    if direction not in ("ASCENDING", "DESCENDING"):
        raise ValueError(f"tf.argsort: direction must be 'ASCENDING' or 'DESCENDING'. "
                         f"Received: direction={direction!r}")
    keys = values if direction == "ASCENDING" else ops.negative(values)
    return ops.cast(ops.argsort(keys, axis=axis), "int32")


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype="float32",
            name=None):
    out = ops.one_hot(indices, depth, axis=-1 if axis is None else axis, dtype=dtype)
    if on_value is not None or off_value is not None:
        on = 1.0 if on_value is None else on_value
        off = 0.0 if off_value is None else off_value
        out = out * (on - off) + off
    return out


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    return ops.clip(t, clip_value_min, clip_value_max)


def range(start, limit=None, delta=1, dtype=None, name="range"):  # noqa: A001
    return ops.arange(start, limit, delta, dtype=dtype)


def linspace(start, stop, num, name=None, axis=0):
    """tf.linspace: `num` evenly spaced values from `start` to `stop` inclusive, float32."""
    return ops.linspace(start, stop, num, axis=axis)


def where(condition, x=None, y=None, name=None):
    """tf.where: `x` where `condition` else `y`; with neither, the coordinates of the True
    entries as one int64 (count, rank) tensor (TensorFlow's form; keras.ops.where gives a
    tuple of index arrays). That count follows the data: eager only, as keras.ops.nonzero."""
    if x is None and y is None:
        return ops.cast(ops.stack(ops.nonzero(condition), axis=-1), "int64") if \
            np.ndim(condition) else np.zeros((int(bool(condition)), 0), np.int64)
    return ops.where(condition, x, y)


def cond(pred, true_fn=None, false_fn=None, name=None):
    """tf.cond: the results of `true_fn()` or `false_fn()` by the scalar `pred`
    (keras.ops.cond: a Python branch on a concrete `pred`, an If in a traced graph)."""
    return ops.cond(pred, true_fn, false_fn)


def _unary(fn, tf_name):
    def unary(x, name=None):
        if isinstance(x, (list, tuple)) and not isinstance(x, ShapeTensor):
            # TensorFlow converts a list of tensors by stacking them: `tf.square(
            # tape.gradient(loss, [x]))` is of shape (1, ...) (the keras.io StyleGAN)
            x = ops.stack(list(x))
        return fn(x)
    unary.__name__ = tf_name
    unary.__doc__ = f"tf.{tf_name}: keras.ops.{fn.__name__}."
    return unary


abs, exp, log = _unary(ops.abs, "abs"), _unary(ops.exp, "exp"), _unary(ops.log, "log")  # noqa: A001
sqrt, square = _unary(ops.sqrt, "sqrt"), _unary(ops.square, "square")
floor = _unary(ops.floor, "floor")
cos, sin = _unary(ops.cos, "cos"), _unary(ops.sin, "sin")
acos = _unary(ops.arccos, "acos")
round = _unary(ops.round, "round")  # noqa: A001 - halves to even, as TensorFlow
sigmoid, tanh = _unary(ops.sigmoid, "sigmoid"), _unary(ops.tanh, "tanh")
sign = _unary(ops.sign, "sign")


def eye(num_rows, num_columns=None, batch_shape=None, dtype="float32", name=None):
    """tf.eye: a `num_rows x num_columns` identity (square by default), stacked over
    `batch_shape`; the sizes may be dims of a traced tensor (`tf.eye(tf.shape(x)[0])`)."""
    matrix = ops.eye(num_rows, num_columns, dtype=dtype)
    if batch_shape is None:
        return matrix
    return ops.broadcast_to(matrix, tuple(batch_shape) + tuple(ops.shape(matrix)))


def maximum(x, y, name=None):
    return ops.maximum(x, y)


def identity(input, name=None):  # noqa: A002
    """tf.identity: the tensor itself (a traced value needs no copy node)."""
    return input


def _binary(fn, tf_name):
    def binary(x, y, name=None):
        return fn(x, y)
    binary.__name__ = tf_name
    binary.__doc__ = f"tf.{tf_name}: keras.ops.{fn.__name__}."
    return binary


add, subtract = _binary(ops.add, "add"), _binary(ops.subtract, "subtract")
multiply, divide = _binary(ops.multiply, "multiply"), _binary(ops.true_divide, "divide")
less, greater, equal = (_binary(ops.less, "less"), _binary(ops.greater, "greater"),
                        _binary(ops.equal, "equal"))
pow = _binary(ops.power, "pow")  # noqa: A001 - TensorFlow's name


def cumsum(x, axis=0, exclusive=False, reverse=False, name=None):
    """tf.cumsum (tf.math.cumsum): running sums along `axis`; `exclusive` leaves each element
    out of its own sum, `reverse` sums from the end."""
    if reverse:
        x = ops.flip(x, axis=axis)
    out = ops.cumsum(x, axis=axis)
    if exclusive:
        out = out - x
    return ops.flip(out, axis=axis) if reverse else out


def cumprod(x, axis=0, exclusive=False, reverse=False, name=None):
    """tf.math.cumprod: running products along `axis`; `exclusive` starts from 1 (each element
    left out of its own product, by a shift, not a division: zeros are fine), `reverse`
    multiplies from the end (the keras.io NeRF's transmittance)."""
    if reverse:
        x = ops.flip(x, axis=axis)
    if exclusive:
        ones = ops.ones_like(ops.take(x, np.array([0]), axis=axis))
        rest = ops.take(x, np.arange(int(ops.shape(x)[axis]) - 1), axis=axis)
        x = ops.concatenate([ones, rest], axis=axis)
    out = ops.cumprod(x, axis=axis)
    return ops.flip(out, axis=axis) if reverse else out


def _flat_rows(shape, indices, what):
    """TensorFlow's nd-indices (last axis: one index per leading axis of `shape`) as flat row
    numbers into `shape` with those leading axes merged; the first axis may be unknown."""
    depth = int(ops.shape(indices)[-1])
    dims = list(shape[:depth])
    if any(d is None for d in dims[1:]):
        raise ValueError(f"tf.{what}: the indexed axes after the first need known sizes. "
                         f"Received shape {tuple(shape)}")
    strides = np.cumprod([1] + dims[:0:-1])[::-1].astype("int64")  # row-major
    flat = ops.sum(ops.cast(indices, "int64") * strides, axis=-1)
    return depth, flat


def gather_nd(params, indices, batch_dims=0, name=None):
    """tf.gather_nd: the slices of `params` that `indices`' last axis addresses (one index per
    leading axis of `params`); `batch_dims=0` (the keras.io MNIST MoE's top-k expert outputs
    `gather_nd(outputs, stack([batch_ids, expert_ids], 2))`)."""
    if batch_dims:
        raise NotImplementedError(f"tf.gather_nd: batch_dims={batch_dims} is not supported "
                                  f"by kgraph (pass the batch index in `indices`)")
    shape = ops.shape(params)
    depth, flat = _flat_rows(shape, indices, "gather_nd")
    rows = ops.reshape(params, (-1,) + tuple(shape[depth:]))
    return ops.take(rows, flat, axis=0)


def tensor_scatter_nd_add(tensor, indices, updates, name=None):
    """tf.tensor_scatter_nd_add: `tensor` plus `updates` added at `indices` (repeated indices
    add up), as a one-hot contraction (the keras.io MNIST MoE's expert usage counts)."""
    shape = tuple(ops.shape(tensor))
    if None in shape:
        raise ValueError(f"tf.tensor_scatter_nd_add: tensor needs a known shape. Received "
                         f"shape {shape}")
    depth, flat = _flat_rows(shape, indices, "tensor_scatter_nd_add")
    rows = int(np.prod(shape[:depth]))
    one_hot = ops.one_hot(ops.reshape(flat, (-1,)), rows, dtype=ops.dtype(tensor))
    tail = shape[depth:]
    added = ops.tensordot(one_hot, ops.reshape(ops.cast(updates, ops.dtype(tensor)),
                                               (-1,) + tail), axes=[[0], [0]])
    return tensor + ops.reshape(added, shape)


def meshgrid(*args, indexing="xy", name=None):
    """tf.meshgrid: coordinate grids of 1-D tensors (`indexing` "xy" or "ij")."""
    return list(ops.meshgrid(*args, indexing=indexing))


def broadcast_to(input, shape, name=None):  # noqa: A002
    """tf.broadcast_to: `input` repeated to `shape` (a shape tuple or `tf.shape(...)`)."""
    return ops.broadcast_to(input, tuple(shape))


def einsum(equation, *inputs, name=None, **kwargs):
    return ops.einsum(equation, *inputs)


def repeat(input, repeats, axis=None, name=None):  # noqa: A002
    """tf.repeat: each element `repeats` times along `axis` (flattened when None); a
    traced batch size (`tf.shape(x)[0]`) repeats a size-1 axis once per example."""
    return ops.repeat(input, repeats, axis=axis)


def split(value, num_or_size_splits, axis=0, num=None, name=None):
    """tf.split: `num_or_size_splits` equal parts along `axis`, or parts of the listed sizes
    (one may be -1, the rest); a list, as TensorFlow returns."""
    if isinstance(num_or_size_splits, (int, np.integer)):
        return list(ops.split(value, int(num_or_size_splits), axis=axis))
    sizes = [int(s) for s in num_or_size_splits]
    if sizes.count(-1) == 1:
        sizes[sizes.index(-1)] = ops.shape(value)[axis] - (sum(sizes) + 1)
    return list(ops.split(value, [int(i) for i in np.cumsum(sizes)[:-1]], axis=axis))


def pad(tensor, paddings, mode="CONSTANT", constant_values=0, name=None):
    """tf.pad: `paddings` (one `[before, after]` per axis) of `constant_values`, or mirrored
    ("REFLECT" leaves the edge out, "SYMMETRIC" repeats it), as keras.ops.pad's modes."""
    mode = str(mode).upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ValueError(f"tf.pad: mode must be 'CONSTANT', 'REFLECT' or 'SYMMETRIC'. "
                         f"Received: mode={mode!r}")
    if mode == "CONSTANT":
        return ops.pad(tensor, paddings, constant_values=constant_values)
    return ops.pad(tensor, paddings, mode=mode.lower())


def reverse(tensor, axis, name=None):
    """tf.reverse: the elements in reverse order along each axis in the list `axis`."""
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    return ops.flip(tensor, axis=tuple(int(a) for a in axes))


def unstack(value, num=None, axis=0, name=None):
    return ops.unstack(value, num=num, axis=axis)


def minimum(x, y, name=None):
    return ops.minimum(x, y)


def stop_gradient(input, name=None):  # noqa: A002
    return ops.stop_gradient(input)


def norm(tensor, ord="euclidean", axis=None, keepdims=None, name=None):  # noqa: A002
    """tf.norm: "euclidean" is the 2-norm of the flattened tensor (axis None), of vectors
    (one axis) or Frobenius (two axes), as `keras.ops.norm` with `ord=None`."""
    return ops.norm(tensor, ord=None if ord == "euclidean" else ord, axis=axis,
                    keepdims=bool(keepdims))


def eager_tensors(fn):
    """`fn` with its eager array results as TensorFlow's eager tensors (numpy arrays with
    `.numpy()`: `tf.argmin(d, axis=1).numpy()` in the keras.io VQ-VAE example); traced values
    and Python numbers pass through."""
    import functools

    from kgraph.keras.layers.base import EagerTensor

    def wrap(value):
        if isinstance(value, (np.ndarray, np.generic)) and not isinstance(value, EagerTensor):
            return np.asarray(value).view(EagerTensor)
        if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            return type(value)(wrap(v) for v in value)
        return value

    @functools.wraps(fn)
    def run(*args, **kwargs):
        return wrap(fn(*args, **kwargs))
    return run


for _name in __all__:
    if _name != "shape":  # tf.shape stays a tuple of dims (it indexes as a shape tensor)
        globals()[_name] = eager_tensors(globals()[_name])
