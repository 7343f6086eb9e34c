"""Layers that run on the host, before the compiled graph: string lookups, `TextVectorization`,
`Hashing`. They take numpy arrays (string/object/bytes or integer dtype) or lists, and return
numpy arrays; apply them to the data (`layer(x)`, or `dataset.map(...)`) and feed the
result to the model. The graph has no string tensors, so a symbolic call on a `keras.Input`
raises `HostLayerError` with that advice."""
from __future__ import annotations

import numpy as np

from kgraph.keras.layers.base import KerasTensor, Layer

__all__ = []


class HostLayerError(TypeError):
    """A host-side preprocessing layer was called inside a model (on symbolic tensors)."""


def as_host_array(inputs):
    """`inputs` as a numpy array; strings stay Python strings (object dtype)."""
    if hasattr(inputs, "numpy") and not isinstance(inputs, np.ndarray):
        inputs = inputs.numpy()
    array = np.asarray(inputs)
    if array.dtype.kind in "US":
        array = array.astype(object)
    if array.dtype == object:
        array = np.vectorize(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v,
                             otypes=[object])(array) if array.size else array
    return array


def ragged_rows(inputs):
    """The rows of a ragged batch as a list of 1-D host arrays, or None for a regular input.
    A ragged batch is a list (or object array) of token sequences of different lengths, the
    data TensorFlow code wraps in `tf.ragged.constant` (the keras.io multi-label example's
    lists of subject terms); kgraph has no ragged tensors."""
    if isinstance(inputs, np.ndarray) and inputs.dtype != object:
        return None
    if not isinstance(inputs, (list, tuple, np.ndarray)) or len(inputs) == 0:
        return None
    rows = list(inputs)
    if not all(isinstance(r, (list, tuple, np.ndarray)) for r in rows):
        return None
    if not isinstance(inputs, np.ndarray) and len({len(r) for r in rows}) == 1:
        return None  # a rectangular list of lists: a regular 2-D batch
    return [as_host_array(np.asarray(r, dtype=object)).ravel() for r in rows]


class RowBatches:
    """Rows given one at a time as `(1, n)` batches to an `adapt()`, so that tf_idf's document
    frequencies count rows (TextVectorization's documents, ragged lookup rows)."""

    def __init__(self, rows):
        self.rows = rows

    def __iter__(self):
        return (np.asarray(row, dtype=object)[None] for row in self.rows)


def encode_host(indices, output_mode, depth, count_weights=None, idf_weights=None):
    """numpy version of `encode_categorical` (with `tf_idf`: counts times `idf_weights`)."""
    if output_mode == "int":
        return indices.astype(np.int64)
    if indices.ndim == 0:
        indices = indices[None]
    if output_mode == "one_hot":
        if indices.ndim > 1 and indices.shape[-1] == 1:
            indices = indices[..., 0]
        return np.eye(depth, dtype=np.float32)[indices]
    eye = np.eye(depth, dtype=np.float32)[indices]
    axis = 1 if indices.ndim > 1 else 0
    if output_mode == "multi_hot":
        return eye.max(axis=axis)
    if count_weights is not None:
        eye = eye * np.asarray(count_weights, np.float32)[..., None]
    counts = eye.sum(axis=axis)
    if output_mode == "tf_idf":
        return (counts * np.asarray(idf_weights, np.float32)).astype(np.float32)
    return counts


class HostLayer(Layer):
    """Base of host-side preprocessing layers: subclasses implement `host_call(inputs)`.
    Leading a Sequential without an `Input`, they run on the data given to `fit`, `evaluate`,
    `predict` or a call, and the compiled graph starts after them."""

    runs_in_graph = False  # True: a subclass that also has an in-graph call (IntegerLookup)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, KerasTensor) or type(inputs).__name__ == "Value":
            raise HostLayerError(
                f"{type(self).__name__} layer {self.name!r} runs on the host (kgraph graphs have "
                f"no string tensors): apply it to the data before the model, e.g. "
                f"`x = layer(strings)` or `dataset.map(lambda x, y: (layer(x), y))`, and give "
                f"the model an integer/float Input (or make it a leading layer of a Sequential "
                f"without an Input). Received a symbolic input: {inputs!r}")
        from kgraph.keras.layers.base import EagerTensor

        self.built = True
        outputs = self.host_call(inputs, *args, **kwargs)
        # eager results, as every eager layer call's (`lookup(labels).numpy()`)
        return outputs.view(EagerTensor) if isinstance(outputs, np.ndarray) else outputs

    def encode(self, indices, depth, count_weights=None, idf_weights=None):
        return encode_host(indices, self.output_mode, depth, count_weights, idf_weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)
