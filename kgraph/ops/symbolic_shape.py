"""Dimensions unknown while tracing, as values of the graph (`keras.ops.shape` of a traced tensor).

On TensorFlow, Keras' `ops.shape(x)` is a tuple whose unknown dims are scalar int32 tensors; kgraph
does the same. A dim unknown at trace time (the batch, the length of an `Input(shape=(None,))`)
is `dim(x, axis)`: an int32 scalar computed from x's run-time shape (a `Count` of that axis,
which ONNX emits as Shape + Gather), while known dims stay Python ints. Such dims compute with
ints (`+ - * //`) and go wherever an op takes a shape, a size or a count (`reshape`,
`broadcast_to`, `ones`/`zeros`/`full`, `keras.random.*`, `tile`, `arange`, slicing).

`as_dims` reads a shape argument (ints, dims, or a 1-D int tensor such as an `ops.concatenate`
of dims) into a list of ints and int scalars; `shape_tensor` turns that list into the int64
target a Reshape or Expand takes: a Concat of constant runs and one-element pieces, where a dim
of a tensor is a Slice of its Shape (the form TVM's importer keeps as a shape expression).
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.graph import Value
from kgraph.ops import elementwise as ew
from kgraph.ops.api_util import is_symbolic, shape_of
from kgraph.ops.registry import apply


def dim(x, axis):
    """Dim `axis` of `x`: an int when it is known, else an int32 scalar of the graph."""
    size = shape_of(x)[axis]
    if size is not None:
        return int(size)
    return ew.cast(apply("Count", x, axes=(axis % len(shape_of(x)),)), "int32")


def shape(x) -> tuple:
    """`keras.ops.shape`: a tuple of x's dims; those unknown while tracing are `dim(x, i)`.

    Example:

    >>> shape(np.zeros((2, 5)))
    (2, 5)
    """
    dims = shape_of(x)
    if None not in dims or not is_symbolic(x):
        return tuple(None if d is None else int(d) for d in dims)  # KerasTensors keep None
    return tuple(dim(x, i) for i in range(len(dims)))


def source_of(d):
    """`(x, axis)` when `d` is `dim(x, axis)`, else None."""
    if not isinstance(d, Value):
        return None
    node = d.node
    if node.op == "Cast":
        node = node.inputs[0].node
    if node.op == "Count" and len(node.attrs["axes"]) == 1:
        return node.inputs[0], node.attrs["axes"][0]
    return None


def constant_int(d):
    """`d` as a Python int when its value is known while tracing (an int, a 0-d int array,
    a scalar Constant of the graph), else None."""
    if isinstance(d, Value):
        if d.node.op == "Constant" and d.shape == () and _is_int_dtype(d.dtype):
            return int(d.node.attrs["value"])
        return None
    if isinstance(d, (bool, np.bool_)):
        return None
    if isinstance(d, (int, np.integer)):
        return int(d)
    if isinstance(d, np.ndarray) and d.ndim == 0 and d.dtype.kind in "iu":
        return int(d)
    return None


def is_dim(d) -> bool:
    """True for an int scalar of the graph being traced (a dim from `ops.shape`, or one
    computed from dims)."""
    return isinstance(d, Value) and d.shape == () and _is_int_dtype(d.dtype)


def as_dims(shape, op) -> list:
    """A shape argument as a list of ints, int scalars of the graph and Nones: an int, a
    sequence of them, or a 1-D int tensor (`ops.concatenate` of dims and constants). One int
    scalar of the graph is one dim, as one int is (`tf.ones(tf.shape(x)[0])`)."""
    if constant_int(shape) is not None:
        return [constant_int(shape)]
    if is_dim(shape):
        return [shape]
    if isinstance(shape, Value):
        if len(shape.shape) != 1 or shape.shape[0] is None or not _is_int_dtype(shape.dtype):
            raise TypeError(f"{op}: a shape given as a tensor must be 1-D, of known length and "
                            f"integer. Received: {shape!r}")
        return _entries(shape)
    if isinstance(shape, np.ndarray):
        return [int(d) for d in shape.reshape(-1)]
    out = []
    for d in shape:
        known = constant_int(d)
        if known is not None or d is None:
            out.append(known)
        elif is_dim(d):
            out.append(d)
        else:
            raise TypeError(f"{op}: every dim must be an int or an int scalar tensor (a dim of "
                            f"`ops.shape(x)`). Received: shape={tuple(shape)!r}")
    return out


def fill_open_dim(dims) -> list:
    """`dims` with one None taken as the traced graph's open input dim. A static `x.shape[0]`
    is None in a layer's `call` even when it runs on an eager batch (kgraph traces that call
    with the batch open, where Keras would see its size: `ops.zeros((inputs.shape[0], units))`
    in the keras.io functional API guide), so it stands for the graph's first input dim of
    unknown size. Outside tracing, or with several Nones, `dims` come back unchanged."""
    from kgraph.ir.graph import current_graph

    graph = current_graph()
    if graph is None or sum(1 for d in dims if d is None) != 1:
        return dims
    ref = next((v for v in graph.inputs if None in tuple(v.shape)), None)
    if ref is None:
        return dims
    open_dim = dim(ref, tuple(ref.shape).index(None))
    return [open_dim if d is None else d for d in dims]


def has_dims(dims) -> bool:
    return any(isinstance(d, Value) for d in dims)


def static_dims(dims) -> tuple:
    """The static shape `dims` promise: ints stay, dims of the graph are unknown (None)."""
    return tuple(d if isinstance(d, int) else None for d in dims)


def shape_tensor(dims, op):
    """The int64 target of a Reshape or Expand to `dims` (ints and dims of the graph): a numpy
    array when all are ints, else a Concat of constant runs and one-element pieces."""
    if not has_dims(dims):
        if None in dims:
            raise ValueError(f"{op}: a None dim has no size. Use the tensor's own dim "
                             f"(`ops.shape(x)[i]`) for one unknown while tracing. Received: "
                             f"shape={tuple(dims)}")
        return np.asarray(dims, np.int64)
    graph = next(d.graph for d in dims if isinstance(d, Value))
    pieces, run = [], []
    for d in dims:
        if d is None:
            raise ValueError(f"{op}: a None dim has no size. Use the tensor's own dim "
                             f"(`ops.shape(x)[i]`) for one unknown while tracing. Received: "
                             f"shape={tuple(dims)}")
        if isinstance(d, int):
            run.append(d)
            continue
        if run:
            pieces.append(graph.constant(np.asarray(run, np.int64)))
            run = []
        pieces.append(_one_element(d))
    if run:
        pieces.append(graph.constant(np.asarray(run, np.int64)))
    return pieces[0] if len(pieces) == 1 else apply("Concat", *pieces, axis=0)


def _one_element(d):
    source = source_of(d)
    if source is not None:
        x, axis = source
        return apply("Slice", apply("Shape", x), starts=(axis,), ends=(axis + 1,), axes=(0,))
    return apply("Reshape", ew.cast(d, "int64"), shape=(1,))


def _entries(v) -> list:
    """The entries of a 1-D int tensor: ints where they are constants of the graph, and the
    scalars that were put in elsewhere (`ops.expand_dims(batch, -1)` concatenated with
    constants gives `batch` back), else one Gather per entry."""
    node = v.node
    if node.op == "Constant":
        return [int(e) for e in np.asarray(node.attrs["value"]).reshape(-1)]
    if node.op == "Concat" and node.attrs["axis"] == 0 and all(
            len(p.shape) == 1 and p.shape[0] is not None for p in node.inputs):
        return [e for p in node.inputs for e in _entries(p)]
    if node.op == "Cast" and _is_int_dtype(node.inputs[0].dtype):
        return [e if isinstance(e, int) else ew.cast(e, v.dtype)
                for e in _entries(node.inputs[0])]
    if node.op == "Reshape" and len(node.inputs) == 1 and node.inputs[0].shape == ():
        scalar = node.inputs[0]
        known = constant_int(scalar)
        return [known if known is not None else scalar]
    out = []
    for i in range(v.shape[0]):
        out.append(apply("Gather", v, np.asarray(i, np.int64), axis=0))
    return out


def _is_int_dtype(dtype) -> bool:
    return str(dtype).startswith(("int", "uint"))
