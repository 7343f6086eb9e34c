"""`keras.optimizers.Adagrad`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras import initializers
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number


class Adagrad(Optimizer):
    """Adagrad, Keras 3 formulas: `acc += g²`, `w -= lr * g / sqrt(acc + epsilon)`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        initial_accumulator_value: float >= 0, the starting value of the accumulators.
            Defaults to `0.1`.
        epsilon: float >= 0. Defaults to `1e-7`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Adagrad(learning_rate=0.01)
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_number("Adagrad", "initial_accumulator_value", initial_accumulator_value, low=0)
        check_number("Adagrad", "epsilon", epsilon, low=0)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def build_slots(self, var):
        init = initializers.Constant(self.initial_accumulator_value)
        return [self.add_variable_from_reference(var, "accumulator", initializer=init)]

    def update_step(self, g, var, lr, t):
        accumulator = self.slot(var, "accumulator")
        acc_new = accumulator.value + ops.square(g)
        accumulator.assign(acc_new)
        var.assign(var.value - (lr * g) / ops.sqrt(acc_new + float(self.epsilon)))

    def get_config(self):
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}
