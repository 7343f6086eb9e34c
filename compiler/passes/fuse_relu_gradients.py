"""A ReLU's gradient `g * Cast(Greater(y, 0))` becomes one `ReluGrad(g, y)` node.

Relu's gradient rule (kgraph/ops/elementwise.py) is the three ops, which the mask passes
(pool_gradient_masks.py) move through a max pooling's gradient as a chain; once they have, this
pass fuses each product whose mask is exactly that of a ReLU: a Greater than a scalar 0, Cast to
the gradient's float type, each read by the product alone, no operand broadcast. Where the
graph is native, `ReluGrad` is kgraph's operator (one pass over the data instead of three);
elsewhere it is emitted as the same three ops. The values are the same, bit for bit.
"""
from __future__ import annotations

from kgraph.compiler.passes.rebuild import replace_in_order
from kgraph.ir.graph import Graph
from kgraph.ir.types import is_float
from kgraph.ops.registry import apply


def fuse_relu_gradients(graph: Graph) -> Graph:
    users = graph.users()
    kept = set(graph.outputs) | set(graph.updates.values())

    def only_read_by(value, node):
        return value not in kept and [n.id for n in users.get(value, ())] == [node.id]

    rewrites = {}  # Mul node id -> its ReluGrad
    for node in graph.nodes:
        if node.op != "Mul":
            continue
        for g, mask in (node.inputs, node.inputs[::-1]):
            y = _relu_output(mask, g)
            if y is not None and only_read_by(mask, node) and \
                    only_read_by(mask.node.inputs[0], mask.node) and \
                    g.type == y.type == node.outputs[0].type:
                rewrites[node.id] = _fused(node.inputs.index(g))
                break
    return replace_in_order(graph, rewrites) if rewrites else graph


def _fused(i):
    """The rewrite of a product whose gradient operand is input i, its mask the other."""
    def rewrite(node):
        g = node.inputs[i]
        return apply("ReluGrad", g, _relu_output(node.inputs[1 - i], g))
    return rewrite


def _relu_output(mask, g):
    """y where `mask` is Cast(Greater(y, 0)) to g's float type, else None."""
    cast = mask.node
    if cast.op != "Cast" or cast.attrs.get("to") != g.dtype or not is_float(g.dtype):
        return None
    greater = cast.inputs[0].node
    if greater.op != "Greater":
        return None
    y, zero = greater.inputs
    if zero.node.op != "Constant" or zero.node.attrs["value"].size != 1 or \
            float(zero.node.attrs["value"].reshape(())) != 0.0:
        return None
    return y
