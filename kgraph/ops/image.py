"""`keras.ops.image`: resize (nearest/bilinear/bicubic/area as interpolation matmuls along
height and width), rgb_to_grayscale, pad_images, crop_images and extract_patches (an
identity-kernel convolution). Images are `(batch, h, w, c)` (`channels_last`) or `(batch, c, h, w)`; a 3-D
input is one image. Spatial sizes must be known while tracing (resize's bilinear and nearest
take an open input size); the batch may be unknown."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import constant, dtype_of, rank, shape_of, static_dim, to_float


def _spatial_axes(x, data_format):
    first = data_format == "channels_first"
    base = 1 if rank(x) == 4 else 0
    return (base + 1, base + 2) if first else (base, base + 1)


def _weights(in_size, out_size, method):
    """The (out, in) interpolation matrix of jax.image.resize (half-pixel centres); "area"
    (TensorFlow's) averages the input pixels each output pixel covers, by overlap."""
    scale = in_size / out_size
    if method == "area":
        return _area_weights(in_size, out_size)
    centres = (np.arange(out_size) + 0.5) * scale - 0.5
    w = np.zeros((out_size, in_size))
    if method == "nearest":
        w[np.arange(out_size), np.clip(np.floor((np.arange(out_size) + 0.5) * scale),
                                       0, in_size - 1).astype(int)] = 1.0
        return w
    if method == "bicubic":
        return _cubic_weights(in_size, out_size, antialias=False)
    if method != "bilinear":
        raise ValueError(f"resize: interpolation must be 'bilinear', 'bicubic', 'nearest' or "
                         f"'area' in kgraph. Received: interpolation={method!r}")
    lo = np.floor(centres).astype(int)
    frac = centres - lo
    for i in range(out_size):
        for j, wt in ((lo[i], 1 - frac[i]), (lo[i] + 1, frac[i])):
            w[i, int(np.clip(j, 0, in_size - 1))] += wt
    return w


def _antialiased_weights(in_size, out_size):
    """Bilinear downsampling with antialiasing (TensorFlow's and jax.image.resize's
    scale-and-translate): the triangle kernel stretched by the downscale factor, so each output
    pixel averages every input pixel under it, each row normalized to sum to 1."""
    scale = out_size / in_size
    centres = (np.arange(out_size) + 0.5) / scale - 0.5
    distance = np.abs(centres[:, None] - np.arange(in_size)[None, :]) * scale
    w = np.maximum(0.0, 1.0 - distance)
    return w / w.sum(axis=1, keepdims=True)


def _cubic_weights(in_size, out_size, antialias):
    """jax.image.resize's bicubic (Keras' JAX backend): the Keys cubic kernel (a = -0.5) at
    half-pixel centres, each row normalized over the taps inside the image (so the border
    renormalizes instead of clamping); `antialias` widens it by the downscale factor."""
    scale = out_size / in_size
    stretch = min(scale, 1.0) if antialias else 1.0
    centres = (np.arange(out_size) + 0.5) / scale - 0.5
    t = np.abs(centres[:, None] - np.arange(in_size)[None, :]) * stretch
    w = np.where(t <= 1.0, (1.5 * t - 2.5) * t * t + 1.0,
                 np.where(t < 2.0, ((-0.5 * t + 2.5) * t - 4.0) * t + 2.0, 0.0))
    return w / w.sum(axis=1, keepdims=True)


def _area_weights(in_size, out_size):
    """Output pixel i covers input [i * scale, (i + 1) * scale); each input pixel weighs the
    length of its overlap with that span, over the span's length."""
    scale = in_size / out_size
    w = np.zeros((out_size, in_size))
    for i in range(out_size):
        start, end = i * scale, (i + 1) * scale
        for j in range(int(np.floor(start)), min(int(np.ceil(end)), in_size)):
            w[i, j] = (min(end, j + 1) - max(start, j)) / scale
    return w


def _along(x, axis, matrix):
    """Contract `x`'s `axis` with `matrix` (out, in) (an array, or a tensor of the graph),
    keeping the axis position."""
    from kgraph.ops.linalg import matmul
    from kgraph.ops.movement import transpose
    from kgraph.ops.shape_api import moveaxis

    moved = moveaxis(x, axis, -1)
    if isinstance(matrix, np.ndarray):
        out = matmul(moved, constant(matrix.T.astype(ew._np_dtype(dtype_of(x))), x))
    else:
        out = matmul(moved, transpose(matrix, (1, 0)))
    return moveaxis(out, -1, axis)


def _run_time_weights(x, axis, out_size, method):
    """`_weights` (bilinear or nearest) built in the graph from the size of `x` along `axis`,
    unknown while tracing: each output row's one or two taps, clipped into the input, as
    one-hot rows over `arange(in_size)`."""
    from kgraph.ops import symbolic_shape
    from kgraph.ops.nn import clip
    from kgraph.ops.numpy_api import arange

    dtype = dtype_of(x)
    in_size = symbolic_shape.shape(x)[axis]
    last = ew.cast(in_size - 1, dtype)
    scale = ew.cast(in_size, dtype) / np.asarray(out_size, ew._np_dtype(dtype))
    steps = constant((np.arange(out_size) + 0.5).astype(ew._np_dtype(dtype))[:, None], x)
    columns = mv.expand_dims(ew.cast(arange(in_size), dtype), 0)       # (1, in)

    def tap(index):
        return ew.cast(ew.equal(columns, clip(index, 0.0, last)), dtype)

    if method == "nearest":
        return tap(ew.floor(steps * scale))
    centres = steps * scale - 0.5
    low = ew.floor(centres)
    frac = centres - low
    return (1.0 - frac) * tap(low) + frac * tap(low + 1.0)


def resize(images, size, interpolation="bilinear", antialias=False, crop_to_aspect_ratio=False,
           pad_to_aspect_ratio=False, fill_mode="constant", fill_value=0.0,
           data_format=None):
    """Resize images to `size = (height, width)` (`keras.ops.image.resize`), bilinear,
    nearest or area; a matmul per spatial axis, so it has gradients. `antialias=True` widens
    the bilinear kernel when downsampling (as Keras' backends; nearest and area ignore it)."""
    if crop_to_aspect_ratio or pad_to_aspect_ratio:
        raise ValueError("resize: crop_to_aspect_ratio and pad_to_aspect_ratio are not "
                         "supported by kgraph; pass False")
    data_format = data_format or "channels_last"
    x = to_float(images)
    for axis, out_size in zip(_spatial_axes(x, data_format), size):
        if shape_of(x)[axis] is None and interpolation in ("bilinear", "nearest") \
                and not antialias:  # an open size (`Input(shape=[None, None, 3])`)
            x = _along(x, axis, _run_time_weights(x, axis, int(out_size), interpolation))
            continue
        in_size = static_dim(x, axis, "resize")
        if in_size != out_size:
            smaller = antialias and out_size < in_size
            if smaller and interpolation == "bicubic":
                matrix = _cubic_weights(in_size, int(out_size), antialias=True)
            elif smaller and interpolation == "bilinear":
                matrix = _antialiased_weights(in_size, int(out_size))
            else:
                matrix = _weights(in_size, int(out_size), interpolation)
            x = _along(x, axis, matrix)
    return x


def rgb_to_grayscale(images, data_format=None):
    """ITU-R 601 luma `0.2989 R + 0.587 G + 0.114 B`, keeping a channel axis of size 1."""
    from kgraph.ops.reduce import sum as reduce_sum

    axis = -1 if (data_format or "channels_last") == "channels_last" else (
        1 if rank(images) == 4 else 0)
    x = to_float(images)
    shape = [1] * rank(x)
    shape[axis] = 3
    weights = constant(np.asarray([0.2989, 0.5870, 0.1140], ew._np_dtype(dtype_of(x))).reshape(
        shape), x)
    return ew.cast(reduce_sum(x * weights, axis, keepdims=True), dtype_of(images)) if \
        dtype_of(images) != dtype_of(x) else reduce_sum(x * weights, axis, keepdims=True)


def pad_images(images, top_padding=None, left_padding=None, bottom_padding=None,
               right_padding=None, target_height=None, target_width=None, data_format=None):
    """Zero-pad images to a target size or by given amounts (`keras.ops.image.pad_images`)."""
    h_axis, w_axis = _spatial_axes(images, data_format or "channels_last")
    h, w = static_dim(images, h_axis, "pad_images"), static_dim(images, w_axis, "pad_images")
    top, bottom = _pair(top_padding, bottom_padding, target_height, h, "height")
    left, right = _pair(left_padding, right_padding, target_width, w, "width")
    pads = [(0, 0)] * rank(images)
    pads[h_axis], pads[w_axis] = (top, bottom), (left, right)
    return mv.pad(images, pads)


def _pair(first, second, target, size, what, grow=True):
    if target is not None:
        change = target - size if grow else size - target
        first = first if first is not None else change - (second or 0)
        second = second if second is not None else change - first
    if first is None or second is None or first < 0 or second < 0:
        raise ValueError(f"pad_images/crop_images: give two of the paddings and the target "
                         f"{what}, consistent with size {size}")
    return int(first), int(second)


def crop_images(images, top_cropping=None, left_cropping=None, bottom_cropping=None,
                right_cropping=None, target_height=None, target_width=None, data_format=None):
    h_axis, w_axis = _spatial_axes(images, data_format or "channels_last")
    h, w = static_dim(images, h_axis, "crop_images"), static_dim(images, w_axis, "crop_images")
    top, bottom = _pair(top_cropping, bottom_cropping, target_height, h, "height", False)
    left, right = _pair(left_cropping, right_cropping, target_width, w, "width", False)
    out = mv.slice_axis(images, top, h - bottom, h_axis)
    return mv.slice_axis(out, left, w - right, w_axis)


def extract_patches(images, size, strides=None, dilation_rate=1, padding="valid",
                    data_format=None):
    """Patches of images (or volumes, `size` of length 3) as channels
    (`keras.ops.image.extract_patches`): a convolution with an identity kernel, as Keras,
    so each output position holds its window's `patch_h * patch_w * channels` values
    (row-major over the window, channels fastest).

    Args:
        images: `(batch, h, w, c)` or one `(h, w, c)` image (volumes: one more axis).
        size: int or tuple `(patch_h, patch_w)` (or `(patch_d, patch_h, patch_w)`).
        strides: default `size` (non-overlapping patches).
        dilation_rate, padding, data_format: as `keras.ops.conv`.

    Returns:
        `(batch, rows, cols, patch_h * patch_w * c)` (channels last).

    Example:
    >>> extract_patches(np.zeros((2, 20, 20, 3), "float32"), (5, 5)).shape
    (2, 4, 4, 75)
    """
    from kgraph.ops.conv import conv

    volumes = not isinstance(size, int) and len(size) == 3
    spatial = 3 if volumes else 2
    if isinstance(size, int):
        size = (size,) * spatial
    if len(size) != spatial:
        raise TypeError(f"extract_patches: expected an int or a tuple of length 2 or 3. "
                        f"Received: size={size}")
    data_format = data_format or "channels_last"
    unbatched = rank(images) == spatial + 1
    if unbatched:
        images = mv.expand_dims(images, 0)
    channels = static_dim(images, -1 if data_format == "channels_last" else 1,
                          "extract_patches")
    out_dim = int(np.prod(size)) * channels
    kernel = np.eye(out_dim, dtype=ew._np_dtype(dtype_of(images))).reshape(
        (*size, channels, out_dim))
    patches = conv(images, constant(kernel, images), strides=strides or tuple(size),
                   padding=padding, data_format=data_format, dilation_rate=dilation_rate)
    return mv.squeeze(patches, 0) if unbatched else patches


def extract_patches_3d(volumes, size, strides=None, dilation_rate=1, padding="valid",
                       data_format=None):
    """`keras.ops.image.extract_patches_3d`: `extract_patches` over `(d, h, w)` windows."""
    if isinstance(size, int):
        size = (size,) * 3
    return extract_patches(volumes, tuple(size), strides, dilation_rate, padding, data_format)


from kgraph.ops.image_color import (gaussian_blur, hsv_to_rgb, rgb_to_hsv,  # noqa: E402,F401
                                    sobel_edges, ssim)
from kgraph.ops.image_scale import scale_and_translate  # noqa: E402,F401
from kgraph.ops.image_warp import (affine_transform, elastic_transform,  # noqa: E402,F401
                                   map_coordinates, perspective_transform)
