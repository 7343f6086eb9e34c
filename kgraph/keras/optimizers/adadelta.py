"""`keras.optimizers.Adadelta`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), Keras 3 formulas, with a learning rate.

    With `rms(x) = sqrt(x + epsilon)`: `G = rho * G + (1 - rho) * g²`,
    `delta = -rms(D) * g / rms(G)`, `D = rho * D + (1 - rho) * delta²`, `w += lr * delta`
    (`G`: accumulated_grad, `D`: accumulated_delta_var, `D` read before its update).

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`; the paper's
            form is `1.0`.
        rho: float in [0, 1], the decay rate. Defaults to `0.95`.
        epsilon: float >= 0. Defaults to `1e-7`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Adadelta(learning_rate=1.0)
    """

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, name="adadelta", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_number("Adadelta", "rho", rho, 0, 1)
        check_number("Adadelta", "epsilon", epsilon, low=0)
        self.rho, self.epsilon = rho, epsilon

    def build_slots(self, var):
        return [self.add_variable_from_reference(var, n)
                for n in ("accumulated_grad", "accumulated_delta_var")]

    def update_step(self, g, var, lr, t):
        rho, eps = float(self.rho), float(self.epsilon)
        grads, deltas = self.slot(var, "accumulated_grad"), self.slot(var, "accumulated_delta_var")
        grads_new = rho * grads.value + (1.0 - rho) * ops.square(g)
        grads.assign(grads_new)
        delta = -((ops.sqrt(deltas.value + eps) * g) / ops.sqrt(grads_new + eps))
        deltas.assign(rho * deltas.value + (1.0 - rho) * ops.square(delta))
        var.assign(var.value + lr * delta)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}
