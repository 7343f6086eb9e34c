"""Compiled artifacts: `compile_model` writes them, `kgraph.runtime.load` verifies and runs
them. Oracles: `model.predict` and `model.train_on_batch` on the same model."""
import json
import os

import numpy as np
import onnx
import pytest

from kgraph import keras
from kgraph import runtime
from kgraph.compiler.artifact import CompileError, check_onnx_file, compile_model, write_artifact
from kgraph.compiler.export import export_onnx_model
from kgraph.keras import layers as L
from kgraph.runtime.artifact import ArtifactError, InputError
from test_export_onnx import stock_session

RNG = np.random.default_rng(1)
X = RNG.normal(size=(10, 6)).astype("float32")
Y = RNG.integers(0, 3, size=10)


def mlp(dropout=0.0):
    model = keras.Sequential([keras.Input(shape=(6,)), L.Dense(8, activation="relu"),
                              L.BatchNormalization(), L.Dropout(dropout),
                              L.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X, Y, epochs=1, batch_size=5, verbose=0)
    return model


def two_heads():
    a, b = keras.Input(shape=(3,), name="a"), keras.Input(shape=(2,), name="b")
    h = L.Dense(4, activation="tanh")(L.Concatenate()([a, b]))
    return keras.Model({"a": a, "b": b}, [L.Dense(2, name="p")(h), L.Dense(1, name="q")(h)])


def test_cpu_artifact_predicts_like_the_model(tmp_path):
    model = mlp()
    path = compile_model(model, tmp_path / "art")
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["inputs"] == [{"name": model.inputs[0].name, "shape": [None, 6],
                                   "dtype": "float32"}]
    assert set(manifest["files"]) == {"model.onnx"} and manifest["versions"]["onnxruntime"]
    loaded = runtime.load(path)
    for batch in (10, 1):
        np.testing.assert_allclose(loaded.predict(X[:batch]), model.predict(X[:batch], verbose=0),
                                   atol=1e-5)
    np.testing.assert_allclose(loaded.predict(X.astype("float64")),
                               model.predict(X, verbose=0), atol=1e-5)


def test_named_inputs_and_several_outputs(tmp_path):
    model = two_heads()
    loaded = runtime.load(compile_model(model, tmp_path / "art"))
    x = {"a": RNG.normal(size=(4, 3)).astype("float32"),
         "b": RNG.normal(size=(4, 2)).astype("float32")}
    assert loaded.output_names == ["p", "q"]
    for got, want in zip(loaded.predict(x), model.predict(x, verbose=0)):
        np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(InputError, match="missing \\['b'\\]"):
        loaded.predict({"a": x["a"]})
    with pytest.raises(InputError, match=r"expects shape \(batch, 2\).*\(4, 5\)"):
        loaded.predict({"a": x["a"], "b": np.zeros((4, 5), "float32")})
    with pytest.raises(InputError, match="same batch size"):
        loaded.predict({"a": x["a"], "b": x["b"][:2]})


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "manifest", "escape",
                                    "version"])
