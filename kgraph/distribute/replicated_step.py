"""`ReplicatedTrainStep`: what the trainer runs for a model compiled under a mirrored
strategy. It looks like a Program to the trainer (`result_names`, `to_numpy`, call with the
global batch's arrays) and runs the split step of `split_step`:

1. every local replica (a thread) runs the gradient graph on its slice of the global batch
   (onnxruntime releases the GIL, so replicas overlap);
2. the replicas' contributions are summed by one fused all-reduce over an in-process group
   (and, for several workers, across processes by MPI once per bucket);
3. the optimizer applies the averaged gradients once; state and logs are combined.
"""
from __future__ import annotations

import concurrent.futures

import numpy as np

from kgraph.distribute import collectives, split_step


class ReplicatedTrainStep:
    """Args:
        model: the compiled model.
        batch: (x, y, sample_weight) shaped like one step's global batch.
        local_replicas: replicas in this process.
        cross: Communicator across processes (rank r holds global replicas
            r * local_replicas ...), or None for one process.
    """

    def __init__(self, model, batch, local_replicas, cross=None, steps=1):
        if steps > 1:  # steps_per_execution: the all-reduce sits between steps, so one by one
            batch = tuple(None if part is None else _first_of_stack(part) for part in batch)
        self.steps = steps
        x, y, sw = batch
        self.model, self.local_replicas, self.cross = model, local_replicas, cross
        graph, self.capture = split_step.trace_gradient_graph(model, x, y, sw)
        self.replica = split_step.ReplicaProgram(graph, getattr(model, "_backend", None))
        self.metric_ids = {id(v) for m in model.metrics for v in m.variables}
        self.result_names = list(self.replica.log_names)
        self._results = _results_program(model)
        after = (lambda total, op: cross.allreduce(total, op)) if cross is not None else None
        self.group = collectives.InProcessGroup(local_replicas, after_reduce=after)
        self.comms = self.group.communicators()
        self._pool = (concurrent.futures.ThreadPoolExecutor(
            local_replicas, thread_name_prefix="kgraph-replica") if local_replicas > 1 else None)
        self.old_state = []

    @property
    def num_replicas(self):
        return self.local_replicas * (self.cross.size if self.cross is not None else 1)

    def to_numpy(self, buffer):
        return np.asarray(buffer)

    def __call__(self, *arrays):
        if self.steps == 1:
            return self._step(list(arrays))
        for k in range(self.steps):
            outs = self._step([a[k] for a in arrays])
        return outs

    # -- one step ---------------------------------------------------------------------------
    def _step(self, arrays):
        self.replica.warm()
        self.old_state = [v.numpy() for v in self.replica.state]
        rows = len(arrays[0])
        slices = split_step.replica_slices(rows, self.num_replicas)
        first = (self.cross.rank if self.cross is not None else 0) * self.local_replicas
        jobs = [(comm, slices[first + j]) for j, comm in enumerate(self.comms)]
        if self._pool is None:
            reduced = self._replica(arrays, rows, *jobs[0])
        else:
            futures = [self._pool.submit(self._replica, arrays, rows, *job) for job in jobs]
            reduced = _first_result(futures, self.group)
        return self._apply(reduced)

    def _replica(self, arrays, rows, comm, bounds):
        start, stop = bounds
        outputs = None
        if stop > start:
            outputs = self.replica.run([a[start:stop] for a in arrays])
        return collectives.allreduce_fused(
            comm, split_step.contributions(self, outputs, (stop - start) / rows))

    def _apply(self, reduced):
        n_grads = self.replica.n_grads
        grads, rest = reduced[:n_grads], reduced[n_grads:]
        logs, state = rest[:len(self.result_names)], rest[len(self.result_names):]
        for optimizer, variables, first in self.capture.calls:
            optimizer.apply(grads[first:first + len(variables)], variables)
        for var, old, total in zip(self.replica.state, self.old_state, state):
            additive = id(var) in self.metric_ids or not np.issubdtype(old.dtype, np.floating)
            var.assign(old + total if additive else total)
        results = self._results() if self._results is not None else {}
        return [np.asarray(results[name]) if name in results else np.asarray(value)
                for name, value in zip(self.result_names, logs)]


def _first_result(futures, group):
    """The first replica's reduced arrays; a replica's error releases the others and is
    raised here."""
    try:
        for future in concurrent.futures.as_completed(futures):
            if future.exception() is not None:
                group.abort()
                raise future.exception()
    finally:
        concurrent.futures.wait(futures)
    return futures[0].result()


def _results_program(model):
    """A function returning {metric name: result} read from the metric variables, or None
    when the model has no metrics."""
    from kgraph.compiler.program import build_program

    metrics = list(model.metrics)
    if not metrics:
        return None
    from kgraph.keras.compile_utils import flatten_logs

    program = build_program(f"{model.name}_metric_results", [],
                            lambda: flatten_logs({m.name: m.result() for m in metrics}))

    def results():
        return {name: program.to_numpy(o) for name, o in zip(program.result_names, program())}
    return results


def _first_of_stack(part):
    from kgraph.keras.tree import flatten, pack_like

    return pack_like(part, [a[0] for a in flatten(part)])
