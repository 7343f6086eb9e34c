"""`keras.optimizers.ScheduleFreeAdamW`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.adam import check_moments
from kgraph.keras.optimizers.base import Optimizer


class ScheduleFreeAdamW(Optimizer):
    """Schedule-Free AdamW (Defazio et al., 2024), Keras 3 formulas.

    The model holds `y`, an interpolation of the gradient sequence `z` (slot `momentum`,
    starting at the initial weights) and the average `x`. With `lr` warmed up by
    `min(t / warmup_steps, 1)`: `v += (g² - v)(1 - beta_2)`,
    `z -= lr * g / (sqrt(v / (1 - beta_2^t)) + epsilon)`,
    `x = (y - (1 - beta_1) z_old) / beta_1` lerped to `z` by `1 / t`, and
    `y = (1 - beta_1) z + beta_1 x`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.0025`.
        beta_1: float in [0, 1), the interpolation between `z` and `x`. Defaults to `0.9`.
        beta_2: float in [0, 1), decay of the second moment. Defaults to `0.999`.
        epsilon: float >= 0. Defaults to `1e-8`.
        warmup_steps: int >= 0, steps of linear learning-rate warmup. Defaults to `0`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> model.compile(optimizer=keras.optimizers.ScheduleFreeAdamW(0.0025), loss="mse")
    """

    def __init__(self, learning_rate=0.0025, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 warmup_steps=0, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_moments("ScheduleFreeAdamW", beta_1, beta_2, epsilon)
        if not (isinstance(warmup_steps, int) and warmup_steps >= 0):
            raise ValueError("ScheduleFreeAdamW: `warmup_steps` must be an int >= 0. "
                             f"Received: warmup_steps={warmup_steps!r}")
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.warmup_steps = warmup_steps

    def build_slots(self, var):
        start = var.numpy()  # Keras 3 starts `z` at the variable's value when building

        def initial_value(shape, dtype=None):
            return start
        return [self.add_variable_from_reference(var, "momentum", initializer=initial_value),
                self.add_variable_from_reference(var, "velocity")]

    def update_step(self, g, var, lr, t):
        z, v = self.slot(var, "momentum"), self.slot(var, "velocity")
        b1, b2 = float(self.beta_1), float(self.beta_2)
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(t / float(self.warmup_steps), 1.0)
        z_old = z.value
        v_new = v.value + (ops.square(g) - v.value) * (1.0 - b2)
        v.assign(v_new)
        denominator = ops.sqrt(v_new / (1.0 - ops.power(b2, t))) + float(self.epsilon)
        z_new = z_old - lr * g / denominator
        z.assign(z_new)
        weight = 1.0 / t
        x_old = (var.value - (1.0 - b1) * z_old) / b1
        x_new = (1.0 - weight) * x_old + weight * z_new
        var.assign((1.0 - b1) * z_new + b1 * x_new)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "warmup_steps": self.warmup_steps}
