"""`keras.layers.Wrapper` (a layer that wraps another), `keras.layers.serialize` /
`deserialize`, which its config uses, and `keras.layers.InputSpec`."""
from __future__ import annotations

from kgraph.keras.layers.base import Layer


def serialize(layer):
    """The Keras 3 config dict of `layer` (`keras.layers.serialize`)."""
    from kgraph.keras.saving.serialization_lib import serialize_keras_object

    return serialize_keras_object(layer)


def deserialize(config, custom_objects=None):
    """A layer from its config dict (`keras.layers.deserialize`); custom classes come from
    `custom_objects` or `register_keras_serializable`, never from modules a config names."""
    from kgraph.keras.saving.serialization_lib import deserialize_keras_object

    return deserialize_keras_object(config, custom_objects)


class Wrapper(Layer):
    """Base class of layers that wrap another layer (`keras.layers.Wrapper`).

    Args:
        layer: the `keras.layers.Layer` instance to wrap.

    Example:

    >>> class Twice(keras.layers.Wrapper):
    ...     def call(self, x):
    ...         return self.layer(self.layer(x))
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Wrapper: `layer` must be a keras Layer instance. Received: "
                             f"layer={layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer.build(input_shape)
            self.layer.built = True
        self.built = True

    def call(self, inputs, *args, **kwargs):
        return self.layer(inputs, *args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "layer": serialize(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = deserialize(config["layer"], custom_objects)
        return cls(**config)


class InputSpec:
    """What a layer accepts as input (`keras.layers.InputSpec`): `ndim`, `min_ndim`,
    `max_ndim`, `shape` (None entries free), `axes` ({axis: size}) and `dtype`. A layer that
    sets `self.input_spec` has symbolic inputs checked against it when called."""

    def __init__(self, dtype=None, shape=None, ndim=None, max_ndim=None, min_ndim=None,
                 axes=None, allow_last_axis_squeeze=False, name=None, optional=False):
        self.dtype, self.name, self.optional = dtype, name, optional
        self.shape = tuple(shape) if shape is not None else None
        self.ndim = len(self.shape) if self.shape is not None else ndim
        self.max_ndim, self.min_ndim = max_ndim, min_ndim
        self.allow_last_axis_squeeze = allow_last_axis_squeeze
        self.axes = {int(k): v for k, v in (axes or {}).items()}

    def problem(self, shape) -> str | None:
        """Why a tensor of `shape` does not fit, or None when it does."""
        rank = len(shape)
        for bound, ok in ((self.ndim, rank == self.ndim), (self.min_ndim, rank >= (
                self.min_ndim or 0)), (self.max_ndim, rank <= (self.max_ndim or rank))):
            if bound is not None and not ok:
                return f"expected ndim={self.ndim}, min_ndim={self.min_ndim}, " \
                       f"max_ndim={self.max_ndim}, found ndim={rank}"
        for axis, size in self.axes.items():
            if size is not None and abs(axis) <= rank and shape[axis] not in (size, None):
                return f"expected axis {axis} of input shape to have value {size}"
        if self.shape is not None:
            for want, got in zip(self.shape, shape):
                if want is not None and got is not None and want != got:
                    return f"expected shape={self.shape}"
        return None

    def get_config(self):
        return {"dtype": self.dtype, "shape": self.shape, "ndim": self.ndim,
                "max_ndim": self.max_ndim, "min_ndim": self.min_ndim, "axes": self.axes}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"InputSpec({', '.join(f'{k}={v}' for k, v in self.get_config().items() if v)})"
