"""IR verifier: every node's op is registered, its attributes are allowed, its inputs are
defined earlier in the same graph, and its output types match the op's shape rule."""
from __future__ import annotations

from kgraph.ir.graph import Graph
from kgraph.ops.registry import get_op


class IRError(Exception):
    pass


class _Where:
    """Names a node in an error message; formatted only when an error is raised (a node's
    repr costs more than the checks on a large graph)."""

    def __init__(self, graph, node, after):
        self.graph, self.node, self.after = graph, node, after

    def __format__(self, spec):
        return f"{self.graph.name}: node {self.node!r} (after {self.after})"


def verify(graph: Graph, after: str = "building") -> Graph:
    defined = set()
    for node in graph.nodes:
        where = _Where(graph, node, after)
        op = get_op(node.op)
        extra = set(node.attrs) - set(op.attrs)
        if extra:
            raise IRError(f"{where}: unexpected attributes {sorted(extra)}")
        for v in node.inputs:
            if v.graph is not graph:
                raise IRError(f"{where}: input {v!r} belongs to another graph")
            if (v.node.id, v.index) not in defined:
                raise IRError(f"{where}: input {v!r} is used before it is defined")
        if node.op not in ("Input", "Constant"):
            expected = op.infer([v.type for v in node.inputs], **node.attrs)
            got = [v.type for v in node.outputs]
            if expected != got:
                raise IRError(f"{where}: output types {got} differ from the rule's {expected}")
        defined.update((node.id, v.index) for v in node.outputs)
    for v in list(graph.outputs) + list(graph.updates.values()):
        if (v.node.id, v.index) not in defined:
            raise IRError(f"{graph.name}: output {v!r} is not computed by the graph")
    return graph
