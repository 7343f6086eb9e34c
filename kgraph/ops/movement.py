"""Movement primitives: shape, reshape, expand (broadcast), transpose, slice, pad, concat.

Shapes may hold unknown dims (None). Ops whose result shape depends on a runtime shape take it
as an int64 input (from `Shape`) and carry the static shape they promise as the `shape` attr.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops import symbolic_shape
from kgraph.ops.registry import apply, defop


def _static(shape):
    return all(d is not None for d in shape)


# -- Shape / Count -----------------------------------------------------------------------------
defop("Shape", lambda t: [TensorType((len(t[0].shape),), "int64")],
      lambda x: np.asarray(x.shape, dtype=np.int64), differentiable=False)


def _count_ref(x, axes):
    return np.asarray(np.prod([x.shape[a] for a in axes]), dtype=np.int64)


def _count_onnx(ctx, node, ins, outs):
    dims = ctx.node("Gather", [ctx.node("Shape", [ins[0]]),
                               ctx.const(np.asarray(node.attrs["axes"], np.int64))])
    ctx.node("ReduceProd", [dims], outs, keepdims=0)


defop("Count", lambda t, axes: [TensorType((), "int64")], _count_ref, differentiable=False,
      attrs=("axes",), onnx=_count_onnx)


def count(x, axes):
    """Number of elements of `x` along `axes` (a constant when those dims are static)."""
    dims = [x.shape[a] for a in axes]
    if _static(dims):
        return np.asarray(int(np.prod(dims)), dtype=np.int64)
    return apply("Count", x, axes=tuple(axes))


# -- Reshape -----------------------------------------------------------------------------------
def _reshape_infer(types, shape):
    t = types[0]
    if _static(t.shape) and len(types) == 1:
        known = [d for d in shape if d is not None]
        n, k = int(np.prod(t.shape)), int(np.prod(known)) if known else 1
        if shape.count(None) == 1 and k and n % k == 0:
            shape = tuple(n // k if d is None else d for d in shape)
        elif shape.count(None) == 0 and n != k:
            raise ValueError(f"Cannot reshape a tensor of shape {t.shape} into shape {shape}")
    return [TensorType(tuple(shape), t.dtype)]


def _reshape_ref(x, *shape_input, shape):
    if shape_input:
        return x.reshape(shape_input[0])
    return x.reshape([-1 if d is None else d for d in shape])


def _reshape_onnx(ctx, node, ins, outs):
    target = ins[1] if len(ins) > 1 else ctx.const(
        np.asarray([-1 if d is None else d for d in node.attrs["shape"]], np.int64))
    ctx.node("Reshape", [ins[0], target], outs)


defop("Reshape", _reshape_infer, _reshape_ref,
      grad=lambda g, y, x, *s, shape: (reshape_to(g, x.shape, like=x),) + (None,) * len(s),
      attrs=("shape",), onnx=_reshape_onnx)


def reshape_to(x, shape, like=None):
    """Reshape to `shape` (None = unknown). With more than one unknown dim, `like` supplies
    the runtime shape."""
    shape = tuple(shape)
    if tuple(x.shape) == shape and shape.count(None) <= 1:
        return x
    if shape.count(None) <= 1:
        return apply("Reshape", x, shape=shape)
    if like is None:
        raise ValueError(f"Reshape to {shape} needs a reference tensor for its unknown dims")
    return apply("Reshape", x, apply("Shape", like), shape=shape)


def reshape(x, newshape):
    """`keras.ops.reshape`: `newshape` holds ints (one may be -1) and dims of traced tensors
    (`ops.shape(x)[0]`), or is a 1-D int tensor of them."""
    dims = symbolic_shape.as_dims(newshape, "reshape")
    if not symbolic_shape.has_dims(dims):
        return reshape_to(x, tuple(None if d == -1 else d for d in dims))
    static = _reshape_static(x, dims)
    if static.count(None) <= 1:  # a -1 in a constant target says the same
        return reshape_to(x, static)
    target = symbolic_shape.shape_tensor(dims, "reshape")
    return apply("Reshape", x, target, shape=static)


def _reshape_static(x, dims):
    """The static shape a reshape to `dims` gives. A -1 is known when the target's dims of the
    graph are x's own unknown dims (`reshape(x, (ops.shape(x)[0], -1, d))`): it is then x's
    other dims over the target's ints."""
    static = list(symbolic_shape.static_dims(dims))
    if sum(1 for d in dims if isinstance(d, int) and d == -1) != 1:
        return tuple(static)
    at = next(i for i, d in enumerate(dims) if isinstance(d, int) and d == -1)
    static[at] = None
    sources = [symbolic_shape.source_of(d) for d in dims if not isinstance(d, int)]
    own_axes = sorted(s[1] for s in sources if s is not None and s[0] is x)
    unknown = [i for i, d in enumerate(x.shape) if d is None]
    if len(own_axes) != len(sources) or own_axes != unknown:
        return tuple(static)
    size = int(np.prod([d for d in x.shape if d is not None]))
    rest = int(np.prod([d for d in dims if isinstance(d, int) and d != -1]))
    if rest == 0 or size % rest:
        raise ValueError(f"reshape: cannot reshape {tuple(x.shape)} to {tuple(static)}: "
                         f"{size} values per entry of the unknown dims do not divide into "
                         f"{rest}")
    static[at] = size // rest
    return tuple(static)


