"""The split training step: a gradient graph run by every replica, an all-reduce, an apply.

The gradient graph is the model's own train step traced with `optimizer.apply` intercepted:
instead of appending the update, the gradients become outputs. Its inputs are one replica's
slice of the batch and the (shared, read-only) parameters; its outputs are the logs, the
gradients and the new values of the state it writes (metric accumulators, BatchNorm moving
statistics), which are NOT written back by the replica.

Every replica turns its outputs into contributions to one sum, so a single fused all-reduce
combines them all:

- gradients, weighted `n_i / N` (the replica's share of the global batch): their sum is the
  gradient of the global batch's mean loss, so the update equals one device's;
- metric accumulators (totals and counts): `new_i - old`, summed onto `old`;
- other state (moving statistics): weighted `n_i / N`, a weighted mean of the replicas';
- logs that are not metric results: weighted `n_i / N`.

The apply graph is the optimizer's eager update (`optimizer.apply` on arrays, compiled once
and cached by the optimizer), run once per step on the reduced gradients; the logs are then
read from the combined metric state by a small results graph.
"""
from __future__ import annotations

import numpy as np

from kgraph.keras.tree import flatten

GRAD_PREFIX = "__replica_grad_"


class Capture:
    """Stands in for `optimizer.apply` while the gradient graph is traced."""

    def __init__(self):
        self.calls = []  # (optimizer, [variables], first gradient index)
        self.grads = []

    def patch(self, optimizer):
        from kgraph.keras.optimizers import checks

        def apply(grads, variables):
            grads, variables = checks.filter_empty_gradients(list(grads), list(variables))
            self.calls.append((optimizer, variables, len(self.grads)))
            self.grads += grads
            return optimizer.iterations
        object.__setattr__(optimizer, "apply", apply)

    def unpatch(self, optimizer):
        optimizer.__dict__.pop("apply", None)


def trace_gradient_graph(model, x, y, sw):
    """The gradient graph of `model`'s train step for one replica's batch, and the Capture
    that says which optimizer updates which variables with which gradient outputs."""
    capture = Capture()
    original = model._train_graph

    def train_graph(*parts):
        logs = original(*parts)
        logs.update({f"{GRAD_PREFIX}{i}": g for i, g in enumerate(capture.grads)})
        return logs
    optimizers = [model.optimizer] + [o for o in _other_optimizers(model)
                                      if o is not model.optimizer]
    object.__setattr__(model, "_train_graph", train_graph)
    for opt in optimizers:
        capture.patch(opt)
    try:
        graph = model.trace_step("train", x, y, sw, static=model._is_static())
    finally:
        model.__dict__.pop("_train_graph", None)
        for opt in optimizers:
            capture.unpatch(opt)
    if not capture.calls:
        raise ValueError(f"Model {model.name!r}: its train step applied no gradients, so "
                         f"there is nothing for the replicas to all-reduce.")
    return graph, capture


def _other_optimizers(model):
    """Optimizers a custom train step may hold as attributes (a GAN's two optimizers)."""
    from kgraph.keras.optimizers.base import Optimizer

    return [v for v in vars(model).values() if isinstance(v, Optimizer)]


class ReplicaProgram:
    """The compiled gradient graph, returning every output (state too) without writing any
    variable back, so replicas can run it at once on the same parameters."""

    def __init__(self, graph, target):
        from kgraph.compiler.program import program_of
        from kgraph.runtime.program import Program

        bound = program_of(graph, target, prologue=False)  # the weights change every step
        self.keep = bound  # the compile cache holds the plan while this lives
        self.state = list(bound.updated)
        names = [n for n in bound.result_names if not n.startswith(GRAD_PREFIX)]
        self.log_names = names
        self.n_grads = len(bound.result_names) - len(names)
        self.program = Program(bound.compiled, bound.feed_names, bound.variables, [],
                               bound.result_names + [f"__state_{i}"
                                                     for i in range(len(self.state))],
                               key_name=bound.key_name, next_key=bound.next_key,
                               prologue=bound.prologue)
        self.grad_positions = [bound.result_names.index(f"{GRAD_PREFIX}{i}")
                               for i in range(self.n_grads)]
        self.log_positions = [bound.result_names.index(n) for n in names]
        self.n_results = len(bound.result_names)

    def warm(self):
        """Upload every variable once from this thread (replica threads then only read)."""
        upload = self.program.compiled.upload
        for _, var in self.program.variables:
            var.device_buffer(upload)

    def run(self, arrays):
        """(logs, grads, new state) as numpy arrays for one replica's slice."""
        outs = [np.asarray(self.program.to_numpy(o)) for o in self.program(*arrays)]
        logs = [outs[i] for i in self.log_positions]
        grads = [outs[i] for i in self.grad_positions]
        return logs, grads, outs[self.n_results:]


def contribution_template(step):
    """Zeros shaped like one replica's contributions (a replica without rows sends these)."""
    grads = [np.zeros(v.shape, v.numpy().dtype) for _, vs, _ in step.capture.calls for v in vs]
    logs = [np.zeros((), np.float64) for _ in step.replica.log_names]
    return grads + logs + [np.zeros_like(old) for old in step.old_state]


def contributions(step, outputs, weight):
    """One replica's arrays to sum (see the module docstring) from its `outputs` =
    (logs, grads, state), weighted by its share `weight` of the global batch."""
    if outputs is None:
        return contribution_template(step)
    logs, grads, state = outputs
    out = [g * g.dtype.type(weight) for g in grads]
    out += [np.asarray(v, np.float64).reshape(()) * weight for v in logs]
    for var, old, new in zip(step.replica.state, step.old_state, state):
        new = np.asarray(new, old.dtype)
        additive = id(var) in step.metric_ids or not np.issubdtype(old.dtype, np.floating)
        out.append(new - old if additive else new * old.dtype.type(weight))
    return out


def replica_slices(batch_size, replicas):
    """`replicas` (start, stop) ranges splitting `batch_size` rows as evenly as possible
    (the first `batch_size % replicas` get one row more)."""
    base, extra = divmod(batch_size, replicas)
    out, start = [], 0
    for r in range(replicas):
        stop = start + base + (1 if r < extra else 0)
        out.append((start, stop))
        start = stop
    return out
