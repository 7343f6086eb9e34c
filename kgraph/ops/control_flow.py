"""`keras.ops` control flow: cond, switch, fori_loop, while_loop, scan, associative_scan, map,
vectorized_map.

Eagerly (arrays) they run as Python. While a graph is traced, `scan`, `map` and
`vectorized_map` are one `Scan` loop node (the function traced once; see `scan`), and so is a
`while_loop` whose condition is symbolic, given `maximum_iterations` (each step keeps the old
state where the condition is already false). The others unroll when the trip count is
static: a Python-int `fori_loop`, an `associative_scan` over a leading dim of known size, a
`while_loop` whose condition is a Python value. `cond`/`switch` on a symbolic
predicate evaluate every branch and select with `where`, so branches must be pure and
same-shaped. Anything else raises `StaticShapeRequiredError` saying what to pass. ONNX `If`/
`Loop` lowering (no unrolling, unknown trip counts) is future work.
"""
from __future__ import annotations

import builtins

import numpy as np

from kgraph.ops import elementwise as ew
from kgraph.ops.api_util import StaticShapeRequiredError, is_symbolic, shape_of


# -- tiny pytree: nested lists/tuples/dicts of leaves -------------------------------------------
def _flatten(tree):
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in _flatten(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _flatten(item)]
    return [tree]


def _unflatten(like, leaves):
    leaves = iter(leaves)

    def build(node):
        if isinstance(node, dict):
            return {k: build(node[k]) for k in sorted(node)}
        if isinstance(node, (list, tuple)):
            return type(node)(build(item) for item in node)
        return next(leaves)
    return build(like)


def _map(fn, *trees):
    flats = [_flatten(t) for t in trees]
    return _unflatten(trees[0], [fn(*leaves) for leaves in zip(*flats)])


def _select(pred, a, b):
    """`where(pred, a, b)` leaf by leaf, keeping the dtype of `a`."""
    def pick(x, y):
        if isinstance(x, bool) or (hasattr(x, "dtype") and ew.dtype_name(x.dtype) == "bool"):
            return ew.logical_or(ew.logical_and(pred, x), ew.logical_and(ew.logical_not(pred), y))
        return ew.where(pred, x, y)
    return _map(pick, a, b)


def _concrete_bool(pred):
    if is_symbolic(pred):
        return None
    return bool(np.asarray(pred))


# -- branches --------------------------------------------------------------------------------
def cond(pred, true_fn, false_fn):
    """`true_fn()` if `pred` else `false_fn()` (`keras.ops.cond`).

    A symbolic `pred` (a boolean scalar) runs both branches and selects their results with
    `where`; gradients flow to the chosen branch only."""
    known = _concrete_bool(pred)
    if known is not None:
        return true_fn() if known else false_fn()
    return _select(ew.cast(pred, "bool"), true_fn(), false_fn())


def switch(index, branches, *operands):
    """`branches[index](*operands)`, index clamped to the valid range (`keras.ops.switch`)."""
    if not is_symbolic(index):
        i = int(np.clip(np.asarray(index), 0, len(branches) - 1))
        return branches[i](*operands)
    index = ew.cast(index, "int64")
    out = branches[-1](*operands)
    for i in range(len(branches) - 2, -1, -1):
        out = _select(ew.less_equal(index, np.int64(i)), branches[i](*operands), out)
    return out


# -- loops -----------------------------------------------------------------------------------
def fori_loop(lower, upper, body_fun, init_val):
    """`for i in range(lower, upper): val = body_fun(i, val)` (`keras.ops.fori_loop`).

    While tracing, `lower` and `upper` must be Python ints: the loop is unrolled."""
    if is_symbolic(lower) or is_symbolic(upper):
        raise StaticShapeRequiredError(
            "fori_loop: the bounds are symbolic tensors while tracing; pass Python ints "
            "(the loop is unrolled), or use while_loop(..., maximum_iterations=N).")
    val = init_val
    for i in range(int(lower), int(upper)):
        val = body_fun(np.int32(i), val)
    return val


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    """Repeat `loop_vars = body(*loop_vars)` while `cond(*loop_vars)` (`keras.ops.while_loop`).

    A condition that is a Python/numpy value runs as a Python loop. A symbolic condition with
    `maximum_iterations` is a `Scan` of that many steps (unrolled where a loop cannot be),
    each step selecting the old state once the condition has turned false; without it, one
    `Loop` node whose number of steps is known only at run time (no gradient)."""
    single = not isinstance(loop_vars, (list, tuple))
    state = (loop_vars,) if single else tuple(loop_vars)

    def step(values):
        out = body(*values)
        return (out,) if single or not isinstance(out, (list, tuple)) else tuple(out)

    count = 0
    while maximum_iterations is None or count < maximum_iterations:
        going = cond(*state)
        known = _concrete_bool(going)
        if known is False:
            break
        if known is None:
            state = _unrolled_while(cond, step, state, maximum_iterations, count)
            break
        state, count = step(state), count + 1
    return state[0] if single else type(loop_vars)(state)


