"""Layers that run on the host, before the compiled graph: string lookups, `TextVectorization`,
`Hashing`, `HashedCrossing`, `keras.utils.FeatureSpace`. They take numpy arrays
(string/object/bytes or integer dtype) or lists, and return numpy arrays. Apply them to the
data (`layer(x)`, or `dataset.map(...)`), or call them on a model's `keras.Input` (a string
one among them) or on another host layer's output: that call gives a KerasTensor and records a
host node, and the functional model runs its host nodes in numpy on each batch before its
compiled part (`kgraph/keras/models/host_prefix.py`). The graph itself never carries
strings."""
from __future__ import annotations

import numpy as np

from kgraph.keras.layers.base import KerasTensor, Layer
from kgraph.keras.tree import flatten, map_structure, pack_like

__all__ = []


class HostLayerError(TypeError):
    """A host-side preprocessing layer was called on a tensor of the compiled graph."""


class StringInputError(TypeError):
    """A layer that runs in the compiled graph was called on a string tensor."""


STRING_LAYERS = ("StringLookup, TextVectorization, Hashing, HashedCrossing (and "
                 "keras.ops.expand_dims/squeeze/reshape)")


def string_input_error(what, tensor):
    return StringInputError(
        f"{what} cannot take the string tensor {tensor.name!r}: kgraph's compiled graph "
        f"carries no strings. Only host-side layers take strings ({STRING_LAYERS}); turn "
        f"the strings into integers or floats with one of them first. Received: {tensor!r}")


def on_host(tensor) -> bool:
    """Whether a KerasTensor is known before the compiled graph runs: a model `Input` or the
    output of a host node."""
    from kgraph.keras.layers.core import InputLayer

    history = tensor._keras_history
    return tensor.dtype == "string" or getattr(tensor, "_on_host", False) or (
        history is not None and isinstance(history[0], InputLayer))


# preprocessing layers of the compiled graph that may run on the host as well, eagerly
HOST_RUNNABLE = ("IntegerLookup", "Discretization", "Normalization", "Rescaling",
                 "CategoryEncoding", "TFDIdentity")


def pull_to_host(tensor) -> bool:
    """Whether `tensor` can be known on the host: it is, or it is the output of a
    preprocessing layer (`HOST_RUNNABLE`) whose inputs can be; that layer's call then becomes
    a host node (run eagerly on each batch, before the compiled part). Keras models built on a
    FeatureSpace cross the outputs of IntegerLookup and Discretization with HashedCrossing."""
    if on_host(tensor):
        return True
    history = tensor._keras_history
    if history is None or type(history[0]).__name__ not in HOST_RUNNABLE:
        return False
    node = history[0]._inbound_nodes[history[1]]
    if not node.inputs or not all(pull_to_host(t) for t in node.inputs):
        return False
    node.runs_on_host = True
    for out in node.outputs:
        out._on_host = True
    return True


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
    if isinstance(inputs, np.ndarray) and (inputs.dtype != object or inputs.ndim > 1):
        return None  # a ragged batch is a 1-D object array of rows
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