# -- Expand (broadcast) ------------------------------------------------------------------------
def _expand_ref(x, target, shape):
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, tuple(target))).copy()


def _expand_onnx(ctx, node, ins, outs):
    x, target = node.inputs
    dtype = x.dtype
    if None in x.shape and target.node.op == "Constant" and dtype != "bool":
        # TVM's Expand converter needs static input dims when the target is a constant:
        # multiplying by ones of the target shape broadcasts the same way, exactly.
        from kgraph.variables import _np

        ones = np.ones(tuple(int(d) for d in target.node.attrs["value"]), dtype=_np(dtype))
        return ctx.node("Mul", [ins[0], ctx.const(ones)], outs)
    return ctx.node("Expand", ins, outs)


defop("Expand", lambda t, shape: [TensorType(tuple(shape), t[0].dtype)], _expand_ref,
      grad=lambda g, y, x, s, shape: (g, None), attrs=("shape",), onnx=_expand_onnx)


def broadcast_like(x, like):
    """Broadcast `x` to the (possibly dynamic) shape of `like`."""
    from kgraph.ir.types import broadcast_shapes

    shape = broadcast_shapes(x.shape, like.shape, "broadcast")
    if tuple(x.shape) == tuple(like.shape) and _static(shape):
        return x
    target = np.asarray(shape, np.int64) if _static(shape) else apply("Shape", like)
    return apply("Expand", x, target, shape=shape)


def broadcast_to(x, shape):
    """`keras.ops.broadcast_to`: `shape` may hold dims of traced tensors (`ops.shape(t)`)."""
    dims = symbolic_shape.fill_open_dim(symbolic_shape.as_dims(shape, "broadcast_to"))
    static = list(symbolic_shape.static_dims(dims))
    own = tuple(getattr(x, "shape", np.shape(x)))
    offset = len(dims) - len(own)
    for i, d in enumerate(own):
        if offset + i >= 0 and static[offset + i] is None and d is not None and d != 1:
            static[offset + i] = int(d)  # a run-time target dim can only be 1 or this one
    return apply("Expand", x, symbolic_shape.shape_tensor(dims, "broadcast_to"),
                 shape=tuple(static))


# -- Transpose ---------------------------------------------------------------------------------
def batch_split(perm):
    """k where `perm` is (0, k + 1, ..., r - 1, 1, ..., k) for some 1 <= k <= r - 2: a batch of
    matrix transposes, the layout change between channels first and channels last; else None."""
    rank, k = len(perm), perm[-1] if perm else 0  # the axes 1 .. k move to the end
    rotation = (0,) + tuple(range(k + 1, rank)) + tuple(range(1, k + 1))
    return k if 1 <= k <= rank - 2 and tuple(perm) == rotation else None


