"""`keras.utils.PyDataset` (and its Keras 2 name `Sequence`): batches by index."""
from __future__ import annotations

from kgraph.data import parallel


class PyDataset:
    """Base class for a dataset of batches read by index, possibly by several workers.

    Subclass it, define `__len__` (the number of batches) and `__getitem__(index)` (batch
    `index`: `(x,)`, `(x, y)` or `(x, y, sample_weight)`, numpy arrays or structures of
    them), and pass it to `fit`/`evaluate`/`predict`. Only the batches being read and the
    `max_queue_size` ready ones are in memory at a time.

    Args:
        workers: how many threads (or processes) read batches in parallel. With 1 and no
            multiprocessing, batches are read in the training loop's thread.
        use_multiprocessing: read in processes (forked, so the dataset need not pickle; the
            batches do). Useful when `__getitem__` holds the GIL (pure-Python decoding).
        max_queue_size: at most this many batches are read ahead of the training step.

    Example:

    ```python
    class Batches(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y, self.batch_size = x, y, batch_size

        def __len__(self):
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, index):
            lo = index * self.batch_size
            return self.x[lo:lo + self.batch_size], self.y[lo:lo + self.batch_size]

    model.fit(Batches(x, y, 32, workers=4), epochs=2)
    ```
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        for name, value in (("workers", workers), ("max_queue_size", max_queue_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"PyDataset: `{name}` must be a positive integer. "
                                 f"Received: {name}={value!r}")
        self._workers, self._use_multiprocessing = workers, bool(use_multiprocessing)
        self._max_queue_size = max_queue_size

    # Subclasses that forget `super().__init__()` still work, with the defaults.
    workers = property(lambda self: getattr(self, "_workers", 1))
    use_multiprocessing = property(lambda self: getattr(self, "_use_multiprocessing", False))
    max_queue_size = property(lambda self: getattr(self, "_max_queue_size", 10))

    def __getitem__(self, index):
        """Batch number `index`."""
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index).")

    def __len__(self):
        """The number of batches in one epoch."""
        raise NotImplementedError(f"{type(self).__name__} must define __len__().")

    @property
    def num_batches(self):
        """`len(self)`, or None when the dataset does not define `__len__`."""
        return _num_batches(self)

    def on_epoch_begin(self):
        """Called before each epoch."""

    def on_epoch_end(self):
        """Called after each epoch (shuffle the index order here, for instance)."""

    def __iter__(self):
        """One epoch of batches, read ahead by the workers (see the class docstring)."""
        yield from iterate_batches(self)


Sequence = PyDataset


def _num_batches(dataset):
    """`len(dataset)`, or None when it has no (implemented) `__len__`."""
    try:
        return len(dataset)
    except (NotImplementedError, TypeError):
        return None


def _indices(dataset):
    n = _num_batches(dataset)
    if n is not None:
        yield from range(n)
        return
    index = 0
    while True:  # no __len__: read until __getitem__ raises IndexError
        yield index
        index += 1


class _End:
    """What a read past the end of an unsized dataset gives (a class, so it survives the
    trip back from a worker process)."""


def _read(dataset, index, unsized):
    try:
        return dataset[index]
    except IndexError:
        if unsized:
            return _End()
        raise


def iterate_batches(dataset):
    """Batches `0 .. len(dataset) - 1` of `dataset`, in order; with `workers > 1` or
    `use_multiprocessing`, read by a pool that keeps up to `max_queue_size` reads in flight.
    An exception from `__getitem__` stops the pool and is re-raised unchanged."""
    workers = getattr(dataset, "workers", 1)
    processes = getattr(dataset, "use_multiprocessing", False)
    unsized = _num_batches(dataset) is None
    reads = (_read(dataset, i, unsized) for i in _indices(dataset))
    if workers > 1 or processes:
        reads = parallel.pooled_map(lambda i: _read(dataset, i, unsized), _indices(dataset),
                                    workers, window=getattr(dataset, "max_queue_size", 10),
                                    processes=processes)
    try:
        for batch in reads:
            if isinstance(batch, _End):
                return
            yield batch
    finally:
        close = getattr(reads, "close", None)
        if close is not None:
            close()
