"""The rebuild shared by passes that replace nodes with new ones: the graph's nodes in their
order, each node to replace giving way to what its rewrite makes in its place."""
from __future__ import annotations

from kgraph.ir.graph import Graph, tracing


def replace_in_order(graph: Graph, rewrites: dict) -> Graph:
    """`rewrites`: node id -> a function of that node (its inputs already replaced) returning
    the Value that replaces its output, built with `apply` (the new nodes land in the graph,
    in order, also while another graph, a GradientTape's, is being traced). Graph outputs and
    variable updates follow the replacements."""
    replaced, old = {}, graph.nodes
    graph.nodes = []
    with tracing(graph):
        for node in old:
            node.inputs = [replaced.get(v, v) for v in node.inputs]
            rewrite = rewrites.get(node.id)
            if rewrite is None:
                graph.nodes.append(node)
            else:
                replaced[node.outputs[0]] = rewrite(node)
    graph.outputs = [replaced.get(v, v) for v in graph.outputs]
    graph.updates = {var: replaced.get(v, v) for var, v in graph.updates.items()}
    return graph