def _transpose_onnx(ctx, node, ins, outs):
    """kgraph's BatchTranspose (runtime/native/ortops.cc: 8 x 8 blocks in registers) for a
    float32 layout change in a native graph (onnxruntime's Transpose moves such a permutation
    one element at a time), else ONNX's Transpose."""
    perm = tuple(node.attrs["perm"])
    split = batch_split(perm)
    if ctx.native and split is not None and node.inputs[0].dtype == "float32":
        return ctx.node("kgraph.BatchTranspose", ins, outs, split=split)
    ctx.node("Transpose", ins, outs, perm=list(perm))


defop("Transpose", lambda t, perm: [TensorType(tuple(t[0].shape[p] for p in perm), t[0].dtype)],
      lambda x, perm: np.transpose(x, perm).copy(),
      grad=lambda g, y, x, perm: (transpose(g, tuple(np.argsort(perm))),), attrs=("perm",),
      onnx=_transpose_onnx)


def transpose(x, axes=None):
    rank = len(x.shape)
    perm = tuple(reversed(range(rank))) if axes is None else tuple(a % rank for a in axes)
    return apply("Transpose", x, perm=perm)


def swapaxes(x, axis1, axis2):
    perm = list(range(len(x.shape)))
    perm[axis1], perm[axis2] = perm[axis2], perm[axis1]
    return transpose(x, perm)


def expand_dims(x, axis):
    shape, sources = list(x.shape), list(range(len(x.shape)))
    axis = axis % (len(shape) + 1)
    shape.insert(axis, 1)
    sources.insert(axis, None)
    return _reshape_known(x, shape, sources)


def squeeze(x, axis):
    axis = axis % len(x.shape)
    keep = [i for i in range(len(x.shape)) if i != axis]
    return _reshape_known(x, [x.shape[i] for i in keep], keep)


def _reshape_known(x, shape, sources):
    """Reshape to `shape`, whose dim j is dim `sources[j]` of `x` (None: a new static dim).
    Several unknown dims: the run-time target is a concat of constants and one-dim slices of
    Shape(x), a form TVM's importer keeps as a shape expression."""
    if shape.count(None) <= 1:
        return reshape_to(x, shape)
    from kgraph.ir.graph import current_graph

    runtime = apply("Shape", x)
    pieces = [current_graph().constant(np.asarray([d], np.int64)) if d is not None else
              apply("Slice", runtime, starts=(src,), ends=(src + 1,), axes=(0,))
              for d, src in zip(shape, sources)]
    return apply("Reshape", x, apply("Concat", *pieces, axis=0), shape=tuple(shape))


# -- Slice / Pad / Concat ----------------------------------------------------------------------
def _slice_infer(types, starts, ends, axes):
    shape = list(types[0].shape)
    for s, e, a in zip(starts, ends, axes):
        d = shape[a]
        shape[a] = None if d is None else len(range(*slice(s, e).indices(d)))
    return [TensorType(tuple(shape), types[0].dtype)]


def _slice_ref(x, starts, ends, axes):
    index = [slice(None)] * x.ndim
    for s, e, a in zip(starts, ends, axes):
        index[a] = slice(s, e)
    return x[tuple(index)].copy()


def _slice_grad(g, y, x, starts, ends, axes):
    pads = [(0, 0)] * len(x.shape)
    for s, e, a in zip(starts, ends, axes):
        d = x.shape[a]
        if d is None and s == 0 and e >= 2**31:  # the whole axis (Cropping2D's batch axis)
            continue
        if d is None:
            raise NotImplementedError(f"Gradient of a slice along unknown dim {a} of {x.shape}")
        lo, hi, _ = slice(s, e).indices(d)
        pads[a] = (lo, d - max(hi, lo))  # an empty slice (x[2:-2] of 3) takes nothing
    return (pad(g, pads),)


def _slice_onnx(ctx, node, ins, outs):
    a = node.attrs
    ctx.node("Slice", [ins[0]] + [ctx.const(np.asarray(a[k], np.int64))
                                  for k in ("starts", "ends", "axes")], outs)


defop("Slice", _slice_infer, _slice_ref, grad=_slice_grad, attrs=("starts", "ends", "axes"),
      onnx=_slice_onnx)


