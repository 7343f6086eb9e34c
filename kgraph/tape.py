"""`GradientTape` for custom training loops and custom `train_step`s.

Inside a training step that is being traced (a custom `train_step` run by `fit`), the tape
differentiates the step's graph from the node where it was entered (earlier ops, such as
another tape's optimizer update, are constants, as in TensorFlow): `tape.gradient` appends
backward ops and
`optimizer.apply_gradients` appends the update, so the whole step still compiles to ONE graph.

Used eagerly (a hand-written loop over numpy batches), the tape records the forward
computation into a graph whose inputs are the arrays it saw; `tape.gradient` compiles forward
+ backward into one program (cached by structure, so every batch reuses it) and returns numpy
gradients. Values computed under the tape can be read with `.numpy()` or `float()`.
"""
from __future__ import annotations

import numpy as np

from kgraph.compiler.graph_key import value_refs
from kgraph.ir.graph import Graph, Value, current_graph, tracing
from kgraph.ops.registry import to_value
from kgraph.variables import Variable


class GradientTape:
    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = persistent
        self._graph = None
        self._tracing = None
        self._used = False
        self._watched = []
        self._recorded = []  # watched eager tensors whose numpy arithmetic is recorded
        self._start = 0  # first node of the outer graph recorded by this tape

    def __enter__(self):
        outer = current_graph()
        if outer is not None:  # inside a traced step: differentiate what runs from here on
            self._graph, self._start = outer, len(outer.nodes)
            return self
        self._graph = Graph("gradient_tape")
        self._graph.captures = {}
        self._tracing = tracing(self._graph)
        self._tracing.__enter__()
        return self

    def __exit__(self, *exc):
        if self._tracing is not None:
            self._tracing.__exit__(*exc)
            self._tracing = None
        for tensor in self._recorded:
            entry = _WATCHED.get(id(tensor))
            if entry is not None and entry[0] is tensor:
                entry[1] -= 1
                if not entry[1]:
                    del _WATCHED[id(tensor)]
        self._recorded = []

    def watch(self, tensor):
        """Record what is computed from `tensor` (a constant, an input batch), so that
        `gradient` can differentiate with respect to it: ops of kgraph and Keras record it
        anyway; numpy arithmetic on a watched eager tensor (`x * x`) is recorded too, while
        the tape records (`record_ufunc`)."""
        from kgraph.keras import tree

        graph = self._graph
        for t in tree.flatten(tensor):
            self._watched.append(t)
            if (isinstance(t, np.ndarray) and graph is not None and graph.captures is not None
                    and current_graph() is graph):  # an eager recording, still recording
                entry = _WATCHED.setdefault(id(t), [t, 0])
                if entry[0] is not t:  # a dead tensor's id, reused
                    entry[:] = [t, 0]
                entry[1] += 1
                self._recorded.append(t)
                # two lifetimes: numpy arithmetic is routed (_WATCHED) only while a tape
                # watching t records; the recording captures t as an input (not a constant)
                # for as long as it lives: `gradient(y, x)` after the block reads x again
                graph.__dict__.setdefault("watched", set()).add(id(t))


    def gradient(self, target, sources, output_gradients=None, unconnected_gradients="none"):
        """d(target)/d(sources); `sources` may be a list or a single variable.

        `target` may be a list or nested structure of tensors: their gradients add up, as
        TensorFlow's (`output_gradients` then holds one weight per target). A non-scalar
        target is summed (or weighted by `output_gradients` first).
        Used eagerly, the program computing target and gradients is looked up by the
        structure of the recorded forward graph before any autodiff: a loop's second batch
        differentiates, optimises and compiles nothing. A tape nested in another eager tape
        that is still recording appends its backward ops to that recording and returns its
        tensors, so the outer tape differentiates them (second order, as TensorFlow)."""
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only compute gradients once; "
                               "use GradientTape(persistent=True) to call gradient() again.")
        if unconnected_gradients not in ("none", "zero"):
            raise ValueError(f"unconnected_gradients must be 'none' or 'zero'. Received: "
                             f"unconnected_gradients={unconnected_gradients!r}")
        if isinstance(sources, dict) or (isinstance(sources, (list, tuple)) and any(
                isinstance(s, (list, tuple, dict)) for s in sources)):
            # nested sources (a list of per-layer variable lists in the keras.io ShiftViT
            # example) give gradients in the same structure, as TensorFlow's tape
            from kgraph.keras import tree

            flat = self.gradient(target, tree.flatten(sources), output_gradients,
                                 unconnected_gradients)
            return tree.pack_like(sources, flat)
        self._used = True
        single = not isinstance(sources, (list, tuple))
        sources = [sources] if single else list(sources)
        graph = self._graph
        target, wrt = _symbolic(graph, target, sources, output_gradients)
        # inside a traced step, or nested in an eager tape still recording into `graph`
        if self._tracing is None and (graph.captures is None or current_graph() is graph):
            grads = _differentiate(graph, target, wrt, unconnected_gradients,
                                   start=self._start)
            return grads[0] if single else grads
        from kgraph import tape_step

        key, applied = _gradient_key(graph, target, wrt, unconnected_gradients)
        fused = tape_step.follower(key, sources)
        if fused is not None and fused.fits(graph):  # gradients and the update in one call
            out, pending = _run_fused(graph, fused)
        else:
            pending = None
            out = _run(graph, key, applied,
                       lambda: differentiated_copy(graph, target, wrt, unconnected_gradients,
                                                   key))
        loss, grads = out[0], out[1:]
        for g in grads:
            if g is not None:
                g.flags.writeable = False  # a tensor: `apply_gradients` may already hold it
        if pending is not None:
            pending.grads, pending.sources = tuple(grads), tuple(sources)
        tape_step.note_gradients(graph, key, target, wrt, unconnected_gradients, applied,
                                 sources, grads)
        if target.shape == ():
            graph.__dict__.setdefault("_evaluated", {})[target] = loss
        return grads[0] if single else grads


