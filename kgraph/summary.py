"""`tf.summary`: TensorBoard event files written from Python (scalars and histograms), for
TensorFlow code that logs its own values (the keras.io sklearn-metric callback's
`tf.summary.create_file_writer(...)` / `with writer.as_default(): tf.summary.scalar(...)`).

The records are the ones `keras.callbacks.TensorBoard` writes (kgraph/keras/callbacks/
summaries.py, tensorboard's own protos and event-file writer; no TensorFlow needed). As in
TensorFlow, a summary call writes to the default writer (the innermost `as_default()`) and
returns False when there is none.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

__all__ = ["SummaryWriter", "create_file_writer", "create_noop_writer", "flush", "histogram",
           "scalar"]

_default = threading.local()  # .stack: [(writer, step)] of the `as_default()` blocks entered
_global_default = []  # [(writer, step)] of `set_as_default()`, used outside any block


def _stack():
    if not hasattr(_default, "stack"):
        _default.stack = []
    return _default.stack


def _current():
    """(writer, default step) summary calls write to, or None."""
    stack = _stack() or _global_default
    return stack[-1] if stack else None


class SummaryWriter:
    """An event-file writer for one log directory (`tf.summary.create_file_writer`)."""

    def __init__(self, logdir):
        self.logdir = str(logdir)
        self._events = None  # the event file is created on the first record, as TensorFlow

    def _writer(self):
        from kgraph.keras.callbacks.summaries import EventWriter

        if self._events is None:
            self._events = EventWriter(self.logdir)
        return self._events

    @contextlib.contextmanager
    def as_default(self, step=None):
        """Make this the writer summary calls write to (and `step` their default step)
        inside the block."""
        _stack().append((self, step))
        try:
            yield self
        finally:
            _stack().pop()
            self.flush()

    def set_as_default(self, step=None):
        """Make this the default writer until another is set (no block to leave)."""
        _global_default[:] = [(self, step)]

    def init(self):
        """Nothing to do: the event file opens on the first record."""

    def flush(self):
        if self._events is not None:
            self._events.flush()

    def close(self):
        if self._events is not None:
            self._events.close()
            self._events = None


def create_file_writer(logdir, max_queue=None, flush_millis=None, filename_suffix=None,
                       name=None, experimental_trackable=False, experimental_mesh=None):
    """`tf.summary.create_file_writer`: a `SummaryWriter` writing event files in `logdir`
    (created when the first record is written)."""
    if not isinstance(logdir, (str, bytes)) and not hasattr(logdir, "__fspath__"):
        raise TypeError(f"tf.summary.create_file_writer: logdir must be a path. Received: "
                        f"logdir={logdir!r}")
    return SummaryWriter(logdir)


class _NoopWriter(SummaryWriter):
    """A writer that records nothing (summary calls under it return False)."""

    def __init__(self):
        super().__init__("")


def create_noop_writer():
    """`tf.summary.create_noop_writer`: a writer that records nothing, e.g. to set as the
    default in place of a file writer."""
    return _NoopWriter()


def _target(step, what):
    """The default writer and the step to record at, or (None, None) when no writer is set."""
    current = _current()
    if current is None:
        return None, None
    writer, default_step = current
    if isinstance(writer, _NoopWriter):
        return None, None
    step = default_step if step is None else step
    if step is None:
        raise ValueError(f"tf.summary.{what}: no step given and the writer's `as_default()` "
                         f"set none; pass step=... . Received: step=None")
    return writer, int(np.asarray(step))


def scalar(name, data, step=None, description=None):
    """`tf.summary.scalar`: record the scalar `data` under the tag `name` at `step` in the
    default writer. Returns True when written, False when no writer is the default."""
    writer, step = _target(step, "scalar")
    if writer is None:
        return False
    value = np.asarray(data, dtype=np.float64)
    if value.size != 1:
        raise ValueError(f"tf.summary.scalar: data must be a scalar. Received: data of shape "
                         f"{value.shape} for name={name!r}")
    writer._writer().scalars({name: float(value.reshape(()))}, step)
    return True


def histogram(name, data, step=None, buckets=None, description=None):
    """`tf.summary.histogram`: record the values of `data` in `buckets` bins (30 by default,
    as TensorFlow) under the tag `name`. Returns True when written, False without a writer."""
    writer, step = _target(step, "histogram")
    if writer is None:
        return False
    writer._writer().histogram(name, np.asarray(data), step, bins=int(buckets or 30))
    return True


def flush(writer=None, name=None):
    """`tf.summary.flush`: flush `writer` (the default writer when None)."""
    current = _current()
    target = writer if writer is not None else (current[0] if current else None)
    if target is not None:
        target.flush()
