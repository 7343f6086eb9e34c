"""`keras.optimizers.Nadam`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.adam import check_moments
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.clipping import cast_to


class Nadam(Optimizer):
    """Nadam, Adam with Nesterov momentum (Dozat, 2015), Keras 3 formulas.

    With the momentum cache `u_t = beta_1 (1 - 0.5 * 0.96^t)` and its running product
    `P_t = u_1 ... u_t` (the optimizer variable `u_product`, updated once per step before
    the variables): `m += (g - m)(1 - beta_1)`, `v += (g² - v)(1 - beta_2)`,
    `m_hat = u_{t+1} m / (1 - P_t u_{t+1}) + (1 - u_t) g / (1 - P_t)`,
    `v_hat = v / (1 - beta_2^t)`, `w -= lr * m_hat / (sqrt(v_hat) + epsilon)`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1), decay of the first moment. Defaults to `0.9`.
        beta_2: float in [0, 1), decay of the second moment. Defaults to `0.999`.
        epsilon: float >= 0. Defaults to `1e-7`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Nadam(learning_rate=2e-3)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="nadam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_moments("Nadam", beta_1, beta_2, epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self._u_product = None

    def build(self, variables):
        super().build(variables)
        if self._u_product is None:  # after the slots, as Keras 3 creates it
            dtype = variables[0].dtype if variables else None
            self._u_product = self.add_variable((), initializer="ones", dtype=dtype,
                                                name="u_product")

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, n) for n in ("momentum", "velocity")]

    def _momentum_cache(self, t):
        return float(self.beta_1) * (1.0 - 0.5 * ops.power(0.96, t))

    def _update_variables(self, grads, variables, lr, t):
        u = self._u_product
        u.assign(u.value * float(self.beta_1) * (1.0 - 0.5 * ops.power(0.96, cast_to(t, u.dtype))))
        super()._update_variables(grads, variables, lr, t)

    def update_step(self, g, var, lr, t):
        b1, b2 = float(self.beta_1), float(self.beta_2)
        u_t, u_t1 = self._momentum_cache(t), self._momentum_cache(t + 1.0)
        u_product = cast_to(self._u_product.value, var.dtype)
        m, v = self.slot(var, "momentum"), self.slot(var, "velocity")
        m_new = m.value + (g - m.value) * (1.0 - b1)
        v_new = v.value + (ops.square(g) - v.value) * (1.0 - b2)
        m.assign(m_new)
        v.assign(v_new)
        m_hat = (u_t1 * m_new) / (1.0 - u_product * u_t1) + ((1.0 - u_t) * g) / (1.0 - u_product)
        v_hat = v_new / (1.0 - ops.power(b2, t))
        var.assign(var.value - (m_hat * lr) / (ops.sqrt(v_hat) + float(self.epsilon)))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}

