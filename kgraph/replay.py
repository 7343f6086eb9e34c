"""Replaying a built-in layer's or loss's recorded call inside an eager GradientTape.

An eager tape loop runs the user's Python every step, and every op it calls is recorded
again: for the Keras guide's loop that is most of the step's Python cost. A call of a built-in
layer, model or loss records the same nodes every time it gets inputs of the same types in the
same mode (the op sequence is a function of the layer's configuration, the inputs' shapes and
dtypes, the training flag and the dtype policy; the variables read are the layer's own). So
the first such call is recorded as usual and kept as a template, and later calls with the same
key append the template's nodes to the tape's graph directly: the same ops, attributes and
types in the same order, variables read through `Graph.read_variable` where the recording
read them. The graph is the one recording would have made, so its structural key (and the
compiled program) are the same.

A call is kept only when its recording had no effect outside its own nodes: no variable
assigned (BatchNormalization in training), no random op (which reads the graph's rng key),
no loss added (`add_loss`, activity regularizers), no device placement, no mask on an output,
and every node reads only the call's inputs, the variables, arrays the call's ops captured, or
nodes of the call. Calls that did are recorded every time. The call's array arguments are
captured before it (alike every time); arrays its ops capture (ranges, shapes: constants of
the structure) are captured again from the same objects. User-defined classes (and `Lambda`)
are always recorded, since their Python may do anything; a container (a Sequential or
functional model) is replayed only when every layer in it is built-in. A layer's key holds
every layer's attribute version (`Layer.__setattr__` counts sets), so setting `trainable` (a
frozen BatchNormalization computes differently) or any other attribute records anew.
"""
from __future__ import annotations

import itertools
import threading

import numpy as np

from kgraph.ir.graph import Value

_MAX_TEMPLATES = 16  # per layer or loss: one per input signature and mode in practice
_INELIGIBLE = object()  # a key whose recording had effects beyond its nodes
_recording = threading.local()  # depth of calls being recorded as templates in this thread

_IN, _NODE, _VAR = 0, 1, 2  # where a template node input comes from
_READ, _CAPTURE = 0, 1  # template nodes that are a variable's or a captured array's input


class _Template:
    __slots__ = ("nodes", "outputs", "structure", "serial")
    _serials = itertools.count()  # never reused, unlike ids: a trail names templates by it

    def __init__(self, nodes, outputs, structure):
        self.serial = next(self._serials)
        # [(op, attrs, input refs, output types)], or (_READ, variable, ...) for a variable's
        # placeholder, (_CAPTURE, array, ...) for an array captured by an op (a constant of
        # the structure: a range, a shape)
        self.nodes = nodes
        self.outputs = outputs  # [(node position, output index)] per output leaf
        self.structure = structure  # the outputs' nesting (packed by tree.pack_like)

    def splice(self, graph, inputs):
        made = []
        append, read, capture = graph.append_node, graph.read_variable, graph.capture
        for op, attrs, refs, types in self.nodes:
            if op is _READ:
                made.append((read(attrs),))
            elif op is _CAPTURE:
                made.append((capture(attrs),))
            else:
                ins = [inputs[a] if kind == _IN else made[a][b] if kind == _NODE else read(a)
                       for kind, a, b in refs]
                made.append(append(op, ins, attrs, types))  # shared: never changed
        return [made[i][j] for i, j in self.outputs]


def call(owner, graph, key, inputs, record):
    """`record()`'s outputs, appended to `graph` from `owner`'s template for `key` when it has
    one; else `record()` is run (its nodes kept as the template when they qualify).

    `inputs` are the Values the call reads (its tensor arguments, already in `graph`); `key`
    must determine the recorded ops given those inputs' types, which it should include."""
    from kgraph.keras import tree

    templates = owner.__dict__.setdefault("_replay_templates", {})
    template = templates.get(key)
    if isinstance(template, _Template):
        start = len(graph.nodes)
        outputs = template.splice(graph, inputs)
        _note(graph, start, (template.serial, tuple((v.node.id, v.index) for v in inputs)))
        return tree.pack_like(template.structure, outputs)
    if template is _INELIGIBLE or is_recording():
        return record()
    before = _effects(graph)
    start = len(graph.nodes)
    _recording.depth = 1
    try:
        outputs = record()
    finally:
        _recording.depth = 0
    if len(templates) >= _MAX_TEMPLATES:
        templates.clear()
    made = None
    if _effects(graph) == before:
        made = _template(graph, start, inputs, outputs)
    templates[key] = made if made is not None else _INELIGIBLE
    return outputs


