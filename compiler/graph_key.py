"""The structural key of a traced graph: what the compiled program depends on, and nothing else.

Two graphs with equal keys compile to the same program, so the compile cache looks programs up
by this key BEFORE optimising or emitting anything. The key covers, node by node in traced
order: the op, its attributes (arrays by dtype, shape and content digest, never `repr`, which
numpy abbreviates), and its inputs as (node position, output index); every input's
name, shape and dtype; the output names and the values they read; the variable updates; the rng
key input. The graph's own name and node ids are left out.

With `variable_names=False` the names of inputs that hold variables are left out too: such
inputs are named by position in the compiled graph (`variable_input_name`), so two models of
the same architecture whose weights are called `dense/kernel` and `dense_1/kernel` share one
compiled program.
"""
from __future__ import annotations

import hashlib

import numpy as np

from kgraph.ir.graph import Graph

# Arrays up to this many bytes are keyed by their bytes; larger ones by a blake2b digest.
_INLINE_BYTES = 256


def variable_input_name(position: int) -> str:
    """The name a variable input gets in a compiled graph: its position among the inputs."""
    return f"var_{position}"


def graph_key(graph, variable_names: bool = True) -> tuple:
    """A hashable key equal for graphs that compile to the same program.

    Args:
        graph: a traced `kgraph.ir.graph.Graph`.
        variable_names: whether the names of variable inputs are part of the key. Pass False
            when the compiled graph names them by position (`variable_input_name`).

    Returns:
        A tuple of tuples, cheap to hash and compare (one entry per node plus a tail).

    Example:

        same = graph_key(g1, variable_names=False) == graph_key(g2, variable_names=False)
    """
    positions = {}
    variable_inputs = {id(v) for v in graph.variables.values()}
    parts = []
    for i, node in enumerate(graph.nodes):
        positions[node.id] = i
        if node.op == "Input":
            value = node.outputs[0]
            named = variable_names or id(value) not in variable_inputs
            parts.append(("Input", node.attrs["name"] if named else None,
                          value.type.shape, value.type.dtype))
        elif node.op == "Constant":
            attrs = node.attrs
            parts.append(("Constant", attrs.key if type(attrs) is KeyedAttrs
                          else _array_key(attrs["value"])))
        else:
            inputs = tuple((positions[v.node.id], v.index) for v in node.inputs)
            attrs = node.attrs
            if type(attrs) is KeyedAttrs:
                attrs = attrs.key
            else:
                attrs = tuple((k, _attr_key(a)) for k, a in attrs.items()) if attrs else ()
            parts.append((node.op, inputs, attrs))
    ref = lambda v: (positions[v.node.id], v.index)  # noqa: E731
    rng = getattr(graph, "rng_key", None)
    parts.append(("outputs", tuple(graph.output_names), tuple(ref(v) for v in graph.outputs)))
    parts.append(("updates", tuple((ref(graph.variables[var]), ref(v))
                                   for var, v in graph.updates.items())))
    parts.append(("rng_key", ref(rng) if rng is not None else None))
    return tuple(parts)


class KeyedAttrs(dict):
    """A node's attributes with their part of the key computed once: for attributes shared,
    unchanged, by the nodes of many graphs (kgraph/replay.py splices a recorded call's nodes
    into every step's graph). Nothing may change it after it is made."""

    __slots__ = ("key",)

    def __init__(self, op: str, attrs: dict):
        super().__init__(attrs)
        self.key = _array_key(attrs["value"]) if op == "Constant" else \
            tuple((k, _attr_key(a)) for k, a in attrs.items()) if attrs else ()


def value_refs(graph, values) -> tuple:
    """Where each of `values` sits in `graph`: (node position, output index), for keys that
    name values of a graph keyed by `graph_key` (a tape's loss and sources)."""
    positions = {node.id: i for i, node in enumerate(graph.nodes)}
    return tuple((positions[v.node.id], v.index) for v in values)


def static_key(value):
    """A hashable key of a Python value made of numbers, strings, None, arrays, dtypes and
    lists/tuples/dicts of them (arrays by content, never `repr`); any other object is keyed
    by identity. For caches keyed on call arguments (`Layer._eager_call`)."""
    return _attr_key(value)


def _array_key(array) -> tuple:
    array = np.asarray(array)
    data = array.tobytes() if array.nbytes <= _INLINE_BYTES else hashlib.blake2b(
        np.ascontiguousarray(array).data, digest_size=16).digest()
    return ("array", array.dtype.str, array.shape, data)


def _attr_key(value):
    if isinstance(value, (bool, int, float, str, type(None))):
        return (type(value).__name__, value)  # 1, 1.0 and True are different attributes
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, tuple(_attr_key(v) for v in value))
    if isinstance(value, (np.ndarray, np.generic)):
        return _array_key(value)
    if isinstance(value, dict):
        return ("dict", tuple((k, _attr_key(v)) for k, v in value.items()))
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(value, Graph):  # a loop body: by structure, computed once (bodies stay as traced)
        key = value.__dict__.get("_key")
        if key is None:
            key = value.__dict__["_key"] = ("graph", graph_key(value))
        return key
    return ("object", _Identity(value))


class _Identity:
    """An attribute of a type the key does not know: equal only to itself (never a false hit),
    and held, so its id cannot be reused while the key is cached."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, _Identity) and other.value is self.value

    def __hash__(self):
        return id(self.value)
