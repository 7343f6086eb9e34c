"""A convolution's kernel gradient, d/dkernel of `Conv(x, kernel)` given the output gradient,
`Conv2DKernelGrad`, the op that computes it in one kernel, and `Im2ColRows`, the op that cuts
its windows (kgraph/ops/conv.py's gradient rules call `kernel_grad`).

Where this process's onnxruntime has kgraph's operators, an ungrouped 2-D float32 convolution
with known sizes takes it as one `Conv2DKernelGrad` (runtime/native/conv.cc: an implicit GEMM
over the images, no im2col buffer), the first layer on images too (few input channels: it
measured as fast as the per-sample products alone, and faster where a max pooling follows,
whose pooled gradient the operator then reads directly, compiler/onnx/emit.py); its
expansion, what every other consumer of the graph gets, is the im2col product below.

Ungrouped convolutions with known sizes take it as one GEMM over an im2col: the windows of
the input, channels outermost, as (window * in, N * out sites) rows times the output gradient
channels last (`_im2col_kernel_grad`), or, for a layer with few input channels, as per-sample
products summed (`_per_sample_kernel_grad`). The rows are one `Im2ColRows` op, a single
kernel where this process's onnxruntime has kgraph's operators (runtime/native/ortops.cc),
otherwise its expansion `im2col_rows` (slices of the transposed input and a Concat). Every
other convolution takes it as a Conv of the input by the output gradient with batch and
channel axes swapped, strides and dilations exchanged, cut to the window size.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops.conv import _known, _rest, native_2d, native_conv
from kgraph.ops.registry import apply, defop


def _swap_batch_and_channels(x, groups):
    """(n, c, *s) -> (c / groups, groups * n, *s): each group's channels become a batch and
    its samples the channels of that group, so a grouped Conv sums over the samples."""
    from kgraph.ops.movement import reshape_to, transpose

    rank = len(x.shape)
    if groups == 1:
        return transpose(x, (1, 0) + _rest(rank))
    n, c, spatial = x.shape[0], x.shape[1], tuple(x.shape[2:])
    if c is None:
        raise NotImplementedError(f"The kernel gradient of a grouped convolution needs static "
                                  f"channels. Received: {tuple(x.shape)}")
    if not _known(*spatial):  # sizes known at run time only: reshaped to the run-time dims
        from kgraph.ops.movement import reshape
        from kgraph.ops.symbolic_shape import dim

        batch, sites = dim(x, 0), [dim(x, a) for a in range(2, rank)]
        x = reshape(x, [batch, groups, c // groups] + sites)
        x = transpose(x, (2, 1, 0) + tuple(range(3, rank + 1)))
        return reshape(x, [c // groups, batch * groups] + sites)
    x = reshape_to(x, (n, groups, c // groups) + spatial)
    x = transpose(x, (2, 1, 0) + tuple(range(3, rank + 1)))
    return reshape_to(x, (c // groups, None if n is None else groups * n) + spatial)


def _window_parts(x, window, strides, dilations, pads, sizes, spatial):
    """The padded input at each window offset, at every stride-th site (`sizes` of them per
    spatial axis), in x's own layout (`spatial`: its spatial axes): one tensor per offset."""
    from kgraph.ops.movement import pad, reshape_to

    widths = [(0, 0)] * len(x.shape)
    for a, k, s, d, (lo, hi), m in zip(spatial, window, strides, dilations, pads, sizes):
        need = (k - 1) * d + m * s  # the last offset's slice, a whole stride past its end
        widths[a] = (lo, max(hi, need - x.shape[a] - lo))
    xp = pad(x, widths) if any(w != (0, 0) for w in widths) else x
    parts = []
    for offset in np.ndindex(*window):
        starts = tuple(o * d for o, d in zip(offset, dilations))
        ends = tuple(st + m * s for st, m, s in zip(starts, sizes, strides))
        part = apply("Slice", xp, starts=starts, ends=ends, axes=spatial)
        if any(s > 1 for s in strides):  # every s-th site: split (m * s) -> (m, s), keep 0
            split = list(part.shape)
            for i, (a, m, s) in enumerate(zip(spatial, sizes, strides)):
                split[a + i:a + i + 1] = [m, s]
            part = apply("Slice", reshape_to(part, tuple(split)), starts=(0,) * len(spatial),
                         ends=(1,) * len(spatial),
                         axes=tuple(a + i + 1 for i, a in enumerate(spatial)))
        parts.append(part)
    return parts


def im2col_rows(x, window, strides, dilations, pads, sizes):
    """The windows of channels-first `x` as (window * in, N * out sites) rows, one row block
    per window offset: slices of x transposed to (in, N, *spatial), joined by a Concat."""
    from kgraph.ops.movement import concatenate, reshape_to, transpose

    rank, c = len(x.shape), x.shape[1]
    parts = _window_parts(transpose(x, (1, 0) + _rest(rank)), window, strides, dilations, pads,
                          sizes, _rest(rank))  # (c, n, *sites) each
    rows = [reshape_to(part, (c, None)) for part in parts]
    return rows[0] if len(rows) == 1 else concatenate(rows, 0)