def _unrolled_while(cond, step, state, maximum_iterations, done):
    if maximum_iterations is None:
        return _open_while(cond, step, state)
    looped = _looped_while(cond, step, state, int(maximum_iterations) - done)
    if looped is not None:
        return looped
    alive = ew.cast(cond(*state), "bool")
    for _ in range(int(maximum_iterations) - done):
        state = _select(alive, step(state), state)
        alive = ew.logical_and(alive, ew.cast(cond(*state), "bool"))
    return state


def _graph_of(*trees):
    """The graph being traced, or else the one the first symbolic leaf of `trees` is in."""
    from kgraph.ir.graph import current_graph

    return current_graph() or next(leaf for tree in trees for leaf in _flatten(tree)
                                   if is_symbolic(leaf)).graph


def _open_while(cond, step, state):
    """`while_loop` with a symbolic condition and no bound: one `Loop` node
    (kgraph/ops/loop.py; no gradient)."""
    from kgraph.ir.graph import tracing
    from kgraph.ops.recurrence import ScanBodyError
    from kgraph.ops.registry import to_value
    from kgraph.ops.loop import while_loop as loop

    leaves = _flatten(state)
    with tracing(_graph_of(state)):
        carries = [to_value(leaf) for leaf in leaves]

        def body(values):
            new = _flatten(step(_unflatten(state, values)))
            return [ew.cast(to_value(v), c.dtype) for v, c in zip(new, carries)]

        try:
            finals = loop(lambda *values: cond(*_unflatten(state, list(values))), body,
                          carries)
        except ScanBodyError as e:
            raise StaticShapeRequiredError(
                f"while_loop: the condition is a symbolic tensor while tracing and the body "
                f"cannot be a loop ({e}); pass maximum_iterations=N (a Python int) to "
                f"unroll it.") from e
    return _unflatten(state, list(finals))


def _leading(xs, op, known=True):
    """The leading size the leaves of `xs` share (None if unknown and not `known`)."""
    leaves = _flatten(xs)
    sizes = {shape_of(leaf)[0] for leaf in leaves}
    if None in sizes and not known:
        sizes.discard(None)
        return sizes.pop() if len(sizes) == 1 else None
    if None in sizes:
        raise StaticShapeRequiredError(
            f"{op}: the leading dimension is unknown while tracing (the batch?) and kgraph "
            f"unrolls {op}; give it a fixed size, or apply the function to the whole tensor.")
    if len(sizes) != 1:
        raise ValueError(f"{op}: inputs differ in leading size. Received: sizes {sorted(sizes)}")
    return sizes.pop()


def _stack_outputs(outputs):
    from kgraph.ops.shape_api import stack

    return _map(lambda *leaves: stack(list(leaves), 0), *outputs)


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """`carry, y = f(carry, x)` over the leading axis of `xs`; returns `(carry, stacked ys)`
    (`keras.ops.scan`, jax semantics). The leading size must be known while tracing.

    While tracing, the loop is one `Scan` node (kgraph/ops/recurrence.py: `f` traced once)
    unless `unroll=True`, `f` draws random numbers or assigns variables, or its carry changes
    type; then (and eagerly) it runs step by step."""
    if xs is None and length is None:
        raise ValueError("scan: pass xs or length")
    if unroll is not True and _traced(init, xs) and (xs is not None or length):
        n = length if xs is None else _leading(xs, "scan", known=False)
        looped = _looped_scan(f, init, xs, n, reverse) if n != 0 else None
        if looped is not None:  # (a loop runs any number of steps, known or not)
            return looped
    n = length if xs is None else _leading(xs, "scan")
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, []
    for i in order:
        x = None if xs is None else _map(lambda leaf: leaf[i], xs)
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys.reverse()
    has_ys = bool(ys) and not builtins.all(leaf is None for leaf in _flatten(ys[0]))
    return carry, (_stack_outputs(ys) if has_ys else None)


