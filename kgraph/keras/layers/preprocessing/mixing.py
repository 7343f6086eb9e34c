"""Layers of Keras 3.15 that mix images of a batch or cut boxes out of them, inside the graph:
`MixUp`, `CutMix`, `RandomErasing` (names, arguments, factor rules, configs and the formulas of
Keras' `transform_images`/`transform_labels` given the draws).

Called on a dict `{"images": ..., "labels": ...}` (as Keras' layers take it), `MixUp` and
`CutMix` mix the labels with the same weights as the images. Permutations are the ranks of
per-image uniforms (by pairwise comparison: the batch size may be known only at run time);
Beta draws are ratios of Gamma draws (Marsaglia and Tsang), with a traced concentration where
CutMix draws it per batch. Draws come from the step's rng key and the layer seed, as the other
augmentation layers (color.py)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph import random as krandom
from kgraph.keras.layers.preprocessing.augmentation import per_sample
from kgraph.keras.layers.preprocessing.color import ImageLayer, base_factor
from kgraph.ops.nn import random_normal_like
from kgraph.ops.random import uniform_like

__all__ = ["CutMix", "MixUp", "RandomErasing"]


def gamma_draw(like, seed, alpha, candidates=8):
    """Gamma(alpha, 1) draws shaped like `like` for a traced `alpha` > 0 (Marsaglia and
    Tsang on alpha + 1, scaled by `u ** (1 / alpha)`: valid for every alpha > 0)."""
    key = krandom.graph_key()
    d = alpha + 1.0 - 1.0 / 3.0
    c = 1.0 / ops.sqrt(9.0 * d)
    out = None
    for i in reversed(range(candidates)):
        stream = (seed ^ (0x9E3779B9 * (i + 1))) & 0xFFFFFFFF
        z = random_normal_like(like, key, stream)
        u = 1.0 - uniform_like(like, key, stream ^ 0x68E31DA4)
        v = ops.maximum((1.0 + c * z) ** 3, 1e-30)
        accept = ops.logical_and((1.0 + c * z) > 0.0,
                                 ops.log(u) < 0.5 * z * z + d - d * v + d * ops.log(v))
        out = ops.where(accept, d * v, d + 0.0 * z if out is None else out)
    u = 1.0 - uniform_like(like, key, (seed ^ 0xB5297A4D) & 0xFFFFFFFF)
    return out * ops.power(u, 1.0 / alpha)


def beta_draw(like, seed, alpha):
    """Beta(alpha, alpha) draws shaped like `like`."""
    first = gamma_draw(like, seed, alpha)
    second = gamma_draw(like, seed ^ 0x1B56C4E9, alpha)
    return first / (first + second)


def box_masks(shape, boxes, data_format):
    """Boolean `(batch, H, W, 1)` (or `(batch, 1, H, W)`) masks of the boxes
    `x0 <= x < x1`, `y0 <= y < y1` (per-image columns)."""
    first = data_format == "channels_first"
    height, width = (shape[2], shape[3]) if first else (shape[1], shape[2])
    grid_y, grid_x = np.meshgrid(np.arange(height, dtype=np.float32),
                                 np.arange(width, dtype=np.float32), indexing="ij")
    grid_y, grid_x = grid_y[None, :, :, None], grid_x[None, :, :, None]
    x0, x1, y0, y1 = (per_sample(b, 4) for b in boxes)
    inside = ops.logical_and(ops.logical_and(grid_x >= x0, grid_x < x1),
                             ops.logical_and(grid_y >= y0, grid_y < y1))
    return ops.transpose(inside, (0, 3, 1, 2)) if first else inside


def random_boxes(u, height, width, ratio_x, ratio_y):
    """(x0, x1, y0, y1) of boxes of `ratio * size` sides at uniform offsets `u` (2 columns)."""
    box_w, box_h = ratio_x * float(width), ratio_y * float(height)
    x0 = u[0] * (float(width) - box_w)
    y0 = u[1] * (float(height) - box_h)
    return x0, x0 + box_w, y0, y0 + box_h


class _MixingLayer(ImageLayer):
    """Images (and, in a dict, labels) transformed with one set of draws."""

    def call(self, inputs, training=True):
        if not isinstance(inputs, dict):
            return super().call(inputs, training=training)
        images = ops.cast(inputs["images"], self.compute_dtype)
        if not training:
            return {**inputs, "images": images}
        params = self.draw_params(images)
        out = {**inputs, "images": self.transform(images, params)}
        if "labels" in inputs:
            out["labels"] = self.transform_labels(ops.cast(inputs["labels"], "float32"),
                                                  params)
        return out

    def permutation(self, x):
        """A uniform random permutation of the batch for a batch size known only at run
        time: the ranks of per-image uniforms (the inverse of their argsort, uniform too),
        counted by pairwise comparison (argsort needs a static size)."""
        u = self.uniforms(x, 1)[0]
        below = ops.cast(ops.less(ops.expand_dims(u, 0), ops.expand_dims(u, 1)), "int32")
        return ops.sum(below, axis=1)

    def transform_labels(self, labels, params):
        weight = ops.reshape(params["mix_weight"], (-1, 1))
        return weight * labels + (1.0 - weight) * ops.take(labels, params["permutation_order"],
                                                           axis=0)

    def compute_output_shape(self, input_shape):
        return input_shape


class MixUp(_MixingLayer):
    """Blends each image (and label) with another of the batch: `w x + (1 - w) x[perm]`,
    `w ~ Beta(alpha, alpha)` per image.

    Args:
        alpha: float > 0, the Beta concentration (default 0.2).
        seed: int seed.
    """

    def __init__(self, alpha=0.2, data_format=None, seed=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.alpha = alpha

    def draw_params(self, x):
        like = self.uniforms(x, 1)[0]
        return {"permutation_order": self.permutation(x),
                "mix_weight": beta_draw(like, self.seed_generator.seed ^ 0x2545F491,
                                        float(self.alpha))}

    def transform(self, x, params):
        weight = per_sample(params["mix_weight"], 4)
        return weight * x + (1.0 - weight) * ops.take(x, params["permutation_order"], axis=0)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class CutMix(_MixingLayer):
    """Pastes into each image a box from another image of the batch; the box covers a
    `1 - w` share, `w ~ Beta(a, a)`, `a` drawn once per batch in `factor`; labels mix by the
    share each image keeps. Single images pass through (as Keras).

    Args:
        factor: float or pair in [0, 1] (default 1.0), the range of `a`.
        seed: int seed.
    """

    def __init__(self, factor=1.0, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (0, 1))

    def call(self, inputs, training=True):
        images = inputs["images"] if isinstance(inputs, dict) else inputs
        if len(images.shape) == 3:  # Keras: no transformation for one image
            return super().call(inputs, training=False)
        return super().call(inputs, training=training)

    def draw_params(self, x):
        first = self.data_format == "channels_first"
        height, width = (x.shape[2], x.shape[3]) if first else (x.shape[1], x.shape[2])
        like = self.uniforms(x, 1)[0]
        alpha = self.draw(x, 1, stream=1)[0, 0] * (self.factor[1] - self.factor[0]) + \
            self.factor[0] + 1e-6
        ratio = ops.sqrt(1.0 - beta_draw(like, self.seed_generator.seed ^ 0x2545F491, alpha))
        u = self.uniforms(x, 3)[1:]
        boxes = random_boxes(u, height, width, ratio, ratio)
        x0, x1, y0, y1 = boxes
        return {"permutation_order": self.permutation(x), "boxes": boxes,
                "mix_weight": 1.0 - (x1 - x0) * (y1 - y0) / float(width * height)}

    def transform(self, x, params):
        masks = box_masks(x.shape, params["boxes"], self.data_format)
        return ops.where(masks, ops.take(x, params["permutation_order"], axis=0), x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


class RandomErasing(ImageLayer):
    """Erases a random box of each image, with a probability drawn in `factor`: the box's
    sides are `sqrt(s) * size` for `s` drawn in `scale` (one per side); it is filled with
    `fill_value`, or Gaussian noise times `value_range[1]` when None, clipped to `value_range`.

    Args:
        factor: float or pair in [0, 1] (default 1.0), the probability range.
        scale: float or pair in [0, 1] (default `(0.02, 0.33)`).
        fill_value: None, a number, or three numbers (one per channel).
        value_range: the range of the pixel values (default `(0, 255)`).
        seed: int seed.
    """

    def __init__(self, factor=1.0, scale=(0.02, 0.33), fill_value=None, value_range=(0, 255),
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.factor = base_factor(factor, (0, 1))
        self.scale = base_factor(scale, (0, 1))
        if fill_value is not None and not (
                isinstance(fill_value, (int, float)) or
                (isinstance(fill_value, (tuple, list)) and len(fill_value) == 3)):
            raise ValueError(f"The `fill_value` argument should be a number (or a list of "
                             f"three numbers) Received: fill_value={fill_value}")
        self.fill_value, self.value_range = fill_value, value_range

    def draw_params(self, x):
        first = self.data_format == "channels_first"
        height, width = (x.shape[2], x.shape[3]) if first else (x.shape[1], x.shape[2])
        u = self.uniforms(x, 6)
        sides = [ops.sqrt(v * (self.scale[1] - self.scale[0]) + self.scale[0]) for v in u[:2]]
        probability = u[4] * (self.factor[1] - self.factor[0]) + self.factor[0]
        params = {"boxes": random_boxes(u[2:4], height, width, sides[0], sides[1]),
                  "apply_erasing": u[5] < probability}
        if self.fill_value is None:
            key = krandom.graph_key()
            params["fill_value"] = ops.clip(
                random_normal_like(x, key, self.seed_generator.seed ^ 0x1B56C4E9) *
                float(self.value_range[1]), self.value_range[0], self.value_range[1])
        return params

    def _fill(self, x, params):
        if self.fill_value is None:
            return params["fill_value"]
        value = np.asarray(self.fill_value, np.float32)
        if value.ndim:
            value = value.reshape((1, 3, 1, 1) if self.data_format == "channels_first"
                                  else (1, 1, 1, 3))
        return ops.clip(ops.zeros_like(x) + value, self.value_range[0], self.value_range[1])

    def transform(self, x, params):
        masks = box_masks(x.shape, params["boxes"], self.data_format)
        erased = ops.where(masks, self._fill(x, params), x)
        return ops.where(per_sample(params["apply_erasing"], 4), erased, x)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor, "scale": self.scale,
                "fill_value": self.fill_value, "value_range": self.value_range}
