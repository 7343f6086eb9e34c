"""`Scan`: a loop over the leading (time) axis of sequences, with a body graph run per step.

A recurrence written as one step and looped by ONNX `Scan` keeps the graph, its compile time
and its memory independent of the sequence length (an unrolled loop has a copy of the step's
kernels per time step). The node reads, in order: the initial carries, the sequences (time
first), and the loop invariants (the step's weights: values of the enclosing graph the body
reads, bound by name in the emitted ONNX). It gives the final carries, the step outputs
stacked along a new leading axis, and (with `history`) the carries each step started from,
stacked the same way: the backward loop reads them instead of recomputing the forward.

Outputs are aligned with their inputs: `outputs[t]` is the step that read `sequences[t]`,
also when `reverse` runs the steps from the last to the first.

The gradient is a `Scan` in the opposite direction whose body is the vector-Jacobian product
of this one's step. What that product reads of the forward step (gate activations, say) the
forward node saves as extra stacked outputs, added to it when the gradient is taken, so the
backward step does not recompute the forward one. The invariants' gradients are carried and
summed, or, when they are sums over the steps of products `aᵀ b` (a weight's gradient),
computed after the loop as one product of the stacked factors. The gradient is itself an
ordinary `Scan`, so gradients of gradients work too. Bodies are optimised as they are traced
(kgraph/ops/scan_body.py). TVM's ONNX importer has no `Scan`: `compiler/passes/scans.py`
unrolls it there.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.graph import Graph, Value, current_graph, tracing
from kgraph.ir.types import TensorType
from kgraph.ops.lstm_gates import emit_sequence
from kgraph.ops.registry import apply, defop, to_value
from kgraph.ops.scan_body import optimize_body


_HALF = ("float16", "bfloat16")


class ScanBodyError(ValueError):
    """A step function that cannot be a `Scan` body: it assigns variables or draws random
    numbers (both need the enclosing graph's state, not a per-step one), its carries change
    type, or it computes in half precision."""


# -- tracing a body ---------------------------------------------------------------------------
def capture_outer(body: Graph, value: Value) -> Value:
    """The body's placeholder for `value` of an enclosing graph (made once per value)."""
    outer = body.parent
    if value.graph is not outer:
        if getattr(outer, "parent", None) is None:
            raise ValueError(f"Tensor {value!r} belongs to graph {value.graph.name!r}, not to "
                             f"the graphs being traced ({body.name!r} in {outer.name!r})")
        value = capture_outer(outer, value)
    held = body.outer_values.get(value)
    if held is None:
        held = body.outer_values[value] = body.placeholder(
            f"outer_{len(body.outer_values)}", value.shape, value.dtype)
    return held


def trace_body(step, carries: list[Value], sequences: list[Value], name="scan_body"):
    """Trace `step(carries, slices) -> (new_carries, outputs)` into a body graph.

    Returns the body, the sequences it reads beyond `sequences` (what `optimize_body` moved
    out of the loop) and the invariants (values of the enclosing graph the body reads, in the
    order of the body's trailing inputs). The body's inputs are renamed by position
    (`carry_i`, `seq_i`, `inv_i`), so bodies of layers with different weight names are equal.
    """
    outer = current_graph()
    if outer is None:
        raise ValueError("A Scan is traced into a graph: call it while a graph is traced")
    body = Graph(name)
    body.parent, body.outer_values = outer, {}
    carry_in = [body.placeholder(f"carry_{i}", c.shape, c.dtype) for i, c in enumerate(carries)]
    slices = [body.placeholder(f"seq_{i}", s.shape[1:], s.dtype)
              for i, s in enumerate(sequences)]
    with tracing(body):
        new_carries, outputs = step(carry_in, slices)
    if body.updates or getattr(body, "rng_key", None) is not None:
        raise ScanBodyError(f"The step function of {name!r} assigns variables or draws random "
                            f"numbers; it cannot run in a Scan")
    if any(v.dtype in _HALF for node in body.nodes for v in node.outputs):
        # onnxruntime 1.32's Scan fails on float16 bodies (a type error, or a crash)
        raise ScanBodyError(f"The step function of {name!r} computes in half precision; "
                            f"it is unrolled instead")
    invariants, inner = [], []  # values of the enclosing graph, the body's placeholders
    for var, placeholder in body.variables.items():
        invariants.append(outer.read_variable(var))
        inner.append(placeholder)
    for value, placeholder in body.outer_values.items():
        invariants.append(value)
        inner.append(placeholder)
    for c, new in zip(carries, new_carries):
        if tuple(c.shape) != tuple(new.shape) or c.dtype != new.dtype:
            raise ScanBodyError(f"A Scan step must return carries of the types it received: "
                             f"{c.type!r} became {new.type!r}")
    body.set_outputs({**{f"carry_out_{i}": v for i, v in enumerate(new_carries)},
                      **{f"out_{i}": v for i, v in enumerate(outputs)}})
    more_slices, more_sequences, inner, invariants = optimize_body(
        body, outer, carry_in, dict(zip(slices, sequences)), dict(zip(inner, invariants)))
    body.inputs = carry_in + slices + more_slices + inner
    for i, placeholder in enumerate(more_slices):
        placeholder.node.attrs["name"] = f"seq_{len(slices) + i}"
    for i, placeholder in enumerate(inner):
        placeholder.node.attrs["name"] = f"inv_{i}"
    body.variables, body.outer_values, body.parent = {}, {}, None
    return body, more_sequences, invariants


def scan(step, carries, sequences, reverse=False, name="scan_body"):
    """Run `step` over the leading axis of `sequences` (see the module docstring).

    Returns (final carries, stacked outputs)."""
    body, more, invariants = trace_body(step, carries, sequences, name)
    kept = _drop_passed_carries(body, len(carries))
    same = _merge_repeated_outputs(body, len(kept))
    sequences = list(sequences) + more
    outs = apply("Scan", *[carries[k] for k in kept], *sequences, *invariants, body=body,
                 n_carry=len(kept), n_seq=len(sequences), reverse=bool(reverse), history=True)
    finals = list(carries)  # a carry the body passes on unchanged ends as it began
    for k, final in zip(kept, outs):
        finals[k] = final
    stacked = outs[len(kept):len(body.outputs)]
    return finals, [stacked[j] for j in same]


def _merge_repeated_outputs(body, n_carry):
    """Output a value the step returns several times once (each would be a copy per step);
    the position of each returned output among the kept ones."""
    outputs, kept, same = body.outputs[n_carry:], [], []
    for v in outputs:
        if v not in kept:
            kept.append(v)
        same.append(kept.index(v))
    if len(kept) < len(outputs):
        body.set_outputs({**dict(zip(body.output_names[:n_carry], body.outputs[:n_carry])),
                          **{f"out_{i}": v for i, v in enumerate(kept)}})
    return same


def _drop_passed_carries(body, n_carry):
    """Remove the carries the body outputs as it received them and reads nowhere else
    (a gradient sum the step ended up computing after the loop); the kept positions."""
    read = {v for node in body.nodes for v in node.inputs}
    read.update(body.outputs[n_carry:])
    passed = {k for k in range(n_carry)
              if body.outputs[k] is body.inputs[k] and body.inputs[k] not in read}
    if not passed:
        return list(range(n_carry))
    kept = [k for k in range(n_carry) if k not in passed]
    gone = {body.inputs[k] for k in passed}
    body.nodes = [n for n in body.nodes if n.outputs[0] not in gone]
    body.inputs = [v for v in body.inputs if v not in gone]
    for i, v in enumerate(body.inputs[:len(kept)]):
        v.node.attrs["name"] = f"carry_{i}"
    outputs = [body.outputs[k] for k in kept] + body.outputs[n_carry:]
    body.set_outputs({**{f"carry_out_{i}": v for i, v in enumerate(outputs[:len(kept)])},
                      **{f"out_{i}": v for i, v in enumerate(outputs[len(kept):])}})
    return kept


# -- the op -----------------------------------------------------------------------------------
def _infer(types, body, n_carry, n_seq, reverse, history):
    steps = {t.shape[0] for t in types[n_carry:n_carry + n_seq]}
    if len(steps) != 1:
        raise ValueError(f"Scan: the sequences differ in length: "
                         f"{[t.shape for t in types[n_carry:n_carry + n_seq]]}")
    steps = steps.pop()
    stacked = [TensorType((steps,) + v.type.shape, v.type.dtype) for v in body.outputs[n_carry:]]
    hist = [TensorType((steps,) + t.shape, t.dtype) for t in types[:n_carry]] if history else []
    return list(types[:n_carry]) + stacked + hist


def _ref(*arrays, body, n_carry, n_seq, reverse, history):
    from kgraph.runtime.numpy_exec import NumpyCompiled

    run = NumpyCompiled(body)
    carries = list(arrays[:n_carry])
    sequences, invariants = arrays[n_carry:n_carry + n_seq], list(arrays[n_carry + n_seq:])
    steps = sequences[0].shape[0]
    outs = [[None] * steps for _ in body.outputs[n_carry:]]
    hist = [[None] * steps for _ in range(n_carry)]
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        feeds = carries + [s[t] for s in sequences] + invariants
        results = run.run(dict(zip(body.input_names, feeds)))
        for k in range(n_carry):
            hist[k][t] = carries[k]
        carries = results[:n_carry]
        for o, r in zip(outs, results[n_carry:]):
            o[t] = r
    stacked = [np.stack(o) if steps else np.zeros((0,) + v.type.shape, v.dtype)
               for o, v in zip(outs, body.outputs[n_carry:])]
    return tuple(carries + stacked + ([np.stack(h) for h in hist] if history else []))


def _grad(g, y, *inputs, body, n_carry, n_seq, reverse, history):
    """A reverse `Scan`: carries (d carry, Σ d invariant), sequences (the forward's saved
    carries, its sequences, the output gradients); see the module docstring."""
    from kgraph import ops

    if not history:
        raise RuntimeError("Scan: the gradient needs the forward's carry history")
    n_out = len(body.outputs) - n_carry
    d_final, d_out = g[:n_carry], g[n_carry:n_carry + n_out]
    d_hist = g[n_carry + n_out:]
    init, seqs, invariants = inputs[:n_carry], inputs[n_carry:n_carry + n_seq], \
        inputs[n_carry + n_seq:]
    hist = y[n_carry + n_out:]
    wanted = [i for i, v in enumerate(invariants)
              if v.node.op != "Constant" and v.dtype.startswith(("float", "bfloat"))]
    seeded = [i for i, d in enumerate(d_out) if d is not None]
    hist_seeded = [k for k, d in enumerate(d_hist) if d is not None]
    d_carry = [ops.zeros_like(c) if d is None else d for c, d in zip(init, d_final)]
    zeros_acc = [ops.zeros_like(invariants[i]) for i in wanted]

    products = {}  # invariant position -> its gradient's terms summed after the loop
    saved = _save_in_forward(y[0].node, _read_by_gradient(body, n_carry, n_seq, seeded,
                                                          wanted))
    body = y[0].node.attrs["body"]  # (with the saved values among its outputs)
    n_saved = len(saved)

    def step(carry, slices):
        d_c, acc = carry[:n_carry], carry[n_carry:]
        c_in, xs = slices[:n_carry], slices[n_carry:n_carry + n_seq]
        at = n_carry + n_seq + n_saved
        dys, dhs = slices[at:at + len(seeded)], slices[at + len(seeded):]
        inv = [to_value(v) for v in invariants]  # the enclosing graph's, captured
        graph, vmap = current_graph(), {}
        forward = _inline(body, c_in + xs + inv, vmap)
        start = len(graph.nodes)
        outs = forward[:n_carry] + [forward[n_carry + i] for i in seeded]
        from kgraph.compiler.autodiff import vjp

        grads = vjp(graph, outs, list(d_c) + list(dys),
                    list(c_in) + list(xs) + [inv[i] for i in wanted])
        # the gradient reads the forward's saved values, not a recomputed step (whose nodes,
        # kept only for the walk above, are then dead and dropped)
        replace = {vmap[v]: s for v, s in zip(saved, slices[n_carry + n_seq:at])}
        for node in graph.nodes[start:]:
            node.inputs = [replace.get(v, v) for v in node.inputs]
        grads = [replace.get(v, v) for v in grads]
        new_d_c = [ops.zeros_like(c) if gr is None else gr for c, gr in zip(c_in, grads)]
        for k, dh in zip(hist_seeded, dhs):
            new_d_c[k] = new_d_c[k] + dh
        d_xs = [ops.zeros_like(x) if gr is None else gr
                for x, gr in zip(xs, grads[n_carry:n_carry + n_seq])]
        new_acc, factors = [], []
        for i, a, gr in zip(wanted, acc, grads[n_carry + n_seq:]):
            terms = _outer_products(gr)
            if terms:  # summed after the loop as ONE product over all steps; a factor
                products[i] = []  # that is a sequence's slice is read from the sequence
                for term in terms:
                    products[i].append([slices.index(x) if x in slices else None
                                        for x in term])
                    factors += [x for x in term if x not in slices]
            new_acc.append(a if gr is None or terms else a + gr)
        return new_d_c + new_acc, d_xs + factors

    sequences = list(hist) + list(seqs) + list(saved.values()) + \
        [d_out[i] for i in seeded] + [d_hist[k] for k in hist_seeded]
    finals, stacked = scan(step, d_carry + zeros_acc, sequences, reverse=not reverse,
                           name="scan_grad_body")
    d_invariants = [None] * len(invariants)
    for i, total in zip(wanted, finals[n_carry:]):
        d_invariants[i] = total
    factors = iter(stacked[n_seq:])
    for i, terms in products.items():
        for term in terms:
            rows = [ops.reshape(f, (-1, f.shape[-1])) for f in
                    (next(factors) if j is None else sequences[j] for j in term)]
            total = ops.matmul(ops.transpose(rows[0], (1, 0)), rows[1]) if len(rows) == 2 \
                else ops.reshape(ops.sum(rows[0], axis=0), invariants[i].shape)
            d_invariants[i] = d_invariants[i] + total
    return tuple(finals[:n_carry]) + tuple(stacked[:n_seq]) + tuple(d_invariants)


def _outer_products(g):
    """The factors of `g` as a sum of terms that can be summed over the steps after the
    loop: `(a, b)` for `aᵀ b` of 2-D step values (a weight's gradient in a step: `h_{t-1}ᵀ
    dz_t`), `(a,)` for the sum of a (batch, n) step value over its batch (a bias's); None
    when `g` is anything else."""
    if g is None:
        return None
    node = g.node
    if node.op == "Add":
        left, right = (_outer_products(v) for v in node.inputs)
        return left + right if left and right else None
    if node.op == "MatMul" and node.inputs[0].node.op == "Transpose" and \
            tuple(node.inputs[0].node.attrs["perm"]) == (1, 0) and node.inputs[1].ndim == 2:
        return [(node.inputs[0].node.inputs[0], node.inputs[1])]
    if node.op == "Reshape" and g.ndim == 1:
        node = node.inputs[0].node
    if node.op == "ReduceSum" and tuple(node.attrs["axes"]) == (0,) and \
            node.inputs[0].ndim == 2 and node.outputs[0].shape[-1] == g.shape[-1]:
        return [(node.inputs[0],)]
    return None


def _inline(body: Graph, feeds: list, vmap=None) -> list[Value]:
    """Append a copy of `body`'s nodes to the graph being traced, its inputs bound to
    `feeds`; returns the copies of its outputs (`vmap`, if given, receives body value ->
    copy)."""
    graph = current_graph()
    vmap = {} if vmap is None else vmap
    vmap.update(zip(body.inputs, feeds))
    for node in body.nodes:
        if node.op == "Input":
            continue
        outs = graph.append_node(node.op, [vmap[v] for v in node.inputs], node.attrs,
                                 [v.type for v in node.outputs])
        vmap.update(zip(node.outputs, outs))
    return [vmap[v] for v in body.outputs]


def _read_by_gradient(body, n_carry, n_seq, seeded, wanted) -> list[Value]:
    """The body's computed values (not inputs or constants) that its step's gradient reads:
    what the forward loop saves so the backward loop need not recompute the step."""
    from kgraph.compiler.autodiff import vjp

    scratch = Graph("scratch")
    with tracing(scratch):
        feeds = [scratch.placeholder(f"in_{i}", v.shape, v.dtype)
                 for i, v in enumerate(body.inputs)]
        vmap = {}
        forward = _inline(body, feeds, vmap)
        start = len(scratch.nodes)
        outs = forward[:n_carry] + [forward[n_carry + i] for i in seeded]
        seeds = [scratch.placeholder(f"seed_{i}", v.shape, v.dtype) for i, v in enumerate(outs)]
        vjp(scratch, outs, seeds, feeds[:n_carry + n_seq] +
            [feeds[n_carry + n_seq + i] for i in wanted])
    body_of = {copy: value for value, copy in vmap.items()
               if value.node.op not in ("Input", "Constant")}
    read = {}
    for node in scratch.nodes[start:]:
        for v in node.inputs:
            if v in body_of:
                read.setdefault(body_of[v], None)
    return list(read)


def _save_in_forward(node, values) -> dict:
    """Make the forward `Scan` `node` also output `values` (of its body) stacked over the
    steps, unless it already does; returns {body value: stacked value}. The node is changed in
    place (a new body with more outputs), before its history outputs."""
    body, n_carry = node.attrs["body"], node.attrs["n_carry"]
    stacked = dict(zip(body.outputs[n_carry:], node.outputs[n_carry:len(body.outputs)]))
    missing = [v for v in values if v not in stacked]
    if missing:
        new, vmap = body.clone()
        new.inputs = [vmap[v] for v in body.inputs]
        names = dict(zip(body.output_names, [vmap[v] for v in body.outputs]))
        names.update((f"saved_{len(names) + i}", vmap[v]) for i, v in enumerate(missing))
        new.set_outputs(names)
        steps = node.outputs[n_carry].shape[0] if len(body.outputs) > n_carry else \
            node.inputs[n_carry].shape[0]
        extra = [Value(node.outputs[0].graph, node, 0, TensorType((steps,) + v.shape, v.dtype))
                 for v in missing]
        split = len(body.outputs)
        node.outputs = node.outputs[:split] + extra + node.outputs[split:]
        for i, v in enumerate(node.outputs):
            v.index = i
        node.attrs = {**node.attrs, "body": new}
        stacked = {vmap[v]: s for v, s in stacked.items()}
        stacked.update((vmap[v], s) for v, s in zip(missing, extra))
        values = [vmap[v] for v in values]
    return {v: stacked[v] for v in values}


def _emit(ctx, node, ins, outs):
    from kgraph.compiler.onnx.emit import emit_subgraph

    if emit_sequence(ctx, node, ins, outs):  # an LSTM's loop as one kgraph operator
        return
    a = node.attrs
    n_carry, n_seq = a["n_carry"], a["n_seq"]
    n_scan_out = len(node.outputs) - n_carry
    subgraph = emit_subgraph(ctx, a["body"], ins[n_carry + n_seq:], history=a["history"],
                             n_carry=n_carry)
    direction = 1 if a["reverse"] else 0
    ctx.node("Scan", ins[:n_carry + n_seq], outs, body=subgraph, num_scan_inputs=n_seq,
             scan_input_directions=[direction] * n_seq if direction else None,
             scan_output_directions=[direction] * n_scan_out if direction and n_scan_out else None)


defop("Scan", _infer, _ref, grad=_grad, onnx=_emit, num_outputs=0,
      attrs=("body", "n_carry", "n_seq", "reverse", "history"))
