"""The rest of the `tf.data.Dataset` transformations, mixed into `Dataset`: nesting
(`flat_map`, `interleave`, `window`), padding and bucketing, `shard`, `scan`, `rebatch`,
`unique`, and the consumers `reduce` and `get_single_element`."""
from __future__ import annotations

import collections
import itertools

import numpy as np

from kgraph.data.structure import call, map_structure, normalize, stack

INFINITE, UNKNOWN = -1, -2


def _pad_to(array, shape, value):
    if array.ndim != len(shape):
        raise ValueError(f"padded_batch: an element of shape {array.shape} cannot be padded to "
                         f"{tuple(shape)} (different rank).")
    if any(a > s for a, s in zip(array.shape, shape)):
        raise ValueError(f"padded_batch: an element of shape {array.shape} is larger than the "
                         f"padded shape {tuple(shape)}.")
    out = np.full(shape, value, dtype=array.dtype)
    out[tuple(slice(0, n) for n in array.shape)] = array
    return out


def pad_and_stack(chunk, padded_shapes=None, padding_values=None):
    """Stack a list of elements, padding every leaf to the batch's largest shape (or to
    `padded_shapes`, whose `None` dimensions take the largest)."""
    def pad(*arrays, shape=None, value=None):
        widest = np.max([a.shape for a in arrays], axis=0) if arrays[0].ndim else ()
        target = tuple(int(w) if s is None or s == -1 else int(s)
                       for s, w in zip(shape or widest, widest)) if arrays[0].ndim else ()
        fill = 0 if value is None else np.asarray(value).item()
        if arrays[0].dtype.kind in "SU" and value is None:
            fill = b"" if arrays[0].dtype.kind == "S" else ""
        return stack(*[_pad_to(np.asarray(a), target, fill) for a in arrays])

    structure = chunk[0]
    shapes = padded_shapes if padded_shapes is not None else map_structure(lambda _: None,
                                                                           structure)
    values = padding_values if padding_values is not None else map_structure(lambda _: None,
                                                                             structure)
    return map_structure(lambda shape, value, *arrays: pad(*arrays, shape=shape, value=value),
                         shapes, values, *chunk) if isinstance(structure, (tuple, dict)) else \
        pad(*chunk, shape=shapes, value=values)


def _chunks(iterator, size, drop_remainder):
    while True:
        chunk = list(itertools.islice(iterator, size))
        if not chunk or (drop_remainder and len(chunk) < size):
            return
        yield chunk


