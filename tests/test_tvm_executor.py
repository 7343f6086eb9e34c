"""kgraph's TVM executor: training and inference equal to onnxruntime step for step, buffers
resident as TVM tensors, the disk cache of compiled libraries, exported libraries."""
import os
import shutil
import stat
import subprocess

import numpy as np
import pytest
from test_learning import digits_cnn
from tvm_helper import require_tvm, tvm_compiled

from kgraph import keras
from kgraph.applications import MLP
from kgraph.compiler.onnx import to_onnx
from kgraph.compiler.passes import optimize
from kgraph.compiler.program import trace_graph
from kgraph.datasets import load_digits

pytestmark = pytest.mark.tvm


@pytest.fixture(autouse=True)
def _tvm_home(tmp_path_factory, monkeypatch):
    """Every test compiles into one private KGRAPH_HOME of this session."""
    require_tvm()
    home = tmp_path_factory.getbasetemp() / "kgraph-home"
    home.mkdir(mode=0o700, exist_ok=True)
    monkeypatch.setenv("KGRAPH_HOME", str(home))


def _mlp(seed=0, backend=None):
    keras.utils.set_random_seed(seed)
    model = MLP()
    model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], backend=backend)
    return model


def _mlp_data(n=192):
    rng = np.random.default_rng(0)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def _fit_both(make, x, y, **fit):
    """(model, history) trained on onnxruntime and on TVM from the same seed."""
    runs = {}
    for backend in ("onnxruntime", "tvm"):
        model = make(backend=backend)
        runs[backend] = model, model.fit(x, y, verbose=0, **fit).history
    return runs


def _assert_same_training(runs):
    """Loss and metric history within 1e-5. Final weights within 1e-5 but for a few elements:
    TVM and onnxruntime sum a 784-long dot product in different orders (float32), and Adam
    divides by sqrt(v), which turns a 1e-7 gradient difference on a unit that hardly fires
    into a 2e-5 weight difference (48 of 200704 kernel elements in the MLP)."""
    (ort_model, ort_hist), (tvm_model, tvm_hist) = runs["onnxruntime"], runs["tvm"]
    for name in ort_hist:
        np.testing.assert_allclose(tvm_hist[name], ort_hist[name], rtol=1e-5, atol=1e-5,
                                   err_msg=name)
    for w_ort, w_tvm in zip(ort_model.weights, tvm_model.weights):
        got, want = w_tvm.numpy(), w_ort.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=5e-5, err_msg=w_ort.path)
        assert np.mean(~np.isclose(got, want, rtol=1e-5, atol=1e-5)) < 1e-3, w_ort.path


@pytest.fixture(scope="module")
def mlp_runs():
    x, y = _mlp_data()
    return _fit_both(_mlp, x, y, batch_size=64, epochs=2, shuffle=False)


def test_fit_on_tvm_trains_the_benchmark_mlp_as_onnxruntime_does(mlp_runs):
    _assert_same_training(mlp_runs)
    assert mlp_runs["tvm"][1]["loss"][-1] < mlp_runs["tvm"][1]["loss"][0]


def test_parameters_stay_tvm_tensors_between_steps():
    import tvm

    model = _mlp(backend="tvm")
    x, y = _mlp_data(64)
    for _ in range(2):
        model.train_on_batch(x, y)
    buffers = [w._device for w in model.weights + model.optimizer.variables]
    assert all(isinstance(b, tvm.runtime.Tensor) for b in buffers), {type(b) for b in buffers}
    assert all(b.device == tvm.cpu() for b in buffers)


