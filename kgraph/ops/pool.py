"""Pooling primitives: MaxPool and AveragePool over 1, 2 or 3 spatial dims.

Both take the attributes `kernel`, `strides`, `pads` (one explicit `(before, after)` pair per
spatial dim: Keras "same" is TF "SAME", the odd element of padding goes after) and
`channels_last`. The batch dim may be unknown, and so may spatial dims with "valid" padding
(an `Input(shape=(None, channels))` sequence: the output length stays open until run); the
gradient rules and "same" padding need the spatial sizes, which a step traced from data has.

- MaxPool pads with -inf; AveragePool divides each window by its number of real (unpadded)
  elements, as TF/Keras do (ONNX `count_include_pad=0`).
- ONNX MaxPool/AveragePool are channels first: the emission wraps them in Transposes for
  channels-last data, so the IR (and the backward graph) stays in the layout of the model.
- No ONNX op computes a pooling gradient, so the rules are written in kgraph ops: the padded
  input is cut into its windows (slices and reshapes, one piece per `ceil(kernel / stride)`
  along each axis, no transposes), and the gradient of each window is put back by the adjoint
  of that cut (pads and sums), so overlapping windows add up. Max pooling sends each window's
  gradient to the FIRST maximum of the window in row-major order, as TF's MaxPoolGrad does;
  ties are not split (unlike ReduceMax, whose rule shares them).
"""
from __future__ import annotations

import math

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops import elementwise as ew
from kgraph.ops.conv_padding import pad_same_at_run_time, same_pads
from kgraph.ops import movement as mv
from kgraph.ops.registry import apply, defop

POOL_ATTRS = ("kernel", "strides", "pads", "channels_last")


def spatial_axes(rank, channels_last):
    return tuple(range(1, rank - 1)) if channels_last else tuple(range(2, rank))


def pooled_size(size, kernel, stride, pad):
    return (size + pad[0] + pad[1] - kernel) // stride + 1


# -- shape rule and numpy references ----------------------------------------------------------
def _pool_infer(types, kernel, strides, pads, channels_last):
    (t,) = types
    if len(t.shape) != len(kernel) + 2:
        raise ValueError(f"Pooling over {len(kernel)} spatial dims needs a rank-"
                         f"{len(kernel) + 2} input. Received: shape={t.shape}")
    shape = list(t.shape)
    for axis, k, s, pad in zip(spatial_axes(len(shape), channels_last), kernel, strides, pads):
        if shape[axis] is None:  # an open length (`Input(shape=(None, c))`): stays open
            continue
        shape[axis] = pooled_size(shape[axis], k, s, pad)
        if shape[axis] < 1:
            raise ValueError(f"Pooling window {tuple(kernel)} is larger than the padded input. "
                             f"Received: shape={t.shape}, pads={tuple(pads)}")
    return [TensorType(tuple(shape), t.dtype)]


def _windows(x, kernel, strides, pads, channels_last, fill):
    """Yield (output index, window of the padded input) for every output position."""
    axes = spatial_axes(x.ndim, channels_last)
    widths = [(0, 0)] * x.ndim
    for axis, pad in zip(axes, pads):
        widths[axis] = tuple(pad)
    padded = np.pad(x, widths, constant_values=fill)
    counts = [pooled_size(x.shape[a], k, s, p) for a, k, s, p in zip(axes, kernel, strides, pads)]
    for position in np.ndindex(*counts):
        out_index, in_index = [slice(None)] * x.ndim, [slice(None)] * x.ndim
        for axis, i, k, s in zip(axes, position, kernel, strides):
            out_index[axis], in_index[axis] = i, slice(i * s, i * s + k)
        yield tuple(out_index), padded[tuple(in_index)], axes, tuple(in_index)


def _out_array(x, kernel, strides, pads, channels_last):
    shape = _pool_infer([TensorType(x.shape, x.dtype.name)], kernel, strides, pads,
                        channels_last)[0].shape
    return np.zeros(shape, x.dtype)


def _max_pool_ref(x, kernel, strides, pads, channels_last):
    out = _out_array(x, kernel, strides, pads, channels_last)
    for index, window, axes, _ in _windows(x, kernel, strides, pads, channels_last, -np.inf):
        out[index] = window.max(axis=axes)
    return out


