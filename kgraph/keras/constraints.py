"""`keras.constraints`: projections applied to a weight after each optimizer update."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.serialization import CustomObjectScope, lookup


class Constraint:
    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class MaxNorm(Constraint):
    def __init__(self, max_value=2, axis=0):
        self.max_value, self.axis = max_value, axis

    def __call__(self, w):
        norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
        desired = ops.clip(norms, 0.0, float(self.max_value))
        return w * (desired / (norms + 1e-7))

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    def __call__(self, w):
        return w * ops.cast(ops.greater_equal(w, 0.0), w.dtype)


class UnitNorm(Constraint):
    def __init__(self, axis=0):
        self.axis = axis

    def __call__(self, w):
        return w / (ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True)) + 1e-7)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value, self.max_value, self.rate, self.axis = min_value, max_value, rate, axis

    def __call__(self, w):
        norms = ops.sqrt(ops.sum(ops.square(w), axis=self.axis, keepdims=True))
        desired = (ops.clip(norms, float(self.min_value), float(self.max_value)) * self.rate
                   + norms * (1.0 - self.rate))
        return w * (desired / (norms + 1e-7))

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm, non_neg, unit_norm, min_max_norm = MaxNorm, NonNeg, UnitNorm, MinMaxNorm
ALL = {"MaxNorm": MaxNorm, "NonNeg": NonNeg, "UnitNorm": UnitNorm, "MinMaxNorm": MinMaxNorm,
       "max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
       "min_max_norm": MinMaxNorm}


def get(identifier):
    if identifier is None or isinstance(identifier, Constraint) or callable(identifier) and not isinstance(identifier, type):
        return identifier
    found = lookup("constraint", identifier, ALL)
    return found() if isinstance(found, type) else found


def serialize(c):
    if c is None:
        return None
    return {"module": "keras.constraints", "class_name": type(c).__name__,
            "config": c.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """A constraint from `serialize()`'s dict (or a `{class_name, config}` dict, or a name)."""
    with CustomObjectScope(custom_objects or {}):
        return get(config)
