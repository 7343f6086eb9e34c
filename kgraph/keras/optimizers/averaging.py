"""Gradient accumulation and the moving average of weights (`gradient_accumulation_steps`,
`use_ema`), appended to the optimizer's update graph with Keras 3 semantics.

Both need a step-dependent branch; the graph has no control flow, so each computes both sides
and selects with `ops.where` (`Optimizer.apply` calls these; they read its internals).
"""
from __future__ import annotations

import numpy as np

from kgraph import ops


def accumulate_then_update(optimizer, grads, variables):
    """Add `grads` to the accumulators; on every n-th call, update with their mean instead.

    The update (clipping, weight decay, `update_step`) is traced as usual and then kept only
    when `(iterations + 1) % n == 0`: every variable it assigned is set to
    `where(is_update_step, new, old)`, so slots and optimizer-wide state stay put in between.
    """
    n = optimizer.gradient_accumulation_steps
    is_update_step = ops.equal(ops.mod(optimizer.iterations.value + np.int64(1), n), 0)
    accumulators = [optimizer._base_slots[id(v)]["gradient_accumulator"] for v in variables]
    state = list(variables) + optimizer._extra_variables
    for var in variables:
        state += optimizer.slots(var)
    before = [v.value for v in state]
    mean = [(g + a.value) / float(n) for g, a in zip(grads, accumulators)]
    optimizer._update(mean, variables)
    for var, old in zip(state, before):
        if var.value is not old:  # assigned by the update
            var.assign(ops.where(is_update_step, var.value, old))
    for g, acc in zip(grads, accumulators):
        acc.assign(ops.where(is_update_step, 0.0, acc.value + g))


def update_moving_averages(optimizer, variables):
    """`average = m * average + (1 - m) * w` with `m = ema_momentum` (0 on the first update);
    every `ema_overwrite_frequency` updates, the variables take their averages."""
    steps = optimizer._step_count()
    momentum = ops.cast(ops.not_equal(steps, 0.0), "float32") * float(optimizer.ema_momentum)
    averages = [optimizer._base_slots[id(v)]["average"] for v in variables]
    for var, average in zip(variables, averages):
        m = momentum if var.dtype == "float32" else ops.cast(momentum, var.dtype)
        average.assign(m * average.value + (1.0 - m) * var.value)
    if optimizer.ema_overwrite_frequency:
        count = ops.cast(steps, "int64") + np.int64(1)
        overwrite = ops.equal(ops.mod(count, int(optimizer.ema_overwrite_frequency)), 0)
        for var, average in zip(variables, averages):
            var.assign(ops.where(overwrite, average.value, var.value))
