"""`keras.optimizers.schedules`: learning rate as a function of the step, evaluated in-graph."""
from __future__ import annotations

import math

from kgraph import ops
from kgraph.keras.serialization import lookup


class LearningRateSchedule:
    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class ExponentialDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        if decay_steps <= 0:
            raise ValueError(f"ExponentialDecay: decay_steps must be > 0. Received: "
                             f"decay_steps={decay_steps}")
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.decay_rate, self.staircase, self.name = decay_rate, staircase, name

    def __call__(self, step):
        p = step / float(self.decay_steps)
        if self.staircase:
            p = ops.floor(p)
        return ops.exp(p * math.log(float(self.decay_rate))) * float(self.initial_learning_rate)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(f"PiecewiseConstantDecay: values must have one more element than "
                             f"boundaries. Received: len(boundaries)={len(boundaries)}, "
                             f"len(values)={len(values)}")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        out = step * 0.0 + float(self.values[-1])
        for b, v in reversed(list(zip(self.boundaries, self.values[:-1]))):
            out = ops.where(step <= float(b), step * 0.0 + float(v), out)
        return out

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class CosineDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate, self.decay_steps = initial_learning_rate, decay_steps
        self.alpha, self.name = alpha, name
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def __call__(self, step):
        initial = float(self.initial_learning_rate)
        if self.warmup_target is None or not self.warmup_steps:
            decay_step = ops.minimum(step, float(self.decay_steps))
            return self._decay(decay_step, initial)
        target = float(self.warmup_target)
        warm = initial + (target - initial) * (step / float(self.warmup_steps))
        decay_step = ops.minimum(step - float(self.warmup_steps), float(self.decay_steps))
        return ops.where(step < float(self.warmup_steps), warm, self._decay(decay_step, target))

    def _decay(self, step, lr):
        cos = ops.cos(step * (math.pi / float(self.decay_steps)))
        decayed = (1.0 - self.alpha) * (0.5 * (1.0 + cos)) + self.alpha
        return decayed * lr

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


ALL = {"ExponentialDecay": ExponentialDecay, "PiecewiseConstantDecay": PiecewiseConstantDecay,
       "CosineDecay": CosineDecay}


def serialize(schedule):
    return {"module": "keras.optimizers.schedules", "class_name": type(schedule).__name__,
            "config": schedule.get_config(), "registered_name": None}


def deserialize(config):
    return lookup("learning rate schedule", config, ALL)
