"""Running one traced train step both ways: emitted with kgraph's onnxruntime operators and
in standard ONNX (compiler/onnx/emit.py), on the same feeds."""
import numpy as np
import onnxruntime as ort

from kgraph.compiler.onnx.emit import emit
from kgraph.runtime.onnx_exec import _session_options


def both_emissions(step, graph, feeds):
    """`graph` (the optimized `step`, from `model.trace_step`) emitted native and standard,
    each run over the step's variables and `feeds` (x_0, y_0, ...): (native emission, its
    outputs, the standard emission's outputs)."""
    native, standard = emit(graph, native=True), emit(graph)
    values = {ph.node.attrs["name"]: np.asarray(v.numpy()) for v, ph in step.variables.items()}
    values.update(feeds)
    names = {v.node.attrs["name"] for v in graph.inputs}
    values = {k: v for k, v in values.items() if k in names}
    runs = [ort.InferenceSession(e.to_bytes(), _session_options(native=True)).run(None, values)
            for e in (native, standard)]
    return native, runs[0], runs[1]
