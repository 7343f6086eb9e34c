"""`keras.ops.image.scale_and_translate`, as Keras 3's JAX backend (`jax.image.
scale_and_translate`) computes it: along each spatial axis a product with an (input, output)
weight matrix whose column j holds the kernel (triangle, Keys cubic or Lanczos, widened by
`1 / scale` when antialiasing a downscale) centred at output pixel j's sample point, normalized
to sum to 1 and zero where the sample point falls off the input.

The weights are computed with kgraph ops from `scale` and `translation`, so those may be
tensors (traced, with gradients, as in JAX) or numbers; the sizes must be known."""
from __future__ import annotations

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops.api_util import dtype_of, is_symbolic, rank, shape_of, static_dim, to_float
from kgraph.ops.image_warp import _number

METHODS = {"linear": "triangle", "bilinear": "triangle", "trilinear": "triangle",
           "cubic": "cubic", "bicubic": "cubic", "tricubic": "cubic",
           "lanczos3": "lanczos3", "lanczos5": "lanczos5"}


def _kernel(name, x):
    """The kernel at distances `x >= 0` (JAX's `_fill_*_kernel` formulas)."""
    n = lambda v: _number(v, x)  # noqa: E731 - constants in x's dtype
    if name == "triangle":
        return ew.maximum(n(0.0), n(1.0) - ew.abs(x))
    if name == "cubic":
        near = ((n(1.5) * x - n(2.5)) * x) * x + n(1.0)
        far = ((n(-0.5) * x + n(2.5)) * x - n(4.0)) * x + n(2.0)
        out = ew.where(ew.greater_equal(x, n(1.0)), far, near)
        return ew.where(ew.greater_equal(x, n(2.0)), n(0.0), out)
    radius = 3.0 if name == "lanczos3" else 5.0
    y = n(radius) * ew.sin(n(np.pi) * x) * ew.sin(n(np.pi / radius) * x)
    safe = ew.where(ew.equal(x, n(0.0)), n(1.0), n(np.pi ** 2) * x * x)
    out = ew.where(ew.greater(x, n(1e-3)), y / safe, n(1.0))
    return ew.where(ew.greater(x, n(radius)), n(0.0), out)


def _weights(in_size, out_size, scale, translation, kernel, antialias, like):
    """The (in_size, out_size) weight matrix of one axis; `scale`/`translation` scalars."""
    n = lambda v: _number(v, like)  # noqa: E731
    inverse = n(1.0) / scale
    kernel_scale = ew.maximum(inverse, n(1.0)) if antialias else n(1.0)
    sample = (n(np.arange(out_size) + 0.5) * inverse - translation * inverse - n(0.5))
    distance = ew.abs(_row(sample) - n(np.arange(in_size)[:, None])) / kernel_scale
    weights = _kernel(kernel, distance)
    from kgraph.ops.reduce import sum as reduce_sum

    total = reduce_sum(weights, 0, keepdims=True)
    weights = ew.where(ew.greater(ew.abs(total), n(1000.0 * np.finfo(np.float32).eps)),
                       weights / ew.where(ew.equal(total, n(0.0)), n(1.0), total), n(0.0))
    inside = ew.logical_and(ew.greater_equal(sample, n(-0.5)),
                            ew.less_equal(sample, n(in_size - 0.5)))
    return ew.where(_row(inside), weights, n(0.0))


def _row(vector):
    from kgraph.ops.movement import expand_dims

    return expand_dims(vector, 0)


def _entry(values, i, like):
    """Entry i of a length-K `scale`/`translation` (an array, a sequence or a tensor)."""
    if is_symbolic(values):
        from kgraph.ops.movement import slice_axis, squeeze

        return squeeze(slice_axis(ew.cast(values, dtype_of(like)), i, i + 1, 0), 0)
    return _number(np.asarray(values)[i], like)


def scale_and_translate(images, output_shape, scale, translation, spatial_dims, method,
                        antialias=True):
    """Resample `images` to `output_shape`, scaling and translating the spatial dims
    (`keras.ops.image.scale_and_translate`): input location `x` goes to output location
    `x * scale + translation`, with half-pixel centres; samples off the input are zero.

    Args:
        images: tensor of any rank (int inputs become floatx, as JAX promotes them).
        output_shape: ints, the output shape (its length is images' rank).
        scale, translation: length-K arrays or tensors, one entry per spatial dim.
        spatial_dims: K ints, the dims to resample.
        method: `"linear"`/`"bilinear"`/`"trilinear"`, `"cubic"`/`"bicubic"`/`"tricubic"`
            (Keys), `"lanczos3"` or `"lanczos5"`.
        antialias: widen the kernel when downsampling.

    Returns:
        Float tensor of `output_shape`.

    Example:
    >>> scale = np.array([2.0, 2.0], "float32")
    >>> scale_and_translate(np.arange(9.0).reshape(3, 3), (5, 5), scale, 0.5 - scale / 2,
    ...                     (0, 1), "linear")[0]
    array([0. , 0.5, 1. , 1.5, 2. ])
    """
    from kgraph.ops.linalg import matmul
    from kgraph.ops.shape_api import moveaxis

    if method not in METHODS:
        raise ValueError(f"scale_and_translate: invalid value for argument `method`. Expected "
                         f"one of {sorted(METHODS)}. Received: method={method!r}")
    output_shape = tuple(output_shape)  # non-spatial dims may be traced (`ops.shape(x)[0]`)
    if len(output_shape) != rank(images):
        raise ValueError(f"scale_and_translate: output_shape must have length equal to the "
                         f"number of dimensions of images. Received: output_shape="
                         f"{output_shape}, images.shape={tuple(shape_of(images))}")
    spatial_dims = tuple(int(d) % rank(images) for d in spatial_dims)
    for name, values in (("scale", scale), ("translation", translation)):
        if tuple(shape_of(values)) != (len(spatial_dims),):
            raise ValueError(f"scale_and_translate: `{name}` needs one entry per spatial dim "
                             f"{spatial_dims}. Received: {name}={values!r}")
    x = to_float(images)
    for i, axis in enumerate(spatial_dims):
        in_size = static_dim(x, axis, "scale_and_translate")
        weights = _weights(in_size, int(output_shape[axis]), _entry(scale, i, x),
                           _entry(translation, i, x), METHODS[method], antialias, x)
        x = moveaxis(matmul(moveaxis(x, axis, -1), weights), -1, axis)
    return x


__all__ = ["scale_and_translate"]
