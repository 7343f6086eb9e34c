"""A Keras model -> an inference ONNX model: `model.export(path, format="onnx")`,
`kgraph export` and the graph inside every compiled artifact.

The model is traced with `training=False` on placeholders named after its inputs (batch
dimension symbolic, or fixed by `batch_size`), optimised and emitted; each variable the graph
reads becomes an initializer named by the variable's path, so the file stands alone.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from kgraph.compiler.onnx.emit import to_onnx
from kgraph.compiler.passes import optimize

FORMATS = ("onnx",)


class ExportError(ValueError):
    """A model that cannot be exported, or an export format kgraph does not write."""


def model_signature(model):
    """`(inputs, output_names)` of a built model: inputs as (name, shape, dtype) in the order
    the model flattens them, outputs named after the layers that produce them (as Keras)."""
    inputs = getattr(model, "inputs", None)
    if not inputs or any(not hasattr(t, "shape") or not hasattr(t, "name") for t in inputs):
        raise ExportError(f"Model {model.name!r} has no known inputs: build it first (give "
                          f"it an Input, or call it once on data) before exporting it.")
    from kgraph.keras.models.host_prefix import check_exportable

    check_exportable(model)  # string Inputs: the host layers cannot go into the file
    specs = [(t.name, tuple(t.shape), str(np.dtype(t.dtype))) for t in inputs]
    names = _unique(model._output_names() or [f"output_{i}" for i in range(len(model.outputs))])
    return specs, names


def _unique(names):
    seen, out = {}, []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count}")
    return out


def inference_graph(model, batch_size=None, unroll_loops=False):
    """The optimised op graph of `model(x, training=False)`; variables stay graph inputs
    (`graph.variables`). `batch_size` fixes the batch dimension (static targets);
    `unroll_loops` unrolls the recurrent layers' `Scan` loops (for TVM, which has none)."""
    from kgraph.compiler.program import trace_graph
    from kgraph.keras.tree import flatten, pack_like

    specs, output_names = model_signature(model)
    specs = [(name, (batch_size,) + shape[1:], dtype) for name, shape, dtype in specs]

    def forward(*placeholders):
        x = pack_like(model._inputs_struct, placeholders)
        return dict(zip(output_names, flatten(model(x, training=False))))

    graph = optimize(trace_graph(f"{model.name}_inference", specs, forward))
    if unroll_loops:
        from kgraph.compiler.passes.scans import unroll_scans

        graph = unroll_scans(graph)
    return graph


def freeze_variables(onnx_model, graph) -> dict:
    """Move the graph inputs that carry variables into initializers holding their current
    values (in place); returns {initializer name: Variable}."""
    frozen = {v.node.attrs["name"]: var for var, v in graph.variables.items()}
    kept = [i for i in onnx_model.graph.input if i.name not in frozen]
    for name, var in frozen.items():
        onnx_model.graph.initializer.append(numpy_helper.from_array(np.asarray(var.numpy()),
                                                                    name))
    del onnx_model.graph.input[:]
    onnx_model.graph.input.extend(kept)
    return frozen


def _name_batch_dims(onnx_model, batch_size):
    """Outputs share the inputs' batch dimension name, so tools see one symbolic batch."""
    for value in onnx_model.graph.output:
        dims = value.type.tensor_type.shape.dim
        if batch_size is None and dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"


def inference_model(model, batch_size=None, unroll_loops=False):
    """`(onnx_model, {initializer name: Variable})`: the inference ONNX model of `model`
    (weights as initializers, opset `emit.ONNX_OPSET`, `emit.IR_VERSION`), checked by
    `onnx.checker`; `unroll_loops` as `inference_graph`."""
    graph = inference_graph(model, batch_size, unroll_loops)
    if getattr(graph, "rng_key", None) is not None:  # inference draws no randomness
        raise ExportError(f"Model {model.name!r} uses randomness at inference time; it "
                          f"cannot be exported as a deterministic ONNX model.")
    onnx_model = to_onnx(graph)
    frozen = freeze_variables(onnx_model, graph)
    _name_batch_dims(onnx_model, batch_size)
    onnx_model.graph.name = model.name
    onnx_model.doc_string = f"kgraph inference model {model.name!r}"
    onnx.checker.check_model(onnx_model)
    return onnx_model, frozen


def export_onnx_model(model, batch_size=None) -> onnx.ModelProto:
    """The inference ONNX model of `model`; see `inference_model`."""
    return inference_model(model, batch_size)[0]


def export(model, filepath, format="onnx", batch_size=None, verbose=False):
    """Write `model` for inference as `format` (only "onnx") at `filepath`, atomically.

    Args:
        model: a built Keras model.
        filepath: where to write the file.
        format: "onnx".
        batch_size: None keeps the batch dimension symbolic; an int fixes it.
        verbose: print where the file went.

    Returns:
        The path written.

    Example:

    ```python
    model.export("model.onnx", format="onnx")
    ```
    """
    from kgraph.runtime.atomic_file import atomic_write_bytes

    if format not in FORMATS:
        raise ExportError(f"Unsupported export format. Received: format={format!r}; kgraph "
                          f"exports {FORMATS}. Use model.save() for .keras files.")
    data = export_onnx_model(model, batch_size).SerializeToString()
    atomic_write_bytes(filepath, data)
    if verbose:
        print(f"Saved an ONNX inference model of {model.name!r} at {filepath}")
    return filepath
