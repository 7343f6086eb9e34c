"""`GradientTape` for custom training loops and custom `train_step`s.

Inside a training step that is being traced (a custom `train_step` run by `fit`), the tape
differentiates the step's graph from the node where it was entered (earlier ops, such as
another tape's optimizer update, are constants, as in TensorFlow): `tape.gradient` appends
backward ops and
`optimizer.apply_gradients` appends the update, so the whole step still compiles to ONE graph.

Used eagerly (a hand-written loop over numpy batches), the tape records the forward
computation into a graph whose inputs are the arrays it saw; `tape.gradient` compiles forward
+ backward into one program (cached by structure, so every batch reuses it) and returns numpy
gradients. Values computed under the tape can be read with `.numpy()` or `float()`.
"""
from __future__ import annotations

import numpy as np

from kgraph.compiler.graph_key import value_refs
from kgraph.ir.graph import Graph, Value, current_graph, tracing
from kgraph.variables import Variable


class GradientTape:
    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self._graph = None
        self._tracing = None
        self._used = False
        self._watched = []
        self._start = 0  # first node of the outer graph recorded by this tape

    def __enter__(self):
        outer = current_graph()
        if outer is not None:  # inside a traced step: differentiate what runs from here on
            self._graph, self._start = outer, len(outer.nodes)
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
        """d(target)/d(sources); `sources` may be a list or a single variable.

        Used eagerly, the program computing target and gradients is looked up by the
        structure of the recorded forward graph before any autodiff: a loop's second batch
        differentiates, optimises and compiles nothing. A non-scalar target is summed (or
        weighted by `output_gradients` first)."""
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only compute gradients once; "
                               "use GradientTape(persistent=True) to call gradient() again.")
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero'. Received: "
                             f"unconnected_gradients={unconnected_gradients!r}")
        self._used = True
        single = not isinstance(sources, (list, tuple))
        sources = [sources] if single else list(sources)
        graph = self._graph
        target, wrt = _symbolic(graph, target, sources, output_gradients)
        if self._tracing is None and graph.captures is None:  # inside a traced step
            grads = _differentiate(graph, target, wrt, unconnected_gradients,
                                   start=self._start)
            return grads[0] if single else grads
        out = _run(graph, ("gradient", value_refs(graph, [target] + wrt), unconnected_gradients),
                   lambda: _differentiate(graph, target, wrt, unconnected_gradients, True))
        loss, grads = out[0], out[1:]
        if target.shape == ():
            graph.__dict__.setdefault("_evaluated", {})[target] = loss
        return grads[0] if single else grads


def _symbolic(graph, target, sources, output_gradients):
    """The target (weighted by `output_gradients`) and the sources as values of `graph`."""
    from kgraph.ops.registry import to_value

    with tracing(graph):
        target = to_value(target)
        if output_gradients is not None:
            target = target * to_value(output_gradients)
        wrt = [graph.read_variable(s) if isinstance(s, Variable) else to_value(s)
               for s in sources]
    return target, wrt


def _differentiate(graph, target, wrt, unconnected, with_loss=False, start=0):
    """Append the backward ops to `graph` and return the gradients (None where unconnected,
    unless `unconnected` is "zero"), preceded by the scalar loss when `with_loss`."""
    from kgraph import ops
    from kgraph.compiler.autodiff import gradients
    from kgraph.compiler.build import count

    count("autodiffs")
    # Arrays that gradient rules make (shapes, index ranges) are constants of the structure,
    # not captured inputs: a cached program must run without them on later batches.
    captures, graph.captures = graph.captures, None
    try:
        with tracing(graph):
            loss = target if target.shape == () else ops.sum(target)
            grads = gradients(graph, loss, wrt, start)
            if unconnected == "zero":
                grads = [g if g is not None else ops.multiply(w, 0.0) for g, w in zip(grads, wrt)]
    finally:
        graph.captures = captures
    return [loss] + grads if with_loss else grads


def evaluate(graph: Graph, values: list) -> list:
    """Run `graph` for `values` (compiled and cached by structure), feeding its captured
    arrays and its variables; variable updates recorded in the graph are applied once."""
    cache = graph.__dict__.setdefault("_evaluated", {})
    missing = [v for v in values if v not in cache]
    if missing:
        outs = _run(graph, ("values", value_refs(graph, missing)), lambda: missing)
        cache.update(zip(missing, outs))
    return [cache[v] for v in values]


def _run(graph: Graph, what: tuple, make_values) -> list:
    """Run the program computing `make_values()` (a list of values of `graph`, None entries
    allowed) and return their arrays. The program is cached under the structure of `graph`
    as it is NOW plus `what`, so `make_values` (autodiff) runs on a cache miss only."""
    from kgraph.compiler.build import lookup, remember, resolve_target
    from kgraph.compiler.program import make_plan, plan_key

    target = resolve_target(None)
    applied = bool(graph.__dict__.get("_updates_applied"))
    key = plan_key(graph, target, what, applied)
    plan = lookup(key)
    if plan is None:
        values = make_values()
        # no prologue: the user's optimizer changes the weights between every two steps
        plan = remember(key, make_plan(_subgraph(graph, values, applied), target,
                                       prologue=False))
        plan.missing = [i for i, v in enumerate(values) if v is None]
    graph._updates_applied = True
    feeds = list(graph.captures)
    program = plan.bind(graph, feeds, reuse=True)
    # Every run over this recording sees the weights of its first run, as an eager forward
    # pass would: a value read after `apply_gradients` is not recomputed with the new ones.
    pinned = graph.__dict__.setdefault("_pinned", {})
    if any(var not in pinned for _, var in program.variables):  # the first run reading them
        for var, buffer in program.pin().items():
            pinned.setdefault(var, buffer)
    outs = iter(program(*[graph.captures[name][0] for name in feeds], pinned=pinned))
    return [None if i in plan.missing else _eager(program.to_numpy(next(outs)))
            for i in range(len(plan.missing) + len(program.result_names))]


def _subgraph(graph, values, updates_applied):
    """A copy of `graph` whose outputs are the non-None `values`; it applies the graph's
    variable updates unless an earlier evaluation did."""
    sub, vmap = graph.clone()
    sub.outputs = [vmap[v] for v in values if v is not None]
    sub.output_names = [f"value_{i}" for i in range(len(sub.outputs))]
    if updates_applied:
        sub.updates = {}
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
