"""A product of a flattened transpose permutes the weight's rows instead of the activations.

Keras' `Flatten` of a channels-last convolution's output lowers to `Reshape(Transpose(x))`,
channels first to channels last (the convolutions run channels first), and `cancel_transposes`
cannot move that Transpose past the Reshape. When a `Dense` kernel `w` is what multiplies the
flattened rows, the Transpose only reorders the product's contracted axis, so a train step
can run on the untransposed rows and the kernel's rows reordered to match:

- forward: `MatMul(Reshape(Transpose(x, p)), w)` is `MatMul(Reshape(x), Gather(w, order))`;
- the kernel's gradient: `MatMul(Transpose(Reshape(Transpose(x, p))), g)` is
  `Gather(MatMul(Transpose(Reshape(x)), g), inverse order)`;
- the input's gradient: `Transpose(Reshape(MatMul(g, Transpose(w))), p^-1)` is
  `Reshape(MatMul(g, Transpose(Gather(w, order))))`.

Each Transpose of the activations (batch x features, twice a step) becomes a Gather of the
weight or its gradient (features x units). That is cheaper at a training batch larger than the
units, and dearer at an inference batch of one, so the pass rewrites only graphs that update
variables (train steps). The forward product and the input's gradient sum the same products
in another order (float rounding); the kernel's gradient is the same values, bit for bit.
"""
from __future__ import annotations

import numpy as np

from kgraph.compiler.passes.rebuild import replace_in_order
from kgraph.ir.graph import Graph
from kgraph.ops.registry import apply


def permute_flattened_products(graph: Graph) -> Graph:
    if not graph.updates:
        return graph
    users = graph.users()
    kept = set(graph.outputs) | set(graph.updates.values())

    def only_users(value):
        return [] if value in kept else users.get(value, [])

    plan = {}  # node id -> (kind, order, shape)
    for node in graph.nodes:
        flat = _flattened_transpose(node)
        if flat is not None and [n.id for n in only_users(node.inputs[0])] == [node.id]:
            plan.update(_flat_readers(node, flat, only_users))
        unflat = _unflattened_product(node, only_users)
        if unflat is not None:
            plan[node.id] = ("input_grad",) + unflat
    if not plan:
        return graph
    made = {}  # nodes the rewrites share: the untransposed rows, each reordered weight

    def once(key, build):
        if key not in made:
            made[key] = build()
        return made[key]

    def reordered_rows(w, order):
        return once(("gather", w, order.tobytes()),
                    lambda: apply("Gather", w, graph.constant(order), axis=0))

    def rewrite(node):  # operands read through the node's inputs, as replaced so far
        kind, order, shape = plan[node.id]
        if kind == "input_grad":
            product = node.inputs[0].node.inputs[0].node
            g, w = product.inputs[0], product.inputs[1].node.inputs[0]
            product = apply("MatMul", g, apply("Transpose", reordered_rows(w, order),
                                               perm=(1, 0)))
            return apply("Reshape", product, shape=shape)
        flat = node.inputs[0].node if kind == "forward" else node.inputs[0].node.inputs[0].node
        x = flat.inputs[0].node.inputs[0]
        rows = once(("rows", x), lambda: apply("Reshape", x, shape=shape))
        if kind == "forward":
            return apply("MatMul", rows, reordered_rows(node.inputs[1], order))
        # the kernel's gradient, its rows back in the flattened transpose's order
        product = apply("MatMul", apply("Transpose", rows, perm=(1, 0)), node.inputs[1])
        return apply("Gather", product, graph.constant(np.argsort(order)), axis=0)

    return replace_in_order(graph, dict.fromkeys(plan, rewrite))


def _flattened_transpose(node):
    """(order, the rows' shape) where `node` is Reshape(Transpose(x, p)) to (batch, features),
    p keeping the batch axis first: `order` holds, for each flat position of x's rows, its
    flat index in the transposed rows."""
    if node.op != "Reshape" or node.inputs[0].node.op != "Transpose":
        return None
    t = node.inputs[0].node
    perm, shape, out = tuple(t.attrs["perm"]), tuple(t.outputs[0].shape), node.outputs[0]
    if perm[0] != 0 or len(out.shape) != 2 or None in shape[1:] or \
            out.shape[1] != int(np.prod(shape[1:])):
        return None
    order = np.arange(out.shape[1], dtype=np.int64).reshape(shape[1:]) \
        .transpose(np.argsort(np.asarray(perm[1:]) - 1)).ravel()
    return order, tuple(out.shape)


def _flat_readers(node, flat, only_users):
    """The rewrites of every reader of the flattened rows `node` (whose Transpose nothing else
    reads: it goes): products with a weight ("forward") and, through a Transpose, the weight's
    gradient ("kernel_grad"); none unless every reader is one of those."""
    rewrites, rows = {}, node.outputs[0]
    for r in only_users(rows):
        if r.op == "MatMul" and r.inputs[0] is rows and r.inputs[1] is not rows and \
                len(r.inputs[1].shape) == 2:
            rewrites[r.id] = ("forward",) + flat
            continue
        products = only_users(r.outputs[0]) if r.op == "Transpose" and \
            tuple(r.attrs["perm"]) == (1, 0) else []
        if not products or not all(m.op == "MatMul" and m.inputs[0] is r.outputs[0] and
                                   m.inputs[1] is not r.outputs[0] for m in products):
            return {}
        rewrites.update((m.id, ("kernel_grad",) + flat) for m in products)
    return rewrites


def _unflattened_product(node, only_users):
    """(order, shape) where `node` is Transpose(Reshape(MatMul(g, Transpose(w))), p) with
    p keeping the batch axis first, each intermediate read by the next alone: `order` holds,
    for each flat position of the result's rows, the product's column it comes from."""
    if node.op != "Transpose" or node.inputs[0].node.op != "Reshape":
        return None
    reshape = node.inputs[0].node
    product = reshape.inputs[0].node
    perm, shape = tuple(node.attrs["perm"]), tuple(reshape.outputs[0].shape)
    if product.op != "MatMul" or perm[0] != 0 or None in shape[1:] or \
            len(product.outputs[0].shape) != 2 or \
            product.outputs[0].shape[1] != int(np.prod(shape[1:])):
        return None
    wt = product.inputs[1].node
    if wt.op != "Transpose" or tuple(wt.attrs["perm"]) != (1, 0) or \
            [n.id for n in only_users(reshape.inputs[0])] != [reshape.id] or \
            [n.id for n in only_users(reshape.outputs[0])] != [node.id]:
        return None
    order = np.arange(product.outputs[0].shape[1], dtype=np.int64).reshape(shape[1:]) \
        .transpose(np.asarray(perm[1:]) - 1).ravel()
    return order, tuple(node.outputs[0].shape)
