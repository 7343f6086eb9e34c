"""Saving and loading: files written by real Keras, round trips of every model kind, the
saving FAQ, and files crafted to attack the loader."""
import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

import kgraph as tf  # noqa: F401  (the FAQ blocks run with this import)
from kgraph import keras
from kgraph.keras import layers, saving
from kgraph.keras.saving import h5_safe
from kgraph.keras.saving_safety import UnsafeDeserializationError

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
CNN_LAYERS = ("Conv2D", "BatchNormalization", "MaxPooling2D", "ReLU", "Flatten")
MISSING_CNN = [n for n in CNN_LAYERS if not hasattr(keras.layers, n)]


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def golden(name):
    return os.path.join(GOLDEN, name)


def mlp_xy():
    return np.load(golden("mlp_x.npy")), np.load(golden("mlp_y.npy"))


def mlp_model():
    return keras.Sequential([keras.Input((8,)), layers.Dense(16, activation="relu", name="dense_a"),
                             layers.Dense(4, activation="softmax", name="dense_b")], name="mlp")


def weights_by_layer(model):
    """Weights keyed by layer name, nested models flattened (their weight order follows
    their layer order, which is not part of what a file must preserve)."""
    out = {}
    for layer in model.layers:
        out.update(weights_by_layer(layer) if hasattr(layer, "layers") else
                   {layer.name: layer.get_weights()})
    return out


def assert_close(a, b, tol=1e-5):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            assert_close(a[k], b[k], tol)
    elif isinstance(a, (list, tuple)):
        for x, y in zip(a, b):
            assert_close(x, y, tol)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=tol, rtol=0)


# -- files written by real Keras ----------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*no training configuration")
@pytest.mark.parametrize("name", ["mlp.keras", "mlp_legacy.h5", "mlp_legacy_tfkeras.h5"])
def test_golden_mlp_load_model(name):
    x, y = mlp_xy()
    model = keras.models.load_model(golden(name))
    assert [layer.name for layer in model.layers] == ["dense_a", "dense_b"]
    assert_close(model.predict(x, verbose=0), y)


@pytest.mark.parametrize("json_name", ["mlp.json", "mlp_tfkeras.json"])
@pytest.mark.parametrize("weights", ["mlp.weights.h5", "mlp_legacy_weights.h5", "mlp.keras",
                                     "mlp_legacy.h5", "mlp_legacy_tfkeras.h5"])
def test_golden_mlp_json_then_weights(json_name, weights):
    x, y = mlp_xy()
    with open(golden(json_name)) as fh:
        model = keras.models.model_from_json(fh.read())
    model.load_weights(golden(weights))
    assert_close(model.predict(x, verbose=0), y)


def test_golden_mlp_json_matches_what_keras_writes():
    with open(golden("mlp.json")) as fh:
        theirs = json.load(fh)
    ours = json.loads(keras.models.model_from_json(json.dumps(theirs)).to_json())
    assert ours["config"]["layers"][0] == theirs["config"]["layers"][0]
    assert [entry["class_name"] for entry in ours["config"]["layers"]] == \
        ["InputLayer", "Dense", "Dense"]
    assert ours["build_config"] == theirs["build_config"]


@pytest.mark.skipif(bool(MISSING_CNN), reason=f"kgraph.keras.layers lacks {MISSING_CNN}, "
                                              f"which the golden CNN needs")
@pytest.mark.parametrize("source", ["cnn.keras", "cnn.json+cnn.weights.h5"])
def test_golden_cnn(source):
    x, y = np.load(golden("cnn_x.npy")), np.load(golden("cnn_y.npy"))
    if source == "cnn.keras":
        model = keras.models.load_model(golden("cnn.keras"))
        assert model.compiled and int(model.optimizer.iterations.numpy()) == 80
    else:
        with open(golden("cnn.json")) as fh:
            model = keras.models.model_from_json(fh.read())
        model.load_weights(golden("cnn.weights.h5"))
    assert_close(model.predict(x, verbose=0), y)
    bn = model.get_layer("bn")
    assert_close(bn.weights[2].numpy(), np.load(golden("cnn_bn_moving_mean.npy")))
    assert_close(bn.weights[3].numpy(), np.load(golden("cnn_bn_moving_variance.npy")))


# -- round trips --------------------------------------------------------------------------
def trained_mlp():
    model = mlp_model()
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, _ = mlp_xy()
    model.fit(x, np.random.default_rng(0).random((5, 4), dtype=np.float32), epochs=2,
              verbose=0)
    return model