def _average_pool_ref(x, kernel, strides, pads, channels_last):
    out = _out_array(x, kernel, strides, pads, channels_last)
    real = _windows(np.ones_like(x), kernel, strides, pads, channels_last, 0.0)
    for (index, window, axes, _), (_, ones, _, _) in zip(
            _windows(x, kernel, strides, pads, channels_last, 0.0), real):
        out[index] = window.sum(axis=axes) / ones.sum(axis=axes)
    return out


def _max_pool_grad_ref(g, y, x, kernel, strides, pads, channels_last):
    """Each window's gradient goes to its first maximum in row-major order (TF's MaxPoolGrad)."""
    axes = spatial_axes(x.ndim, channels_last)
    widths = [(0, 0)] * x.ndim
    for axis, pad in zip(axes, pads):
        widths[axis] = tuple(pad)
    dx = np.zeros(np.pad(x, widths).shape, x.dtype)
    ends = tuple(range(-len(axes), 0))
    for index, window, _, in_index in _windows(x, kernel, strides, pads, channels_last,
                                               -np.inf):
        moved = np.moveaxis(window, axes, ends)
        flat = moved.reshape(moved.shape[:-len(axes)] + (-1,))
        first = np.argmax(flat, axis=-1)[..., None] == np.arange(flat.shape[-1])
        routed = (first * g[index][..., None]).reshape(moved.shape)
        dx[in_index] += np.moveaxis(routed, ends, axes)
    unpad = tuple(slice(lo, dx.shape[a] - hi) if a in axes else slice(None)
                  for a, (lo, hi) in enumerate(widths))
    return dx[unpad]


# -- gradient rules ---------------------------------------------------------------------------
def _split_axis(x, axis, sizes):
    shape = list(x.shape)
    return _reshape(x, shape[:axis] + list(sizes) + shape[axis + 1:])


def _merge_axes(x, axis):
    shape = list(x.shape)
    return _reshape(x, shape[:axis] + [shape[axis] * shape[axis + 1]] + shape[axis + 2:])


def _reshape(x, shape):
    return mv.reshape_to(x, tuple(shape))


def _pad_axis(x, axis, before, after, value=0.0):
    if not before and not after:
        return x
    widths = [(0, 0)] * len(x.shape)
    widths[axis] = (before, after)
    return mv.pad(x, widths, value)


def _slice(x, axis, start, stop):
    return x if (start, stop) == (0, x.shape[axis]) else mv.slice_axis(x, start, stop, axis)


def _cut(x, axis, k, s, n, fill):
    """Replace `axis` (length L) by (n, k): out[i, t] = x[i * s + t]."""
    pieces = math.ceil(k / s)
    need = (n + pieces - 1) * s
    x = _pad_axis(x, axis, 0, max(need - x.shape[axis], 0), fill)  # never inside a window
    parts = [_split_axis(_slice(x, axis, j * s, j * s + n * s), axis, (n, s))
             for j in range(pieces)]
    joined = parts[0] if pieces == 1 else mv.concatenate(parts, axis + 1)
    return _slice(joined, axis + 1, 0, k)


def _uncut(g, axis, k, s, n, length):
    """The adjoint of `_cut`: sums the window entries (n, k) back onto an axis of `length`."""
    pieces = math.ceil(k / s)
    full = max((n + pieces - 1) * s, length)
    g = _pad_axis(g, axis + 1, 0, pieces * s - k)
    total = None
    for j in range(pieces):
        part = _merge_axes(_slice(g, axis + 1, j * s, (j + 1) * s), axis)
        part = _pad_axis(part, axis, j * s, full - j * s - n * s)
        total = part if total is None else total + part
    return _slice(total, axis, 0, length)


