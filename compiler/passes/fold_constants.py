"""Evaluate nodes whose inputs are all constants with the op's numpy reference."""
from __future__ import annotations

import numpy as np

from kgraph.ir.graph import Graph
from kgraph.ops.registry import get_op
from kgraph.variables import _np

MAX_FOLDED_ELEMENTS = 1 << 20  # don't materialise huge broadcasts into the model file
_NEVER = {"Input", "Constant", "RandomUniformLike"}


def fold_constants(graph: Graph) -> Graph:
    replace, kept = {}, []
    for node in graph.nodes:
        node.inputs = [replace.get(v, v) for v in node.inputs]
        foldable = (node.op not in _NEVER and node.inputs
                    and all(v.node.op == "Constant" for v in node.inputs))
        results = None
        if foldable:
            result = get_op(node.op).ref(*[v.node.attrs["value"] for v in node.inputs],
                                         **node.attrs)
            results = result if isinstance(result, tuple) else (result,)
            if any(np.size(r) > MAX_FOLDED_ELEMENTS for r in results):
                results = None
        if results is None:
            kept.append(node)
            continue
        for out, r in zip(node.outputs, results):
            const = graph.add_node("Constant", [], {"value": np.asarray(r).astype(_np(out.dtype))}, [out.type])[0]
            graph.nodes.pop()  # add_node appended it to the old list
            kept.append(const.node)
            replace[out] = const
    graph.nodes = kept
    graph.outputs = [replace.get(v, v) for v in graph.outputs]
    graph.updates = {var: replace.get(v, v) for var, v in graph.updates.items()}
    return graph
