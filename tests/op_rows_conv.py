"""Op-table rows of the convolution family (kgraph/ops/conv.py), picked up by tests/test_ops.py.

The expected values come from numpy written independently of the op references:
- `np_conv`: each output site is the dot product of its (dilated, strided) window with the
  kernel, group by group;
- `np_conv_transpose`: the adjoint of `np_conv`, built as the transposed matrix of that
  linear map (no scatter formula at all);
- `np_keras_conv` / `np_keras_conv_transpose`: the Keras equations on channels-last data and
  Keras kernel layouts (TF 'SAME' padding; a transposed convolution as Keras' JAX backend
  defines it: the input dilated by the stride, padded, correlated with the flipped kernel).
The module also serves tests/test_conv_layers.py.
"""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.ops.conv import conv, conv_transpose, depthwise_conv, separable_conv
from kgraph.ops.registry import apply
from op_table import Row, normal


# -- independent numpy formulas -------------------------------------------------------------
def _pad_or_crop(x, pads):
    """Pad spatial axes by (before, after); a negative amount crops instead."""
    x = np.pad(x, ((0, 0), (0, 0)) + tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads))
    crop = tuple(slice(max(-lo, 0), x.shape[2 + i] - max(-hi, 0))
                 for i, (lo, hi) in enumerate(pads))
    return x[(slice(None), slice(None)) + crop]


def np_conv(x, w, b=None, strides=None, dilations=None, pads=None, groups=1):
    """Channels-first convolution with an (out, in / groups, *window) kernel."""
    dims = x.ndim - 2
    strides, dilations = strides or (1,) * dims, dilations or (1,) * dims
    xp = _pad_or_crop(x, pads or ((0, 0),) * dims)
    window = w.shape[2:]
    sizes = [(xp.shape[2 + i] - (window[i] - 1) * dilations[i] - 1) // strides[i] + 1
             for i in range(dims)]
    cg, og = x.shape[1] // groups, w.shape[0] // groups
    y = np.zeros((x.shape[0], w.shape[0], *sizes))
    axes = list(range(1, dims + 2))
    for site in np.ndindex(*sizes):
        picked = tuple(slice(i * s, i * s + (k - 1) * d + 1, d)
                       for i, s, d, k in zip(site, strides, dilations, window))
        patch = xp[(slice(None), slice(None)) + picked]
        for g in range(groups):
            y[(slice(None), slice(g * og, (g + 1) * og)) + site] = np.tensordot(
                patch[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og], axes=(axes, axes))
    return y if b is None else y + b.reshape((1, -1) + (1,) * dims)


def np_conv_transpose(x, w, b=None, strides=None, dilations=None, pads=None,
                      output_padding=None, groups=1):
    """The adjoint of `np_conv` (same kernel, read as (in, out / groups, *window))."""
    dims = x.ndim - 2
    strides, dilations = strides or (1,) * dims, dilations or (1,) * dims
    pads, extra = pads or ((0, 0),) * dims, output_padding or (0,) * dims
    sizes = [s * (n - 1) + (k - 1) * d + 1 + e - lo - hi for n, k, s, d, e, (lo, hi) in
             zip(x.shape[2:], w.shape[2:], strides, dilations, extra, pads)]
    channels = w.shape[1] * groups
    count = channels * int(np.prod(sizes))
    basis = np.eye(count).reshape((count, channels, *sizes))
    matrix = np_conv(basis, w, None, strides, dilations, pads, groups).reshape(count, -1)
    y = (x.reshape(x.shape[0], -1) @ matrix.T).reshape((x.shape[0], channels, *sizes))
    return y if b is None else y + b.reshape((1, -1) + (1,) * dims)


