"""`LSTMGates`: Keras' LSTM step after its two products, as one op.

`LSTMGates(a, b, c) -> (h, c', gates)` with `z = a + b` (the input and recurrent products,
bias included) split into gate blocks i, f, c~, o of `units` columns each:
`c' = σ(z_f) c + σ(z_i) tanh(z_c~)`, `h = σ(z_o) tanh(c')` (Keras' default activations), and
`gates` = [σ(z_i), σ(z_f), tanh(z_c~), σ(z_o), tanh(c')], (n, 5 units): what the gradient
needs. Its gradient is `LSTMGatesGrad(dh, dc', gates, c) -> (dz, dc)`, products and sums of
the saved activations, no exponential: in a `Scan` the forward step saves the (n, 5u) gates
per step (the recurrence's gradient saves what its backward step reads) and the backward
step is one kernel plus its product (recomputing the five exponentials per cell from a + b
instead made the backward kernel 13x slower: 26 against 2 µs for 64 x 64 cells).

Where a train step runs on onnxruntime with kgraph's operators (runtime/native_ops.py), each
op is one kernel (runtime/native/lstm.cc); everywhere else it is emitted as its expansion
in standard ops (`gates`, `gates_grad` below, also the gradient of `LSTMGatesGrad`).

There, too, a whole `Scan` whose step is just an LSTM step (`LSTMGates(x[t], h r, c)`), or
the reverse `Scan` of its gradient (`LSTMGatesGrad` then the product with rᵀ), is emitted as
one operator, `LSTMSequence` / `LSTMSequenceGrad` (`emit_sequence`): the kernel runs every
step of a block of batch rows on one thread (rows do not interact), so the loop needs no
per-step kernel launches and uses every core, where the Scan's small per-step kernels ran
on one. Masked, stateful-with-mask or otherwise different steps keep their Scan.
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.types import TensorType
from kgraph.ops import elementwise as ew
from kgraph.ops.movement import concatenate, split
from kgraph.ops.registry import apply, defop, native_or_expanded


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- the math, in numpy (references) and in kgraph ops (expansions) ---------------------------
def _gates_ref(a, b, c):
    zi, zf, zc, zo = np.split(a + b, 4, axis=-1)
    i, f, cand, o = _sigmoid(zi), _sigmoid(zf), np.tanh(zc), _sigmoid(zo)
    c_new = f * c + i * cand
    tc = np.tanh(c_new)
    saved = np.concatenate([i, f, cand, o, tc], axis=-1)
    return (o * tc).astype(a.dtype), c_new.astype(a.dtype), saved.astype(a.dtype)


def _gates_grad_ref(dh, dc, saved, c):
    i, f, cand, o, tc = np.split(saved, 5, axis=-1)
    dct = dc + dh * o * (1 - tc * tc)
    dz = np.concatenate([dct * cand * i * (1 - i), dct * c * f * (1 - f),
                         dct * i * (1 - cand * cand), dh * tc * o * (1 - o)], axis=-1)
    return dz.astype(c.dtype), (dct * f).astype(c.dtype)


def gates(a, b, c):
    """`LSTMGates` in standard ops."""
    zi, zf, zc, zo = split(ew.add(a, b), (c.shape[-1],) * 4, -1)
    i, f, cand, o = ew.sigmoid(zi), ew.sigmoid(zf), ew.tanh(zc), ew.sigmoid(zo)
    c_new = f * c + i * cand
    tc = ew.tanh(c_new)
    return o * tc, c_new, concatenate([i, f, cand, o, tc], axis=-1)


def gates_grad(dh, dc, saved, c):
    """`LSTMGatesGrad` in standard ops."""
    i, f, cand, o, tc = split(saved, (c.shape[-1],) * 5, -1)
    dct = dc + dh * o * (1 - tc * tc)
    dz = concatenate([dct * cand * i * (1 - i), dct * c * f * (1 - f),
                      dct * i * (1 - cand * cand), dh * tc * o * (1 - o)], axis=-1)
    return dz, dct * f


# -- shape rules ------------------------------------------------------------------------------
def _same(*dims):
    """The one known size among `dims` (None when none is known); raises when two differ."""
    known = {d for d in dims if d is not None}
    if len(known) > 1:
        raise ValueError
    return known.pop() if known else None


def _rows_and_units(name, a, b, c):
    """(rows, units) of gate inputs a, b (n, 4 units) and a carry c (n, units); a batch dim
    may be unknown in some of them (a stateful layer's carry has a fixed one)."""
    try:
        if len(a.shape) != 2 or len(b.shape) != 2 or len(c.shape) != 2:
            raise ValueError
        if c.shape[-1] is None or _same(a.shape[1], b.shape[1], 4 * c.shape[1]) is None:
            raise ValueError
        if not a.dtype == b.dtype == c.dtype:
            raise ValueError
        return _same(a.shape[0], b.shape[0], c.shape[0]), c.shape[1]
    except ValueError:
        raise ValueError(f"{name} takes gate inputs a, b of shape (n, 4 units) and a carry c "
                         f"of shape (n, units), all of one dtype. Received: a {a!r}, b {b!r}, "
                         f"c {c!r}") from None


def _gates_infer(types):
    a, b, c = types
    rows, units = _rows_and_units("LSTMGates", a, b, c)
    return [TensorType((rows, units), c.dtype)] * 2 + [TensorType((rows, 5 * units), c.dtype)]


def _gates_grad_infer(types):
    dh, dc, saved, c = types
    if len(c.shape) != 2 or c.shape[1] is None:
        raise ValueError(f"LSTMGatesGrad takes a carry c of shape (n, units). Received: {c!r}")
    rows, units = c.shape
    for name, t, width in (("dh", dh, units), ("dc", dc, units), ("gates", saved, 5 * units)):
        try:
            rows = _same(rows, t.shape[0]) if len(t.shape) == 2 else None
            ok = len(t.shape) == 2 and t.shape[1] == width and t.dtype == c.dtype
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"LSTMGatesGrad: {name} must have shape (n, {width}) and the "
                             f"carry's dtype (carry {c!r}). Received: {t!r}")
    return [TensorType((rows, 4 * units), c.dtype), TensorType((rows, units), c.dtype)]


