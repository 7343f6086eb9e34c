"""`tf.TensorShape`: a tensor's static shape as TensorFlow code reads it
(`x.get_shape().as_list()` in keras.io's Swin Transformer example); unknown dims are None."""
from __future__ import annotations


class TensorShape(tuple):
    """A tuple of dims (ints, or None where unknown while tracing) with TensorFlow's methods."""

    def __new__(cls, dims):
        return super().__new__(cls, (None if d is None else int(d) for d in dims))

    def as_list(self):
        """The dims as a list."""
        return list(self)

    @property
    def rank(self):
        return len(self)

    def __repr__(self):
        return f"TensorShape({list(self)})"
