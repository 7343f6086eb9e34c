"""Colour image layers of Keras 3.15 inside the graph: `AutoContrast`, `Equalization` (no
randomness), `Solarization`, `RandomInvert`, `RandomPosterization`, `RandomGrayscale`,
`RandomColorDegeneration`, `RandomSaturation`, `RandomHue`, `RandomSharpness`.

Names, arguments, defaults, factor rules and configs are Keras'. Each random layer splits in
`draw(images)` (its per-image random values, as the dict Keras' `get_random_transformation`
returns) and `transform(images, draws)` (Keras' `transform_images` formula given the draws:
tests feed both the same draws). As the other augmentation layers, they change images only
when training (`fit`, or a direct call on arrays); `AutoContrast` applies always, as in Keras.
The draws come from the step's rng key and the layer seed: reproducible, not Keras' numbers.
"""
from __future__ import annotations

import numpy as np

from kgraph import config as kconfig
from kgraph import ops
from kgraph.keras.layers.preprocessing.augmentation import RandomLayer, per_sample

__all__ = ["AutoContrast", "Equalization", "RandomColorDegeneration", "RandomGrayscale",
           "RandomHue", "RandomInvert", "RandomPosterization", "RandomSaturation",
           "RandomSharpness", "Solarization"]

_VALUE_RANGE_ERROR = "The `value_range` argument should be a list of two numbers. "


def value_range_of(value_range):
    """Keras' `_set_value_range`: a pair, sorted into a list."""
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise ValueError(_VALUE_RANGE_ERROR + f"Received: value_range={value_range}")
    return sorted(value_range)


def base_factor(factor, bounds):
    """Keras' `BaseImagePreprocessingLayer._set_factor`: `(lower, upper)` within `bounds`;
    a number `f` gives `(max(-f, bounds[0]), f)`."""
    error = (f"The `factor` argument should be a number (or a list of two numbers) in the "
             f"range [{bounds[0]}, {bounds[1]}]. Received: factor={factor}")
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2 or factor[0] > bounds[1] or factor[1] < bounds[0]:
            raise ValueError(error)
        return tuple(sorted(factor))
    if isinstance(factor, (int, float)) and not isinstance(factor, bool):
        if factor < bounds[0] or factor > bounds[1]:
            raise ValueError(error)
        factor = abs(factor)
        return max(-factor, bounds[0]), factor
    raise ValueError(error)


def rescale(images, source, target):
    """Values mapped linearly from the range `source` to `target` (Keras'
    `_transform_value_range`); unchanged when the ranges are equal."""
    if source[0] == target[0] and source[1] == target[1]:
        return images
    unit = (images - float(source[0])) / float(source[1] - source[0])
    return unit * float(target[1] - target[0]) + float(target[0])


def channel_axis(data_format, rank=4):
    return 1 if data_format == "channels_first" else rank - 1


class ImageLayer(RandomLayer):
    """A `RandomLayer` with Keras' image-layer conventions: `draw` then `transform`, a config
    with `seed` only where Keras has one."""

    applies_in_inference = False
    has_seed = True

    def call(self, inputs, training=True):
        return super().call(inputs, training=bool(training) or self.applies_in_inference)

    def augment(self, x):
        return self.transform(x, self.draw_params(x))

    def draw_params(self, x):
        return {}

    def uniforms(self, x, n=1, low=0.0, high=1.0):
        """`n` per-image uniform columns in [low, high) (`(batch,)` each)."""
        u = self.draw(x, n)
        u = u * float(high - low) + float(low) if (low, high) != (0.0, 1.0) else u
        return [u[:, i] for i in range(n)]

    def get_config(self):
        config = super().get_config()
        if not self.has_seed:
            config.pop("seed")
        return config


