"""Where a layer call meets its dtype policy (Keras 3's `Layer.__call__` rules).

Before `call` runs, float inputs are cast to the layer's compute dtype; while it runs, an
`AutocastScope` makes the layer's float32 variables read as that dtype. The casts are
ordinary graph ops, so autodiff turns each into a cast of the gradient back to float32:
gradients, variables and optimizer state stay float32.
"""
from __future__ import annotations

import contextlib

from kgraph.ir.graph import Value
from kgraph.ir.types import is_float
from kgraph.keras.tree import map_structure
from kgraph.variables import AutocastScope, get_autocast_scope


def layer_scope(layer):
    """The scope a call of `layer` runs in: a new `AutocastScope` when the layer's dtypes
    are mixed (or differ from the enclosing scope's), one that turns autocasting off for a
    layer with `autocast=False` or a non-float compute dtype, else the enclosing one."""
    compute = layer.compute_dtype
    current = get_autocast_scope()
    if current is not None:
        if not layer.autocast or not is_float(compute):
            return AutocastScope(None)
        if current.dtype != compute:
            return AutocastScope(compute)
        return contextlib.nullcontext()
    if layer.autocast and compute != layer.variable_dtype:
        return AutocastScope(compute)
    return contextlib.nullcontext()


def convert_inputs(layer, args, kwargs):
    """`args, kwargs` with float tensors cast to the layer's compute dtype (integer and
    boolean tensors, masks among them, pass unchanged)."""
    dtype = layer.compute_dtype
    if not (layer.autocast and getattr(layer, "_convert_input_args", True) and is_float(dtype)):
        return args, kwargs

    def convert(x):
        if not (isinstance(x, Value) and is_float(x.dtype) and x.dtype != dtype):
            return x
        from kgraph.ops.elementwise import cast

        out = cast(x, dtype)
        out._keras_mask = x._keras_mask
        return out

    return map_structure(convert, args), map_structure(convert, kwargs)
