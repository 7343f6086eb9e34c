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

import numpy as np

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2


class TensorSpec:
    """The shape (`None` dims unknown; `None` shape: unknown rank) and dtype of an element."""

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = None if shape is None else tuple(None if d is None else int(d) for d in shape)
        self.dtype, self.name = np.dtype(getattr(dtype, "name", dtype)), name

    def __eq__(self, other):
        return isinstance(other, TensorSpec) and (self.shape, self.dtype) == (other.shape,
                                                                             other.dtype)

    def __repr__(self):
        return f"TensorSpec(shape={self.shape}, dtype={self.dtype.name}, name={self.name!r})"


def _rebuild(like, values):
    return type(like)(*values) if hasattr(like, "_fields") else tuple(values)


def _map(fn, *structures):
    """Apply `fn` leaf-wise to structures (tuples, namedtuples, dicts) shaped like the first."""
    s = structures[0]
    if isinstance(s, tuple):
        return _rebuild(s, [_map(fn, *(t[i] for t in structures)) for i in range(len(s))])
    if isinstance(s, dict):
        return {k: _map(fn, *(t[k] for t in structures)) for k in s}
    return fn(*structures)


def _leaves(s):
    if isinstance(s, (tuple, dict)):
        return [leaf for v in (s.values() if isinstance(s, dict) else s) for leaf in _leaves(v)]
    return [s]


def _to_numpy(a, dtype=None):
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
        a = a.numpy()
    arr = np.asarray(a, dtype=dtype)
    if dtype is None and arr.dtype == np.float64 and not isinstance(a, (np.ndarray, np.generic)):
        arr = arr.astype(np.float32)  # Python floats become float32, as in TensorFlow
    return arr


def _normalize(s, lists_are_tuples=False):
    """Leaves become numpy arrays; lists are arrays, or tuples for `map` outputs (as in TF)."""
    if isinstance(s, tuple) or isinstance(s, list) and lists_are_tuples:
        return _rebuild(s, [_normalize(v, lists_are_tuples) for v in s])
    if isinstance(s, dict):
        return {k: _normalize(v, lists_are_tuples) for k, v in s.items()}
    return _to_numpy(s)


def _call(fn, element):
    """Call `fn` like tf.data: a (non-named) tuple element is unpacked as positional args."""
    if isinstance(element, tuple) and not hasattr(element, "_fields"):
        return fn(*element)
    return fn(element)


def _stack(*leaves):
    shapes = {np.shape(a) for a in leaves}
    if len(shapes) > 1:
        raise ValueError(f"Cannot batch tensors with different shapes: {sorted(shapes)}. "
                         f"Use `map` to give every element the same shape first.")
    return np.stack(leaves)


def _spec_of(element):
    return _map(lambda a: TensorSpec(np.shape(a), np.asarray(a).dtype), element)


