"""Convolution primitives: `Conv` and `ConvTranspose` over 1, 2 or 3 spatial dims.

The IR layout is ONNX's: data is channels first `(batch, channels, *spatial)`; a Conv kernel is
`(out, in / groups, *window)`, a ConvTranspose kernel `(in, out / groups, *window)`; an optional
third input is a bias `(out,)`. Attributes: `strides`, `dilations`, `pads` (one explicit
`(before, after)` pair per spatial dim) and `groups`; ConvTranspose adds `output_padding`
(zeros appended after the last position before the `after` pad is cropped).

The Keras-facing functions (`conv`, `depthwise_conv`, `separable_conv`, `conv_transpose`) take
Keras layouts (channels last by default; kernels `(*window, in / groups, out)`, transposed
kernels `(*window, out, in)`, as stored in Keras weight files), turn Keras padding names into
explicit pads and put Transposes around the primitive; the `cancel_transposes` pass removes
the ones that meet between consecutive layers.

Gradients: d/dinput of a Conv is the ConvTranspose with the same attributes (and the reverse);
d/dkernel is kgraph/ops/conv_kernel_grad.py's `kernel_grad` (an im2col GEMM, or a Conv of the
input by the output gradient with batch and channel axes swapped).
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops.conv_padding import conv_transpose_pads, padded_for_conv, window_span
from kgraph.ops.registry import apply, defop

CONV_ATTRS = ("strides", "dilations", "pads", "groups")


def conv_size(size, window, stride, dilation, pad):
    if size is None or window is None:
        return None
    return (size + pad[0] + pad[1] - window_span(window, dilation)) // stride + 1


def conv_transpose_size(size, window, stride, dilation, pad, extra):
    if size is None or window is None:
        return None
    return stride * (size - 1) + window_span(window, dilation) + extra - pad[0] - pad[1]


# -- shape rules ------------------------------------------------------------------------------
def _check_operands(name, types, strides, dilations, pads, groups):
    x, w = types[0], types[1]
    dims = len(x.shape) - 2
    if dims not in (1, 2, 3) or len(w.shape) != len(x.shape):
        raise ValueError(f"{name}: input and kernel must both have rank 3, 4 or 5. Received: "
                         f"input {x.shape}, kernel {w.shape}")
    if not len(strides) == len(dilations) == len(pads) == dims:
        raise ValueError(f"{name}: strides, dilations and pads need one entry per spatial dim "
                         f"({dims}). Received: strides={strides}, dilations={dilations}, "
                         f"pads={pads}")
    if groups < 1 or min(strides) < 1 or min(dilations) < 1 or min(min(pads)) < 0:
        raise ValueError(f"{name}: invalid attributes. Received: strides={strides}, "
                         f"dilations={dilations}, pads={pads}, groups={groups}")
    if any(t.dtype != x.dtype for t in types):
        raise TypeError(f"{name}: operands differ in dtype: {[t.dtype for t in types]}")


def _known(*dims):
    return all(d is not None for d in dims)


def _check_bias(name, types, channels):
    if len(types) == 3 and (len(types[2].shape) != 1 or not (
            channels is None or types[2].shape[0] in (None, channels))):
        raise ValueError(f"{name}: the bias must have shape ({channels},). "
                         f"Received: {types[2].shape}")


def _positive(name, shape, types):
    if any(d is not None and d < 1 for d in shape):
        raise ValueError(f"{name}: the window is larger than the padded input. Received: "
                         f"input {types[0].shape}, kernel {types[1].shape}")


def _conv_infer(types, strides, dilations, pads, groups):
    _check_operands("Conv", types, strides, dilations, pads, groups)
    x, w = types[0], types[1]
    if _known(x.shape[1], w.shape[1]) and x.shape[1] != w.shape[1] * groups:
        raise ValueError(f"Conv: the input has {x.shape[1]} channels; the kernel expects "
                         f"{w.shape[1]} per group x {groups} groups")
    if w.shape[0] is not None and w.shape[0] % groups:
        raise ValueError(f"Conv: {w.shape[0]} output channels cannot be split in {groups} groups")
    _check_bias("Conv", types, w.shape[0])
    spatial = tuple(conv_size(*a) for a in zip(x.shape[2:], w.shape[2:], strides, dilations, pads))
    _positive("Conv", spatial, types)
    return [TensorType((x.shape[0], w.shape[0]) + spatial, x.dtype)]


def _conv_transpose_infer(types, strides, dilations, pads, output_padding, groups):
    _check_operands("ConvTranspose", types, strides, dilations, pads, groups)
    x, w = types[0], types[1]
    if _known(x.shape[1], w.shape[0]) and x.shape[1] != w.shape[0]:
        raise ValueError(f"ConvTranspose: the input has {x.shape[1]} channels; the kernel "
                         f"expects {w.shape[0]}")
    if w.shape[0] is not None and w.shape[0] % groups:
        raise ValueError(f"ConvTranspose: {w.shape[0]} input channels cannot be split in "
                         f"{groups} groups")
    if len(output_padding) != len(strides) or any(
            not 0 <= e < s for e, s in zip(output_padding, strides)):
        raise ValueError(f"ConvTranspose: output_padding must be >= 0 and < strides. Received: "
                         f"output_padding={output_padding}, strides={strides}")
    channels = None if w.shape[1] is None else w.shape[1] * groups
    _check_bias("ConvTranspose", types, channels)
    spatial = tuple(conv_transpose_size(*a) for a in zip(
        x.shape[2:], w.shape[2:], strides, dilations, pads, output_padding))
    _positive("ConvTranspose", spatial, types)
    return [TensorType((x.shape[0], channels) + spatial, x.dtype)]


# -- numpy references: a loop over window offsets, each one strided slice and one einsum ------
def _window_slices(offset, strides, dilations, sizes):
    """Slices that pick, for one window offset, the positions it meets at each output site."""
    return tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                 for o, s, d, n in zip(offset, strides, dilations, sizes))


def _with_bias(y, bias):
    if bias:
        y = y + bias[0].reshape((1, -1) + (1,) * (y.ndim - 2))
    return y


def _conv_ref(x, w, *bias, strides, dilations, pads, groups):
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(tuple(p) for p in pads))
    n, c = x.shape[:2]
    window = w.shape[2:]
    sizes = [conv_size(*a) for a in zip(x.shape[2:], window, strides, dilations, pads)]
    xg = xp.reshape((n, groups, c // groups) + xp.shape[2:])
    wg = w.reshape((groups, w.shape[0] // groups, c // groups) + window)
    y = np.zeros((n, groups, w.shape[0] // groups, *sizes), np.result_type(x, w))
    for offset in np.ndindex(*window):
        patch = xg[(slice(None),) * 3 + _window_slices(offset, strides, dilations, sizes)]
        y += np.einsum("ngc...,goc->ngo...", patch, wg[(Ellipsis,) + offset])
    return _with_bias(y.reshape((n, w.shape[0], *sizes)), bias).astype(x.dtype)


def _conv_transpose_ref(x, w, *bias, strides, dilations, pads, output_padding, groups):
    n, c = x.shape[:2]
    window, per_group = w.shape[2:], w.shape[1]
    full = [conv_transpose_size(m, k, s, d, (0, 0), e) for m, k, s, d, e in zip(
        x.shape[2:], window, strides, dilations, output_padding)]
    y = np.zeros((n, groups, per_group, *full), np.result_type(x, w))
    xg = x.reshape((n, groups, c // groups) + x.shape[2:])
    wg = w.reshape((groups, c // groups, per_group) + window)
    for offset in np.ndindex(*window):
        site = (slice(None),) * 3 + _window_slices(offset, strides, dilations, x.shape[2:])
        y[site] += np.einsum("ngc...,gcm->ngm...", xg, wg[(Ellipsis,) + offset])
    crop = tuple(slice(lo, f - hi) for (lo, hi), f in zip(pads, full))
    y = y[(slice(None),) * 3 + crop]
    return _with_bias(y.reshape((n, groups * per_group) + y.shape[3:]), bias).astype(x.dtype)


# -- gradient rules ---------------------------------------------------------------------------
def _rest(rank):
    return tuple(range(2, rank))


def _bias_grad(g, bias):
    from kgraph.ops.reduce import sum as reduce_sum

    return (reduce_sum(g, (0,) + _rest(len(g.shape))),) if bias else ()


def _input_grad_padding(x, g, w, strides, dilations, pads):
    """output_padding that gives the input gradient the input's size: the sites past the last
    full window get no gradient. Always 0 along stride-1 axes, whatever their size; 0 too
    along a strided axis whose size is known only at run time (`_input_grad_to_size`)."""
    extra = []
    for n, m, k, s, d, p in zip(x.shape[2:], g.shape[2:], w.shape[2:], strides, dilations, pads):
        extra.append(0 if s == 1 or not _known(n, m) else
                     n - conv_transpose_size(m, k, s, d, p, 0))
    return tuple(extra)


def _input_grad_to_size(dx, x, strides):
    """`dx` brought to x's size along the strided axes whose size is known only at run time:
    the up to stride - 1 sites past the last full window get no gradient, so `dx` is padded
    with stride - 1 zeros and cut to x's run-time size."""
    from kgraph.ops.movement import count, dynamic_slice, pad

    axes = [2 + i for i, (n, s) in enumerate(zip(x.shape[2:], strides))
            if s > 1 and (n is None or dx.shape[2 + i] is None)]
    if not axes:
        return dx
    widths = [(0, 0)] * len(dx.shape)
    for a in axes:
        widths[a] = (0, strides[a - 2] - 1)
    dx = pad(dx, widths)
    for a in axes:
        dx = dynamic_slice(dx, np.asarray(0, np.int64), count(x, (a,)), a)
    return dx