def test_predict_and_evaluate_on_tvm_match_onnxruntime(mlp_runs):
    x, y = _mlp_data(100)  # a last partial batch: the symbolic batch dim serves both sizes
    ort_model, tvm_model = mlp_runs["onnxruntime"][0], mlp_runs["tvm"][0]
    tvm_model.set_weights(ort_model.get_weights())
    np.testing.assert_allclose(tvm_model.predict(x, batch_size=64, verbose=0),
                               ort_model.predict(x, batch_size=64, verbose=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tvm_model.evaluate(x, y, batch_size=64, verbose=0),
                               ort_model.evaluate(x, y, batch_size=64, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_a_model_trained_on_tvm_runs_eagerly_on_onnxruntime_and_back():
    x, y = _mlp_data(64)
    model = _mlp(1)
    model.compile(model.optimizer, "sparse_categorical_crossentropy", backend="tvm")
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    on_tvm = model.predict(x, verbose=0)
    np.testing.assert_allclose(np.asarray(model(x)), on_tvm, rtol=1e-5, atol=1e-6)  # onnxruntime
    model.compile(model.optimizer, "sparse_categorical_crossentropy")  # onnxruntime steps
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    on_ort = model.predict(x, verbose=0)
    model.compile(model.optimizer, "sparse_categorical_crossentropy", backend="tvm")
    np.testing.assert_allclose(model.predict(x, verbose=0), on_ort, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_fit_on_tvm_trains_the_digits_cnn_as_onnxruntime_does():
    (x, y), _ = load_digits()
    runs = _fit_both(digits_cnn, x[:256, ..., None], y[:256], batch_size=64, epochs=2,
                     shuffle=False)
    _assert_same_training(runs)


def test_gradient_tape_step_with_the_tvm_backend():
    from kgraph import GradientTape, config

    x, y = _mlp_data(32)
    losses = {}
    for backend in ("onnxruntime", "tvm"):
        old = config.backend()
        config.set_backend(backend)
        try:
            keras.utils.set_random_seed(3)
            model = MLP(hidden_units=(16,))
            optimizer = keras.optimizers.SGD(0.1)
            loss_fn = keras.losses.SparseCategoricalCrossentropy()
            for _ in range(2):
                with GradientTape() as tape:
                    loss = loss_fn(y, model(x, training=True))
                grads = tape.gradient(loss, model.trainable_weights)
                optimizer.apply_gradients(zip(grads, model.trainable_weights))
            losses[backend] = (float(np.asarray(loss)), [w.numpy() for w in model.weights])
        finally:
            config.set_backend(old)
    assert losses["tvm"][0] == pytest.approx(losses["onnxruntime"][0], rel=1e-5)
    for w_tvm, w_ort in zip(losses["tvm"][1], losses["onnxruntime"][1]):
        np.testing.assert_allclose(w_tvm, w_ort, rtol=1e-5, atol=1e-6)


# -- the disk cache -------------------------------------------------------------------------
def _small_onnx(units=3):
    w = np.arange(4 * units, dtype=np.float32).reshape(4, units) / 10
    graph = optimize(trace_graph("affine", [("x", (None, 4), "float32")],
                                 lambda x: {"y": keras.ops.relu(x @ w + 1.0)}))
    return to_onnx(graph), lambda x: np.maximum(x @ w + 1.0, 0)


def _cache_files(home):
    root = os.path.join(home, "cache", "tvm")
    return sorted(f for f in os.listdir(root) if f.endswith(".so")) if os.path.isdir(root) else []


@pytest.fixture
def fresh_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("KGRAPH_HOME", str(home))
    return str(home)


def test_compiled_libraries_are_cached_on_disk_in_a_private_directory(fresh_home, monkeypatch):
    from kgraph.compiler.tvm import build as tvm_build
    from kgraph.compiler.tvm import compile_onnx

    model, reference = _small_onnx()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    first = compile_onnx(model)
    np.testing.assert_allclose(first.run_numpy({"x": x})[0], reference(x), rtol=1e-5, atol=1e-6)
    root = os.path.join(fresh_home, "cache", "tvm")
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    assert len(_cache_files(fresh_home)) == 1

    def no_build(*args, **kwargs):
        raise AssertionError("a cached graph was compiled again")

    monkeypatch.setattr(tvm_build, "build_executable", no_build)
    again = compile_onnx(model)
    np.testing.assert_allclose(again.run_numpy({"x": x})[0], reference(x), rtol=1e-5, atol=1e-6)


def test_a_corrupted_cache_entry_is_discarded_and_rebuilt(fresh_home):
    from kgraph.compiler.tvm import compile_onnx
    from kgraph.compiler.tvm.disk_cache import sha256_file

    model, reference = _small_onnx(units=5)
    compile_onnx(model)
    (name,) = _cache_files(fresh_home)
    path = os.path.join(fresh_home, "cache", "tvm", name)
    with open(path, "r+b") as f:
        f.seek(100)
        f.write(b"\xff" * 16)
    x = np.ones((2, 4), np.float32)
    with pytest.warns(UserWarning, match="sha256"):
        rebuilt = compile_onnx(model)
    np.testing.assert_allclose(rebuilt.run_numpy({"x": x})[0], reference(x), rtol=1e-5, atol=1e-6)
    with open(path[:-3] + ".sha256") as f:
        assert f.read() == sha256_file(path)


def test_a_group_writable_cache_directory_is_refused_and_compiles_stay_in_memory(fresh_home):
    from kgraph.compiler.tvm import UnsafeCacheWarning, compile_onnx

    root = os.path.join(fresh_home, "cache", "tvm")
    os.makedirs(root)
    os.chmod(os.path.join(fresh_home, "cache"), 0o700)
    os.chmod(root, 0o777)
    model, reference = _small_onnx(units=2)
    with pytest.warns(UnsafeCacheWarning, match="0o?777|rwxrwxrwx"):
        compiled = compile_onnx(model)
    x = np.ones((3, 4), np.float32)
    np.testing.assert_allclose(compiled.run_numpy({"x": x})[0], reference(x), rtol=1e-5, atol=1e-6)
    assert os.listdir(root) == []


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user's needs root")
def test_a_cache_directory_owned_by_another_user_is_refused(fresh_home):
    from kgraph.compiler.tvm import DiskCache, UnsafeCacheWarning

    root = os.path.join(fresh_home, "cache", "tvm")
    os.makedirs(root, mode=0o700)
    os.chown(root, 12345, 12345)
    with pytest.warns(UnsafeCacheWarning, match="uid 12345"):
        assert not DiskCache().usable


# -- exported libraries ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def predict_model():
    keras.utils.set_random_seed(0)
    model = MLP(input_shape=(12,), hidden_units=(16,), classes=3)
    x = np.random.default_rng(0).random((8, 12), dtype=np.float32)
    graph = optimize(model.trace_step("predict", x))
    feeds = {v.node.attrs["name"]: var.numpy() for var, v in graph.variables.items()}
    return model, to_onnx(graph), x, feeds


@pytest.mark.parametrize("target", ["llvm", "static"])
def test_exported_library_loads_and_equals_predict(predict_model, target, tmp_path):
    from kgraph.compiler.tvm import export_library
    from kgraph.compiler.tvm.importer import onnx_signature
    from kgraph.runtime.tvm_exec import load_library

    model, onnx_model, x, feeds = predict_model
    inputs, outputs, dtypes = onnx_signature(onnx_model)
    static = {name: np.shape(feeds.get(name, x)) for name in inputs} if target == "static" else None
    messages = []
    path = export_library(onnx_model, target, str(tmp_path / "model.so"), static_shapes=static,
                          progress=messages.append)
    assert os.path.getsize(path) > 0 and messages
    compiled = load_library(path, inputs, outputs, "cpu", dtypes)
    got = compiled.run_numpy({**feeds, "x_0": x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_static_export_needs_every_dim(predict_model, tmp_path):
    from kgraph.compiler.tvm import export_library

    with pytest.raises(ValueError, match="x_0"):
        export_library(predict_model[1], "static", str(tmp_path / "m.so"))


def test_cuda_library_cross_compiles_without_a_gpu(predict_model, tmp_path):
    from kgraph.compiler.tvm import build_executable, export_library

    onnx_model = predict_model[1]
    path = export_library(onnx_model, "cuda:sm_80", str(tmp_path / "model_cuda.so"))
    with open(path, "rb") as f:
        assert b"__global__" in f.read()  # CUDA source, compiled when the library is loaded
    if shutil.which("nvcc") is None:
        return
    def modules(module):
        yield module
        for imported in module.imports:
            yield from modules(imported)

    executable = build_executable(onnx_model, "cuda")
    (source,) = [m.inspect_source() for m in modules(executable.mod) if m.kind == "cuda"]
    (tmp_path / "kernels.cu").write_text(source)
    done = subprocess.run(["nvcc", "--fatbin", "-arch=sm_90", "-o", str(tmp_path / "k.fatbin"),
                           str(tmp_path / "kernels.cu")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_tvm_compiled_handles_passthrough_and_shape_outputs():
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, [3])
    s = helper.make_tensor_value_info("s", TensorProto.INT64, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph([helper.make_node("Shape", ["x"], ["s"]),
                               helper.make_node("Add", ["x", "w"], ["y"])], "g", [x, w], [s, w, y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    compiled = tvm_compiled(model)
    xs, ws = np.ones((4, 3), np.float32), np.arange(3, dtype=np.float32)
    shape, same_w, total = compiled.run_numpy({"x": xs, "w": ws})
    np.testing.assert_array_equal(shape, [4, 3])
    np.testing.assert_array_equal(same_w, ws)
    np.testing.assert_array_equal(total, xs + ws)


def test_tuning_measures_schedules_and_a_second_compile_reuses_the_record(fresh_home,
                                                                           monkeypatch):
    from kgraph.compiler.tvm import compile_onnx, tuning
    from kgraph.compiler.tvm.disk_cache import DiskCache

    model, reference = _small_onnx(units=16)
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    messages = []
    monkeypatch.setattr(tuning, "_time", lambda executable, arrays: messages.append(1) or 1.0)
    tuned = compile_onnx(model, static_shapes={"x": (8, 4)}, tune_trials=3)
    np.testing.assert_allclose(tuned.run_numpy({"x": x})[0], reference(x), rtol=1e-5, atol=1e-6)
    assert len(messages) == 3
    root = DiskCache().root
    for name in _cache_files(fresh_home):  # drop the library, keep the tuning record
        os.remove(os.path.join(root, name))
    monkeypatch.setattr(tuning, "_time", lambda *args: pytest.fail("measured again"))
    again = compile_onnx(model, static_shapes={"x": (8, 4)}, tune_trials=3)
    np.testing.assert_allclose(again.run_numpy({"x": x})[0], reference(x), rtol=1e-5, atol=1e-6)


def test_an_exported_library_runs_with_tvm_runtime_only(predict_model, tmp_path):
    """TVM_USE_RUNTIME_LIB=1: TVM's runtime library alone (no compiler), as on a deployment
    box; the executor must not import TVM's Relax frontend or compiler."""
    import json
    import sys

    from kgraph.compiler.tvm import export_library
    from kgraph.compiler.tvm.importer import onnx_signature

    model, onnx_model, x, feeds = predict_model
    inputs, outputs, dtypes = onnx_signature(onnx_model)
    path = export_library(onnx_model, "llvm", str(tmp_path / "model.so"))
    np.savez(tmp_path / "feeds.npz", **{n.replace("/", "|"): v
                                         for n, v in {**feeds, "x_0": x}.items()})
    script = f"""
import json, sys, numpy as np
from kgraph.runtime.tvm_exec import load_library
data = np.load({str(tmp_path / "feeds.npz")!r})
feeds = {{k.replace("|", "/"): data[k] for k in data.files}}
compiled = load_library({path!r}, {inputs!r}, {outputs!r}, "cpu", {dtypes!r})
np.save({str(tmp_path / "out.npy")!r}, compiled.run_numpy(feeds)[0])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("tvm.relax"))))
"""
    env = {**os.environ, "TVM_USE_RUNTIME_LIB": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_gpu_bench_build_cross_compiles_its_artifacts(tmp_path):
    """The half of tools/gpu_bench.py that runs here: CUDA libraries + feeds + manifest."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "gpu_bench", os.path.join(os.path.dirname(__file__), "..", "tools", "gpu_bench.py"))
    gpu_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_bench)
    gpu_bench.build(str(tmp_path), only=["mlp_predict_b1"], progress=lambda message: None)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    spec = manifest["workloads"]["mlp_predict_b1"]
    assert manifest["arch"] == "sm_90" and spec["inputs"][0] == "x_0"
    data = np.load(tmp_path / "mlp_predict_b1.npz")
    feeds = [f for f in data.files if f.startswith("arr_")]
    refs = [f for f in data.files if f.startswith("ref_")]
    assert len(feeds) == len(spec["inputs"]) and data["arr_0"].shape == (1, 784)
    # onnxruntime's outputs on this CPU, what the GPU run checks its own against
    assert len(refs) == len(spec["outputs"]) == 1 and data["ref_0"].shape == (1, 10)
    np.testing.assert_allclose(data["ref_0"].sum(), 1.0, rtol=1e-5)  # a softmax
    assert b"__global__" in (tmp_path / "mlp_predict_b1.so").read_bytes()


def test_threads_run_one_compiled_step_on_their_own_vms():
    from concurrent.futures import ThreadPoolExecutor

    model, reference = _small_onnx(units=8)
    compiled = tvm_compiled(model)
    inputs = [np.random.default_rng(i).normal(size=(3 + i, 4)).astype(np.float32)
              for i in range(8)]

    def work(x):
        runner = compiled.binder()
        return [compiled.to_numpy(runner.run({"x": x})[0]) for _ in range(20)][-1]

    with ThreadPoolExecutor(4) as pool:
        for x, got in zip(inputs, pool.map(work, inputs)):
            np.testing.assert_allclose(got, reference(x), rtol=1e-5, atol=1e-6)


def test_compiling_for_a_missing_cuda_device_raises_a_typed_error_first(monkeypatch):
    import tvm

    from kgraph.compiler.tvm import build as tvm_build
    from kgraph.compiler.tvm import compile_onnx
    from kgraph.runtime.tvm_exec import TvmDeviceError

    if tvm.cuda(0).exist:
        pytest.skip("a CUDA device is present")
    monkeypatch.setattr(tvm_build, "build_executable", lambda *a, **k: pytest.fail("built"))
    with pytest.raises(TvmDeviceError, match="cuda"):
        compile_onnx(_small_onnx()[0], device="cuda")


def test_concat_gradient_along_an_unknown_batch_axis_runs_on_tvm():
    """A batch of real and fake images (DCGAN): concat along the batch axis, whose sizes are
    known only at run time, differentiated and compiled once for every batch size (the two
    inputs share one batch symbol, as every graph input's first dim does)."""
    from kgraph import ops
    from kgraph.compiler.autodiff import gradients
    from kgraph.compiler.build import compile_graph
    from kgraph.ir.graph import Graph, tracing

    graph = Graph("concat_unknown_batch")
    real, fake = (graph.placeholder(n, (None, 3), "float32") for n in ("real", "fake"))
    with tracing(graph):
        both = ops.concatenate([real, fake], axis=0)
        loss = ops.sum(both * both * graph.constant(np.float32([1.0, 2.0, 3.0])))
        g_real, g_fake = gradients(graph, loss, [real, fake])
    graph.set_outputs({"loss": loss, "g_real": g_real, "g_fake": g_fake})
    compiled = tvm_compiled(graph)
    reference = compile_graph(graph, "numpy")
    rng = np.random.default_rng(0)
    for n in (2, 5):
        feeds = {"real": rng.normal(size=(n, 3)).astype(np.float32),
                 "fake": rng.normal(size=(n, 3)).astype(np.float32)}
        got = [np.asarray(compiled.to_numpy(o)) for o in compiled.run(feeds)]
        for g, w in zip(got, reference.run(feeds)):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got[2], 2 * feeds["fake"] * [1.0, 2.0, 3.0], rtol=1e-6)
