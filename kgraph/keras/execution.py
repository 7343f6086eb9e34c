"""How batches reach the executor: `steps_per_execution` groups and the static target's rules.

With `compile(steps_per_execution=K)`, K batches of equal shape are stacked on a new leading
axis and run as ONE executor call of a graph holding K unrolled training steps, each step
reading the parameters, slots and metric state the previous one wrote; Python sees only the
last step's logs, as Keras' callbacks do. A group whose batches differ in shape (the last,
partial batch of an epoch) runs step by step.

The static ("TPU-like") target compiles every step graph with fixed shapes, batch dimension
included, so the compiler plans all memory ahead of time. Data must then have a static batch:
arrays whose sample count divides by the batch size, or datasets batched with
`drop_remainder=True`. `predict` pads a partial last batch and drops the padded rows.
"""
from __future__ import annotations

import numpy as np

from kgraph.keras.tree import flatten, pack_like

STATIC_TARGETS = ("static", "static:cuda")


class StaticShapeError(ValueError):
    """Data whose batch dimension is not static, given to a model compiled for a static
    target."""


def groups(batches, size):
    """Lists of up to `size` consecutive batches."""
    group = []
    for batch in batches:
        group.append(batch)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def leaves(batch):
    return [a for a in flatten(batch) if a is not None]


class Resident:
    """An in-memory dataset that `fit` feeds whole to steps that gather their own batches
    (StepPrograms.trace_step's `indexed`): each step is fed its batch's sample indices and
    the arrays' buffers, bound once. On the host those buffers are the arrays' own memory,
    so no batch is copied out on the host (onnxruntime's Gather copies it inside the step).

    `batch`: (x, y, sample_weight) structures of whole arrays; `leaves`: their arrays."""

    def __init__(self, batch, arrays):
        self.batch, self.leaves = batch, arrays
        # the programs fed these arrays: their input checks passed on the whole arrays, and
        # they let go of them when the epoch ends
        self.programs = set()
        self._fed = None  # (upload, the arrays' buffers)
        self._index = {}  # index shape -> (array, its buffer): rewritten, bound once

    def feeds(self, upload, index):
        """The buffers to feed a step for the batch of sample indices `index`: the arrays'
        (made once) and one holding `index`, the same buffer for every batch of its shape
        (its array rewritten in place: the step reads it during the call alone)."""
        if self._fed is None or self._fed[0] is not upload:
            self._fed, self._index = (upload, [upload(a) for a in self.leaves]), {}
        held = self._index.get(index.shape)
        if held is None:
            array = np.empty(index.shape, np.int64)
            held = self._index[index.shape] = (array, upload(array))
        held[0][...] = index
        return self._fed[1] + [held[1]]


def stack(group):
    """One batch whose every array is the group's arrays stacked on a new axis 0, or None when
    the batches differ in structure or shape."""
    first = group[0]
    shapes = [tuple(a.shape) for a in leaves(first)]
    if any([tuple(a.shape) for a in leaves(b)] != shapes for b in group[1:]):
        return None
    parts = []
    for i, part in enumerate(first):
        if part is None:
            parts.append(None)
            continue
        stacked = [np.stack(arrays) for arrays in zip(*[flatten(b[i]) for b in group])]
        parts.append(pack_like(part, stacked))
    return tuple(parts)


def check_static_adapter(adapter, what):
    """Raise a StaticShapeError when `adapter` (array or iterable) can yield a batch of
    another size than its others."""
    if hasattr(adapter, "num_samples"):
        n, size = adapter.num_samples, adapter.batch_size
        used = adapter.num_batches * size
        if n % size and used > n:
            raise StaticShapeError(
                f"{what}(): the static target compiles a fixed batch dimension (dimension 0 "
                f"of every input), but {n} samples in batches of batch_size={size} leave a "
                f"last batch of {n % size}. Give a sample count divisible by the batch size, "
                f"or a dataset batched with `drop_remainder=True`.")
        return
    spec = getattr(adapter.data, "element_spec", None)
    if spec is None:
        return  # generators: every batch is checked against the first when it arrives
    for i, leaf in enumerate(flatten(spec)):
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) and shape[0] is None:
            raise StaticShapeError(
                f"{what}(): the static target compiles a fixed batch dimension, but dimension "
                f"0 of dataset element {i} is unknown (shape {tuple(shape)}). Batch the "
                f"dataset with `.batch(N, drop_remainder=True)`.")


def check_static_batch(expected, array, what):
    """The batch size of `array` (an input of one step), which must equal `expected`."""
    size = len(array)
    if expected is not None and size != expected:
        raise StaticShapeError(
            f"{what}(): the static target was compiled for batches of {expected} samples "
            f"(dimension 0 of every input), but a batch of {size} arrived. Give every batch "
            f"{expected} samples (`drop_remainder=True` for datasets).")
    return size


def pad_batch(x, size):
    """`x` with its batch padded to `size` rows by repeating the last row."""
    def pad(a):
        extra = size - len(a)
        return np.concatenate([a, np.repeat(a[-1:], extra, axis=0)]) if extra > 0 else a
    return pack_like(x, [pad(a) for a in flatten(x)])