def np_same_pads(size, window, stride, dilation):
    """TF 'SAME': output ceil(size / stride); the odd element of padding goes after."""
    span = (window - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return (total // 2, total - total // 2)


def _first(x, data_format):
    return np.moveaxis(x, -1, 1) if data_format == "channels_last" else x


def _last(y, data_format):
    return np.moveaxis(y, 1, -1) if data_format == "channels_last" else y


def np_keras_conv(x, kernel, strides=1, padding="valid", dilation=1,
                  data_format="channels_last", bias=None):
    """Keras Conv: kernel (*window, in / groups, filters)."""
    dims = x.ndim - 2
    strides, dilation = _ints(strides, dims), _ints(dilation, dims)
    x = _first(x, data_format)
    window = kernel.shape[:dims]
    if padding == "same":
        pads = [np_same_pads(n, k, s, d)
                for n, k, s, d in zip(x.shape[2:], window, strides, dilation)]
    elif padding == "causal":
        pads = [((window[0] - 1) * dilation[0], 0)]
    else:
        pads = [(0, 0)] * dims
    w = kernel.transpose((dims + 1, dims) + tuple(range(dims)))
    groups = x.shape[1] // kernel.shape[-2]
    return _last(np_conv(x, w, bias, strides, dilation, pads, groups), data_format)


def np_keras_depthwise_kernel(kernel):
    """(*window, channels, multiplier) -> the grouped Conv kernel (*window, 1, channels * m)."""
    return kernel.reshape(kernel.shape[:-2] + (1, -1))


def _jax_transpose_pads(k, s, d, padding, extra):
    span = (k - 1) * d + 1
    if padding == "valid":
        extra = max(span, s) - span if extra is None else extra
        return span - 1, span - 1 + extra
    total = s + span - 2 if extra is None else span + span % 2 - 2 + extra
    left = min(total // 2 + total % 2, span - 1)
    return left, total - left


def np_keras_conv_transpose(x, kernel, strides=1, padding="valid", output_padding=None,
                            dilation=1, data_format="channels_last", bias=None):
    """Keras Conv transpose, kernel (*window, filters, in): the input dilated by the strides
    (zeros between samples), padded as Keras' JAX backend pads it, then correlated with the
    spatially flipped kernel."""
    dims = x.ndim - 2
    strides, dilation = _ints(strides, dims), _ints(dilation, dims)
    extra = (None,) * dims if output_padding is None else _ints(output_padding, dims)
    x = _first(x, data_format)
    dilated = np.zeros(x.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(x.shape[2:], strides)))
    dilated[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)] = x
    pads = [_jax_transpose_pads(k, s, d, padding, e)
            for k, s, d, e in zip(kernel.shape[:dims], strides, dilation, extra)]
    w = kernel.transpose((dims, dims + 1) + tuple(range(dims)))
    w = w[(slice(None), slice(None)) + (slice(None, None, -1),) * dims]
    return _last(np_conv(dilated, w, bias, None, dilation, pads), data_format)


def _ints(value, n):
    return (value,) * n if isinstance(value, int) else tuple(value)


# -- rows -----------------------------------------------------------------------------------
def _conv_row(id, x, w, bias=False, **attrs):
    inputs = (normal(*x), normal(*w, scale=0.5)) + ((normal(w[0]),) if bias else ())
    return Row(id, lambda *v: apply("Conv", *v, **attrs), inputs,
               lambda *a: np_conv(*a, **attrs), op="Conv")


def _transpose_row(id, x, w, bias=False, **attrs):
    out = w[1] * attrs["groups"]
    inputs = (normal(*x), normal(*w, scale=0.5)) + ((normal(out),) if bias else ())
    return Row(id, lambda *v: apply("ConvTranspose", *v, **attrs), inputs,
               lambda *a: np_conv_transpose(*a, **attrs), op="ConvTranspose")


def _unknown_batch(x):
    """`x` with its batch dim unknown to the shape rules."""
    return ops.reshape_to(x, (None,) + tuple(x.shape[1:]))


def _unknown_spatial(x):
    """`x` with its batch and spatial dims unknown to the shape rules (channels known)."""
    rank = len(x.shape)
    return ops.reshape_to(x, (None, x.shape[1]) + (None,) * (rank - 2), like=x)


_SPATIAL = dict(strides=(1, 1), dilations=(2, 1), pads=((1, 2), (0, 1)), groups=1)
_T_SPATIAL = dict(strides=(1, 1), dilations=(1, 2), pads=((0, 1), (1, 0)),
                  output_padding=(0, 0), groups=1)
_GROUPED = dict(strides=(2, 1), dilations=(1, 1), pads=((0, 1), (1, 1)), groups=2)
_T_GROUPED = dict(strides=(2, 2), dilations=(1, 1), pads=((1, 1), (0, 0)),
                  output_padding=(1, 1), groups=2)

ROWS = [
    _conv_row("Conv2D_strided_dilated_padded_bias", (2, 3, 7, 6), (4, 3, 3, 2), bias=True,
              strides=(2, 1), dilations=(1, 2), pads=((1, 0), (2, 1)), groups=1),
    # few input channels, many output sites: the kernel gradient is one product per sample
    _conv_row("Conv2D_one_channel_strided_dilated_padded", (2, 1, 12, 11), (3, 1, 2, 2),
              bias=True, strides=(2, 1), dilations=(1, 2), pads=((1, 0), (0, 1)), groups=1),
    _conv_row("Conv1D_one_channel_strided", (2, 1, 30), (2, 1, 3), strides=(2,),
              dilations=(1,), pads=((1, 1),), groups=1),
    _conv_row("Conv2D_grouped", (2, 4, 6, 5), (6, 2, 3, 3), strides=(2, 2), dilations=(1, 1),
              pads=((1, 1), (0, 1)), groups=2),
    _conv_row("Conv1D_depthwise_dilated", (2, 3, 9), (6, 1, 3), strides=(1,), dilations=(2,),
              pads=((2, 1),), groups=3),
    _conv_row("Conv3D_bias", (1, 2, 4, 5, 3), (3, 2, 2, 3, 2), bias=True, strides=(1, 2, 1),
              dilations=(1, 1, 2), pads=((0, 1), (1, 1), (1, 0)), groups=1),
    Row("Conv_unknown_batch_grouped",
        lambda x, w: apply("Conv", _unknown_batch(x), w, **_GROUPED),
        (normal(3, 4, 5, 5), normal(4, 2, 2, 3, scale=0.5)),
        lambda x, w: np_conv(x, w, **_GROUPED)),
    Row("Conv_unknown_spatial_dilated_bias",
        lambda x, w, b: apply("Conv", _unknown_spatial(x), w, b, **_SPATIAL),
        (normal(2, 3, 7, 6), normal(4, 3, 3, 2, scale=0.5), normal(4)),
        lambda x, w, b: np_conv(x, w, b, **_SPATIAL)),
    _transpose_row("ConvTranspose2D_bias", (2, 4, 3, 4), (4, 3, 3, 2), bias=True,
                   strides=(2, 1), dilations=(1, 1), pads=((1, 0), (0, 1)),
                   output_padding=(1, 0), groups=1),
    _transpose_row("ConvTranspose1D_grouped_dilated", (2, 4, 5), (4, 2, 3), strides=(1,),
                   dilations=(2,), pads=((1, 2),), output_padding=(0,), groups=2),
    _transpose_row("ConvTranspose3D", (1, 2, 2, 3, 2), (2, 2, 2, 2, 3), strides=(2, 1, 2),
                   dilations=(1, 1, 1), pads=((0, 1), (1, 0), (1, 1)),
                   output_padding=(1, 0, 1), groups=1),
    Row("ConvTranspose_unknown_batch_grouped",
        lambda x, w: apply("ConvTranspose", _unknown_batch(x), w, **_T_GROUPED),
        (normal(3, 4, 3, 3), normal(4, 1, 3, 2, scale=0.5)),
        lambda x, w: np_conv_transpose(x, w, **_T_GROUPED)),
    Row("ConvTranspose_unknown_spatial",
        lambda x, w: apply("ConvTranspose", _unknown_spatial(x), w, **_T_SPATIAL),
        (normal(2, 4, 3, 4), normal(4, 3, 2, 3, scale=0.5)),
        lambda x, w: np_conv_transpose(x, w, **_T_SPATIAL)),
    # the Keras-facing functions: layouts, padding names, groups
    Row("conv_same_strided_odd",
        lambda x, k: conv(_unknown_batch(x), k, strides=2, padding="same"),
        (normal(2, 7, 6, 3), normal(3, 2, 3, 4, scale=0.5)),
        lambda x, k: np_keras_conv(x, k, strides=2, padding="same")),
    Row("conv_same_dilated_grouped_channels_first",
        lambda x, k: conv(x, k, padding="same", dilation_rate=(2, 1),
                          data_format="channels_first"),
        (normal(2, 4, 6, 5), normal(3, 2, 2, 6, scale=0.5)),
        lambda x, k: np_keras_conv(x, k, padding="same", dilation=(2, 1),
                                   data_format="channels_first")),
    Row("conv_causal_1d", lambda x, k: conv(x, k, padding="causal", dilation_rate=2),
        (normal(2, 8, 3), normal(3, 3, 2, scale=0.5)),
        lambda x, k: np_keras_conv(x, k, padding="causal", dilation=2)),
    Row("depthwise_conv_same",
        lambda x, k: depthwise_conv(x, k, strides=(2, 1), padding="same"),
        (normal(2, 5, 6, 3), normal(3, 2, 3, 2, scale=0.5)),
        lambda x, k: np_keras_conv(x, np_keras_depthwise_kernel(k), strides=(2, 1),
                                   padding="same")),
    Row("separable_conv_1d",
        lambda x, d, p: separable_conv(x, d, p, strides=2, padding="same"),
        (normal(2, 7, 3), normal(3, 3, 2, scale=0.5), normal(1, 6, 4, scale=0.5)),
        lambda x, d, p: np_keras_conv(np_keras_conv(x, np_keras_depthwise_kernel(d), 2,
                                                    "same"), p)),
    Row("conv_transpose_same_strided",
        lambda x, k: conv_transpose(_unknown_batch(x), k, strides=2, padding="same"),
        (normal(2, 3, 4, 2), normal(3, 2, 3, 2, scale=0.5)),
        lambda x, k: np_keras_conv_transpose(x, k, strides=2, padding="same")),
    Row("conv_transpose_valid_output_padding",
        lambda x, k: conv_transpose(x, k, strides=3, output_padding=1),
        (normal(2, 3, 2), normal(2, 2, 2, scale=0.5)),
        lambda x, k: np_keras_conv_transpose(x, k, strides=3, output_padding=1)),
    Row("conv_transpose_same_even_window_output_padding",
        lambda x, k: conv_transpose(x, k, strides=2, padding="same", output_padding=1,
                                    data_format="channels_first"),
        (normal(2, 2, 3, 3), normal(4, 3, 3, 2, scale=0.5)),
        lambda x, k: np_keras_conv_transpose(x, k, strides=2, padding="same", output_padding=1,
                                             data_format="channels_first")),
]
