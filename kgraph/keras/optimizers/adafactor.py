"""`keras.optimizers.Adafactor`."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.optimizers.base import Optimizer
from kgraph.variables import Variable


class Adafactor(Optimizer):
    """Adafactor, a second moment factored into row and column means (Shazeer & Stern, 2018),
    Keras 3 formulas.

    With `t` the step, `rho = min(lr, 1 / sqrt(t))`, `alpha = max(epsilon_2, rms(w)) * rho`,
    `beta = 1 - t^beta_2_decay`, `q = g² + epsilon_1`: a variable of rank >= 2 keeps
    `r = beta r + (1 - beta) mean(q, -1)`, `c = beta c + (1 - beta) mean(q, -2)` and
    `v = (r / mean(r, -1))[..., None] * c[..., None, :]`; a smaller one keeps
    `v = beta v + (1 - beta) q`. Then `u = g / sqrt(v)`,
    `w -= alpha * u / max(1, rms(u) / clip_threshold)`.

    Slots are Keras 3's, in its order, per variable: `r` and `c` (named after the variable;
    int32 scalars that stay 0 for a variable of rank < 2) and `velocity`.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        beta_2_decay: float, the decay exponent of the second moment. Defaults to `-0.8`.
        epsilon_1: float, added to the squared gradient. Defaults to `1e-30`.
        epsilon_2: float, the least `rms(w)` that scales the step. Defaults to `1e-3`.
        clip_threshold: float, the largest `rms` of the normalized update.
            Defaults to `1.0`.
        relative_step: bool. Keras 3 caps the learning rate at `1 / sqrt(t)` whether or not it
            is set (the step size `rho` is capped anyway), so this only goes into the config.
            Defaults to `True`.
        **kwargs: the base `Optimizer` arguments (`weight_decay`, `clipnorm`, ...).

    Example:

    >>> opt = keras.optimizers.Adafactor(learning_rate=1e-2)
    """

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30,
                 epsilon_2=1e-3, clip_threshold=1.0, relative_step=True, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = beta_2_decay, epsilon_1, epsilon_2
        self.clip_threshold, self.relative_step = clip_threshold, relative_step

    def build_slots(self, var):
        if len(var.shape) < 2:
            # Keras 3 makes untracked-looking int32 placeholders, listed in `variables`
            factors = [Variable(np.int32(0), dtype="int32", trainable=False, name=var.name)
                       for _ in range(2)]
        else:
            factors = [Variable(np.zeros(shape, dtype=var.dtype), dtype=var.dtype,
                                trainable=False, name=var.name, path=f"{self.name}/{var.name}")
                       for shape in (var.shape[:-1], var.shape[:-2] + var.shape[-1:])]
        for short_name, factor in zip(("r", "c"), factors):
            self._slot_names[id(factor)] = short_name
        return factors + [self.add_variable_from_reference(var, "velocity")]

    def update_step(self, g, var, lr, t):
        v = self.slot(var, "velocity")
        rho = ops.minimum(lr, 1.0 / ops.sqrt(t))
        alpha = ops.maximum(float(self.epsilon_2), _rms(var.value)) * rho
        squared = ops.square(g) + float(self.epsilon_1)
        beta = 1.0 - ops.power(t, float(self.beta_2_decay))
        if len(var.shape) >= 2:
            r, c = self.slot(var, "r"), self.slot(var, "c")
            r_new = beta * r.value + (1.0 - beta) * ops.mean(squared, axis=-1)
            c_new = beta * c.value + (1.0 - beta) * ops.mean(squared, axis=-2)
            r.assign(r_new)
            c.assign(c_new)
            v_new = (ops.expand_dims(r_new / ops.mean(r_new, axis=-1, keepdims=True), -1)
                     * ops.expand_dims(c_new, -2))
        else:
            v_new = beta * v.value + (1.0 - beta) * squared
        v.assign(v_new)
        u = g / ops.sqrt(v_new)
        u = u / ops.maximum(1.0, _rms(u) / float(self.clip_threshold))
        var.assign(var.value - alpha * u)

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay,
                "epsilon_1": self.epsilon_1, "epsilon_2": self.epsilon_2,
                "clip_threshold": self.clip_threshold, "relative_step": self.relative_step}


def _rms(x):
    return ops.sqrt(ops.mean(ops.square(x)))
