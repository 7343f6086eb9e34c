"""`keras.mixed_precision`: dtype policies and loss scaling.

`set_global_policy("mixed_float16")` makes new layers compute in float16 while their
variables (and the optimizer's state) stay float32; `compile()` then wraps the optimizer in a
`LossScaleOptimizer`, whose dynamic loss scale runs inside the training graph.
"""
from kgraph.keras.mixed_precision.policy import (DTypePolicy, FloatDTypePolicy,  # noqa: F401
                                                 Policy, dtype_policy, global_policy,
                                                 set_dtype_policy, set_global_policy)


def __getattr__(name):  # the optimizer module imports the Keras optimizer package: lazily
    if name == "LossScaleOptimizer":
        from kgraph.keras.optimizers.loss_scale_optimizer import LossScaleOptimizer

        return LossScaleOptimizer
    raise AttributeError(f"module 'kgraph.keras.mixed_precision' has no attribute {name!r}")
