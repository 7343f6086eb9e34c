"""Gradient clipping with Keras 3 formulas (`clipnorm`, `global_clipnorm`, `clipvalue`)."""
from __future__ import annotations

from kgraph import ops


def clip_gradients(grads, clipnorm=None, clipvalue=None, global_clipnorm=None):
    """Clip graph-value gradients; at most one of the arguments is set (0 means off).

    clipnorm: each `g * c / max(||g||, c)`; global_clipnorm: every `g` times
    `c * min(1 / ||all||, 1 / c)` (NaN when the joint norm is inf or NaN, as in Keras);
    clipvalue: element-wise into `[-c, c]`.
    """
    if clipnorm:
        c = float(clipnorm)
        return [g * c / ops.maximum(ops.sqrt(ops.sum(ops.square(g))), c) for g in grads]
    if global_clipnorm:
        c = float(global_clipnorm)
        norm = ops.sqrt(sum(ops.sum(ops.square(cast_to(g, "float32"))) for g in grads))
        scale = c * ops.minimum(1.0 / norm, 1.0 / c) + (norm - norm)
        return [g * cast_to(scale, g.dtype) for g in grads]
    if clipvalue:
        c = float(clipvalue)
        return [ops.clip(g, -c, c) for g in grads]
    return grads


def cast_to(x, dtype):
    """`x` cast to `dtype` (a no-op when it already has it)."""
    return x if x.dtype == dtype else ops.cast(x, dtype)
