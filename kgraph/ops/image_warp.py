"""`keras.ops.image` warps: map_coordinates, affine_transform, perspective_transform and
elastic_transform, as Keras 3's JAX backend computes them (`jax.scipy.ndimage.map_coordinates`
with order 0 or 1).

One sampler serves all four: each sample point's coordinate along each axis gives one
(nearest: rounded half away from zero) or two (linear: floor and floor + 1) grid indices with
their weights; each index is moved into the grid by the fill mode (or, for "constant", marked
invalid and replaced by `fill_value`), the indices are combined into one flat index of the
flattened input, and the values are gathered and summed with the products of the weights. So
they lower to Floor, Gather and elementwise ops; the gradient reaches the input through the
Gather (a scatter-add) and the coordinates through the linear weights. The sampled grid's
sizes must be known while tracing; the batch may be unknown."""
from __future__ import annotations

import itertools

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops import movement as mv
from kgraph.ops.api_util import constant, dtype_of, is_symbolic, rank, shape_of, static_dim, to_float
from kgraph.ops.conv import normalize_data_format

FILL_MODES = ("constant", "nearest", "wrap", "mirror", "reflect")
INTERPOLATIONS = {"nearest": 0, "bilinear": 1}


def _number(value, like):
    """`value` in `like`'s float dtype, a constant of its graph when it is traced."""
    return constant(np.asarray(value, ew._np_dtype(dtype_of(like))), like)


def _grid_nodes(coordinate, order):
    """[(grid index as a float tensor, weight or None for 1)] of one coordinate."""
    half, one = _number(0.5, coordinate), _number(1.0, coordinate)
    if order == 0:
        return [(ew.sign(coordinate) * ew.floor(ew.abs(coordinate) + half), None)]
    lower = ew.floor(coordinate)
    upper_weight = coordinate - lower
    return [(lower, one - upper_weight), (lower + one, upper_weight)]


def _wrap(index, size):
    size = _number(size, index)
    return index - size * ew.floor(index / size)


def _mirror(index, size):
    """jax's triangular wave: -1 -> 1, size -> size - 2 (the edge sample not repeated)."""
    if size == 1:
        return index * _number(0.0, index)
    span = _number(size - 1, index)
    return ew.abs(_wrap(index + span, 2 * (size - 1)) - span)


def _into_grid(index, size, mode):
    """`index` (an integer-valued float tensor) moved into [0, size) by the fill mode."""
    if mode in ("constant", "nearest"):
        return ew.minimum(ew.maximum(index, _number(0.0, index)), _number(size - 1, index))
    if mode == "wrap":
        return _wrap(index, size)
    if mode == "mirror":
        return _mirror(index, size)
    two, one = _number(2.0, index), _number(1.0, index)  # "reflect": the edge sample repeated
    return ew.floor((_mirror(two * index + one, 2 * size + 1) - one) / two)


def _sample(flat, axes, order, mode, fill_value, offset=None):
    """Values of the 1-D `flat` at the points whose coordinate along each grid axis is given
    by `axes`, a list of `(coordinate tensor, axis size, flat stride)` (coordinates broadcast
    together and with `offset`, an int32 tensor added to every flat index)."""
    from kgraph.ops.gather import take

    total, fill = None, _number(fill_value, flat)
    for nodes in itertools.product(*(_grid_nodes(c, order) for c, _, _ in axes)):
        index, valid, weight = offset, None, None
        for (grid_index, node_weight), (_, size, stride) in zip(nodes, axes):
            inside = ew.cast(_into_grid(grid_index, size, mode), "int32")
            inside = inside * constant(np.int32(stride), inside)
            index = inside if index is None else index + inside
            if mode == "constant":
                ok = ew.logical_and(ew.greater_equal(grid_index, _number(0.0, grid_index)),
                                    ew.less_equal(grid_index, _number(size - 1, grid_index)))
                valid = ok if valid is None else ew.logical_and(valid, ok)
            if node_weight is not None:
                weight = node_weight if weight is None else weight * node_weight
        value = take(flat, index, axis=0)
        if valid is not None:
            value = ew.where(valid, value, fill)
        term = value if weight is None else value * weight
        total = term if total is None else total + term
    return total


