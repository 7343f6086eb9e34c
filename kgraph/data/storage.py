"""Datasets on disk: `Dataset.save`/`load`, `cache(filename)` and `snapshot(path)`.

A saved dataset is a directory: `spec.json` (the element structure, leaf dtypes, the element
count) and `shard-NNNNN.npz` files of up to `SHARD_ELEMENTS` elements each, read back one
shard at a time (so loading is as lazy as the pipeline that wrote it). Files are plain npz,
loaded with `allow_pickle=False`; a directory is complete only once `spec.json` is written
(it is renamed into place last)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np

from kgraph.data.structure import leaves

SHARD_ELEMENTS = 256
_SPEC = "spec.json"


class DatasetFileError(ValueError):
    """A saved dataset directory that is missing, incomplete or not written by `save`."""


def _describe(element):
    if isinstance(element, dict):
        return {"dict": {k: _describe(v) for k, v in element.items()}}
    if isinstance(element, tuple):
        return {"tuple": [_describe(v) for v in element]}
    return {"leaf": True}


def _rebuild(description, values):
    if "dict" in description:
        return {k: _rebuild(v, values) for k, v in description["dict"].items()}
    if "tuple" in description:
        return tuple(_rebuild(v, values) for v in description["tuple"])
    return next(values)


def _write_shard(directory, number, elements):
    arrays = {}
    for i, element in enumerate(elements):
        for j, leaf in enumerate(leaves(element)):
            leaf = np.asarray(leaf)
            if leaf.dtype.kind == "O":
                raise TypeError(f"Dataset.save: element {number * SHARD_ELEMENTS + i} holds an "
                                f"object array, which cannot be saved without pickle.")
            arrays[f"e{i}_{j}"] = leaf
    np.savez(os.path.join(directory, f"shard-{number:05d}.npz"), **arrays)


def write_elements(dataset, path):
    """Iterate `dataset` once, writing it to the directory `path` (atomically: a temporary
    sibling directory renamed into place once complete); yield the elements as they pass."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".partial-", dir=parent)
    description, count, pending, shards = None, 0, [], 0
    try:
        for element in dataset:
            description = description or _describe(element)
            pending.append(element)
            count += 1
            if len(pending) == SHARD_ELEMENTS:
                _write_shard(staging, shards, pending)
                shards, pending = shards + 1, []
            yield element
        if pending:
            _write_shard(staging, shards, pending)
            shards += 1
        with open(os.path.join(staging, _SPEC), "w") as f:
            json.dump({"structure": description, "count": count, "shards": shards}, f)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


def is_complete(path):
    return os.path.isfile(os.path.join(path, _SPEC))


def read_spec(path):
    if not is_complete(path):
        raise DatasetFileError(f"{path!r} is not a saved dataset: {_SPEC} is missing (the "
                               f"directory does not exist or its writing never finished).")
    with open(os.path.join(path, _SPEC)) as f:
        return json.load(f)


def read_elements(path):
    """The elements saved in `path`, one shard in memory at a time."""
    spec = read_spec(path)
    for number in range(spec["shards"]):
        with np.load(os.path.join(path, f"shard-{number:05d}.npz"), allow_pickle=False) as shard:
            names = sorted({k.split("_")[0] for k in shard.files}, key=lambda k: int(k[1:]))
            for name in names:
                width = sum(1 for k in shard.files if k.split("_")[0] == name)
                yield _rebuild(spec["structure"] or {"leaf": True},
                               iter([shard[f"{name}_{j}"] for j in range(width)]))


def save(dataset, path):
    """Write every element of `dataset` under the directory `path`."""
    for _ in write_elements(dataset, path):
        pass


def load(path):
    """A dataset of the elements `save` wrote to `path` (known cardinality)."""
    from kgraph.data.dataset import Dataset

    count = read_spec(path)["count"]
    return Dataset._new(lambda: read_elements(path), count)


def cached_on_disk(dataset, path):
    """`dataset.cache(path)`: the first complete pass writes `path`; later passes read it."""
    def make():
        if is_complete(path):
            return read_elements(path)
        return write_elements(dataset, path)

    return dataset._derive(make)
