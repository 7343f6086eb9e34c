"""`Dataset`: a lazy, numpy-based subset of `tf.data.Dataset`.

A dataset is a recipe for a Python generator. Every `iter(dataset)` starts the pipeline afresh
(re-shuffling when asked), nothing is materialised unless `cache()` is used, and elements are
numpy arrays nested in tuples and dicts, as `as_numpy_iterator()` gives them in TensorFlow.

Datasets whose cardinality is known are instances of a subclass that defines `__len__`; the
others have no `__len__` at all, so `len()` raises `TypeError` (as in TensorFlow) and callers that
test `hasattr(ds, "__len__")` see an unsized iterable.
"""
from __future__ import annotations

import itertools
import os

import numpy as np

from kgraph.data import parallel, sources, storage
from kgraph.data.transforms import Transformations
from kgraph.data.structure import (TensorSpec, call, conform, leaves, map_structure,
                                   normalize, spec_of, stack, to_numpy)

AUTOTUNE = parallel.AUTOTUNE
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2


class Dataset(Transformations):
    """A lazy pipeline of elements, the `tf.data.Dataset` API over numpy arrays.

    Build one with `from_tensor_slices`, `from_generator`, `from_tensors` or `range`, chain
    transformations (`shuffle`, `map`, `batch`, ...) and iterate it, or pass it to `fit`:

    ```python
    dataset = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    dataset = dataset.shuffle(buffer_size=1024).batch(64).prefetch(tf.data.AUTOTUNE)
    model.fit(dataset, epochs=3)
    ```
    """

    def __init__(self, make_iterator, cardinality=UNKNOWN_CARDINALITY, spec=None):
        self._make, self._cardinality = make_iterator, int(cardinality)
        self._spec = spec  # zero-arg callable giving the element_spec, or None (peek)
        # (arrays, order): set while the elements are still rows of in-memory arrays
        # (from_tensor_slices, then shuffle): `order()` gives one pass's row indices, so
        # `shuffle` permutes indices and `batch` gathers whole batches with one take per array
        # instead of moving every element through Python.
        self._indexed = None
        self._gathered = False  # whole batches gathered from in-memory arrays (see prefetch)

    @staticmethod
    def _new(make_iterator, cardinality, spec=None):
        cls = _SizedDataset if cardinality >= 0 else Dataset
        return cls(make_iterator, cardinality, spec)

    # -- sources ---------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors, name=None):
        """Slice `tensors` (an array, or a tuple/dict of arrays) along their first dimension.

        `from_tensor_slices((x, y))` yields `(x[i], y[i])` pairs; lists are treated as arrays.
        """
        arrays = normalize(tensors)
        sizes = {a.shape[0] if a.ndim else None for a in leaves(arrays)}
        if None in sizes:
            raise ValueError("from_tensor_slices() needs arrays of rank >= 1; got a scalar.")
        if len(sizes) != 1:
            raise ValueError(f"All arrays given to from_tensor_slices() must have the same "
                             f"first dimension. Received sizes: {sorted(sizes)}")
        n = sizes.pop()
        spec = map_structure(lambda a: TensorSpec(a.shape[1:], a.dtype), arrays)
        return _indexed(arrays, lambda: np.arange(n), n, lambda: spec)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset with the single element `tensors`."""
        element = normalize(tensors)
        return Dataset._new(lambda: iter([element]), 1, lambda: spec_of(element))

    @staticmethod
    def range(*args, dtype="int64", name=None):
        """`Dataset.range(stop)` / `range(start, stop[, step])`: like Python's `range`."""
        r = range(*args)
        return Dataset._new(lambda: (np.asarray(i, dtype) for i in r), len(r),
                            lambda: TensorSpec((), dtype))

    @staticmethod
    def from_generator(generator, output_types=None, output_shapes=None, args=None,
                       output_signature=None, name=None):
        """Elements yielded by `generator(*args)`, called anew for every iteration.

        Args:
            generator: a callable returning an iterable (e.g. a generator function).
            output_signature: optional structure of `TensorSpec`-like objects (with `shape`
                and `dtype`); yielded values are cast to its dtypes and checked against its
                shapes. `output_types` (deprecated) only casts; `output_shapes` is ignored.
        """
        if not callable(generator):
            raise TypeError("`generator` must be a Python callable.")
        if output_signature is None and output_types is not None:
            output_signature = map_structure(lambda t: TensorSpec(None, t), output_types)
        signature = None if output_signature is None else map_structure(
            lambda s: TensorSpec(getattr(s, "shape", None), s.dtype), output_signature)

        def make():
            for index, item in enumerate(generator(*(args or ()))):
                item = normalize(item)
                yield item if signature is None else conform(item, signature, index)

        return Dataset._new(make, UNKNOWN_CARDINALITY,
                            None if signature is None else (lambda: signature))

    @staticmethod
    def zip(*datasets, name=None):
        """Zip a tuple (or dict) of datasets; stops at the shortest."""
        structure = datasets[0] if len(datasets) == 1 and isinstance(
            datasets[0], (tuple, dict)) else tuple(datasets)
        cards = [d._cardinality for d in leaves(structure)]
        finite = [c for c in cards if c >= 0]
        card = UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in cards else (
            min(finite) if finite else INFINITE_CARDINALITY)

        def make():
            iterators = map_structure(iter, structure)
            while True:
                try:
                    yield map_structure(next, iterators)
                except StopIteration:
                    return

        return Dataset._new(make, card, lambda: map_structure(lambda d: d.element_spec, structure))

    # -- transformations -------------------------------------------------------------------
    def _derive(self, make, cardinality=None, spec="same"):
        card = self._cardinality if cardinality is None else cardinality
        return Dataset._new(make, card, self._spec if spec == "same" else spec)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None,
              deterministic=None, name=None):
        """Stack `batch_size` consecutive elements; the last batch may be smaller unless
        `drop_remainder=True`."""
        batch_size = int(batch_size)
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be greater than zero. Received: {batch_size}")

        def make():
            iterator = iter(self)
            while True:
                chunk = list(itertools.islice(iterator, batch_size))
                if not chunk or (drop_remainder and len(chunk) < batch_size):
                    return
                yield map_structure(stack, *chunk)

        def make_indexed():
            arrays, order = self._indexed
            rows = order()
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                if drop_remainder and len(chunk) < batch_size:
                    return
                yield map_structure(lambda a: a.take(chunk, axis=0), arrays)

        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        lead = batch_size if drop_remainder else None
        batched = self._derive(make_indexed if self._indexed else make, card,
                               lambda: map_structure(lambda s: TensorSpec(
                                   None if s.shape is None else (lead,) + s.shape, s.dtype),
                                   self.element_spec))
        batched._gathered = self._indexed is not None
        return batched

    def unbatch(self, name=None):
        """Split every element along its first dimension (the inverse of `batch`)."""
        def make():
            for element in self:
                for i in range(len(leaves(element)[0])):
                    yield map_structure(lambda a: a[i], element)

        card = self._cardinality if self._cardinality in (0, INFINITE_CARDINALITY) else -2
        return self._derive(make, card, lambda: map_structure(lambda s: TensorSpec(
            None if s.shape is None else s.shape[1:], s.dtype), self.element_spec))

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        """Shuffle with a buffer of `buffer_size` elements, exactly as `tf.data` does.

        The buffer is filled with the first `buffer_size` elements; each output is drawn at
        random from it and its slot refilled with the next input. A buffer at least as large as
        the dataset gives a uniform shuffle; `buffer_size=1` keeps the order. Without `seed`,
        the seed comes from `kgraph.random`, so `kgraph.random.set_seed` makes it reproducible.
        """
        buffer_size = int(buffer_size)
        if buffer_size <= 0:
            raise ValueError(f"`buffer_size` must be greater than zero. Received: {buffer_size}")
        from kgraph import random as krandom

        base = int(krandom.generator().integers(0, 2**63 - 1)) if seed is None else int(seed)
        epochs = krandom.IterationCounter()  # restored by BackupAndRestore

        def new_rng():
            return np.random.default_rng([base, next(epochs) if reshuffle_each_iteration else 0])

        if self._indexed:
            arrays, order = self._indexed
            return _indexed(arrays, lambda: _shuffle_rows(order(), buffer_size, new_rng()),
                            self._cardinality, self._spec)

        def make():
            rng = new_rng()
            buffer = []
            for element in self:
                if len(buffer) < buffer_size:
                    buffer.append(element)
                    continue
                i = int(rng.integers(buffer_size))
                yield buffer[i]
                buffer[i] = element
            while buffer:
                i = int(rng.integers(len(buffer)))
                buffer[i], buffer[-1] = buffer[-1], buffer[i]
                yield buffer.pop()

        return self._derive(make)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """Apply `map_func` to every element (tuple elements are unpacked into arguments).

        With `num_parallel_calls=N` (or `AUTOTUNE`: one per CPU), N threads call `map_func`
        on consecutive elements; the order is kept unless `deterministic=False`, which yields
        results as they complete. numpy, file reads and image decoding release the GIL, so
        such functions run in parallel."""
        def apply(element):
            return normalize(call(map_func, element), True)

        workers = _parallel_calls(num_parallel_calls)
        if workers <= 1:
            return self._derive(lambda: (apply(e) for e in self), spec=None)
        return self._derive(lambda: parallel.pooled_map(
            apply, self, workers, ordered=deterministic is not False), spec=None)

    def filter(self, predicate, name=None):
        """Keep the elements for which `predicate` (called like `map`'s function) is true."""
        return self._derive(lambda: (e for e in self if bool(np.asarray(call(predicate, e)))),
                            0 if self._cardinality == 0 else UNKNOWN_CARDINALITY)

    def repeat(self, count=None, name=None):
        """Repeat the dataset `count` times (forever when `count` is None or -1)."""
        count = -1 if count is None else int(count)

        def make():
            for _ in (itertools.count() if count < 0 else range(count)):
                empty = True
                for element in self:
                    empty = False
                    yield element
                if empty:
                    return

        card = self._cardinality
        card = 0 if 0 in (card, count) else INFINITE_CARDINALITY if count < 0 else (
            card * count if card > 0 else card)
        return self._derive(make, card)

    def take(self, count, name=None):
        """The first `count` elements (all of them when `count` is -1)."""
        count = int(count)
        if count < 0:
            return self._derive(self._make)
        card = self._cardinality
        card = count if card == INFINITE_CARDINALITY else (min(card, count) if card >= 0 else
                                                            (0 if count == 0 else card))
        return self._derive(lambda: itertools.islice(iter(self), count), card)

    def skip(self, count, name=None):
        """All but the first `count` elements (none of them when `count` is -1)."""
        count = int(count)
        if count < 0:
            return self._derive(lambda: iter(()), 0)
        card = self._cardinality
        card = max(card - count, 0) if card >= 0 else card
        return self._derive(lambda: itertools.islice(iter(self), count, None), card)

    def prefetch(self, buffer_size, name=None):
        """Produce up to `buffer_size` elements ahead, on a background thread, while the
        consumer works on the current one (`AUTOTUNE`: a depth that grows while the consumer
        waits, at most `parallel.AUTOTUNE_MAX_DEPTH`). Errors of the pipeline reach the
        consumer unchanged; abandoning the iteration stops and joins the thread.

        Batches gathered from in-memory arrays (`from_tensor_slices`, `shuffle`, `batch`) cost
        one `take` per array: a thread would only contend with the training step for the GIL
        (12% slower per step, measured), so such pipelines produce them on demand."""
        depth = int(buffer_size)
        if depth == 0 or self._gathered:
            return self._derive(self._make)
        return self._derive(lambda: parallel.prefetched(self._make, depth))

    def cache(self, filename="", name=None):
        """Keep the elements after the first complete iteration: in memory, or with a
        `filename`, in that directory on disk (written atomically; later iterations, and
        later processes, read it instead of running the pipeline)."""
        if filename:
            return storage.cached_on_disk(self, os.fspath(filename))
        store = {}

        def make():
            if "elements" in store:
                yield from store["elements"]
                return
            seen = []
            yield from (seen.append(e) or e for e in self)
            store["elements"] = seen

        return self._derive(make)

    def snapshot(self, path, compression="AUTO", reader_func=None, shard_func=None, name=None):
        """Persist the pipeline's output under `path` on its first complete run (as
        `cache(path)`); later runs read the files."""
        return storage.cached_on_disk(self, os.fspath(path))

    def save(self, path, compression=None, shard_func=None, checkpoint_args=None):
        """Write the elements under the directory `path`; `Dataset.load(path)` reads them."""
        storage.save(self, os.fspath(path))

    @staticmethod
    def load(path, element_spec=None, compression=None, reader_func=None):
        """The dataset `Dataset.save` wrote to `path`, read one shard at a time."""
        return storage.load(os.fspath(path))

    list_files = staticmethod(sources.list_files)
    from_hdf5 = staticmethod(sources.from_hdf5)
    sample_from_datasets = staticmethod(sources.sample_from_datasets)
    choose_from_datasets = staticmethod(sources.choose_from_datasets)

    def enumerate(self, start=0, name=None):
        """Pair every element with its index: `(i, element)`."""
        return self._derive(
            lambda: ((np.asarray(i, np.int64), e) for i, e in enumerate(self, start)),
            spec=lambda: (TensorSpec((), "int64"), self.element_spec))

    def concatenate(self, dataset, name=None):
        """The elements of this dataset followed by those of `dataset`."""
        cards = (self._cardinality, dataset._cardinality)
        card = INFINITE_CARDINALITY if INFINITE_CARDINALITY in cards else (
            UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in cards else sum(cards))
        return self._derive(lambda: itertools.chain(self, dataset), card)

    def apply(self, transformation_func):
        """`transformation_func(self)`, for chaining custom transformations."""
        return transformation_func(self)

    # -- iteration and introspection -------------------------------------------------------
    def __iter__(self):
        """The elements, their arrays as eager tensors (numpy arrays with `.numpy()`, as
        `tf.data` yields: `for images, labels in ds.take(1): images[0].numpy()`)."""
        return _eager_elements(self._make())

    def as_numpy_iterator(self):
        """An iterator over the elements as plain numpy arrays."""
        return iter(self._make())

    def cardinality(self):
        """The number of elements, or `INFINITE_CARDINALITY` (-1) / `UNKNOWN_CARDINALITY` (-2)."""
        return self._cardinality

    @property
    def element_spec(self):
        """The structure of `TensorSpec`s of one element (batch dimensions are `None`)."""
        if self._spec is not None:
            return self._spec()
        first = next(iter(self), None)
        return None if first is None else spec_of(first)

    def __bool__(self):
        return True

    def __repr__(self):
        card = {-1: "infinite", -2: "unknown"}.get(self._cardinality, self._cardinality)
        return f"<Dataset cardinality={card}>"


