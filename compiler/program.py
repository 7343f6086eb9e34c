"""Trace a Python function on symbolic inputs into a Graph and compile it into a Program."""
from __future__ import annotations

from kgraph.compiler.build import compile_graph
from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph, tracing
from kgraph.runtime.program import Program


def build_program(name, feed_specs, fn, target="onnxruntime") -> Program:
    """`feed_specs`: list of (name, shape, dtype). `fn(*placeholders)` returns a dict of named
    results; variables it reads become inputs and variables it assigns become outputs."""
    graph = Graph(name)
    placeholders = [graph.placeholder(n, s, d) for n, s, d in feed_specs]
    with tracing(graph):
        results = fn(*placeholders)
    from kgraph.ops.registry import to_value

    with tracing(graph):
        results = {k: to_value(v) for k, v in results.items()}
    graph.set_outputs(results)
    graph = optimize(graph)
    compiled = compile_graph(graph, target, optimized=True)
    variables = [(v.node.attrs["name"], var) for var, v in graph.variables.items()]
    key = getattr(graph, "rng_key", None)
    return Program(compiled, [n for n, _, _ in feed_specs], variables, list(graph.updates),
                   list(results), key_name=key.node.attrs["name"] if key is not None else None)
