"""`keras.optimizers.schedules`: learning rate as a function of the step, evaluated in-graph.

`schedule(step)` takes the optimizer's `iterations` as a float32 value (a graph value while a
step is traced, a numpy scalar when `optimizer.learning_rate` is read) and returns the rate,
with the Keras 3 formulas of `k3:optimizers/schedules/learning_rate_schedule.py`.
"""
from __future__ import annotations

import math

from kgraph import ops
from kgraph.keras.serialization import CustomObjectScope, lookup


class LearningRateSchedule:
    """Base class: subclasses implement `__call__(step)` with `kgraph.ops` and `get_config`.

    Example:

    >>> class InverseStep(LearningRateSchedule):
    ...     def __init__(self, initial_learning_rate):
    ...         self.initial_learning_rate = initial_learning_rate
    ...     def __call__(self, step):
    ...         return self.initial_learning_rate / (step + 1.0)
    >>> opt = keras.optimizers.SGD(learning_rate=InverseStep(0.1))
    """

    def __call__(self, step):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  "override `__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(f"Learning rate schedule '{type(self).__name__}' must "
                                  "override `get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_steps(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{owner}: argument `{name}` must be > 0. Received: {name}={value!r}")


class ExponentialDecay(LearningRateSchedule):
    """`initial_learning_rate * decay_rate ^ (step / decay_steps)`; with `staircase`, the
    exponent is floored.

    Args:
        initial_learning_rate: float.
        decay_steps: number > 0.
        decay_rate: float.
        staircase: bool. Decay at discrete intervals. Defaults to `False`.
        name: string. Defaults to `"ExponentialDecay"`.

    Example:

    >>> schedule = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96, staircase=True)
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        _check_steps("ExponentialDecay", "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step):
        p = step / float(self.decay_steps)
        if self.staircase:
            p = ops.floor(p)
        return float(self.initial_learning_rate) * ops.power(float(self.decay_rate), p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """`values[0]` while `step <= boundaries[0]`, `values[i]` while
    `boundaries[i-1] < step <= boundaries[i]`, and `values[-1]` after `boundaries[-1]`.

    Args:
        boundaries: list of increasing numbers.
        values: list of floats, one more than `boundaries`.
        name: string. Defaults to `"PiecewiseConstant"`.

    Example:

    >>> schedule = PiecewiseConstantDecay(boundaries=[100, 110], values=[1.0, 0.5, 0.1])
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError("PiecewiseConstantDecay: the length of boundaries should be 1 "
                             f"less than the length of values. Received: boundaries="
                             f"{boundaries} of length {len(boundaries)}, and values={values} "
                             f"of length {len(values)}.")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        out = step * 0.0 + float(self.values[-1])
        for b, v in reversed(list(zip(self.boundaries, self.values[:-1]))):
            out = ops.where(step <= float(b), step * 0.0 + float(v), out)
        return out

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """`(initial - end) * (1 - step / decay_steps) ^ power + end`, with `step` capped at
    `decay_steps`; with `cycle`, `decay_steps` grows to the first multiple above `step`.

    Args:
        initial_learning_rate: float.
        decay_steps: number > 0.
        end_learning_rate: float. Defaults to `0.0001`.
        power: float. Defaults to `1.0`.
        cycle: bool. Defaults to `False`.
        name: string. Defaults to `"PolynomialDecay"`.

    Example:

    >>> schedule = PolynomialDecay(0.1, decay_steps=10000, end_learning_rate=0.01, power=0.5)
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001, power=1.0,
                 cycle=False, name="PolynomialDecay"):
        _check_steps("PolynomialDecay", "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.end_learning_rate, self.power = end_learning_rate, power
        self.cycle, self.name = cycle, name

    def __call__(self, step):
        decay_steps = float(self.decay_steps)
        if self.cycle:
            ceil = -ops.floor(-(step / decay_steps))
            decay_steps = decay_steps * ops.where(ops.equal(step, 0.0), step * 0.0 + 1.0, ceil)
        else:
            step = ops.minimum(step, decay_steps)
        end = float(self.end_learning_rate)
        decayed = ops.power(1.0 - step / decay_steps, float(self.power))
        return (float(self.initial_learning_rate) - end) * decayed + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """`initial_learning_rate / (1 + decay_rate * step / decay_steps)`; with `staircase`,
    `step / decay_steps` is floored.

    Args:
        initial_learning_rate: float.
        decay_steps: number > 0.
        decay_rate: float.
        staircase: bool. Defaults to `False`.
        name: string. Defaults to `"InverseTimeDecay"`.

    Example:

    >>> schedule = InverseTimeDecay(0.1, decay_steps=1.0, decay_rate=0.5)
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        _check_steps("InverseTimeDecay", "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step):
        p = step / float(self.decay_steps)
        if self.staircase:
            p = ops.floor(p)
        return float(self.initial_learning_rate) / (1.0 + float(self.decay_rate) * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


def _cosine(fraction, alpha):
    return (1.0 - alpha) * (0.5 * (1.0 + ops.cos(math.pi * fraction))) + alpha


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup.

    Without `warmup_target`: `initial * ((1 - alpha) * 0.5 (1 + cos(pi s / decay_steps)) +
    alpha)` with `s = min(step, decay_steps)`. With it, the rate first rises linearly from
    `initial_learning_rate` to `warmup_target` over `warmup_steps`, then decays from
    `warmup_target` over `decay_steps`.

    Args:
        initial_learning_rate: float.
        decay_steps: number > 0.
        alpha: float, the final rate as a fraction of the decayed-from rate. Defaults to `0`.
        name: string. Defaults to `"CosineDecay"`.
        warmup_target: float or `None` (no warmup).
        warmup_steps: number of warmup steps. Defaults to `0`.

    Example:

    >>> schedule = CosineDecay(0.0, 1000, warmup_target=0.1, warmup_steps=100)
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        _check_steps("CosineDecay", "decay_steps", decay_steps)
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.alpha, self.name = alpha, name
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def __call__(self, step):
        initial, decay_steps = float(self.initial_learning_rate), float(self.decay_steps)
        alpha = float(self.alpha)
        if self.warmup_target is None:
            return initial * _cosine(ops.minimum(step, decay_steps) / decay_steps, alpha)
        target, warmup_steps = float(self.warmup_target), float(self.warmup_steps)
        step = ops.minimum(step, decay_steps + warmup_steps)
        warm = (target - initial) * (step / (warmup_steps or 1.0)) + initial
        decayed = target * _cosine((step - warmup_steps) / decay_steps, alpha)
        return ops.where(step < warmup_steps, warm, decayed)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): the multiplier decays from 1 to `alpha` over
    `first_decay_steps`, then restarts; period `i` lasts `t_mul^i` times longer and starts
    from `m_mul^i` times the initial rate.

    Args:
        initial_learning_rate: float.
        first_decay_steps: number > 0.
        t_mul: float. Defaults to `2.0`.
        m_mul: float. Defaults to `1.0`.
        alpha: float. Defaults to `0.0`.
        name: string. Defaults to `"SGDRDecay"`.

    Example:

    >>> schedule = CosineDecayRestarts(0.1, first_decay_steps=1000)
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        _check_steps("CosineDecayRestarts", "first_decay_steps", first_decay_steps)
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul, self._m_mul, self.alpha, self.name = t_mul, m_mul, alpha, name

    def __call__(self, step):
        fraction = step / float(self.first_decay_steps)
        t_mul = float(self._t_mul)
        if t_mul == 1.0:
            restart = ops.floor(fraction)
            fraction = fraction - restart
        else:
            restart = ops.floor(ops.log(1.0 - fraction * (1.0 - t_mul)) / math.log(t_mul))
            done = (1.0 - ops.power(t_mul, restart)) / (1.0 - t_mul)
            fraction = (fraction - done) / ops.power(t_mul, restart)
        m_factor = ops.power(float(self._m_mul), restart)
        alpha = float(self.alpha)
        decayed = (1.0 - alpha) * (0.5 * m_factor * (1.0 + ops.cos(math.pi * fraction))) + alpha
        return float(self.initial_learning_rate) * decayed

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


ALL = {cls.__name__: cls for cls in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                     InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(schedule):
    return {"module": "keras.optimizers.schedules", "class_name": type(schedule).__name__,
            "config": schedule.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    with CustomObjectScope(custom_objects or {}):
        return lookup("learning rate schedule", config, ALL)