def is_recording() -> bool:
    """Whether a template is being recorded in this thread (its inner calls record as usual)."""
    return bool(getattr(_recording, "depth", 0))


def capture_arrays(graph, structure):
    """`structure` with its numpy arrays captured as `graph`'s fed inputs, as an op would
    capture them on first use (so a call's array arguments become template inputs)."""
    from kgraph.keras import tree

    def capture(x):
        if not (isinstance(x, np.ndarray) and x.ndim):
            return x
        start = len(graph.nodes)
        value = graph.capture(x)
        _note(graph, start, ("capture", value.type.shape, value.type.dtype,
                             len(graph.nodes) - start))  # 0: the array was captured already
        return value

    return tree.map_structure(capture, structure)


def trail_of(graph):
    """What the graph holds when every node in it came from replayed calls and the arrays
    captured for them: the sequence of (template, input positions) and captured inputs'
    types, which determines the graph's structure (so a cache keyed on it needs no walk over
    the nodes, `kgraph.tape`); else None."""
    trail = graph.__dict__.get("_replay_trail")
    if trail is None or trail[0] != len(graph.nodes):
        return None
    return tuple(trail[1])


def _note(graph, start, entry):
    """Count the nodes `entry` appended from `start` into the graph's trail (a trail stays
    valid only while the nodes it counts are all the graph's nodes)."""
    trail = graph.__dict__.get("_replay_trail")
    if trail is None:
        if start != 0:
            return  # nodes from elsewhere came first: no trail for this graph
        trail = graph.__dict__["_replay_trail"] = [0, []]
    if trail[0] != start:
        return  # nodes appended in between (by recording): the trail is broken for good
    trail[0] = len(graph.nodes)
    trail[1].append(entry)


def signature(x):
    """Key part for call arguments: their nesting (container types, dict keys), Values by
    type, other leaves by value (never `repr`)."""
    if isinstance(x, Value):
        return x.type.shape, x.type.dtype
    if isinstance(x, (list, tuple)):
        return type(x).__name__, tuple(signature(v) for v in x)
    if isinstance(x, dict):
        return "dict", tuple((k, signature(x[k])) for k in sorted(x))
    from kgraph.compiler.graph_key import static_key

    return static_key(x)


def enabled() -> bool:
    """Whether calls are replayed: `KGRAPH_TAPE_REPLAY=0` records every call every step (a
    way out should a layer's recording ever depend on something its key does not hold)."""
    import os

    return os.environ.get("KGRAPH_TAPE_REPLAY", "1") != "0"


def layer_call(layer, graph, args, kwargs, record):
    """A layer's call inside an eager tape recording, replayed when it can be (see above):
    `record(args, kwargs)` records it."""
    from kgraph.device import current_device

    if not enabled():
        return record(args, kwargs)
    layers = _replayable_layers(layer)
    if layers is None or is_recording() or current_device() is not None:
        return record(args, kwargs)  # (a device scope labels the nodes a call records)
    from kgraph import config
    from kgraph.keras.layers.base import in_training_mode
    from kgraph.variables import get_autocast_scope

    args, kwargs = capture_arrays(graph, (args, kwargs))
    scope = get_autocast_scope()
    key = (signature((args, kwargs)), in_training_mode(), config.floatx(),
           scope.dtype if scope is not None else None, layers)
    return call(layer, graph, key, values_of((args, kwargs)), lambda: record(args, kwargs))