@pytest.mark.parametrize("path", ["m.keras", "m.h5", "my_model"])
def test_sequential_round_trip_keeps_predictions_config_and_optimizer(path):
    model = trained_mlp()
    x, _ = mlp_xy()
    model.save(path)
    loaded = keras.models.load_model(path)
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 0)
    assert loaded.get_config() == model.get_config()
    assert loaded.compiled
    assert_close([v.numpy() for v in loaded.optimizer.variables],
                 [v.numpy() for v in model.optimizer.variables], 0)
    loaded.fit(x, np.zeros((5, 4), np.float32), epochs=1, verbose=0)  # training resumes
    assert int(loaded.optimizer.iterations.numpy()) == int(model.optimizer.iterations.numpy()) + 1


def multi_io_model():
    """Two inputs, dict outputs, a layer shared by two branches, a nested functional model
    and a nested Sequential."""
    a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
    shared = layers.Dense(5, activation="relu", name="shared")
    ha = shared(layers.Dense(5, name="pa")(a))
    hb = shared(layers.Dense(5, name="pb")(b))
    inner_in = keras.Input((10,), name="inner_in")  # Keras orders its layers in, w, v, u, cat
    u = layers.Dense(4, name="u")(inner_in)
    v = layers.Dense(3, name="v")(layers.Dense(6, name="w")(inner_in))
    inner = keras.Model(inner_in, layers.Concatenate(name="inner_cat")([v, u]), name="inner")
    seq = keras.Sequential([keras.Input((5,)), layers.Dense(3, name="seq_dense")], name="seq")
    o1 = inner(layers.Concatenate(name="cat")([ha, hb]))
    o2 = seq(layers.Add(name="add")([ha, hb]))
    return keras.Model([a, b], {"o1": o1, "o2": o2}, name="multi")


@pytest.mark.parametrize("path", ["f.keras", "f.h5"])
def test_functional_multi_io_shared_nested_round_trip(path):
    model = multi_io_model()
    rng = np.random.default_rng(1)
    xs = [rng.random((3, 4), dtype=np.float32), rng.random((3, 3), dtype=np.float32)]
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    assert loaded.get_config() == model.get_config()
    assert_close(loaded.predict(xs, verbose=0), model.predict(xs, verbose=0), 0)
    assert len(loaded.get_layer("shared")._inbound_nodes) == 2


def test_shared_layer_config_has_two_nodes_and_json_round_trips():
    model = multi_io_model()
    config = model.get_config()
    shared = next(entry for entry in config["layers"] if entry["name"] == "shared")
    histories = [n["args"][0]["config"]["keras_history"] for n in shared["inbound_nodes"]]
    assert histories == [["pa", 0, 0], ["pb", 0, 0]]
    assert config["input_layers"] == [["a", 0, 0], ["b", 0, 0]]
    assert config["output_layers"]["o1"] == ["inner", 1, 0]  # Keras' built-in Functional node
    again = keras.models.model_from_json(model.to_json())
    assert again.get_config() == config


@pytest.mark.parametrize("path", ["w.weights.h5", "w.h5", "w_noext"])
def test_weights_round_trip(path):
    model = multi_io_model()
    model.save_weights(path)
    fresh = keras.models.model_from_json(model.to_json())
    fresh.load_weights(path)
    assert_close(weights_by_layer(fresh), weights_by_layer(model), 0)


def test_legacy_functional_config_with_list_nodes():
    text = json.dumps({"class_name": "Functional", "config": {"name": "model", "layers": [
        {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
         "config": {"batch_input_shape": [None, 4], "dtype": "float32", "sparse": False,
                    "ragged": False, "name": "input_1"}},
        {"class_name": "Dense", "name": "dense", "inbound_nodes": [[["input_1", 0, 0, {}]]],
         "config": {"name": "dense", "trainable": True, "dtype": "float32", "units": 3,
                    "activation": "relu", "use_bias": True,
                    "kernel_initializer": {"class_name": "GlorotUniform",
                                           "config": {"seed": None}},
                    "bias_initializer": {"class_name": "Zeros", "config": {}}}}],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]},
        "keras_version": "2.15.0", "backend": "tensorflow"})
    model = keras.models.model_from_json(text)
    assert model.predict(np.ones((2, 4), np.float32), verbose=0).shape == (2, 3)


