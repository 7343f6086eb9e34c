"""What runs inside a `Scan` body runs once per step: move out of it all that need not.

`optimize_body` rewrites a freshly traced body (kgraph/ops/recurrence.py `trace_body`):
- dead nodes go;
- products are re-associated so that the factors that do not depend on the carries meet first:
  `(g · a) · b` with only `g` carry-dependent becomes `g · (a · b)` (a sigmoid's gradient
  `g · y · (1 - y)` after a product's, say), leaving one product per step instead of two;
- loop-invariant code motion: a node computed from invariants (and constants) alone runs once,
  in the enclosing graph, before the loop (a weight's transpose in a backward step);
- vectorisation: an elementwise node computed from the steps' sequence slices (and invariants,
  constants) but not from the carries runs once over the whole stacked sequences (the gate
  derivatives `y · (1 - y)` of a backward step, from the saved activations of all steps).
The body then reads those results as new invariants and sequences. Products re-associated
round differently (as any reordering of a GEMM does); nothing else changes a value.
"""
from __future__ import annotations

from kgraph.ir.graph import Node, Value
from kgraph.ir.types import TensorType
from kgraph.ops.registry import get_op


def optimize_body(body, outer, carries, slices: dict, invariants: dict):
    """Rewrite `body` in place (see the module docstring).

    Args:
        body: the traced body graph, its outputs set.
        outer: the enclosing graph, where moved nodes are added.
        carries: the body's carry placeholders.
        slices: {slice placeholder: the enclosing graph's stacked sequence}.
        invariants: {invariant placeholder: the enclosing graph's value}.

    Returns:
        (new slice placeholders, their stacked sequences, invariant placeholders, their values),
        the invariants being those still read (and those made by code motion).
    """
    from kgraph.compiler.passes.cancel_transposes import ELEMENTWISE
    from kgraph.compiler.passes.eliminate_dead_code import eliminate_dead_code

    eliminate_dead_code(body)
    _reassociate_products(body, set(carries))
    eliminate_dead_code(body)
    steps = next(iter(slices.values())).shape[0] if slices else None
    inv, seq, moved = dict(invariants), dict(slices), set()
    for node in body.nodes:
        if node.op in ("Input", "Constant") or not node.inputs or len(node.outputs) != 1:
            continue
        kinds = [_kind(v, inv, seq) for v in node.inputs]
        if "carry" in kinds or "inv" not in kinds and "seq" not in kinds:
            continue
        out = node.outputs[0]
        if "seq" not in kinds:  # invariant: once, before the loop
            ins = [inv[v] if k == "inv" else outer.constant(v.node.attrs["value"])
                   for v, k in zip(node.inputs, kinds)]
            inv[out] = outer.append_node(node.op, ins, node.attrs, [out.type])[0]
        elif node.op in ELEMENTWISE and _broadcasts_alike(node, kinds):  # over all steps
            ins = [seq[v] if k == "seq" else inv[v] if k == "inv"
                   else outer.constant(v.node.attrs["value"]) for v, k in zip(node.inputs, kinds)]
            seq[out] = outer.append_node(node.op, ins, node.attrs,
                                         [TensorType((steps,) + out.shape, out.dtype)])[0]
        else:
            continue
        moved.add(node.id)
    result = _rewire(body, moved, slices, invariants, seq, inv)
    eliminate_dead_code(body)  # the constants only moved nodes read
    return result


def _kind(v, inv, seq):
    if v in inv:
        return "inv"
    if v in seq:
        return "seq"
    return "const" if v.node.op == "Constant" else "carry"


def _broadcasts_alike(node, kinds) -> bool:
    """Whether the op on stacked operands equals the stack of the op per step: every sequence
    operand has the result's rank (its step axis lines up first), the others no more."""
    rank = node.outputs[0].ndim
    return all(v.ndim == rank if k == "seq" else v.ndim <= rank
               for v, k in zip(node.inputs, kinds))


def _rewire(body, moved, slices, invariants, seq, inv):
    """Drop the moved nodes; the values the body still reads of them become placeholders."""
    read = {v for node in body.nodes if node.id not in moved for v in node.inputs}
    read.update(body.outputs)
    new_slices, new_sequences, kept_inner, kept_values = [], [], [], []
    for inside, value in inv.items():
        if inside in read:
            kept_inner.append(_placeholder(body, inside) if inside not in invariants else inside)
            kept_values.append(value)
    for inside, value in seq.items():
        if inside in read and inside not in slices:
            new_slices.append(_placeholder(body, inside))
            new_sequences.append(value)
    keep = set(slices) | set(kept_inner) | set(new_slices)
    body.nodes = [n for n in body.nodes if n.id not in moved and
                  (n.op != "Input" or n.outputs[0] in keep or n.outputs[0] not in invariants)]
    body.nodes[:0] = [v.node for v in new_slices + kept_inner if v.node not in body.nodes]
    return new_slices, new_sequences, kept_inner, kept_values


def _placeholder(body, inside: Value) -> Value:
    """A new input of `body` standing for `inside` (a moved node's result) at every use."""
    node = Node(next(body._ids), "Input", [], {"name": ""})
    placeholder = Value(body, node, 0, inside.type)
    node.outputs = [placeholder]
    for user in body.nodes:
        if inside in user.inputs:
            user.inputs = [placeholder if v is inside else v for v in user.inputs]
    body.outputs = [placeholder if v is inside else v for v in body.outputs]
    return placeholder


def _reassociate_products(body, carries):
    """`(g · a) · b` -> `g · (a · b)` where `g` alone depends on the carries and `g · a` has
    no other use (see the module docstring)."""
    dependent = set(carries)
    users = body.users()
    out_set = set(body.outputs)
    position = {node.id: i for i, node in enumerate(body.nodes)}
    inserts = []
    for node in body.nodes:
        if any(v in dependent for v in node.inputs):
            dependent.update(node.outputs)
        if node.op != "Mul":
            continue
        for inner, b in (node.inputs, node.inputs[::-1]):
            if b in dependent or inner not in dependent or inner.node.op != "Mul" or \
                    len(users.get(inner, ())) != 1 or inner in out_set:
                continue
            g, a = inner.node.inputs
            if a in dependent:
                g, a = a, g
            if g not in dependent or a in dependent:
                continue
            types = get_op("Mul").infer([a.type, b.type])
            if tuple(types[0].shape) != tuple(b.shape) and tuple(types[0].shape) != \
                    tuple(node.outputs[0].shape):
                continue
            product = Node(next(body._ids), "Mul", [a, b], {})
            product.outputs = [Value(body, product, 0, types[0])]
            inserts.append((position[node.id], product))
            node.inputs = [g, product.outputs[0]]
            break
    for at, product in sorted(inserts, key=lambda p: p[0], reverse=True):
        body.nodes.insert(at, product)
