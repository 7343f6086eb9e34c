"""Datasets read from files and mixed from other datasets: `list_files`, `TextLineDataset`,
HDF5 (`Dataset.from_hdf5`), `sample_from_datasets`, `choose_from_datasets`."""
from __future__ import annotations

import glob
import os

import numpy as np

UNKNOWN = -2


def _dataset():
    from kgraph.data.dataset import Dataset

    return Dataset


def _seed(seed):
    from kgraph import random as krandom

    return int(krandom.generator().integers(0, 2**63 - 1)) if seed is None else int(seed)


def list_files(file_pattern, shuffle=None, seed=None, name=None):
    """The file names matching `file_pattern` (a glob, or a list of them) as byte strings;
    shuffled at every iteration unless `shuffle=False` (sorted then)."""
    from kgraph import random as krandom

    patterns = [file_pattern] if isinstance(file_pattern, (str, bytes, os.PathLike)) \
        else list(file_pattern)
    names = sorted({os.fsencode(p) for pattern in patterns
                    for p in glob.glob(os.fsdecode(pattern))})
    if not names:
        raise FileNotFoundError(f"list_files: no files match {file_pattern!r}.")
    base, epochs = _seed(seed), krandom.IterationCounter()  # restored by BackupAndRestore

    def make():
        order = np.arange(len(names))
        if shuffle is not False:
            order = np.random.default_rng([base, next(epochs)]).permutation(len(names))
        return (np.asarray(names[i]) for i in order)

    return _dataset()._new(make, len(names))


def _text_lines(filename):
    with open(os.fsdecode(filename), "rb") as f:
        for line in f:
            yield np.asarray(line.rstrip(b"\r\n"))


def TextLineDataset(filenames, compression_type=None, buffer_size=None, num_parallel_reads=None,
                    name=None):
    """The lines of one or more text files (byte strings without the line ending), file after
    file. `compression_type` "GZIP" reads gzip files."""
    if isinstance(filenames, np.ndarray) and filenames.ndim == 0:
        filenames = filenames.item()  # an element of `list_files` (interleave)
    files = [filenames] if isinstance(filenames, (str, bytes, os.PathLike)) else [
        np.asarray(f).item() if isinstance(f, np.ndarray) else f for f in filenames]
    reader = _text_lines
    if compression_type == "GZIP":
        import gzip

        def reader(filename):
            with gzip.open(os.fsdecode(filename), "rb") as f:
                for line in f:
                    yield np.asarray(line.rstrip(b"\r\n"))
    elif compression_type not in (None, ""):
        raise ValueError(f"TextLineDataset: compression_type must be None, '' or 'GZIP'. "
                         f"Received: {compression_type!r}")
    for f in files:
        if not os.path.isfile(os.fsdecode(f)):
            raise FileNotFoundError(f"TextLineDataset: no such file: {os.fsdecode(f)!r}")
    return _dataset()._new(lambda: (line for f in files for line in reader(f)), UNKNOWN)


def from_hdf5(filename, keys, chunk_rows=None):
    """Rows of HDF5 datasets `keys` (one name, or a tuple/dict of names with the same length),
    read from `filename` one chunk of rows at a time (the file's chunking, or 1024 rows), so
    an HDF5 file larger than memory streams.

    Example:
        >>> ds = Dataset.from_hdf5("train.h5", ("images", "labels")).batch(32)
    """
    import h5py

    structure = keys if isinstance(keys, (tuple, dict)) else None
    names = list(keys.values()) if isinstance(keys, dict) else list(keys) if structure else [keys]
    with h5py.File(filename, "r") as f:
        missing = [k for k in names if k not in f]
        if missing:
            raise KeyError(f"from_hdf5: {filename!r} has no dataset {missing[0]!r}; it holds "
                           f"{sorted(f.keys())}.")
        lengths = {f[k].shape[0] for k in names}
        if len(lengths) != 1:
            raise ValueError(f"from_hdf5: the datasets {names} of {filename!r} differ in length "
                             f"({sorted(lengths)}).")
        rows = lengths.pop()
        step = int(chunk_rows or (f[names[0]].chunks or (1024,))[0])

    def make():
        with h5py.File(filename, "r") as f:
            for lo in range(0, rows, step):
                parts = [f[k][lo:lo + step] for k in names]
                for i in range(len(parts[0])):
                    values = [p[i] for p in parts]
                    if structure is None:
                        yield values[0]
                    elif isinstance(structure, dict):
                        yield dict(zip(structure, values))
                    else:
                        yield tuple(values)

    return _dataset()._new(make, rows)


def sample_from_datasets(datasets, weights=None, seed=None, stop_on_empty_dataset=False,
                         rerandomize_each_iteration=None):
    """Elements drawn at random from `datasets` with probabilities `weights` (uniform by
    default). An exhausted dataset leaves the draw (the others' weights renormalised) unless
    `stop_on_empty_dataset`, which ends the result there."""
    from kgraph import random as krandom

    weights = np.full(len(datasets), 1.0) if weights is None else np.asarray(weights, "f8")
    if len(weights) != len(datasets) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"sample_from_datasets: needs one non-negative weight per dataset "
                         f"(not all zero). Received: weights={weights.tolist()} for "
                         f"{len(datasets)} datasets")
    base, epochs = _seed(seed), krandom.IterationCounter()  # restored by BackupAndRestore

    def make():
        rng = np.random.default_rng([base, next(epochs)])
        iterators, live = [iter(d) for d in datasets], weights.copy()
        while live.sum() > 0:
            i = int(rng.choice(len(live), p=live / live.sum()))
            element = next(iterators[i], _END)
            if element is not _END:
                yield element
            elif stop_on_empty_dataset:
                return
            else:
                live[i] = 0

    return _dataset()._new(make, UNKNOWN)


def choose_from_datasets(datasets, choice_dataset, stop_on_empty_dataset=True):
    """For each index `i` of `choice_dataset`, the next element of `datasets[i]`."""
    def make():
        iterators = [iter(d) for d in datasets]
        for choice in choice_dataset:
            i = int(np.asarray(choice))
            if not 0 <= i < len(iterators):
                raise ValueError(f"choose_from_datasets: choice {i} is out of range for "
                                 f"{len(iterators)} datasets.")
            element = next(iterators[i], _END)
            if element is _END:
                if stop_on_empty_dataset:
                    return
                continue
            yield element

    return _dataset()._new(make, UNKNOWN)


_END = object()
