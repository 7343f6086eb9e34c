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


RAND_AUGMENT_LAYERS = ("random_shear", "random_translation", "random_rotation",
                       "random_brightness", "random_color_degeneration", "random_contrast",
                       "random_sharpness", "random_posterization", "solarization",
                       "auto_contrast", "equalization")


def augment_layers(names, factor, value_range, interpolation, data_format, seed, salt=0):
    """The layers named as Keras' RandAugment/AugMix attributes, built with their arguments
    from `factor`; each gets its own seed (from `seed` and `salt`), so their draws differ."""
    f, fmt, rng = factor, data_format, value_range

    def seed_of(i):
        return None if seed is None else seed + 7919 * (i + 1) + 104729 * salt

    makers = {
        "random_shear": lambda s: RandomShear(x_factor=f, y_factor=f,
                                              interpolation=interpolation, seed=s,
                                              data_format=fmt),
        "random_translation": lambda s: RandomTranslation(f, f, interpolation=interpolation,
                                                          seed=s, data_format=fmt),
        "random_rotation": lambda s: RandomRotation(f, interpolation=interpolation, seed=s,
                                                    data_format=fmt),
        "random_brightness": lambda s: RandomBrightness(f, value_range=rng, seed=s,
                                                        data_format=fmt),
        "random_color_degeneration": lambda s: RandomColorDegeneration(
            f, value_range=rng, seed=s, data_format=fmt),
        "random_contrast": lambda s: RandomContrast(f, value_range=rng, seed=s,
                                                    data_format=fmt),
        "random_sharpness": lambda s: RandomSharpness(f, value_range=rng, seed=s,
                                                      data_format=fmt),
        "random_posterization": lambda s: RandomPosterization(
            max(1, int(8 * f[1])), value_range=rng, seed=s, data_format=fmt),
        "solarization": lambda s: Solarization(addition_factor=f, threshold_factor=f,
                                               value_range=rng, seed=s, data_format=fmt),
        "auto_contrast": lambda s: AutoContrast(value_range=rng, data_format=fmt),
        "equalization": lambda s: Equalization(value_range=rng, data_format=fmt)}
    return [makers[name](seed_of(i)) for i, name in enumerate(names)]


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
        self._candidates = augment_layers(RAND_AUGMENT_LAYERS, self.factor, value_range,
                                          interpolation, self.data_format, seed)

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
