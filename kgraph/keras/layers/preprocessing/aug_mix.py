"""`AugMix` of Keras 3.15 inside the graph: `num_chains` chains of up to `chain_depth`
augmentations (each step one of Keras' layers or none), the chains mixed with Dirichlet
(`alpha`) weights, the mix blended with the original by a Beta(`alpha`, `alpha`) weight and
clipped to `value_range`. As Keras, the chains' layers are chosen with Python's `random` when
the call is traced (Keras' `py_random.choice`; so a compiled step keeps its chains, as a
jitted Keras step does); here that generator is seeded by the layer seed. The layers' draws
and the weights come from the step's rng key."""
from __future__ import annotations

import random

from kgraph import ops
from kgraph.keras.layers.preprocessing.color import ImageLayer, base_factor
from kgraph.keras.layers.preprocessing.mixing import gamma_draw
from kgraph.keras.layers.preprocessing.rand_augment import augment_layers

__all__ = ["AugMix"]

AUGMENT_LAYERS = ("random_shear", "random_translation", "random_rotation",
                  "random_posterization", "solarization", "auto_contrast", "equalization")
AUGMENT_LAYERS_ALL = AUGMENT_LAYERS + ("random_brightness", "random_color_degeneration",
                                       "random_contrast", "random_sharpness")


class AugMix(ImageLayer):
    """AugMix augmentation (Hendrycks et al. 2020), training only.

    Args:
        value_range: the range of the pixel values (default `(0, 255)`).
        num_chains: int, chains mixed (default 3).
        chain_depth: int, the most augmentations per chain (default 3).
        factor: float or pair in [0, 1] (default 0.3), the strength of each augmentation.
        alpha: float > 0, the Dirichlet and Beta concentration (default 1.0).
        all_ops: bool, also brightness, colour degeneration, contrast and sharpness
            (default True).
        interpolation: `"bilinear"` (default) or `"nearest"`, for the geometric layers.
        seed: int seed.
    """

    def __init__(self, value_range=(0, 255), num_chains=3, chain_depth=3, factor=0.3,
                 alpha=1.0, all_ops=True, interpolation="bilinear", seed=None,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range, self.num_chains, self.chain_depth = value_range, num_chains, \
            chain_depth
        self.factor = base_factor(factor, (0, 1))
        self.alpha, self.all_ops, self.interpolation = alpha, all_ops, interpolation
        self._names = AUGMENT_LAYERS_ALL if all_ops else AUGMENT_LAYERS
        self.__dict__["_chooser"] = random.Random(seed)

    def _chains(self):
        """Per chain, the layers of its steps (a step may be none), chosen now; each step's
        layer has a seed of its own, so that repeated layers draw apart."""
        chains = []
        for c in range(self.num_chains):
            names = [self._chooser.choice(self._names + (None,))
                     for _ in range(self.chain_depth)]
            chains.append([augment_layers((name,), self.factor, self.value_range,
                                          self.interpolation, self.data_format,
                                          self.seed, salt=1 + c * self.chain_depth + d)[0]
                           for d, name in enumerate(names) if name is not None])
        return chains

    def draw_params(self, x):
        seed = self.seed_generator.seed
        chain_like = self.draw(x, self.num_chains, stream=3)[0]
        gammas = gamma_draw(chain_like, seed ^ 0x3C6EF372, float(self.alpha))
        scalar = self.draw(x, 1, stream=3)[0, 0]
        first = gamma_draw(scalar, seed ^ 0xA54FF53A, float(self.alpha))
        second = gamma_draw(scalar, seed ^ 0x510E527F, float(self.alpha))
        return {"chain_mixing_weights": gammas / ops.sum(gammas),
                "weight_sample": first / (first + second), "chains": self._chains()}

    def transform(self, x, params):
        weights, mixed = params["chain_mixing_weights"], 0.0
        for index, chain in enumerate(params["chains"]):
            copied = x
            for layer in chain:
                copied = layer.augment(copied)
            mixed = mixed + copied * weights[index]
        weight = params["weight_sample"]
        return ops.clip(weight * x + (1.0 - weight) * mixed, self.value_range[0],
                        self.value_range[1])

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "num_chains": self.num_chains, "chain_depth": self.chain_depth,
                "factor": self.factor, "alpha": self.alpha, "all_ops": self.all_ops,
                "interpolation": self.interpolation}
