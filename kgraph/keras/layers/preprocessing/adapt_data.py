"""The data `adapt()` accepts, as Keras does: a numpy array (or list), a `kgraph.data`
Dataset, a `PyDataset`, or any iterable of batches. Batches come out as numpy arrays."""
from __future__ import annotations

import numpy as np


def iterate_batches(data, batch_size=None):
    """Yield numpy batches of `data`. An array is one batch (or `batch_size` slices)."""
    if isinstance(data, (np.ndarray, list, tuple)) or np.isscalar(data):
        array = np.asarray(data)
        if batch_size is None or array.ndim == 0:
            yield array
            return
        for start in range(0, len(array), batch_size):
            yield array[start:start + batch_size]
        return
    if hasattr(data, "numpy") and not hasattr(data, "__iter__"):
        yield np.asarray(data.numpy())
        return
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and \
            type(data).__name__ != "Dataset" and not hasattr(data, "shape"):
        data = (data[i] for i in range(len(data)))  # a PyDataset / Sequence
    for batch in data:
        if isinstance(batch, tuple):
            raise ValueError(f"adapt() takes inputs only, not (x, y) pairs. Received a "
                             f"batch of {len(batch)} elements; map the dataset to x first.")
        yield np.asarray(batch)


def check_adapt_data(layer, data):
    if data is None:
        raise ValueError(f"{type(layer).__name__}.adapt() needs data. Received: data=None")
