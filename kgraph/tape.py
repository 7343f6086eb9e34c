"""`GradientTape` for custom training loops and custom `train_step`s.

Inside a training step that is being traced (a custom `train_step` run by `fit`), the tape
simply differentiates the step's graph: `tape.gradient` appends backward ops and
`optimizer.apply_gradients` appends the update, so the whole step still compiles to ONE graph.

Used eagerly (a hand-written loop over numpy batches), the tape records the forward
computation into a graph whose inputs are the arrays it saw; `tape.gradient` compiles forward
+ backward into one program (cached by structure, so every batch reuses it) and returns numpy
gradients. Values computed under the tape can be read with `.numpy()` or `float()`.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.graph import Graph, Value, current_graph, tracing
from kgraph.variables import Variable


class GradientTape:
    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self._graph = None
        self._tracing = None
        self._used = False
        self._watched = []

    def __enter__(self):
        outer = current_graph()
        if outer is not None:  # inside a traced step: differentiate that graph
            self._graph = outer
            return self
        self._graph = Graph("gradient_tape")
        self._graph.captures = {}
        self._tracing = tracing(self._graph)
        self._tracing.__enter__()
        return self

    def __exit__(self, *exc):
        if self._tracing is not None:
            self._tracing.__exit__(*exc)
            self._tracing = None

    def watch(self, tensor):
        self._watched.append(tensor)

    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(target)/d(sources); `sources` may be a list or a single variable."""
        from kgraph.compiler.autodiff import gradients
        from kgraph.ops.registry import to_value

        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only compute gradients once; "
                               "use GradientTape(persistent=True) to call gradient() again.")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        sources = [sources] if single else list(sources)
        graph = self._graph
        with tracing(graph):
            target = to_value(target)
            if target.shape != ():
                from kgraph import ops

                target = ops.sum(target)
            wrt = [graph.read_variable(s) if isinstance(s, Variable) else to_value(s)
                   for s in sources]
            grads = gradients(graph, target, wrt)
            if unconnected_gradients == "zero":
                from kgraph import ops

                grads = [g if g is not None else ops.multiply(w, 0.0) for g, w in zip(grads, wrt)]
        if self._tracing is None and graph.captures is None:
            return grads[0] if single else grads
        results = evaluate(graph, [target] + [g for g in grads if g is not None])
        it = iter(results[1:])
        out = [next(it) if g is not None else None for g in grads]
        return out[0] if single else out


def evaluate(graph: Graph, values: list) -> list:
    """Run `graph` for `values` (compiled and cached by structure), feeding its captured
    arrays and its variables; variable updates recorded in the graph are applied."""
    from kgraph.compiler.build import compile_graph
    from kgraph.compiler.passes import optimize
    from kgraph.runtime.program import Program

    cache = graph.__dict__.setdefault("_evaluated", {})
    missing = [v for v in values if v not in cache]
    if missing:
        sub = _subgraph(graph, missing)
        compiled = compile_graph(optimize(sub), optimized=True)
        feeds = [name for name, _, _ in _feed_specs(sub)]
        variables = [(v.node.attrs["name"], var) for var, v in sub.variables.items()]
        key = getattr(sub, "rng_key", None)
        program = Program(compiled, feeds, variables, list(sub.updates), sub.output_names,
                          key_name=key.node.attrs["name"] if key is not None else None)
        arrays = [graph.captures[name][0] for name in feeds]
        outs = program(*arrays)
        for v, buf in zip(missing, outs):
            cache[v] = _eager(program.to_numpy(buf))
    return [cache[v] for v in values]


def _feed_specs(graph):
    return [(v.node.attrs["name"], v.shape, v.dtype) for v in graph.inputs
            if v.node.attrs["name"].startswith("capture_")]


def _subgraph(graph, values):
    """A copy of `graph` whose outputs are `values`; its variable updates are applied by the
    first evaluation only."""
    sub, vmap = graph.clone()
    sub.outputs = [vmap[v] for v in values]
    sub.output_names = [f"value_{i}" for i in range(len(values))]
    if graph.__dict__.get("_updates_applied"):
        sub.updates = {}
    graph._updates_applied = True
    return sub


def _eager(array):
    from kgraph.keras.layers.base import EagerTensor

    return np.asarray(array).view(EagerTensor)


def _value_numpy(value: Value):
    if value.graph.captures is None:
        raise ValueError(f"{value!r} is symbolic: it belongs to a graph being compiled and has "
                         f"no value until that graph runs.")
    return evaluate(value.graph, [value])[0]


Value.numpy = _value_numpy
Value.__array__ = lambda self, dtype=None, copy=None: np.asarray(_value_numpy(self), dtype=dtype)
Value.__float__ = lambda self: float(_value_numpy(self))
Value.__int__ = lambda self: int(_value_numpy(self))
