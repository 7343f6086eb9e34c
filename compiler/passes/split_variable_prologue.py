"""Split off what a graph computes from variables alone, so it is computed once, not per call.

A predict or evaluate graph reads weights it never updates, and some of its ops depend on those
weights only: the transposes that turn Keras' HWIO conv kernels into ONNX's OIHW layout, a
frozen BatchNormalization's `gamma / sqrt(variance + epsilon)`. onnxruntime cannot fold them,
since the weights are inputs, so they ran on every call (ResNet50 at batch 1: 54 kernel
transposes, 121 of 165 ms). This pass moves them into a PROLOGUE graph whose inputs are those
variables and whose outputs feed the main graph as new inputs; the Program reruns the prologue
only when one of its variables' buffers changed (runtime/program.py).

Variables the graph updates (a train step's parameters) stay in the main graph: their derived
values change every call anyway.
"""
from __future__ import annotations

from kgraph.compiler.passes.eliminate_dead_code import eliminate_dead_code
from kgraph.ir.graph import Graph

PREFIX = "prologue_"


def split_variable_prologue(graph: Graph) -> tuple:
    """(prologue, main): `prologue` is None when nothing is worth hoisting (then `main` is
    `graph` untouched); otherwise `main` is `graph`, rewritten in place, reading the
    prologue's outputs through inputs named like them (`prologue_0`, ...)."""
    static, derived = _static_values(graph)
    frontier = _frontier(graph, static, derived)
    if not frontier:
        return None, graph
    names = [f"{PREFIX}{i}" for i in range(len(frontier))]
    return _prologue(graph, frontier, names), _main(graph, frontier, names)


def _static_values(graph: Graph) -> tuple:
    """(static, derived): the values computed from constants and variables the graph does not
    update, and those of them an op computed from at least one such variable."""
    frozen = {v for var, v in graph.variables.items() if var not in graph.updates}
    static, derived = set(frozen), set()
    for node in graph.nodes:
        if node.op == "Constant":
            static.update(node.outputs)
        elif node.op != "Input" and node.inputs and all(v in static for v in node.inputs):
            static.update(node.outputs)
            if any(v in frozen or v in derived for v in node.inputs):
                derived.update(node.outputs)
    return static, derived


def _frontier(graph: Graph, static: set, derived: set) -> list:
    """Derived values (made by an op from a variable; the rest is folded as constants) that
    a non-static node, an output or an update reads."""
    seen, frontier = set(), []
    readers = [n for n in graph.nodes if n.op != "Input" and not set(n.outputs) <= static]
    reads = [v for n in readers for v in n.inputs]
    reads += list(graph.outputs) + list(graph.updates.values())
    for v in reads:
        # bfloat16 stays put: onnxruntime's graphs return bfloat16 results as float32
        # (compute_bfloat16_in_float32), which the main graph's input would not accept
        if v in derived and v not in seen and v.dtype != "bfloat16":
            seen.add(v)
            frontier.append(v)
    return frontier


def _prologue(graph: Graph, frontier: list, names: list) -> Graph:
    prologue, vmap = graph.clone()
    prologue.name = f"{graph.name}_prologue"
    prologue.outputs = [vmap[v] for v in frontier]
    prologue.output_names = list(names)
    prologue.updates = {}
    prologue.rng_key = None
    eliminate_dead_code(prologue)
    used = {v for n in prologue.nodes for v in n.inputs} | set(prologue.outputs)
    prologue.nodes = [n for n in prologue.nodes if n.op != "Input" or n.outputs[0] in used]
    prologue.inputs = [v for v in prologue.inputs if v in used]
    prologue.variables = {var: v for var, v in prologue.variables.items() if v in used}
    return prologue


def _main(graph: Graph, frontier: list, names: list) -> Graph:
    replace = {}
    for v, name in zip(frontier, names):
        placeholder = graph.placeholder(name, v.shape, v.dtype)
        graph.nodes.insert(0, graph.nodes.pop())  # inputs first: the order stays topological
        replace[v] = placeholder
    for node in graph.nodes:
        node.inputs = [replace.get(v, v) for v in node.inputs]
    graph.outputs = [replace.get(v, v) for v in graph.outputs]
    graph.updates = {var: replace.get(v, v) for var, v in graph.updates.items()}
    return eliminate_dead_code(graph)