def _geometry(x, kernel, strides, pads, channels_last):
    """(spatial axes, padded sizes, output sizes)."""
    from kgraph.ops.api_util import static_dim

    axes = spatial_axes(len(x.shape), channels_last)
    for a in axes:  # the window cut below is laid out from the sizes
        static_dim(x, a, "The gradient of pooling")
    padded = [x.shape[a] + lo + hi for a, (lo, hi) in zip(axes, pads)]
    outs = [pooled_size(x.shape[a], k, s, p) for a, k, s, p in zip(axes, kernel, strides, pads)]
    return axes, padded, outs


def _cut_all(xp, axes, kernel, strides, outs, fill):
    for axis, k, s, n in reversed(list(zip(axes, kernel, strides, outs))):
        xp = _cut(xp, axis, k, s, n, fill)  # last axis first: earlier axis numbers stay put
    return xp


def _uncut_all(g, axes, kernel, strides, outs, padded):
    for axis, k, s, n, size in zip(axes, kernel, strides, outs, padded):
        g = _uncut(g, axis, k, s, n, size)  # first axis first: it sits at `axis` by then
    return g


def _window_axes(axes):
    """Where the window axes sit in a cut tensor (each spatial axis followed by its own)."""
    return tuple(a + i + 1 for i, a in enumerate(axes))


def _insert_window_axes(v, axes):
    """`v` (shaped like the output) with a length-1 window axis after each spatial axis."""
    shape = list(v.shape)
    for w in _window_axes(axes):
        shape.insert(w, 1)
    return _reshape(v, shape)


def _window_constant(values, axes, kernel, rank, dtype):
    """`values` (kernel-shaped) as a constant laid out on the window axes of a cut tensor."""
    sizes = dict(zip(_window_axes(axes), kernel))
    shape = [sizes.get(a, 1) for a in range(rank + len(axes))]
    return constant(np.asarray(values, dtype).reshape(shape))


def _tile(cut, axes):
    """Merge each spatial axis of a cut tensor with its window axis: the windows side by
    side, without overlap."""
    for i, axis in reversed(list(enumerate(axes))):
        cut = _merge_axes(cut, axis + i)
    return cut


def _unpad(g, axes, pads):
    for axis, (lo, hi) in zip(axes, pads):
        g = _slice(g, axis, lo, g.shape[axis] - hi)
    return g


def _max_pool_grad(g, y, x, kernel, strides, pads, channels_last):
    # one node until emission: a layout pass can move the whole pooling gradient into the
    # layout of the convolutions around it (compiler/passes/cancel_transposes.py)
    return (apply("MaxPoolGrad", g, y, x, kernel=kernel, strides=strides, pads=pads,
                  channels_last=channels_last),)


def _first_max(y, x, kernel, strides, pads, channels_last):
    """1 where an element of x is its window's first maximum, in the cut layout (each spatial
    axis followed by its window axis), with the geometry."""
    # In the cut layout (ORT's 6-D Transposes would cost 30x the pooling itself). Each window
    # offset has a priority, highest first in row-major order; of the elements equal to the
    # window's max, the one of highest priority gets the gradient. The highest priority of
    # each window is a non-overlapping MaxPool of the tiled cut.
    axes, padded, outs = _geometry(x, kernel, strides, pads, channels_last)
    cut = _cut_all(_pad_all(x, axes, pads, -np.inf), axes, kernel, strides, outs, -np.inf)
    priority = _window_constant(np.arange(np.prod(kernel), 0, -1), axes, kernel,
                                len(x.shape), x.dtype)
    score = ew.cast(ew.equal(cut, _insert_window_axes(y, axes)), x.dtype) * priority
    best = apply("MaxPool", _tile(score, axes), kernel=kernel, strides=kernel,
                 pads=((0, 0),) * len(kernel), channels_last=channels_last)
    first = ew.cast(ew.equal(score, _insert_window_axes(best, axes)), x.dtype)
    return first, (axes, padded, outs)


def _pad_all(x, axes, pads, fill):
    for axis, (lo, hi) in zip(axes, pads):
        x = _pad_axis(x, axis, lo, hi, fill)
    return x


