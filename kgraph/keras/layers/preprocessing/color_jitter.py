"""`RandomColorJitter` of Keras 3.15: `RandomBrightness`, `RandomContrast`,
`RandomSaturation` and `RandomHue` applied in that order, each only when its factor is given
(Keras' arguments and config). Each stage draws its own values from the step's rng key."""
from __future__ import annotations

from kgraph.keras.layers.preprocessing.augmentation import RandomBrightness, RandomContrast
from kgraph.keras.layers.preprocessing.color import ImageLayer, RandomHue, RandomSaturation

__all__ = ["RandomColorJitter"]


class RandomColorJitter(ImageLayer):
    """Random brightness, contrast, saturation and hue changes, in that order (training only).

    Args:
        value_range: the range of the pixel values (default `(0, 255)`).
        brightness_factor, contrast_factor, saturation_factor, hue_factor: the `factor` of
            `RandomBrightness`, `RandomContrast`, `RandomSaturation`, `RandomHue`; None
            (default) skips that stage.
        seed: int seed.

    Example:
        >>> RandomColorJitter(brightness_factor=0.2, hue_factor=0.1)(images)
    """

    def __init__(self, value_range=(0, 255), brightness_factor=None, contrast_factor=None,
                 saturation_factor=None, hue_factor=None, seed=None, data_format=None,
                 **kwargs):
        super().__init__(seed=seed, data_format=data_format, **kwargs)
        self.value_range = value_range
        self.brightness_factor, self.contrast_factor = brightness_factor, contrast_factor
        self.saturation_factor, self.hue_factor = saturation_factor, hue_factor
        stages = [(RandomBrightness, brightness_factor), (RandomContrast, contrast_factor),
                  (RandomSaturation, saturation_factor), (RandomHue, hue_factor)]
        # one seed per stage, so that the stages' draws differ (Keras draws all four from
        # the jitter's own generator)
        self._stages = [cls(factor=factor, value_range=value_range,
                            seed=None if seed is None else seed + 7919 * (i + 1),
                            data_format=self.data_format)
                        for i, (cls, factor) in enumerate(stages) if factor is not None]

    def augment(self, x):
        for stage in self._stages:
            x = stage.augment(x)
        return x

    def get_config(self):
        return {**super().get_config(), "value_range": self.value_range,
                "brightness_factor": self.brightness_factor,
                "contrast_factor": self.contrast_factor,
                "saturation_factor": self.saturation_factor, "hue_factor": self.hue_factor}
