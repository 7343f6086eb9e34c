"""`fit` on in-memory arrays: the step gathers its own shuffled batch from the whole arrays
(execution.Resident, trace_step's `indexed`), and per-batch logs are read back only for the
callbacks that take them. Oracle: the same fit with batches gathered on the host, which must
give the same history and weights bit for bit."""
import numpy as np
import pytest

from kgraph import keras
from kgraph.keras import data_adapter, execution, trainer
from kgraph.keras.input_checks import InvalidInputError
from kgraph.runtime.onnx_exec import _UPLOADERS, _Uploader


def _data(n=203, features=12, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, features), dtype=np.float32),
            rng.integers(0, classes, n).astype(np.int64))


def _model(spe=1, features=12, dropout=True):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((features,)),
                              keras.layers.Dense(8, activation="relu")] +
                             ([keras.layers.Dropout(0.3)] if dropout else []) +
                             [keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=spe)
    return model


@pytest.fixture
def host_gathers(monkeypatch):
    """Turns the resident path off: every batch is gathered on the host."""
    def off():
        monkeypatch.setattr(trainer.Trainer, "_resident", lambda self, adapter: None)
    return off


def _fit(model, *args, **kwargs):
    history = model.fit(*args, verbose=0, **kwargs)
    return history.history, [w.numpy() for w in model.weights]


def _same(a, b):
    assert a[0] == b[0]
    assert all(np.array_equal(p, q) for p, q in zip(a[1], b[1]))


@pytest.mark.parametrize("options", [
    {},
    {"spe": 4},  # 13 batches: three groups of 4 stacked, then one alone
    {"sample_weight": True},
    {"class_weight": {0: 1.0, 1: 2.0, 2: 0.5}},
    {"validation_split": 0.2},
])
def test_resident_fit_equals_host_gathered_fit(options, host_gathers):
    x, y = _data()
    options = dict(options)
    spe = options.pop("spe", 1)
    if options.pop("sample_weight", False):
        options["sample_weight"] = np.random.default_rng(2).random(len(x)).astype(np.float32)
    model = _model(spe)
    resident = _fit(model, x, y, batch_size=16, epochs=3, **options)
    assert any("indexed" in key for key in model._programs)
    host_gathers()
    model = _model(spe)
    host = _fit(model, x, y, batch_size=16, epochs=3, **options)
    assert not any("indexed" in key for key in model._programs)
    _same(resident, host)


def test_resident_fit_with_dict_inputs_equals_host(host_gathers):
    rng = np.random.default_rng(3)
    data = {"a": rng.random((90, 4), dtype=np.float32),
            "b": rng.integers(0, 7, (90, 2)).astype(np.int32)}
    y = rng.random((90, 1), dtype=np.float32)

    def build():
        keras.utils.set_random_seed(4)
        a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b", dtype="int32")
        merged = keras.layers.Concatenate()([a, keras.layers.Flatten()(
            keras.layers.Embedding(7, 3)(b))])
        model = keras.Model({"a": a, "b": b}, keras.layers.Dense(1)(merged))
        model.compile("sgd", "mse")
        return model

    resident = _fit(build(), data, y, batch_size=32, epochs=2)
    host_gathers()
    _same(resident, _fit(build(), data, y, batch_size=32, epochs=2))


def test_the_step_reads_the_arrays_own_memory():
    x, y = _data()
    model = _model()
    adapter = data_adapter.make_adapter(x, y, batch_size=16, shuffle=True)
    resident = model._resident(adapter)
    assert isinstance(resident, execution.Resident)
    upload = _UPLOADERS.setdefault("cpu", _Uploader("cpu"))
    buffers = resident.feeds(upload, np.arange(16))
    assert buffers[0].data_ptr() == x.ctypes.data  # not a copy
    again = resident.feeds(upload, np.arange(16, 32))
    assert again[0] is buffers[0] and again[-1] is buffers[-1]  # bound once
    np.testing.assert_array_equal(buffers[-1].numpy(), np.arange(16, 32))


@pytest.mark.parametrize("case", ["unshuffled", "strided", "generator"])
def test_other_data_is_gathered_on_the_host(case):
    x, y = _data()
    model = _model()
    if case == "unshuffled":
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, shuffle=False)
    elif case == "strided":  # a column slice: feeding it whole would copy it
        wide = np.concatenate([x, x], axis=1)[:, ::2]
        model.fit(wide, y, batch_size=16, epochs=1, verbose=0)
    else:
        def batches():
            for i in range(0, len(x), 16):
                yield x[i:i + 16], y[i:i + 16]
        model.fit(batches(), epochs=1, verbose=0)
    assert model._programs and not any("indexed" in key for key in model._programs)