def _conv_grad(g, y, x, w, *bias, strides, dilations, pads, groups):
    from kgraph.ops.conv_kernel_grad import kernel_grad

    attrs = dict(strides=strides, dilations=dilations, pads=pads, groups=groups)
    extra = _input_grad_padding(x, g, w, strides, dilations, pads)
    dx = _input_grad_to_size(apply("ConvTranspose", g, w, output_padding=extra, **attrs), x,
                             strides)
    return (dx, kernel_grad(x, g, w.shape[2:], **attrs)) + _bias_grad(g, bias)


def _conv_transpose_grad(g, y, x, w, *bias, strides, dilations, pads, output_padding, groups):
    from kgraph.ops.conv_kernel_grad import kernel_grad

    attrs = dict(strides=strides, dilations=dilations, pads=pads, groups=groups)
    dx = apply("Conv", g, w, **attrs)
    # y = ConvTranspose(x, w) pairs x with g as Conv(g, w) pairs its output with g
    return (dx, kernel_grad(g, x, w.shape[2:], **attrs)) + _bias_grad(g, bias)


# -- ONNX -------------------------------------------------------------------------------------
def _onnx_attrs(node):
    a = node.attrs
    attrs = dict(strides=list(a["strides"]), dilations=list(a["dilations"]), group=a["groups"],
                 pads=[lo for lo, hi in a["pads"]] + [hi for lo, hi in a["pads"]])
    window = node.inputs[1].shape[2:]
    if _known(*window):
        attrs["kernel_shape"] = list(window)
    if "output_padding" in a:
        attrs["output_padding"] = list(a["output_padding"])
    return attrs


