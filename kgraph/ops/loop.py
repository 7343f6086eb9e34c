"""`Loop`: repeat a step while a condition holds, the number of steps known only at run time.

`keras.ops.while_loop` with a symbolic condition and no `maximum_iterations` traces into one
`Loop` node (ONNX `Loop` with no trip count): its inputs are the condition on the initial
state, the initial carries and the loop invariants (values of the enclosing graph the step
reads, captured as a `Scan` body captures them: kgraph/ops/recurrence.py); its attribute is
the step's graph, whose outputs are the condition on the new state and the new carries; its
outputs are the final carries. The numpy reference is a Python `while` over the body.

There is no gradient (as `jax.lax.while_loop`, which Keras' JAX backend uses, has none in
reverse mode): with `maximum_iterations=N` the loop is a differentiable `Scan` instead. TVM's
ONNX importer has no `Loop`, and a loop of unknown length cannot be unrolled: TVM targets
refuse such a graph (compiler/passes/scans.py).
"""
from __future__ import annotations

from kgraph.ir.graph import Graph
from kgraph.ir.types import TensorType
from kgraph.ops import elementwise as ew
from kgraph.ops.recurrence import ScanBodyError, trace_body
from kgraph.ops.registry import apply, defop


def while_loop(cond, step, carries):
    """Final `carries` of `while cond(*carries): carries = step(carries)` as one `Loop` node
    (`carries`: Values; `step` returns a list of the same types). Raises `ScanBodyError`
    when the step cannot be a loop body (it draws random numbers, assigns variables or
    computes in half precision)."""
    def body(carry_in, _):
        new = list(step(list(carry_in)))
        return new, [ew.cast(cond(*new), "bool")]

    graph, more, invariants = trace_body(body, list(carries), [], name="while_body")
    if more:  # (a body without sequences has nothing to vectorise over them)
        raise ScanBodyError("A while_loop body read per-step sequences")
    n = len(carries)
    order = [n] + list(range(n))  # ONNX Loop: the condition first, then the carries
    graph.outputs = [graph.outputs[i] for i in order]
    graph.output_names = [graph.output_names[i] for i in order]
    first = ew.cast(cond(*carries), "bool")
    return apply("Loop", first, *carries, *invariants, body=graph, n_carry=n)


def _infer(types, body: Graph, n_carry):
    if types[0].shape not in ((), (1,)) or types[0].dtype != "bool":
        raise ValueError(f"Loop: the condition must be one bool. Received: {types[0]!r}")
    return list(types[1:1 + n_carry])


def _ref(first, *arrays, body, n_carry):
    from kgraph.runtime.numpy_exec import NumpyCompiled

    run = NumpyCompiled(body)
    carries, invariants = list(arrays[:n_carry]), list(arrays[n_carry:])
    going = bool(first)
    while going:
        results = run.run(dict(zip(body.input_names, carries + invariants)))
        going, carries = bool(results[0]), list(results[1:])
    return tuple(carries)


def _grad(*_, **__):
    raise NotImplementedError(
        "while_loop with a symbolic condition and no maximum_iterations has no gradient (its "
        "number of steps is known only at run time); pass maximum_iterations=N for a "
        "differentiable loop")


def _emit(ctx, node, ins, outs):
    from kgraph.compiler.onnx.emit import emit_subgraph

    n_carry = node.attrs["n_carry"]
    subgraph = emit_subgraph(ctx, node.attrs["body"], ins[1 + n_carry:],
                             leading=[("iteration", TensorType((), "int64")),
                                      ("going", TensorType((), "bool"))])
    ctx.node("Loop", ["", ins[0]] + ins[1:1 + n_carry], outs, body=subgraph)


defop("Loop", _infer, _ref, grad=_grad, onnx=_emit, num_outputs=0, attrs=("body", "n_carry"))