def test_weights_file_layout_follows_keras_paths():
    x = keras.Input((4,), name="x")
    inner = keras.Sequential([keras.Input((8,)), layers.Dense(3, name="dense_1")], name="inner")
    model = keras.Model(x, inner(layers.Dense(8, name="dense")(x)), name="functional_1")
    model.compile(optimizer="adam", loss="mse")
    model.save_weights("layout.weights.h5")
    found = {}

    def record(name, obj):
        if name.endswith("vars"):
            found[name] = obj.attrs.get("name")

    with h5py.File("layout.weights.h5") as f:
        f.visititems(record)
    assert found == {"vars": "functional_1", "layers/input_layer/vars": "x",
                     "layers/dense/vars": "dense", "layers/sequential/vars": "inner",
                     "layers/sequential/layers/dense/vars": "dense_1", "optimizer/vars": "adam"}


class Block(keras.layers.Layer):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.blocks = [layers.Dense(units), layers.Dense(units)]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class TwoStage(keras.Model):
    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.block = Block(units, name="blk")
        self.head = layers.Dense(2, name="head")

    def call(self, x):
        return self.head(self.block(x))

    def get_config(self):
        return {"name": self.name, "units": self.units}


def test_subclassed_model_round_trip():
    model = TwoStage(4, name="two")
    x = np.ones((2, 5), np.float32)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, np.zeros((2, 2), np.float32), verbose=0)
    model.save("sub.keras")
    with zipfile.ZipFile("sub.keras") as zf, h5py.File(io.BytesIO(zf.read("model.weights.h5"))) as f:
        assert "block/blocks/dense_1/vars/0" in f and "head/vars/1" in f
    with pytest.raises(saving.UnknownObjectError, match="TwoStage"):
        keras.models.load_model("sub.keras")
    loaded = keras.models.load_model("sub.keras", custom_objects={"TwoStage": TwoStage,
                                                                  "Block": Block})
    assert_close(loaded.predict(x, verbose=0), model.predict(x, verbose=0), 0)
    assert int(loaded.optimizer.iterations.numpy()) == 1


def test_compile_false_and_optimizer_mismatch_warning():
    trained_mlp().save("m.h5")
    assert not keras.models.load_model("m.h5", compile=False).compiled
    with h5py.File("m.h5", "a") as f:
        training = json.loads(f.attrs["training_config"])
        training["optimizer_config"] = {"class_name": "SGD", "config": {"momentum": 0.9}}
        f.attrs["training_config"] = json.dumps(training)
    with pytest.warns(UserWarning, match="optimizer state not restored"):
        model = keras.models.load_model("m.h5")
    assert model.compiled and type(model.optimizer).__name__ == "SGD"


KERAS_SCRIPT = """
import json, os, sys
import numpy as np, keras
from keras import layers
xs = [np.load("xa.npy"), np.load("xb.npy")]
want = {k: np.load(f"{k}.npy") for k in ("o1", "o2")}
def diff(model):
    got = model.predict(xs, verbose=0)
    return max(float(np.abs(got[k] - want[k]).max()) for k in want)
def from_json_then(path):
    model = keras.models.model_from_json(open("multi.json").read())
    model.load_weights(path)
    return model
out = {"multi.keras": diff(keras.models.load_model("multi.keras")),
       "multi.h5": diff(keras.models.load_model("multi.h5", compile=False)),
       "multi.weights.h5": diff(from_json_then("multi.weights.h5")),
       "multi_legacy_weights.h5": diff(from_json_then("multi_legacy_weights.h5"))}
a = keras.Input((4,), name="a")
h = layers.Dense(6, activation="relu", name="h")(a)
theirs = keras.Model(a, {"p": layers.Dense(2, name="p")(h), "q": layers.Dense(3, name="q")(h)})
theirs.compile(optimizer="adam", loss="mse")
theirs.fit(xs[0], {"p": np.ones((3, 2)), "q": np.ones((3, 3))}, epochs=2, verbose=0)
theirs.save("theirs.keras")
np.save("theirs_p.npy", theirs.predict(xs[0], verbose=0)["p"])
print(json.dumps(out))
"""


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("keras", "tensorflow")),
                    reason="real Keras with the TensorFlow backend is not installed")
