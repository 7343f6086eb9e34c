"""`keras.optimizers.Lion`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number


class Lion(Optimizer):
    """Lion, the sign of an interpolated momentum (Chen et al., 2023), Keras 3 formulas.

    `w -= lr * sign(beta_1 * m + (1 - beta_1) * g)`, then `m = beta_2 * m + (1 - beta_2) * g`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in (0, 1], the interpolation of the step. Defaults to `0.9`.
        beta_2: float in [0, 1], decay of the momentum. Defaults to `0.99`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Lion(learning_rate=1e-4, weight_decay=1e-2)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_number("Lion", "beta_1", beta_1, 0, 1, low_open=True)
        check_number("Lion", "beta_2", beta_2, 0, 1)
        self.beta_1, self.beta_2 = beta_1, beta_2

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, "momentum")]

    def update_step(self, g, var, lr, t):
        m = self.slot(var, "momentum")
        b1, b2 = float(self.beta_1), float(self.beta_2)
        var.assign(var.value - lr * ops.sign(m.value * b1 + g * (1.0 - b1)))
        m.assign(m.value * b2 + g * (1.0 - b2))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
