"""Stand-ins for the `keras.datasets` downloads the keras.io examples make.

Each returns random arrays of the real dataset's shapes and dtypes, small
sizes, from a fixed seed, so the example tests run offline in seconds.
"""

from __future__ import annotations

import numpy as np


def mnist_load_data(n_train=256, n_test=64, seed=0):
    """Like `keras.datasets.mnist.load_data()`: uint8 (N, 28, 28) images and labels."""
    rng = np.random.default_rng(seed)

    def split(n):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        return images, rng.integers(0, 10, (n,), dtype=np.uint8)

    return split(n_train), split(n_test)


def cifar100_load_data(n_train=96, n_test=32, seed=0):
    """Like `keras.datasets.cifar100.load_data()`: uint8 (N, 32, 32, 3) images and
    (N, 1) int64 labels in [0, 100)."""
    rng = np.random.default_rng(seed)

    def split(n):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        return images, rng.integers(0, 100, (n, 1)).astype(np.int64)

    return split(n_train), split(n_test)


def imdb_load_data(num_words, n_train=64, n_val=32, max_len=260, seed=0):
    """Like `keras.datasets.imdb.load_data(num_words=...)`: object arrays of
    int lists of varied length (some longer than 200, as IMDB's) and 0/1 labels."""
    rng = np.random.default_rng(seed)

    def split(n):
        reviews = np.empty(n, dtype=object)
        for i in range(n):
            length = int(rng.integers(10, max_len))
            reviews[i] = [1] + rng.integers(2, num_words, length - 1).tolist()
        return reviews, rng.integers(0, 2, (n,)).astype(np.int64)

    return split(n_train), split(n_val)


def forda_readucr(n, seed=0):
    """Like the timeseries examples' `readucr(FordA url)`: (n, 500) float series, labels -1/1."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 500)).astype("float32")
    y = rng.choice([-1, 1], size=n).astype(np.int64)
    return x, y


def cifar10_load_data(n_train=96, n_test=32, seed=0):
    """Like `keras.datasets.cifar10.load_data()`: uint8 (N, 32, 32, 3) images and
    (N, 1) uint8 labels in [0, 10)."""
    rng = np.random.default_rng(seed)

    def split(n):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        return images, rng.integers(0, 10, (n, 1)).astype(np.uint8)

    return split(n_train), split(n_test)


def heart_disease_columns(column_names, rows=120, seed=0):
    """What `pd.read_csv(heart.csv)` of the keras.io structured-data examples holds, column by
    column in `column_names` order: numpy arrays of its dtypes (int64 categoricals and
    numerics, float64 `oldpeak`, the string `thal`), every category present."""
    rng = np.random.default_rng(seed)
    ints = {"age": (29, 78), "sex": (0, 2), "cp": (0, 5), "trestbps": (94, 201),
            "chol": (126, 565), "fbs": (0, 2), "restecg": (0, 3), "thalach": (71, 203),
            "exang": (0, 2), "slope": (1, 4), "ca": (0, 4), "target": (0, 2)}
    columns = {name: rng.integers(*ints[name], rows).astype("int64") for name in ints}
    columns["oldpeak"] = rng.uniform(0, 6.2, rows).round(1)
    columns["thal"] = rng.choice(["fixed", "normal", "reversible"], rows)
    for name, low_high in ints.items():  # every category present, as in the real file
        if low_high[1] - low_high[0] <= 5:
            columns[name][: low_high[1] - low_high[0]] = np.arange(*low_high)
    columns["thal"][:3] = ["fixed", "normal", "reversible"]
    return {name: columns[name] for name in column_names}