# The deepest convolution kgraph's own kernels take: (input channels x window offsets) of one
# output. Measured (docs/benchmarks.md): they beat onnxruntime's on a small CNN's layers
# (depth 9-576), and lost on ResNet50 (1x1 layers, depths up to 4608: its train step 1.2x
# slower), where a packed 16-column kernel strip no longer stays in L2 and MLAS blocks it.
NATIVE_CONV_MAX_DEPTH = 1024


def native_2d(x) -> bool:
    """Whether `x` is a float32 image batch where this process's onnxruntime has kgraph's
    operators (the 2-D ones: Im2ColRows, the convolutions)."""
    from kgraph.runtime import native_ops

    return len(x.shape) == 4 and x.dtype == "float32" and native_ops.available()


def native_conv(x, channels, window, groups=1) -> bool:
    """Whether kgraph's convolution operators (runtime/native/conv.cc) run an ungrouped 2-D
    convolution of `x` with `channels` input channels per output and this `window`: a window
    larger than 1x1 (a 1x1 convolution is a plain GEMM, MLAS's best case) and at most
    NATIVE_CONV_MAX_DEPTH (channel, offset) pairs."""
    depth = None if channels is None or None in window else channels * int(np.prod(window))
    return (native_2d(x) and groups == 1 and depth is not None and int(np.prod(window)) > 1
            and depth <= NATIVE_CONV_MAX_DEPTH)


