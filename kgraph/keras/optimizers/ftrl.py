"""`keras.optimizers.Ftrl`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras import initializers
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number


class Ftrl(Optimizer):
    """FTRL-Proximal (McMahan et al., 2013), Keras 3 formulas.

    With `p = -learning_rate_power`, `l2 = l2_regularization_strength + beta / (2 lr)`:
    `n' = n + g²`; `z += g + 2 l2_shrinkage w - (n'^p - n^p) / lr * w`;
    `w = (clip(z, -l1, l1) - z) / (n'^p / lr + 2 l2)`; `n = n'`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        learning_rate_power: float <= 0. Defaults to `-0.5`.
        initial_accumulator_value: float >= 0, the start of the accumulator `n`.
            Defaults to `0.1`.
        l1_regularization_strength: float >= 0. Defaults to `0.0`.
        l2_regularization_strength: float >= 0. Defaults to `0.0`.
        l2_shrinkage_regularization_strength: float >= 0, an L2 penalty on the weights
            added to the gradient (magnitude penalty). Defaults to `0.0`.
        beta: float. Defaults to `0.0`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Ftrl(learning_rate=0.1, l1_regularization_strength=0.01)
    """

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5,
                 initial_accumulator_value=0.1, l1_regularization_strength=0.0,
                 l2_regularization_strength=0.0, l2_shrinkage_regularization_strength=0.0,
                 beta=0.0, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_number("Ftrl", "initial_accumulator_value", initial_accumulator_value, low=0)
        check_number("Ftrl", "learning_rate_power", learning_rate_power, high=0)
        for key, value in (("l1_regularization_strength", l1_regularization_strength),
                           ("l2_regularization_strength", l2_regularization_strength),
                           ("l2_shrinkage_regularization_strength",
                            l2_shrinkage_regularization_strength)):
            check_number("Ftrl", key, value, low=0)
        check_number("Ftrl", "beta", beta)
        self.learning_rate_power = learning_rate_power
        self.initial_accumulator_value = initial_accumulator_value
        self.l1_regularization_strength = l1_regularization_strength
        self.l2_regularization_strength = l2_regularization_strength
        self.l2_shrinkage_regularization_strength = l2_shrinkage_regularization_strength
        self.beta = beta

    def build_slots(self, var):
        start = initializers.Constant(float(self.initial_accumulator_value))
        return [self.add_variable_from_reference(var, "accumulator", initializer=start),
                self.add_variable_from_reference(var, "linear")]

    def update_step(self, g, var, lr, t):
        accumulator, linear = self.slot(var, "accumulator"), self.slot(var, "linear")
        power = -float(self.learning_rate_power)
        l1 = float(self.l1_regularization_strength)
        l2 = float(self.l2_regularization_strength) + float(self.beta) / (2.0 * lr)
        w = var.value
        shrunk = g + 2.0 * float(self.l2_shrinkage_regularization_strength) * w
        new_accumulator = accumulator.value + ops.square(g)
        new_power = ops.power(new_accumulator, power)
        z = linear.value + shrunk - (new_power - ops.power(accumulator.value, power)) / lr * w
        linear.assign(z)
        quadratic = new_power / lr + 2.0 * l2
        var.assign((ops.clip(z, -l1, l1) - z) / quadratic)
        accumulator.assign(new_accumulator)

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength":
                    self.l2_shrinkage_regularization_strength,
                "beta": self.beta}
