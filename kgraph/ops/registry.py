"""The op registry: one `OpDef` per primitive, keyed by its name.

Each record holds everything about the op in one place: the shape/dtype rule (`infer`), the
numpy reference (`ref`, the oracle), the gradient rule (`grad`, written in kgraph ops so the
backward graph is ordinary IR) and the ONNX emission (`onnx`: an ONNX op name for 1:1 ops, or a
callable for ops that need several ONNX nodes).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from kgraph.ir.graph import Value, current_graph
from kgraph.ir.types import TensorType, dtype_name


@dataclass
class OpDef:
    name: str
    infer: Callable  # (types: list[TensorType], **attrs) -> list[TensorType]
    ref: Callable  # (*arrays, **attrs) -> array | tuple of arrays
    grad: Callable | None = None  # (g, y, *inputs, **attrs) -> tuple, one entry per input
    onnx: str | Callable | None = None
    num_outputs: int = 1  # 0: as many as the shape rule gives (Split)
    differentiable: bool = True
    attrs: tuple = field(default_factory=tuple)  # names of allowed attributes


REGISTRY: dict[str, OpDef] = {}


def defop(name, infer, ref, grad=None, onnx=None, num_outputs=1, differentiable=True,
          attrs=()) -> OpDef:
    if name in REGISTRY:
        raise ValueError(f"Op {name!r} is registered twice")
    op = OpDef(name, infer, ref, grad, onnx if onnx is not None else name, num_outputs,
               differentiable, tuple(attrs))
    REGISTRY[name] = op
    return op


def native_or_expanded(op, expansion, float_attrs=()):
    """The ONNX emission of an op that kgraph's onnxruntime operators run
    (runtime/native_ops.py): the node `kgraph.<op>`, its `float_attrs` passed as floats, where
    the graph is native and the op's (last) input is float32; elsewhere `expansion` (the op in
    standard kgraph ops, called with the inputs and the node's attrs)."""
    def emit(ctx, node, ins, outs):
        if ctx.native and node.inputs[-1].dtype == "float32":
            return ctx.node(f"kgraph.{op}", ins, outs,
                            **{name: float(node.attrs[name]) for name in float_attrs})
        return ctx.expand(expansion, node, ins, outs)
    return emit


def get_op(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"Unknown op {name!r}. Known ops: {sorted(REGISTRY)}") from None


def _is_symbolic(x) -> bool:
    from kgraph.variables import Variable

    return isinstance(x, Value) or (isinstance(x, Variable) and current_graph() is not None)


def to_value(x, dtype=None) -> Value:
    """Turn a Value, Variable or array-like into a Value of the graph being traced."""
    graph = current_graph()
    if isinstance(x, Value):  # the common case first: ops recorded in a loop pay per call
        if graph is not None and x.graph is not graph:
            if getattr(graph, "parent", None) is not None:  # a loop body reading its graph's
                from kgraph.ops.recurrence import capture_outer

                return capture_outer(graph, x)
            raise ValueError(
                f"Tensor {x!r} belongs to graph {x.graph.name!r}, not to the graph being "
                f"traced ({graph.name!r}); symbolic tensors cannot cross graphs")
        return x
    from kgraph.variables import Variable  # (kgraph.variables imports kgraph.ops)

    if isinstance(x, Variable):
        return x.value  # cast to the compute dtype inside a mixed-precision layer
    if isinstance(x, np.ndarray) and getattr(graph, "captures", None) is not None and (
            x.ndim or id(x) in graph.__dict__.get("watched", ())):
        return graph.capture(x)  # eager data inside a GradientTape becomes a fed input
    array = np.asarray(x)
    if dtype is not None:
        array = array.astype(dtype)
    elif array.dtype == np.float64:
        from kgraph import config

        array = array.astype(config.floatx())
    elif array.dtype == np.int32 and not isinstance(x, np.ndarray):
        array = array.astype(np.int64)
    return graph.constant(array)


def apply(name: str, *inputs, **attrs):
    """Apply op `name`: add a node when tracing, or run the numpy reference on concrete data."""
    op = get_op(name)
    graph = current_graph()
    if graph is None and not any(isinstance(x, Value) for x in inputs):
        arrays = [_concrete(x) for x in inputs]
        out = op.ref(*arrays, **attrs)
        return out
    if graph is None:
        graph = next(x for x in inputs if isinstance(x, Value)).graph
        from kgraph.ir.graph import tracing

        with tracing(graph):
            return apply(name, *inputs, **attrs)
    values = [to_value(x) for x in inputs]
    types = op.infer([v.type for v in values], **attrs)
    outs = graph.append_node(name, values, attrs, types)  # both ours: no copies needed
    return outs[0] if op.num_outputs == 1 else tuple(outs)


def _concrete(x):
    from kgraph.variables import Variable

    if isinstance(x, Variable):
        return x.numpy()
    array = np.asarray(x)
    if array.dtype == np.float64 and not isinstance(x, np.ndarray):
        # Python floats (and lists of them) are floatx, as Keras converts them and as a
        # traced op takes them (`to_value`): `ops.sin(0.5)` is float32, not numpy's float64
        from kgraph import config

        array = array.astype(config.floatx())
    return array


# -- shape rules shared by many ops ---------------------------------------------------------
def same_as_input(types, **attrs):
    return [types[0]]


def with_dtype(dtype):
    return lambda types, **attrs: [TensorType(types[0].shape, dtype_name(dtype))]


def _no_ref(*a, **k):
    raise RuntimeError("Input and Constant nodes are bound by the interpreter, not evaluated")


defop("Input", lambda t, name: [], _no_ref, differentiable=False, attrs=("name",), onnx=None)
defop("Constant", lambda t, value: [], lambda value: value, differentiable=False,
      attrs=("value",), onnx=None)
