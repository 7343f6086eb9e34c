"""Keras' padding names as explicit convolution pads: TF SAME, causal, valid, the transposed
convolution's crops, and SAME along axes whose size is known only at run time (the input
padded by a static pad of the most SAME can need, then cut at run time)."""
from __future__ import annotations

import math

import numpy as np

from kgraph.ops.registry import apply


def window_span(window, dilation):
    """Extent of a dilated window."""
    return (window - 1) * dilation + 1


def padded_for_conv(x, padding, window, strides, dilations):
    """(x, pads): channels-first `x` and the Conv pads of Keras' `padding` for it. TF SAME
    padding along a strided axis depends on the axis' size (size mod stride); where that
    size is known only at run time (an `Input((None, None, 3))`), x is padded here instead
    (`pad_same_at_run_time`) and its Conv pads are 0."""
    sizes = tuple(x.shape[2:])
    open_axes = [i for i, (n, s) in enumerate(zip(sizes, strides))
                 if padding == "same" and n is None and s > 1]
    # an unknown size along a stride-1 axis: SAME pads span - 1 whatever it is (as for 1)
    pads = list(conv_pads(padding, tuple(1 if n is None else n for n in sizes), window,
                          strides, dilations))
    if not open_axes:
        return x, tuple(pads)
    for i in open_axes:
        pads[i] = (0, 0)
    x = pad_same_at_run_time(x, [2 + i for i in open_axes],
                             [window_span(window[i], dilations[i]) for i in open_axes],
                             [strides[i] for i in open_axes])
    return x, tuple(pads)


def pad_same_at_run_time(x, axes, spans, strides, value=0.0):
    """`x` padded with `value` along `axes`, whose sizes are known only at run time, as TF
    SAME pads them for windows of `spans` at `strides`: total max((ceil(n / s) - 1) s +
    span - n, 0) for a size n, the odd site after. A static pad of the most that can be
    (span - 1), then a run-time slice of it per axis."""
    from kgraph.ops.movement import count, dynamic_slice, pad

    def i64(v):
        return np.asarray(v, np.int64)

    widths = [(0, 0)] * len(x.shape)
    for a, span in zip(axes, spans):
        widths[a] = ((span - 1) // 2, span - 1 - (span - 1) // 2)
    padded = pad(x, widths, value)
    for a, span, stride in zip(axes, spans, strides):
        n = count(x, (a,))
        sites = apply("Div", apply("Add", n, i64(stride - 1)), i64(stride))  # ceil(n / s)
        reach = apply("Add", apply("Mul", apply("Sub", sites, i64(1)), i64(stride)), i64(span))
        total = apply("Max", apply("Sub", reach, n), i64(0))
        start = apply("Sub", i64(widths[a][0]), apply("Div", total, i64(2)))
        padded = dynamic_slice(padded, start, apply("Add", apply("Add", start, n), total), a)
    return padded


def same_pads(size, span, stride):
    """TF 'SAME' padding of one axis of `size` for a window of extent `span`: output
    ceil(size / stride), the odd element of padding after."""
    total = max((math.ceil(size / stride) - 1) * stride + span - size, 0)
    return (total // 2, total - total // 2)


def conv_pads(padding, sizes, window, strides, dilations):
    """Explicit (before, after) pads for Keras padding names of axes of known `sizes`: 'same'
    is TF's SAME (`same_pads`), 'causal' pads before only."""
    pads = []
    for n, k, s, d in zip(sizes, window, strides, dilations):
        span = window_span(k, d)
        if padding == "valid":
            pads.append((0, 0))
        elif padding == "causal":
            pads.append((span - 1, 0))
        else:
            pads.append(same_pads(n, span, s))
    return tuple(pads)


def conv_transpose_pads(padding, window, strides, dilations, output_padding=None):
    """(pads, output_padding) of ConvTranspose for Keras' transposed-convolution padding
    (Keras' own conversion for JAX, which pads the stride-dilated input, rewritten as the
    crops of the full result that ONNX takes)."""
    pads, extras = [], []
    for i, (k, s, d) in enumerate(zip(window, strides, dilations)):
        span, extra = window_span(k, d), None if output_padding is None else output_padding[i]
        if padding == "valid":
            extra = max(span, s) - span if extra is None else extra
            left, right = span - 1, span - 1 + extra
        else:
            total = s + span - 2 if extra is None else span + span % 2 - 2 + extra
            left = min(total // 2 + total % 2, span - 1)
            right = total - left
        after = span - 1 - right
        pads.append((span - 1 - left, max(after, 0)))
        extras.append(max(-after, 0))
    return tuple(pads), tuple(extras)