def _same_graph(*values):
    """Arrays among traced tensors as constants of their graph, keeping their dtypes (a bare
    float64 array given to an op while tracing would become floatx)."""
    traced = next((v for v in values if is_symbolic(v)), None)
    if traced is None:
        return values
    return tuple(v if is_symbolic(v) else constant(np.asarray(v), traced) for v in values)


def _compute_dtype(x):
    return dtype_of(to_float(x))


def _back_to(result, dtype):
    """Integer inputs: the result rounded half away from zero, as jax returns them."""
    from kgraph.ir.types import is_float

    if dtype_of(result) == dtype:
        return result
    if is_float(dtype):
        return ew.cast(result, dtype)
    half = _number(0.5, result)
    return ew.cast(ew.sign(result) * ew.floor(ew.abs(result) + half), dtype)


def _check_choice(value, choices, name, op):
    if value not in choices:
        raise ValueError(f"{op}: invalid value for argument `{name}`. Expected one of "
                         f"{sorted(choices)}. Received: {name}={value!r}")


def map_coordinates(inputs, coordinates, order, fill_mode="constant", fill_value=0):
    """Sample `inputs` at `coordinates` by interpolation (`keras.ops.image.map_coordinates`).

    Args:
        inputs: tensor of any rank `d` (every dim known while tracing).
        coordinates: float tensor `(d, ...)` (or a sequence of `d` tensors of one shape): the
            position along each input axis of every output point.
        order: 0 (nearest, rounded half away from zero) or 1 (linear).
        fill_mode: `"constant"`, `"nearest"`, `"wrap"`, `"mirror"` or `"reflect"`, how
            points outside the input are filled.
        fill_value: the value of `"constant"` fill.

    Returns:
        Tensor of shape `coordinates.shape[1:]` and `inputs`' dtype.

    Example:
    >>> map_coordinates(np.arange(4.0), np.array([[0.5, 2.75]]), 1)
    array([0.5 , 2.75])
    """
    from kgraph.ops.shape_api import stack

    if isinstance(coordinates, (list, tuple)):
        coordinates = stack(list(coordinates), 0)
    d = rank(inputs)
    if rank(coordinates) < 2:
        raise ValueError(f"map_coordinates: invalid coordinates rank: expected at least rank "
                         f"2. Received input with shape: {tuple(shape_of(coordinates))}")
    if shape_of(coordinates)[0] != d:
        raise ValueError(f"map_coordinates: first dim of `coordinates` must be the same as the "
                         f"rank of `inputs`. Received inputs with shape: "
                         f"{tuple(shape_of(inputs))} and coordinate leading dim of "
                         f"{shape_of(coordinates)[0]}")
    _check_choice(fill_mode, FILL_MODES, "fill_mode", "map_coordinates")
    _check_choice(order, (0, 1), "order", "map_coordinates")
    sizes = [static_dim(inputs, axis, "map_coordinates") for axis in range(d)]
    strides = [int(np.prod(sizes[axis + 1:])) for axis in range(d)]
    dtype = dtype_of(inputs)
    inputs, coordinates = _same_graph(inputs, coordinates)
    flat = mv.reshape_to(to_float(inputs), (int(np.prod(sizes)),))
    coordinates = ew.cast(coordinates, dtype_of(flat))
    axes = [(mv.squeeze(mv.slice_axis(coordinates, a, a + 1, 0), 0), sizes[a], strides[a])
            for a in range(d)]
    return _back_to(_sample(flat, axes, order, fill_mode, fill_value), dtype)


