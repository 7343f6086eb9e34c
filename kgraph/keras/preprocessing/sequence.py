"""`keras.preprocessing.sequence`: `pad_sequences` under the module name older code imports,
tf.keras 2's `skipgrams`/`make_sampling_table` (kgraph/keras/preprocessing/skipgrams.py) and
`TimeseriesGenerator` (gone from Keras 3, which has
`keras.utils.timeseries_dataset_from_array`) for code written against it."""
from __future__ import annotations

import numpy as np

from kgraph.keras.preprocessing.skipgrams import make_sampling_table, skipgrams
from kgraph.keras.utils import pad_sequences
from kgraph.keras.utils.py_dataset import PyDataset

__all__ = ["TimeseriesGenerator", "make_sampling_table", "pad_sequences", "skipgrams"]


class TimeseriesGenerator(PyDataset):
    """Batches of sliding windows over a series and the value after each (tf.keras 2's
    `keras.preprocessing.sequence.TimeseriesGenerator`, a dataset `fit`/`evaluate`/`predict`
    take).

    Sample `i` of the series is the window `data[row - length:row:sampling_rate]` and its
    target is `targets[row]`, for rows from `start_index + length` to `end_index` (the last
    index by default) every `stride` steps.

    Args:
        data: array-like of time steps (axis 0 is time).
        targets: array-like of the same length as `data`.
        length: the window's length in time steps.
        sampling_rate: the step between time steps inside a window.
        stride: the step between the rows of successive windows.
        start_index, end_index: the first and last rows windows may end before (inclusive).
        shuffle: draw each batch's rows at random instead of in order.
        reverse: give each window's time steps in reverse order.
        batch_size: windows per batch (the last batch may be smaller).

    Example:
    >>> g = TimeseriesGenerator(np.arange(10), np.arange(10), length=3, batch_size=2)
    >>> g[0]
    (array([[0, 1, 2],
           [1, 2, 3]]), array([3, 4]))
    """

    def __init__(self, data, targets, length, sampling_rate=1, stride=1, start_index=0,
                 end_index=None, shuffle=False, reverse=False, batch_size=128):
        super().__init__()
        if len(data) != len(targets):
            raise ValueError(f"TimeseriesGenerator: data and targets must have the same "
                             f"length. Received: len(data)={len(data)}, "
                             f"len(targets)={len(targets)}")
        self.data, self.targets = data, targets
        self.length, self.sampling_rate, self.stride = length, sampling_rate, stride
        self.start_index = start_index + length
        self.end_index = len(data) - 1 if end_index is None else end_index
        self.shuffle, self.reverse, self.batch_size = shuffle, reverse, batch_size
        if self.start_index > self.end_index:
            raise ValueError(f"TimeseriesGenerator: start_index + length must be at most "
                             f"end_index; no window fits. Received: start_index + length="
                             f"{self.start_index}, end_index={self.end_index}")

    def __len__(self):
        span = self.batch_size * self.stride
        return (self.end_index - self.start_index + span) // span

    def __getitem__(self, index):
        if self.shuffle:
            rows = np.random.randint(self.start_index, self.end_index + 1, size=self.batch_size)
        else:
            first = self.start_index + self.batch_size * self.stride * index
            rows = np.arange(first, min(first + self.batch_size * self.stride,
                                        self.end_index + 1), self.stride)
        samples = np.array([self.data[row - self.length:row:self.sampling_rate]
                            for row in rows])
        targets = np.array([self.targets[row] for row in rows])
        if self.reverse:
            return samples[:, ::-1, ...], targets
        return samples, targets
