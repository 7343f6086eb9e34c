"""`tf.image`: the image functions of `import tensorflow as tf` code (the keras.io involution
example's `tf.image.extract_patches`), each the `keras.ops.image` function of the same
meaning under TensorFlow's argument names and conventions."""
from __future__ import annotations

from kgraph.keras import ops

__all__ = ["extract_patches"]


def _spatial(values, what):
    """TensorFlow's 4-element `[1, h, w, 1]` window arguments as `(h, w)`."""
    values = [int(v) for v in values]
    if len(values) != 4 or values[0] != 1 or values[3] != 1:
        raise ValueError(f"tf.image.extract_patches: {what} must be [1, rows, cols, 1]. "
                         f"Received: {what}={values}")
    return values[1], values[2]


def extract_patches(images, sizes, strides, rates, padding, name=None):
    """`tf.image.extract_patches`: each `sizes` window of `(batch, h, w, c)` images flattened
    into the channels (`rows * cols * c` values, row-major, channels fastest).

    Args:
        images: `(batch, h, w, c)` tensor.
        sizes, strides, rates: `[1, rows, cols, 1]` window size, step and dilation.
        padding: `"VALID"` or `"SAME"`.

    Returns:
        `(batch, out_rows, out_cols, rows * cols * c)`.

    Example:
    >>> extract_patches(np.zeros((1, 4, 4, 1)), [1, 2, 2, 1], [1, 2, 2, 1], [1, 1, 1, 1],
    ...                 "VALID").shape
    (1, 2, 2, 4)
    """
    return ops.image.extract_patches(
        images, _spatial(sizes, "sizes"), strides=_spatial(strides, "strides"),
        dilation_rate=_spatial(rates, "rates"), padding=str(padding).lower(),
        data_format="channels_last")
