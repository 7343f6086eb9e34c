"""The whole state of a `fit` run in one HDF5 file: what `BackupAndRestore` writes and reads.

A state file holds every variable a training step reads, in three groups, each variable a
dataset named by its position: `weights` (`model.weights`), `optimizer`
(`optimizer.variables`: iteration, learning rate, slots) and `metrics/<metric name>`
(accumulators, for a run stopped inside an epoch). The `meta` attribute is JSON: the epoch
and the batches done in it, the logs of the last batch, and the random state (kgraph.random's
generator and pipeline counters as at the start of that epoch, so the epoch's data order is
drawn again; the dropout-key counter as it is now).

Files are written atomically (a temporary file in the same directory, fsync, rename, then an
fsync of the directory), so a process killed at any moment leaves either the previous state
or the new one, never a mix.
"""
from __future__ import annotations

import contextlib
import json
import os

import h5py
import numpy as np

from kgraph.runtime.atomic_file import atomic_write
from kgraph.variables import snapshot_to_numpy

FORMAT = "kgraph-training-state"
VERSION = 1


class TrainingStateError(ValueError):
    """A state file that cannot be read, or that does not fit the model it is restored to."""


def variable_groups(model) -> dict:
    """`{"weights": [...], "optimizer": [...], "metrics/<name>": [...]}`: the variables a
    training step of `model` reads. The optimizer is built first, so its slots exist."""
    optimizer = model.optimizer
    if hasattr(optimizer, "build") and not getattr(optimizer, "built", True):
        optimizer.build(model.trainable_weights)
    groups = {"weights": list(model.weights),
              "optimizer": list(getattr(optimizer, "variables", []))}
    for metric in model.metrics:
        if metric.variables:  # "compile_metrics" has none until the step's first trace
            groups[f"metrics/{metric.name}"] = list(metric.variables)
    return groups


def snapshot_state(model) -> dict:
    """The state of `model` as it is now, in a form later steps leave unchanged (references
    to executor buffers, no copy): what `write_snapshot` writes, possibly from another
    thread while training goes on."""
    return {name: [v.snapshot() for v in variables]
            for name, variables in variable_groups(model).items()}


def write_state(path, model, meta: dict) -> None:
    """Write the state of `model` and the JSON-ready `meta` to `path`, atomically."""
    write_snapshot(path, snapshot_state(model), meta)


def write_snapshot(path, snapshot: dict, meta: dict) -> None:
    """Write a `snapshot_state` and `meta` to `path`, atomically."""
    arrays = {name: [np.asarray(snapshot_to_numpy(b)) for b in buffers]
              for name, buffers in snapshot.items()}

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = VERSION
            f.attrs["meta"] = json.dumps(meta)
            for name, values in arrays.items():
                group = f.create_group(name)
                for i, value in enumerate(values):
                    group.create_dataset(str(i), data=value)

    atomic_write(path, write)
    _fsync_directory(os.path.dirname(os.path.abspath(path)))


def _fsync_directory(directory) -> None:
    """Make the rename durable (power loss); a SIGKILL needs no more than the rename."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_state(path) -> tuple:
    """`(meta, {group name: [arrays]})` read from the state file at `path`.

    Raises:
        TrainingStateError: for a file that is not a kgraph training state.
    """
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != FORMAT:
                raise TrainingStateError(
                    f"{path!r} is not a kgraph training state (format attribute "
                    f"{f.attrs.get('format')!r}, expected {FORMAT!r}).")
            meta = json.loads(f.attrs["meta"])
            arrays = {}
            f.visititems(lambda name, item: _collect(arrays, name, item))
    except (OSError, KeyError, ValueError) as e:
        if isinstance(e, TrainingStateError):
            raise
        raise TrainingStateError(f"Cannot read the training state {path!r}: {e}") from e
    return meta, {name: [values[k] for k in sorted(values, key=int)]
                  for name, values in arrays.items()}


def _collect(arrays, name, item):
    if isinstance(item, h5py.Dataset):
        group, _, index = name.rpartition("/")
        arrays.setdefault(group, {})[index] = item[()]


def assign_group(name, variables, values, path) -> None:
    """Assign `values` to `variables` (one saved group), checking count and shapes.

    Raises:
        TrainingStateError: naming the group, the variable and both shapes on a mismatch.
    """
    if len(variables) != len(values):
        raise TrainingStateError(
            f"The training state {path!r} holds {len(values)} variables for {name!r}, but the "
            f"model has {len(variables)}: it was written by another model. Delete the backup "
            f"directory to start afresh.")
    for variable, value in zip(variables, values):
        if tuple(value.shape) != tuple(variable.shape):
            raise TrainingStateError(
                f"The training state {path!r} holds shape {tuple(value.shape)} for "
                f"{variable.path!r} ({name}), but the model's variable has shape "
                f"{tuple(variable.shape)}. Delete the backup directory to start afresh.")
    for variable, value in zip(variables, values):
        variable.assign(value)
