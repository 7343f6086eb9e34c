"""Graph -> ONNX: a ModelProto (`to_onnx`), or its serialized bytes without importing the
`onnx` package (`to_onnx_bytes`, what onnxruntime sessions are made from; compiler/onnx/wire.py).

One pinned opset and an explicit `ir_version` (onnx 1.23 writes IR 14 by default, which
onnxruntime 1.30+ refuses). Only ops that both onnxruntime and TVM's Relax ONNX frontend import
are emitted (no SoftmaxCrossEntropyLoss or OneHot; see DESIGN.md), except `Scan`, which the TVM
targets unroll before emission (compiler/passes/unroll_scans.py), and, in a graph emitted
`native` for this process's onnxruntime, the "kgraph" domain's operators (runtime/native_ops.py).
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from kgraph.compiler.onnx import wire
from kgraph.ir.graph import Graph, tracing
from kgraph.ops.registry import get_op

ONNX_OPSET = 18
IR_VERSION = 9
PRODUCER = "kgraph"

_DTYPES = wire.DTYPES  # kgraph dtype name -> TensorProto.DataType


class EmitContext:
    """What an op's emission callable sees: fresh names, constants and node creation. Nodes
    and initializers are kept as plain data, made into protos or bytes at the end. With
    `native`, an op may emit its "kgraph" domain operator (op type "kgraph.Op") instead of its
    standard-ONNX expansion; `domains` collects the domains used."""

    def __init__(self, graph_name, native=False):
        self.nodes, self.initializers = [], []  # (op_type, inputs, outputs, attrs), (name, array)
        self.native, self.domains = native, set()
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
        domain = wire.split_domain(op_type)[0]
        if domain:
            self.domains.add(domain)
        if op_type == "Cast" and isinstance(attrs.get("to"), str):
            attrs["to"] = _DTYPES[attrs["to"]]
        self.nodes.append((op_type, list(inputs), list(outputs), attrs))
        return outputs[0]

    def expand(self, build, node, ins, outs):
        """Emit `node` as what `build(*inputs, **attrs)` makes of it in kgraph ops: an op that
        stays one node through the passes (so they can move it as a whole) and runs as a
        composition of other ops."""
        scratch = Graph(f"{node.op}_expanded")
        args = [scratch.placeholder(f"in_{i}", v.shape, v.dtype)
                for i, v in enumerate(node.inputs)]
        with tracing(scratch):
            results = build(*args, **node.attrs)
        results = results if isinstance(results, (list, tuple)) else [results]
        _emit_nodes(self, scratch, dict(zip(args, ins)), list(zip(outs, results)))


class Subgraph:
    """A loop body as plain data (nodes, inputs, outputs), an attribute of its loop node."""

    def __init__(self, name, nodes, inputs, outputs):
        self.name, self.nodes, self.inputs, self.outputs = name, nodes, inputs, outputs

    def to_bytes(self) -> bytes:
        return wire.GraphBytes(wire.graph(_node_bytes(self.nodes), self.name, [],
                                          [wire.value_info(*i) for i in self.inputs],
                                          [wire.value_info(*o) for o in self.outputs]))

    def to_proto(self):
        from onnx import helper

        return helper.make_graph(_node_protos(self.nodes), self.name, _infos(self.inputs),
                                 _infos(self.outputs))


def _node_bytes(nodes):
    return [wire.node(op, ins, outs, {k: v.to_bytes() if isinstance(v, Subgraph) else v
                                      for k, v in attrs.items()})
            for op, ins, outs, attrs in nodes]


def _node_protos(nodes):
    from onnx import helper

    return [helper.make_node(wire.split_domain(op)[1], ins, outs,
                             domain=wire.split_domain(op)[0] or None, **{
        k: v.to_proto() if isinstance(v, Subgraph) else v for k, v in attrs.items()})
        for op, ins, outs, attrs in nodes]


def _infos(infos):
    from onnx import helper

    return [helper.make_tensor_value_info(n, _DTYPES[d], dims) for n, d, dims in infos]


class Emitted:
    """An emitted graph as plain data: nodes, initializers, and the inputs' and outputs'
    (name, dtype, dims) with symbolic dims as strings."""

    def __init__(self, name, nodes, initializers, inputs, outputs, domains=(), aliases=None):
        self.name, self.nodes, self.initializers = name, nodes, initializers
        self.inputs, self.outputs, self.domains = inputs, outputs, frozenset(domains)
        # {output: input} that may be written in place (see _updates_in_place)
        self.aliases = dict(aliases or {})

    def op_types(self):
        return [n[0] for n in self.nodes]

    def to_bytes(self) -> bytes:
        try:
            return self.direct_bytes()
        except wire.Unsupported:  # a value the direct writer does not know: the onnx package
            return self.to_proto().SerializeToString()

    def direct_bytes(self) -> bytes:
        """The model's bytes from compiler/onnx/wire.py; raises `wire.Unsupported`."""
        return wire.model(_node_bytes(self.nodes), self.name,
                          [wire.tensor(a, name) for name, a in self.initializers],
                          [wire.value_info(*i) for i in self.inputs],
                          [wire.value_info(*o) for o in self.outputs],
                          ONNX_OPSET, IR_VERSION, PRODUCER, self.domains)

    def to_proto(self):
        from onnx import helper, numpy_helper

        inits = [numpy_helper.from_array(a, name) for name, a in self.initializers]
        g = helper.make_graph(_node_protos(self.nodes), self.name, _infos(self.inputs),
                              _infos(self.outputs), inits)
        opsets = [helper.make_opsetid("", ONNX_OPSET)]
        opsets += [helper.make_opsetid(d, 1) for d in sorted(self.domains)]
        return helper.make_model(g, opset_imports=opsets, producer_name=PRODUCER,
                                 ir_version=IR_VERSION)


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


