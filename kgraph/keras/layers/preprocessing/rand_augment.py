"""`RandAugment` of Keras 3.15 inside the graph: `num_ops` times, one of eleven augmentation
layers (Keras' list and order: shear, translation, rotation, brightness, colour degeneration,
contrast, sharpness, posterization, solarization, auto-contrast, equalization), drawn once per
batch, is applied to the whole batch; each layer is built with Keras' arguments from `factor`.
Every candidate is computed and the drawn one selected, as Keras does."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.layers.preprocessing.affine import RandomRotation, RandomTranslation
from kgraph.keras.layers.preprocessing.augmentation import RandomBrightness, RandomContrast
from kgraph.keras.layers.preprocessing.blur_shear import RandomShear
from kgraph.keras.layers.preprocessing.color import (AutoContrast, Equalization, ImageLayer,
                                                     RandomColorDegeneration,
                                                     RandomPosterization, RandomSharpness,
                                                     Solarization, base_factor)

__all__ = ["RandAugment"]


class RandAugment(ImageLayer):
    """Applies `num_ops` randomly chosen augmentations of strength `factor` (training only).

    Args:
        value_range: the range of the pixel values (default `(0, 255)`).
        num_ops: int, how many augmentations in a row (default 2).
        factor: float or pair in [0, 1] (default 0.5), the strength given to each layer.
        interpolation: `"bilinear"` (default) or `"nearest"`, for the geometric layers.
        seed: int seed.
    """

    def __init__(self, value_range=(0, 255), num_ops=2, factor=0.5, interpolation="bilinear",
                 seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range, self.num_ops, self.interpolation = value_range, num_ops, interpolation
        self.factor = base_factor(factor, (0, 1))
        f, fmt, rng = self.factor, self.data_format, value_range

        def seed_of(i):  # one seed per candidate, so that their draws differ
            return None if seed is None else seed + 7919 * (i + 1)

        self._candidates = [
            RandomShear(x_factor=f, y_factor=f, interpolation=interpolation, seed=seed_of(0),
                        data_format=fmt),
            RandomTranslation(f, f, interpolation=interpolation, seed=seed_of(1),
                              data_format=fmt),
            RandomRotation(f, interpolation=interpolation, seed=seed_of(2), data_format=fmt),
            RandomBrightness(f, value_range=rng, seed=seed_of(3), data_format=fmt),
            RandomColorDegeneration(f, value_range=rng, seed=seed_of(4), data_format=fmt),
            RandomContrast(f, value_range=rng, seed=seed_of(5), data_format=fmt),
            RandomSharpness(f, value_range=rng, seed=seed_of(6), data_format=fmt),
            RandomPosterization(max(1, int(8 * f[1])), value_range=rng, seed=seed_of(7),
                                data_format=fmt),
            Solarization(addition_factor=f, threshold_factor=f, value_range=rng,
                         seed=seed_of(8), data_format=fmt),
            AutoContrast(value_range=rng, data_format=fmt),
            Equalization(value_range=rng, data_format=fmt)]

    def draw_params(self, x):
        u = self.draw(x, self.num_ops, stream=2)[0]  # one choice per op for the batch
        return {"layer_idxes": ops.floor(u * float(len(self._candidates)))}

    def transform(self, x, params):
        # each candidate's draws are a pure function of the step key and its seed: the same
        # in every op, as Keras draws each layer's transformation once
        for i in range(self.num_ops):
            chosen = params["layer_idxes"][i]
            out = x
            for index, layer in enumerate(self._candidates):
                out = ops.where(ops.equal(chosen, float(index)), layer.augment(x), out)
            x = out
        return x

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "num_ops": self.num_ops, "factor": self.factor,
                "interpolation": self.interpolation}
