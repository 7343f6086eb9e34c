"""Move Transposes down through elementwise ops, reductions and pooling; cancel the pairs
that meet.

Channels-last convolution layers lower to Transpose -> Conv -> Transpose (ONNX Conv is
channels first). Between two layers, the transpose back to channels last meets the next
layer's transpose to channels first once it has moved past the activation, bias,
normalisation or pooling in between. The rewrites, applied until none is left:

- merge: Transpose(Transpose(x)) is one Transpose, or x itself when the perms are inverse;
  an identity Transpose is dropped, one that moves only unit axes becomes a Reshape;
- sink: op(Transpose(x), others) becomes Transpose'(op'(x, others')) when
  * `op` is elementwise, nothing broadcasts the transposed operand up, and every other
    operand can take the untransposed layout for free: a Constant (transposed here), a
    Transpose by the same perm (its input is used), or an operand whose non-unit dims keep
    their order (reshaped, or used as is: scalars, bias vectors). Otherwise the op is left
    alone, so the pass never transposes a data-sized operand;
  * `op` is a reduction (its axes are renumbered; the kept axes are transposed after), a
    `Count` (axes renumbered, nothing after) or a `Shape` (read from x, dims reordered);
  * `op` is a pooling op or a max-pooling gradient with a `channels_last` attribute, the
    Transpose converts between the two layouts and the op's other operands are available
    in the other layout for free (as above): the op switches layout.
  A Transpose with several users is copied below each of them only when that leaves fewer
  Transposes in the whole graph (tried on a copy first); otherwise only single-user
  Transposes move.

The rewritten graph computes the same values: bit for bit, except that a reduction may now
sum in another order (float rounding).
"""
from __future__ import annotations

import numpy as np

from kgraph.ir.graph import Graph, Value
from kgraph.ops.pool import has_native_kernel, tiles_cheaply
from kgraph.ops.registry import get_op

ELEMENTWISE = frozenset({
    "Neg", "Exp", "Log", "Sqrt", "Tanh", "Sigmoid", "Abs", "Sin", "Cos", "Sign", "Floor",
    "Round", "Relu", "Erf", "Reciprocal", "Not", "IsNaN", "Cast", "StopGradient",
    "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Mod", "BitwiseXor", "BitwiseAnd",
    "ShiftRight", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "And", "Or",
    "Where"})
REDUCTIONS = frozenset({"ReduceSum", "ReduceMax", "ReduceMin"})
# ops with a `channels_last` attribute whose two forms are the same computation
LAYOUT_AWARE = frozenset({"MaxPool", "AveragePool", "MaxPoolGrad"})
MAX_SWEEPS = 1000  # a guard only: every sweep moves transposes down, so it ends much sooner


def cancel_transposes(graph: Graph) -> Graph:
    transposes = [node.outputs[0] for node in graph.nodes if node.op == "Transpose"]
    if not transposes:
        return graph
    users = graph.users()
    if not any(len(users.get(t, ())) > 1 and any(_sinks_into(n) for n in users[t])
               for t in transposes):  # copying below users: moot (a recurrence's weight
        return _Rewriter(graph).run()  # transposes feed only MatMuls: no trial copies)
    trial, _ = graph.clone()
    with_copies = _transposes(_Rewriter(trial, fan_out=True).run())
    without = _transposes(_Rewriter(graph.clone()[0]).run())
    return _Rewriter(graph, fan_out=with_copies < without).run()


def _sinks_into(node) -> bool:
    """Whether a Transpose may move below `node` (a rule exists for its op)."""
    return node.op in ELEMENTWISE or node.op in RULES


def _transposes(graph):
    """Transposes the graph will run: its own, and the two that a channels-last pooling op
    emits around its (channels-first) ONNX kernel."""
    return sum(node.op == "Transpose" or 2 * (node.op in LAYOUT_AWARE
                                               and node.attrs.get("channels_last") is True)
               for node in graph.nodes)


def _is_identity(perm):
    return tuple(perm) == tuple(range(len(perm)))


def _keeps_order(shape, perm):
    """Whether transposing `shape` by `perm` leaves the non-unit axes in order."""
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


def _channels_last_perm(rank):
    return (0,) + tuple(range(2, rank)) + (1,)


def _channels_first_perm(rank):
    return (0, rank - 1) + tuple(range(1, rank - 1))


