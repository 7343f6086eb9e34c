"""Run bfloat16 ops in float32 for onnxruntime's CPU provider, rounding back after each.

onnxruntime 1.32's CPU provider has bfloat16 kernels only for data movement and casts
(`Cast`, `Reshape`, `Transpose`, `Identity`, `Concat` ...): `MatMul`, `Conv`, `Add`,
`Relu`, the reductions and pooling are missing, so a `mixed_bfloat16` graph would not load.
Each such op gets its bfloat16 inputs cast to float32 and its float32 results cast back to
bfloat16: values between ops are still bfloat16 (the precision the policy asks for), the
arithmetic inside one op is float32. Named results (predictions, losses) come back as
float32 holding the same bfloat16-rounded values. float16 needs no pass: onnxruntime inserts the same
casts itself around the float16 ops its CPU provider lacks (its InsertCastTransformer).
"""
from __future__ import annotations

from kgraph.ir.graph import Graph, Node, Value
from kgraph.ir.types import TensorType
from kgraph.ops.registry import get_op

# ops that onnxruntime's CPU provider runs on bfloat16 tensors (measured, ORT 1.32)
NATIVE_BFLOAT16 = frozenset({"Input", "Constant", "Cast", "Reshape", "Transpose",
                             "Identity", "Concat"})


def compute_bfloat16_in_float32(graph: Graph) -> Graph:
    """A copy of `graph` in which every bfloat16 op outside `NATIVE_BFLOAT16` computes in
    float32 between casts; `graph` itself when it holds no such op."""
    if not any(_needs_float32(node) for node in graph.nodes) and all(
            v.dtype != "bfloat16" for v in graph.outputs):
        return graph
    graph = graph.clone()[0]
    replaced, nodes = {}, []
    for node in graph.nodes:
        node.inputs = [replaced.get(v, v) for v in node.inputs]
        if not _needs_float32(node):
            nodes.append(node)
            continue
        node.inputs = [_cast(graph, v, "float32", nodes) if v.dtype == "bfloat16" else v
                       for v in node.inputs]
        types = get_op(node.op).infer([v.type for v in node.inputs], **node.attrs)
        old = node.outputs
        node.outputs = [Value(graph, node, i, t) for i, t in enumerate(types)]
        nodes.append(node)
        for before, after in zip(old, node.outputs):
            rounded = before.dtype == "bfloat16" and after.dtype != "bfloat16"
            replaced[before] = _cast(graph, after, "bfloat16", nodes) if rounded else after
    # named results leave as float32 (same values): onnxruntime's Python API cannot hand a
    # bfloat16 tensor to numpy. Variable updates keep their dtype: they are fed back.
    graph.outputs = [_cast(graph, v, "float32", nodes) if v.dtype == "bfloat16" else v
                     for v in (replaced.get(v, v) for v in graph.outputs)]
    graph.nodes = nodes
    graph.updates = {var: replaced.get(v, v) for var, v in graph.updates.items()}
    return graph


def _needs_float32(node) -> bool:
    return node.op not in NATIVE_BFLOAT16 and any(
        v.dtype == "bfloat16" for v in node.inputs + node.outputs)


def _cast(graph, value, dtype, nodes) -> Value:
    node = Node(next(graph._ids), "Cast", [value], {"to": dtype})
    node.outputs = [Value(graph, node, 0, TensorType(value.shape, dtype))]
    nodes.append(node)
    return node.outputs[0]
