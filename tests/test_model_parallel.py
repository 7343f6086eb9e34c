"""Model parallelism: `kgraph.device` scopes place layers, the compiler cuts the step graph at
device boundaries (compiler/passes/partition_by_device.py) and the runtime moves tensors
between executors (runtime/partitioned.py). Several CPU executors stand in for devices
(`set_device_executors`); results are compared with the same model unplaced."""
import contextlib
import subprocess
import sys
import warnings

import numpy as np
import pytest

import kgraph as tf
from kgraph import keras
from kgraph.compiler.passes import optimize
from kgraph.compiler.passes.partition_by_device import assign_devices, partition_by_device
from kgraph.device import (DevicePlacementError, DevicePlacementWarning, canonical,
                           current_device, placement_of, set_device_executors,
                           set_soft_device_placement)
from kgraph.ir.verify import verify
from kgraph.runtime.partitioned import PartitionedCompiled

kdevice = sys.modules["kgraph.device"]  # `kgraph.device` is the scope function


@pytest.fixture(autouse=True)
def _fresh_placement_settings():
    saved = dict(kdevice._settings)
    yield
    kdevice._settings.update(saved)


def _scope(name, placed):
    return tf.device(name) if placed else contextlib.nullcontext()


def _mlp(placed, seed=3):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    with _scope("/gpu:0", placed):
        hidden = keras.layers.Dense(12, activation="tanh", name="first")(inputs)
    with _scope("/gpu:1", placed):
        outputs = keras.layers.Dense(3, name="second")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


def _data(n=48, features=6, classes=3):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, features)).astype("float32"),
            rng.normal(size=(n, classes)).astype("float32"))


def _train_program(model):
    (program,) = [p for k, p in model._programs.items() if k[0] == "train"]
    return program


def test_scope_names_and_errors():
    assert canonical("/job:localhost/replica:0/task:0/device:GPU:1") == "/gpu:1"
    assert canonical("/cpu") == "/cpu:0"
    with tf.device_scope("/GPU:1"):
        assert current_device() == "/gpu:1"
        with tf.device("/cpu:0"):
            assert current_device() == "/cpu:0"
        layer = keras.layers.Dense(2)
    assert current_device() is None and layer._device == "/gpu:1"
    with pytest.raises(ValueError, match="'/fpga:0'"):
        with tf.device("/fpga:0"):
            pass


def test_the_cut_nodes_devices_and_transfers():
    """Forward nodes on their layer's device, gradient nodes on their forward node's, the
    loss with the last layer; transfers exactly where the devices change."""
    model = _mlp(placed=True)
    x, y = _data(8)
    graph = optimize(model.trace_step("train", x, y).clone()[0])
    devices = assign_devices(graph)
    matmuls = [n for n in graph.nodes if n.op == "MatMul"]
    # forward first (x@k0 on gpu0, h@k1 on gpu1), then the gradients (on gpu1, then gpu0)
    assert [devices[n.id] for n in matmuls[:2]] == ["/gpu:0", "/gpu:1"]
    assert {devices[n.id] for n in matmuls[2:]} <= {"/gpu:0", "/gpu:1"} and len(matmuls) >= 4
    placement = placement_of(graph)
    for node in graph.nodes:  # explicit labels are kept as they were
        if node.id in placement and node.op not in ("Input", "Constant"):
            assert devices[node.id] == placement[node.id]
    kernels = {v.path: graph.updates[v] for v in graph.updates if v.path.endswith("kernel")}
    assert devices[kernels["first/kernel"].node.id] == "/gpu:0"
    assert devices[kernels["second/kernel"].node.id] == "/gpu:1"

    partition = partition_by_device(graph)
    order = [(s.number, s.device) for s in partition.stages]
    assert order[0] == (0, "/gpu:0") and (1, "/gpu:1") in order and (2, "/gpu:0") in order
    assert order == sorted(order, key=lambda k: k[0])  # stages run by number
    crossing = {(src, dst) for _, src, dst in partition.transfers}
    assert ("/gpu:0", "/gpu:1") in crossing and ("/gpu:1", "/gpu:0") in crossing
    produced = {n: s.device for s in partition.stages for n in s.output_names}
    for name, src, dst in partition.transfers:
        assert produced[name] == src
        assert any(name in s.input_names for s in partition.stages if s.device == dst)
    # no stage reads a value computed later: each input is a graph input or made earlier
    made = set(partition.input_names)
    for stage in partition.stages:
        verify(stage.graph, after="partition_by_device")
        assert set(stage.input_names) <= made
        made |= set(stage.output_names)
    # every computed node of the graph lands in exactly one stage
    computed = [n for n in graph.nodes if n.op not in ("Input", "Constant")]
    staged = [n for s in partition.stages for n in s.graph.nodes if n.op not in ("Input", "Constant")]
    assert sorted(n.op for n in staged) == sorted(n.op for n in computed)


