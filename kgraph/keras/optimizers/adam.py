"""`keras.optimizers.Adam`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.checks import check_number
from kgraph.ops.adam_update import adam_update
from kgraph.runtime import native_ops


class Adam(Optimizer):
    """Adam, Keras 3 formulas: epsilon is added to the uncorrected `sqrt(v)`.

    `m += (g - m)(1 - beta_1)`, `v += (g² - v)(1 - beta_2)`,
    `alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)`, `w -= alpha * m / (sqrt(v) + epsilon)`;
    with `amsgrad`, `v_hat = max(v_hat, v)` replaces `v` in the last step.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_1: float in [0, 1), decay of the first moment. Defaults to `0.9`.
        beta_2: float in [0, 1), decay of the second moment. Defaults to `0.999`.
        epsilon: float >= 0. Defaults to `1e-7`.
        amsgrad: bool. Use the AMSGrad variant. Defaults to `False`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    """

    slot_groups = (("momentum", "velocity"), ("velocity_hat",))

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        check_moments(type(self).__name__, beta_1, beta_2, epsilon)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def build_slots(self, var):
        names = ["momentum", "velocity"] + (["velocity_hat"] if self.amsgrad else [])
        return [self.add_variable_from_reference(var, n) for n in names]

    def update_step(self, g, var, lr, t):
        v_hat = self.slot(var, "velocity_hat") if self.amsgrad else None
        adam_step(var, g, self.slot(var, "momentum"), self.slot(var, "velocity"), lr, t,
                  self.beta_1, self.beta_2, self.epsilon, v_hat)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


def adam_step(var, g, m, v, lr, t, beta_1, beta_2, epsilon, v_hat=None):
    """Keras 3's Adam update of `var` and its slots `m`, `v` (and AMSGrad's `v_hat`); Muon's
    Adam step too."""
    b1, b2 = float(beta_1), float(beta_2)
    alpha = lr * ops.sqrt(1.0 - ops.power(b2, t)) / (1.0 - ops.power(b1, t))
    if v_hat is None and _one_update_op(var, g, alpha):
        new_var, m_new, v_new = adam_update(var.value, g, m.value, v.value, alpha, b1, b2,
                                            epsilon)
        m.assign(m_new)
        v.assign(v_new)
        var.assign(new_var)
        return
    m_new = m.value + (g - m.value) * (1.0 - b1)
    v_new = v.value + (ops.square(g) - v.value) * (1.0 - b2)
    m.assign(m_new)
    v.assign(v_new)
    if v_hat is not None:
        v_new = ops.maximum(v_hat.value, v_new)
        v_hat.assign(v_new)
    var.assign(var.value - (m_new * alpha) / (ops.sqrt(v_new) + float(epsilon)))


def _one_update_op(var, g, alpha):
    """Whether the update is one `AdamUpdate` op: float32 throughout, and kgraph's
    onnxruntime operators to run it (runtime/native_ops.py)."""
    value = var.value
    return (value.dtype == "float32" and getattr(g, "dtype", None) == "float32"
            and getattr(alpha, "dtype", None) == "float32"
            and tuple(getattr(g, "shape", ())) == tuple(value.shape)
            and native_ops.available())


def check_moments(owner, beta_1, beta_2, epsilon):
    """The checks shared by the Adam family."""
    check_number(owner, "beta_1", beta_1, 0, 1, high_open=True)
    check_number(owner, "beta_2", beta_2, 0, 1, high_open=True)
    check_number(owner, "epsilon", epsilon, low=0)