def test_a_bad_label_anywhere_stops_fit_before_any_step():
    x, y = _data()
    y[150] = 3  # three classes
    model = _model()
    before = [w.numpy() for w in model.weights]
    with pytest.raises(InvalidInputError, match=r"in \[0, 2\], but the data holds 3"):
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(before, model.weights))


def test_batch_logs_reach_only_callbacks_that_take_them(host_gathers):
    x, y = _data()
    seen = []

    class PerBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, dict(logs)))

    class EpochsOnly(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(("epoch", dict(logs)))

    model = _model()
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0,
                        callbacks=[PerBatch(), EpochsOnly()])
    batches = [s for s in seen if s[0] != "epoch"]
    assert [b for b, _ in batches] == list(range(13)) * 2
    assert all(set(logs) == {"accuracy", "loss"} for _, logs in batches)
    epochs = [logs for tag, logs in seen if tag == "epoch"]
    assert [e["loss"] for e in epochs] == history.history["loss"]
    assert epochs[0]["loss"] == batches[12][1]["loss"]  # the epoch's logs: its last batch's

    # without a per-batch listener the epoch's logs are the same, read once
    seen.clear()
    model = _model()
    quiet = model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[EpochsOnly()])
    assert quiet.history == history.history


def test_listeners_skip_inherited_noops_and_see_instance_hooks():
    calls = []
    plain = keras.callbacks.Callback()
    patched = keras.callbacks.Callback()
    patched.on_train_batch_end = lambda batch, logs: calls.append(("instance", batch))

    class Legacy(keras.callbacks.Callback):
        def on_batch_end(self, batch, logs=None):  # the Keras 2 alias
            calls.append(("alias", batch))

    cbs = keras.callbacks.CallbackList([plain, patched, Legacy()])
    assert len(cbs.listeners("on_train_batch_end")) == 2
    assert cbs.listeners("on_train_batch_begin") == ()
    cbs.on_train_batch_end(5)
    assert calls == [("instance", 5), ("alias", 5)]
    cbs.callbacks.pop()  # the list changed: worked out again
    assert len(cbs.listeners("on_train_batch_end")) == 1


def test_repeated_steps_skip_rebinding_and_train_as_the_full_path(monkeypatch):
    """Program's repeated call (same feeds, every variable as the last step left it) trains
    bit for bit as the full path; a callback reading and snapshotting weights between steps
    sends the next step through the full path, and its snapshots keep their values."""
    from kgraph.variables import Variable, snapshot_to_numpy

    x, y = _data()
    kept = []
    original = Variable.kept

    def counting(self, *args):
        ok = original(self, *args)
        kept.append(ok)
        return ok
    monkeypatch.setattr(Variable, "kept", counting)
    held = []

    class Reader(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch % 3 == 0:
                w = self.model.weights[0]
                held.append((w.snapshot(), w.numpy()))

    model = _model(dropout=False)  # (a step drawing dropout masks takes a fresh key: no repeat)
    repeated = _fit(model, x, y, batch_size=16, epochs=3, callbacks=[Reader()])
    assert any(kept) and not all(kept)  # repeated steps, and full ones after each snapshot
    for snapshot, value in held:
        np.testing.assert_array_equal(snapshot_to_numpy(snapshot), value)

    monkeypatch.setattr(Variable, "kept", lambda self, *args: False)
    held.clear()
    _same(repeated, _fit(_model(dropout=False), x, y, batch_size=16, epochs=3,
                         callbacks=[Reader()]))


def test_fit_lets_go_of_the_dataset():
    import gc
    import weakref

    x, y = _data()
    model = _model()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    gone = weakref.ref(x)
    del x
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize("repeatable", [True, False])
def test_a_host_array_passed_again_is_read_again(repeatable, monkeypatch):
    """A train step called twice with the same numpy arrays, changed in between (a strided
    view: its upload is a copy), computes on the new values: only device buffers the caller
    keeps make a call repeatable. Oracle: the same calls with no call repeatable."""
    from kgraph.variables import Variable

    if not repeatable:
        monkeypatch.setattr(Variable, "kept", lambda self, *args: False)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False,
                                                                    kernel_initializer="ones")])
    model.compile(keras.optimizers.Adam(0.0), "mse")
    wide, y = np.ones((4, 6), np.float32), np.zeros((4, 1), np.float32)
    x = wide[:, ::2]
    model.train_on_batch(x, y)  # builds the step: loss 9
    program = next(p for key, p in model._programs.items() if key[0] == "train")
    losses = []
    for value in (1.0, 3.0, 3.0):
        wide[:] = value
        losses.append(float(program.to_numpy(program(x, y)[0])))
    assert losses == [9.0, 33.0, 45.0]  # the running mean of 9, 9, 81, 81
