"""The op IR: a graph of primitive op nodes in SSA form.

Nodes are kept in a list in the order they were traced, which is a topological order; each
node's outputs are `Value`s. `Graph.to_networkx()` gives the same graph as a networkx DiGraph
for analyses that want one. A thread-local stack of active graphs lets `kgraph.ops` functions
add nodes to whichever graph is being traced.
"""
from __future__ import annotations

import itertools
import threading

import numpy as np

from kgraph.ir.types import TensorType, dtype_name


class SymbolicTruthError(TypeError):
    """`if`/`and`/`while` on a tensor of a graph being traced (it has no value yet)."""


class Value:
    """One tensor in a graph: output `index` of `node`, with a static `TensorType`."""

    __slots__ = ("graph", "node", "index", "type", "_keras_mask", "__weakref__")
    __array_priority__ = 1000  # make `ndarray * value` defer to Value.__rmul__

    def __init__(self, graph, node, index, type_):
        self.graph, self.node, self.index, self.type = graph, node, index, type_
        self._keras_mask = None  # Keras mask (bool tensor) carried alongside, set by layers

    @property
    def shape(self):
        return self.type.shape

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def ndim(self):
        return len(self.type.shape)

    def __repr__(self):
        return f"<Value %{self.node.id}:{self.index} {self.type!r} from {self.node.op}>"

    def __len__(self):
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of a tensor with unknown first dimension: {self!r}")
        return self.shape[0]

    def __bool__(self):
        raise SymbolicTruthError(
            "A symbolic tensor has no truth value while a graph is traced; "
            "use kgraph.ops.where or a Python value instead.")

    __hash__ = object.__hash__


class Node:
    __slots__ = ("id", "op", "inputs", "attrs", "outputs")

    def __init__(self, id_, op, inputs, attrs):
        self.id, self.op, self.inputs, self.attrs, self.outputs = id_, op, inputs, attrs, []

    def __repr__(self):
        ins = ", ".join(f"%{v.node.id}:{v.index}" for v in self.inputs)
        return f"%{self.id} = {self.op}({ins}) {self.attrs or ''}"


