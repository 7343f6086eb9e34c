"""One executor call per step of an eager GradientTape loop.

The Keras guide's loop hands the arrays `tape.gradient` returns, unchanged, to
`optimizer.apply_gradients`: run apart, that is two executor calls a step (gradients, then the
update), plus the gradients' trip through numpy. Once a tape program's gradients have been seen
going straight into an optimizer for the very variables they were taken against, the tape
compiles a second program (right then, so later steps compile nothing) that computes the
gradients AND that optimizer's update. Later steps run it instead: the new weights and slots
it makes are held aside, and `apply_gradients` commits them (no executor call) when it
receives the very gradient arrays it returned, for the same variables, and every buffer the
update read is still the variable's value. Otherwise they are dropped and the update runs on
its own, as before; after two such misses a program stops speculating. Buffers are never
written in place, so a dropped update leaves nothing behind, and the gradient arrays are
read-only (tensors are immutable in TensorFlow too), so "the very arrays" means "the values".
"""
from __future__ import annotations

import threading
import weakref

from kgraph.compiler.build import count

_MISSES_ALLOWED = 2
# Optimizers that learned a tape program; each keeps its followers in `_tape_followers`
# {(tape plan key, ids of the sources): _Follower}, so they go with it.
_OPTIMIZERS = weakref.WeakSet()
_last = threading.local()  # what the last eager `tape.gradient` of this thread returned


class _Follower:
    """The optimizer seen applying a tape program's gradients, and the fused program."""

    def __init__(self, optimizer, program, deferred, feed_names, reads, immediate,
                 recorded_updates=()):
        self.optimizer = weakref.ref(optimizer)
        self.program = program
        self.deferred = deferred  # variables whose new buffers wait for apply_gradients
        self.feed_names = feed_names
        self.reads = reads  # the recording's variables, in its order
        self.immediate = immediate  # the recording's updates it applies (BatchNormalization's)
        self.recorded_updates = list(recorded_updates)  # and those the recording holds
        self.misses = 0

    def fits(self, graph) -> bool:
        """Whether the fused program, bound once, runs for this recording (same variables,
        same feeds: a key of structure and source ids leaves other variables open)."""
        return (list(graph.captures) == self.feed_names and _identical(self.reads, graph.variables)
                and _identical(self.recorded_updates, graph.updates))


class _Pending:
    def __init__(self, follower, grads, sources, updates, fed):
        self.follower, self.grads, self.sources = follower, grads, sources
        self.updates, self.fed = updates, fed


def follower(key, sources):
    """The fused program's follower for this tape program and sources, or None."""
    wanted = (key, _ids(sources))
    for optimizer in list(_OPTIMIZERS):
        entry = optimizer.__dict__.get("_tape_followers", {}).get(wanted)
        if entry is not None:
            return entry if entry.program is not None else None
    return None


def note_gradients(graph, key, target, wrt, unconnected, applied, sources, grads):
    """Remember what this thread's last `tape.gradient` returned, for `commit_or_learn`."""
    _last.info = (weakref.ref(graph), key, target, wrt, unconnected, applied, tuple(sources),
                  tuple(grads))


def run(entry, graph, pinned):
    """Run the fused program for `graph`; returns its results (loss, gradients). The update
    waits on the optimizer until `apply_gradients` commits or drops it."""
    optimizer, program = entry.optimizer(), entry.program
    stale = getattr(optimizer, "_pending_update", None)
    if stale is not None:  # the last speculation was never applied
        _miss(stale.follower)
    results, updates = program(*[graph.captures[name][0] for name in entry.feed_names],
                               pinned=pinned, defer=entry.deferred)
    upload = program.compiled.upload  # the buffers the update read: pinned, else current
    fed = {var: pinned[var] if var in pinned else var.device_buffer(upload)
           for _, var in program.variables if var not in entry.immediate}
    optimizer._pending_update = _Pending(entry, None, None, updates, fed)
    return results, optimizer._pending_update


def commit_or_learn(optimizer, grads, variables) -> bool:
    """Called by an eager `apply_gradients`: True when the update was already computed by the
    tape's fused program and is now committed; otherwise learn the pattern for next time."""
    pending = getattr(optimizer, "_pending_update", None)
    if pending is not None:
        optimizer._pending_update = None
        if _matches(pending, grads, variables):
            upload = pending.follower.program.compiled.upload
            for var, buffer in pending.updates.items():
                var.set_device_buffer(buffer, upload)
            count("fused_tape_steps")
            return True
        _miss(pending.follower)
    info = getattr(_last, "info", None)
    if info is not None:
        _last.info = None
        graph_ref, key, target, wrt, unconnected, applied, sources, returned = info
        graph = graph_ref()
        followers = optimizer.__dict__.setdefault("_tape_followers", {})
        if (graph is not None and _identical(returned, grads)
                and _identical(sources, variables) and (key, _ids(sources)) not in followers):
            followers[(key, _ids(sources))] = _fuse(optimizer, graph, key, target, wrt,
                                                    unconnected, applied, list(sources))
            _OPTIMIZERS.add(optimizer)
    return False


def _fuse(optimizer, graph, key, target, wrt, unconnected, applied, sources):
    """Compile tape program + update into one program bound to these variables (a follower
    without a program when that cannot be done: it never speculates)."""
    from kgraph.compiler.build import resolve_target
    from kgraph.compiler.program import make_plan
    from kgraph.ir.graph import tracing
    from kgraph.tape import _subgraph, differentiated_copy

    copy, values = differentiated_copy(graph, target, wrt, unconnected, key)
    nothing = _Follower(optimizer, None, (), (), (), ())
    if any(v is None for v in values):
        return nothing
    sub = _subgraph(copy, values, applied)
    immediate = list(sub.updates)
    if any(var in sub.updates for var in sources):
        return nothing
    with tracing(sub):
        optimizer.apply(list(sub.outputs[1:]), sources)
    deferred = frozenset(var for var in sub.updates if var not in immediate)
    plan = make_plan(sub, resolve_target(None), prologue=False)
    feed_names = list(graph.captures)
    program = plan.bind(sub, feed_names)
    return _Follower(optimizer, program, deferred, feed_names, list(graph.variables), immediate,
                     list(graph.updates))


def _matches(pending, grads, variables) -> bool:
    if not (_identical(pending.grads, grads) and _identical(pending.sources, variables)):
        return False
    return all(var._device is buffer for var, buffer in pending.fed.items())


def _miss(entry):
    entry.misses += 1
    if entry.misses >= _MISSES_ALLOWED:
        entry.program = None  # stays in the table: the pattern is not learned again


def _identical(a, b) -> bool:
    """The same objects in the same order (`a` None: nothing to match)."""
    return a is not None and len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _ids(sources) -> tuple:
    return tuple(id(s) for s in sources)
