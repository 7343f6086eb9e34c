"""An Expand read by a broadcasting binary op whose other operand already has the expanded
type is not materialised there: `Add(a, Expand(b))` becomes `Add(a, b)`.

Reverse-mode differentiation writes the gradient of a sum as an Expand of the summed
gradient back to the input's shape (`broadcast_like`), and accumulating gradients adds it
to the other contributions: through a softmax or a layer normalisation these are passes
over the attention scores or the activations. onnxruntime runs each Expand as a copy
(0.8 ms for the transformer benchmark's 64x4x64x64 scores) before the Add or Mul reads it;
broadcasting inside that op reads the same values. The results are equal bit for bit.

Rewritten only where the consumer's result keeps its shape whatever the sizes at run time:
the other operand has the Expand's type, and along each dim unknown before run time the
Expand's input has that dim itself (unknown, not 1), so the Expand copies along it nothing
that broadcasting would not. An Expand still read elsewhere (a reduction, a unary op) stays
for those readers; one read by nothing else is left to dead-code elimination.
"""
from __future__ import annotations

from kgraph.ir.graph import Graph, Value

BROADCASTING = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"})


def fold_expands(graph: Graph) -> Graph:
    for node in graph.nodes:
        if node.op not in BROADCASTING or len(node.inputs) != 2:
            continue
        for i in (0, 1):  # re-read each time: once one side is folded the other is not
            expanded, other = node.inputs[i], node.inputs[1 - i]
            if expanded.node.op == "Expand" and _broadcasts_the_same(expanded, other):
                node.inputs[i] = expanded.node.inputs[0]
    return graph


def _broadcasts_the_same(expanded: Value, other: Value) -> bool:
    if expanded.type != other.type:
        return False
    source, shape = expanded.node.inputs[0], tuple(expanded.shape)
    if len(source.shape) > len(shape):
        return False
    dims = (1,) * (len(shape) - len(source.shape)) + tuple(source.shape)
    return all((s is None) if d is None else s in (1, d) for s, d in zip(dims, shape))
