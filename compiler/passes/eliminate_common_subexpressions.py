"""Merge nodes that compute the same op on the same inputs with the same attributes."""
from __future__ import annotations

import numpy as np

from kgraph.ir.graph import Graph

_IMPURE = {"Input"}


def _key(node):
    def attr(v):
        if isinstance(v, np.ndarray):
            return ("array", v.dtype.str, v.shape, v.tobytes()) if v.size <= 64 else ("id", id(v))
        return repr(v)

    ins = tuple((v.node.id, v.index) for v in node.inputs)
    return node.op, ins, tuple(sorted((k, attr(v)) for k, v in node.attrs.items()))


def eliminate_common_subexpressions(graph: Graph) -> Graph:
    seen, replace, kept = {}, {}, []
    for node in graph.nodes:
        node.inputs = [replace.get(v, v) for v in node.inputs]
        if node.op in _IMPURE:
            kept.append(node)
            continue
        key = _key(node)
        twin = seen.get(key)
        if twin is not None and [o.type for o in twin.outputs] == [o.type for o in node.outputs]:
            replace.update(zip(node.outputs, twin.outputs))
            continue
        seen[key] = node
        kept.append(node)
    graph.nodes = kept
    graph.outputs = [replace.get(v, v) for v in graph.outputs]
    graph.updates = {var: replace.get(v, v) for var, v in graph.updates.items()}
    graph.variables = {var: replace.get(v, v) for var, v in graph.variables.items()}
    return graph