def _batched(images, data_format, op):
    """`images` as a channels-last batch, and the function that undoes that."""
    if rank(images) not in (3, 4):
        raise ValueError(f"{op}: invalid images rank: expected rank 3 (single image) or rank 4 "
                         f"(batch of images). Received input with shape: "
                         f"images.shape={tuple(shape_of(images))}")
    unbatched = rank(images) == 3
    x = mv.expand_dims(images, 0) if unbatched else images
    first = data_format == "channels_first"
    if first:
        x = mv.transpose(x, (0, 2, 3, 1))

    def restore(out):
        out = mv.transpose(out, (0, 3, 1, 2)) if first else out
        return mv.squeeze(out, 0) if unbatched else out
    return x, restore


def _warp(images, coordinate_yx, interpolation, fill_mode, fill_value, op):
    """Sample a channels-last batch at per-pixel (y, x) coordinates (each broadcastable to
    `(batch, h, w, channels)`), every channel at its own index."""
    from kgraph.ops.numpy_api import arange
    from kgraph.ops.symbolic_shape import dim

    h, w, c = (static_dim(images, a, op) for a in (1, 2, 3))
    batch_start = mv.reshape_to(arange(dim(images, 0)), (None, 1, 1, 1))
    batch_start = batch_start * constant(np.int32(h * w * c), batch_start)
    offset = batch_start + constant(np.arange(c, dtype=np.int32), batch_start)
    flat = mv.reshape_to(images, (None,))
    y, x = coordinate_yx
    return _sample(flat, [(y, h, w * c), (x, w, c)], INTERPOLATIONS[interpolation], fill_mode,
                   fill_value, offset)


def affine_transform(images, transform, interpolation="bilinear", fill_mode="constant",
                     fill_value=0, data_format=None):
    """Apply projective transforms to images (`keras.ops.image.affine_transform`).

    Args:
        images: `(batch, h, w, c)` or one `(h, w, c)` image (channels first: `(batch, c, h,
            w)`).
        transform: `(8,)` or `(batch, 8)`: `[a0, a1, a2, b0, b1, b2, c0, c1]` maps the output
            pixel `(x, y)` to the input point `(a0 x + a1 y + a2, b0 x + b1 y + b2)`. As
            Keras' JAX backend: there is no division by `k = c0 x + c1 y + 1`; instead `c0`
            (`c1`) times the channel index is added to the input y (x).
        interpolation: `"nearest"` or `"bilinear"`.
        fill_mode: `"constant"`, `"nearest"`, `"wrap"`, `"mirror"` or `"reflect"`.
        fill_value: the value of `"constant"` fill.
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The transformed images, same shape and dtype.

    Example:
    >>> shift = np.array([1, 0, 1, 0, 1, 0, 0, 0], "float32")  # read from x + 1
    >>> affine_transform(np.ones((1, 4, 4, 1), "float32"), shift)[0, :, 3, 0]
    array([0., 0., 0., 0.], dtype=float32)
    """
    _check_choice(interpolation, INTERPOLATIONS, "interpolation", "affine_transform")
    _check_choice(fill_mode, FILL_MODES, "fill_mode", "affine_transform")
    if rank(transform) not in (1, 2):
        raise ValueError(f"affine_transform: invalid transform rank: expected rank 1 (single "
                         f"transform) or rank 2 (batch of transforms). Received input with "
                         f"shape: transform.shape={tuple(shape_of(transform))}")
    if shape_of(transform)[-1] != 8:
        raise ValueError(f"affine_transform: a transform has 8 entries. Received: "
                         f"transform.shape={tuple(shape_of(transform))}")
    dtype = dtype_of(images)
    images, transform = _same_graph(images, transform)
    x, restore = _batched(to_float(images), normalize_data_format(data_format),
                          "affine_transform")
    transform = ew.cast(transform, dtype_of(x))
    if rank(transform) == 1:
        transform = mv.expand_dims(transform, 0)
    h, w, c = (static_dim(x, a, "affine_transform") for a in (1, 2, 3))
    row = _number(np.arange(h).reshape(h, 1, 1), x)
    col = _number(np.arange(w).reshape(1, w, 1), x)
    channel = _number(np.arange(c).reshape(1, 1, c), x)
    a0, a1, a2, b0, b1, b2, c0, c1 = (mv.reshape_to(mv.slice_axis(transform, i, i + 1, 1),
                                                    (shape_of(transform)[0], 1, 1, 1))
                                      for i in range(8))
    y_in = row * b1 + col * b0 + channel * c0 + b2
    x_in = row * a1 + col * a0 + channel * c1 + a2
    out = _warp(x, (y_in, x_in), interpolation, fill_mode, fill_value, "affine_transform")
    return _back_to(restore(out), dtype)