def test_training_equals_the_unplaced_model():
    set_device_executors({"/gpu:0": "onnxruntime", "/gpu:1": "numpy"})
    x, y = _data()
    results = []
    for placed in (False, True):
        model = _mlp(placed)
        history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        results.append((model, history.history, model.predict(x, verbose=0),
                        model.evaluate(x, y, verbose=0)))
    (plain, h0, p0, e0), (placed, h1, p1, e1) = results
    program = _train_program(placed)
    assert isinstance(program.compiled, PartitionedCompiled)
    assert not isinstance(_train_program(plain).compiled, PartitionedCompiled)
    assert {"/gpu:0", "/gpu:1"} <= set(program.compiled.devices())
    assert program.compiled.transfers > 0
    for a, b in zip(plain.weights, placed.weights):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-6, err_msg=a.path)
    np.testing.assert_allclose(p1, p0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(h1["loss"], h0["loss"], rtol=1e-6)
    np.testing.assert_allclose(e1, e0, rtol=1e-6)


def test_shared_lstm_on_two_devices_trains_as_unplaced():
    """The FAQ's shared-LSTM layout, small: one LSTM called on /gpu:0 and /gpu:1, the merge
    and classifier on /cpu:0 (three executors)."""
    set_device_executors({"/gpu:0": "onnxruntime", "/gpu:1": "onnxruntime", "/cpu:0": "numpy"})
    rng = np.random.default_rng(1)
    a, b = (rng.normal(size=(12, 5, 4)).astype("float32") for _ in range(2))
    y = rng.integers(0, 2, size=(12, 1)).astype("float32")
    weights, outputs = [], []
    for placed in (False, True):
        keras.utils.set_random_seed(5)
        tweet_a, tweet_b = keras.Input((5, 4)), keras.Input((5, 4))
        shared_lstm = keras.layers.LSTM(3)
        with _scope("/gpu:0", placed):
            encoded_a = shared_lstm(tweet_a)
        with _scope("/gpu:1", placed):
            encoded_b = shared_lstm(tweet_b)
        with _scope("/cpu:0", placed):
            merged = keras.layers.concatenate([encoded_a, encoded_b], axis=-1)
            prediction = keras.layers.Dense(1, activation="sigmoid")(merged)
        model = keras.Model([tweet_a, tweet_b], prediction)
        model.compile(optimizer="sgd", loss="binary_crossentropy")
        model.fit([a, b], y, batch_size=6, epochs=1, verbose=0)
        weights.append([w.numpy() for w in model.weights])
        outputs.append(model.predict([a, b], verbose=0))
    assert set(_train_program(model).compiled.devices()) >= {"/gpu:0", "/gpu:1", "/cpu:0"}
    for w0, w1 in zip(*weights):
        np.testing.assert_allclose(w1, w0, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-6, atol=1e-6)


def test_missing_gpu_falls_back_to_cpu_with_one_warning(monkeypatch):
    monkeypatch.setattr(kdevice, "_visible_gpus", lambda: 0)
    kdevice._settings["warned"] = False
    x, y = _data()
    plain = _mlp(placed=False)
    plain.fit(x, y, batch_size=16, epochs=1, verbose=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        placed = _mlp(placed=True)
        placed.fit(x, y, batch_size=16, epochs=1, verbose=0)
        out = placed.predict(x, verbose=0)
    ours = [w for w in caught if issubclass(w.category, DevicePlacementWarning)]
    assert len(ours) == 1 and "'/gpu:" in str(ours[0].message)
    # every device fell back to the one CPU executor: the step is compiled whole
    assert not isinstance(_train_program(placed).compiled, PartitionedCompiled)
    np.testing.assert_allclose(out, plain.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_soft_placement_off_raises_naming_the_device(monkeypatch):
    monkeypatch.setattr(kdevice, "_visible_gpus", lambda: 0)
    tf.config.set_soft_device_placement(False)
    assert tf.config.get_soft_device_placement() is False
    x, y = _data(16)
    model = _mlp(placed=True)
    with pytest.raises(DevicePlacementError, match=r"'/gpu:0'.*set_soft_device_placement"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    set_soft_device_placement(True)
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)  # the same model now compiles


def test_scope_inside_a_custom_call_places_its_ops():
    """A subclassed model placing part of its call(): labels come from the scope active while
    the step is traced."""
    set_device_executors({"/gpu:1": "numpy"})

    class TwoPart(keras.Model):
        def __init__(self):
            super().__init__()
            self.a, self.b = keras.layers.Dense(5), keras.layers.Dense(2)

        def call(self, x):
            h = self.a(x)
            with tf.device("/gpu:1"):
                return self.b(h)

    keras.utils.set_random_seed(2)
    model = TwoPart()
    model.compile(optimizer="sgd", loss="mse")
    x, y = _data(16, 6, 2)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert "/gpu:1" in _train_program(model).compiled.devices()
    expected = (x @ model.a.kernel.numpy() + model.a.bias.numpy()) @ \
        model.b.kernel.numpy() + model.b.bias.numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_partitioned_runtime_imports_no_compiler():
    code = ("import sys, kgraph.runtime.partitioned; "
            "print(any(m.startswith('kgraph.compiler') or m == 'onnx' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