def _symbolic(graph, target, sources, output_gradients):
    """The target (weighted by `output_gradients`; the sum of the weighted sums of a list or
    nested structure of targets) and the sources as values of `graph`."""
    from kgraph import ops
    from kgraph.keras import tree

    def value(x):
        return graph.read_variable(x) if isinstance(x, Variable) else to_value(x)

    with tracing(graph):
        if not isinstance(target, (list, tuple, dict)):
            target = value(target)
            if output_gradients is not None:
                target = target * value(output_gradients)
        else:
            targets = tree.flatten(target)
            weights = ([None] * len(targets) if output_gradients is None
                       else tree.flatten(output_gradients))
            if not targets or len(weights) != len(targets):
                raise ValueError(
                    f"GradientTape.gradient needs a target, and one output gradient per "
                    f"target when output_gradients is given. Received: {len(targets)} "
                    f"targets and output_gradients={output_gradients!r}")
            total = None
            for t, w in zip(targets, weights):
                t = value(t) if w is None else value(t) * value(w)
                t = t if t.shape == () else ops.sum(t)
                total = t if total is None else total + t
            target = total
        wrt = [value(s) for s in sources]
    return target, wrt


def _differentiate(graph, target, wrt, unconnected, with_loss=False, start=0):
    """Append the backward ops to `graph` and return the gradients (None where unconnected,
    unless `unconnected` is "zero"), preceded by the scalar loss when `with_loss`."""
    from kgraph import ops
    from kgraph.compiler.autodiff import gradients
    from kgraph.compiler.build import count

    count("autodiffs")
    # Arrays that gradient rules make (shapes, index ranges) are constants of the structure,
    # not captured inputs: a cached program must run without them on later batches.
    captures, graph.captures = graph.captures, None
    try:
        with tracing(graph):
            loss = target if target.shape == () else ops.sum(target)
            grads = gradients(graph, loss, wrt, start)
            if unconnected == "zero":
                grads = [g if g is not None else ops.multiply(w, 0.0) for g, w in zip(grads, wrt)]
    finally:
        graph.captures = captures
    return [loss] + grads if with_loss else grads


def differentiated_copy(graph, target, wrt, unconnected, key) -> tuple:
    """A copy of an eager recording with its backward ops appended, and its values [loss,
    gradients...]: the recording itself stays as recorded, so values read from it later
    are keyed (and compiled) alike on every step. Made once per recording and `key` (the
    tape program's; the fused step reuses it)."""
    made = graph.__dict__.setdefault("_differentiated", {})
    if key not in made:
        copy, vmap = graph.clone()
        made[key] = copy, _differentiate(copy, vmap[target], [vmap[w] for w in wrt],
                                         unconnected, True)
    return made[key]


def evaluate(graph: Graph, values: list) -> list:
    """Run `graph` for `values` (compiled and cached by structure), feeding its captured
    arrays and its variables; variable updates recorded in the graph are applied once."""
    cache = graph.__dict__.setdefault("_evaluated", {})
    missing = [v for v in values if v not in cache]
    if missing:
        outs = _run(graph, *_key(graph, ("values", value_refs(graph, missing))),
                    lambda: (graph, missing))
        cache.update(zip(missing, outs))
    return [cache[v] for v in values]


_TRAIL_KEYS: dict = {}  # replay trail (+ target, sources, mode) -> the program's key
_MAX_TRAIL_KEYS = 256


