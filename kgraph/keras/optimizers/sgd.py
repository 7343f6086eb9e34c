"""`keras.optimizers.SGD`."""
from __future__ import annotations

from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, Keras 3 formulas.

    Without momentum: `w -= lr * g`. With momentum: `m = momentum * m - lr * g`, then
    `w += m`, or with `nesterov=True`, `w += momentum * m - lr * g` (with the new `m`).

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.01`.
        momentum: float in [0, 1]. Defaults to `0.0` (no momentum slot is created).
        nesterov: bool. Whether to apply Nesterov momentum. Defaults to `False`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_number("SGD", "momentum", momentum, 0, 1)
        self.momentum, self.nesterov = momentum, bool(nesterov)

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, "momentum")] if self.momentum else []

    def update_step(self, g, var, lr, t):
        if not self.momentum:
            var.assign(var.value - g * lr)
            return
        m = self.slot(var, "momentum")
        mu = float(self.momentum)
        m_new = m.value * mu - g * lr
        m.assign(m_new)
        if self.nesterov:
            var.assign(var.value + (m_new * mu - g * lr))
        else:
            var.assign(var.value + m_new)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
