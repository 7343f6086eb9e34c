"""Turn what users pass to fit/evaluate/predict into batches of numpy arrays.

Numpy arrays (single, list or dict) are batched by index: shuffled globally each epoch when
asked, never for validation. Python iterables (generators, kgraph.data datasets, PyDataset-like
objects) yield whole batches."""
from __future__ import annotations

import math
import sys

import numpy as np

from kgraph import config
from kgraph.keras.tree import flatten, pack_like


class DataError(ValueError):
    """Bad data given to fit/evaluate/predict."""


def _as_array(a, what):
    if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
        a = a.numpy()
    try:
        arr = np.asarray(a)
    except Exception as e:  # noqa: BLE001
        raise DataError(f"`{what}` could not be converted to an array: {e}") from None
    if arr.dtype.kind in "OUS" and what.startswith("x"):
        # strings for a model's string Inputs: its host prefix takes them (a model without
        # one refuses them before its first step, Model._host_batch)
        return arr
    if arr.dtype.kind not in "biuf":
        raise DataError(f"`{what}` must be numeric arrays. Received an array of dtype "
                        f"{arr.dtype} and shape {arr.shape}")
    if arr.dtype == np.float64:
        arr = arr.astype(config.floatx())
    return arr


def _nested_numbers(data) -> bool:
    """A (nested) Python list or tuple of numbers (or of strings, for a string Input): one
    array, not a structure of inputs."""
    if isinstance(data, (list, tuple)):
        return bool(data) and all(_nested_numbers(item) for item in data)
    return isinstance(data, (int, float, np.number, str, bytes)) and \
        not isinstance(data, np.ndarray)


