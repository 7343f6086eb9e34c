"""Runs a list of passes, verifying the graph after each one when asked (always in tests)."""
from __future__ import annotations

import os

from kgraph.ir.graph import Graph
from kgraph.ir.verify import verify

VERIFY = os.environ.get("KGRAPH_VERIFY", "0") == "1"


def run_passes(graph: Graph, passes, check: bool | None = None) -> Graph:
    check = VERIFY if check is None else check
    if check:
        verify(graph)
    for p in passes:
        graph = p(graph)
        if check:
            verify(graph, after=p.__name__)
    return graph


def optimize(graph: Graph, check: bool | None = None) -> Graph:
    from kgraph.compiler.passes import (batch_weight_gradients, cancel_transposes,
                                        eliminate_common_subexpressions, eliminate_dead_code,
                                        fold_constants, fold_expands)
    from kgraph.compiler.passes.fuse_relu_gradients import fuse_relu_gradients
    from kgraph.compiler.passes.permute_flattened_products import permute_flattened_products
    from kgraph.compiler.passes.pool_gradient_masks import (
        fold_masks_into_pool_gradients, sum_pool_gradients_before_routing)
    from kgraph.compiler.passes.scans import drop_unused_scan_history

    return run_passes(graph, [fold_constants, eliminate_common_subexpressions,
                              batch_weight_gradients, cancel_transposes,
                              permute_flattened_products, fold_masks_into_pool_gradients,
                              sum_pool_gradients_before_routing, fuse_relu_gradients,
                              fold_expands, eliminate_dead_code, drop_unused_scan_history],
                       check)