def _im2col_rows_infer(types, window, strides, dilations, pads, sizes):
    (t,) = types
    n = None if t.shape[0] is None else t.shape[0] * int(np.prod(sizes))
    return [TensorType((int(np.prod(window)) * t.shape[1], n), t.dtype)]


def _im2col_rows_ref(x, window, strides, dilations, pads, sizes):
    widths = [(0, 0), (0, 0)] + [(lo, max(hi, (k - 1) * d + m * s - n - lo))
                                 for (lo, hi), k, d, m, s, n in
                                 zip(pads, window, dilations, sizes, strides, x.shape[2:])]
    xp = np.pad(x, widths)
    blocks = []
    for offset in np.ndindex(*window):
        index = tuple(slice(o * d, o * d + m * s, s)
                      for o, d, m, s in zip(offset, dilations, sizes, strides))
        part = xp[(slice(None), slice(None)) + index]  # (n, c, *sites)
        blocks.append(np.moveaxis(part, 1, 0).reshape(x.shape[1], -1))
    return np.concatenate(blocks, 0)


def _windowed_op(op, expansion, emit_sizes):
    """(gradient rule, emission) of a windowed kgraph operator (attrs window, strides,
    dilations, pads, sizes): the gradient is the vector-Jacobian product of `expansion` (the
    ops are differentiated again only for second-order gradients); the emission is the
    `kgraph.<op>` node in a native graph, else `expansion`'s standard ONNX."""
    def grad(gy, y, *inputs, **attrs):
        from kgraph.compiler.autodiff import expansion_vjp

        return expansion_vjp(expansion, list(inputs), [gy], **attrs)

    def emit(ctx, node, ins, outs):
        a = node.attrs
        if not ctx.native:
            return ctx.expand(expansion, node, ins, outs)
        extra = dict(sizes=list(a["sizes"])) if emit_sizes else {}
        ctx.node(f"kgraph.{op}", ins, outs, kernel_shape=list(a["window"]),
                 strides=list(a["strides"]), dilations=list(a["dilations"]),
                 pads=[lo for lo, _ in a["pads"]] + [hi for _, hi in a["pads"]], **extra)
    return grad, emit


_WINDOW_ATTRS = ("window", "strides", "dilations", "pads", "sizes")
_im2col_rows_grad, _im2col_rows_onnx = _windowed_op("Im2ColRows", im2col_rows, True)
# the rows of a 2-D kernel gradient's im2col in one kernel, where kgraph's onnxruntime
# operators run the step (runtime/native/ortops.cc); traced only there
defop("Im2ColRows", _im2col_rows_infer, _im2col_rows_ref, grad=_im2col_rows_grad,
      attrs=_WINDOW_ATTRS, onnx=_im2col_rows_onnx)


def _kernel_grad_attrs(window, strides, dilations, pads, sizes):
    return dict(window=tuple(window), strides=tuple(strides), dilations=tuple(dilations),
                pads=tuple(map(tuple, pads)), sizes=tuple(sizes))


def _conv2d_kernel_grad_infer(types, window, strides, dilations, pads, sizes):
    x, g = types
    return [TensorType((g.shape[1], x.shape[1]) + tuple(window), x.dtype)]


def _conv2d_kernel_grad_ref(x, g, window, strides, dilations, pads, sizes):
    rows = _im2col_rows_ref(x, window, strides, dilations, pads, sizes)  # (window * in, n sites)
    grad = rows @ np.moveaxis(g, 1, -1).reshape(-1, g.shape[1])
    grad = grad.reshape(tuple(window) + (x.shape[1], g.shape[1]))
    return np.ascontiguousarray(np.moveaxis(grad, (-1, -2), (0, 1))).astype(x.dtype)


def _conv2d_kernel_grad_expansion(x, g, window, strides, dilations, pads, sizes):
    return _im2col_kernel_grad(x, g, window, strides, dilations, pads)


_conv2d_kernel_grad_grad, _conv2d_kernel_grad_onnx = _windowed_op(
    "Conv2DKernelGrad", _conv2d_kernel_grad_expansion, False)


# an ungrouped 2-D convolution's kernel gradient as one operator without an im2col buffer,
# where kgraph's onnxruntime operators run the step (runtime/native/conv.cc); traced only there
defop("Conv2DKernelGrad", _conv2d_kernel_grad_infer, _conv2d_kernel_grad_ref,
      grad=_conv2d_kernel_grad_grad, attrs=_WINDOW_ATTRS, onnx=_conv2d_kernel_grad_onnx)


