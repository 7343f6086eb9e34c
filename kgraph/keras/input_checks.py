"""Checks on a batch before it is fed, for inputs that would otherwise train silently wrong.

Inside the compiled graph an out-of-range class label gives a loss of 0 (the one-hot row is
all zeros) and an out-of-range Embedding index reads another row (a Gather wraps -1 around)
or fails deep inside onnxruntime. So the trainer checks, once per batch and vectorised, the
arrays it can see: the targets of sparse-crossentropy outputs and the inputs that feed an
Embedding layer directly. A plan is made once per compiled step (`plan`); running it
(`run`) costs one min/max per checked array.
"""
from __future__ import annotations

import numpy as np

from kgraph.keras.tree import flatten, pack_like


class InvalidInputError(ValueError):
    """A batch holds a label or an index outside the range its layer or loss accepts."""


def plan(model, kind, x, y) -> list:
    """The checks to run on every batch of a step of `kind` shaped like `x, y` (a list of
    `(side, leaf index, check)`; empty when nothing needs checking)."""
    checks = [("x", i, check) for i, check in _embedding_checks(model, x)]
    if kind != "predict" and y is not None:
        checks += [("y", i, check) for i, check in _label_checks(model, y)]
    return checks


def run(checks, x, y, holder="the batch"):
    """Raise `InvalidInputError` when a batch (or the whole data, `holder`) breaks one of
    the planned checks."""
    leaves = {}
    for side, index, check in checks:
        if side not in leaves:
            leaves[side] = flatten(x) if side == "x" else flatten(y) if y is not None else []
        check(leaves[side][index], holder)


def check_range(values, low, high, what, ignore=None, holder="the batch"):
    """Raise when an integer-valued array has an entry outside `[low, high)`.

    Args:
        values: The array (any shape; floats are checked as the integers they truncate to).
        low, high: The valid range, `high` excluded.
        what: Names the argument and the layer or loss, for the message.
        ignore: A value allowed anywhere (a loss's `ignore_class`).
        holder: What `values` are, for the message.
    """
    values = np.asarray(values)
    if values.size == 0 or values.dtype == bool:
        return
    if ignore is not None:
        values = values[values != ignore]
        if values.size == 0:
            return
    if low == 0 and values.dtype in _UNSIGNED:  # one pass: negatives read as huge unsigned
        if np.maximum.reduce(values.view(_UNSIGNED[values.dtype]), axis=None) < high:
            return
    smallest, largest = values.min(), values.max()
    if smallest >= low and largest < high:
        return
    bad = (smallest if smallest < low else largest).item()
    raise InvalidInputError(f"{what} must lie in [{low}, {high - 1}], but {holder} holds "
                            f"{bad!r}" + (f" (ignore_class={ignore!r} is also allowed)"
                                          if ignore is not None else "") + ".")


_UNSIGNED = {np.dtype(t): np.dtype(t.replace("int", "uint"))
             for t in ("int8", "int16", "int32", "int64")}
_UNSIGNED.update({np.dtype(t): np.dtype(t) for t in ("uint8", "uint16", "uint32", "uint64")})


# -- sparse crossentropy targets -----------------------------------------------------------
def _sparse_loss(loss):
    """`(ignore_class,)` when `loss` is sparse categorical crossentropy, else None."""
    from kgraph.keras.losses import functions

    fn = getattr(loss, "fn", loss)
    if fn is not functions.sparse_categorical_crossentropy:
        return None
    kwargs = getattr(loss, "fn_kwargs", {})
    return (kwargs.get("ignore_class"),)


def _label_checks(model, y):
    compiled = getattr(model, "_compiled_loss", None)
    losses = getattr(compiled, "_losses", None) or []
    outputs = getattr(model, "outputs", None) or []
    ys = flatten(y)
    for i, ((loss, _), target) in enumerate(zip(losses, ys)):
        sparse = _sparse_loss(loss)
        if sparse is None or i >= len(outputs):
            continue
        shape = tuple(outputs[i].shape)
        classes = shape[-1]
        if not isinstance(classes, int):
            continue
        _check_not_one_hot(target, shape, classes, getattr(loss, "name", "loss"))
        what = f"`y` (the targets of output {i}, sparse categorical crossentropy over " \
               f"{classes} classes)"
        yield i, _range_check(0, classes, what, sparse[0])


def _check_not_one_hot(target, shape, classes, name):
    if classes > 1 and target.ndim == len(shape) and target.shape[-1] == classes:
        raise InvalidInputError(
            f"The loss {name!r} takes integer class ids, but `y` looks one-hot encoded: "
            f"targets of shape {tuple(target.shape)} for an output of shape {shape}. Pass "
            f"`np.argmax(y, axis=-1)`, or use `categorical_crossentropy`.")


def _range_check(low, high, what, ignore=None):
    return lambda values, holder: check_range(values, low, high, what, ignore, holder)


# -- Embedding indices ---------------------------------------------------------------------
def _embedding_checks(model, x):
    from kgraph.keras.layers.embedding import Embedding

    positions = _leaf_positions(model, x)
    for i, layer in _input_consumers(model, len(positions)):
        if isinstance(layer, Embedding):
            yield positions[i], _range_check(0, layer.input_dim,
                                             f"The indices fed to Embedding layer "
                                             f"{layer.name!r} (input {i})")


def _leaf_positions(model, x):
    """The position of each model input among the leaves of a batch `x`: a dict batch may
    carry keys the model does not take (a CSV dataset's unused columns), which it ignores."""
    struct = getattr(model, "_inputs_struct", None)
    n_leaves = len(flatten(x))
    if isinstance(x, dict) and isinstance(struct, dict) and set(struct) < set(x):
        positions = pack_like(x, list(range(n_leaves)))
        return flatten({key: positions[key] for key in struct})
    return list(range(n_leaves))


def _input_consumers(model, n_inputs):
    """(input index, layer) for the layers that take a model input as it was fed."""
    stack = getattr(model, "_stack", None)
    if stack is not None:  # Sequential: the first layer takes the only input
        first = [layer for layer in stack if type(layer).__name__ != "InputLayer"]
        return [(0, first[0])] if first and n_inputs == 1 else []
    inputs = getattr(model, "inputs", None) or []
    prefix = getattr(model, "_host_prefix", None)
    if prefix is not None:  # the compiled part is fed the host prefix's outputs
        inputs = prefix.boundary
    ids = {id(t): i for i, t in enumerate(inputs)}
    found = []
    for layer in getattr(model, "layers", []):
        for node in getattr(layer, "_inbound_nodes", []) or []:
            for t in flatten(getattr(node, "inputs", [])):
                if id(t) in ids:
                    found.append((ids[id(t)], layer))
    return found