def emit(graph: Graph, native: bool = False) -> Emitted:
    """Emit `graph` (its outputs, then its variable updates as `<path>:new`); `native`: for
    this process's onnxruntime with kgraph's operators registered (runtime/native_ops.py)."""
    ctx = EmitContext(graph.name, native)
    out_pairs = list(zip(graph.output_names, graph.outputs))
    out_pairs += [(update_name(var, graph), v) for var, v in graph.updates.items()]
    names, inputs = {}, []
    for v in graph.inputs:
        name = v.node.attrs["name"]
        names[v] = name
        inputs.append(_value_info(name, v.type, lambda i, n=name: "batch" if i == 0 else f"{n}_d{i}"))
    _emit_nodes(ctx, graph, names, out_pairs)
    aliases = {}
    if native:
        outputs = {name for name, _ in out_pairs}
        _fuse_native(ctx.nodes, outputs)
        shapes = {name: v.shape for v, name in names.items()}
        _pool_in_convolutions(ctx.nodes, outputs, shapes)
        _biases_in_sequences(ctx.nodes, outputs, shapes)
        _row_sums_in_gradients(ctx.nodes, shapes, dict(ctx.initializers))
        types = {name: v.type for v, name in names.items()}
        types.update((name, v.type) for name, v in out_pairs)
        aliases = _updates_in_place(ctx.nodes, {i[0] for i in inputs}, outputs, types)
    out_infos = [_value_info(name, v.type, lambda i, n=name: f"{n}_d{i}") for name, v in out_pairs]
    return Emitted(graph.name, ctx.nodes, ctx.initializers, inputs, out_infos, ctx.domains,
                   aliases)


def _readers(nodes, counts):
    """How many node inputs read each name, loop bodies included (they read outer names)."""
    for _, ins, _, attrs in nodes:
        counts.update(ins)
        for value in attrs.values():
            if isinstance(value, Subgraph):
                _readers(value.nodes, counts)
    return counts


def _reader_lists(nodes):
    """The indices of the (top-level) nodes that read each name."""
    readers = {}
    for j, (_, ins, _, _) in enumerate(nodes):
        for name in set(ins):
            readers.setdefault(name, []).append(j)
    return readers


