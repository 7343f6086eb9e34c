"""`keras.ops.image` colour spaces and fixed filters: rgb_to_hsv / hsv_to_rgb (elementwise
compositions over the three channel planes) and gaussian_blur / sobel_edges (depthwise
convolutions with a constant kernel, 'same' padding), each as Keras 3's JAX backend computes
them. `kgraph.ops.image` re-exports them."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import constant, dtype_of, rank, static_dim
from kgraph.ops.conv import depthwise_conv, normalize_data_format


def _checked_images(images, op, need_float=True):
    from kgraph.ir.types import is_float

    if rank(images) not in (3, 4):
        raise ValueError(f"{op}: invalid images rank: expected rank 3 (single image) or rank 4 "
                         f"(batch of images). Received input with shape: "
                         f"images.shape={tuple(images.shape)}")
    if need_float and not is_float(dtype_of(images)):
        raise ValueError(f"{op}: invalid images dtype: expected float dtype. "
                         f"Received: images.dtype={dtype_of(images)}")
    return images


def _planes(images, data_format):
    """The three channel planes (each keeping its channel axis of size 1) and that axis."""
    axis = rank(images) - 1 if data_format == "channels_last" else rank(images) - 3
    return [mv.slice_axis(images, i, i + 1, axis) for i in range(3)], axis


def _scalar(value, like):
    return np.asarray(value, ew._np_dtype(dtype_of(like)))


def rgb_to_hsv(images, data_format=None):
    """Convert RGB images to HSV (`keras.ops.image.rgb_to_hsv`); every channel in [0, 1].

    Args:
        images: float tensor `(batch, h, w, 3)` or one `(h, w, 3)` image (channels first:
            `(batch, 3, h, w)`).
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The HSV images, same shape and dtype. Hue is 0 where the pixel is grey.

    Example:
    >>> rgb_to_hsv(np.array([[[1.0, 0.0, 0.0]]], "float32"))[0, 0]
    array([0., 1., 1.], dtype=float32)
    """
    _checked_images(images, "rgb_to_hsv")
    data_format = normalize_data_format(data_format)
    zero, one = _scalar(0.0, images), _scalar(1.0, images)
    eps = _scalar(np.finfo(ew._np_dtype(dtype_of(images))).eps, images)
    images = ew.where(ew.less(ew.abs(images), eps), zero, images)  # as Keras: tiny -> 0
    (r, g, b), axis = _planes(images, data_format)
    value = ew.maximum(ew.maximum(r, g), b)
    spread = value - ew.minimum(ew.minimum(r, g), b)
    positive_value, positive_spread = ew.greater(value, zero), ew.greater(spread, zero)
    saturation = ew.where(positive_value, spread / ew.where(positive_value, value, one), zero)
    norm = ew.reciprocal(ew.where(positive_spread, spread, one) * _scalar(6.0, images))
    hue = ew.where(ew.equal(value, g), norm * (b - r) + _scalar(2.0 / 6.0, images),
                   norm * (r - g) + _scalar(4.0 / 6.0, images))
    hue = ew.where(ew.equal(value, r), norm * (g - b), hue)
    hue = ew.where(positive_spread, hue, zero) + ew.cast(ew.less(hue, zero), dtype_of(images))
    return mv.concatenate([hue, saturation, value], axis)


def hsv_to_rgb(images, data_format=None):
    """Convert HSV images to RGB (`keras.ops.image.hsv_to_rgb`); hue wraps modulo 1.

    Args:
        images: float tensor `(batch, h, w, 3)` or one `(h, w, 3)` image (channels first:
            `(batch, 3, h, w)`).
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The RGB images, same shape and dtype.

    Example:
    >>> hsv_to_rgb(np.array([[[0.0, 1.0, 1.0]]], "float32"))[0, 0]
    array([1., 0., 0.], dtype=float32)
    """
    from kgraph.ops.nn import clip

    _checked_images(images, "hsv_to_rgb")
    data_format = normalize_data_format(data_format)
    (hue, saturation, value), axis = _planes(images, data_format)
    # hue mod 1 as `hue - floor(hue)`: the same values, and a gradient (Mod has none)
    sixths = (hue - ew.floor(hue)) * _scalar(6.0, images)

    def ramp(x):
        return clip(x, 0.0, 1.0)

    one, two = _scalar(1.0, images), _scalar(2.0, images)
    red = ramp(ew.abs(sixths - _scalar(3.0, images)) - one)
    green = ramp(two - ew.abs(sixths - two))
    blue = ramp(two - ew.abs(sixths - _scalar(4.0, images)))
    grey = one - saturation
    return mv.concatenate([value * (grey + saturation * c) for c in (red, green, blue)], axis)


def _depthwise_filter(images, kernel2d, data_format):
    """`images` (rank 3 or 4) convolved per channel with the (kh, kw) `kernel2d`, 'same'."""
    unbatched = rank(images) == 3
    if unbatched:
        images = mv.expand_dims(images, 0)
    channels = static_dim(images, -1 if data_format == "channels_last" else 1, "image filter")
    kernel = np.tile(kernel2d[:, :, None, None], (1, 1, channels, 1))
    out = depthwise_conv(images, constant(kernel.astype(ew._np_dtype(dtype_of(images))), images),
                         padding="same", data_format=data_format)
    return mv.squeeze(out, 0) if unbatched else out


def _gaussian_1d(size, sigma):
    x = np.arange(size, dtype="float64") - (size - 1) / 2
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images, kernel_size=(3, 3), sigma=(1.0, 1.0), data_format=None):
    """Blur images with a Gaussian kernel (`keras.ops.image.gaussian_blur`): a depthwise
    convolution with 'same' (zero) padding, one normalized kernel per channel.

    Args:
        images: float tensor `(batch, h, w, c)` or one `(h, w, c)` image (channels first:
            `(batch, c, h, w)`).
        kernel_size: two ints. As Keras' backends build it, the kernel is
            `outer(g(kernel_size[1], sigma[1]), g(kernel_size[0], sigma[0]))`: its rows (the
            height) come from the second entry.
        sigma: two positive floats (Python numbers: the kernel is a constant).
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The blurred images, same shape.

    Example:
    >>> gaussian_blur(np.ones((1, 5, 5, 2), "float32")).shape
    (1, 5, 5, 2)
    """
    _checked_images(images, "gaussian_blur", need_float=False)
    data_format = normalize_data_format(data_format)
    sizes = (kernel_size,) * 2 if isinstance(kernel_size, int) else tuple(kernel_size)
    sigmas = (sigma,) * 2 if isinstance(sigma, (int, float)) else tuple(sigma)
    if len(sizes) != 2 or any(int(s) != s or s < 1 for s in sizes):
        raise ValueError(f"gaussian_blur: kernel_size must be two positive ints. "
                         f"Received: kernel_size={kernel_size!r}")
    if len(sigmas) != 2 or any(float(s) <= 0 for s in sigmas):
        raise ValueError(f"gaussian_blur: sigma must be two positive floats. "
                         f"Received: sigma={sigma!r}")
    kernel = np.outer(_gaussian_1d(int(sizes[1]), float(sigmas[1])),
                      _gaussian_1d(int(sizes[0]), float(sigmas[0])))
    return _depthwise_filter(images, kernel, data_format)


SOBEL_Y = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], "float64")


def sobel_edges(images, data_format=None):
    """Sobel edge maps (`keras.ops.image.sobel_edges`): the vertical and horizontal 3x3 Sobel
    filters per channel ('same' zero padding), stacked on a new last axis as `[dy, dx]`.

    Args:
        images: tensor `(batch, h, w, c)` (channels first: `(batch, c, h, w)`).
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        `(batch, h, w, c, 2)` (channels first: `(batch, c, h, w, 2)`).

    Example:
    >>> sobel_edges(np.ones((1, 4, 4, 3), "float32")).shape
    (1, 4, 4, 3, 2)
    """
    if rank(images) != 4:
        raise ValueError(f"sobel_edges: expected a batch of images of rank 4. "
                         f"Received: images.shape={tuple(images.shape)}")
    data_format = normalize_data_format(data_format)
    edges = [_depthwise_filter(images, kernel, data_format) for kernel in (SOBEL_Y, SOBEL_Y.T)]
    return mv.concatenate([mv.expand_dims(e, -1) for e in edges], -1)


def ssim(image1, image2, max_val=1.0, filter_size=11, filter_sigma=1.5, k1=0.01, k2=0.03,
         data_format=None):
    """Structural similarity of two images or batches (`keras.ops.image.ssim`), as Keras 3
    computes it: Gaussian-weighted local means, variances and covariance ('valid' windows of
    `filter_size`), `(2 mu1 mu2 + c1)(2 s12 + c2) / ((mu1^2 + mu2^2 + c1)(s1^2 + s2^2 + c2))`
    with `c1 = (k1 max_val)^2`, `c2 = (k2 max_val)^2`, averaged over the windows and channels.

    Args:
        image1, image2: tensors of one shape, `(batch, h, w, c)` or one `(h, w, c)` image
            (channels first: `(batch, c, h, w)`); h and w at least `filter_size`.
        max_val: the dynamic range of the pixel values (1.0 or 255.0).
        filter_size: odd int, the Gaussian window size.
        filter_sigma: positive float, its standard deviation.
        k1, k2: the stabilizing constants.
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        `(batch,)` SSIM values (a scalar for one image), in image1's dtype.

    Example:
    >>> image = np.random.default_rng(0).random((16, 16, 3)).astype("float32")
    >>> float(ssim(image, image))
    1.0
    """
    from kgraph.ops.api_util import to_float
    from kgraph.ops.reduce import mean

    for name, image in (("image1", image1), ("image2", image2)):
        if rank(image) not in (3, 4):
            raise ValueError(f"ssim: invalid {name} rank: expected rank 3 (single image) or "
                             f"rank 4 (batch of images). Received input with shape: "
                             f"{name}.shape={tuple(image.shape)}")
    dtype = dtype_of(image1)
    x, y = to_float(image1), ew.cast(to_float(image2), dtype_of(to_float(image1)))
    unbatched = rank(x) == 3
    if unbatched:
        x, y = mv.expand_dims(x, 0), mv.expand_dims(y, 0)
    if normalize_data_format(data_format) == "channels_last":  # to (batch, c, h, w)
        x, y = mv.transpose(x, (0, 3, 1, 2)), mv.transpose(y, (0, 3, 1, 2))
    gauss = _gaussian_1d(int(filter_size), float(filter_sigma))
    kernel = constant(np.outer(gauss, gauss).reshape(filter_size, filter_size, 1, 1).astype(
        ew._np_dtype(dtype_of(x))), x)
    h, w = static_dim(x, 2, "ssim"), static_dim(x, 3, "ssim")
    channels = static_dim(x, 1, "ssim")

    def local_mean(t):  # (batch * c, h, w, 1) 'valid' windows
        from kgraph.ops.conv import conv

        return conv(mv.reshape_to(t, (None, h, w, 1)), kernel, padding="valid")

    mu1, mu2 = local_mean(x), local_mean(y)
    c1, c2, two = (constant(_scalar(v, x), x) for v in ((k1 * max_val) ** 2,
                                                        (k2 * max_val) ** 2, 2.0))
    var1 = local_mean(x * x) - mu1 * mu1
    var2 = local_mean(y * y) - mu2 * mu2
    covariance = local_mean(x * y) - mu1 * mu2
    ssim_map = ((two * mu1 * mu2 + c1) * (two * covariance + c2)) / (
        (mu1 * mu1 + mu2 * mu2 + c1) * (var1 + var2 + c2))
    per_channel = mv.reshape_to(mean(ssim_map, (1, 2, 3)), (None, channels))
    result = mean(per_channel, -1)
    if unbatched:
        result = mv.squeeze(result, 0)
    return ew.cast(result, dtype) if dtype != dtype_of(result) else result
