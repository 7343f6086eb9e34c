"""Sum of products -> one product: `Σ_i aᵢᵀ bᵢ` becomes `concat(aᵢ)ᵀ concat(bᵢ)`.

A weight used at every step of an unrolled recurrence (an RNN's recurrent kernel) gets its
gradient as a sum over the steps of small products `h_{t-1}ᵀ dz_t`: per step a Transpose, a
MatMul of (units × batch)(batch × gates) and an Add. Stacking the steps' rows makes it ONE
(units × batch·time)(batch·time × gates) product: three nodes a step fewer, and one GEMM large
enough to run near the machine's peak. The rewrite applies to a tree of single-use Adds whose
leaves are all single-use `MatMul(Transpose(a, (1, 0)), b)` of 2-D operands of the same
shapes and dtype, at least `MIN_TERMS` of them. The sum is computed in another order (float
rounding), as any GEMM would.
"""
from __future__ import annotations

from kgraph.compiler.passes.rebuild import replace_in_order
from kgraph.ir.graph import Graph, Node, Value
from kgraph.ops.registry import get_op

MIN_TERMS = 3


def batch_weight_gradients(graph: Graph) -> Graph:
    users = graph.users()
    rewrites = {}  # root Add node id -> the (a, b) pairs of its terms
    for node in graph.nodes:
        if node.op != "Add" or _internal(node.outputs[0], users):
            continue
        terms = _terms(node, users)
        if terms is not None and len(terms) >= MIN_TERMS:
            rewrites[node.id] = terms
    return replace_in_order(graph, {i: _stacked(graph, terms) for i, terms in rewrites.items()})


def _stacked(graph, terms):
    """The rewrite of a sum of `aᵀ b` terms into one product of the stacked operands."""
    def rewrite(node):
        stacked_a = _add(graph, "Concat", [a for a, _ in terms], axis=0)
        stacked_b = _add(graph, "Concat", [b for _, b in terms], axis=0)
        return _add(graph, "MatMul",
                    [_add(graph, "Transpose", [stacked_a], perm=(1, 0)), stacked_b])
    return rewrite


def _internal(value: Value, users) -> bool:
    """An Add's output feeding exactly one other Add: part of a bigger sum."""
    consumers = users.get(value, [])
    return len(consumers) == 1 and consumers[0].op == "Add"


def _terms(root: Node, users):
    """The (a, b) of every `aᵀ b` leaf of the Add tree at `root`, or None if a leaf is not
    such a product (or the products differ in shape or dtype)."""
    terms, stack = [], list(root.inputs)
    while stack:
        value = stack.pop()
        node = value.node
        if node.op == "Add" and _internal(value, users):
            stack.extend(node.inputs)
            continue
        if node.op != "MatMul" or len(users.get(value, [])) != 1:
            return None
        left, b = node.inputs
        if left.node.op != "Transpose" or tuple(left.node.attrs["perm"]) != (1, 0):
            return None
        a = left.node.inputs[0]
        if len(a.shape) != 2 or len(b.shape) != 2:
            return None
        terms.append((a, b))
    shapes = {(a.shape[1], b.shape[1], a.dtype, b.dtype) for a, b in terms}
    return terms[::-1] if len(shapes) == 1 else None


def _add(graph, op, inputs, **attrs) -> Value:
    types = get_op(op).infer([v.type for v in inputs], **attrs)
    return graph.append_node(op, list(inputs), attrs, types)[0]
