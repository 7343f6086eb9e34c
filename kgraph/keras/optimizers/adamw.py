"""`keras.optimizers.AdamW`."""
from __future__ import annotations

from kgraph.keras.optimizers.adam import Adam


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), Keras 3 formulas.

    The decay `w -= w * weight_decay * lr` runs before each Adam update (the base class
    applies it); the Adam step itself is `keras.optimizers.Adam`'s.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        weight_decay: float >= 0. Defaults to `0.004`; `None` is an error.
        beta_1: float in [0, 1). Defaults to `0.9`.
        beta_2: float in [0, 1). Defaults to `0.999`.
        epsilon: float >= 0. Defaults to `1e-7`.
        amsgrad: bool. Use the AMSGrad variant. Defaults to `False`.
        **kwargs: the base `Optimizer` arguments (`clipnorm`, `loss_scale_factor`, ...).

    Example:

    >>> opt = keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-2)
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, name="adamw", **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, name=name,
                         weight_decay=weight_decay, **kwargs)
