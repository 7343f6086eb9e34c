"""`RMSNormalization` (Keras 3): `x * rsqrt(mean(x**2, axis) + epsilon) * scale`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.layers.base import Layer

__all__ = ["RMSNormalization"]


class RMSNormalization(Layer):
    """Root-mean-square normalization (Zhang and Sennrich, 2019): divides inputs by the root
    mean square over `axis` and multiplies by a trainable `scale` (initialized to ones).

    Args:
        axis: int or list of ints, the axes normalized over (default -1).
        epsilon: small float added to the mean square (default 1e-6).

    Example:
        >>> RMSNormalization()(np.array([[3.0, 4.0]], "float32"))  # [[0.8485, 1.1314]]
    """

    def __init__(self, axis=-1, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.epsilon = axis, epsilon

    def build(self, input_shape):
        if isinstance(self.axis, (list, tuple)):
            shape = tuple(input_shape[d] for d in self.axis)
            self.axis = list(self.axis)
        else:
            shape = (input_shape[self.axis],)
            self.axis = [self.axis]
        if None in shape:
            raise ValueError(f"RMSNormalization needs known sizes along `axis`. Received: "
                             f"axis={self.axis}, input_shape={tuple(input_shape)}")
        self.scale = self.add_weight(name="scale", shape=shape, initializer="ones")
        self.built = True

    def call(self, x):
        return ops.rms_normalization(x, scale=self.scale, axis=tuple(self.axis),
                                     epsilon=self.epsilon)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "epsilon": self.epsilon}
