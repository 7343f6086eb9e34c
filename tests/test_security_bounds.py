"""Bounded loads (issue 9, case 5): sizes read from a file are checked against the bytes
present and the load limit (`KGRAPH_MAX_LOAD_BYTES`) before anything is allocated; configs
nest a bounded number of levels; pipes and devices are refused by every loader."""
import json
import os
import threading
import zipfile

import numpy as np
import pytest

from kgraph import keras
from kgraph.keras.saving import serialization_lib
from kgraph.keras.saving.errors import (InvalidConfigError, InvalidFileError, LoadLimitError,
                                        UnsafeFileError)


def _mlp(units=3):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(units, name="a"),
                             keras.layers.Dense(2, name="b")])


def _rewrite_archive(source, target, replace, compression=zipfile.ZIP_STORED):
    """Copy a `.keras` archive, replacing members named in `replace` (name -> bytes)."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", compression) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, replace.get(info.filename, zin.read(info.filename)))


# -- arrays stored in configs ---------------------------------------------------------------
def _masked_model_config():
    x = keras.Input((4, 3))
    y = keras.layers.GlobalAveragePooling1D()(x, mask=np.array([[True, True, False, True]]))
    return keras.Model(x, y).to_json()


def _with_mask_entry(text, **entry):
    config = json.loads(text)
    node = config["config"]["layers"][1]["inbound_nodes"][0]
    node["kwargs"]["mask"]["config"].update(entry)
    return json.dumps(config)


def test_numpy_entry_round_trips():
    text = _masked_model_config()
    x = np.random.default_rng(0).random((1, 4, 3), dtype=np.float32)
    expected = x[:, [0, 1, 3]].mean(axis=1)
    np.testing.assert_allclose(keras.models.model_from_json(text).predict(x, verbose=0),
                               expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", ["(64,64)f8", "O", "V8", "f8,i4", "i4 (3,3)", "no-such-type",
                                   [["a", "<f8"], ["b", "<i4"]],
                                   {"names": ["a"], "formats": ["(1000,)f8"]}])
def test_numpy_entry_with_non_plain_dtype_is_refused(dtype):
    """A sub-array dtype turned a 1.6 KB entry into 2.3 GB; objects and records are refused
    too, before np.array runs."""
    with pytest.raises(UnsafeFileError, match="dtype"):
        keras.models.model_from_json(_with_mask_entry(_masked_model_config(), dtype=dtype))


def test_numpy_entry_wider_than_its_values_is_refused():
    text = _with_mask_entry(_masked_model_config(), dtype="U1000000", value=[["a", "b"]])
    with pytest.raises(UnsafeFileError, match="8000000 bytes for 2 values"):
        keras.models.model_from_json(text)


# -- zip members -----------------------------------------------------------------------------
def test_small_archive_expanding_past_the_limit_is_refused(tmp_path):
    """An 80 KiB archive whose weights member expands to 80 MiB (zeros after a valid HDF5
    file, which h5py reads happily) used to be expanded into memory and load."""
    _mlp().save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        weights = zf.read("model.weights.h5")
    padded = weights + bytes(80 * 1024 ** 2)
    _rewrite_archive(tmp_path / "m.keras", tmp_path / "bomb.keras",
                     {"model.weights.h5": padded}, zipfile.ZIP_DEFLATED)
    assert os.path.getsize(tmp_path / "bomb.keras") < 200 * 1024
    with pytest.raises(LoadLimitError, match="'model.weights.h5' declares 83"):
        keras.models.load_model(tmp_path / "bomb.keras")
    with pytest.raises(LoadLimitError, match="KGRAPH_MAX_LOAD_BYTES"):
        _mlp().load_weights(tmp_path / "bomb.keras")


def test_load_limit_is_configurable(tmp_path, monkeypatch):
    _mlp().save(tmp_path / "m.keras")
    size = os.path.getsize(tmp_path / "m.keras")
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", str(size // 2))
    with pytest.raises(LoadLimitError, match="model.weights.h5"):
        keras.models.load_model(tmp_path / "m.keras")
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", str(10 * size))
    model = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(model.get_weights()[0], _mlp().get_weights()[0])


def test_invalid_limit_warns_and_keeps_the_default(tmp_path, monkeypatch):
    from kgraph.config import ConfigWarning

    _mlp().save(tmp_path / "m.keras")
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", "lots")
    with pytest.warns(ConfigWarning, match="KGRAPH_MAX_LOAD_BYTES='lots'"):
        keras.models.load_model(tmp_path / "m.keras")


def test_member_shorter_than_declared_is_refused(tmp_path):
    _mlp().save(tmp_path / "m.keras")
    data = bytearray((tmp_path / "m.keras").read_bytes())
    with zipfile.ZipFile(tmp_path / "m.keras") as zf:
        info = zf.getinfo("config.json")
    record = data.index(b"PK\x01\x02")
    while data[record + 46:record + 46 + len(b"config.json")] != b"config.json":
        record = data.index(b"PK\x01\x02", record + 4)  # central directory records
    declared = info.file_size + 100  # the stored bytes end 100 bytes early
    data[record + 24:record + 28] = declared.to_bytes(4, "little")
    (tmp_path / "short.keras").write_bytes(bytes(data))
    with pytest.raises(InvalidFileError, match="'config.json' expands to .* not its declared"):
        keras.models.load_model(tmp_path / "short.keras")


# -- layer sizes in configs ---------------------------------------------------------------
def _with_units(text, units):
    config = json.loads(text)
    config["config"]["layers"][1]["config"]["units"] = units
    return json.dumps(config)


def test_huge_units_refused_before_allocating():
    with pytest.raises(LoadLimitError, match=r"layer 'a' \(Dense, units=8589934592\): weight "
                                             r"'kernel' of shape \(4, 8589934592\) float32"):
        keras.models.model_from_json(_with_units(_mlp().to_json(), 2 ** 33))


def test_layer_sizes_count_against_the_limit(monkeypatch):
    """Below what the machine refuses, config sizes allocated whatever the limit said."""
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", str(1024 ** 2))
    with pytest.raises(LoadLimitError, match="units=65536"):
        keras.models.model_from_json(_with_units(_mlp().to_json(), 2 ** 16))  # 1 MiB kernel
    keras.models.model_from_json(_with_units(_mlp().to_json(), 2 ** 10))


def test_budget_is_for_the_whole_load(monkeypatch):
    """Layers each under the limit are refused together (18 MiB limit, 4 MiB per layer)."""
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", str(18 * 1024 ** 2))
    model = keras.Sequential([keras.Input((1024,))] + [keras.layers.Dense(1024, name=f"d{i}")
                                                       for i in range(8)])
    with pytest.raises(LoadLimitError, match="'d4'.* needs 4.0 MiB; this load would then "
                                             "hold 20.0 MiB, more than the load limit of 18.0"):
        keras.models.model_from_json(model.to_json())


def test_layer_sizes_in_a_keras_file_are_bounded_by_its_size(tmp_path):
    model = keras.Sequential([keras.Input((3,), dtype="int32"),
                              keras.layers.Embedding(10, 2, name="emb")])
    model.save(tmp_path / "e.keras")
    with zipfile.ZipFile(tmp_path / "e.keras") as zf:
        config = json.loads(zf.read("config.json"))
    config["config"]["layers"][1]["config"]["input_dim"] = 2 ** 31
    _rewrite_archive(tmp_path / "e.keras", tmp_path / "big.keras",
                     {"config.json": json.dumps(config).encode()})
    with pytest.raises(LoadLimitError, match=r"big.keras: layer 'emb' \(Embedding, "
                                             r"input_dim=2147483648, output_dim=2\): .* needs 16.0 GiB"):
        keras.models.load_model(tmp_path / "big.keras")


def test_layer_sizes_in_a_legacy_h5_file_are_bounded(tmp_path):
    import h5py

    _mlp().save(tmp_path / "m.h5")
    with h5py.File(tmp_path / "m.h5", "r+") as f:
        config = json.loads(f.attrs["model_config"])
        config["config"]["layers"][1]["config"]["units"] = 2 ** 24  # a 256 MiB kernel
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(LoadLimitError, match=r"m.h5: layer 'a' \(Dense, units=16777216\)"):
        keras.models.load_model(tmp_path / "m.h5")


def test_models_built_in_code_are_not_limited(monkeypatch):
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", "1")
    assert _mlp(units=64).count_params() == 4 * 64 + 64 + 64 * 2 + 2


# -- nesting ----------------------------------------------------------------------------------
def _nested_config(levels):
    inner = {"module": "keras.layers", "class_name": "Dense",
             "config": {"units": 2, "name": "d"}, "registered_name": None}
    for i in range(levels):
        inner = {"module": "keras", "class_name": "Sequential",
                 "config": {"name": f"s{i}", "layers": [inner]}, "registered_name": None}
    return json.dumps({"module": "keras", "class_name": "Sequential", "config": {
        "name": "top", "layers": [{"module": "keras.layers", "class_name": "InputLayer",
                                   "config": {"batch_shape": [None, 3], "name": "in"}},
                                  inner]}})


def test_deeply_nested_models_get_a_typed_error_not_recursion_error():
    with pytest.raises(InvalidConfigError, match="more than 320 levels deep"):
        keras.models.model_from_json(_nested_config(250))


def test_nesting_bound_counts_levels_not_stack_frames():
    bound = serialization_lib.MAX_NESTING
    with pytest.raises(InvalidConfigError, match=f"nested more than {bound} levels"):
        keras.models.model_from_json(_nested_config(bound))  # + the top model and the Dense


def test_nesting_just_under_the_bound_loads_and_runs():
    levels = serialization_lib.MAX_NESTING - 2
    model = keras.models.model_from_json(_nested_config(levels))
    assert model.predict(np.ones((2, 3), "float32"), verbose=0).shape == (2, 2)


# -- pipes and devices ----------------------------------------------------------------------
def _returns_within(fn, seconds=20):
    """Run `fn` in a daemon thread; return its exception (or None) if it ends in time."""
    outcome = []

    def run():
        try:
            fn()
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            outcome.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"{fn} blocked for {seconds} s"
    return outcome[0]


@pytest.mark.parametrize("name", ["m.keras", "m.h5", "m.weights.h5", "legacy_weights.h5",
                                  "link.keras"])
def test_every_file_loader_refuses_pipes(tmp_path, name):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = tmp_path / name
    path.symlink_to(fifo) if name == "link.keras" else os.mkfifo(path)
    for load in (lambda: keras.models.load_model(path), lambda: _mlp().load_weights(path),
                 lambda: _mlp().load_weights(path, by_name=True, skip_mismatch=True)):
        error = _returns_within(load)
        assert isinstance(error, InvalidFileError) and "not a regular file" in str(error)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_devices_are_refused():
    for load in (lambda: keras.models.load_model("/dev/zero"),
                 lambda: _mlp().load_weights("/dev/zero")):
        error = _returns_within(load)
        assert isinstance(error, InvalidFileError) and "not a regular file" in str(error)