_TO_ONNX_KERNEL, _TO_KERAS_KERNEL = [3, 2, 0, 1], [2, 3, 1, 0]  # (kh, kw, in, out) <-> ONNX's


def _fuse_native(nodes, outputs):
    """Peepholes for kgraph's convolution operators, which onnxruntime's own fusions do not
    know: a Relu that alone reads a kgraph.Conv2D joins it (relu=1); the operators read a
    kernel in Keras' layout (kh, kw, in, out) instead of its Transpose to ONNX's, and a
    Conv2DKernelGrad that only a Transpose back to Keras' layout reads writes that layout
    itself (kernel_layout=1); the Transposes nothing reads any more are dropped. `outputs`:
    the graph's output names, which stay as they are."""
    producer = {out: i for i, (_, _, outs, _) in enumerate(nodes) for out in outs}
    reader = {name: i for i, (_, ins, _, _) in enumerate(nodes) for name in ins}  # top level
    readers = _readers(nodes, Counter())  # loop bodies included
    dropped, layout = set(), dict(kernel_layout=1)

    def only_reader(i, op, perm=None):
        """The node that alone reads nodes[i]'s output, if it is an `op` (with `perm`) of this
        graph (not of a loop body that reads it by name)."""
        out = nodes[i][2][0]
        j = reader.get(out)
        if readers[out] != 1 or out in outputs or j is None:
            return None
        op_j, _, _, attrs = nodes[j]
        return j if op_j == op and (perm is None or list(attrs["perm"]) == perm) else None

    for i, (op, ins, outs, attrs) in enumerate(nodes):
        if op in ("kgraph.Conv2D", "kgraph.ConvTranspose2D"):
            source = producer.get(ins[1])
            if source is not None and nodes[source][0] == "Transpose" and \
                    list(nodes[source][3]["perm"]) == _TO_ONNX_KERNEL:
                ins = [ins[0], nodes[source][1][0]] + ins[2:]
                attrs = dict(attrs, **layout)
        if op == "kgraph.Conv2D" and (j := only_reader(i, "Relu")) is not None:
            outs, attrs = nodes[j][2], dict(attrs, relu=1)
            dropped.add(j)
        if op == "kgraph.Conv2DKernelGrad" and \
                (j := only_reader(i, "Transpose", _TO_KERAS_KERNEL)) is not None:
            outs, attrs = nodes[j][2], dict(attrs, **layout)
            dropped.add(j)
        nodes[i] = (op, ins, outs, attrs)
    readers = _readers(nodes, Counter())
    dropped |= {i for i, (op, _, outs, _) in enumerate(nodes) if op == "Transpose" and
                readers[outs[0]] == 0 and outs[0] not in outputs}
    nodes[:] = [node for i, node in enumerate(nodes) if i not in dropped]


def _pool_in_convolutions(nodes, outputs, shapes):
    """A kgraph.Conv2D whose output only a 2x2 MaxPool at stride 2 and that pooling's
    kgraph.MaxPoolGrads read pools it itself (attr pool=2: the pooled output and each window's
    first-maximum offset, uint8) and the MaxPoolGrads become kgraph.MaxUnpools of those
    offsets: the full-size output is neither written nor read back (runtime/native/conv.cc),
    and the gradient is the same bit for bit. `shapes`: of the graph's values by name (the
    unpooled size must be known)."""
    readers = _reader_lists(nodes)
    counts = _readers(nodes, Counter())  # loop bodies included
    dropped = set()
    for i, (op, ins, outs, attrs) in enumerate(nodes):
        z = outs[0]
        shape = shapes.get(z)
        if op != "kgraph.Conv2D" or z in outputs or shape is None or None in shape[2:]:
            continue
        js = readers.get(z, [])
        pools = [j for j in js if _pools_2x2(nodes[j], "MaxPool")]
        grads = [j for j in js if _pools_2x2(nodes[j], "kgraph.MaxPoolGrad") and
                 nodes[j][1][1] == z and not nodes[j][3]["channels_last"]]
        if len(pools) != 1 or len(js) != counts[z] or len(pools) + len(grads) != len(js):
            continue
        index = f"{z}_pool_index"
        nodes[i] = (op, ins, [nodes[pools[0]][2][0], index], dict(attrs, pool=2))
        dropped.add(pools[0])
        for j in grads:
            pooled, unpooled = nodes[j][1][0], nodes[j][2][0]
            if _read_pooled(nodes, readers.get(unpooled, []), counts[unpooled], unpooled,
                            pooled, index, list(shape[2:])) and unpooled not in outputs:
                dropped.add(j)
            else:
                nodes[j] = ("kgraph.MaxUnpool", [pooled, index], [unpooled],
                            dict(shape=list(shape[2:])))
    nodes[:] = [node for i, node in enumerate(nodes) if i not in dropped]