def _indexed(arrays, order, cardinality, spec):
    """A dataset of the rows `order()` of `arrays`, one element per row."""
    def make():
        for i in order():
            yield map_structure(lambda a: a[i], arrays)

    dataset = Dataset._new(make, cardinality, spec)
    dataset._indexed = (arrays, order)
    return dataset


def _shuffle_rows(rows, buffer_size, rng):
    """`rows` in the order `shuffle`'s buffer gives them (each output drawn uniformly from a
    buffer of `buffer_size`, its slot refilled with the next row); the draws are made in bulk."""
    if buffer_size >= len(rows):
        return rng.permutation(rows)
    buffer = list(rows[:buffer_size])
    out = []
    for i, row in zip(rng.integers(buffer_size, size=len(rows) - buffer_size).tolist(),
                      rows[buffer_size:].tolist()):
        out.append(buffer[i])
        buffer[i] = row
    rng.shuffle(buffer)  # draining the buffer at random is a uniform permutation of it
    return np.asarray(out + buffer, dtype=np.int64)


class _SizedDataset(Dataset):
    """A `Dataset` of known, finite cardinality: `len(dataset)` works."""

    def __len__(self):
        return self._cardinality


def _parallel_calls(num_parallel_calls):
    if num_parallel_calls is None:
        return 1
    n = int(num_parallel_calls)
    if n == AUTOTUNE:
        return parallel.autotune_workers()
    if n <= 0:
        raise ValueError(f"`num_parallel_calls` must be a positive integer or AUTOTUNE (-1). "
                         f"Received: num_parallel_calls={num_parallel_calls!r}")
    return n


def _eager_elements(elements):
    """Yield `elements` as eager tensors; closing this generator closes `elements` (a
    prefetching pipeline's threads end with it)."""
    try:
        for element in elements:
            yield _as_eager(element)
    finally:
        close = getattr(elements, "close", None)
        if close is not None:
            close()


def _as_eager(element):
    """`element` with every numpy array viewed as an eager tensor (no copy)."""
    from kgraph.keras.layers.base import EagerTensor

    if isinstance(element, np.ndarray):
        return element if isinstance(element, EagerTensor) else element.view(EagerTensor)
    if isinstance(element, tuple):
        return tuple(_as_eager(e) for e in element)
    if isinstance(element, list):
        return [_as_eager(e) for e in element]
    if isinstance(element, dict):
        return {k: _as_eager(v) for k, v in element.items()}
    return element
