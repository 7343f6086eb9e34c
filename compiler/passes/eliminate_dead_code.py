"""Drop nodes whose results reach no graph output and no variable update."""
from __future__ import annotations

from kgraph.ir.graph import Graph


def eliminate_dead_code(graph: Graph) -> Graph:
    needed = {v.node.id for v in graph.outputs}
    needed |= {v.node.id for v in graph.updates.values()}
    for node in reversed(graph.nodes):
        if node.id in needed:
            needed.update(v.node.id for v in node.inputs)
    # Inputs stay: they are the graph's calling convention, used or not.
    graph.nodes = [n for n in graph.nodes if n.id in needed or n.op == "Input"]
    return graph