def _traced(*trees):
    from kgraph.ir.graph import current_graph

    return current_graph() is not None or any(
        is_symbolic(leaf) for tree in trees for leaf in _flatten(tree))


def _looped_scan(f, init, xs, n, reverse):
    """`scan` as one `Scan` node, or None when `f` cannot be a loop body (see `scan`)."""
    from kgraph.ir.graph import tracing
    from kgraph.ops.recurrence import ScanBodyError
    from kgraph.ops.recurrence import scan as loop
    from kgraph.ops.registry import to_value

    with tracing(_graph_of(init, xs)):
        carries = [to_value(leaf) for leaf in _flatten(init)]
        sequences = [to_value(leaf) for leaf in _flatten(xs)] if xs is not None else \
            [to_value(np.zeros((n,), np.int32))]  # `length` alone: a sequence to count
        shape = {}

        def step(carry, slices):
            x = _unflatten(xs, slices) if xs is not None else None
            new, y = f(_unflatten(init, carry), x)
            new = [ew.cast(to_value(v), c.dtype) if not is_symbolic(v) else to_value(v)
                   for v, c in zip(_flatten(new), carry)]
            shape["y"] = y
            return new, [to_value(v) for v in _flatten(y) if v is not None]

        try:
            finals, stacked = loop(step, carries, sequences, reverse=reverse,
                                   name="keras_scan")
        except ScanBodyError:
            return None
    y = shape["y"]
    has_ys = y is not None and not builtins.all(leaf is None for leaf in _flatten(y))
    return _unflatten(init, finals), (_unflatten(y, stacked) if has_ys else None)


def _looped_while(cond, step, state, iterations):
    """`while_loop` with a symbolic condition as a `Scan` of `iterations` steps, each keeping
    the old state once the condition has turned false (as unrolled); None when `step` cannot
    be a loop body (see `scan`)."""
    if iterations <= 0:
        return None

    def body(carry, _):
        alive, values = carry
        values = _select(alive, step(values), values)
        return (ew.logical_and(alive, ew.cast(cond(*values), "bool")), values), None

    alive = ew.cast(cond(*state), "bool")
    looped = _looped_scan(body, (alive, state), None, iterations, False)
    return None if looped is None else looped[0][1]


def map(f, xs):  # noqa: A001 - the Keras name
    """`stack([f(x) for x in xs])` over the leading axis (`keras.ops.map`); while tracing, a
    `Scan` without carries, as `scan` (the leading axis may then be unknown)."""
    if _traced(xs):
        n = _leading(xs, "map", known=False)
        looped = _looped_scan(lambda carry, x: ((), f(x)), (), xs, n, False) if n != 0 \
            else None
        if looped is not None:
            return looped[1]
    n = _leading(xs, "map")
    return _stack_outputs([f(_map(lambda leaf: leaf[i], xs)) for i in range(n)])


def vectorized_map(function, elements):
    """`keras.ops.vectorized_map`: `function` on each slice of the leading axis, stacked."""
    return map(function, elements)


def associative_scan(f, elems, reverse=False, axis=0):
    """Inclusive scan with the associative `f` along `axis` (`keras.ops.associative_scan`),
    as a sequential unroll over that (known) axis."""
    from kgraph.ops.shape_api import moveaxis, stack

    leaves = _flatten(elems)
    moved = [moveaxis(leaf, axis, 0) if axis else leaf for leaf in leaves]
    n = _leading(moved, "associative_scan")
    order = range(n - 1, -1, -1) if reverse else range(n)
    running, outs = None, {}
    for i in order:
        item = _unflatten(elems, [leaf[i] for leaf in moved])
        running = item if running is None else (f(running, item) if not reverse
                                                else f(item, running))
        outs[i] = _flatten(running)
    stacked = [stack([outs[i][j] for i in range(n)], 0) for j in range(len(leaves))]
    stacked = [moveaxis(s, 0, axis) if axis else s for s in stacked]
    return _unflatten(elems, stacked)
