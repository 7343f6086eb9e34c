"""Small datasets that ship with kgraph, so demos and tests need no network."""
from __future__ import annotations

import gzip
import os

import numpy as np

_DATA = os.path.join(os.path.dirname(__file__), "data")


def load_digits(test_fraction=0.2, seed=0):
    """The UCI 8x8 handwritten digits (1,797 samples).

    Returns:
        `(x_train, y_train), (x_test, y_test)`: images as float32 arrays of shape (n, 8, 8)
        scaled to [0, 1], labels as int64. The split is a seeded shuffle, so it is the same on
        every machine.
    """
    with gzip.open(os.path.join(_DATA, "digits.csv.gz"), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    x = (table[:, :64] / 16.0).reshape(-1, 8, 8).astype(np.float32)
    y = table[:, 64].astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(round(len(x) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


def _register_keras_datasets():
    """`keras.datasets.<name>.load_data()` modules (also importable as
    `kgraph.keras.datasets.<name>`), backed by `keras_datasets`."""
    import sys
    import types

    from kgraph.datasets import keras_datasets as loaders

    this = sys.modules[__name__]
    sys.modules.setdefault("kgraph.keras.datasets", this)
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters",
                 "boston_housing", "california_housing"):
        module = types.ModuleType(f"{__name__}.{name}", f"`keras.datasets.{name}`.")
        module.load_data = getattr(loaders, f"load_{name}")
        setattr(this, name, module)
        sys.modules[module.__name__] = module
        sys.modules.setdefault(f"kgraph.keras.datasets.{name}", module)


_register_keras_datasets()
