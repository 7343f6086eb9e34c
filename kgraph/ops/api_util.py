"""Helpers shared by the Keras-namespace op modules (numpy_api, nn_api, control_flow, ...):
rank/shape queries that work on arrays and symbolic tensors alike, and the typed errors those
modules raise when a request has no meaning in a traced graph."""
from __future__ import annotations

import numpy as np


class StaticShapeRequiredError(ValueError):
    """An op needs a dimension that is unknown while tracing (typically the batch)."""


class TracedModeNotSupportedError(NotImplementedError):
    """An op runs eagerly on arrays only: it has no lowering to the graph yet."""


def is_symbolic(x) -> bool:
    """True for a traced tensor (or a Variable read inside a graph being traced)."""
    from kgraph.ops.registry import _is_symbolic

    return _is_symbolic(x)


def any_symbolic(*xs) -> bool:
    return any(is_symbolic(x) for x in xs)


def rank(x) -> int:
    return len(x.shape) if hasattr(x, "shape") else np.ndim(x)


def shape_of(x) -> tuple:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def dtype_of(x) -> str:
    from kgraph.ir.types import dtype_name

    if hasattr(x, "dtype"):
        return dtype_name(x.dtype)
    return dtype_name(np.asarray(x).dtype)


def floatx() -> str:
    from kgraph import config

    return config.floatx()


def axis_index(axis, ndim, op) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis out of range for a tensor of rank {ndim}. "
                         f"Received: axis={axis}")
    return axis % ndim


def static_dim(x, axis, op) -> int:
    """`x.shape[axis]` as an int, or a typed error naming the op when it is unknown."""
    d = shape_of(x)[axis]
    if d is None:
        raise StaticShapeRequiredError(
            f"{op} needs a known size along axis {axis}; it is unknown while tracing "
            f"(shape {tuple(shape_of(x))}). Give that dimension a fixed size (Input(shape=...)"
            f" / batch_size=...) or move the op to an axis of known size.")
    return int(d)


def eager_only(op, *xs):
    """Raise the typed error of an eager-only op when any argument is symbolic."""
    if any_symbolic(*xs):
        raise TracedModeNotSupportedError(
            f"keras.ops.{op} runs eagerly on arrays only: kgraph has no graph lowering for it "
            f"yet. Compute it outside the model (on numpy data) or use a layer that does.")


def to_float(x):
    """Integer/bool tensors become floatx, as Keras computes float results from them."""
    from kgraph.ir.types import is_float
    from kgraph.ops.elementwise import cast

    return x if is_float(dtype_of(x)) else cast(x, floatx())


def constant(array, like):
    """`array` as a constant of `like`'s graph when `like` is symbolic (keeping its dtype:
    a bare float64 array meeting a tensor would become floatx), else the array itself."""
    if is_symbolic(like):
        from kgraph.ir.graph import current_graph

        graph = current_graph() or like.graph
        return graph.constant(np.asarray(array))
    return np.asarray(array)