class Transformations:
    """Methods of `Dataset` (see `kgraph.data.dataset`)."""

    def flat_map(self, map_func, name=None):
        """`map_func(element)` returns a dataset; their elements, one dataset after another."""
        return self._derive(lambda: (e for element in self for e in call(map_func, element)),
                            0 if self._cardinality == 0 else UNKNOWN, spec=None)

    def interleave(self, map_func, cycle_length=None, block_length=None,
                   num_parallel_calls=None, deterministic=None, name=None):
        """Open `cycle_length` datasets `map_func(element)` at a time and take `block_length`
        elements from each in turn; an exhausted one is replaced by the next input element's
        dataset (in its slot, the turn passing on), as `tf.data` does."""
        from kgraph.data import parallel

        cycle = int(cycle_length) if cycle_length not in (None, -1) else \
            parallel.autotune_workers()
        block = int(block_length or 1)
        if cycle <= 0 or block <= 0:
            raise ValueError(f"interleave: `cycle_length` and `block_length` must be positive. "
                             f"Received: cycle_length={cycle_length}, block_length={block_length}")

        def make():
            inputs = iter(self)
            slots = [iter(call(map_func, e)) for e in itertools.islice(inputs, cycle)]
            while any(s is not None for s in slots):
                for pos, slot in enumerate(slots):
                    if slot is None:
                        continue
                    taken = list(itertools.islice(slot, block))
                    yield from taken
                    if len(taken) < block:
                        following = next(inputs, None)
                        slots[pos] = None if following is None else iter(call(map_func,
                                                                              following))

        return self._derive(make, 0 if self._cardinality == 0 else UNKNOWN, spec=None)

    def padded_batch(self, batch_size, padded_shapes=None, padding_values=None,
                     drop_remainder=False, name=None):
        """Like `batch`, padding every component to the largest shape in the batch (or to
        `padded_shapes`; `None` dimensions take the largest) with `padding_values` (0)."""
        batch_size = _positive(batch_size, "batch_size")

        def make():
            for chunk in _chunks(iter(self), batch_size, drop_remainder):
                yield pad_and_stack(chunk, padded_shapes, padding_values)

        return self._derive(make, _batched(self._cardinality, batch_size, drop_remainder),
                            spec=None)

    def bucket_by_sequence_length(self, element_length_func, bucket_boundaries,
                                  bucket_batch_sizes, padded_shapes=None, padding_values=None,
                                  pad_to_bucket_boundary=False, no_padding=False,
                                  drop_remainder=False, name=None):
        """Group elements by `element_length_func(element)` into buckets split at
        `bucket_boundaries` (bucket i holds lengths in [b[i-1], b[i])), and emit a padded batch
        of `bucket_batch_sizes[i]` elements whenever bucket i is full; the partial buckets
        follow at the end, in bucket order (unless `drop_remainder`)."""
        bounds = [int(b) for b in bucket_boundaries]
        sizes = [_positive(b, "bucket_batch_sizes") for b in bucket_batch_sizes]
        if len(sizes) != len(bounds) + 1 or bounds != sorted(bounds):
            raise ValueError(f"bucket_by_sequence_length: needs increasing boundaries and one "
                             f"more batch size than boundaries. Received: boundaries={bounds}, "
                             f"bucket_batch_sizes={sizes}")

        def emit(bucket, chunk):
            if no_padding:
                return map_structure(stack, *chunk)
            shapes = padded_shapes
            if pad_to_bucket_boundary and bucket < len(bounds):
                shapes = map_structure(lambda a: (bounds[bucket] - 1,) + (None,) * (
                    np.ndim(a) - 1) if np.ndim(a) else (), chunk[0])
            return pad_and_stack(chunk, shapes, padding_values)

        def make():
            buckets = [[] for _ in sizes]
            for element in self:
                length = int(np.asarray(call(element_length_func, element)))
                i = int(np.searchsorted(bounds, length, side="right"))
                buckets[i].append(element)
                if len(buckets[i]) == sizes[i]:
                    yield emit(i, buckets[i])
                    buckets[i] = []
            for i, rest in enumerate(buckets):
                if rest and not drop_remainder:
                    yield emit(i, rest)

        return self._derive(make, 0 if self._cardinality == 0 else UNKNOWN, spec=None)

    def shard(self, num_shards, index, name=None):
        """Every `num_shards`-th element, starting at `index` (one worker's part)."""
        num_shards = _positive(num_shards, "num_shards")
        if not 0 <= int(index) < num_shards:
            raise ValueError(f"shard: `index` must be in [0, num_shards). Received: "
                             f"index={index}, num_shards={num_shards}")
        card = self._cardinality
        if card >= 0:
            card = (card - int(index) + num_shards - 1) // num_shards
        return self._derive(lambda: itertools.islice(iter(self), int(index), None, num_shards),
                            card)

    def window(self, size, shift=None, stride=1, drop_remainder=False, name=None):
        """Windows of `size` elements taken every `stride`, starting every `shift` (default
        `size`) elements. Each window is a structure of datasets shaped like an element, so
        `ds.window(3).flat_map(lambda w: w.batch(3))` gives the windows as batches."""
        from kgraph.data.dataset import Dataset

        size, stride = _positive(size, "size"), _positive(stride, "stride")
        shift = _positive(shift if shift is not None else size, "shift")
        span = (size - 1) * stride + 1

        def as_datasets(elements):
            return map_structure(lambda *values: Dataset.from_tensor_slices(np.stack(values)),
                                 *elements)

        def make():
            buffer, start, position = collections.deque(), 0, 0
            for element in self:
                buffer.append((position, element))
                position += 1
                while buffer and buffer[0][0] < start:
                    buffer.popleft()
                if position - start == span:
                    yield as_datasets([e for p, e in buffer if (p - start) % stride == 0])
                    start += shift
            while not drop_remainder and start < position:
                while buffer and buffer[0][0] < start:
                    buffer.popleft()
                yield as_datasets([e for p, e in buffer if (p - start) % stride == 0][:size])
                start += shift

        return self._derive(make, _windowed(self._cardinality, span, shift, drop_remainder),
                            spec=None)

    def scan(self, initial_state, scan_func, name=None):
        """Carry a state through the elements: `scan_func(state, element)` returns
        `(new_state, output)`; the outputs are the new dataset."""
        def make():
            state = normalize(initial_state, True)
            for element in self:
                args = (element,) if not isinstance(element, tuple) else element
                state, output = scan_func(state, *args)
                yield normalize(output, True)

        return self._derive(make, spec=None)

    def rebatch(self, batch_size, drop_remainder=False, name=None):
        """Re-cut batched elements into batches of `batch_size` rows."""
        return self.unbatch().batch(batch_size, drop_remainder=drop_remainder)

    def unique(self, name=None):
        """The elements (scalars or byte strings) without repeats, in first-seen order."""
        def make():
            seen = set()
            for element in self:
                key = np.asarray(element)
                if key.ndim:
                    raise TypeError(f"unique() supports scalar elements only. Received an "
                                    f"element of shape {key.shape}.")
                if key.item() not in seen:
                    seen.add(key.item())
                    yield element

        return self._derive(make, 0 if self._cardinality == 0 else UNKNOWN)

    def reduce(self, initial_state, reduce_func, name=None):
        """`reduce_func(state, element)` folded over the elements, from `initial_state`."""
        state = normalize(initial_state, True)
        for element in self:
            args = (element,) if not isinstance(element, tuple) else element
            state = normalize(reduce_func(state, *args), True)
        return state

    def get_single_element(self, name=None):
        """The only element of a one-element dataset (a ValueError otherwise)."""
        first = list(itertools.islice(iter(self), 2))
        if len(first) != 1:
            raise ValueError(f"get_single_element() needs a dataset of exactly one element; "
                             f"this one has {'none' if not first else 'more than one'}.")
        return first[0]

    def options(self):
        """The dataset's `Options` (accepted and kept; they tune nothing here)."""
        return getattr(self, "_options", None) or Options()

    def with_options(self, options, name=None):
        derived = self._derive(self._make)
        derived._options = options
        return derived


class Options:
    """`tf.data.Options`: settable attributes, accepted for compatibility (threading, autotune
    and optimisation choices are made by kgraph itself)."""

    def __init__(self):
        self.deterministic = None
        self.experimental_distribute = _Namespace()
        self.experimental_optimization = _Namespace()
        self.threading = _Namespace()
        self.autotune = _Namespace()

    def merge(self, options):
        return options


class _Namespace:
    def __getattr__(self, name):
        return None


def _positive(value, name):
    if value is None or int(value) <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={value!r}")
    return int(value)


def _windowed(card, span, shift, drop_remainder):
    """`window`'s cardinality, as TensorFlow's: a window starts every `shift` elements; with
    `drop_remainder` only the windows whose `span` fits do."""
    if card < 0:
        return card
    if drop_remainder:
        return 0 if card < span else (card - span) // shift + 1
    return -(-card // shift)


def _batched(card, batch_size, drop_remainder):
    if card < 0:
        return card
    return card // batch_size if drop_remainder else -(-card // batch_size)
