"""`Pipeline`: a plain layer that applies a list of layers in turn (Keras 3's preprocessing
pipeline; not a `Model`). `training` defaults to True, as Keras', and reaches the layers
that take it, so augmentation layers in a pipeline augment on a direct call and in `fit` and
pass images through in `predict`; masks travel from layer to layer."""
from __future__ import annotations

from kgraph.keras.layers.base import Layer, _mask_of
from kgraph.keras.layers.wrapper import deserialize, serialize

__all__ = ["Pipeline"]


class Pipeline(Layer):
    """Applies a series of layers to an input.

    Args:
        layers: list of layer instances, applied in order.
        name: optional layer name.

    Example:
        >>> augment = Pipeline([RandomFlip(), RandomRotation(0.1), Rescaling(1 / 255)])
        >>> augment(images).shape == images.shape
    """

    def __init__(self, layers, name=None):
        super().__init__(name=name)
        self._pipeline_layers = layers

    @property
    def layers(self):
        return self._pipeline_layers

    def call(self, inputs, training=True, mask=None):
        outputs = inputs
        for layer in self._pipeline_layers:
            kwargs = {}
            if mask is not None and layer._accepts("mask"):
                kwargs["mask"] = mask
            if training is not None and layer._accepts("training"):
                kwargs["training"] = training
            outputs = layer(inputs, **kwargs)
            inputs, mask = outputs, _mask_of(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        for layer in self._pipeline_layers:
            input_shape = layer.compute_output_shape(input_shape)
        return input_shape

    @classmethod
    def from_config(cls, config):
        layers = config.get("layers")
        if not isinstance(layers, (list, tuple)):
            raise ValueError(f"`Pipeline` config must contain a `layers` key mapping to a "
                             f"list of serialized layers. Received config with "
                             f"layers={layers}.")
        return cls(**{**config, "layers": [deserialize(layer) for layer in layers]})

    def get_config(self):
        return {"layers": [serialize(layer) for layer in self._pipeline_layers],
                "name": self.name}
