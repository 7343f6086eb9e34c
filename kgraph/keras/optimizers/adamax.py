"""`keras.optimizers.Adamax`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.adam import check_moments
from kgraph.keras.optimizers.base import Optimizer


class Adamax(Optimizer):
    """Adamax, the infinity-norm variant of Adam (Kingma & Ba, §7.1), Keras 3 formulas.

    `m += (g - m)(1 - beta_1)`, `u = max(beta_2 * u, |g|)`,
    `w -= lr * m / ((1 - beta_1^t) * (u + epsilon))`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1), decay of the first moment. Defaults to `0.9`.
        beta_2: float in [0, 1), decay of the infinity norm. Defaults to `0.999`.
        epsilon: float >= 0. Defaults to `1e-7`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Adamax(learning_rate=2e-3)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="adamax", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_moments("Adamax", beta_1, beta_2, epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, n) for n in ("momentum", "norm")]

    def update_step(self, g, var, lr, t):
        b1, b2 = float(self.beta_1), float(self.beta_2)
        m, u = self.slot(var, "momentum"), self.slot(var, "norm")
        m_new = m.value + (g - m.value) * (1.0 - b1)
        u_new = ops.maximum(b2 * u.value, ops.abs(g))
        m.assign(m_new)
        u.assign(u_new)
        denominator = (1.0 - ops.power(b1, t)) * (u_new + float(self.epsilon))
        var.assign(var.value - (lr * m_new) / denominator)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