def _conv_onnx(op):
    """The emission of Conv / ConvTranspose: kgraph's Conv2D / ConvTranspose2D in a native
    graph where they apply (one implicit GEMM each, no NCHWc reorders or col2im pass: the
    relu that follows a Conv2D joins it, compiler/onnx/emit.py), else ONNX's operator."""
    def emit(ctx, node, ins, outs):
        attrs = _onnx_attrs(node)
        kernel = node.inputs[1].shape  # (out, in, *window) or, transposed, (in, out, *window)
        if ctx.native and native_conv(node.inputs[0], kernel[1], kernel[2:], attrs["group"]):
            attrs.pop("kernel_shape", None)
            del attrs["group"]
            extra = dict(relu=0) if op == "Conv" else {}
            ctx.node(f"kgraph.{op}2D", ins, outs, **attrs, **extra)
        else:
            ctx.node(op, ins, outs, **attrs)
    return emit


defop("Conv", _conv_infer, _conv_ref, grad=_conv_grad, attrs=CONV_ATTRS, onnx=_conv_onnx("Conv"))
defop("ConvTranspose", _conv_transpose_infer, _conv_transpose_ref, grad=_conv_transpose_grad,
      attrs=CONV_ATTRS + ("output_padding",), onnx=_conv_onnx("ConvTranspose"))


# -- Keras-facing functions (keras.ops signatures, Keras kernel layouts) ----------------------
def normalize_tuple(value, n, name, allow_zero=False):
    """An int or a sequence of `n` ints -> a tuple of `n` ints (> 0, or >= 0 with allow_zero)."""
    values = (value,) * n if isinstance(value, (int, np.integer)) else value
    lowest = 0 if allow_zero else 1
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != n or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   and v >= lowest for v in values):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers "
                         f"{'>= 0' if allow_zero else '> 0'}. Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def normalize_padding(padding, allow_causal=False):
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    value = padding.lower() if isinstance(padding, str) else padding
    if value not in allowed:
        raise ValueError(f"The `padding` argument must be one of {allowed}. "
                         f"Received: padding={padding!r}")
    return value


def normalize_data_format(data_format):
    from kgraph import config

    value = str(data_format or config.image_data_format()).lower()
    if value not in ("channels_last", "channels_first"):
        raise ValueError("The `data_format` argument must be one of 'channels_first', "
                         f"'channels_last'. Received: data_format={data_format!r}")
    return value


def _to_channels_first(x, channels_last):
    from kgraph.ops.movement import transpose

    rank = len(x.shape)
    return transpose(x, (0, rank - 1) + tuple(range(1, rank - 1))) if channels_last else x


