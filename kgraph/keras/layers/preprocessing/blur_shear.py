"""`RandomGaussianBlur` and `RandomShear` of Keras 3.15 inside the graph (names, arguments,
factor rules, configs and `transform_images` formulas of Keras; draws from the step's rng key
and the layer seed, as the other augmentation layers in color.py)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.layers.preprocessing.affine import check_sampling
from kgraph.keras.layers.preprocessing.augmentation import per_sample
from kgraph.keras.layers.preprocessing.color import ImageLayer, base_factor

__all__ = ["RandomGaussianBlur", "RandomShear"]


def _odd_pair(value, name):
    error = f"{name} must be an odd number. Received: {name}={value}"
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"The `{name}` argument should be a number (or a list of two "
                             f"numbers) Received: {name}={value}")
        if value[0] % 2 == 0 or value[1] % 2 == 0:
            raise ValueError(error)
        return tuple(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value % 2 == 0:
            raise ValueError(error)
        return value, value
    raise ValueError(error)


def gaussian_kernel(size, sigma):
    """Normalised 1-D Gaussian of `size` taps (`sigma` may be a traced scalar)."""
    x = np.arange(size, dtype=np.float32) - np.float32((size - 1) / 2)
    taps = ops.exp(-0.5 * ops.square(x / sigma))
    return taps / ops.sum(taps)


def gaussian_blur(images, kernel_size, sigma, data_format):
    """Keras' `image.gaussian_blur` with a traced `sigma` pair: the kernel is
    `outer(g(kernel_size[1], sigma[1]), g(kernel_size[0], sigma[0]))` over (height, width),
    zero "same" padding, one channel at a time."""
    rows = gaussian_kernel(int(kernel_size[1]), sigma[1])
    cols = gaussian_kernel(int(kernel_size[0]), sigma[0])
    kernel = ops.expand_dims(rows, 1) * ops.expand_dims(cols, 0)
    channels = images.shape[1 if data_format == "channels_first" else -1]
    kernel = ops.reshape(kernel, (int(kernel_size[1]), int(kernel_size[0]), 1, 1)) * \
        np.ones((1, 1, channels, 1), np.float32)
    return ops.depthwise_conv(images, kernel, strides=1, padding="same",
                              data_format=data_format)


class RandomGaussianBlur(ImageLayer):
    """Blurs each image, with a probability drawn in `factor`, by a Gaussian kernel whose
    (x, y) sigmas are drawn once per batch in `sigma`; clipped to `value_range`.

    Args:
        factor: float or pair in [0, 1] (default 1.0), the probability range.
        kernel_size: odd int or pair of odd ints (x, y) (default 3).
        sigma: float or pair in [0, 1] (default 1.0).
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def __init__(self, factor=1.0, kernel_size=3, sigma=1.0, value_range=(0, 255),
                 data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (0, 1))
        self.kernel_size = _odd_pair(kernel_size, "kernel_size")
        self.sigma = base_factor(sigma, (0, 1))
        self.value_range = value_range

    def draw_params(self, x):
        probability, threshold = self.uniforms(x, 2)
        probability = probability * (self.factor[1] - self.factor[0]) + self.factor[0]
        sigma = self.draw(x, 2, stream=1)[0] * (self.sigma[1] - self.sigma[0]) + \
            self.sigma[0]  # one pair for the batch, as Keras
        return {"should_apply_blur": threshold < probability, "blur_factor": sigma + 1e-6}

    def transform(self, x, params):
        blurred = gaussian_blur(x, self.kernel_size, params["blur_factor"], self.data_format)
        out = ops.where(per_sample(params["should_apply_blur"], 4), blurred, x)
        return ops.clip(out, self.value_range[0], self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "kernel_size": self.kernel_size,
                "sigma": self.sigma, "value_range": self.value_range}


class RandomShear(ImageLayer):
    """Shears each image along x and y by factors drawn in `x_factor`/`y_factor` (one random
    sign for both), Keras' matrix `[1, sx, 0, sy, 1, 0, 0, 0]`.

    Args:
        x_factor, y_factor: float or pair in [0, 1] (a float `f`: `(-f, f)`; default 0).
        interpolation: `"bilinear"` (default) or `"nearest"`.
        fill_mode: `"reflect"` (default), `"wrap"`, `"constant"` or `"nearest"`.
        fill_value: the value outside the image for `fill_mode="constant"`.
        seed: int seed.
    """

    _ERROR = ("The `x_factor` and `y_factor` arguments should be a number (or a list of two "
              "numbers) in the range [0, 1]. ")

    def __init__(self, x_factor=0.0, y_factor=0.0, interpolation="bilinear",
                 fill_mode="reflect", fill_value=0.0, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.x_factor = self._factor(x_factor, "x_factor")
        self.y_factor = self._factor(y_factor, "y_factor")
        check_sampling(fill_mode, interpolation)
        self.fill_mode, self.fill_value, self.interpolation = fill_mode, fill_value, \
            interpolation

    def _factor(self, factor, name):
        if isinstance(factor, (tuple, list)) and len(factor) == 2:
            values = sorted(factor)
        elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
            values = [-abs(factor), abs(factor)]
        else:
            raise ValueError(self._ERROR + f"Received: {name}={factor}")
        # a pair may reach -1: the config holds (-f, f), which Keras 3.15 itself then refuses
        # to load (its own round trip fails); kgraph reads it back
        lowest = -1.0 if isinstance(factor, (tuple, list)) else 0.0
        for value in (factor if isinstance(factor, (tuple, list)) else [factor]):
            if value > 1.0 or value < lowest:
                raise ValueError(self._ERROR + f"Received: input_number={value}")
        return tuple(values)

    def draw_params(self, x):
        sign, sy, sx = self.uniforms(x, 3)
        sign = ops.where(sign > 0.5, -ops.ones_like(sign), ops.ones_like(sign))
        sx = sx * (self.x_factor[1] - self.x_factor[0]) + self.x_factor[0]
        sy = sy * (self.y_factor[1] - self.y_factor[0]) + self.y_factor[0]
        return {"shear_factor": ops.stack([sx, sy], axis=1) * ops.expand_dims(sign, 1)}

    def transform(self, x, params):
        shear = params["shear_factor"]
        one, zero = ops.ones_like(shear[:, 0]), ops.zeros_like(shear[:, 0])
        matrix = ops.stack([one, shear[:, 0], zero, shear[:, 1], one, zero, zero, zero], axis=1)
        return ops.image.affine_transform(x, matrix, interpolation=self.interpolation,
                                          fill_mode=self.fill_mode,
                                          fill_value=self.fill_value,
                                          data_format=self.data_format)

    def get_config(self):
        return {**super().get_config(), "x_factor": self.x_factor, "y_factor": self.y_factor,
                "fill_mode": self.fill_mode, "interpolation": self.interpolation,
                "fill_value": self.fill_value}
