"""`keras.ops.adaptive_average_pool` / `adaptive_max_pool` (and their `keras.ops.nn` names),
`keras.ops.unfold` and its adjoint `keras.ops.fold`, composed from existing primitives.

Adaptive pooling uses PyTorch's windows, as Keras 3: output position `i` of an axis of input
size `n` and output size `m` pools input `[floor(i * n / m), ceil((i + 1) * n / m))`. Both pools
are separable, so they run one spatial axis at a time: the average is a matmul with a constant
(out, in) averaging matrix, the max a ReduceMax per window slice, concatenated. Spatial sizes
must be known while tracing (the batch may be unknown)."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import constant, dtype_of, rank, static_dim, to_float
from kgraph.ops.conv import normalize_data_format


def _windows(in_size, out_size):
    """(start, end) of each output position's window along one axis."""
    i = np.arange(out_size)
    starts = (i * in_size) // out_size
    ends = -((-(i + 1) * in_size) // out_size)  # ceil without floats
    return list(zip(starts.tolist(), ends.tolist()))


def _adaptive_args(inputs, output_size, data_format, op):
    dims = rank(inputs) - 2
    if dims not in (1, 2, 3):
        raise ValueError(f"{op} supports only 1D/2D/3D inputs (rank 3, 4 or 5). "
                         f"Received: inputs.shape={tuple(inputs.shape)}")
    sizes = (output_size,) * dims if isinstance(output_size, (int, np.integer)) else \
        tuple(output_size)
    if len(sizes) != dims or not all(isinstance(s, (int, np.integer)) and s >= 1
                                     for s in sizes):
        raise ValueError(f"{op}: output_size must be a positive int or a tuple of {dims} "
                         f"positive ints. Received: output_size={output_size!r}")
    first = 2 if normalize_data_format(data_format) == "channels_first" else 1
    axes = tuple(range(first, first + dims))
    return [(axis, static_dim(inputs, axis, op), int(s)) for axis, s in zip(axes, sizes)]


def adaptive_average_pool(inputs, output_size, data_format=None):
    """Average pooling to a fixed output size (`keras.ops.adaptive_average_pool`).

    Args:
        inputs: tensor of rank 3, 4 or 5: `(batch, *spatial, channels)` (channels last) or
            `(batch, channels, *spatial)`. Spatial sizes must be static.
        output_size: int or tuple of ints, the spatial output size.
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The pooled tensor, same layout as `inputs`, spatial dims `output_size`.

    Example:
    >>> adaptive_average_pool(np.ones((2, 7, 5, 3), "float32"), (3, 2)).shape
    (2, 3, 2, 3)
    """
    from kgraph.ops.image import _along

    x = to_float(inputs)
    for axis, in_size, out_size in _adaptive_args(x, output_size, data_format,
                                                  "adaptive_average_pool"):
        matrix = np.zeros((out_size, in_size))
        for i, (start, end) in enumerate(_windows(in_size, out_size)):
            matrix[i, start:end] = 1.0 / (end - start)
        x = _along(x, axis, matrix)
    return x


def adaptive_max_pool(inputs, output_size, data_format=None):
    """Max pooling to a fixed output size (`keras.ops.adaptive_max_pool`).

    Arguments as `adaptive_average_pool`; each output holds its window's maximum.

    Example:
    >>> adaptive_max_pool(np.arange(6.0).reshape(1, 6, 1), 2)[0, :, 0]
    array([2., 5.])
    """
    from kgraph.ops.reduce import max as reduce_max

    x = inputs
    for axis, in_size, out_size in _adaptive_args(x, output_size, data_format,
                                                  "adaptive_max_pool"):
        if in_size == out_size:
            continue
        x = mv.concatenate([reduce_max(mv.slice_axis(x, start, end, axis), axis, keepdims=True)
                            for start, end in _windows(in_size, out_size)], axis)
    return x


def _pair(value, name):
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(f"unfold/fold: {name} must be an int or a tuple of two ints. "
                         f"Received: {name}={value!r}")
    return tuple(int(v) for v in values)


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding local blocks of a batch of channels-first images, as columns
    (`keras.ops.unfold`, PyTorch's `unfold`, im2col): an identity-kernel convolution.

    Args:
        x: `(N, C, H, W)` (channels first), `C`, `H` and `W` static.
        kernel_size: int or `(kH, kW)`, the window.
        dilation: int or `(dH, dW)`, spacing between window points. Default 1.
        padding: int or `(pH, pW)`, zeros added on both sides of each spatial dim. Default 0.
        stride: int or `(sH, sW)`, the window step. Default 1.

    Returns:
        `(N, C * kH * kW, L)`, `L` the number of windows (row-major over the output grid);
        the middle axis runs over channels, then window rows, then window columns.

    Example:
    >>> unfold(np.ones((1, 2, 4, 4), "float32"), kernel_size=2, stride=2).shape
    (1, 8, 4)
    """
    from kgraph.ops.conv import conv

    if rank(x) != 4:
        raise ValueError(f"unfold: input must be a 4D tensor. Received: "
                         f"input.shape={tuple(x.shape)}")
    (kh, kw), dilation = _pair(kernel_size, "kernel_size"), _pair(dilation, "dilation")
    (ph, pw), stride = _pair(padding, "padding"), _pair(stride, "stride")
    channels = static_dim(x, 1, "unfold")
    if ph or pw:
        x = mv.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    depth = channels * kh * kw
    kernel = np.zeros((kh, kw, channels, depth), ew._np_dtype(dtype_of(x)))
    for c in range(channels):
        for i in range(kh):
            for j in range(kw):
                kernel[i, j, c, (c * kh + i) * kw + j] = 1.0
    patches = conv(x, constant(kernel, x), strides=stride, padding="valid",
                   data_format="channels_first", dilation_rate=dilation)
    rows, cols = static_dim(patches, 2, "unfold"), static_dim(patches, 3, "unfold")
    return mv.reshape(patches, (-1, depth, rows * cols))


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum sliding local blocks back into a batch of channels-first images (`keras.ops.fold`,
    PyTorch's `fold`, col2im): the adjoint of `unfold`, so overlapping entries add up.

    Each window position's `(N, C, L)` column block is spread onto its strided grid (zeros
    interleaved by a pad and a reshape), shifted by its offset in the window and summed; the
    padding is then cut away. Only pads, reshapes, slices and adds: it traces on an unknown
    batch and its gradient is `unfold`.

    Args:
        x: `(N, C * kH * kW, L)`, as `unfold` returns; the last two dims static.
        output_size: int or `(H, W)`, the image size (without padding).
        kernel_size: int or `(kH, kW)`.
        dilation: int or `(dH, dW)`. Default 1.
        padding: int or `(pH, pW)`, cut from both sides of each spatial dim. Default 0.
        stride: int or `(sH, sW)`. Default 1.

    Returns:
        `(N, C, H, W)`.

    Example:
    >>> fold(np.ones((1, 4, 4), "float32"), 3, kernel_size=2)[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]], dtype=float32)
    """
    if rank(x) != 3:
        raise ValueError(f"fold: input must be a 3D tensor (N, C * kH * kW, L). Received: "
                         f"x.shape={tuple(x.shape)}")
    (height, width), (kh, kw) = _pair(output_size, "output_size"), _pair(kernel_size,
                                                                          "kernel_size")
    (dh, dw), (ph, pw), (sh, sw) = (_pair(dilation, "dilation"), _pair(padding, "padding"),
                                    _pair(stride, "stride"))
    padded = (height + 2 * ph, width + 2 * pw)
    rows, cols = ((size - d * (k - 1) - 1) // s + 1 for size, d, k, s in
                  ((padded[0], dh, kh, sh), (padded[1], dw, kw, sw)))
    depth, count = static_dim(x, 1, "fold"), static_dim(x, 2, "fold")
    if depth % (kh * kw) or count != rows * cols:
        raise ValueError(f"fold: x.shape={tuple(x.shape)} does not match kernel_size="
                         f"{(kh, kw)} and {rows * cols} windows of output_size="
                         f"{(height, width)}, padding={(ph, pw)}, stride={(sh, sw)}, "
                         f"dilation={(dh, dw)}")
    channels = depth // (kh * kw)
    blocks = mv.reshape(x, (-1, channels, kh, kw, rows, 1, cols, 1))
    # (rows, 1, cols, 1) padded to (rows, sH, cols, sW): entry (r sH, c sW) is block (r, c)
    blocks = mv.pad(blocks, ((0, 0),) * 5 + ((0, sh - 1), (0, 0), (0, sw - 1)))
    grid = (rows * sh, cols * sw)
    out = None
    for i in range(kh):
        for j in range(kw):
            block = mv.reshape(blocks[:, :, i, j], (-1, channels) + grid)
            top, left = i * dh, j * dw
            block = mv.pad(block, ((0, 0), (0, 0), (top, max(padded[0] - top - grid[0], 0)),
                                   (left, max(padded[1] - left - grid[1], 0))))
            block = mv.slice_axis(mv.slice_axis(block, 0, padded[0], 2), 0, padded[1], 3)
            out = block if out is None else out + block
    return mv.slice_axis(mv.slice_axis(out, ph, ph + height, 2), pw, pw + width, 3)