def slice_axis(x, start, end, axis):
    return apply("Slice", x, starts=(start,), ends=(end,), axes=(axis % len(x.shape),))


def _pad_infer(types, pads, value):
    shape = tuple(None if d is None else d + lo + hi for d, (lo, hi) in zip(types[0].shape, pads))
    return [TensorType(shape, types[0].dtype)]


def _pad_grad(g, y, x, pads, value):
    starts = tuple(lo for lo, hi in pads)
    ends = tuple(-hi if hi else None for lo, hi in pads)
    axes = tuple(range(len(pads)))
    ends = tuple(2**62 if e is None else e for e in ends)
    return (apply("Slice", g, starts=starts, ends=ends, axes=axes),)


def _pad_onnx(ctx, node, ins, outs):
    pads = node.attrs["pads"]
    flat = [lo for lo, hi in pads] + [hi for lo, hi in pads]
    value = np.asarray(node.attrs["value"], dtype=node.outputs[0].dtype)
    ctx.node("Pad", [ins[0], ctx.const(np.asarray(flat, np.int64)), ctx.const(value)], outs)


defop("Pad", _pad_infer,
      lambda x, pads, value: np.pad(x, pads, constant_values=value).astype(x.dtype),
      grad=_pad_grad, attrs=("pads", "value"), onnx=_pad_onnx)


def pad(x, pads, value=0.0):
    return apply("Pad", x, pads=tuple(tuple(int(v) for v in p) for p in pads), value=float(value))


def _concat_infer(types, axis):
    first = types[0]
    for t in types[1:]:
        if t.dtype != first.dtype or len(t.shape) != len(first.shape):
            raise TypeError(f"Concat: inputs differ in dtype or rank: {first} and {t}")
    sizes = [t.shape[axis] for t in types]
    shape = list(first.shape)
    shape[axis] = None if None in sizes else int(np.sum(sizes))
    return [TensorType(tuple(shape), first.dtype)]


def _concat_grad(g, y, *xs, axis):
    """Each input's part of `g`: one `Split` when every size is known, else a static slice
    while the offsets are known and a `DynamicSlice` from the run-time sizes once one is not
    (a batch of real and fake images)."""
    sizes = tuple(x.shape[axis] for x in xs)
    if len(xs) > 1 and None not in sizes:
        return split(g, sizes, axis)
    out, start = [], 0
    for x in xs:
        size = x.shape[axis]
        if size is not None and isinstance(start, int):
            out.append(apply("Slice", g, starts=(start,), ends=(start + size,), axes=(axis,)))
            start += size
            continue
        start = np.asarray(start, np.int64) if isinstance(start, int) else start
        end = apply("Add", start, count(x, (axis,)))
        out.append(dynamic_slice(g, start, end, axis))
        start = end
    return tuple(out)


# -- Range: the int64 indices [start, end), bounds computed at run time -------------------------
def _range_infer(types):
    for t in types:
        if t.shape != () or t.dtype != "int64":
            raise TypeError(f"Range: start and end must be int64 scalars, got {t}")
    return [TensorType((None,), "int64")]


def _range_onnx(ctx, node, ins, outs):
    ctx.node("Range", [ins[0], ins[1], ctx.const(np.int64(1))], outs)


defop("Range", _range_infer, lambda start, end: np.arange(int(start), int(end), dtype=np.int64),
      differentiable=False, onnx=_range_onnx)


# -- DynamicSlice: [start, end) along one axis, bounds computed at run time ------------------
def _dynamic_slice_infer(types, axis):
    for t in types[1:]:
        if t.shape != () or t.dtype != "int64":
            raise TypeError(f"DynamicSlice: start and end must be int64 scalars, got {t}")
    shape = list(types[0].shape)
    shape[axis] = None
    return [TensorType(tuple(shape), types[0].dtype)]


def _dynamic_slice_ref(x, start, end, axis):
    return _slice_ref(x, (int(start),), (int(end),), (axis,))


