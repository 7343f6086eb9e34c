"""Graph -> onnx.ModelProto.

One pinned opset and an explicit `ir_version` (onnx 1.23 writes IR 14 by default, which
onnxruntime 1.30+ refuses). Only ops that both onnxruntime and TVM's Relax ONNX frontend import
are emitted (no SoftmaxCrossEntropyLoss, OneHot, Loop or Scan; see DESIGN.md).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kgraph.ir.graph import Graph
from kgraph.ops.registry import get_op

ONNX_OPSET = 18
IR_VERSION = 9

_DTYPES = {name: helper.np_dtype_to_tensor_dtype(np.dtype(name)) for name in
           ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
            "uint16", "uint32", "uint64", "bool")}
_DTYPES["bfloat16"] = TensorProto.BFLOAT16


class EmitContext:
    """What an op's emission callable sees: fresh names, constants and node creation."""

    def __init__(self, graph_name):
        self.nodes, self.initializers = [], []
        self._count = 0
        self._consts = {}
        self._prefix = graph_name

    def fresh(self, hint="t"):
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, array) -> str:
        array = np.asarray(array)
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    def node(self, op_type, inputs, outputs=None, **attrs) -> str:
        outputs = outputs or [self.fresh(op_type.lower())]
        if op_type == "Cast" and isinstance(attrs.get("to"), str):
            attrs["to"] = _DTYPES[attrs["to"]]
        self.nodes.append(helper.make_node(op_type, list(inputs), list(outputs), **attrs))
        return outputs[0]


def _value_info(name, t, dim_names):
    dims = [d if d is not None else dim_names(i) for i, d in enumerate(t.shape)]
    return helper.make_tensor_value_info(name, _DTYPES[t.dtype], dims)


def to_onnx(graph: Graph) -> onnx.ModelProto:
    """Emit `graph` (its outputs, then its variable updates as `<path>:new`) as ONNX."""
    ctx = EmitContext(graph.name)
    out_pairs = list(zip(graph.output_names, graph.outputs))
    out_pairs += [(update_name(var, graph), v) for var, v in graph.updates.items()]
    # A node result that is a graph output is written under the output's name directly:
    # an Identity would copy the tensor (e.g. every updated parameter) on every run.
    direct = {}
    for name, v in out_pairs:
        if v.node.op not in ("Input", "Constant") and v not in direct:
            direct[v] = name
    names, inputs = {}, []
    for v in graph.inputs:
        name = v.node.attrs["name"]
        names[v] = name
        inputs.append(_value_info(name, v.type, lambda i, n=name: "batch" if i == 0 else f"{n}_d{i}"))
    for node in graph.nodes:
        if node.op == "Input":
            continue
        if node.op == "Constant":
            names[node.outputs[0]] = ctx.const(node.attrs["value"])
            continue
        ins = [names[v] for v in node.inputs]
        outs = [direct.get(v) or ctx.fresh(node.op.lower()) for v in node.outputs]
        emit = get_op(node.op).onnx
        if callable(emit):
            emit(ctx, node, ins, outs)
        else:
            ctx.node(emit, ins, outs, **node.attrs)
        names.update(zip(node.outputs, outs))
    out_infos = []
    for name, v in out_pairs:
        if direct.get(v) != name:
            ctx.node("Identity", [names[v]], [name])
        out_infos.append(_value_info(name, v.type, lambda i, n=name: f"{n}_d{i}"))
    g = helper.make_graph(ctx.nodes, graph.name, inputs, out_infos, ctx.initializers)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                             producer_name="kgraph", ir_version=IR_VERSION)


def update_name(var, graph) -> str:
    """Output name carrying the new value of `var`."""
    placeholder = graph.variables.get(var)
    base = placeholder.node.attrs["name"] if placeholder is not None else var.path
    return f"{base}:new"