class HostOutput:
    """The shape and dtype of one output of a host node."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = tuple(shape), dtype


class HostLayer(Layer):
    """Base of host-side preprocessing layers: subclasses implement `host_call(inputs)`.
    Leading a Sequential without an `Input`, they run on the data given to `fit`, `evaluate`,
    `predict` or a call, and the compiled graph starts after them. Called on a model `Input`
    (a string one among them) or another host layer's output, they are host nodes of the
    functional model (kgraph/keras/models/host_prefix.py)."""

    runs_in_graph = False  # True: a subclass that also has an in-graph call (IntegerLookup)
    takes_strings_only = False  # TextVectorization: a symbolic call on numbers is refused

    def __call__(self, inputs, *args, **kwargs):
        if any(isinstance(t, KerasTensor) for t in flatten(inputs)):
            return self._host_node(inputs, args, kwargs)
        if any(type(t).__name__ == "Value" for t in flatten(inputs)):
            raise HostLayerError(
                f"{type(self).__name__} layer {self.name!r} runs on the host, in numpy, and "
                f"cannot be called inside a traced function: apply it to the data first, "
                f"e.g. `dataset.map(lambda x, y: (layer(x), y))`. Received: {inputs!r}")
        from kgraph.keras.layers.base import EagerTensor

        self.built = True
        outputs = self.host_call(inputs, *args, **kwargs)
        # eager results, as every eager layer call's (`lookup(labels).numpy()`)
        return outputs.view(EagerTensor) if isinstance(outputs, np.ndarray) else outputs

    def _host_node(self, inputs, args, kwargs):
        """A symbolic call: KerasTensors of the output's shape and dtype, recorded as a host
        node of the layer graph (run in numpy before the compiled part of the model). The
        inputs may be a list or dict of tensors (HashedCrossing, FeatureSpace), and so may the
        outputs (`host_output_specs`)."""
        for tensor in flatten(inputs):
            if not isinstance(tensor, KerasTensor) or not pull_to_host(tensor):
                history = getattr(tensor, "_keras_history", None)
                producer = history[0].name if history else None
                raise HostLayerError(
                    f"{type(self).__name__} layer {self.name!r} runs on the host, before the "
                    f"compiled graph: call it on model Inputs (string Inputs among them) or on "
                    f"other host layers' outputs, not on the output of layer {producer!r}, "
                    f"which runs in the compiled graph. Received: {tensor!r}")
            if self.takes_strings_only and tensor.dtype != "string":
                raise HostLayerError(f"{type(self).__name__} layer {self.name!r} takes "
                                     f"strings. Received an input of dtype {tensor.dtype}: "
                                     f"{tensor!r}")
        from kgraph.keras.layers.base import CallNode

        self.built = True
        specs = self.host_output_specs(map_structure(lambda t: tuple(t.shape), inputs))
        node_index, leaves = len(self._inbound_nodes), []
        for spec in flatten(specs):
            out = KerasTensor(spec.shape, spec.dtype, name=self.name,
                              history=(self, node_index, len(leaves)))
            out._on_host, out._mask_spec = True, None
            leaves.append(out)
        self._inbound_nodes.append(CallNode(self, (inputs,) + tuple(args), kwargs, leaves))
        return pack_like(specs, leaves)

    def host_output_specs(self, input_shapes):
        """The `HostOutput` of a symbolic call, or a structure of them (a dict of outputs)."""
        return HostOutput(self.compute_output_shape(input_shapes), self.host_output_dtype())

    def host_output_dtype(self):
        """The dtype of `host_call`'s result, as Keras names it."""
        if getattr(self, "invert", False):
            return "string"
        return "int64" if getattr(self, "output_mode", "int") == "int" else "float32"

    def encode(self, indices, depth, count_weights=None, idf_weights=None):
        return encode_host(indices, self.output_mode, depth, count_weights, idf_weights)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


HOST_OPS = {"expand_dims": np.expand_dims, "squeeze": np.squeeze, "reshape": np.reshape}


class _HostOp(HostLayer):
    """`keras.ops.expand_dims/squeeze/reshape(strings, ...)` on a string KerasTensor (the
    keras.io wide & deep example's `expand_dims` before a lookup): a host node run in numpy."""

    def __init__(self, op, arguments, **kwargs):
        from kgraph.keras.layers.base import unique_name

        super().__init__(name=kwargs.pop("name", None) or unique_name(op), **kwargs)
        self.op, self.arguments = op, arguments  # (args after the tensor, kwargs)

    def host_call(self, inputs):
        args, kwargs = self.arguments
        return HOST_OPS[self.op](as_host_array(inputs), *args, **kwargs)

    def compute_output_shape(self, input_shape):
        probe = np.empty([2 if d is None else d for d in input_shape], dtype=object)
        return (None,) + self.host_call(probe).shape[1:]

    def host_output_dtype(self):
        return "string"

    def get_config(self):
        return {**super().get_config(), "op": self.op, "arguments": self.arguments}


def host_op(fn, args, kwargs, tensors):
    """A keras.ops call whose only tensor is a string KerasTensor, passed first."""
    name = getattr(fn, "__name__", repr(fn))
    if name not in HOST_OPS or len(tensors) != 1 or any(t is tensors[0] for t in args[1:]):
        raise string_input_error(f"keras.ops.{name}", tensors[0])
    return _HostOp(name, (list(args[1:]), dict(kwargs)))(tensors[0])