class _Rewriter:
    def __init__(self, graph, fan_out=False):
        self.graph, self.fan_out = graph, fan_out
        self.users: dict[Value, list] = {}
        for node in graph.nodes:
            for v in node.inputs:
                self.users.setdefault(v, []).append(node)
        self.dead: set[int] = set()
        self.position = {node.id: i for i, node in enumerate(graph.nodes)}
        self.results = set(graph.outputs) | set(graph.updates.values())

    def run(self) -> Graph:
        for _ in range(MAX_SWEEPS):
            if not self.sweep():
                break
        self.graph.nodes = self.ordered_nodes()
        return self.graph

    # -- the rewrites ---------------------------------------------------------------------
    def sweep(self) -> bool:
        changed = False
        for node in list(self.graph.nodes):
            if node.id not in self.dead and node.op == "Transpose":
                changed = self._merge(node) or self._sink(node) or changed
        return changed

    def _merge(self, t) -> bool:
        perm, source, composed = tuple(t.attrs["perm"]), t.inputs[0], False
        if source.node.op == "Transpose":
            inner = tuple(source.node.attrs["perm"])
            perm, source, composed = tuple(inner[p] for p in perm), source.node.inputs[0], True
        shape = tuple(t.outputs[0].shape)
        if _is_identity(perm):
            pass
        elif _keeps_order(source.shape, perm) and shape.count(None) <= 1:
            # only unit axes move: the data keeps its order and a Reshape needs no copy
            source = self._add("Reshape", [source], {"shape": shape}, t)
        elif composed:
            source = self._add("Transpose", [source], {"perm": perm}, t)
        else:
            return False
        self._replace(t.outputs[0], source)
        self._kill(t)
        return True

    def _sink(self, t) -> bool:
        out = t.outputs[0]
        consumers = list({n.id: n for n in self.users.get(out, [])}.values())
        if not consumers:
            return False
        if not self.fan_out and (len(consumers) > 1 or out in self.results):
            # a pooling op still takes the untransposed input: in its other layout it runs
            # with one Transpose after it instead of the two its ONNX kernel would need
            changed = False
            for op in consumers:
                if op.op in LAYOUT_AWARE and op.id not in self.dead:
                    changed = _sink_layout_aware(self, t, op) or changed
            return changed
        changed = False
        for op in sorted(consumers, key=lambda n: (self.position[n.id], n.id)):
            rule = RULES.get(op.op) or (_sink_elementwise if op.op in ELEMENTWISE else None)
            if rule is not None and op.id not in self.dead and t.id not in self.dead:
                changed = rule(self, t, op) or changed
        return changed

    def _rebuild(self, op, operands, attrs, perm):
        """Replace `op` by Transpose(op'(operands)) (no Transpose for an identity perm)."""
        moved = self._add(op.op, operands, attrs, op)
        if not _is_identity(perm):
            moved = self._add("Transpose", [moved], {"perm": perm}, op)
        self._replace(op.outputs[0], moved)
        self._kill(op)

    def _relayout(self, v, perm, inverse, anchor):
        """A maker of `v` in the untransposed layout (broadcasting as before), or None."""
        rank = len(perm)
        if len(v.shape) > rank:
            return None
        shape = (1,) * (rank - len(v.shape)) + tuple(v.shape)
        target = tuple(shape[i] for i in inverse)
        if v.node.op == "Constant":
            value = np.transpose(np.reshape(v.node.attrs["value"], shape), inverse)
            return lambda: self._add_constant(value, anchor)
        if v.node.op == "Transpose" and tuple(v.node.attrs["perm"]) == perm:
            return lambda: v.node.inputs[0]
        kept_axes = [i for i in inverse if shape[i] != 1]
        if kept_axes != sorted(kept_axes):
            return None  # a real transpose of v would be needed: leave the node alone
        if target == shape:
            return lambda: v
        if target.count(None) > 1:
            return None
        return lambda: self._add("Reshape", [v], {"shape": target}, anchor)

    # -- bookkeeping ----------------------------------------------------------------------
    def _add(self, op, inputs, attrs, anchor) -> Value:
        """A new node placed where `anchor` was."""
        types = get_op(op).infer([v.type for v in inputs], **attrs)
        (value,) = self.graph.add_node(op, inputs, attrs, types)
        self.position[value.node.id] = self.position[anchor.id]
        for v in inputs:
            self.users.setdefault(v, []).append(value.node)
        return value

    def _add_constant(self, array, anchor) -> Value:
        value = self.graph.constant(array)
        self.position[value.node.id] = self.position[anchor.id]
        return value

    def _replace(self, old, new):
        for node in self.users.pop(old, []):
            node.inputs = [new if v is old else v for v in node.inputs]
            self.users.setdefault(new, []).append(node)
        g = self.graph
        g.outputs = [new if v is old else v for v in g.outputs]
        g.updates = {var: new if v is old else v for var, v in g.updates.items()}
        if old in self.results:
            self.results.discard(old)
            self.results.add(new)

    def _kill(self, node):
        """Drop `node`, and the producers of its inputs that it leaves without users."""
        stack = [node]
        while stack:
            node = stack.pop()
            self.dead.add(node.id)
            for v in set(node.inputs):
                self.users[v] = [n for n in self.users.get(v, []) if n is not node]
                producer = v.node
                if producer.op != "Input" and producer.id not in self.dead and not any(
                        self.users.get(o) for o in producer.outputs) and not any(
                        o in self.results for o in producer.outputs):
                    stack.append(producer)

    def ordered_nodes(self):
        """Live nodes, each new one where the node it replaced was, inputs always first."""
        live = sorted((n for n in self.graph.nodes if n.id not in self.dead),
                      key=lambda n: (self.position[n.id], n.id))
        placed, ordered = set(), []
        for root in live:
            stack = [(root, False)]
            while stack:
                node, ready = stack.pop()
                if node.id in placed:
                    continue
                if ready:
                    placed.add(node.id)
                    ordered.append(node)
                    continue
                stack.append((node, True))
                stack.extend((v.node, False) for v in reversed(node.inputs)
                             if v.node.id not in placed)
        return ordered