def route_to_first_max(g, y, x, kernel, strides, pads, channels_last):
    """MaxPoolGrad in kgraph ops (what its ONNX emission expands to): g routed to the first
    maximum of each window, put back by the adjoint of the window cut."""
    if not channels_last and tiles_cheaply(x.shape, kernel, strides, pads):
        return _route_tiled(g, y, x, kernel)
    first, (axes, padded, outs) = _first_max(y, x, kernel, strides, pads, channels_last)
    routed = first * _insert_window_axes(g, axes)
    return _unpad(_uncut_all(routed, axes, kernel, strides, outs, padded), axes, pads)


def tiles_cheaply(shape, kernel, strides, pads):
    """Whether the channels-first gradient of a max pooling of `shape` has the upsampling
    form, without padding the innermost axis (onnxruntime pads an innermost axis 10x slower
    than another one, ~ two transposes of the tensor)."""
    return (tuple(kernel) == tuple(strides) and not any(map(any, pads))
            and shape[-1] is not None and shape[-1] % kernel[-1] == 0)


def _route_tiled(g, y, x, kernel):
    """`route_to_first_max` for channels-first windows that tile the input (`tiles_cheaply`;
    rows past the last window get no gradient). The cut layout would put a window axis
    innermost, where onnxruntime's broadcasting runs 7x slower than with channels there; here
    the pooled tensors are upsampled (`Upsample`, ONNX Resize) to the input's layout."""
    axes, _, outs = _geometry(x, kernel, kernel, ((0, 0),) * len(kernel), False)
    covered = x
    for axis, k, n in zip(axes, kernel, outs):  # the rows past the last window: no gradient
        covered = _slice(covered, axis, 0, k * n)
    scales = (1, 1) + tuple(kernel)
    tile = np.arange(np.prod(kernel), 0, -1).reshape(kernel)  # the window offsets' priority
    priority = constant(np.tile(tile, outs).astype(x.dtype)[None, None])
    score = ew.cast(ew.equal(covered, upsample(y, scales)), x.dtype) * priority
    best = apply("MaxPool", score, kernel=kernel, strides=kernel, pads=((0, 0),) * len(kernel),
                 channels_last=False)
    first = ew.cast(ew.equal(score, upsample(best, scales)), x.dtype)
    remainders = [(0, x.shape[axis] - k * n) for axis, k, n in zip(axes, kernel, outs)]
    return _pad_all(first * upsample(g, scales), axes, remainders, 0.0)


def _max_pool_grad_grad(gg, dx, g, y, x, kernel, strides, pads, channels_last):
    """MaxPoolGrad is linear in g: its adjoint gathers gg at each window's first maximum.
    The routing is piecewise constant in x and y: no gradient for them."""
    from kgraph.ops.reduce import sum as reduce_sum

    first, (axes, _, outs) = _first_max(y, x, kernel, strides, pads, channels_last)
    cut = _cut_all(_pad_all(gg, axes, pads, 0.0), axes, kernel, strides, outs, 0.0)
    return reduce_sum(first * cut, _window_axes(axes)), None, None


def valid_counts(sizes, kernel, strides, pads):
    """Number of real (unpadded) input elements in each window: an array of the output's
    spatial shape."""
    counts = np.ones(())
    for size, k, s, pad in zip(sizes, kernel, strides, pads):
        starts = np.arange(pooled_size(size, k, s, pad)) * s - pad[0]
        counts = np.multiply.outer(counts, np.minimum(starts + k, size) - np.maximum(starts, 0))
    return counts


def _average_pool_grad(g, y, x, kernel, strides, pads, channels_last):
    axes, padded, outs = _geometry(x, kernel, strides, pads, channels_last)
    counts = valid_counts([x.shape[a] for a in axes], kernel, strides, pads)
    shape = [1] * len(x.shape)
    for axis, n in zip(axes, outs):
        shape[axis] = n
    share = g / constant(counts.reshape(shape).astype(x.dtype))
    # a product with ones rather than an Expand: TVM's ONNX importer cannot Expand a tensor
    # with a dynamic (batch) dim to a constant shape
    ones = _window_constant(np.ones(kernel), axes, kernel, len(x.shape), x.dtype)
    spread = _insert_window_axes(share, axes) * ones
    return (_unpad(_uncut_all(spread, axes, kernel, strides, outs, padded), axes, pads),)