def _gradient_key(graph: Graph, target, wrt, unconnected) -> tuple:
    """`_key` of the gradient program; when every node of the recording was replayed
    (kgraph/replay.py), looked up by the replay trail, which fixes the graph's structure,
    instead of walking the graph's nodes."""
    from kgraph import replay
    from kgraph.compiler.build import resolve_target

    trail = replay.trail_of(graph)
    short = None
    if trail is not None:
        applied = _applied(graph)
        short = (trail, tuple((v.node.id, v.index) for v in [target] + wrt), unconnected,
                 applied, resolve_target(None))
        key = _TRAIL_KEYS.get(short)
        if key is not None:
            return key, applied
    key, applied = _key(graph, ("gradient", value_refs(graph, [target] + wrt), unconnected))
    if short is not None:
        if len(_TRAIL_KEYS) >= _MAX_TRAIL_KEYS:
            _TRAIL_KEYS.clear()
        _TRAIL_KEYS[short] = key
    return key, applied


def _key(graph: Graph, what: tuple) -> tuple:
    """The compile-cache key of the program computing `what` over `graph` as it is NOW, and
    whether the graph's variable updates were applied by an earlier run."""
    from kgraph.compiler.build import resolve_target
    from kgraph.compiler.program import plan_key

    applied = _applied(graph)
    return plan_key(graph, resolve_target(None), what, applied), applied


def _applied(graph: Graph) -> bool:
    """Whether an earlier run over `graph` applied its variable updates."""
    return bool(graph.__dict__.get("_updates_applied"))


def _run(graph: Graph, key: tuple, applied: bool, make_values) -> list:
    """Run the program computing the values `make_values()` returns (with the graph holding
    them: `graph` or a copy of it; None entries allowed) and return their arrays. The program
    is cached under `key` (`_key`), so `make_values` (autodiff) runs on a cache miss only."""
    from kgraph.compiler.build import lookup, remember, resolve_target
    from kgraph.compiler.program import make_plan

    plan = lookup(key)
    if plan is None:
        holder, values = make_values()
        # no prologue: the user's optimizer changes the weights between every two steps
        plan = remember(key, make_plan(_subgraph(holder, values, applied), resolve_target(None),
                                       prologue=False))
        plan.missing = [i for i, v in enumerate(values) if v is None]
    graph._updates_applied = True
    feeds = list(graph.captures)
    program = plan.bind(graph, feeds, reuse=True)
    pinned = _pin(graph, program)
    outs = iter(program(*[graph.captures[name][0] for name in feeds], pinned=pinned))
    return [None if i in plan.missing else _eager(program.to_numpy(next(outs)))
            for i in range(len(plan.missing) + len(program.result_names))]


def _run_fused(graph: Graph, fused) -> tuple:
    """Run a tape program fused with its optimizer's update (kgraph/tape_step.py): the
    arrays of the loss and the gradients, and the update waiting for `apply_gradients`."""
    from kgraph import tape_step

    graph._updates_applied = True
    program = fused.program
    results, pending = tape_step.run(fused, graph, _pin(graph, program))
    return [_eager(program.to_numpy(r)) for r in results], pending


def _pin(graph: Graph, program) -> dict:
    """The weights every run over this recording sees: those of its first run, as an eager
    forward pass would (a value read after `apply_gradients` is not recomputed with the new
    ones)."""
    pinned = graph.__dict__.setdefault("_pinned", {})
    recorded = graph.variables  # what the recording read; an optimizer's slots are not pinned
    new = [var for _, var in program.variables if var in recorded and var not in pinned]
    if new:  # the first run reading them
        upload = program.compiled.upload
        for var in new:
            pinned[var] = var.device_buffer(upload)
        nbytes = program.__dict__.get("_pinned_nbytes")
        if nbytes is None:  # the same every step: counted once per program
            nbytes = program._pinned_nbytes = sum(
                int(np.prod(var.shape)) * np.dtype(var.dtype).itemsize
                for _, var in program.variables if var in recorded)
        _PINS.note(graph, nbytes)
    return pinned


