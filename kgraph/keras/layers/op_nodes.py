"""Keras op nodes in functional configs.

Keras 3 writes ops applied to symbolic tensors as nodes of their own, e.g. the mask it passes
to a layer whose `call` takes `mask=` (`NotEqual(x, 0)` after an Embedding with mask_zero, and
`Any(NotEqual(x, v), axis=-1)` after a Masking layer), with module `keras.src.ops.numpy`.
These classes rebuild the few such ops that Keras' own layers produce; loading is by class
name from this fixed table only, never by importing the module a file names.
"""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.layers.base import Layer


class _OpNode(Layer):
    def __init__(self, name=None, **kwargs):
        self.op_config = {k: kwargs.pop(k) for k in list(kwargs) if k in self.op_args}
        super().__init__(name=name, **kwargs)

    def get_config(self):
        return {"name": self.name, **self.op_config}


class NotEqual(_OpNode):
    op_args = ()

    def call(self, x, y):
        return ops.not_equal(x, y)


class Equal(_OpNode):
    op_args = ()

    def call(self, x, y):
        return ops.equal(x, y)


def _reduce_bool(x, fn, axis, keepdims):
    as_float = ops.cast(x, "float32")
    return ops.greater(fn(as_float, axis=axis, keepdims=keepdims), 0.5)


class Any(_OpNode):
    op_args = ("axis", "keepdims")

    def call(self, x):
        return _reduce_bool(x, ops.max, self.op_config.get("axis"),
                            self.op_config.get("keepdims", False))


class All(_OpNode):
    op_args = ("axis", "keepdims")

    def call(self, x):
        return _reduce_bool(x, ops.min, self.op_config.get("axis"),
                            self.op_config.get("keepdims", False))


OP_NODES = {cls.__name__: cls for cls in (NotEqual, Equal, Any, All)}
OP_MODULES = ("keras.src.ops.numpy",)