# -- how a Transpose moves below each kind of op ----------------------------------------------
def _sink_elementwise(rw, t, op) -> bool:
    out, perm = t.outputs[0], tuple(t.attrs["perm"])
    if len(op.outputs) != 1 or tuple(op.outputs[0].shape) != tuple(out.shape):
        return False  # the op broadcasts the transposed operand up: moving T would cost more
    inverse = tuple(int(i) for i in np.argsort(perm))
    makers = [None if v is out else rw._relayout(v, perm, inverse, op) for v in op.inputs]
    if any(m is None and v is not out for m, v in zip(makers, op.inputs)):
        return False
    operands = [t.inputs[0] if v is out else make() for v, make in zip(op.inputs, makers)]
    rw._rebuild(op, operands, dict(op.attrs), perm)
    return True


def _sink_reduction(rw, t, op) -> bool:
    """Reduce(T(x), axes) = T'(Reduce(x, perm[axes])), T' ordering the kept axes."""
    perm, axes = tuple(t.attrs["perm"]), tuple(op.attrs["axes"])
    if op.attrs["keepdims"]:
        after = perm
    else:
        kept = [perm[j] for j in range(len(perm)) if j not in axes]
        after = tuple(sorted(kept).index(k) for k in kept)
    attrs = {**op.attrs, "axes": tuple(sorted(perm[a] for a in axes))}
    rw._rebuild(op, [t.inputs[0]], attrs, after)
    return True


def _sink_count(rw, t, op) -> bool:
    perm = tuple(t.attrs["perm"])
    axes = tuple(sorted(perm[a] for a in op.attrs["axes"]))
    rw._rebuild(op, [t.inputs[0]], {**op.attrs, "axes": axes}, ())
    return True


def _sink_layout_aware(rw, t, op) -> bool:
    """Pooling (or its gradient) of T(x) in one layout is T of it on x in the other layout;
    every other data operand must be available in that layout for free (`_relayout`)."""
    out, rank, perm = t.outputs[0], len(t.outputs[0].shape), tuple(t.attrs["perm"])
    channels_last = op.attrs.get("channels_last")
    wanted = _channels_last_perm(rank) if channels_last else _channels_first_perm(rank)
    if perm != wanted or not isinstance(channels_last, bool):
        return False
    if (op.op == "MaxPoolGrad" and channels_last and not _native_pool_grad(op)
            and not tiles_cheaply(t.inputs[0].shape, op.attrs["kernel"], op.attrs["strides"],
                                  op.attrs["pads"])):
        return False  # channels first, it would broadcast over an innermost window axis
    inverse = tuple(int(i) for i in np.argsort(perm))
    makers = [None if v is out else rw._relayout(v, perm, inverse, op) for v in op.inputs]
    if op.op == "MaxPoolGrad" and op.inputs[2] is out and makers[0] is None:
        # the pooled gradient is a fraction of the input's size: transposing it is cheaper
        # than the input's transposes (and its window score's, around the inner MaxPool)
        g = op.inputs[0]
        makers[0] = lambda: rw._add("Transpose", [g], {"perm": inverse}, op)
    if any(m is None and v is not out for m, v in zip(makers, op.inputs)):
        return False
    operands = [t.inputs[0] if v is out else make() for v, make in zip(op.inputs, makers)]
    rw._rebuild(op, operands, {**op.attrs, "channels_last": not channels_last}, perm)
    return True


def _native_pool_grad(op) -> bool:
    """Whether kgraph's MaxPoolGrad operator will run `op` (this process's onnxruntime has
    kgraph's operators, and kgraph/ops/pool.py emits it for the node): one pass over the
    input in either layout, whatever the window tiling."""
    from kgraph.runtime import native_ops

    return has_native_kernel(op) and native_ops.available()


def _sink_shape(rw, t, op) -> bool:
    """Shape(T(x)): the dims of x in perm order, known ones as constants and unknown ones
    sliced from Shape(x) (a concat that TVM's importer keeps a shape expression)."""
    x, perm = t.inputs[0], tuple(t.attrs["perm"])
    source, pieces = None, []
    for axis in perm:
        if x.shape[axis] is not None:
            pieces.append(rw._add_constant(np.asarray([x.shape[axis]], np.int64), op))
            continue
        if source is None:  # a Value has no truth value: `or` would raise
            source = rw._add("Shape", [x], {}, op)
        pieces.append(rw._add("Slice", [source], {"starts": (axis,), "ends": (axis + 1,),
                                                  "axes": (0,)}, op))
    shape = pieces[0] if len(pieces) == 1 else rw._add("Concat", pieces, {"axis": 0}, op)
    rw._replace(op.outputs[0], shape)
    rw._kill(op)
    return True


RULES = {**{name: _sink_reduction for name in REDUCTIONS}, "Count": _sink_count,
         "Shape": _sink_shape,
         **{name: _sink_layout_aware for name in LAYOUT_AWARE}}
