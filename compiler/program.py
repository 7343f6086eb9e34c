"""Trace a Python function on symbolic inputs into a Graph and compile it into a Program."""
from __future__ import annotations

from kgraph.compiler.build import compile_graph
from kgraph.compiler.passes import optimize
from kgraph.ir.graph import Graph, tracing
from kgraph.runtime.program import Program


def trace_graph(name, feed_specs, fn) -> Graph:
    """`feed_specs`: list of (name, shape, dtype). `fn(*placeholders)` returns a dict of named
    results; variables it reads become inputs and variables it assigns become outputs."""
    from kgraph.ops.registry import to_value

    graph = Graph(name)
    placeholders = [graph.placeholder(n, s, d) for n, s, d in feed_specs]
    with tracing(graph):
        results = fn(*placeholders)
        results = {k: to_value(v) for k, v in results.items()}
    graph.set_outputs(results)
    graph.feed_names = [n for n, _, _ in feed_specs]
    return graph


def program_of(graph: Graph, target=None) -> Program:
    """Optimise and compile a traced graph and bind it to its variables."""
    feed_names, result_names = graph.feed_names, list(graph.output_names)
    graph = optimize(graph)
    compiled = compile_graph(graph, target, optimized=True)
    variables = [(v.node.attrs["name"], var) for var, v in graph.variables.items()]
    key = getattr(graph, "rng_key", None)
    return Program(compiled, feed_names, variables, list(graph.updates), result_names,
                   key_name=key.node.attrs["name"] if key is not None else None)


def build_program(name, feed_specs, fn, target=None) -> Program:
    return program_of(trace_graph(name, feed_specs, fn), target)