class Graph:
    """A traced program: placeholder inputs, op nodes in topological order, named outputs."""

    def __init__(self, name="graph"):
        self.name = name
        self.nodes: list[Node] = []
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.output_names: list[str] = []
        self.variables: dict = {}  # Variable -> placeholder Value
        self.updates: dict = {}  # Variable -> Value assigned to it by this graph
        self.captures = None  # {name: array} when eager arrays become inputs (GradientTape)
        self._ids = itertools.count()

    # -- building -------------------------------------------------------------------------
    def add_node(self, op: str, inputs, attrs, types) -> list[Value]:
        return self.append_node(op, list(inputs), dict(attrs), types)

    def append_node(self, op: str, inputs: list, attrs: dict, types) -> list[Value]:
        """`add_node` for a caller that hands over `inputs` and `attrs` (not copied)."""
        node = Node(next(self._ids), op, inputs, attrs)
        node.outputs = [Value(self, node, i, t) for i, t in enumerate(types)]
        self.nodes.append(node)
        return node.outputs

    def placeholder(self, name: str, shape, dtype) -> Value:
        if any(v.node.attrs["name"] == name for v in self.inputs):
            raise ValueError(f"Graph {self.name!r} already has an input named {name!r}")
        node = Node(next(self._ids), "Input", [], {"name": name})
        value = Value(self, node, 0, TensorType(tuple(shape), dtype_name(dtype)))
        node.outputs = [value]
        self.nodes.append(node)
        self.inputs.append(value)
        return value

    def read_variable(self, var) -> Value:
        """The value of `var` in this graph: its latest assignment here, else a placeholder."""
        if var in self.updates:
            return self.updates[var]
        if var not in self.variables:
            name, taken, i = var.path, set(self.input_names), 0
            while name in taken:
                i += 1
                name = f"{var.path}_{i}"
            self.variables[var] = self.placeholder(name, var.shape, var.dtype)
        return self.variables[var]

    def assign(self, var, value):
        from kgraph.ops.registry import to_value
        from kgraph.ops.elementwise import cast

        value = to_value(value)
        if value.dtype != var.dtype:
            value = cast(value, var.dtype)
        shape = tuple(value.shape)
        if len(shape) != len(var.shape) or any(
                d is not None and d != e for d, e in zip(shape, var.shape)):
            raise ValueError(f"Cannot assign a value of shape {shape} to variable "
                             f"{var.path!r} of shape {var.shape}")
        if var not in self.variables:
            self.read_variable(var)  # reserves the variable's name in this graph
        self.updates[var] = value
        return var

    def capture(self, array) -> Value:
        """A placeholder fed with `array` whenever this graph runs. Its shape is the array's
        own: arrays built inside ops (ranges, shapes) stay exact, and a new batch size is a
        new structure, compiled once."""
        for name, (held, value) in self.captures.items():
            if held is array:
                return value
        if array.dtype == np.float64:
            from kgraph import config

            array = array.astype(config.floatx())
        name = f"capture_{len(self.captures)}"
        value = self.placeholder(name, array.shape, array.dtype)
        self.captures[name] = (array, value)
        return value

    def constant(self, array) -> Value:
        array = np.asarray(array)
        return self.add_node("Constant", [], {"value": array},
                             [TensorType(array.shape, dtype_name(array.dtype))])[0]

    def set_outputs(self, named: dict):
        self.output_names = list(named)
        self.outputs = list(named.values())
        for name, v in named.items():
            if not isinstance(v, Value) or v.graph is not self:
                raise ValueError(f"Output {name!r} is not a value of graph {self.name!r}: {v!r}")

    def clone(self) -> tuple["Graph", dict]:
        """A deep copy (new nodes and values, same ops and attributes) and the value map,
        so passes that rewrite the copy in place leave this graph untouched."""
        new = Graph(self.name)
        vmap = {}
        for node in self.nodes:
            copy = Node(node.id, node.op, [vmap[v] for v in node.inputs], dict(node.attrs))
            copy.outputs = [Value(new, copy, v.index, v.type) for v in node.outputs]
            vmap.update(zip(node.outputs, copy.outputs))
            new.nodes.append(copy)
        new._ids = itertools.count(max((n.id for n in self.nodes), default=-1) + 1)
        new.inputs = [vmap[v] for v in self.inputs]
        new.outputs = [vmap[v] for v in self.outputs]
        new.output_names = list(self.output_names)
        new.variables = {var: vmap[v] for var, v in self.variables.items()}
        new.updates = {var: vmap[v] for var, v in self.updates.items()}
        if getattr(self, "rng_key", None) is not None:
            new.rng_key = vmap[self.rng_key]
        if getattr(self, "placement", None):  # node id -> device (kgraph.device); ids kept
            new.placement = dict(self.placement)
        return new, vmap

    # -- reading --------------------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [v.node.attrs["name"] for v in self.inputs]

    def users(self) -> dict:
        """Map from each Value to the nodes that read it."""
        out = {}
        for node in self.nodes:
            for v in node.inputs:
                out.setdefault(v, []).append(node)
        return out

    def to_networkx(self):
        import networkx as nx

        g = nx.DiGraph()
        for node in self.nodes:
            g.add_node(node.id, op=node.op, attrs=node.attrs)
            for v in node.inputs:
                g.add_edge(v.node.id, node.id, index=v.index, type=v.type)
        return g

    def __repr__(self):
        lines = [f"graph {self.name}({', '.join(self.input_names)}):"]
        lines += [f"  {n!r} -> {[repr(v.type) for v in n.outputs]}" for n in self.nodes
                  if n.op != "Input"]
        lines += [f"  return {dict(zip(self.output_names, [f'%{v.node.id}:{v.index}' for v in self.outputs]))}"]
        return "\n".join(lines)


# -- the stack of graphs being traced ---------------------------------------------------------
_state = threading.local()


def current_graph() -> Graph | None:
    stack = getattr(_state, "stack", None)
    return stack[-1] if stack else None


class tracing:
    """Context manager that makes `graph` the target of `kgraph.ops` calls."""

    def __init__(self, graph: Graph):
        self.graph = graph

    def __enter__(self):
        if not hasattr(_state, "stack"):
            _state.stack = []
        _state.stack.append(self.graph)
        return self.graph

    def __exit__(self, *exc):
        _state.stack.pop()