def test_damaged_artifacts_are_refused_naming_the_file(tmp_path, damage):
    art = tmp_path / "art"
    compile_model(mlp(), art, train=True)
    manifest_path = art / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if damage == "flip":
        data = bytearray((art / "state.npz").read_bytes())
        data[len(data) // 2] ^= 0x01
        (art / "state.npz").write_bytes(bytes(data))
        expected = "state.npz"
    elif damage == "truncate":
        data = (art / "model.onnx").read_bytes()
        (art / "model.onnx").write_bytes(data[:-10])
        expected = "model.onnx"
    elif damage == "delete":
        os.remove(art / "train.onnx")
        expected = "train.onnx is missing"
    elif damage == "manifest":
        os.remove(manifest_path)
        expected = "manifest.json is missing"
    elif damage == "escape":
        manifest["files"]["../outside"] = "0" * 64
        manifest_path.write_text(json.dumps(manifest))
        expected = "outside itself: '../outside'"
    else:
        manifest["format_version"] = 99
        manifest_path.write_text(json.dumps(manifest))
        expected = "format_version=99"
    with pytest.raises(ArtifactError, match=expected.replace(".", "\\.").replace("(", "\\(")):
        runtime.load(art)


def test_train_artifact_steps_like_train_on_batch_then_saves(tmp_path):
    model = mlp()
    art = tmp_path / "art"
    compile_model(model, art, train=True)
    loaded = runtime.load(art)
    for start in (0, 5):
        logs = loaded.train_step(X[start:start + 5], Y[start:start + 5])
        model.reset_metrics()
        want = model.train_on_batch(X[start:start + 5], Y[start:start + 5], return_dict=True)
        assert logs["loss"] == pytest.approx(want["loss"], abs=1e-5)
        assert logs["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
    expected = model.predict(X, verbose=0)
    np.testing.assert_allclose(loaded.predict(X), expected, atol=1e-5)
    loaded.save()
    names = sorted(os.listdir(art))
    assert names == ["manifest.json", "model.r1.onnx", "state.r1.npz", "train.onnx"]
    again = runtime.load(art)
    np.testing.assert_allclose(again.predict(X), expected, atol=1e-5)
    state = again.state()
    assert int(state["adam/iteration"]) == int(model.optimizer.iterations.numpy())
    # the saved inference graph alone (stock onnxruntime, no state file) has the new weights
    session = stock_session(art / "model.r1.onnx")
    np.testing.assert_allclose(session.run(None, {model.inputs[0].name: X})[0], expected, atol=1e-5)


def test_train_artifact_with_dropout_draws_fresh_keys(tmp_path):
    loaded = runtime.load(compile_model(mlp(dropout=0.5), tmp_path / "art", train=True))
    before = loaded.predict(X)
    losses = [loaded.train_step(X, Y)["loss"] for _ in range(3)]
    assert all(np.isfinite(losses)) and len(set(losses)) == 3
    assert not np.allclose(loaded.predict(X), before)


def test_compile_refusals(tmp_path):
    model = mlp()
    with pytest.raises(CompileError, match="--batch-size"):
        compile_model(model, tmp_path / "a", target="static")
    with pytest.raises(CompileError, match="target='tpu'"):
        compile_model(model, tmp_path / "a", target="tpu")
    with pytest.raises(CompileError, match="--target cpu"):
        compile_model(model, tmp_path / "a", target="llvm", train=True)
    uncompiled = keras.Sequential([keras.Input(shape=(2,)), L.Dense(1)])
    with pytest.raises(CompileError, match="compiled model"):
        compile_model(uncompiled, tmp_path / "a", train=True)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="Refusing to overwrite"):
        compile_model(model, tmp_path / "busy")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["busy"]  # nothing half-made left behind


def test_onnx_file_is_checked_before_compiling(tmp_path):
    model = two_heads()
    proto = export_onnx_model(model)
    good = tmp_path / "m.onnx"
    onnx.save(proto, str(good))
    loaded = runtime.load(write_artifact(tmp_path / "art", check_onnx_file(str(good))))
    x = {"a": np.ones((2, 3), "float32"), "b": np.ones((2, 2), "float32")}
    np.testing.assert_allclose(loaded.predict(x)[0], model.predict(x, verbose=0)[0], atol=1e-5)

    outside = onnx.load(str(good))
    tensor = outside.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.ClearField("raw_data")
    tensor.external_data.add(key="location", value="../../etc/passwd")
    onnx.save(outside, str(tmp_path / "outside.onnx"))
    with pytest.raises(CompileError, match="outside the model's folder"):
        check_onnx_file(str(tmp_path / "outside.onnx"))
    for field, value, message in (("ir_version", 14, "IR version 14"),
                                  ("opset", 99, "opset 99")):
        bad = onnx.load(str(good))
        if field == "ir_version":
            bad.ir_version = value
        else:
            bad.opset_import[0].version = value
        onnx.save(bad, str(tmp_path / "bad.onnx"))
        with pytest.raises(CompileError, match=message):
            check_onnx_file(str(tmp_path / "bad.onnx"))


@pytest.mark.tvm
@pytest.mark.parametrize("target", ["llvm", "static"])
def test_tvm_artifacts_predict_like_the_model(tmp_path, target):
    pytest.importorskip("tvm")
    model = mlp()
    art = compile_model(model, tmp_path / "art", target=target,
                        batch_size=4 if target == "static" else None)
    manifest = json.loads((tmp_path / "art" / "manifest.json").read_text())
    assert manifest["library"] in manifest["files"]
    loaded = runtime.load(art)
    for batch in (10, 3):  # static: 4 + 4 + 2 padded, and one padded chunk
        np.testing.assert_allclose(loaded.predict(X[:batch]),
                                   model.predict(X[:batch], verbose=0), atol=1e-5)


@pytest.mark.tvm
def test_cuda_artifact_cross_compiles_and_runs_only_where_a_gpu_is(tmp_path):
    tvm = pytest.importorskip("tvm")
    model = mlp()
    art = compile_model(model, tmp_path / "art", target="cuda:sm_90")
    assert (tmp_path / "art" / "model.cuda_sm_90.so").stat().st_size > 0
    if tvm.cuda(0).exist:
        np.testing.assert_allclose(runtime.load(art).predict(X), model.predict(X, verbose=0),
                                   atol=1e-5)
    else:
        with pytest.raises(ArtifactError, match="cannot run here: No TVM device 'cuda'"):
            runtime.load(art)
