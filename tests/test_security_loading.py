"""Loading is all-or-nothing, corrupt HDF5 gets kgraph's typed errors, and files that are
not plain weight files are refused (issue 9, cases 5 and 6)."""
import os
import warnings

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


def _unused_warnings(record):
    return [w for w in record if "does not have" in str(w.message)]


@pytest.mark.parametrize("name", ["w.weights.h5", "w.keras"])
def test_extra_layer_groups_in_a_weights_file_warn(tmp_path, name):
    """Keras 3 ignores weights a file holds for objects the model does not have, silently;
    kgraph loads the rest the same way and warns, naming the groups."""
    path = tmp_path / name
    keras.utils.set_random_seed(2)
    bigger = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"),
                               keras.layers.Dense(3, name="b"), keras.layers.Dense(7, name="c")])
    bigger.save_weights(path) if name != "w.keras" else bigger.save(path)
    model = _model()
    with pytest.warns(UserWarning, match=r"weights for 1 objects that the model does not "
                                         r"have; they were not loaded: \['layers/dense_2'\]"):
        model.load_weights(path)
    for a, b in zip(model.get_weights(), bigger.get_weights()[:4]):
        np.testing.assert_array_equal(a, b)


def test_optimizer_state_into_an_uncompiled_model_does_not_warn(tmp_path):
    source = _model()
    source.compile("adam", "mse")
    source.fit(np.ones((4, 4), "float32"), np.ones((4, 3), "float32"), verbose=0)
    source.save_weights(tmp_path / "w.weights.h5")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _model().load_weights(tmp_path / "w.weights.h5")
    assert not _unused_warnings(record)
    compiled = _model()
    compiled.compile("sgd", "mse")  # fewer slots than the file's Adam: its own warning
    with pytest.warns(UserWarning, match="optimizer state not restored") as record:
        compiled.load_weights(tmp_path / "w.weights.h5")
    assert not _unused_warnings(record)
