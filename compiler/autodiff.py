"""Reverse-mode autodiff over the op IR.

The walk is written once here: reverse topological order, fan-out sums, un-broadcasting of
gradients to their input's shape, and skipping of `None` (no gradient). Each op's own rule, in
its registry record, stays a line or two and produces ordinary IR, so the backward graph is
emitted and optimised along the same path as the forward one.
"""
from __future__ import annotations

from kgraph import ops
from kgraph.device import labelling, placement_of
from kgraph.ir.graph import Graph, Value, tracing
from kgraph.ops.registry import get_op


def gradients(graph: Graph, loss: Value, wrt: list[Value],
              start: int = 0) -> list[Value | None]:
    """d(loss)/d(w) for each w in `wrt`, added to `graph`. `loss` must be a scalar.
    Nodes before `graph.nodes[start]` are constants (a `GradientTape` entered mid-graph
    records only what runs inside it, as TensorFlow's)."""
    if loss.shape != ():
        raise ValueError(f"gradients() needs a scalar loss. Received: shape {loss.shape}")
    return vjp(graph, [loss], [None], wrt, start)


def expansion_vjp(expansion, inputs: list[Value], cotangents: list, **attrs) -> tuple:
    """The gradient rule of an op that is `expansion(*inputs, **attrs)` in other ops: the
    vector-Jacobian product of that expansion, traced into the graph being differentiated,
    for the op's output cotangents, one per output (None: no gradient)."""
    from kgraph.ir.graph import current_graph

    graph = current_graph()
    start = len(graph.nodes)
    outs = expansion(*inputs, **attrs)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    pairs = [(o, s) for o, s in zip(outs, cotangents) if s is not None]
    return tuple(vjp(graph, [o for o, _ in pairs], [s for _, s in pairs], list(inputs), start))


def vjp(graph: Graph, outputs: list[Value], seeds: list, wrt: list[Value],
        start: int = 0) -> list[Value | None]:
    """The vector-Jacobian product: Σ_k seeds[k] · d(outputs[k])/d(w) for each w in `wrt`,
    added to `graph` (a seed of None is ones; an output may appear more than once, its seeds
    add up). None where no output depends on w."""
    live = _on_some_path(graph, outputs, wrt)
    placement = placement_of(graph)
    grads: dict[Value, Value] = {}
    with tracing(graph):
        for out, seed in zip(outputs, seeds):
            seed = _ones_scalar(graph, out.dtype) if seed is None else seed
            grads[out] = grads[out] + seed if out in grads else seed
        stop = max(graph.nodes.index(out.node) for out in outputs)
        for node in reversed(graph.nodes[start:stop + 1]):
            if node.id not in live:
                continue
            outs = [grads.get(v) for v in node.outputs]
            if all(g is None for g in outs):
                continue
            op = get_op(node.op)
            if op.grad is None:
                continue
            with labelling(graph, placement.get(node.id)):  # follow the forward's device
                _add_input_gradients(graph, node, outs, grads, live)
    return [grads.get(w) for w in wrt]


def _add_input_gradients(graph, node, outs, grads, live):
    """Apply `node`'s gradient rule to its output gradients `outs`; sum into `grads`."""
    op = get_op(node.op)
    g = outs[0] if op.num_outputs == 1 else tuple(outs)
    y = node.outputs[0] if op.num_outputs == 1 else tuple(node.outputs)
    in_grads = op.grad(g, y, *node.inputs, **node.attrs)
    if len(in_grads) != len(node.inputs):
        raise RuntimeError(f"Gradient rule of {node.op} returned {len(in_grads)} "
                           f"gradients for {len(node.inputs)} inputs")
    for x, gx in zip(node.inputs, in_grads):
        if gx is None or x.node.id not in live:
            continue
        gx = unbroadcast(gx, x)
        grads[x] = grads[x] + gx if x in grads else gx


def _ones_scalar(graph, dtype):
    import numpy as np

    from kgraph.variables import _np

    return graph.constant(np.ones((), dtype=_np(dtype)))


def _on_some_path(graph: Graph, outputs: list[Value], wrt: list[Value]) -> set[int]:
    """Ids of nodes that depend on some `wrt` value and that some output depends on."""
    seeds = {w.node.id for w in wrt}
    forward = set()
    for node in graph.nodes:
        if node.id in seeds or any(v.node.id in forward for v in node.inputs):
            if get_op(node.op).differentiable or node.id in seeds:
                forward.add(node.id)
    backward, stack = set(), [out.node for out in outputs]
    while stack:
        node = stack.pop()
        if node.id in backward or node.id not in forward:
            continue
        backward.add(node.id)
        stack.extend(v.node for v in node.inputs)
    return backward


def unbroadcast(g: Value, x: Value) -> Value:
    """Sum `g` over the axes along which `x` was broadcast, giving it `x`'s shape."""
    extra = len(g.shape) - len(x.shape)
    axes = list(range(extra))
    for i, d in enumerate(x.shape):
        if d == 1 and g.shape[extra + i] != 1:
            axes.append(extra + i)
    if axes:
        g = ops.sum(g, axis=axes, keepdims=True)
        if extra:
            g = ops.reshape_to(g, x.shape, like=x)
    if g.dtype != x.dtype:
        g = ops.cast(g, x.dtype)
    return g