def loss_call(loss, graph, args, record):
    """A built-in loss's call inside an eager tape recording, replayed when it can be."""
    if not enabled() or is_recording() or not _builtin(loss) or not _builtin(
            getattr(loss, "fn", None)):
        return record(*args)
    from kgraph import config
    from kgraph.compiler.graph_key import static_key

    args = capture_arrays(graph, args)
    key = (signature(args), config.floatx(), static_key(loss.get_config()))
    return call(loss, graph, key, values_of(args), lambda: record(*args))


def _builtin(obj) -> bool:
    """Whether `obj` (a function, or an instance of a class) is kgraph's own; None is."""
    module = getattr(obj, "__module__", None) if obj is not None else "kgraph."
    return isinstance(module, str) and module.startswith("kgraph.")


def _replayable_layers(layer):
    """The identities and attribute versions (bumped by every attribute set: `trainable`,
    a swapped activation) of `layer` and its sublayers, depth first, when all of them are
    kgraph's own code (`_own_code`), else None."""
    ids = []
    stack = [layer]
    while stack:
        sub = stack.pop()
        version = sub.__dict__.get("_version", 0)
        checked = sub.__dict__.get("_replay_checked")
        if checked is None or checked[0] != version:
            checked = sub.__dict__["_replay_checked"] = (version, _own_code(sub))
        if not checked[1]:
            return None
        ids.append((id(sub), version))
        stack.extend(sub._layers)
    return tuple(ids)


def _own_code(layer) -> bool:
    """Whether calling `layer` runs only kgraph's code: a kgraph class other than `Lambda`,
    holding no function of the user's (an activation, a `Lambda`'s function)."""
    from kgraph.keras.layers.core import Lambda

    if isinstance(layer, Lambda) or not _builtin(layer):
        return False
    for value in layer.__dict__.values():
        if callable(value) and not isinstance(value, type) and hasattr(value, "__code__") \
                and not _builtin(value):
            return False  # a plain function (or lambda) from the user's module
    return True


def values_of(structure) -> list:
    from kgraph.keras import tree

    return [v for v in tree.flatten(structure) if isinstance(v, Value)]


def _effects(graph) -> tuple:
    """What a recording may change besides appending nodes and capturing arrays."""
    losses = getattr(graph, "layer_losses", None) or {}
    return (tuple(graph.updates.items()), getattr(graph, "rng_key", None),
            len(getattr(graph, "placement", None) or ()), sum(len(v) for v in losses.values()))


def _template(graph, start, inputs, outputs):
    from kgraph.compiler.graph_key import KeyedAttrs
    from kgraph.keras import tree

    where = {v: (_IN, i, 0) for i, v in enumerate(inputs)}
    variable_of = {v: var for var, v in graph.variables.items()}
    variable_of.update({v: var for var, v in graph.updates.items()})
    captured = {v: array for array, v in (graph.captures or {}).values()}
    nodes = []
    for position, node in enumerate(graph.nodes[start:]):
        if node.op == "Input":
            value = node.outputs[0]
            if value in variable_of:
                nodes.append((_READ, variable_of[value], (), ()))
            elif value in captured:
                nodes.append((_CAPTURE, captured[value], (), ()))
            else:
                return None  # another placeholder (the rng key)
        else:
            refs = []
            for v in node.inputs:
                ref = where.get(v)
                if ref is None:
                    var = variable_of.get(v)
                    if var is None:
                        return None  # reads a value from outside the call
                    ref = (_VAR, var, 0)
                refs.append(ref)
            nodes.append((node.op, KeyedAttrs(node.op, node.attrs), tuple(refs),
                          [v.type for v in node.outputs]))
        for v in node.outputs:
            where[v] = (_NODE, position, v.index)
    leaves = tree.flatten(outputs)
    refs = []
    for v in leaves:
        ref = where.get(v) if isinstance(v, Value) else None
        if ref is None or v._keras_mask is not None:
            return None  # not a tensor of the call, or carries a mask
        if ref[0] != _NODE:
            return None  # an input or a variable returned as is: keep recording
        refs.append(ref[1:])
    structure = tree.pack_like(outputs, [None] * len(leaves))
    return _Template(nodes, refs, structure)
