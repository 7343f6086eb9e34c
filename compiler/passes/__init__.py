"""Graph passes: small single-purpose functions `Graph -> Graph`, one file each."""
from kgraph.compiler.passes.batch_weight_gradients import batch_weight_gradients
from kgraph.compiler.passes.cancel_transposes import cancel_transposes
from kgraph.compiler.passes.eliminate_common_subexpressions import eliminate_common_subexpressions
from kgraph.compiler.passes.eliminate_dead_code import eliminate_dead_code
from kgraph.compiler.passes.fold_expands import fold_expands
from kgraph.compiler.passes.fold_constants import fold_constants
from kgraph.compiler.passes.fuse_relu_gradients import fuse_relu_gradients
from kgraph.compiler.passes.manager import optimize, run_passes
from kgraph.compiler.passes.permute_flattened_products import permute_flattened_products
from kgraph.compiler.passes.pool_gradient_masks import (fold_masks_into_pool_gradients,
                                                        sum_pool_gradients_before_routing)

__all__ = ["batch_weight_gradients", "cancel_transposes", "eliminate_common_subexpressions",
           "eliminate_dead_code", "fold_constants", "fold_expands", "fold_masks_into_pool_gradients",
           "fuse_relu_gradients", "optimize", "permute_flattened_products", "run_passes",
           "sum_pool_gradients_before_routing"]