def _read_pooled(nodes, js, count, unpooled, pooled, index, size):
    """Make the kgraph.Conv2DKernelGrads and kgraph.ConvTranspose2Ds among nodes[js] that
    read `unpooled` (a max pooling's gradient, MaxUnpool(pooled, index) of that `size`) read
    `pooled` and `index` instead (runtime/native/conv.cc unpools as it reads); whether those
    were all of its `count` readers."""
    taken = 0
    for j in js:
        op, ins, outs, attrs = nodes[j]
        if op == "kgraph.Conv2DKernelGrad" and ins[1] == unpooled and ins.count(unpooled) == 1:
            nodes[j] = (op, [ins[0], pooled, index], outs, dict(attrs, pool=2))
        elif op == "kgraph.ConvTranspose2D" and ins[0] == unpooled and \
                ins.count(unpooled) == 1:
            bias = ins[2] if len(ins) > 2 else ""
            nodes[j] = (op, [pooled, ins[1], bias, index], outs, dict(attrs, pool_shape=size))
        else:
            continue
        taken += 1
    return taken == count


def _pools_2x2(node, op):
    """Whether an emitted node is `op` over 2x2 windows at stride 2, unpadded, one output."""
    op_, _, outs, attrs = node
    return (op_ == op and len(outs) == 1 and list(attrs.get("kernel_shape", ())) == [2, 2]
            and list(attrs.get("strides", ())) == [2, 2] and not any(attrs.get("pads", ()))
            and not attrs.get("ceil_mode") and list(attrs.get("dilations", [1, 1])) == [1, 1]
            and attrs.get("auto_pad", "NOTSET") == "NOTSET" and not attrs.get("storage_order"))


def _biases_in_sequences(nodes, outputs, shapes):
    """A kgraph.LSTMSequence (kgraph/ops/lstm_gates.py) whose input products only it reads
    and which are `Add(products, bias)` of a (4u,) bias takes the products and the bias (its
    optional input: added to its recurrent product, in cache, instead of a pass over the (T,
    n, 4u) products). `outputs`: the graph's output names (left as they are); `shapes`: of
    the graph's values by name."""
    producer = {out: i for i, (_, _, outs, _) in enumerate(nodes) for out in outs}
    counts = _readers(nodes, Counter())  # loop bodies included
    dropped = set()
    for i, (op, ins, outs, attrs) in enumerate(nodes):
        if op != "kgraph.LSTMSequence" or len(ins) != 4:
            continue
        x = ins[0]
        j = producer.get(x)
        if j is None or nodes[j][0] != "Add" or counts[x] != 1 or x in outputs:
            continue
        width = (shapes.get(x) or (None,))[-1]
        pair = nodes[j][1]
        for bias, products in (pair, pair[::-1]):
            if width is not None and shapes.get(bias) == (width,) and \
                    len(shapes.get(products) or ()) == 3 and shapes[products][-1] == width:
                nodes[i] = (op, [products] + ins[1:] + [bias], outs, attrs)
                dropped.add(j)
                break
    nodes[:] = [node for i, node in enumerate(nodes) if i not in dropped]


