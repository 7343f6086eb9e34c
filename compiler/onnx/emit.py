"""Graph -> ONNX: a ModelProto (`to_onnx`), or its serialized bytes without importing the
`onnx` package (`to_onnx_bytes`, what onnxruntime sessions are made from; compiler/onnx/wire.py).

One pinned opset and an explicit `ir_version` (onnx 1.23 writes IR 14 by default, which
onnxruntime 1.30+ refuses). Only ops that both onnxruntime and TVM's Relax ONNX frontend import
are emitted (no SoftmaxCrossEntropyLoss, OneHot, Loop or Scan; see DESIGN.md).
"""
from __future__ import annotations

import numpy as np

from kgraph.compiler.onnx import wire
from kgraph.ir.graph import Graph
from kgraph.ops.registry import get_op

ONNX_OPSET = 18
IR_VERSION = 9
PRODUCER = "kgraph"

_DTYPES = wire.DTYPES  # kgraph dtype name -> TensorProto.DataType


class EmitContext:
    """What an op's emission callable sees: fresh names, constants and node creation. Nodes
    and initializers are kept as plain data, made into protos or bytes at the end."""

    def __init__(self, graph_name):
        self.nodes, self.initializers = [], []  # (op_type, inputs, outputs, attrs), (name, array)
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
        self.initializers.append((name, array))
        if key is not None:
            self._consts[key] = name
        return name

    def node(self, op_type, inputs, outputs=None, **attrs) -> str:
        outputs = outputs or [self.fresh(op_type.lower())]
        if op_type == "Cast" and isinstance(attrs.get("to"), str):
            attrs["to"] = _DTYPES[attrs["to"]]
        self.nodes.append((op_type, list(inputs), list(outputs), attrs))
        return outputs[0]


class Emitted:
    """An emitted graph as plain data: nodes, initializers, and the inputs' and outputs'
    (name, dtype, dims) with symbolic dims as strings."""

    def __init__(self, name, nodes, initializers, inputs, outputs):
        self.name, self.nodes, self.initializers = name, nodes, initializers
        self.inputs, self.outputs = inputs, outputs

    def op_types(self):
        return [n[0] for n in self.nodes]

    def to_bytes(self) -> bytes:
        try:
            return self.direct_bytes()
        except wire.Unsupported:  # a value the direct writer does not know: the onnx package
            return self.to_proto().SerializeToString()

    def direct_bytes(self) -> bytes:
        """The model's bytes from compiler/onnx/wire.py; raises `wire.Unsupported`."""
        return wire.model([wire.node(*n) for n in self.nodes], self.name,
                          [wire.tensor(a, name) for name, a in self.initializers],
                          [wire.value_info(*i) for i in self.inputs],
                          [wire.value_info(*o) for o in self.outputs],
                          ONNX_OPSET, IR_VERSION, PRODUCER)

    def to_proto(self):
        from onnx import helper, numpy_helper

        nodes = [helper.make_node(op, ins, outs, **attrs) for op, ins, outs, attrs in self.nodes]
        inits = [numpy_helper.from_array(a, name) for name, a in self.initializers]
        info = [helper.make_tensor_value_info(n, _DTYPES[d], dims) for n, d, dims in self.inputs]
        outs = [helper.make_tensor_value_info(n, _DTYPES[d], dims) for n, d, dims in self.outputs]
        g = helper.make_graph(nodes, self.name, info, outs, inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", ONNX_OPSET)],
                                 producer_name=PRODUCER, ir_version=IR_VERSION)


def _value_info(name, t, dim_names):
    return name, t.dtype, [d if d is not None else dim_names(i) for i, d in enumerate(t.shape)]


def to_onnx(graph: Graph):
    """`graph` as an onnx.ModelProto (see `emit`)."""
    return emit(graph).to_proto()


def to_onnx_bytes(graph: Graph) -> tuple[bytes, list]:
    """`graph` as serialized ONNX bytes (equal to `to_onnx(graph).SerializeToString()`) and
    its node op types, without importing the onnx package."""
    emitted = emit(graph)
    return emitted.to_bytes(), emitted.op_types()


def emit(graph: Graph) -> Emitted:
    """Emit `graph` (its outputs, then its variable updates as `<path>:new`)."""
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
        emit_op = get_op(node.op).onnx
        if callable(emit_op):
            emit_op(ctx, node, ins, outs)
        else:
            ctx.node(emit_op, ins, outs, **node.attrs)
        names.update(zip(node.outputs, outs))
    out_infos = []
    for name, v in out_pairs:
        if direct.get(v) != name:
            ctx.node("Identity", [names[v]], [name])
        out_infos.append(_value_info(name, v.type, lambda i, n=name: f"{n}_d{i}"))
    return Emitted(graph.name, ctx.nodes, ctx.initializers, inputs, out_infos)


def update_name(var, graph) -> str:
    """Output name carrying the new value of `var`."""
    placeholder = graph.variables.get(var)
    base = placeholder.node.attrs["name"] if placeholder is not None else var.path
    return f"{base}:new"