def _to_channels_last(y, channels_last):
    from kgraph.ops.movement import transpose

    rank = len(y.shape)
    return transpose(y, (0,) + _rest(rank) + (1,)) if channels_last else y


def _kernel_to_onnx(kernel):
    """Keras (*window, a, b) -> ONNX (b, a, *window)."""
    from kgraph.ops.movement import transpose

    rank = len(kernel.shape)
    return transpose(kernel, (rank - 1, rank - 2) + tuple(range(rank - 2)))


def _setup(inputs, window, strides, padding, data_format, dilation_rate, causal=False):
    dims = len(inputs.shape) - 2
    if dims not in (1, 2, 3) or len(window) != dims:
        raise ValueError(f"Convolution needs inputs of rank 3, 4 or 5 and a kernel of the same "
                         f"rank. Received: inputs {tuple(inputs.shape)}, window {window}")
    strides = normalize_tuple(strides, dims, "strides")
    dilations = normalize_tuple(dilation_rate, dims, "dilation_rate")
    padding = normalize_padding(padding, allow_causal=causal and dims == 1)
    channels_last = normalize_data_format(data_format) == "channels_last"
    x = _to_channels_first(inputs, channels_last)
    return x, strides, dilations, padding, channels_last


def _conv_cf(x, kernel_onnx, bias, strides, dilations, pads, groups):
    extra = () if bias is None else (bias,)
    return apply("Conv", x, kernel_onnx, *extra, strides=strides, dilations=dilations,
                 pads=pads, groups=groups)


def _groups(channels, per_group):
    if channels is None or channels % per_group:
        raise ValueError(f"The input channels ({channels}) must be a multiple of the kernel's "
                         f"input channels ({per_group})")
    return channels // per_group


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1,
         bias=None):
    """N-d convolution (cross-correlation), as `keras.ops.conv`.

    Args:
        inputs: tensor of rank 3, 4 or 5: `(batch, *spatial, channels)` for channels last,
            `(batch, channels, *spatial)` for channels first.
        kernel: tensor `(*window, channels / groups, filters)` (Keras layout); the number of
            groups is `channels / kernel.shape[-2]`.
        strides: int or tuple of ints.
        padding: `"valid"`, `"same"` (TF SAME: the odd element of padding goes after) or, for
            1-D inputs, `"causal"` (all padding before).
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.
        dilation_rate: int or tuple of ints.
        bias: optional `(filters,)` tensor added inside the convolution (kgraph extension).

    Returns:
        The convolved tensor, in the layout of `inputs`.

    Example:
        >>> conv(np.ones((1, 5, 1)), np.ones((3, 1, 1))).shape
        (1, 3, 1)
    """
    window = tuple(kernel.shape[:-2])
    x, strides, dilations, padding, last = _setup(inputs, window, strides, padding,
                                                  data_format, dilation_rate, causal=True)
    groups = _groups(x.shape[1], kernel.shape[-2])
    x, pads = padded_for_conv(x, padding, window, strides, dilations)
    y = _conv_cf(x, _kernel_to_onnx(kernel), bias, strides, dilations, pads, groups)
    return _to_channels_last(y, last)


def _depthwise_kernel(kernel):
    """Keras (*window, channels, multiplier) -> ONNX (channels * multiplier, 1, *window)."""
    from kgraph.ops.movement import reshape_to

    shape = tuple(kernel.shape)
    flat = reshape_to(kernel, shape[:-2] + (1, shape[-2] * shape[-1]))
    return _kernel_to_onnx(flat)


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1, bias=None):
    """Depthwise convolution, as `keras.ops.depthwise_conv`: each input channel is convolved
    with its own `multiplier` filters; output channel `c * multiplier + m`.

    Args:
        inputs: tensor of rank 3, 4 or 5 (see `conv`).
        kernel: tensor `(*window, channels, multiplier)`.
        strides, padding, data_format, dilation_rate, bias: as in `conv`.

    Returns:
        Tensor with `channels * multiplier` channels, in the layout of `inputs`.

    Example:
        >>> depthwise_conv(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 2))).shape
        (1, 2, 2, 4)
    """
    window = tuple(kernel.shape[:-2])
    x, strides, dilations, padding, last = _setup(inputs, window, strides, padding,
                                                  data_format, dilation_rate)
    if x.shape[1] != kernel.shape[-2]:
        raise ValueError(f"depthwise_conv: the input has {x.shape[1]} channels, the kernel "
                         f"{kernel.shape[-2]}. Received: kernel shape {tuple(kernel.shape)}")
    x, pads = padded_for_conv(x, padding, window, strides, dilations)
    y = _conv_cf(x, _depthwise_kernel(kernel), bias, strides, dilations, pads, x.shape[1])
    return _to_channels_last(y, last)