def _homography(start_points, end_points):
    """The 8 coefficients mapping each output (end) point to its input (start) point, per
    batch entry: Keras' 8x8 linear system, solved in float32 as Keras' JAX backend does."""
    start = np.asarray(start_points, np.float32)
    end = np.asarray(end_points, np.float32)
    sx, sy, ex, ey = start[..., 0], start[..., 1], end[..., 0], end[..., 1]
    zeros, ones = np.zeros_like(ex), np.ones_like(ex)
    x_rows = np.stack([ex, ey, ones, zeros, zeros, zeros, -sx * ex, -sx * ey], -1)
    y_rows = np.stack([zeros, zeros, zeros, ex, ey, ones, -sy * ex, -sy * ey], -1)
    system = np.concatenate([x_rows, y_rows], 1)
    target = np.concatenate([sx, sy], -1)[..., None]
    return np.linalg.solve(system, target)[..., 0]


def perspective_transform(images, start_points, end_points, interpolation="bilinear",
                          fill_value=0, data_format=None):
    """Warp images so the four `start_points` land on the `end_points`
    (`keras.ops.image.perspective_transform`); points outside the input get `fill_value`.

    Args:
        images: `(batch, h, w, c)` or one `(h, w, c)` image (channels first: `(batch, c, h,
            w)`).
        start_points, end_points: arrays `(4, 2)` or `(batch, 4, 2)` of `(x, y)` corners (the
            homography is solved while tracing, so they are concrete arrays).
        interpolation: `"nearest"` or `"bilinear"`.
        fill_value: the value of points outside the input.
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The warped images, same shape and dtype.

    Example:
    >>> corners = np.array([[0, 0], [3, 0], [0, 3], [3, 3]], "float32")
    >>> perspective_transform(np.ones((4, 4, 1), "float32"), corners, corners).shape
    (4, 4, 1)
    """
    _check_choice(interpolation, INTERPOLATIONS, "interpolation", "perspective_transform")
    for name, points in (("start_points", start_points), ("end_points", end_points)):
        if is_symbolic(points):
            raise ValueError(f"perspective_transform: `{name}` must be a concrete array: the "
                             f"homography is solved while tracing. Received a traced tensor")
        shape = np.shape(points)
        if len(shape) not in (2, 3) or shape[-2:] != (4, 2):
            raise ValueError(f"perspective_transform: invalid {name} shape: expected (4,2) "
                             f"for a single image or (N,4,2) for a batch. Received shape: "
                             f"{shape}")
    if np.shape(start_points) != np.shape(end_points):
        raise ValueError(f"perspective_transform: start_points and end_points must have the "
                         f"same shape. Received start_points.shape={np.shape(start_points)}, "
                         f"end_points.shape={np.shape(end_points)}")
    dtype = dtype_of(images)
    x, restore = _batched(to_float(images), normalize_data_format(data_format),
                          "perspective_transform")
    h, w = static_dim(x, 1, "perspective_transform"), static_dim(x, 2, "perspective_transform")
    coefficients = _homography(np.reshape(start_points, (-1, 4, 2)),
                               np.reshape(end_points, (-1, 4, 2)))
    col = np.arange(w, dtype=np.float32)[None, None, :, None]
    row = np.arange(h, dtype=np.float32)[None, :, None, None]
    t = [coefficients[:, i].reshape(-1, 1, 1, 1) for i in range(8)]
    denominator = t[6] * col + t[7] * row + np.float32(1.0)
    x_in = _number((t[0] * col + t[1] * row + t[2]) / denominator, x)
    y_in = _number((t[3] * col + t[4] * row + t[5]) / denominator, x)
    out = _warp(x, (y_in, x_in), interpolation, "constant", fill_value,
                "perspective_transform")
    return _back_to(restore(out), dtype)