class _PinBudget:
    """Bounds the weight buffers that discarded recordings still pin.

    A recording's values, nodes and graph reference each other, so a discarded tape is freed
    by Python's cyclic collector, not when the loop moves on, and with it the buffers of the
    weights it pinned: an eager loop over a model with 32 MB of weights grew to 2.9 GB in 60
    steps before a full collection came. When the recordings not yet collected pin more than
    the budget (`KGRAPH_TAPE_PIN_BUDGET` bytes, default 256 MiB, at least 4 recordings' worth)
    beyond what was still alive after the last collection, the young generations are collected,
    then all of them if that was not enough. Values still held are untouched."""

    def __init__(self):
        import threading
        import weakref

        self.live = weakref.WeakKeyDictionary()  # recording graph -> bytes it pins
        self.floor = 0  # bytes pinned by recordings that survived the last collection
        self._lock = threading.Lock()  # tapes record in several threads (fit's workers, users')

    def note(self, graph, nbytes):
        with self._lock:
            self._note(graph, nbytes)

    def _note(self, graph, nbytes):
        import gc
        import os

        # the survivors of the last collection that have died since no longer count (a stale
        # floor from an earlier, larger model's loop would stop collecting for good)
        self.floor = min(self.floor, self.total())
        self.live[graph] = nbytes
        budget = max(int(os.environ.get("KGRAPH_TAPE_PIN_BUDGET", 256 << 20)), 4 * nbytes)
        if self.total() <= self.floor + budget:
            return
        gc.collect(1)  # the young generations hold the recordings of the last few steps
        if self.total() > self.floor + budget:
            gc.collect()  # some outlived a collection: a full one, then what is left is alive
            self.floor = self.total()

    def total(self) -> int:
        return sum(self.live.values())  # a few entries: the recordings not yet collected


_PINS = _PinBudget()


def _subgraph(graph, values, updates_applied):
    """A copy of `graph` whose outputs are the non-None `values`; it applies the graph's
    variable updates unless an earlier evaluation did."""
    sub, vmap = graph.clone()
    sub.outputs = [vmap[v] for v in values if v is not None]
    sub.output_names = [f"value_{i}" for i in range(len(sub.outputs))]
    if updates_applied:
        sub.updates = {}
    return sub


def _eager(array):
    from kgraph.keras.layers.base import EagerTensor

    return np.asarray(array).view(EagerTensor)


class SymbolicValueError(ValueError):
    """numpy asked for the value of a tensor of a graph being compiled (`np.clip(t, 0, 255)`
    inside a traced call)."""


def _value_numpy(value: Value):
    if value.graph.captures is None:
        raise SymbolicValueError(f"{value!r} is symbolic: it belongs to a graph being compiled and has "
                         f"no value until that graph runs.")
    return evaluate(value.graph, [value])[0]


Value.numpy = _value_numpy
Value.__array__ = lambda self, dtype=None, copy=None: np.asarray(_value_numpy(self), dtype=dtype)
Value.__float__ = lambda self: float(_value_numpy(self))
Value.__int__ = lambda self: int(_value_numpy(self))


def _value_str(value: Value) -> str:
    """`print(t)` of a tensor recorded by an eager tape: its value, as an eager tensor prints
    (a tensor of a graph being compiled prints its description)."""
    if value.graph.captures is None:
        return repr(value)
    return str(_eager(_value_numpy(value)))


def _value_format(value: Value, spec: str) -> str:
    """`f"{loss:.4f}"` of a recorded tensor: its value formatted as numpy formats it."""
    if value.graph.captures is None:
        if spec:
            raise TypeError(f"unsupported format string passed to a symbolic tensor: {spec!r} "
                            f"({value!r} has no value until its graph runs)")
        return repr(value)
    array = np.asarray(_value_numpy(value))
    return format(array[()] if array.ndim == 0 else _eager(array), spec)


Value.__str__ = _value_str
Value.__format__ = _value_format


# eager tensors watched by recording tapes: id -> [tensor, number of tapes] (each tape holds
# its tensors alive in `_watched`)
_WATCHED: dict = {}

_UFUNCS = {np.add: "add", np.subtract: "subtract", np.multiply: "multiply",
           np.true_divide: "divide", np.power: "power", np.negative: "negative",
           np.exp: "exp", np.log: "log", np.sin: "sin", np.cos: "cos", np.tan: "tan",
           np.tanh: "tanh", np.sinh: "sinh", np.cosh: "cosh", np.arctan: "arctan",
           np.sqrt: "sqrt", np.square: "square", np.absolute: "abs", np.maximum: "maximum",
           np.minimum: "minimum", np.matmul: "matmul", np.log1p: "log1p", np.expm1: "expm1",
           np.reciprocal: "reciprocal", np.sign: "sign"}


def record_ufunc(ufunc, method, inputs, kwargs):
    """A numpy ufunc call on eager tensors as the kgraph op it is, recorded on the tape being
    recorded, when one of its operands is a tensor that tape watches; else NotImplemented."""
    if not _WATCHED or method != "__call__" or kwargs or ufunc not in _UFUNCS:
        return NotImplemented
    if not any(_WATCHED.get(id(x), (None,))[0] is x for x in inputs):
        return NotImplemented
    if current_graph() is None:
        return NotImplemented
    from kgraph.keras import ops

    return getattr(ops, _UFUNCS[ufunc])(*inputs)
