"""Loading is all-or-nothing, corrupt HDF5 gets kgraph's typed errors, and files that are
not plain weight files are refused (issue 9, cases 5 and 6)."""
import os

import h5py
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras.saving.errors import InvalidFileError, SavingError, WeightMismatchError


def _model(width=3, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
                             keras.layers.Dense(width, name="b")])


@pytest.mark.parametrize("name", ["w.weights.h5", "w.h5", "w.keras"])
def test_mismatch_in_layer_two_leaves_layer_one_untouched(tmp_path, name):
    path = tmp_path / name
    source = _model(width=5, seed=1)
    source.save_weights(path) if name != "w.keras" else source.save(path)
    model = _model()
    before = model.get_weights()
    with pytest.raises(WeightMismatchError):
        model.load_weights(path)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_complex_weights_are_refused(tmp_path):
    path = tmp_path / "w.weights.h5"
    _model().save_weights(path)
    with h5py.File(path, "r+") as f:
        group = f["layers/dense/vars"]  # layer "a": the first Dense
        name = "0"
        data = group[name][()]
        del group[name]
        group[name] = data.astype(np.complex64) + 1j
    with pytest.raises(SavingError, match="complex"):
        _model().load_weights(path)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.keras"
    os.mkfifo(fifo)
    with pytest.raises(InvalidFileError, match="not a regular file"):
        keras.models.load_model(fifo)
    with pytest.raises(InvalidFileError, match="not a regular file"):
        _model().load_weights(fifo)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_corrupt_hdf5_metadata_gives_typed_errors(tmp_path):
    """Byte flips that made h5py raise RuntimeError/SystemError/KeyError (seeds found by the
    fuzzer in tests/test_fuzz_loaders.py, replayed here deterministically)."""
    import random

    model = _model()
    model.save(tmp_path / "m.h5")
    data = (tmp_path / "m.h5").read_bytes()
    rng = random.Random(0)
    for i in range(120):
        corrupt = bytearray(data)
        for _ in range(rng.choice([1, 2, 8])):
            corrupt[rng.randrange(len(corrupt))] = rng.randrange(256)
        path = tmp_path / f"c{i}.h5"
        path.write_bytes(bytes(corrupt))
        try:
            keras.models.load_model(path)
        except SavingError:
            pass
