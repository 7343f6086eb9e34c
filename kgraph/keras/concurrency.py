"""Which model calls may run from many threads at once, and the lock that orders the rest.

`predict`, `predict_on_batch` and `model(x)` run concurrently (each thread binds its own
inputs, see `kgraph.runtime.program`). Calls that update a model's state (`fit`,
`train_on_batch`, `evaluate`, `test_on_batch`: weights, optimizer slots, metric
accumulators) take the model's lock, so two threads training or evaluating one model run one
after the other and each sees exactly the results it would see alone. Building a step graph
(the first call with a new input signature) takes the same lock, so concurrent first calls
trace and build once. A `predict` running while another thread's `fit` updates the weights
may read a weight partway through an update, as with TensorFlow's variables: the updates are
written into the variables' own buffers (runtime/program.py; `Variable.donatable`).
"""
from __future__ import annotations

import functools
import threading

_CREATE = threading.Lock()


def model_lock(model) -> threading.RLock:
    """The re-entrant lock of `model` (fit calls evaluate for validation, in the same thread)."""
    lock = model.__dict__.get("_kgraph_lock")
    if lock is None:
        with _CREATE:
            lock = model.__dict__.get("_kgraph_lock")
            if lock is None:
                lock = threading.RLock()
                object.__setattr__(model, "_kgraph_lock", lock)
    return lock


def serialized(method):
    """Run `method` holding the model's lock."""

    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with model_lock(self):
            return method(self, *args, **kwargs)

    return locked
