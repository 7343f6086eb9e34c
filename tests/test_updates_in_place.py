"""Optimizer updates written into the variables' own buffers (compiler/onnx/emit.py
`_updates_in_place`, runtime/program.py, `Variable.donatable`) and denormals flushed to zero
in kgraph's runs (runtime/native_ops.denormal_flags).

Oracles: the same training with every update written to fresh buffers (bit for bit), the
values a snapshot and a held array had when they were taken, and numpy's own arithmetic on
denormals in the thread that ran the sessions."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.compiler.onnx.emit import emit
from kgraph.compiler.passes import optimize
from kgraph.runtime import native_ops
from kgraph.runtime.onnx_exec import OrtCompiled
from kgraph.variables import Variable, snapshot_to_numpy

needs_library = pytest.mark.skipif(not native_ops.available(),
                                   reason="kgraph's onnxruntime operators are not built")


def _model():
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _data(n=96):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 12)).astype("float32"), rng.integers(0, 3, n)


def _slots(model):
    """Adam's m and v of every weight (the optimizer's scalars aside)."""
    return [v for v in model.optimizer.variables if len(v.shape) > 0]


def _state(model):
    return [w.numpy() for w in model.weights] + [v.numpy() for v in model.optimizer.variables]


@needs_library
def test_every_adam_output_may_be_written_in_place_the_weights_after_their_last_reader():
    model, (x, y) = _model(), _data(8)
    emitted = emit(optimize(model.trace_step("train", x, y)), native=True)
    updates = [n for n in emitted.nodes if n[0] == "kgraph.AdamUpdate"]
    assert len(updates) == 6  # a kernel and a bias per layer
    inputs = {i[0] for i in emitted.inputs}
    producer = {out: n for n in emitted.nodes for out in n[2]}
    for op, ins, outs, _ in updates:
        assert [emitted.aliases.get(out) for out in outs] == [ins[0], ins[2], ins[3]]
        assert {ins[0], ins[2], ins[3]} <= inputs
        readers = [n for n in emitted.nodes if ins[0] in n[1] and n[0] != op]
        if len(ins) == 6:  # waits for a gradient that follows the weight's other readers
            assert producer[ins[5]] is not None and ins[5] != ins[1]
        else:
            assert len(readers) <= 1  # the forward product alone, which the gradient follows
    # the later layers' kernels are read again by the input gradients: they wait
    assert sum(len(n[1]) == 6 for n in updates) >= 2


@needs_library
def test_steps_in_place_keep_their_buffers_and_train_bit_for_bit_as_fresh_ones(monkeypatch):
    x, y = _data()
    model = _model()
    model.train_on_batch(x[:32], y[:32])  # the first step writes fresh buffers the step owns
    slots = _slots(model)
    before = [v._device for v in slots]
    model.train_on_batch(x[32:64], y[32:64])
    assert all(v._device is b for v, b in zip(slots, before)) and len(slots) == 12
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    in_place = _state(model)

    monkeypatch.setattr(Variable, "donatable", lambda self, upload: False)
    fresh = _model()
    fresh.train_on_batch(x[:32], y[:32])
    before = [v._device for v in _slots(fresh)]
    fresh.train_on_batch(x[32:64], y[32:64])
    assert not any(v._device is b for v, b in zip(_slots(fresh), before))
    fresh.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
    for a, b in zip(in_place, _state(fresh)):
        np.testing.assert_array_equal(a, b)


@needs_library
@pytest.mark.parametrize("schedule", [False, True])
def test_the_step_counter_and_running_sums_are_written_in_place_where_one_node_reads_them(
        schedule):
    x, y = _data()
    keras.utils.set_random_seed(5)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3, activation="softmax")])
    rate = keras.optimizers.schedules.ExponentialDecay(1e-3, 10, 0.9) if schedule else 1e-3
    model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.train_on_batch(x[:32], y[:32])
    sums = [v for m in model.metrics for v in m.variables]
    assert len(sums) == 4  # the loss tracker's and the accuracy's total and count
    counter = model.optimizer.iterations
    before = [v._device for v in sums + [counter]]
    logs = model.train_on_batch(x[32:64], y[32:64], return_dict=True)
    assert all(v._device is b for v, b in zip(sums, before))
    # a schedule reads the counter too: its new value then gets a fresh buffer
    assert (counter._device is before[-1]) == (not schedule)
    assert counter.numpy() == 2 and sums[1].numpy() == 64 and 0 <= logs["accuracy"] <= 1


@needs_library
def test_a_snapshot_or_a_buffer_handed_out_keeps_its_value_after_later_steps():
    x, y = _data()
    model = _model()
    model.train_on_batch(x[:32], y[:32])
    variables = list(model.weights) + list(model.optimizer.variables)
    upload = model.optimizer.variables[0]._device_upload
    snapshots = [v.snapshot() for v in variables[:4]]
    handed = [v.device_buffer(upload) for v in variables[4:]]
    values = [v.numpy() for v in variables]
    model.train_on_batch(x[32:64], y[32:64])
    model.train_on_batch(x[64:], y[64:])
    moved = 0
    for v, value, held in zip(variables, values, snapshots + handed):
        np.testing.assert_array_equal(snapshot_to_numpy(held) if isinstance(held, np.ndarray)
                                      else held.numpy(), value)
        moved += not np.array_equal(v.numpy(), value)
    assert moved >= 8  # the steps did move them: only the held buffers stayed


def _mul_model():
    from onnx import TensorProto, helper

    info = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], "mul",
                              [info("x"), info("k")], [info("y")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


@pytest.mark.skipif(native_ops.denormal_flags() is None,
                    reason="denormals are flushed where kgraph's library runs on x86 only")
@pytest.mark.parametrize("flush", [True, False])
def test_runs_flush_denormals_and_numpy_keeps_its_own(flush, monkeypatch):
    if not flush:
        monkeypatch.setenv("KGRAPH_FLUSH_DENORMALS", "0")
    tiny = np.array([1e-39, -3e-40, 1e-30], np.float32)  # two denormals, one normal
    one = np.array([1.0], np.float32)
    compiled = OrtCompiled(_mul_model())
    got = compiled.to_numpy(compiled.run({"x": tiny, "k": one})[0])
    bound = compiled.to_numpy(compiled.binder().run({"x": tiny, "k": one})[0])
    want = np.array([0.0, 0.0, 1e-30], np.float32) if flush else tiny
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(bound, want)
    assert (tiny * one)[0] == np.float32(1e-39)  # this thread's numpy: denormals as ever
