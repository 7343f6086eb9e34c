"""Two rewrites of the max-pooling gradient that move work to its pooled side (a quarter of
the data for 2x2 windows):

- a mask of the pooled input moves through it: `MaxPoolGrad(g, y, x) * m(x)` becomes
  `MaxPoolGrad(g * m(y), y, x)` (`fold_masks_into_pool_gradients`);
- a sum over its windows' axes reads the pooled gradient: `ReduceSum(MaxPoolGrad(g, y, x))`
  over axes that include every pooled axis becomes `ReduceSum(g)` over the same axes
  (`sum_pool_gradients_before_routing`): each window sends its gradient to exactly one
  input site (its first maximum, never a pad), so the sum over the sites is the sum over
  the windows. A bias before a ReLU and a pooling (a CNN's convolution) takes its gradient
  this way; the same values are summed in another order.

MaxPoolGrad sends each window's gradient to the window's first maximum p, where x[p] = y[w];
an elementwise function m of x alone therefore takes at p the value it takes at y[w], and
multiplying the routed gradient by m(x) is routing g * m(y). A ReLU before the pooling makes
this the commonest pattern of a CNN's backward pass (the ReLU's gradient mask is
`Cast(Greater(relu, 0))`): its passes over the pooling's input become passes over the pooled
output, a quarter of it for 2x2 windows. The result is the same products of the same values.

`m` is a chain of at most `MAX_CHAIN` elementwise ops from x, each taking x's chain value and
otherwise only single-element constants, whose result has the gradient's type (no broadcast).
"""
from __future__ import annotations

from kgraph.compiler.passes.cancel_transposes import ELEMENTWISE
from kgraph.compiler.passes.rebuild import replace_in_order
from kgraph.ir.graph import Graph, Value
from kgraph.ops.pool import spatial_axes
from kgraph.ops.registry import apply

MAX_CHAIN = 4


def fold_masks_into_pool_gradients(graph: Graph) -> Graph:
    rewrites = {}  # Mul node id -> its rewrite
    for node in graph.nodes:
        if node.op != "Mul":
            continue
        for routed, mask in (node.inputs, node.inputs[::-1]):
            grad = routed.node
            if grad.op == "MaxPoolGrad" and mask.type == routed.type:
                chain = _chain(mask, grad.inputs[2])
                if chain:
                    rewrites[node.id] = _moved(grad, chain)
                    break
    return replace_in_order(graph, rewrites) if rewrites else graph


def _moved(grad, chain):
    """The rewrite of `MaxPoolGrad(g, y, x) * m(x)` into `MaxPoolGrad(g * m(y), y, x)`."""
    def rewrite(node):
        g, y, x = grad.inputs
        pooled_mask, previous = y, x
        for step in chain:  # the same ops, on y instead of x
            pooled_mask = apply(step.op, *[pooled_mask if v is previous else v
                                           for v in step.inputs], **step.attrs)
            previous = step.outputs[0]
        return apply("MaxPoolGrad", apply("Mul", g, pooled_mask), y, x, **grad.attrs)
    return rewrite


def _chain(mask: Value, x: Value):
    """The nodes computing `mask` from `x` (x's end first), or None if it is not such a
    chain."""
    chain, value = [], mask
    while value is not x:
        node = value.node
        if node.op not in ELEMENTWISE or len(node.outputs) != 1 or len(chain) == MAX_CHAIN:
            return None
        varying = [v for v in node.inputs if not _single_constant(v)]
        if len(varying) != 1:
            return None
        chain.append(node)
        value = varying[0]
    return chain[::-1]


def _single_constant(value: Value) -> bool:
    return value.node.op == "Constant" and value.node.attrs["value"].size == 1


def sum_pool_gradients_before_routing(graph: Graph) -> Graph:
    """Each ReduceSum of a MaxPoolGrad over axes that include its pooled ones reads the
    gradient before routing (see the module's docstring): where every window holds an input
    site (pads smaller than the window), so no window's gradient lands in a pad."""
    for node in graph.nodes:
        routed = node.inputs[0].node if node.op == "ReduceSum" else None
        if routed is None or routed.op != "MaxPoolGrad":
            continue
        a = routed.attrs
        pooled = spatial_axes(len(routed.outputs[0].shape), a["channels_last"])
        if set(pooled) <= set(node.attrs["axes"]) and all(
                max(pad) < k for pad, k in zip(a["pads"], a["kernel"])):
            node.inputs = [routed.inputs[0]] + node.inputs[1:]
    return graph