# kgraph operators whose output k may come summed over every axis but the last as their next
# (optional) output, made as they write it (runtime/native): a ReLU's gradient (the bias
# gradient of the layer before it) and an LSTM loop's dz (its bias gradient)
_ROW_SUMMED_OUTPUT = {"kgraph.ReluGrad": 0, "kgraph.LSTMSequenceGrad": 2}


def _row_sums_in_gradients(nodes, shapes, consts):
    """The `ReduceSum` over every axis but the last (keepdims) that reads output k of a
    `_ROW_SUMMED_OUTPUT` operator becomes that operator's output k + 1: onnxruntime's
    ReduceSum over the leading axis took ~14 µs for a 128x256 ReLU gradient the ReluGrad
    itself makes in ~1, and an LSTM's over (T, n, 4u) a pass the loop makes in cache.
    `shapes`: of the graph's values by name; `consts`: initializer arrays by name."""
    readers = _reader_lists(nodes)
    dropped = set()
    for i, (op, ins, outs, attrs) in enumerate(nodes):
        k = _ROW_SUMMED_OUTPUT.get(op)
        rank = len(shapes.get(outs[k]) or ()) if k is not None and len(outs) == k + 1 else 0
        if rank < 2:
            continue
        j = _row_sum_reader(nodes, readers, consts, outs[k], list(range(rank - 1)))
        if j is not None:
            nodes[i] = (op, ins, outs + nodes[j][2], attrs)
            dropped.add(j)
    nodes[:] = [node for i, node in enumerate(nodes) if i not in dropped]


_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Max", "Min"})


def _updates_in_place(nodes, inputs, outputs, types=None):
    """The outputs of `kgraph.AdamUpdate` nodes that may be written into their inputs' buffers,
    as {output: input}: an Adam step then reads and writes each slot (and weight) once, in
    cache, instead of writing fresh buffers (3x faster alone for an MLP's 269k parameters).
    runtime/program.py binds them so when the variable's buffer is its own to give.

    A slot (m, v) qualifies when that node alone reads it. A weight is read by other nodes too
    (the forward pass, the input gradients): those that the update does not already depend on
    must run before it, so the node takes a gradient that does (its sixth input, `after`,
    which the kernel does not read; the first layer's kernel gradient, in a stack of layers).
    Where no gradient follows them all, the weight gets a fresh buffer. `inputs`, `outputs`:
    the graph's input and output names. Names read inside a loop body never qualify.

    So do the outputs of elementwise nodes (`_ELEMENTWISE`) whose input of the same type
    (`types`: name -> Type) they alone read: a metric's or the loss tracker's running sums,
    the optimizer's step counter. Each element is read before it is written, and nothing
    else reads the old value. Their buffers then stay bound from step to step."""
    types = types or {}
    readers, counts = _reader_lists(nodes), _readers(nodes, Counter())

    def own(name, j):  # read by node j alone, at the top level, a graph input only
        return (name in inputs and name not in outputs and counts[name] == 1
                and readers.get(name) == [j])

    aliases = {}
    for j, (op, ins, outs, _) in enumerate(nodes):
        if op in _ELEMENTWISE and len(outs) == 1 and outs[0] in outputs and \
                types.get(outs[0]) is not None:
            name = next((n for n in ins if own(n, j) and types.get(n) == types[outs[0]]), None)
            if name is not None:
                aliases[outs[0]] = name
    updates = [j for j, node in enumerate(nodes) if node[0] == "kgraph.AdamUpdate"]
    if not updates:
        return aliases
    producer = {out: j for j, (_, _, outs, _) in enumerate(nodes) for out in outs}
    before = []  # each node's ancestors, as a bit set of node indices (nodes are in order)
    for _, ins, _, _ in nodes:
        bits = 0
        for name in ins:
            p = producer.get(name)
            if p is not None:
                bits |= before[p] | (1 << p)
        before.append(bits)

    for j in updates:
        op, ins, outs, attrs = nodes[j]
        for k in (1, 2):  # m', v'
            if outs[k] in outputs and own(ins[k + 1], j):
                aliases[outs[k]] = ins[k + 1]
        var = ins[0]
        if outs[0] not in outputs or var not in inputs or var in outputs or \
                counts[var] != len(readers.get(var, [])):
            continue
        pending = 0
        for r in readers[var]:
            if r != j and not (before[j] >> r) & 1:
                pending |= 1 << r
        if pending:
            after = next((nodes[u][1][1] for u in updates if u != j and
                          (p := producer.get(nodes[u][1][1])) is not None and
                          pending & ~(before[p] | (1 << p)) == 0 and not (before[p] >> j) & 1),
                         None)
            if after is None:
                continue
            nodes[j] = (op, ins[:5] + [after], outs, attrs)
        aliases[outs[0]] = var
    return aliases