def test_files_are_interchangeable_with_real_keras():
    model = multi_io_model()
    rng = np.random.default_rng(3)
    xs = [rng.random((3, 4), dtype=np.float32), rng.random((3, 3), dtype=np.float32)]
    np.save("xa.npy", xs[0])
    np.save("xb.npy", xs[1])
    for key, value in model.predict(xs, verbose=0).items():
        np.save(f"{key}.npy", value)
    model.save("multi.keras")
    model.save("multi.h5")
    model.save_weights("multi.weights.h5")
    model.save_weights("multi_legacy_weights.h5")
    with open("multi.json", "w") as fh:
        fh.write(model.to_json())
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = subprocess.run([sys.executable, "-c", KERAS_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    diffs = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(d < 1e-5 for d in diffs.values()), diffs
    theirs = keras.models.load_model("theirs.keras")
    assert int(theirs.optimizer.iterations.numpy()) == 2
    assert_close(theirs.predict(xs[0], verbose=0)["p"], np.load("theirs_p.npy"))


# -- the saving FAQ (keras-faq.md), with `import kgraph as tf; from kgraph import keras` ----
def faq_model():
    from kgraph.keras.layers import Dense
    from kgraph.keras.models import Sequential

    model = Sequential()
    model.add(Dense(2, input_dim=3, name="dense_1"))
    model.add(Dense(3, name="dense_2"))
    model.compile(optimizer="adam", loss="mse")
    return model


def test_faq_whole_model_saving():
    from kgraph.keras.models import load_model

    model = faq_model()
    x = np.ones((2, 3), np.float32)
    expected = model.predict(x, verbose=0)
    model.save("my_model")  # legacy HDF5, at exactly this path
    del model
    assert h5py.is_hdf5("my_model") and not os.path.exists("my_model.h5")
    model = load_model("my_model")
    assert model.compiled
    assert_close(model.predict(x, verbose=0), expected, 0)


def test_faq_weights_only_and_by_name():
    from kgraph.keras.layers import Dense
    from kgraph.keras.models import Sequential

    model = faq_model()
    model.save_weights("my_model_weights.h5")
    model.load_weights("my_model_weights.h5")
    fname = "my_model_weights.h5"
    old_kernel = model.get_layer("dense_1").get_weights()[0]
    model = Sequential()
    model.add(Dense(2, input_dim=3, name="dense_1"))  # will be loaded
    model.add(Dense(10, name="new_dense"))  # will not be loaded
    untouched = model.get_layer("new_dense").get_weights()[0]
    model.load_weights(fname, by_name=True)
    assert_close(model.get_layer("dense_1").get_weights()[0], old_kernel, 0)
    assert_close(model.get_layer("new_dense").get_weights()[0], untouched, 0)


def test_by_name_shape_mismatch_raises_or_skips():
    from kgraph.keras.layers import Dense
    from kgraph.keras.models import Sequential

    faq_model().save_weights("w.h5")
    model = Sequential([Dense(5, input_dim=3, name="dense_1")])
    with pytest.raises(saving.WeightMismatchError, match="dense_1"):
        model.load_weights("w.h5", by_name=True)
    before = model.get_weights()
    with pytest.warns(UserWarning, match="skipping"):
        model.load_weights("w.h5", by_name=True, skip_mismatch=True)
    assert_close(model.get_weights(), before, 0)
    with pytest.raises(ValueError, match="by_name"):
        faq_model().load_weights(golden("mlp.weights.h5"), by_name=True)


def test_faq_json():
    from kgraph.keras.models import model_from_json

    model = faq_model()
    json_string = model.to_json()
    model = model_from_json(json_string)
    assert [layer.name for layer in model.layers] == ["dense_1", "dense_2"]


class AttentionLayer(keras.layers.Layer):
    def __init__(self, units=4, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), name="w")

    def call(self, x):
        return keras.ops.softmax(keras.ops.matmul(x, self.w))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def attention_model():
    inputs = keras.Input((3,))
    return keras.Model(inputs, AttentionLayer(5, name="attention")(inputs))


@pytest.mark.filterwarnings("ignore:.*no training configuration")
@pytest.mark.parametrize("path", ["my_model.h5", "my_model.keras"])
def test_faq_custom_objects(path):
    from kgraph.keras.models import load_model, model_from_json
    from kgraph.keras.utils import CustomObjectScope

    model = attention_model()
    x = np.ones((2, 3), np.float32)
    model.save(path)
    with pytest.raises(saving.UnknownObjectError, match="AttentionLayer.*custom_objects"):
        load_model(path)
    model = load_model(path, custom_objects={"AttentionLayer": AttentionLayer})
    with CustomObjectScope({"AttentionLayer": AttentionLayer}):
        scoped = load_model(path)
    assert_close(scoped.predict(x, verbose=0), model.predict(x, verbose=0), 0)
    again = model_from_json(model.to_json(), custom_objects={"AttentionLayer": AttentionLayer})
    assert again.get_layer("attention").units == 5


def test_registered_custom_layer_loads_without_custom_objects():
    from kgraph.keras.serialization import GLOBAL_CUSTOM_OBJECTS

    registered = saving.register_keras_serializable(package="Test")(
        type("RegisteredAttention", (AttentionLayer,), {}))
    try:
        inputs = keras.Input((3,))
        model = keras.Model(inputs, registered(2, name="att")(inputs))
        model.save("reg.keras")
        with zipfile.ZipFile("reg.keras") as zf:
            assert [i.filename for i in zf.infolist()] == ["metadata.json", "config.json",
                                                           "model.weights.h5"]
            assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
            entry = json.loads(zf.read("config.json"))["config"]["layers"][1]
        assert entry["registered_name"] == "Test>RegisteredAttention"
        loaded = keras.models.load_model("reg.keras")
        assert type(loaded.get_layer("att")) is registered
    finally:
        GLOBAL_CUSTOM_OBJECTS.pop("Test>RegisteredAttention", None)


# -- unsafe and broken files --------------------------------------------------------------
def write_archive(path, config, weights=b"", extra=()):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", weights)
        for name, data in extra:
            zf.writestr(name, data)


def sequential_config_with(layer_entry):
    config = json.loads(mlp_model().to_json())
    config["config"]["layers"].append(layer_entry)
    return config


LAMBDA = {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
          "config": {"name": "evil", "function": {"class_name": "__lambda__", "config": {
              "code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}}


def test_lambda_in_config_is_refused():
    write_archive("evil.keras", sequential_config_with(LAMBDA))
    with pytest.raises(UnsafeDeserializationError, match="evil.keras"):
        keras.models.load_model("evil.keras")
    named = dict(LAMBDA, config={"name": "evil", "function": {"class_name": "function",
                                                              "config": "print"}})
    with pytest.raises(UnsafeDeserializationError):
        keras.models.model_from_json(json.dumps(sequential_config_with(named)))


def test_legacy_h5_lambda_is_refused():
    config = sequential_config_with({"class_name": "Lambda", "config": {
        "name": "evil", "function": ["4wEAAAAAAAAA", None, None], "function_type": "lambda"}})
    with h5py.File("evil.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(config)
    with pytest.raises(UnsafeDeserializationError):
        keras.models.load_model("evil.h5")


@pytest.mark.parametrize("module,class_name", [("os", "system"), ("subprocess", "Popen"),
                                               ("builtins", "eval")])
def test_module_outside_keras_is_refused(module, class_name):
    entry = {"module": module, "class_name": class_name, "config": {"name": "x"},
             "registered_name": None}
    write_archive("evil.keras", sequential_config_with(entry))
    with pytest.raises(saving.DisallowedModuleError, match=f"{module}.*not a Keras package"):
        keras.models.load_model("evil.keras")
    with pytest.raises(saving.UnsafeFileError):
        keras.models.model_from_json(json.dumps(dict(entry, module=module)))


def test_keras_api_functions_are_not_reachable():
    entry = {"module": "keras.utils", "class_name": "get_file", "config": {},
             "registered_name": None}
    with pytest.raises(saving.UnknownObjectError, match="get_file"):
        keras.models.model_from_json(json.dumps(sequential_config_with(entry)))


def saved_weights(path="w.weights.h5"):
    mlp_model().save_weights(path)
    return path


def test_external_link_is_refused(tmp_path):
    with h5py.File("secret.h5", "w") as f:
        f["data"] = np.ones((8, 16), np.float32)
    path = saved_weights()
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        f["layers/dense/vars/0"] = h5py.ExternalLink(str(tmp_path / "secret.h5"), "/data")
    with pytest.raises(saving.UnsafeFileError, match="external link"):
        mlp_model().load_weights(path)


def test_soft_link_external_and_virtual_datasets_are_refused(tmp_path):
    np.ones(16, np.float32).tofile("raw.bin")
    cases = {
        "soft": lambda f: f.__setitem__("layers/dense/vars/1", h5py.SoftLink("/x")),
        "external": lambda f: f.create_dataset("layers/dense/vars/1", shape=(16,), dtype="f4",
                                               external=[("raw.bin", 0, 64)]),
        "virtual": lambda f: f.create_virtual_dataset(
            "layers/dense/vars/1", _virtual_layout(tmp_path)),
    }
    for name, make in cases.items():
        path = saved_weights(f"{name}.weights.h5")
        with h5py.File(path, "a") as f:
            del f["layers/dense/vars/1"]
            make(f)
        with pytest.raises(saving.UnsafeFileError, match=path):
            mlp_model().load_weights(path)


def _virtual_layout(tmp_path):
    with h5py.File(tmp_path / "src.h5", "w") as src:
        src["d"] = np.ones(16, np.float32)
    layout = h5py.VirtualLayout(shape=(16,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(tmp_path / "src.h5"), "d", shape=(16,))
    return layout


def test_shape_bomb_is_refused():
    path = saved_weights()
    with h5py.File(path, "a") as f:
        del f["layers/dense/vars/0"]
        f.create_dataset("layers/dense/vars/0", shape=(2 ** 20, 2 ** 20), dtype="f4",
                         chunks=(64, 64))
    with pytest.raises(saving.UnsafeFileError, match="shape bomb"):
        mlp_model().load_weights(path)


@pytest.mark.parametrize("member", ["../escape.txt", "/etc/passwd", "C:/x", "a\\..\\b"])
def test_zip_member_outside_archive_is_refused(member):
    mlp_model().save("ok.keras")
    with zipfile.ZipFile("ok.keras", "a") as zf:
        zf.writestr(member, b"x")
    with pytest.raises(saving.UnsafeFileError, match="outside the archive"):
        keras.models.load_model("ok.keras")


def test_zip_bomb_is_refused(monkeypatch):
    monkeypatch.setenv("KGRAPH_MAX_LOAD_BYTES", "1000")
    with zipfile.ZipFile("bomb.keras", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("config.json", b" " * 1_000_000)
    with pytest.raises(saving.UnsafeFileError, match="expand"):
        keras.models.load_model("bomb.keras")


def test_bad_files_get_typed_errors_naming_the_file():
    with open("junk.keras", "wb") as fh:
        fh.write(b"not a model at all")
    with pytest.raises(saving.InvalidFileError, match="junk.keras"):
        keras.models.load_model("junk.keras")
    with zipfile.ZipFile("broken.keras", "w") as zf:
        zf.writestr("config.json", "{not json")
    with pytest.raises(saving.InvalidFileError, match="broken.keras.*JSON"):
        keras.models.load_model("broken.keras")
    with pytest.raises(saving.InvalidFileError, match="weights only"):
        keras.models.load_model(golden("mlp_legacy_weights.h5"))
    with pytest.raises(FileNotFoundError):
        keras.models.load_model("missing.keras")
    mlp_model().save("whole.h5")
    with open("whole.h5", "rb") as fh, open("cut.h5", "wb") as out:
        out.write(fh.read(3000))
    with pytest.raises(saving.InvalidFileError, match="cut.h5"):
        keras.models.load_model("cut.h5")


# -- atomic writes ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["m.keras", "m.h5", "m.weights.h5"])
def test_interrupted_save_leaves_no_half_written_file(path, monkeypatch, in_tmp_dir):
    model = trained_mlp()
    save = model.save_weights if path.endswith(".weights.h5") else model.save
    save(path)
    with open(path, "rb") as fh:
        good = fh.read()
    calls = []

    def failing_write(group, name, value):
        calls.append(name)
        if len(calls) == 3:
            raise KeyboardInterrupt("power cut")
        return real_write(group, name, value)

    real_write = h5_safe.write_dataset
    monkeypatch.setattr(h5_safe, "write_dataset", failing_write)
    with pytest.raises(KeyboardInterrupt):
        save(path)
    with open(path, "rb") as fh:
        assert fh.read() == good
    assert sorted(os.listdir(in_tmp_dir)) == [path]
    os.remove(path)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        save(path)
    assert os.listdir(in_tmp_dir) == []


def test_attribute_chunking_round_trip():
    names = [f"layer_{i:05d}_with_a_long_name" for i in range(4000)]
    with h5py.File("attrs.h5", "w") as f:
        h5_safe.write_string_list(f, "layer_names", names)
        assert "layer_names0" in f.attrs and "layer_names" not in f.attrs
    with h5_safe.open_h5("attrs.h5") as f:
        assert h5_safe.read_string_list(f, "layer_names") == names