# -- gradient rules ---------------------------------------------------------------------------
def _gates_grad_rule(g, y, a, b, c):
    from kgraph.compiler.autodiff import expansion_vjp
    from kgraph.ops.numpy_api import zeros_like

    dh, dc, d_saved = g
    h, c_new, saved = y
    if d_saved is not None:  # the saved gates were differentiated (a second-order gradient)
        return expansion_vjp(gates, [a, b, c], g)
    dz, dc_prev = apply("LSTMGatesGrad", dh if dh is not None else zeros_like(h),
                        dc if dc is not None else zeros_like(c_new), saved, c)
    return dz, dz, dc_prev


def _gates_grad_grad_rule(g, y, *inputs):
    """The gradient of `LSTMGatesGrad` (second-order gradients through an LSTM): the
    vector-Jacobian product of its expansion."""
    from kgraph.compiler.autodiff import expansion_vjp

    return expansion_vjp(gates_grad, inputs, g)


# -- ONNX emission ----------------------------------------------------------------------------
defop("LSTMGates", _gates_infer, _gates_ref, grad=_gates_grad_rule, num_outputs=3,
      onnx=native_or_expanded("LSTMGates", gates))
defop("LSTMGatesGrad", _gates_grad_infer, _gates_grad_ref, grad=_gates_grad_grad_rule,
      num_outputs=2, onnx=native_or_expanded("LSTMGatesGrad", gates_grad))


# -- whole recurrences as one operator (onnxruntime with kgraph's operators) -------------------
def _computed(body):
    return [n for n in body.nodes if n.op != "Input"]