def _dynamic_slice_grad(g, y, x, start, end, axis):
    """`g` scattered back to rows [start, end) of zeros shaped as `x`: the adjoint of the
    Gather over a range that DynamicSlice is (a concat of zeros around `g` has dynamically
    sized parts, which TVM cannot schedule)."""
    from kgraph.ops.gather import gather_grad

    index = apply("Range", start, end)
    # shaped by `g` itself, so that TVM sees the scatter's indices and updates agree
    size = g.shape[axis]
    index = (apply("Reshape", index, shape=(size,)) if size is not None else
             apply("Reshape", index, apply("Slice", apply("Shape", g), starts=(axis,),
                                           ends=(axis + 1,), axes=(0,)), shape=(None,)))
    return gather_grad(g, x, index, axis) + (None,)


def _dynamic_slice_onnx(ctx, node, ins, outs):
    # Gather over a Range, not Slice with computed bounds: TVM's VM cannot lower the latter
    index = ctx.node("Range", [ins[1], ins[2], ctx.const(np.int64(1))])
    ctx.node("Gather", [ins[0], index], outs, axis=node.attrs["axis"])


defop("DynamicSlice", _dynamic_slice_infer, _dynamic_slice_ref, grad=_dynamic_slice_grad,
      attrs=("axis",), onnx=_dynamic_slice_onnx)


def dynamic_slice(x, start, end, axis):
    """`x[start:end]` along `axis`, with `start`/`end` int64 scalars known only at run time."""
    return apply("DynamicSlice", x, start, end, axis=axis % len(x.shape))


defop("Concat", _concat_infer, lambda *xs, axis: np.concatenate(xs, axis), grad=_concat_grad,
      attrs=("axis",))


# -- Split: consecutive pieces of static sizes along one axis (Concat's inverse) -------------
def _split_infer(types, axis, sizes):
    (t,) = types
    if t.shape[axis] is not None and t.shape[axis] != sum(sizes):
        raise ValueError(f"Split: sizes {sizes} do not add up to dim {axis} of {t.shape}")
    if any(n < 1 for n in sizes):
        raise ValueError(f"Split: every piece needs a positive size. Received: sizes={sizes}")
    return [TensorType(t.shape[:axis] + (n,) + t.shape[axis + 1:], t.dtype) for n in sizes]


def _split_grad(gs, ys, x, axis, sizes):
    """One Concat of the pieces' gradients (zeros for a piece that has none): a sequence
    split into its time steps gets its gradient back in one node, not a pad per step."""
    from kgraph.ops.numpy_api import zeros_like

    return (concatenate([g if g is not None else zeros_like(y) for g, y in zip(gs, ys)], axis),)


def _split_onnx(ctx, node, ins, outs):
    ctx.node("Split", [ins[0], ctx.const(np.asarray(node.attrs["sizes"], np.int64))], outs,
             axis=node.attrs["axis"])


defop("Split", _split_infer,
      lambda x, axis, sizes: tuple(np.split(x, np.cumsum(sizes)[:-1], axis)),
      grad=_split_grad, num_outputs=0, attrs=("axis", "sizes"), onnx=_split_onnx)


def split(x, sizes, axis):
    """`x` cut along `axis` into consecutive pieces of the static `sizes` (a tuple of them)."""
    sizes = tuple(int(n) for n in sizes)
    if len(sizes) == 1:
        return (x,)
    return apply("Split", x, axis=axis % len(x.shape), sizes=sizes)


def concatenate(xs, axis=0):  # Keras' default axis
    xs = _in_common_dtype(list(xs))
    axis = axis % len(xs[0].shape) if hasattr(xs[0], "shape") else axis
    return apply("Concat", *xs, axis=axis)


def _in_common_dtype(xs):
    """Pieces of different dtypes in the one the element-wise ops promote to, as Keras'
    result_type (int64 features with float32 ones concatenate as float32)."""
    from kgraph.ops.elementwise import _dtype_of, cast, promoted_dtype

    dtypes = [_dtype_of(x) for x in xs]
    if len(set(dtypes)) <= 1 or None in dtypes:
        return xs
    target = dtypes[0]
    for dtype in dtypes[1:]:
        target = promoted_dtype(target, dtype) or target
    return [x if dtype == target else cast(x, target) for x, dtype in zip(xs, dtypes)]