def _row_sum_reader(nodes, readers, consts, name, axes):
    """The index of a node that is `ReduceSum(name)` over exactly `axes` (a constant) with
    keepdims, one output, or None."""
    for j in readers.get(name, []):
        op, ins, outs, attrs = nodes[j]
        given = consts.get(ins[1]) if op == "ReduceSum" and len(ins) == 2 else None
        if given is not None and ins[0] == name and len(outs) == 1 and \
                sorted(np.ravel(given).tolist()) == axes and attrs.get("keepdims", 1) == 1:
            return j
    return None


def _emit_nodes(ctx, graph, names, out_pairs):
    """Emit `graph`'s nodes into `ctx` (`names`: its inputs' names, filled in for every
    value), writing each of `out_pairs`' values under its (name, value) name."""
    # A node result that is a graph output is written under the output's name directly:
    # an Identity would copy the tensor (e.g. every updated parameter) on every run.
    direct = {}
    for name, v in out_pairs:
        if v.node.op not in ("Input", "Constant") and v not in direct:
            direct[v] = name
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
    for name, v in out_pairs:
        if direct.get(v) != name:
            ctx.node("Identity", [names[v]], [name])


def emit_subgraph(ctx, body: Graph, invariant_names, history=False, n_carry=0,
                  leading=()) -> Subgraph:
    """A loop body (kgraph/ops/recurrence.py) as a `Subgraph` emitted into `ctx`'s names and
    constants: its leading inputs become the subgraph's inputs, its trailing ones (the loop
    invariants) read the enclosing graph's `invariant_names`; with `history`, the first
    `n_carry` inputs are also output (the carries each step started from). `leading`: (name
    hint, TensorType) of inputs the loop construct passes before those and the body does not
    read (ONNX Loop's iteration number and condition)."""
    head = body.inputs[:len(body.inputs) - len(invariant_names)]
    names = {v: ctx.fresh("body_in") for v in head}
    names.update(zip(body.inputs[len(head):], invariant_names))
    outer_nodes, ctx.nodes = ctx.nodes, []
    out_pairs = [(ctx.fresh("body_out"), v) for v in body.outputs]
    out_pairs += [(ctx.fresh("body_hist"), v) for v in head[:n_carry]] if history else []
    try:
        _emit_nodes(ctx, body, names, out_pairs)
        nodes = ctx.nodes
    finally:
        ctx.nodes = outer_nodes
    unnamed = lambda i: None  # noqa: E731 - a body's dims are the loop's business
    return Subgraph(ctx.fresh(body.name), nodes,
                    [_value_info(ctx.fresh(hint), t, unnamed) for hint, t in leading] +
                    [_value_info(names[v], v.type, unnamed) for v in head],
                    [_value_info(name, v.type, unnamed) for name, v in out_pairs])


def update_name(var, graph) -> str:
    """Output name carrying the new value of `var`."""
    placeholder = graph.variables.get(var)
    base = placeholder.node.attrs["name"] if placeholder is not None else var.path
    return f"{base}:new"
