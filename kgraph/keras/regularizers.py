"""`keras.regularizers`: penalties on a weight, added to the training loss."""
from __future__ import annotations

import math

import numpy as np

from kgraph import ops
from kgraph.keras.serialization import CustomObjectScope, lookup


class Regularizer:
    def __call__(self, x):
        return 0.0

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check(name, value):
    if value is None or value < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float. "
                         f"Received: {name}={value!r}")
    return float(value)


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _check("l1", l1), _check("l2", l2)

    def __call__(self, x):
        total = 0.0
        if self.l1:
            total = total + ops.sum(ops.abs(x)) * self.l1
        if self.l2:
            total = total + ops.sum(ops.square(x)) * self.l2
        return total

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(Regularizer):
    def __init__(self, l1=0.01):
        self.l1 = _check("l1", l1)

    def __call__(self, x):
        return ops.sum(ops.abs(x)) * self.l1

    def get_config(self):
        return {"l1": self.l1}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        self.l2 = _check("l2", l2)

    def __call__(self, x):
        return ops.sum(ops.square(x)) * self.l2

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Pushes the rows (`mode="rows"`) or columns (`mode="columns"`) of a rank-2 weight to
    be orthogonal: `factor * 0.5 * mean |<u_i, u_j>|` over the pairs `i != j` of its
    L2-normalized rows or columns (Keras 3's penalty).

    Args:
        factor: float >= 0. Defaults to `0.01`.
        mode: `"rows"` or `"columns"`. Defaults to `"rows"`.

    Example:

    >>> regularizer = keras.regularizers.OrthogonalRegularizer(0.1, mode="columns")
    >>> layer = keras.layers.Dense(8, kernel_regularizer=regularizer)
    """

    def __init__(self, factor=0.01, mode="rows"):
        if not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 0:
            raise ValueError("Invalid value for argument factor: expected a non-negative "
                             f"float. Received: factor={factor!r}")
        self.factor = float(factor)
        if mode not in ("rows", "columns"):
            raise ValueError('Invalid value for argument `mode`. Expected one of {"rows", '
                             f'"columns"}}. Received: mode={mode}')
        self.mode = mode

    def __call__(self, x):
        from kgraph.keras.ops import normalize

        if len(x.shape) != 2:
            raise ValueError("Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={tuple(x.shape)}")
        axis = 1 if self.mode == "rows" else 0
        unit = normalize(x, axis=axis)
        product = ops.matmul(unit, ops.transpose(unit)) if axis == 1 else \
            ops.matmul(ops.transpose(unit), unit)
        size = x.shape[1 - axis]
        off_diagonal = product * (1.0 - np.eye(size, dtype=np.float32))
        pairs = size * (size - 1.0) / 2.0
        return self.factor * 0.5 * ops.sum(ops.abs(off_diagonal)) / pairs

    def get_config(self):
        return {"factor": float(np.float32(self.factor)), "mode": self.mode}


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1, l2)


l1, l2, orthogonal_regularizer = L1, L2, OrthogonalRegularizer
ALL = {"L1L2": L1L2, "L1": L1, "L2": L2, "l1": L1, "l2": L2, "l1_l2": l1_l2,
       "Regularizer": Regularizer, "OrthogonalRegularizer": OrthogonalRegularizer,
       "orthogonal_regularizer": OrthogonalRegularizer}


def get(identifier):
    if identifier is None or isinstance(identifier, Regularizer) or callable(identifier) and not isinstance(identifier, type):
        return identifier
    found = lookup("regularizer", identifier, ALL)
    return found() if isinstance(found, type) or found is l1_l2 else found


def serialize(reg):
    if reg is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(reg).__name__,
            "config": reg.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """A regularizer from `serialize()`'s dict (or a `{class_name, config}` dict, or a name)."""
    with CustomObjectScope(custom_objects or {}):
        return get(config)