def elastic_transform(images, alpha=20.0, sigma=5.0, interpolation="bilinear",
                      fill_mode="reflect", fill_value=0.0, seed=None, data_format=None):
    """Elastic deformation of images (`keras.ops.image.elastic_transform`): a random normal
    displacement per pixel along x and one along y, each times `sigma`, blurred by a Gaussian
    of `sigma` (kernel `int(6 * sigma) | 1`), scaled by `alpha` and sampled as
    `map_coordinates` does.

    The draws come from kgraph's generator (`seed`: an int, a `SeedGenerator` or None), so
    they are not Keras' numbers. Keras' JAX backend draws x and y from the same key (equal
    displacements); kgraph draws them independently, as Keras' numpy backend.

    Args:
        images: `(batch, h, w, c)` or one `(h, w, c)` image (channels first: `(batch, c, h,
            w)`).
        alpha: float, the displacement scale.
        sigma: positive float, the noise scale and blur width.
        interpolation: `"nearest"` or `"bilinear"`.
        fill_mode: `"constant"`, `"nearest"`, `"wrap"`, `"mirror"` or `"reflect"`.
        fill_value: the value of `"constant"` fill.
        seed: int, `keras.random.SeedGenerator` or None.
        data_format: `"channels_last"` or `"channels_first"`; defaults to the config value.

    Returns:
        The deformed images, same shape and dtype.

    Example:
    >>> elastic_transform(np.ones((2, 8, 8, 3), "float32"), seed=1).shape
    (2, 8, 8, 3)
    """
    from kgraph import random
    from kgraph.ops.symbolic_shape import dim

    _check_choice(interpolation, INTERPOLATIONS, "interpolation", "elastic_transform")
    _check_choice(fill_mode, FILL_MODES, "fill_mode", "elastic_transform")
    if float(sigma) <= 0:
        raise ValueError(f"elastic_transform: `sigma` must be positive. Received: "
                         f"sigma={sigma!r}")
    x, restore = _batched(images, normalize_data_format(data_format), "elastic_transform")
    h, w = static_dim(x, 1, "elastic_transform"), static_dim(x, 2, "elastic_transform")
    noise = random.normal((2, dim(x, 0), h, w), seed=seed, dtype=_compute_dtype(x))
    return restore(_displace(x, noise, alpha, sigma, interpolation, fill_mode, fill_value))


def _displace(images, noise, alpha, sigma, interpolation, fill_mode, fill_value):
    """`elastic_transform`'s deterministic part: channels-last `images` sampled at each pixel
    plus `alpha` times the blurred `sigma * noise` (`noise`: `(2, batch, h, w)`, x then y)."""
    from kgraph.ops.image_color import gaussian_blur

    dtype = dtype_of(images)
    x = to_float(images)
    h, w = static_dim(x, 1, "elastic_transform"), static_dim(x, 2, "elastic_transform")
    size = int(6 * float(sigma)) | 1
    scale = _number(sigma, x)
    shifts = []
    for axis in range(2):
        field = mv.expand_dims(mv.squeeze(mv.slice_axis(noise, axis, axis + 1, 0), 0), -1)
        blurred = gaussian_blur(field * scale, (size, size), (float(sigma),) * 2,
                                "channels_last")
        shifts.append(blurred * _number(alpha, x))
    col = _number(np.arange(w).reshape(1, 1, w, 1), x)
    row = _number(np.arange(h).reshape(1, h, 1, 1), x)
    out = _warp(x, (row + shifts[1], col + shifts[0]), interpolation, fill_mode, fill_value,
                "elastic_transform")
    return _back_to(out, dtype)


__all__ = ["affine_transform", "elastic_transform", "map_coordinates", "perspective_transform"]