def constant(array):
    """A Constant node. (A bare ndarray operand would become a fed capture, with an open
    first dim, in a GradientTape graph.)"""
    from kgraph.ir.graph import current_graph

    return current_graph().constant(np.asarray(array))


# -- ONNX emission ----------------------------------------------------------------------------
def _pool_onnx(onnx_op, **extra):
    def emit(ctx, node, ins, outs):
        a = node.attrs
        rank = len(a["kernel"]) + 2
        pads = [lo for lo, _ in a["pads"]] + [hi for _, hi in a["pads"]]
        attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["strides"]), pads=pads,
                     **extra)
        if not a["channels_last"]:
            return ctx.node(onnx_op, ins, outs, **attrs)
        first = ctx.node("Transpose", ins, perm=[0, rank - 1, *range(1, rank - 1)])
        pooled = ctx.node(onnx_op, [first], **attrs)
        ctx.node("Transpose", [pooled], outs, perm=[0, *range(2, rank), 1])
    return emit


def _upsample_infer(types, scales):
    (t,) = types
    if len(scales) != len(t.shape) or tuple(scales[:2]) != (1, 1):
        raise ValueError(f"Upsample scales the spatial axes of channels-first data (as ONNX "
                         f"Resize in TVM): one scale per axis, 1 for the first two. Received: "
                         f"scales={scales} for shape {t.shape}")
    return [TensorType(tuple(None if d is None else d * s for d, s in zip(t.shape, scales)),
                       t.dtype)]


def _upsample_ref(x, scales):
    for axis, s in enumerate(scales):
        x = np.repeat(x, s, axis=axis)
    return x


def _upsample_grad(g, y, x, scales):
    """The adjoint of repeating: the sum of each block of copies."""
    from kgraph.ops.reduce import sum as reduce_sum

    split = []
    for d, s in zip(x.shape, scales):
        split += [d, s]
    return (reduce_sum(_reshape(g, split), tuple(range(1, 2 * len(scales), 2))),)


def _upsample_onnx(ctx, node, ins, outs):
    scales = ctx.const(np.asarray(node.attrs["scales"], np.float32))
    ctx.node("Resize", [ins[0], "", scales], outs, mode="nearest",
             coordinate_transformation_mode="asymmetric", nearest_mode="floor")


# each element repeated `scales[axis]` times along every spatial axis of channels-first data
# (nearest upsampling by integer factors)
defop("Upsample", _upsample_infer, _upsample_ref, grad=_upsample_grad, attrs=("scales",),
      onnx=_upsample_onnx)


def upsample(x, scales):
    return apply("Upsample", x, scales=tuple(int(s) for s in scales))


defop("MaxPool", _pool_infer, _max_pool_ref, grad=_max_pool_grad, attrs=POOL_ATTRS,
      onnx=_pool_onnx("MaxPool"))


def has_native_kernel(node) -> bool:
    """Whether kgraph's MaxPoolGrad operator takes this MaxPoolGrad node where the graph is
    emitted `native`: 2-D float32 pooling, either layout, any window tiling."""
    return len(node.attrs["kernel"]) == 2 and node.inputs[2].dtype == "float32"


def _max_pool_grad_onnx(ctx, node, ins, outs):
    """kgraph's MaxPoolGrad operator (runtime/native/ortops.cc: one pass over the input)
    where the graph is `native` and it takes the node (`has_native_kernel`), else
    `route_to_first_max` in standard ONNX."""
    a = node.attrs
    if not (ctx.native and has_native_kernel(node)):
        return ctx.expand(route_to_first_max, node, ins, outs)
    pads = [lo for lo, _ in a["pads"]] + [hi for _, hi in a["pads"]]
    ctx.node("kgraph.MaxPoolGrad", [ins[0], ins[2]], outs, kernel_shape=list(a["kernel"]),
             strides=list(a["strides"]), pads=pads, channels_last=int(a["channels_last"]))


defop("MaxPoolGrad", lambda types, **attrs: [types[2]], _max_pool_grad_ref,
      grad=_max_pool_grad_grad, attrs=POOL_ATTRS, onnx=_max_pool_grad_onnx)
