"""`keras.callbacks.CSVLogger`."""
from __future__ import annotations

import collections.abc
import csv
import os

import numpy as np

from kgraph.distribute.strategy import is_chief
from kgraph.keras.callbacks.callback import Callback


class CSVLogger(Callback):
    """Stream the epoch results to a CSV file.

    The first row is the header, `epoch` (0-based) then the log keys in sorted order; one
    row follows per epoch. Values that are lists or arrays are written as `"[a, b]"`.
    Rows end with `\\r\\n` (Python's `excel` dialect), as in Keras.

    Args:
        filename: Filename of the CSV file, e.g. `'run/log.csv'`.
        separator: String used to separate elements in the CSV file. Defaults to `","`.
        append: `True`: append if the file exists (useful for continuing training);
            `False`: overwrite the existing file. Defaults to `False`.

    Raises:
        ValueError: for a `separator` that is not a one-character string.

    Example:

    ```python
    csv_logger = keras.callbacks.CSVLogger('training.log')
    model.fit(X_train, Y_train, callbacks=[csv_logger])
    ```
    """

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError("CSVLogger: `separator` must be a one-character string. "
                             f"Received: separator={separator!r}")
        self.sep = separator
        self.filename = os.fspath(filename)
        self.append = append
        self.writer = None
        self.keys = None
        self.append_header = True
        self.csv_file = None

    def on_train_begin(self, logs=None):
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        # only the chief of a multi-worker job writes: the others write nowhere
        self.csv_file = open(self.filename if is_chief(self.model) else os.devnull, mode)
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def handle_value(v):
            if isinstance(v, str):
                return v
            if isinstance(v, collections.abc.Iterable) and not (
                    isinstance(v, np.ndarray) and v.ndim == 0):
                return f'"[{", ".join(map(str, v))}]"'
            return v

        if self.keys is None:
            self.keys = sorted(logs.keys())
            # Keep a column for validation metrics the model is expected to produce.
            for name in getattr(self.model, "metrics_names", None) or []:
                if name.startswith("val_") and name not in self.keys:
                    self.keys.append(name)

        if not self.writer:
            class CustomDialect(csv.excel):
                delimiter = self.sep

            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys,
                                         dialect=CustomDialect)
            if self.append_header:
                self.writer.writeheader()

        row = {"epoch": epoch}
        row.update((key, handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None
