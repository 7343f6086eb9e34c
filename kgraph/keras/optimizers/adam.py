from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.base import Optimizer


class Adam(Optimizer):
    """Adam, Keras 3 formulas: epsilon is added to the uncorrected sqrt(v)."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def build_slots(self, var):
        slots = [self.add_variable_from_reference(var, "momentum"),
                 self.add_variable_from_reference(var, "velocity")]
        if self.amsgrad:
            slots.append(self.add_variable_from_reference(var, "velocity_hat"))
        return slots

    def update_step(self, g, var, lr, t):
        m, v = self.slots(var)[:2]
        b1, b2 = float(self.beta_1), float(self.beta_2)
        alpha = lr * ops.sqrt(1.0 - ops.power(b2, t)) / (1.0 - ops.power(b1, t))
        m_new = m.value + (g - m.value) * (1.0 - b1)
        v_new = v.value + (ops.square(g) - v.value) * (1.0 - b2)
        m.assign(m_new)
        v.assign(v_new)
        if self.amsgrad:
            v_hat = self.slots(var)[2]
            v_new = ops.maximum(v_hat.value, v_new)
            v_hat.assign(v_new)
        var.assign(var.value - (m_new * alpha) / (ops.sqrt(v_new) + float(self.epsilon)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}
