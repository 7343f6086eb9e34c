"""Running kgraph's onnxruntime operators in tests: one traced train step both ways (emitted
with kgraph's operators and in standard ONNX, compiler/onnx/emit.py) on the same feeds, and
one operator alone in a session."""
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


def kgraph_session(op, inputs, outputs, threads=None, **attrs):
    """A session of the one "kgraph" operator `op` reading `inputs` and writing `outputs`
    (names; "" omits an optional one), float32 throughout; `threads`: intra-op threads."""
    from onnx import TensorProto, helper

    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    node = helper.make_node(op, inputs, outputs, domain="kgraph", **attrs)
    graph = helper.make_graph([node], op, [info(i) for i in inputs if i],
                              [info(o) for o in outputs if o])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid("kgraph", 1)])
    options = _session_options(native=True)
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options)