def _few_channels(x, g, window) -> bool:
    """Whether the windows (window * in) are few against the output sites: a layer with few
    input channels (the first, on images), whose kernel gradient is best per sample."""
    return x.shape[1] * int(np.prod(window)) * 4 <= int(np.prod(g.shape[2:]))


def _im2col_kernel_grad(x, g, window, strides, dilations, pads):
    """d/dkernel of an ungrouped Conv as one GEMM (im2col): the windows of the padded input,
    channels outermost, one row block per window offset, (window * in, N * out sites) times
    the output gradient channels last (N * out sites, out). onnxruntime's GEMM runs this
    untransposed product ~20% faster than the transposed one of a (N * out sites, window * in)
    im2col, and the (in, N, *sites) layout is a cheap transpose of channels-first data."""
    from kgraph.ops.linalg import matmul
    from kgraph.ops.movement import reshape_to, transpose

    rank = len(x.shape)
    dims = rank - 2
    sizes, c = tuple(g.shape[2:]), x.shape[1]
    if _few_channels(x, g, window):
        return _per_sample_kernel_grad(x, g, window, strides, dilations, pads)
    attrs = _kernel_grad_attrs(window, strides, dilations, pads, sizes)
    if native_2d(x):  # one kernel
        rows = apply("Im2ColRows", x, **attrs)
    else:
        rows = im2col_rows(x, **attrs)
    gl = reshape_to(transpose(g, (0,) + _rest(rank) + (1,)), (None, g.shape[1]))
    grad = reshape_to(matmul(rows, gl), tuple(window) + (c, g.shape[1]))
    return transpose(grad, (dims + 1, dims) + tuple(range(dims)))


def _per_sample_kernel_grad(x, g, window, strides, dilations, pads):
    """`_im2col_kernel_grad` channels first, one product per sample, summed: for a layer with
    few input channels (the first, on images) the windows (window * in) are far fewer than
    the output sites, so the per-sample products (out, window * in) are small, and neither
    the output gradient (often channels first, after a pooling gradient or a transposed
    convolution) nor the input needs a transpose."""
    from kgraph.ops.linalg import matmul
    from kgraph.ops.movement import concatenate, reshape_to, transpose
    from kgraph.ops.reduce import sum as reduce_sum

    dims = len(x.shape) - 2
    sizes, c, batch, out = tuple(g.shape[2:]), x.shape[1], x.shape[0], g.shape[1]
    sites, taps = int(np.prod(sizes)), int(np.prod(window)) * c
    if native_2d(x):  # kgraph's Im2ColRows (window * in, n * sites), one kernel
        rows = apply("Im2ColRows", x, **_kernel_grad_attrs(window, strides, dilations, pads,
                                                           sizes))
        cols_t = transpose(reshape_to(rows, (taps, batch, sites)), (1, 2, 0))
    else:
        parts = _window_parts(x, window, strides, dilations, pads, sizes,
                              tuple(range(2, dims + 2)))  # (n, c, *sites) each
        cols = [reshape_to(part, (batch, c, sites)) for part in parts]
        cols = cols[0] if len(cols) == 1 else concatenate(cols, 1)  # (n, window * in, sites)
        cols_t = transpose(cols, (0, 2, 1))
    per_sample = matmul(reshape_to(g, (batch, out, sites)), cols_t)
    grad = reshape_to(reduce_sum(per_sample, (0,)), (out,) + tuple(window) + (c,))
    return transpose(grad, (0, dims + 1) + tuple(range(1, dims + 1)))


def kernel_grad(x, g, window, strides, dilations, pads, groups):
    """d/dkernel of Conv(x, kernel) given the output gradient `g`, as (out, in / groups, *window):
    a Conv of x (samples as channels) by g (samples as input channels) whose stride is the
    dilation and whose dilation is the stride; positions past the window are cut off."""
    from kgraph.ops.movement import reshape_to, transpose

    rank = len(x.shape)
    if groups == 1 and _known(x.shape[1], g.shape[1], *x.shape[2:], *g.shape[2:], *window):
        if native_conv(x, x.shape[1], window):
            return apply("Conv2DKernelGrad", x, g, **_kernel_grad_attrs(
                window, strides, dilations, pads, g.shape[2:]))
        return _im2col_kernel_grad(x, g, window, strides, dilations, pads)
    grad = apply("Conv", _swap_batch_and_channels(x, groups), transpose(g, (1, 0) + _rest(rank)),
                 strides=dilations, dilations=strides, pads=pads, groups=groups)
    if tuple(grad.shape[2:]) != tuple(window):
        axes = _rest(rank)
        grad = apply("Slice", grad, starts=(0,) * len(axes), ends=tuple(window), axes=axes)
        grad = reshape_to(grad, tuple(grad.shape[:2]) + tuple(window))  # static when s is not
    return transpose(grad, (1, 0) + _rest(rank))
