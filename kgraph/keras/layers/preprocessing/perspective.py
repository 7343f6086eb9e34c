"""`RandomPerspective` of Keras 3.15 inside the graph. Each image's corners move by up to
`scale / 2` of their coordinates; the output pixel `(x, y)` reads the input at
`H (x, y, 1)` (projective division), `H` the homography taking the moved corners back to the
original ones, as Keras' `perspective_transform`. Keras solves an 8x8 system; here `H` is
Heckbert's closed form (unit square to each quad, one inverted by its adjugate), which needs
no linear solve in the graph. Sampled as Keras' `map_coordinates` with a constant fill."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.layers.preprocessing.affine import check_sampling, output_grid, sample
from kgraph.keras.layers.preprocessing.augmentation import per_sample
from kgraph.keras.layers.preprocessing.color import ImageLayer, base_factor

__all__ = ["RandomPerspective"]


def square_to_quad(points):
    """3x3 homographies (as nine `(batch,)` entries, row-major) taking the unit square's
    corners (0,0), (1,0), (0,1), (1,1) to `points` `(batch, 4, 2)` in that order."""
    x = [points[:, i, 0] for i in range(4)]
    y = [points[:, i, 1] for i in range(4)]
    # Heckbert's corners go round the square: (0,0), (1,0), (1,1), (0,1)
    x0, x1, x2, x3 = x[0], x[1], x[3], x[2]
    y0, y1, y2, y3 = y[0], y[1], y[3], y[2]
    sx, sy = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dx2, dy1, dy2 = x1 - x2, x3 - x2, y1 - y2, y3 - y2
    det = dx1 * dy2 - dx2 * dy1
    g, h = (sx * dy2 - dx2 * sy) / det, (dx1 * sy - sx * dy1) / det
    one = ops.ones_like(g)
    return [x1 - x0 + g * x1, x3 - x0 + h * x3, x0,
            y1 - y0 + g * y1, y3 - y0 + h * y3, y0, g, h, one]


def _adjugate(m):
    a, b, c, d, e, f, g, h, i = m
    return [e * i - f * h, c * h - b * i, b * f - c * e,
            f * g - d * i, a * i - c * g, c * d - a * f,
            d * h - e * g, b * g - a * h, a * e - b * d]


def _matmul(p, q):
    return [sum(p[3 * r + k] * q[3 * k + col] for k in range(3))
            for r in range(3) for col in range(3)]


def homography(start_points, end_points):
    """`(batch, 8)` coefficients of the map from end points to start points, normalised so
    the ninth is 1 (Keras' `compute_homography_matrix`)."""
    m = _matmul(square_to_quad(start_points), _adjugate(square_to_quad(end_points)))
    return ops.stack([v / m[8] for v in m[:8]], axis=1)


class RandomPerspective(ImageLayer):
    """Applies a random perspective warp to each image with a probability drawn in `factor`.

    Args:
        factor: float or pair in [0, 1] (default 1.0), the probability range.
        scale: float in [0, 1] (default 1.0): each corner coordinate moves by a factor drawn
            in `[-scale / 2, scale / 2]` of itself.
        interpolation: `"bilinear"` (default) or `"nearest"`.
        fill_value: the value outside the input image (default 0).
        seed: int seed.
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_value=0.0,
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (0, 1))
        if scale < 0.0 or scale > 1.0:
            raise ValueError(f"The `scale` argument should be a number in the range [0,1]. "
                             f"Received: scale={scale}")
        check_sampling("constant", interpolation)
        self.scale, self.interpolation, self.fill_value = scale, interpolation, fill_value

    def _corners(self, x):
        first = self.data_format == "channels_first"
        h, w = (x.shape[2], x.shape[3]) if first else (x.shape[1], x.shape[2])
        return [[0.0, 0.0], [w - 1.0, 0.0], [0.0, h - 1.0], [w - 1.0, h - 1.0]]

    def draw_params(self, x):
        u = self.uniforms(x, 10)
        probability = u[0] * (self.factor[1] - self.factor[0]) + self.factor[0]
        moves = ops.reshape(ops.stack(u[2:], axis=1) * self.scale - 0.5 * self.scale, (-1, 4, 2))
        start = ops.zeros_like(moves) + self._corners(x)
        return {"apply_perspective": u[1] < probability, "start_points": start,
                "end_points": start + start * moves}

    def transform(self, x, params):
        first = self.data_format == "channels_first"
        images = ops.transpose(x, (0, 2, 3, 1)) if first else x
        h, w = images.shape[1], images.shape[2]
        m = homography(ops.cast(params["start_points"], "float32"),
                       ops.cast(params["end_points"], "float32"))
        grid_x, grid_y = output_grid(h, w)
        t = [m[:, i:i + 1] for i in range(8)]
        denominator = t[6] * grid_x + t[7] * grid_y + 1.0
        src_x = (t[0] * grid_x + t[1] * grid_y + t[2]) / denominator
        src_y = (t[3] * grid_x + t[4] * grid_y + t[5]) / denominator
        warped = sample(images, src_x, src_y, self.interpolation, "constant", self.fill_value)
        warped = ops.transpose(warped, (0, 3, 1, 2)) if first else warped
        return ops.where(per_sample(params["apply_perspective"], 4), warped, x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "interpolation": self.interpolation, "fill_value": self.fill_value}
