"""ONNX -> Relax: TVM's ONNX frontend, with named dims made one symbolic variable each and,
for static targets, every input dim fixed."""
from __future__ import annotations

import re

import onnx


def onnx_signature(model: onnx.ModelProto):
    """(input names, output names, input numpy dtype names) of an ONNX model."""
    from onnx.helper import tensor_dtype_to_np_dtype

    inputs = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    dtypes = {i.name: tensor_dtype_to_np_dtype(i.type.tensor_type.elem_type).name
              for i in model.graph.input}
    return inputs, outputs, dtypes


def input_specs(model: onnx.ModelProto, static_shapes: dict | None = None):
    """[(shape, numpy dtype name)] per input; unknown dims are None unless `static_shapes`
    fixes them."""
    _, _, dtypes = onnx_signature(model)
    specs = []
    for i in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else None
                for d in i.type.tensor_type.shape.dim]
        specs.append((list((static_shapes or {}).get(i.name, dims)), dtypes[i.name]))
    return specs


def fix_shapes(model: onnx.ModelProto, static_shapes: dict) -> onnx.ModelProto:
    """A copy of `model` whose inputs named in `static_shapes` have those concrete shapes.

    Raises:
        ValueError: a name that is no input, or a shape that contradicts a known dim.
    """
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    inputs = {i.name: i for i in fixed.graph.input}
    unknown = sorted(set(static_shapes) - set(inputs))
    if unknown:
        raise ValueError(f"static_shapes names inputs the graph does not have. Received: "
                         f"{unknown}; inputs are {sorted(inputs)}")
    for name, shape in static_shapes.items():
        dims = inputs[name].type.tensor_type.shape.dim
        if len(dims) != len(shape):
            raise ValueError(f"static_shapes[{name!r}] has rank {len(shape)}; the input has "
                             f"rank {len(dims)}. Received: {tuple(shape)}")
        for dim, size in zip(dims, shape):
            if dim.HasField("dim_value") and dim.dim_value != int(size):
                raise ValueError(f"static_shapes[{name!r}]={tuple(shape)} contradicts the "
                                 f"input's fixed dims {[d.dim_value for d in dims]}")
            dim.Clear()
            dim.dim_value = int(size)
    return fixed


def sanitize_names(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` whose value names are C identifiers.

    TVM names kernel parameters after ONNX values, and a CUDA library holds its kernels as
    source compiled when loaded: "adam/iteration" would be a syntax error there. Inputs keep
    their order, which is all the executor relies on.
    """
    clean = onnx.ModelProto()
    clean.CopyFrom(model)
    graph = clean.graph
    names: dict = {}

    def rename(name):
        if not name:
            return name
        if name not in names:
            base = re.sub(r"\W", "_", name)
            base = base if re.match(r"[A-Za-z_]", base) else "v_" + base
            names[name] = f"{base}_{len(names)}" if base in names.values() else base
        return names[name]

    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        value.name = rename(value.name)
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
    return clean


def to_relax(model: onnx.ModelProto, static_shapes: dict | None = None):
    """The Relax IRModule of `model` (parameters stay function inputs: nothing is baked in).

    Dims named alike in the ONNX inputs (the emitter names the batch dim "batch") become one
    symbolic TIR variable, so one compiled module serves every batch size.
    """
    from tvm.relax.frontend.onnx import from_onnx

    if static_shapes:
        model = fix_shapes(model, static_shapes)
    return from_onnx(sanitize_names(model), keep_params_in_input=False)
