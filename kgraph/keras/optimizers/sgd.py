from __future__ import annotations

from kgraph.keras.optimizers.base import Optimizer


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, Keras 3 formulas."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: `momentum` must be in [0, 1]. Received: momentum={momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, "momentum")] if self.momentum else []

    def update_step(self, g, var, lr, t):
        if not self.momentum:
            var.assign(var.value - g * lr)
            return
        (m,) = self.slots(var)
        m_new = m.value * self.momentum - g * lr
        m.assign(m_new)
        if self.nesterov:
            var.assign(var.value + m_new * self.momentum - g * lr)
        else:
            var.assign(var.value + m_new)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}