def _forward_outputs(node):
    """For a `Scan` `node` whose step is exactly an LSTM step, the `LSTMSequence` output
    (0 last h, 1 last c, 2 h, 3 c, 4 activations, 5 and 6 the step's h and c history) of
    each of its outputs, and the body input read as the recurrent kernel; None for any other
    Scan."""
    a, body = node.attrs, node.attrs["body"]
    ops = _computed(body)
    if a["n_carry"] != 2 or a["n_seq"] != 1 or [n.op for n in ops] != ["MatMul", "LSTMGates"]:
        return None
    (h, c, x), invariants = body.inputs[:3], body.inputs[3:]
    product, step = ops
    if product.inputs[0] is not h or product.inputs[1] not in invariants or \
            product.inputs[1].ndim != 2 or step.inputs[2] is not c or \
            set(step.inputs[:2]) != {x, product.outputs[0]}:
        return None
    if list(body.outputs[:2]) != list(step.outputs[:2]):
        return None
    stacked = [step.outputs.index(v) + 2 if v in step.outputs else None
               for v in body.outputs[2:]]
    kernel_outs = [0, 1] + stacked + ([5, 6] if a["history"] else [])
    if None in kernel_outs or len(set(kernel_outs)) != len(kernel_outs):
        return None
    return kernel_outs, product.inputs[1]


def _backward_inputs(node):
    """For a `Scan` `node` that is an LSTM step's gradient loop (`LSTMGatesGrad`, then its dz
    times rᵀ, the incoming dh maybe summed with a sequence dy first), the body inputs read as
    (saved activations, c history, rᵀ, dy or None); None for any other Scan."""
    a, body = node.attrs, node.attrs["body"]
    ops = _computed(body)
    names = [n.op for n in ops]
    if a["n_carry"] != 2 or a["history"] or names not in (["LSTMGatesGrad", "MatMul"],
                                                          ["Add", "LSTMGatesGrad", "MatMul"]):
        return None
    dh, dc = body.inputs[:2]
    sequences = body.inputs[2:2 + a["n_seq"]]
    invariants = body.inputs[2 + a["n_seq"]:]
    *added, grad, product = ops
    dy = None
    if added:
        pair = added[0].inputs
        others = [v for v in pair if v is not dh]
        if len(others) != 1 or others[0] not in sequences or \
                grad.inputs[0] is not added[0].outputs[0]:
            return None
        dy = others[0]
    elif grad.inputs[0] is not dh:
        return None
    saved, c_prev = grad.inputs[2:]
    if grad.inputs[1] is not dc or saved not in sequences or c_prev not in sequences or \
            product.inputs[0] is not grad.outputs[0] or product.inputs[1] not in invariants or \
            product.inputs[1].ndim != 2:
        return None
    if list(body.outputs[:2]) != [product.outputs[0], grad.outputs[1]] or \
            any(v is not grad.outputs[0] for v in body.outputs[2:]) or len(body.outputs) > 3:
        return None
    return saved, c_prev, product.inputs[1], dy


def emit_sequence(ctx, node, ins, outs) -> bool:
    """Emit the `Scan` `node` as `kgraph.LSTMSequence` or `kgraph.LSTMSequenceGrad` where the
    graph is `native`, the loop is float32 and its step is an LSTM step or that step's
    gradient (module docstring); False (nothing emitted) otherwise."""
    body = node.attrs["body"]
    if not ctx.native or any(v.dtype != "float32" for v in body.inputs):
        return False
    reverse = int(bool(node.attrs["reverse"]))
    name_of = dict(zip(body.inputs, ins))
    forward = _forward_outputs(node)
    if forward is not None:
        kernel_outs, r = forward
        names = [""] * 7
        for k, name in zip(kernel_outs, outs):
            names[k] = name
        while not names[-1]:
            names.pop()
        h, c, x = body.inputs[:3]
        ctx.node("kgraph.LSTMSequence", [name_of[v] for v in (x, r, h, c)], names,
                 reverse=reverse)
        return True
    read = _backward_inputs(node)
    if read is None:
        return False
    saved, c_prev, r_t, dy = read
    dz = outs[2] if len(outs) > 2 else ctx.fresh("lstm_dz")
    ctx.node("kgraph.LSTMSequenceGrad", [name_of[saved], name_of[c_prev], name_of[r_t], ins[0],
                                         ins[1]] + ([name_of[dy]] if dy is not None else []),
             [outs[0], outs[1], dz], reverse=reverse)
    return True


def lstm_gates(a, b, c):
    """(h, c') of an LSTM step with default activations from its products `a`, `b` (see the
    module docstring)."""
    h, c_new, _ = apply("LSTMGates", a, b, c)
    return h, c_new
