"""Passes over `Scan` loops (kgraph/ops/recurrence.py).

`drop_unused_scan_history`: a Scan saves the carries each step started from for its gradient;
where nothing reads them (inference, or a loop whose gradient was not taken) the copies go.

`unroll_scans`: every Scan replaced by its body repeated once per time step, for executors
without a loop construct (TVM's ONNX importer has no `Scan`). The result equals the loop's.
"""
from __future__ import annotations

from kgraph import ops
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.movement import split


def drop_unused_scan_history(graph: Graph) -> Graph:
    read = {v for node in graph.nodes for v in node.inputs}
    read.update(graph.outputs)
    read.update(graph.updates.values())
    for node in graph.nodes:
        if node.op != "Scan" or not node.attrs["history"]:
            continue
        history = node.outputs[len(node.outputs) - node.attrs["n_carry"]:]
        if not any(v in read for v in history):
            node.attrs = {**node.attrs, "history": False}
            node.outputs = node.outputs[:len(node.outputs) - len(history)]
    return graph


def unroll_scans(graph: Graph) -> Graph:
    if any(node.op == "Loop" for node in graph.nodes):
        raise ValueError("A while_loop whose number of steps is known only at run time (a "
                         "symbolic condition and no maximum_iterations) cannot be unrolled "
                         "for TVM, whose ONNX importer has no Loop; pass maximum_iterations=N")
    # a loop in a loop's body is copied out unrolled once per step: the next round unrolls it
    while any(node.op == "Scan" for node in graph.nodes):
        _unroll_once(graph)
    return graph


def _unroll_once(graph: Graph):
    replaced, old = {}, graph.nodes
    graph.nodes = []  # rebuilt in order: each loop's steps go where the loop was
    with tracing(graph):
        for node in old:
            node.inputs = [replaced.get(v, v) for v in node.inputs]
            if node.op != "Scan":
                graph.nodes.append(node)
                continue
            replaced.update(zip(node.outputs, _unrolled(node)))
    graph.outputs = [replaced.get(v, v) for v in graph.outputs]
    graph.updates = {var: replaced.get(v, v) for var, v in graph.updates.items()}
    graph.variables = {var: replaced.get(v, v) for var, v in graph.variables.items()}


def _unrolled(node):
    """The values of `node`'s outputs computed step by step."""
    from kgraph.ops.recurrence import _inline

    a = node.attrs
    body, n_carry, n_seq = a["body"], a["n_carry"], a["n_seq"]
    carries = list(node.inputs[:n_carry])
    sequences = node.inputs[n_carry:n_carry + n_seq]
    invariants = list(node.inputs[n_carry + n_seq:])
    steps = sequences[0].shape[0]
    if steps is None:
        raise ValueError("A loop over an unknown number of steps (keras.ops.scan over an open "
                         "axis) cannot be unrolled for TVM; give the axis a fixed size")
    slices = [[ops.squeeze(p, 0) for p in split(s, (1,) * steps, 0)] if steps > 1
              else [ops.squeeze(s, 0)] if steps else [] for s in sequences]
    n_out = len(body.outputs) - n_carry
    outs, hist = [[None] * steps for _ in range(n_out)], [[None] * steps for _ in carries]
    for t in (range(steps - 1, -1, -1) if a["reverse"] else range(steps)):
        results = _inline(body, carries + [s[t] for s in slices] + invariants)
        for k in range(n_carry):
            hist[k][t] = carries[k]
        carries = results[:n_carry]
        for o, r in zip(outs, results[n_carry:]):
            o[t] = r
    stacked = [_stack(o) for o in outs]
    return carries + stacked + ([_stack(h) for h in hist] if a["history"] else [])


def _stack(values):
    return ops.concatenate([ops.expand_dims(v, 0) for v in values], axis=0)