def lists_to_arrays(data):
    """`data` with every nested list of numbers turned into one numpy array (Keras accepts
    `fit([[0, 1], [1, 0]], [0, 1])`), and structures of arrays kept as they are."""
    if data is None or isinstance(data, np.ndarray):
        return data
    if _nested_numbers(data):
        return np.asarray(data)
    if isinstance(data, dict):
        return {k: lists_to_arrays(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(lists_to_arrays(v) for v in data)
    return data


def check_epochs(epochs, initial_epoch=0):
    """Raise a DataError naming the argument when `epochs`/`initial_epoch` is not an int."""
    for name, value in (("epochs", epochs), ("initial_epoch", initial_epoch)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise DataError(f"`{name}` must be a non-negative integer. Received: "
                            f"{name}={value!r} (of type {type(value).__name__})")


def is_array_data(x) -> bool:
    return all(isinstance(leaf, (np.ndarray, list, tuple, int, float)) or hasattr(leaf, "__array__")
               for leaf in flatten(x)) and not _is_iterable_dataset(x)


def _is_iterable_dataset(x):
    return (hasattr(x, "__iter__") or hasattr(x, "__getitem__") and hasattr(x, "__len__")) and \
        not isinstance(x, (np.ndarray, list, tuple, dict))


class ArrayAdapter:
    def __init__(self, x, y=None, sample_weight=None, batch_size=32, shuffle=False,
                 class_weight=None, steps=None):
        x, y, sample_weight = (lists_to_arrays(d) for d in (x, y, sample_weight))
        self.x = pack_like(x, [_as_array(a, "x") for a in flatten(x)])
        self.y = None if y is None else pack_like(y, [_as_array(a, "y") for a in flatten(y)])
        self.sample_weight = None if sample_weight is None else pack_like(
            sample_weight, [_as_array(a, "sample_weight") for a in flatten(sample_weight)])
        arrays = flatten(self.x) + flatten(self.y) + flatten(self.sample_weight)
        arrays = [a for a in arrays if a is not None]
        sizes = {len(a) if a.ndim else 1 for a in arrays}
        if len(sizes) > 1:
            raise DataError(
                "Data cardinality is ambiguous. Make sure all arrays contain the same number "
                f"of samples. Received: x sizes: {[len(a) for a in flatten(self.x)]}, y sizes: "
                f"{[len(a) for a in flatten(self.y)] if y is not None else None}")
        self.num_samples = sizes.pop()
        if self.num_samples == 0:
            raise DataError(f"The data holds 0 samples: there is nothing to run on. Received: "
                            f"x of shape {flatten(self.x)[0].shape}")
        if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise DataError(f"`batch_size` must be a positive integer. Received: "
                            f"batch_size={batch_size!r}")
        self.batch_size = int(batch_size or 32)
        self.shuffle = shuffle
        self.steps = steps
        if class_weight is not None:
            self.sample_weight = _class_weights_to_sample_weights(self.y, class_weight,
                                                                  self.sample_weight)

    @property
    def num_batches(self):
        n = math.ceil(self.num_samples / self.batch_size)
        return min(n, self.steps) if self.steps is not None else n

    def _spans(self):
        """(order, lo, hi) of each batch of an epoch: its samples are `order[lo:hi]` (the
        epoch's shuffle) or, unshuffled (`order` None), `lo:hi`."""
        from kgraph import random as krandom

        n = self.num_samples
        order = krandom.generator().permutation(n) if self.shuffle else None
        for i in range(self.num_batches):
            yield order, i * self.batch_size, min((i + 1) * self.batch_size, n)

    def index_batches(self):
        """The sample indices of each batch of an epoch, the ones `batches` would gather (the
        same shuffle), for a step that gathers them itself (execution.Resident)."""
        for order, lo, hi in self._spans():
            yield order[lo:hi] if order is not None else np.arange(lo, hi)

    def batches(self):
        for order, lo, hi in self._spans():
            take = (lambda a: a[order[lo:hi]]) if order is not None else (lambda a: a[lo:hi])
            yield (pack_like(self.x, [take(a) for a in flatten(self.x)]),
                   None if self.y is None else pack_like(self.y, [take(a) for a in flatten(self.y)]),
                   None if self.sample_weight is None else pack_like(
                       self.sample_weight, [take(a) for a in flatten(self.sample_weight)]))

    def close(self):
        """Nothing to stop: arrays are sliced in the training loop's thread."""


def _class_weights_to_sample_weights(y, class_weight, sample_weight):
    ys = flatten(y)
    if len(ys) != 1:
        raise DataError("`class_weight` is only supported for models with a single output.")
    labels = ys[0]
    if labels.ndim > 1 and labels.shape[-1] > 1:
        labels = np.argmax(labels, axis=-1)
    elif labels.ndim > 1:
        labels = labels[..., 0]
    labels = labels.astype(np.int64)
    unknown = set(np.unique(labels).tolist()) - set(int(k) for k in class_weight)
    weights = np.array([class_weight.get(int(c), 1.0) for c in labels.reshape(-1)],
                       dtype=np.float32).reshape(labels.shape)
    if unknown:
        pass  # Keras gives classes absent from class_weight a weight of 1
    if sample_weight is not None:
        weights = weights * flatten(sample_weight)[0].astype(np.float32)
    return weights


class IterableAdapter:
    """Batches come from an iterable: tuples (x,), (x, y) or (x, y, sample_weight). With
    `steps`, each epoch takes the next `steps` batches and carries on from there (as tf.data
    does), restarting the iterable only when it is exhausted.

    Nothing is read ahead here beyond what the source itself prefetches (`Dataset.prefetch`,
    PyDataset workers), and nothing is kept: memory holds a bounded number of batches. An
    unsized source is not counted: `num_batches` is None (the progress bar shows no total)."""

    def __init__(self, data, steps=None):
        self.data, self.steps = data, steps
        n = _length(data)
        self.num_batches = min(n, steps) if (n is not None and steps) else (n or steps)
        self._iterator = None
        self._current = None  # (index, error already in flight) of the batch being run

    def _source(self):
        """A fresh pass over the data (a PyDataset's epoch, read by its workers)."""
        source = self.data
        if _is_indexed(source):
            from kgraph.keras.utils.py_dataset import iterate_batches

            getattr(source, "on_epoch_begin", lambda: None)()
            return _with_epoch_end(source, iterate_batches(source))
        return iter(source)

    def batches(self):
        stream = self._source() if self.steps is None else self._continued()
        self._open, self._current = stream, None
        try:
            for index, item in enumerate(stream):
                batch = _unpack(item, index)
                self._current = (index, sys.exc_info()[1])
                yield batch
            self._current = None
        finally:
            if self.steps is None:
                _close(stream)

    def _continued(self):
        for _ in range(self.steps):
            item = next(self._iterator, _END) if self._iterator is not None else _END
            if item is _END:
                _close(self._iterator)
                self._iterator = self._source()
                item = next(self._iterator, _END)
                if item is _END:
                    return
            yield item

    def close(self):
        """Stop the workers of the pass in progress (an epoch ended by an exception) and of a
        source kept open across epochs (`steps_per_epoch`): threads and processes joined."""
        for stream in (getattr(self, "_open", None), self._iterator):
            _close(stream)
        self._open = self._iterator = None
        current, self._current = self._current, None
        _name_the_rejected_batch(current)


_END = object()


def _length(data):
    try:
        n = len(data)
    except (TypeError, NotImplementedError):  # infinite or unknown length
        return None
    return n if n >= 0 else None


def _is_indexed(source):
    """A PyDataset / Sequence: batches by index."""
    from kgraph.keras.utils.py_dataset import PyDataset

    return isinstance(source, PyDataset) or (hasattr(source, "__getitem__") and
                                             hasattr(source, "__len__") and
                                             not hasattr(source, "__iter__"))


def _with_epoch_end(source, batches):
    yield from batches
    getattr(source, "on_epoch_end", lambda: None)()


def _close(iterator):
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _name_the_rejected_batch(current):
    """Re-raise as a DataError naming the batch the IncompatibleInputError of a model that
    rejects a streamed batch (shape or rank), raised deep in the step, where the batch's
    index is unknown. Called by `close`, which fit/evaluate/predict run while that error propagates;
    `current` is (index of the batch being run, the error already in flight when it was
    yielded, which is not the batch's)."""
    error = sys.exc_info()[1]
    if current is None or error is None or error is current[1]:
        return
    from kgraph.keras.layers.base import IncompatibleInputError

    if isinstance(error, IncompatibleInputError):
        raise DataError(f"{error} (batch {current[0]} of the dataset)") from error


def _unpack(item, index=None):
    where = "" if index is None else f" (batch {index} of the dataset)"
    if isinstance(item, list) and 1 <= len(item) <= 3 and not _nested_numbers(item):
        item = tuple(item)  # Keras accepts [x, y] batches from a generator
    if not isinstance(item, tuple):
        item = (item,)
    if len(item) > 3:
        raise DataError(f"A dataset or generator must yield (x,), (x, y) or (x, y, "
                        f"sample_weight); it yielded a tuple of {len(item)} items{where}.")
    x, y, sw = (tuple(item) + (None, None))[:3]
    return tuple(None if part is None else
                 pack_like(part, [_as_array(a, name + where) for a in flatten(part)])
                 for part, name in ((x, "x"), (y, "y"), (sw, "sample_weight")))


def make_adapter(x, y=None, sample_weight=None, batch_size=None, shuffle=False,
                 class_weight=None, steps=None):
    if x is None:
        raise DataError("No data was given: `x` is None.")
    if _is_iterable_dataset(x):
        if y is not None:
            raise DataError("`y` must not be given when `x` is a dataset or generator that "
                            "yields (x, y) batches.")
        return IterableAdapter(x, steps)
    return ArrayAdapter(x, y, sample_weight, batch_size, shuffle, class_weight, steps)


def split_validation(x, y, sample_weight, validation_split):
    """The LAST `validation_split` fraction of the arrays, unshuffled (Keras semantics)."""
    if not 0 < validation_split < 1:
        raise DataError(f"`validation_split` must be between 0 and 1. Received: "
                        f"validation_split={validation_split}")
    if _is_iterable_dataset(x):
        raise DataError(f"`validation_split` is only supported for data passed as numpy "
                        f"arrays, not for datasets, generators or PyDatasets (received "
                        f"{type(x).__name__}), which are not indexable. Pass a separate "
                        f"`validation_data` instead, e.g. from `keras.utils.split_dataset`.")
    n = len(flatten(x)[0])
    split_at = int(math.floor(n * (1.0 - validation_split)))
    if split_at == 0 or split_at == n:
        raise DataError(f"Training data contains {n} samples, which is not sufficient to "
                        f"split it into a validation and training set as specified by "
                        f"`validation_split={validation_split}`.")

    def cut(data, part):
        if data is None:
            return None
        return pack_like(data, [np.asarray(a)[:split_at] if part == 0 else np.asarray(a)[split_at:]
                                for a in flatten(data)])

    return (cut(x, 0), cut(y, 0), cut(sample_weight, 0)), (cut(x, 1), cut(y, 1),
                                                            cut(sample_weight, 1))