class AutoContrast(ImageLayer):
    """Stretches each image channel to the full `value_range` (min to 0, max to 255 in the
    0-255 scale); constant channels stay as they are. Applies in training and inference.

    Args:
        value_range: the range of the pixel values (default `(0, 255)`).
    """

    applies_in_inference, has_seed = True, False

    def __init__(self, value_range=(0, 255), **kwargs):
        super().__init__(**kwargs)
        self.value_range = value_range_of(value_range)

    def transform(self, x, params=None):
        images = rescale(x, self.value_range, (0, 255))
        low = ops.min(images, axis=(1, 2), keepdims=True)  # Keras' axes, whatever the layout
        high = ops.max(images, axis=(1, 2), keepdims=True)
        flat = ops.equal(high, low)  # Keras: 0/0 is NaN, replaced by the original
        scale = 255.0 / ops.where(flat, ops.ones_like(high), high - low)
        out = rescale(ops.clip(images * scale - low * scale, 0.0, 255.0), (0, 255),
                      self.value_range)
        return ops.where(ops.logical_or(flat, ops.isnan(out)), x, out)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range}


class Equalization(ImageLayer):
    """Histogram equalization of each channel (the histogram over the whole batch, as Keras),
    in training only.

    Args:
        value_range: the range of the pixel values (default `(0, 255)`).
        bins: histogram bins (default 256).
    """

    has_seed = False

    def __init__(self, value_range=(0, 255), bins=256, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.bins = bins
        self.value_range = value_range_of(value_range)

    def equalize_channel(self, channel):
        bins = self.bins
        channel = rescale(channel, self.value_range, (0, 255))
        index = ops.clip(ops.cast(channel * ((bins - 1) / 255.0), "int32"), 0, bins - 1)
        hist = ops.sum(ops.one_hot(ops.reshape(index, (-1,)), bins), axis=0)
        cdf = ops.cumsum(hist)
        big = np.float32(np.finfo(np.float32).max)
        cdf_min = ops.min(ops.where(cdf > 0, cdf, big))
        denominator = cdf[-1] - cdf_min
        denominator = ops.where(ops.equal(denominator, 0.0), ops.ones_like(denominator),
                                denominator)
        table = ops.clip(ops.round((cdf - cdf_min) * 255.0 / denominator), 0.0, 255.0)
        lookup = ops.cast(ops.clip(channel / 255.0 * (bins - 1), 0.0, bins - 1.0), "int32")
        equalized = ops.take(table, lookup)
        used = ops.sum(ops.cast(hist > 0, "float32"))
        out = ops.where(used <= 1.0, channel, equalized)
        return rescale(out, (0, 255), self.value_range)

    def transform(self, x, params=None):
        axis = channel_axis(self.data_format)
        channels = [self.equalize_channel(ops.take(x, i, axis=axis))
                    for i in range(x.shape[axis])]
        return ops.stack(channels, axis=axis)

    def get_config(self):
        return {**super().get_config(), "bins": self.bins, "value_range": self.value_range}


class Solarization(ImageLayer):
    """Adds a random `addition` then inverts the pixels at or above a random `threshold`
    (in the 0-255 scale): `where(x < threshold, x, 255 - x)`; Keras draws `addition` in
    `[addition_factor[0], addition_factor[1] * 255]` (likewise the threshold).

    Args:
        addition_factor: float or pair in [0, 1] (default 0).
        threshold_factor: float or pair in [0, 1] (default 0: every pixel inverted).
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    _ERROR = ("The `addition_factor` and `threshold_factor` arguments should be a number "
              "(or a list of two numbers) in the range [0, 1]. ")

    def __init__(self, addition_factor=0.0, threshold_factor=0.0, value_range=(0, 255),
                 seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.addition_factor = self._factor(addition_factor, "addition_factor")
        self.threshold_factor = self._factor(threshold_factor, "threshold_factor")
        self.value_range = value_range_of(value_range)

    def _factor(self, factor, name):
        if isinstance(factor, (tuple, list)) and len(factor) == 2:
            values = list(factor)
        elif isinstance(factor, (int, float)) and not isinstance(factor, bool):
            values = [0, factor]
        else:
            raise ValueError(self._ERROR + f"Received: {name}={factor}")
        for value in values:
            if value > 1.0 or value < 0:
                raise ValueError(self._ERROR + f"Received: input_number={value}")
        return tuple(sorted(values))

    def draw_params(self, x):
        additions, thresholds = self.uniforms(x, 2)
        (a0, a1), (t0, t1) = self.addition_factor, self.threshold_factor
        return {"additions": additions * (a1 * 255.0 - a0) + a0,
                "thresholds": thresholds * (t1 * 255.0 - t0) + t0}

    def transform(self, x, params):
        additions = per_sample(params["additions"], 4)
        thresholds = per_sample(params["thresholds"], 4)
        out = ops.clip(rescale(x, self.value_range, (0, 255)) + additions, 0.0, 255.0)
        out = ops.where(out < thresholds, out, 255.0 - out)
        return rescale(out, (0, 255), self.value_range)

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "addition_factor": self.addition_factor,
                "threshold_factor": self.threshold_factor}


class RandomInvert(ImageLayer):
    """Inverts each image (`value_range[1] - x`) with a probability drawn in `factor`.

    Args:
        factor: float or pair in [0, 1] (default 1.0: the probability is uniform in [0, 1]).
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def __init__(self, factor=1.0, value_range=(0, 255), seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (0, 1))
        self.value_range = value_range

    def draw_params(self, x):
        probability, threshold = self.uniforms(x, 2)
        probability = probability * (self.factor[1] - self.factor[0]) + self.factor[0]
        return {"apply_inversion": threshold < probability}

    def transform(self, x, params):
        apply = per_sample(params["apply_inversion"], 4)
        return ops.where(apply, float(self.value_range[1]) - x, x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "value_range": self.value_range}


class RandomPosterization(ImageLayer):
    """Keeps a random number of high bits of each 8-bit pixel value: bits drawn per image in
    `[factor[0], factor[1])` (an int `f`: `[1, f)`), the value truncated to 8 bits first.

    Args:
        factor: int or pair of ints in [1, 8].
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (1, 8))
        self.value_range = value_range_of(value_range)

    def draw_params(self, x):
        low, high = self.factor
        if low == high:
            bits = self.uniforms(x, 1)[0] * 0.0 + float(low)
        else:  # Keras' randint: [low, high)
            bits = ops.floor(self.uniforms(x, 1)[0] * float(high - low)) + float(low)
        return {"shift_factor": 8.0 - bits}

    def transform(self, x, params):
        step = per_sample(ops.power(2.0, ops.cast(params["shift_factor"], x.dtype)), 4)
        bytes_ = ops.floor(rescale(x, self.value_range, (0, 255)))  # the uint8 cast
        return rescale(ops.floor(bytes_ / step) * step, (0, 255), self.value_range)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "value_range": self.value_range}


class RandomGrayscale(ImageLayer):
    """Turns each image grayscale with probability `factor` (all channels set to the luma).

    Args:
        factor: probability in [0, 1] (default 0.5).
        seed: int seed.
    """

    has_seed = False

    def __init__(self, factor=0.5, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        if factor < 0 or factor > 1:
            raise ValueError(f"`factor` should be between 0 and 1. Received: factor={factor}")
        self.factor = factor

    def draw_params(self, x):
        return {"should_apply": self.uniforms(x, 1)[0] < self.factor}

    def transform(self, x, params):
        gray = ops.image.rgb_to_grayscale(x, data_format=self.data_format)
        return ops.where(per_sample(params["should_apply"], 4), gray, x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class _ColorFactorLayer(ImageLayer):
    """`factor` (Keras' base rules within `bounds`), `value_range`, `seed`; one uniform per
    image in `factor`."""

    bounds, sort_range = (-1, 1), True

    def __init__(self, factor, value_range=(0, 255), data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, self.bounds)
        self.value_range = value_range_of(value_range) if self.sort_range else value_range

    def draw_params(self, x):
        return {"factor": self.uniforms(x, 1, *self.factor)[0]}

    def get_config(self):
        return {**super().get_config(), "factor": self.factor,
                "value_range": self.value_range}


class RandomColorDegeneration(_ColorFactorLayer):
    """Blends each image towards its grayscale version by a random factor:
    `x + factor * (gray - x)`, clipped to `value_range`.

    Args:
        factor: float or pair in [-1, 1] (a float `f`: `(-f, f)`).
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def transform(self, x, params):
        factor = per_sample(params["factor"], 4)
        gray = ops.image.rgb_to_grayscale(x, data_format=self.data_format)
        return ops.clip(x + factor * (gray - x), *self.value_range)


def _split_channels(x, data_format):
    axis = channel_axis(data_format)
    return [ops.take(x, i, axis=axis) for i in range(3)], axis


class RandomSaturation(_ColorFactorLayer):
    """Scales each image's HSV saturation by `f / (1 - f + epsilon)` for `f` drawn in
    `factor`, the saturation clipped to `value_range` (Keras' formula).

    Args:
        factor: float or pair in [-1, 1] (a float `f`: `(-f, f)`).
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def draw_params(self, x):
        factor = super().draw_params(x)["factor"]
        return {"factor": factor / (1.0 - factor + kconfig.epsilon())}

    def transform(self, x, params):
        (h, s, v), axis = _split_channels(ops.image.rgb_to_hsv(x, self.data_format),
                                          self.data_format)
        s = ops.clip(s * ops.reshape(params["factor"], (-1, 1, 1)), *self.value_range)
        return ops.image.hsv_to_rgb(ops.stack([h, s, v], axis=axis), self.data_format)


class RandomHue(_ColorFactorLayer):
    """Shifts each image's hue by `+-factor / 2` of a turn (sign and size drawn per image),
    in the 0-1 scale, wrapped around; the result clipped to `value_range`.

    Args:
        factor: float or pair in [0, 1].
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    bounds, sort_range = (0, 1), False

    def draw_params(self, x):
        sign, size = self.uniforms(x, 2)
        sign = ops.where(sign > 0.5, -ops.ones_like(sign), ops.ones_like(sign))
        size = size * (self.factor[1] - self.factor[0]) + self.factor[0]
        return {"factor": sign * size * 0.5}

    def transform(self, x, params):
        unit = rescale(x, self.value_range, (0, 1))
        (h, s, v), axis = _split_channels(ops.image.rgb_to_hsv(unit, self.data_format),
                                          self.data_format)
        h = h + ops.reshape(params["factor"], (-1, 1, 1))
        h = ops.where(h > 1.0, h - 1.0, h)
        h = ops.where(h < 0.0, h + 1.0, h)
        rgb = ops.image.hsv_to_rgb(ops.stack([h, s, v], axis=axis), self.data_format)
        return rescale(ops.clip(rgb, 0.0, 1.0), (0, 1), self.value_range)


class RandomSharpness(_ColorFactorLayer):
    """Blends each image with a 3x3 smoothed copy: `x + (1 - 2 f) * (smooth - x)` for `f`
    drawn in `factor` (0.5 leaves the image as it is, above sharpens), clipped to
    `value_range`.

    Args:
        factor: float or pair in [0, 1].
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    bounds = (0, 1)

    def transform(self, x, params):
        first = self.data_format == "channels_first"
        if first:
            x = ops.swapaxes(x, -3, -1)
        a, b = 1.0 / 13.0, 5.0 / 13.0
        kernel = np.array([[a, a, a], [a, b, a], [a, a, a]], np.float32).reshape(3, 3, 1, 1)
        kernel = np.tile(kernel, (1, 1, x.shape[-1], 1))
        smoothed = ops.depthwise_conv(x, kernel, strides=1, padding="same",
                                      data_format="channels_last")
        sharpness = per_sample(params["factor"] * 2.0, 4)
        out = ops.clip(x + (1.0 - sharpness) * (smoothed - x), *self.value_range)
        return ops.swapaxes(out, -3, -1) if first else out
