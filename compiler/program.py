"""Trace a Python function on symbolic inputs into a Graph and compile it into a Program.

`program_of` looks the graph up in the compile cache by its structure (variable names left out)
before optimising anything. What it caches is a `Plan`: the compiled graph, whose variable
inputs are named by position (`var_3`), and the names of its results. Binding a plan to a graph
of the same structure pairs each variable with its position, so two models of the same
architecture (`dense/kernel` vs `dense_1/kernel`) share one compiled session.
"""
from __future__ import annotations

from kgraph.compiler.build import (compile_graph, count, gc_paused, lookup, remember,
                                   resolve_target)
from kgraph.compiler.graph_key import graph_key, variable_input_name
from kgraph.compiler.passes import optimize
from kgraph.compiler.passes.split_variable_prologue import split_variable_prologue
from kgraph.ir.graph import Graph, tracing
from kgraph.runtime.program import Program


def trace_graph(name, feed_specs, fn) -> Graph:
    """`feed_specs`: list of (name, shape, dtype). `fn(*placeholders)` returns a dict of named
    results; variables it reads become inputs and variables it assigns become outputs."""
    from kgraph.ops.registry import to_value

    count("traces")
    graph = Graph(name)
    placeholders = [graph.placeholder(n, s, d) for n, s, d in feed_specs]
    with gc_paused(), tracing(graph):
        results = fn(*placeholders)
        results = {k: to_value(v) for k, v in results.items()}
    graph.set_outputs(results)
    graph.feed_names = [n for n, _, _ in feed_specs]
    return graph


class Plan:
    """A compiled graph with positional variable inputs, and the last Program bound with
    `reuse=True` (a loop that binds the same variables every step keeps one binder)."""

    def __init__(self, compiled, result_names, applies_updates=True):
        self.compiled = compiled
        self.result_names = list(result_names)
        self.applies_updates = applies_updates  # False: the graph's updates were left out
        self.missing = []  # result positions the caller fills with None (GradientTape)
        self.prologue = None  # (compiled, its variable input names, its result names)
        self._program = None

    def bind(self, graph: Graph, feed_names, reuse: bool = False) -> Program:
        """A Program running this plan for `graph` (of the structure the plan was made from):
        `feed_names` are fed by the caller, variables from their resident buffers. With
        `reuse`, the Program of the last such call when it binds the same variables (callers
        that hang their own attributes on a Program want a fresh one)."""
        positions = {id(v): i for i, v in enumerate(graph.inputs)}
        variables = [(variable_input_name(positions[id(v)]), var)
                     for var, v in graph.variables.items()]
        updated = list(graph.updates) if self.applies_updates else []
        rng = getattr(graph, "rng_key", None)
        key_name = rng.node.attrs["name"] if rng is not None else None
        last = self._program
        if (reuse and last is not None and last.feed_names == list(feed_names)
                and last.key_name == key_name and _same(last.variables, variables)
                and _same(last.updated, updated)):
            return last
        from kgraph.random import next_key  # the process's rng stream (seeded by the user)

        prologue = None
        if self.prologue is not None:
            compiled, inputs, results = self.prologue
            prologue = Program(compiled, [], [(n, v) for n, v in variables if n in inputs], [],
                               results)
        program = Program(self.compiled, feed_names, variables, updated, self.result_names,
                          key_name=key_name, next_key=next_key, prologue=prologue)
        program.plan = self  # the compile cache finds this plan while a Program of it lives
        if reuse:
            self._program = program
        return program


def _same(a, b) -> bool:
    """Equal lists of variables (or (name, variable) pairs), variables compared by identity."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if isinstance(x, tuple):
            if x[0] != y[0] or x[1] is not y[1]:
                return False
        elif x is not y:
            return False
    return True


def plan_key(graph: Graph, target: str, *extra) -> tuple:
    """The compile-cache key of a plan for `graph` (variable names left out); `extra` are
    further parts (what a GradientTape differentiates)."""
    from kgraph.compiler.passes.partition_by_device import placement_key
    from kgraph.runtime import native_ops

    native = target == "onnxruntime" and native_ops.available()  # emitted with kgraph's ops
    return (("plan", target, native, graph_key(graph, variable_names=False))
            + placement_key(graph) + extra)


def make_plan(graph: Graph, target: str, prologue: bool = True) -> Plan:
    """Optimise and compile a copy of `graph` whose variable inputs are named by position.

    With `prologue`, what it computes from variables it does not update becomes a prologue
    compiled apart (`split_variable_prologue`), rerun only when those variables change: right
    for inference and evaluation; callers whose variables change between every two calls (a
    GradientTape step, whose update runs apart) pass False."""
    with gc_paused():
        return _make_plan(graph, target, prologue)


def _make_plan(graph: Graph, target: str, prologue: bool) -> Plan:
    count("optimizations")
    optimized = optimize(canonical_copy(graph))  # the copy is ours: passes may rewrite it
    if getattr(optimized, "placement", None):  # layers placed by `kgraph.device`
        plan = _placed_plan(optimized, target)
        if plan is not None:
            return plan
    prologue, optimized = (split_variable_prologue(optimized) if prologue
                           else (None, optimized))
    plan = Plan(compile_graph(optimized, target, optimized=True, cache=False),
                graph.output_names, applies_updates=bool(graph.updates))
    if prologue is not None:
        plan.prologue = (compile_graph(prologue, target, optimized=True, cache=False),
                         set(prologue.input_names), list(prologue.output_names))
    return plan


def _placed_plan(optimized: Graph, target: str) -> Plan | None:
    """A plan running one subgraph per device and stage (compiler/passes/partition_by_device),
    or None when every device runs on `target` itself (no cut needed)."""
    from kgraph.compiler.passes.partition_by_device import (compile_partition,
                                                            partition_by_device,
                                                            runs_on_one_executor)

    if runs_on_one_executor(optimized, target):
        return None
    return Plan(compile_partition(partition_by_device(optimized), target),
                optimized.output_names, applies_updates=bool(optimized.updates))


def canonical_copy(graph: Graph) -> Graph:
    """A copy of `graph` whose variable inputs are named `variable_input_name(position)`."""
    copy, vmap = graph.clone()
    variable_inputs = {id(vmap[v]) for v in graph.variables.values()}
    names = set(copy.input_names)
    for i, value in enumerate(copy.inputs):
        if id(value) in variable_inputs:
            name = variable_input_name(i)
            if name in names and name != value.node.attrs["name"]:
                raise ValueError(f"Graph {graph.name!r} has an input named {name!r}, the name "
                                 f"its variable input {i} takes when compiled; rename it.")
            value.node.attrs["name"] = name
    return copy


def program_of(graph: Graph, target=None, prologue: bool = True) -> Program:
    """Compile a traced graph (from the cache when one of the same structure was compiled)
    and bind it to its variables. The cache finds the compiled graph while a Program of it
    lives: whoever keeps the Program (a model, a layer, an optimizer) keeps the session.
    `prologue`: see `make_plan`."""
    target = resolve_target(target)
    key = plan_key(graph, target, prologue)
    plan = lookup(key)
    if plan is None:
        plan = remember(key, make_plan(graph, target, prologue), hold=False)
    return plan.bind(graph, graph.feed_names)


def build_program(name, feed_specs, fn, target=None) -> Program:
    return program_of(trace_graph(name, feed_specs, fn), target)
