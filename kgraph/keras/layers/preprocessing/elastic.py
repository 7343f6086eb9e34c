"""`RandomElasticTransform` of Keras 3.15 inside the graph. Keras' `elastic_transform`:
a normal field (one field, used for both x and y displacements, as Keras draws them with the
same seed) times `sigma`, blurred by a Gaussian of `sigma` over `int(6 sigma) | 1` taps (zero
"same" padding), scaled by `alpha`, then the image is read at `(x + alpha dx, y + alpha dy)`.
`alpha = max(H, W) * 0.1 * f`, `sigma = min(H, W) * 0.05 * f` for `f` drawn once per batch in
`scale`; Keras' tap count depends on the draw, so the kernel here has the widest count `scale`
allows, the taps beyond the drawn count set to zero (the same kernel)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph import random as krandom
from kgraph.keras.layers.preprocessing.affine import check_sampling, output_grid, sample
from kgraph.keras.layers.preprocessing.augmentation import per_sample
from kgraph.keras.layers.preprocessing.color import ImageLayer, base_factor
from kgraph.ops.nn import random_normal_like

__all__ = ["RandomElasticTransform"]


def truncated_gaussian(sigma, widest):
    """`widest` (odd) taps of a Gaussian of traced `sigma`, zero beyond Keras' own count
    `int(6 sigma) | 1`, normalised."""
    offsets = np.arange(widest, dtype=np.float32) - np.float32((widest - 1) / 2)
    half = ops.floor(ops.floor(6.0 * sigma) / 2.0)
    taps = ops.exp(-0.5 * ops.square(offsets / sigma))
    taps = ops.where(ops.abs(offsets) <= half, taps, ops.zeros_like(taps))
    return taps / ops.sum(taps)


def blur_field(field, sigma, widest):
    """`(batch, H, W)` field blurred as Keras' `gaussian_blur` of one channel."""
    taps = truncated_gaussian(sigma, widest)
    kernel = ops.reshape(ops.expand_dims(taps, 1) * ops.expand_dims(taps, 0),
                         (widest, widest, 1, 1))
    blurred = ops.depthwise_conv(ops.expand_dims(field, -1), kernel, strides=1, padding="same",
                                 data_format="channels_last")
    return blurred[..., 0]


class RandomElasticTransform(ImageLayer):
    """Elastic distortion of each image, with a probability drawn in `factor`.

    Args:
        factor: float or pair in [0, 1] (default 1.0), the probability range.
        scale: float or pair in [0, 1] (default 1.0), the range of the distortion strength.
        interpolation: `"bilinear"` (default) or `"nearest"`.
        fill_mode: `"reflect"` (default), `"wrap"`, `"constant"` or `"nearest"`.
        fill_value: the value outside the image for `fill_mode="constant"`.
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def __init__(self, factor=1.0, scale=1.0, interpolation="bilinear", fill_mode="reflect",
                 fill_value=0.0, value_range=(0, 255), seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (0, 1))
        self.scale = base_factor(scale, (0, 1))
        check_sampling(fill_mode, interpolation)
        self.interpolation, self.fill_mode, self.fill_value = interpolation, fill_mode, \
            fill_value
        self.value_range = value_range

    def _size(self, x):
        first = self.data_format == "channels_first"
        return (x.shape[2], x.shape[3]) if first else (x.shape[1], x.shape[2])

    def draw_params(self, x):
        probability, threshold = self.uniforms(x, 2)
        probability = probability * (self.factor[1] - self.factor[0]) + self.factor[0]
        like = ops.sum(ops.zeros_like(x), axis=1 if self.data_format == "channels_first"
                       else -1)
        field = random_normal_like(like, krandom.graph_key(),
                                   self.seed_generator.seed ^ 0x1B56C4E9)
        strength = self.draw(x, 1, stream=1)[0, 0] * (self.scale[1] - self.scale[0]) + \
            self.scale[0]
        return {"apply_transform": threshold < probability, "distortion_factor": strength,
                "field": field}

    def transform(self, x, params):
        if self.scale[1] == 0 or self.factor[1] == 0:  # Keras draws nothing then
            return x
        h, w = self._size(x)
        factor = params["distortion_factor"]
        alpha, sigma = max(h, w) * 0.1 * factor, min(h, w) * 0.05 * factor
        widest = int(6 * min(h, w) * 0.05 * self.scale[1]) | 1
        displacement = alpha * blur_field(params["field"] * sigma, sigma, widest)
        first = self.data_format == "channels_first"
        images = ops.transpose(x, (0, 2, 3, 1)) if first else x
        grid_x, grid_y = output_grid(h, w)
        flat = ops.reshape(displacement, (-1, h * w))
        warped = sample(images, grid_x + flat, grid_y + flat, self.interpolation,
                        self.fill_mode, self.fill_value)
        warped = ops.transpose(warped, (0, 3, 1, 2)) if first else warped
        out = ops.where(per_sample(params["apply_transform"], 4), warped, x)
        return ops.clip(out, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "interpolation": self.interpolation, "fill_mode": self.fill_mode,
                "fill_value": self.fill_value, "value_range": self.value_range}
