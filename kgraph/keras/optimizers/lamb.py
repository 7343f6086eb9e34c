"""`keras.optimizers.Lamb`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.adam import check_moments
from kgraph.keras.optimizers.base import Optimizer


class Lamb(Optimizer):
    """LAMB, Adam with a layer-wise trust ratio (You et al., 2019), Keras 3 formulas.

    Adam's bias-corrected step `u = m_hat / (sqrt(v_hat) + epsilon)` is scaled per variable
    by `||w|| / ||u||` (1 when either norm is 0): `w -= ratio * lr * u`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1), decay of the first moment. Defaults to `0.9`.
        beta_2: float in [0, 1), decay of the second moment. Defaults to `0.999`.
        epsilon: float >= 0. Defaults to `1e-7`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Lamb(learning_rate=1e-3, weight_decay=1e-4)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 name="lamb", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_moments("Lamb", beta_1, beta_2, epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, n) for n in ("momentum", "velocity")]

    def update_step(self, g, var, lr, t):
        b1, b2 = float(self.beta_1), float(self.beta_2)
        m, v = self.slot(var, "momentum"), self.slot(var, "velocity")
        m_new = m.value + (g - m.value) * (1.0 - b1)
        v_new = v.value + (ops.square(g) - v.value) * (1.0 - b2)
        m.assign(m_new)
        v.assign(v_new)
        step = (m_new / (1.0 - ops.power(b1, t))) / (
            ops.sqrt(v_new / (1.0 - ops.power(b2, t))) + float(self.epsilon))
        w_norm = ops.sqrt(ops.sum(ops.square(var.value)))
        step_norm = ops.sqrt(ops.sum(ops.square(step)))
        trusted = ops.logical_and(ops.greater(w_norm, 0.0), ops.greater(step_norm, 0.0))
        ratio = ops.where(trusted, w_norm / ops.where(trusted, step_norm, 1.0), 1.0)
        var.assign(var.value - ratio * lr * step)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon}
