"""`keras.optimizers.Muon`."""
from __future__ import annotations

import math
import re

from kgraph import ops
from kgraph.keras.optimizers.adam import adam_step
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.optimizers.clipping import cast_to


class Muon(Optimizer):
    """Muon: momentum orthogonalized by Newton-Schulz iterations (Jordan et al., 2024; Liu et
    al., 2025), with an AdamW step for the other variables, Keras 3 formulas.

    A 2-D variable whose path holds no "embedding" (with `exclude_embeddings`) and matches no
    `exclude_layers` pattern takes the Muon step: `m = momentum * m + g`,
    `u = g + momentum * m` (`nesterov`) or `m`, `u` orthogonalized by `ns_steps` quintic
    Newton-Schulz iterations (`muon_a`, `muon_b`, `muon_c`) after dividing by its Frobenius norm
    (+1e-7), scaled by `sqrt(max(rows, cols)) * rms_rate` (unless `rms_rate=None`), and
    `w -= lr * u`. Every other variable takes Adam's step with `lr * adam_lr_ratio`,
    `adam_beta_1`, `adam_beta_2` and `epsilon`. The decoupled weight decay is `weight_decay`
    for Muon variables and `adam_weight_decay` for the others.

    Args:
        learning_rate: float or `LearningRateSchedule`. Defaults to `0.001`.
        adam_beta_1, adam_beta_2: the Adam step's moment decays. Default `0.9`, `0.999`.
        adam_weight_decay: float or `None`, the decay of Adam variables. Defaults to `0.004`.
        epsilon: float, the Adam step's epsilon. Defaults to `1e-7`.
        weight_decay: float or `None`, the decay of Muon variables. Defaults to `0.004`.
        exclude_layers: list of regular expressions searched in variable paths; matching
            variables take the Adam step. Defaults to `None` (none).
        exclude_embeddings: bool. Variables with "embedding" in their path take the Adam step.
            Defaults to `True`.
        muon_a, muon_b, muon_c: the Newton-Schulz coefficients. Defaults `3.4445`, `-4.7750`,
            `2.0315`.
        adam_lr_ratio: float, the Adam step's learning rate over `learning_rate`.
            Defaults to `1`.
        momentum: float, the Muon momentum. Defaults to `0.95`.
        ns_steps: int, the number of Newton-Schulz iterations. Defaults to `5`.
        nesterov: bool. Nesterov momentum for the Muon step. Defaults to `True`.
        rms_rate: float or `None`. Defaults to `0.2`.
        **kwargs: the other base `Optimizer` arguments (`clipnorm`, `use_ema`, ...).

    Example:

    >>> opt = keras.optimizers.Muon(learning_rate=1e-3, exclude_layers=["output"])
    """

    def __init__(self, learning_rate=0.001, adam_beta_1=0.9, adam_beta_2=0.999,
                 adam_weight_decay=0.004, epsilon=1e-7, weight_decay=0.004, name=None,
                 exclude_layers=None, exclude_embeddings=True, muon_a=3.4445, muon_b=-4.7750,
                 muon_c=2.0315, adam_lr_ratio=1, momentum=0.95, ns_steps=5, nesterov=True,
                 rms_rate=0.2, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name,
                         **kwargs)
        if not (isinstance(ns_steps, int) and ns_steps >= 0):
            raise ValueError(f"Muon: `ns_steps` must be an int >= 0. Received: "
                             f"ns_steps={ns_steps!r}")
        self.adam_beta_1, self.adam_beta_2, self.epsilon = adam_beta_1, adam_beta_2, epsilon
        self.muon_a, self.muon_b, self.muon_c = muon_a, muon_b, muon_c
        self.adam_lr_ratio, self.momentum = adam_lr_ratio, momentum
        self.ns_steps, self.nesterov = ns_steps, nesterov
        self.exclude_embeddings = exclude_embeddings
        self.exclude_layers = list(exclude_layers or [])
        self.adam_weight_decay, self.rms_rate = adam_weight_decay, rms_rate

    def _should_use_adamw(self, var):
        if len(var.shape) != 2:
            return True
        if self.exclude_embeddings and "embedding" in var.path.lower():
            return True
        return any(re.search(keyword, var.path) for keyword in self.exclude_layers)

    def build_slots(self, var):
        names = ["momentum"] + (["velocity"] if self._should_use_adamw(var) else [])
        return [self.add_variable_from_reference(var, n) for n in names]

    def update_step(self, g, var, lr, t):
        m = self.slot(var, "momentum")
        if self._should_use_adamw(var):
            adam_step(var, g, m, self.slot(var, "velocity"), lr * float(self.adam_lr_ratio), t,
                      self.adam_beta_1, self.adam_beta_2, self.epsilon)
            return
        momentum = float(self.momentum)
        m_new = m.value + g + m.value * (momentum - 1.0)
        m.assign(m_new)
        update = self._orthogonalize(g + momentum * m_new if self.nesterov else m_new)
        update = lr * update
        if self.rms_rate is not None:
            update = update * (math.sqrt(max(var.shape)) * float(self.rms_rate))
        var.assign(var.value - update)

    def _orthogonalize(self, x):
        """Keras 3's `zeropower_via_newtonschulz5`: about `U V^T` of `x`'s SVD."""
        a, b, c = float(self.muon_a), float(self.muon_b), float(self.muon_c)
        tall = x.shape[-2] > x.shape[-1]
        if tall:
            x = ops.swapaxes(x, -1, -2)
        x = x / (ops.sqrt(ops.sum(ops.square(x), axis=(-2, -1), keepdims=True)) + 1e-7)
        for _ in range(self.ns_steps):
            gram = ops.matmul(x, ops.swapaxes(x, -1, -2))
            x = a * x + ops.matmul(b * gram + c * ops.matmul(gram, gram), x)
        return ops.swapaxes(x, -1, -2) if tall else x

    def _apply_weight_decay(self, variables, lr):
        for var in variables:
            if not self._use_weight_decay(var):
                continue
            decay = self.adam_weight_decay if self._should_use_adamw(var) else self.weight_decay
            if decay is not None:
                var.assign(var.value - var.value * float(decay) * cast_to(lr, var.dtype))

    def get_config(self):
        return {**super().get_config(), "adam_beta_1": self.adam_beta_1,
                "adam_beta_2": self.adam_beta_2, "epsilon": self.epsilon,
                "exclude_layers": self.exclude_layers, "muon_a": self.muon_a,
                "muon_b": self.muon_b, "muon_c": self.muon_c,
                "adam_lr_ratio": self.adam_lr_ratio, "momentum": self.momentum,
                "ns_steps": self.ns_steps, "nesterov": self.nesterov,
                "exclude_embeddings": self.exclude_embeddings,
                "adam_weight_decay": self.adam_weight_decay, "rms_rate": self.rms_rate}
