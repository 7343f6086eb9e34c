"""`tf.data.experimental`: tuning and cardinality constants, dataset mixing, save/load, and
the CSV reader `make_csv_dataset`."""
from __future__ import annotations

import csv
import io
import os

import numpy as np

from kgraph.data.dataset import (AUTOTUNE, INFINITE_CARDINALITY, UNKNOWN_CARDINALITY,  # noqa: F401
                                 Dataset)
from kgraph.data.sources import choose_from_datasets, sample_from_datasets  # noqa: F401
from kgraph.data.storage import load, save  # noqa: F401


def cardinality(dataset):
    """`dataset.cardinality()`: a count, `INFINITE_CARDINALITY` or `UNKNOWN_CARDINALITY`."""
    return dataset.cardinality()


def _column_type(values, na_value):
    """float32 when every non-missing value parses as a number (int32 when all are integers),
    else bytes: the types `make_csv_dataset` infers from the first rows."""
    present = [v for v in values if v != na_value]
    try:
        numbers = [float(v) for v in present]
    except ValueError:
        return np.bytes_
    if present and all(float(n).is_integer() and "." not in v and "e" not in v.lower()
                       for n, v in zip(numbers, present)):
        return np.int32
    return np.float32


def _rows(filename, field_delim, use_quote_delim, header):
    with open(os.fsdecode(filename), newline="") as f:
        reader = csv.reader(f, delimiter=field_delim,
                            quoting=csv.QUOTE_MINIMAL if use_quote_delim else csv.QUOTE_NONE)
        if header:
            next(reader, None)
        yield from reader


def _header(filename, field_delim):
    with open(os.fsdecode(filename), newline="") as f:
        return next(csv.reader(io.StringIO(f.readline()), delimiter=field_delim))


def make_csv_dataset(file_pattern, batch_size, column_names=None, column_defaults=None,
                     label_name=None, select_columns=None, field_delim=",",
                     use_quote_delim=True, na_value="", header=True, num_epochs=None,
                     shuffle=True, shuffle_buffer_size=10000, shuffle_seed=None,
                     prefetch_buffer_size=None, num_parallel_reads=None, sloppy=False,
                     num_rows_for_inference=100, compression_type=None,
                     ignore_errors=False, encoding="utf-8"):
    """Batches of `(features, label)` read from CSV files, as `tf.data.experimental` does:
    `features` is a dict of column name -> array; column types are inferred from the first
    `num_rows_for_inference` rows (int32, float32 or bytes) unless `column_defaults` gives
    them. `num_epochs=None` repeats forever (TensorFlow's default); `shuffle` shuffles the rows
    of each epoch with a buffer of `shuffle_buffer_size` (reshuffled every epoch, reproducibly
    with `shuffle_seed`).

    Example:
        >>> ds = make_csv_dataset("train.csv", batch_size=32, label_name="y", num_epochs=1)
    """
    files = [os.fsdecode(np.asarray(f).item()) for f in Dataset.list_files(file_pattern,
                                                                          shuffle=False)]
    names = list(column_names) if column_names else _header(files[0], field_delim)
    sample = [row for _, row in zip(range(num_rows_for_inference),
                                    _rows(files[0], field_delim, use_quote_delim, header))]
    types = [type(np.asarray(d).item()) if column_defaults is not None else None
             for d in (column_defaults or names)]
    types = [np.float32 if t is float else np.int32 if t is int else np.bytes_ if t is str
             else _column_type([r[i] for r in sample if i < len(r)], na_value)
             for i, t in enumerate(types)]
    keep = [n for n in names if select_columns is None or n in select_columns]
    if label_name is not None and label_name not in names:
        raise ValueError(f"make_csv_dataset: label_name={label_name!r} is not a column of "
                         f"{files[0]!r}; its columns are {names}.")

    def parse(row, where):
        if len(row) != len(names):
            raise ValueError(f"make_csv_dataset: {where} has {len(row)} fields where the "
                             f"header has {len(names)}.")
        values = {n: np.asarray(v.encode() if t is np.bytes_ else (v if v != na_value else 0),
                                dtype=t) for n, t, v in zip(names, types, row) if n in keep}
        label = values.pop(label_name) if label_name is not None else None
        return values if label is None else (values, label)

    def elements():
        for filename in files:
            for number, row in enumerate(_rows(filename, field_delim, use_quote_delim, header)):
                try:
                    yield parse(row, f"row {number + 1} of {filename!r}")
                except ValueError:
                    if not ignore_errors:
                        raise

    dataset = Dataset.from_generator(elements)
    if shuffle:  # before repeat, as TensorFlow: each epoch is a new order of the same rows
        dataset = dataset.shuffle(shuffle_buffer_size, seed=shuffle_seed)
    if num_epochs != 1:
        dataset = dataset.repeat(num_epochs)
    return dataset.batch(batch_size).prefetch(prefetch_buffer_size or AUTOTUNE)
