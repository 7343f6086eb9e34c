"""`keras.optimizers.RMSprop`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number


class RMSprop(Optimizer):
    """RMSprop, Keras 3 formulas (epsilon inside the square root).

    `v = rho * v + (1 - rho) * g²`; centered: `a = rho * a + (1 - rho) * g` and
    `den = v - a² + epsilon`, else `den = v + epsilon`; `inc = lr * g / sqrt(den)`;
    with momentum `mom = momentum * mom + inc; w -= mom`, else `w -= inc`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        rho: float in [0, 1], the discount of the old squared gradients. Defaults to `0.9`.
        momentum: float in [0, 1]. Defaults to `0.0` (no momentum slot is created).
        epsilon: float >= 0. Defaults to `1e-7`.
        centered: bool. Normalise by the estimated variance of the gradient instead of its
            uncentered second moment. Defaults to `False`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.RMSprop(learning_rate=0.1)
    """

    # Keras 3 creates every velocity, then every momentum, then every average gradient.
    slot_groups = (("velocity",), ("momentum",), ("average_gradient",))

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, name="rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_number("RMSprop", "rho", rho, 0, 1)
        check_number("RMSprop", "momentum", momentum, 0, 1)
        check_number("RMSprop", "epsilon", epsilon, low=0)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def build_slots(self, var):
        names = (["velocity"] + (["momentum"] if self.momentum > 0 else [])
                 + (["average_gradient"] if self.centered else []))
        return [self.add_variable_from_reference(var, n) for n in names]

    def update_step(self, g, var, lr, t):
        rho, eps = float(self.rho), float(self.epsilon)
        velocity = self.slot(var, "velocity")
        v_new = rho * velocity.value + (1.0 - rho) * ops.square(g)
        velocity.assign(v_new)
        if self.centered:
            average = self.slot(var, "average_gradient")
            a_new = rho * average.value + (1.0 - rho) * g
            average.assign(a_new)
            denominator = v_new - ops.square(a_new) + eps
        else:
            denominator = v_new + eps
        increment = (lr * g) / ops.sqrt(denominator)
        if self.momentum > 0:
            momentum = self.slot(var, "momentum")
            increment = float(self.momentum) * momentum.value + increment
            momentum.assign(increment)
        var.assign(var.value - increment)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