defop("AveragePool", _pool_infer, _average_pool_ref, grad=_average_pool_grad, attrs=POOL_ATTRS,
      onnx=_pool_onnx("AveragePool", count_include_pad=0))


# -- public functions (keras.ops signatures) --------------------------------------------------
def _pool(name, inputs, pool_size, strides, padding, data_format):
    from kgraph import config

    rank = len(inputs.shape)
    dims = rank - 2
    kernel = _tuple(pool_size, dims, "pool_size")
    strides = kernel if strides is None else _tuple(strides, dims, "strides")
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"`padding` must be 'valid' or 'same'. Received: padding={padding!r}")
    data_format = str(data_format or config.image_data_format()).lower()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("`data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    channels_last = data_format == "channels_last"
    axes = spatial_axes(rank, channels_last)
    if padding == "valid":
        pads = ((0, 0),) * dims
    else:
        # with stride 1 'same' pads k - 1 whatever the size, so an open axis (an image of any
        # size) pools; a larger stride's padding depends on the size: `_pool_open_same`
        pads = tuple(same_pads(1 if inputs.shape[a] is None else inputs.shape[a], k, s)
                     for a, k, s in zip(axes, kernel, strides))
        opened = [i for i, (a, s) in enumerate(zip(axes, strides))
                  if inputs.shape[a] is None and s > 1]
        if opened:
            return _pool_open_same(name, inputs, kernel, strides, axes, opened, pads,
                                   channels_last)
    return apply(name, inputs, kernel=kernel, strides=strides, pads=pads,
                 channels_last=channels_last)


def _pool_open_same(name, inputs, kernel, strides, axes, opened, pads, channels_last):
    """'same' pooling along strided axes whose sizes are known only at run time: the input
    padded for them at run time (ops/conv_padding.py `pad_same_at_run_time`), with -inf for a max;
    an average divides by each window's real elements, as TF does, by pooling a mask of
    ones padded the same way (a ratio of two window means)."""
    from kgraph.ops.movement import slice_axis
    from kgraph.ops.numpy_api import ones_like

    pads = tuple((0, 0) if i in opened else p for i, p in enumerate(pads))

    def pooled(x, value):
        x = pad_same_at_run_time(x, [axes[i] for i in opened], [kernel[i] for i in opened],
                                 [strides[i] for i in opened], value)
        return apply(name, x, kernel=kernel, strides=strides, pads=pads,
                     channels_last=channels_last)

    if name == "MaxPool":
        return pooled(inputs, -np.inf)
    channel = len(inputs.shape) - 1 if channels_last else 1
    mask = ones_like(slice_axis(inputs, 0, 1, channel))
    return pooled(inputs, 0.0) / pooled(mask, 0.0)


def _tuple(value, n, name):
    values = (value,) * n if isinstance(value, (int, np.integer)) else value
    if not isinstance(values, (tuple, list)) or len(values) != n or not all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
            for v in values):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} positive integers. "
                         f"Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling over the spatial dims of `inputs` (rank 3, 4 or 5).

    Args:
        inputs: tensor of shape `(batch, *spatial, channels)` (channels last) or
            `(batch, channels, *spatial)`.
        pool_size: int or tuple of ints, the window size per spatial dim.
        strides: int or tuple of ints; defaults to `pool_size`.
        padding: `"valid"` (no padding) or `"same"` (TF "SAME": output size
            `ceil(input / stride)`, padding split evenly with the odd element after).
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The pooled tensor, same layout as `inputs`.

    Example:
        >>> max_pool(np.arange(16.0).reshape(1, 4, 4, 1), 2).shape
        (1, 2, 2, 1)
    """
    return _pool("MaxPool", inputs, pool_size, strides, padding, data_format)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling over the spatial dims of `inputs` (rank 3, 4 or 5).

    Arguments as `max_pool`. With `"same"` padding each window is divided by its number of
    real (unpadded) elements, as TF and Keras do.

    Example:
        >>> average_pool(np.ones((1, 3, 1)), 2, 1, "same")[0, :, 0]
        array([1., 1., 1.])
    """
    return _pool("AveragePool", inputs, pool_size, strides, padding, data_format)