def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid",
                   data_format=None, dilation_rate=1, bias=None):
    """Depthwise convolution followed by a 1x1 convolution, as `keras.ops.separable_conv`.

    Args:
        inputs: tensor of rank 3, 4 or 5 (see `conv`).
        depthwise_kernel: `(*window, channels, multiplier)`.
        pointwise_kernel: `(*ones, channels * multiplier, filters)`.
        strides, padding, data_format, dilation_rate: of the depthwise step.
        bias: optional `(filters,)` tensor added by the pointwise step.

    Returns:
        Tensor with `filters` channels, in the layout of `inputs`.

    Example:
        >>> separable_conv(np.ones((1, 5, 2)), np.ones((3, 2, 2)), np.ones((1, 4, 3))).shape
        (1, 3, 3)
    """
    window = tuple(depthwise_kernel.shape[:-2])
    x, strides, dilations, padding, last = _setup(inputs, window, strides, padding,
                                                  data_format, dilation_rate)
    x, pads = padded_for_conv(x, padding, window, strides, dilations)
    y = _conv_cf(x, _depthwise_kernel(depthwise_kernel), None, strides, dilations, pads,
                 x.shape[1])
    ones = (1,) * len(window)
    y = _conv_cf(y, _kernel_to_onnx(pointwise_kernel), bias, ones, ones, ((0, 0),) * len(ones), 1)
    return _to_channels_last(y, last)


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1, bias=None):
    """Transposed convolution (the gradient of `conv` with respect to its input), as
    `keras.ops.conv_transpose`.

    Args:
        inputs: tensor of rank 3, 4 or 5 (see `conv`).
        kernel: tensor `(*window, filters, channels)` (Keras layout).
        strides: int or tuple of ints.
        padding: `"valid"` or `"same"`; output size `size * stride` for `"same"`,
            `(size - 1) * stride + max(window, stride)` for `"valid"`.
        output_padding: None, or int or tuple of ints (< strides) added after.
        data_format, dilation_rate, bias: as in `conv`.

    Returns:
        Tensor with `filters` channels, in the layout of `inputs`.

    Example:
        >>> conv_transpose(np.ones((1, 3, 1)), np.ones((3, 2, 1)), 2, "same").shape
        (1, 6, 2)
    """
    window = tuple(kernel.shape[:-2])
    x, strides, dilations, padding, last = _setup(inputs, window, strides, padding,
                                                  data_format, dilation_rate)
    if output_padding is not None:
        output_padding = normalize_tuple(output_padding, len(window), "output_padding", True)
    if x.shape[1] != kernel.shape[-1]:
        raise ValueError(f"conv_transpose: the input has {x.shape[1]} channels, the kernel "
                         f"{kernel.shape[-1]}. Received: kernel shape {tuple(kernel.shape)}")
    pads, extra = conv_transpose_pads(padding, window, strides, dilations, output_padding)
    operands = (x, _kernel_to_onnx(kernel)) + (() if bias is None else (bias,))
    y = apply("ConvTranspose", *operands, strides=strides, dilations=dilations, pads=pads,
              output_padding=extra, groups=1)
    return _to_channels_last(y, last)