class Dataset:
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
        arrays = _normalize(tensors)
        sizes = {a.shape[0] if a.ndim else None for a in _leaves(arrays)}
        if None in sizes:
            raise ValueError("from_tensor_slices() needs arrays of rank >= 1; got a scalar.")
        if len(sizes) != 1:
            raise ValueError(f"All arrays given to from_tensor_slices() must have the same "
                             f"first dimension. Received sizes: {sorted(sizes)}")
        n = sizes.pop()
        spec = _map(lambda a: TensorSpec(a.shape[1:], a.dtype), arrays)
        return Dataset._new(lambda: (_map(lambda a: a[i], arrays) for i in range(n)),
                            n, lambda: spec)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset with the single element `tensors`."""
        element = _normalize(tensors)
        return Dataset._new(lambda: iter([element]), 1, lambda: _spec_of(element))

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
            output_signature = _map(lambda t: TensorSpec(None, t), output_types)
        signature = None if output_signature is None else _map(
            lambda s: TensorSpec(getattr(s, "shape", None), s.dtype), output_signature)

        def make():
            for item in generator(*(args or ())):
                item = _normalize(item)
                yield item if signature is None else _conform(item, signature)

        return Dataset._new(make, UNKNOWN_CARDINALITY,
                            None if signature is None else (lambda: signature))

    @staticmethod
    def zip(*datasets, name=None):
        """Zip a tuple (or dict) of datasets; stops at the shortest."""
        structure = datasets[0] if len(datasets) == 1 and isinstance(
            datasets[0], (tuple, dict)) else tuple(datasets)
        cards = [d._cardinality for d in _leaves(structure)]
        finite = [c for c in cards if c >= 0]
        card = UNKNOWN_CARDINALITY if UNKNOWN_CARDINALITY in cards else (
            min(finite) if finite else INFINITE_CARDINALITY)

        def make():
            iterators = _map(iter, structure)
            while True:
                try:
                    yield _map(next, iterators)
                except StopIteration:
                    return

        return Dataset._new(make, card, lambda: _map(lambda d: d.element_spec, structure))

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
                yield _map(_stack, *chunk)

        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else -(-card // batch_size)
        lead = batch_size if drop_remainder else None
        return self._derive(make, card, lambda: _map(lambda s: TensorSpec(
            None if s.shape is None else (lead,) + s.shape, s.dtype), self.element_spec))

    def unbatch(self, name=None):
        """Split every element along its first dimension (the inverse of `batch`)."""
        def make():
            for element in self:
                for i in range(len(_leaves(element)[0])):
                    yield _map(lambda a: a[i], element)

        card = self._cardinality if self._cardinality in (0, INFINITE_CARDINALITY) else -2
        return self._derive(make, card, lambda: _map(lambda s: TensorSpec(
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

        def make():
            rng = np.random.default_rng([base, next(epochs) if reshuffle_each_iteration else 0])
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
        """Apply `map_func` to every element (tuple elements are unpacked into arguments)."""
        return self._derive(lambda: (_normalize(_call(map_func, e), True) for e in self), spec=None)

    def filter(self, predicate, name=None):
        """Keep the elements for which `predicate` (called like `map`'s function) is true."""
        return self._derive(lambda: (e for e in self if bool(np.asarray(_call(predicate, e)))),
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
        """Overlap producing and consuming elements in TensorFlow; a no-op here."""
        return self

    def cache(self, filename="", name=None):
        """Keep the elements in memory after the first complete iteration (`filename` is
        ignored: the cache is always in memory)."""
        store = {}

        def make():
            if "elements" in store:
                yield from store["elements"]
                return
            seen = []
            yield from (seen.append(e) or e for e in self)
            store["elements"] = seen

        return self._derive(make)

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
        return iter(self._make())

    def as_numpy_iterator(self):
        """An iterator over the elements (already numpy arrays)."""
        return iter(self)

    def cardinality(self):
        """The number of elements, or `INFINITE_CARDINALITY` (-1) / `UNKNOWN_CARDINALITY` (-2)."""
        return self._cardinality

    @property
    def element_spec(self):
        """The structure of `TensorSpec`s of one element (batch dimensions are `None`)."""
        if self._spec is not None:
            return self._spec()
        first = next(iter(self), None)
        return None if first is None else _spec_of(first)

    def __bool__(self):
        return True

    def __repr__(self):
        card = {-1: "infinite", -2: "unknown"}.get(self._cardinality, self._cardinality)
        return f"<Dataset cardinality={card}>"


class _SizedDataset(Dataset):
    """A `Dataset` of known, finite cardinality: `len(dataset)` works."""

    def __len__(self):
        return self._cardinality


def _conform(values, specs):
    """Cast a yielded structure to the signature's dtypes, checking structure and shapes."""
    try:
        if len(_leaves(values)) != len(_leaves(specs)):
            raise TypeError
        return _map(lambda spec, v: _check_shape(_to_numpy(v, spec.dtype), spec), specs, values)
    except (TypeError, KeyError, IndexError):
        raise TypeError(f"`generator` yielded {values!r}, which does not match the structure "
                        f"of `output_signature` {specs!r}.") from None


def _check_shape(arr, spec):
    if spec.shape is not None and (arr.ndim != len(spec.shape) or any(
            d is not None and d != a for d, a in zip(spec.shape, arr.shape))):
        raise ValueError(f"`generator` yielded an element of shape {arr.shape} where an "
                         f"element of shape {spec.shape} was expected.")
    return arr
