"""steps_per_execution=K runs K training steps per executor call; the static ("TPU-like")
target compiles fixed shapes and insists on a static batch."""
import numpy as np
import pytest

import kgraph
from kgraph import keras
from kgraph.keras.execution import StaticShapeError
from kgraph.runtime.program import Program


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12), dtype=np.float32), rng.integers(0, 3, n)


def _model(steps_per_execution=1, backend=None, dropout=0.0):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((12,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dropout(dropout),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy",
                  metrics=["accuracy"], steps_per_execution=steps_per_execution,
                  backend=backend)
    return model


class _CountCalls:
    def __init__(self, monkeypatch):
        self.calls = 0
        original = Program.__call__

        def counted(program, *arrays):
            self.calls += 1
            return original(program, *arrays)
        monkeypatch.setattr(Program, "__call__", counted)


def test_k_steps_per_call_train_exactly_as_one_step_per_call():
    x, y = _data(203)  # 13 batches of 16: three full groups of 4, then one batch alone
    one, four = _model(1), _model(4)
    h1 = one.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    h4 = four.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert h1.history == h4.history
    for a, b in zip(one.get_weights(), four.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert four.optimizer.iterations.numpy() == 2 * 13


def test_one_executor_call_per_group_and_one_callback_per_group(monkeypatch):
    x, y = _data(128)
    model = _model(4)
    ends = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: ends.append(b))
    counter = _CountCalls(monkeypatch)
    model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0, callbacks=[cb])
    assert counter.calls == 2  # 8 batches in groups of 4
    assert ends == [3, 7]


def test_each_unrolled_step_draws_its_own_dropout_mask():
    x, y = _data(32)
    model = _model(3, dropout=0.5)
    model.build((None, 12))
    stacked = (np.stack([x[:8]] * 3), np.stack([y[:8]] * 3), None)
    graph = model.trace_step("train", *stacked, steps=3)
    key = graph.rng_key
    derived = [n for n in graph.nodes if n.op == "Add" and key in n.inputs]
    assert len(derived) == 2  # steps 1 and 2 derive keys; step 0 uses the key itself
    # and training with dropout under K=3 still learns
    history = model.fit(*_data(96), batch_size=8, epochs=3, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_static_target_refuses_a_partial_last_batch():
    model = _model(backend="static")
    x, y = _data(100)
    with pytest.raises(StaticShapeError, match=r"dimension 0.*last batch of 4"):
        model.fit(x, y, batch_size=16, verbose=0)
    with pytest.raises(StaticShapeError, match="dimension 0"):
        model.evaluate(x, y, batch_size=16, verbose=0)


def test_static_target_refuses_a_dataset_without_drop_remainder():
    model = _model(backend="static")
    x, y = _data(100)
    dataset = kgraph.data.Dataset.from_tensor_slices((x, y)).batch(16)
    with pytest.raises(StaticShapeError, match=r"drop_remainder=True"):
        model.fit(dataset, verbose=0)


@pytest.mark.tvm
def test_static_target_trains_k_steps_per_call_as_onnxruntime_does():
    pytest.importorskip("tvm")
    x, y = _data(96)
    dataset = kgraph.data.Dataset.from_tensor_slices((x, y)).batch(16, drop_remainder=True)
    reference = _model(2)
    static = _model(2, backend="static")
    h_ref = reference.fit(dataset, epochs=2, verbose=0)
    h_static = static.fit(dataset, epochs=2, verbose=0)
    np.testing.assert_allclose(h_static.history["loss"], h_ref.history["loss"], rtol=1e-5)
    for a, b in zip(static.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # predict pads a partial last batch to the compiled batch size and drops the padding
    np.testing.assert_allclose(static.predict(x[:37], batch_size=16, verbose=0),
                               reference.predict(x[:37], verbose=0), rtol=1e-5, atol=1e-6)
