"""The built-in callbacks: EarlyStopping, ModelCheckpoint, LearningRateScheduler,
ReduceLROnPlateau, CSVLogger, LambdaCallback, TerminateOnNaN (Keras 3 semantics)."""
import csv
import os

import numpy as np
import pytest

from faq_blocks import block
from kgraph import keras
from kgraph.keras import callbacks

RNG = np.random.default_rng(0)
X = RNG.random((20, 3), dtype=np.float32)
Y = (X @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)


def make_model(optimizer=None, metrics=None, build=True):
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer=optimizer or keras.optimizers.SGD(0.05), loss="mse",
                  metrics=metrics)
    if build:
        model.build((None, 3))
    return model


def drive(callback, model, values, key="val_loss"):
    """Run `callback` through epochs whose logs hold the scripted values; return the number
    of epochs run before `model.stop_training` was set."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {"loss": 1.0, key: value})
        if model.stop_training:
            return epoch + 1
    return len(values)


def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))


class WeightRecorder(callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


# -- EarlyStopping ------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, values, epochs", [
    (dict(patience=0), [1.0, 0.9, 0.95, 0.5], 3),
    (dict(patience=2), [1.0, 0.9, 0.95, 0.92, 0.91, 0.5], 4),
    (dict(patience=2), [1.0, 0.9, 0.8, 0.7, 0.6], 5),
    (dict(patience=2, min_delta=0.05), [1.0, 0.97, 0.96, 0.9], 3),
    (dict(patience=1, mode="max"), [0.1, 0.2, 0.2, 0.3], 3),
    (dict(patience=1, start_from_epoch=2), [1.0, 2.0, 3.0, 4.0, 5.0], 4),
    (dict(patience=2, baseline=0.5), [1.0, 1.1, 1.2, 1.3], 2),
])
def test_early_stopping_scripted(kwargs, values, epochs):
    stopper = callbacks.EarlyStopping(monitor="val_loss", **kwargs)
    assert drive(stopper, make_model(), values) == epochs
    if epochs < len(values):
        assert stopper.stopped_epoch == epochs - 1


def test_early_stopping_is_reusable_and_warns_on_missing_monitor():
    stopper = callbacks.EarlyStopping(patience=1)
    model = make_model()
    assert drive(stopper, model, [1.0, 2.0, 3.0]) == 2
    assert drive(stopper, model, [1.0, 0.5, 0.4, 0.6, 0.7]) == 4
    with pytest.warns(UserWarning, match="`val_loss` which is not available. Available "
                                         "metrics are: loss"):
        hist = model.fit(X, Y, epochs=2, verbose=0, callbacks=[callbacks.EarlyStopping()])
    assert len(hist.history["loss"]) == 2


def test_early_stopping_direction_from_metric():
    model = make_model(metrics=["accuracy", "mae"])
    model.fit(X, Y, epochs=1, verbose=0)  # builds the compiled metrics
    up = callbacks.EarlyStopping(monitor="val_accuracy", patience=1)
    assert drive(up, model, [0.1, 0.2, 0.3, 0.3], key="val_accuracy") == 4
    down = callbacks.EarlyStopping(monitor="val_mae", patience=0)
    assert drive(down, model, [0.3, 0.2, 0.25], key="val_mae") == 3
    unknown = callbacks.EarlyStopping(monitor="val_mystery")
    with pytest.raises(ValueError, match="val_mystery"):
        drive(unknown, model, [1.0], key="val_mystery")


def test_early_stopping_in_fit_with_a_loss_that_cannot_improve():
    model = make_model(keras.optimizers.SGD(0.0))
    stopper = callbacks.EarlyStopping(monitor="loss", patience=2, verbose=1)
    # shuffle=False: reshuffled batches would move the epoch mean by an ulp, an improvement
    hist = model.fit(X, Y, epochs=10, shuffle=False, verbose=0, callbacks=[stopper])
    assert len(hist.history["loss"]) == 3 and len(set(hist.history["loss"])) == 1
    assert stopper.stopped_epoch == 2


def test_early_stopping_restore_best_weights_scripted():
    model = make_model()
    stopper = callbacks.EarlyStopping(patience=1, restore_best_weights=True)
    stopper.set_model(model)
    stopper.on_train_begin()
    best = None
    for epoch, value in enumerate([1.0, 0.5, 0.7, 0.8]):
        model.set_weights([w + 1.0 for w in model.get_weights()])
        if value == 0.5:
            best = model.get_weights()
        stopper.on_epoch_end(epoch, {"val_loss": value})
        if model.stop_training:
            break
    assert epoch == 2 and not same(model.get_weights(), best)
    stopper.on_train_end()
    assert same(model.get_weights(), best) and stopper.best_epoch == 1


def test_early_stopping_restore_best_weights_in_fit():
    model = make_model(keras.optimizers.SGD(3.0))  # diverges: the first epoch is the best
    recorder = WeightRecorder()
    stopper = callbacks.EarlyStopping(monitor="loss", patience=1, restore_best_weights=True)
    hist = model.fit(X, Y, epochs=6, batch_size=4, shuffle=False, verbose=0,
                     callbacks=[recorder, stopper])
    losses = hist.history["loss"]
    assert len(losses) == 2 and not losses[1] < losses[0]
    assert same(model.get_weights(), recorder.weights[0])
    # The compiled executor sees the restored weights.
    kernel, bias = recorder.weights[0]
    np.testing.assert_allclose(model.predict(X, verbose=0), X @ kernel + bias, rtol=1e-5,
                               atol=1e-5)


def test_early_stopping_faq_block(monkeypatch):
    x = np.tile(X, (5, 1))
    y = np.tile(Y, (5, 1))
    model = make_model(keras.optimizers.SGD(0.0))
    code = block("validation loss isn't decreasing", 0)
    ns = {"model": model, "x": x, "y": y}
    exec(code, ns)
    assert ns["early_stopping"].patience == 2
    exec(code.replace("callbacks=[early_stopping]",
                      "callbacks=[early_stopping], epochs=10, verbose=0"), ns)
    assert len(model.history.history["val_loss"]) == 3


# -- ModelCheckpoint ----------------------------------------------------------------------
def test_checkpoint_every_epoch(tmp_path):
    model = make_model()
    path = str(tmp_path / "w-{epoch:02d}-{loss:.3f}.weights.h5")
    hist = model.fit(X, Y, epochs=3, verbose=0, callbacks=[
        callbacks.ModelCheckpoint(path, save_weights_only=True)])
    expected = {f"w-{e + 1:02d}-{loss:.3f}.weights.h5"
                for e, loss in enumerate(hist.history["loss"])}
    assert set(os.listdir(tmp_path)) == expected
    restored = make_model()
    restored.load_weights(str(tmp_path / sorted(expected)[-1]))
    assert same(restored.get_weights(), model.get_weights())


def test_checkpoint_every_n_batches(tmp_path):
    model = make_model()
    losses = []
    log = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: losses.append(logs))
    model.fit(X, Y, epochs=2, batch_size=4, verbose=0, callbacks=[log, callbacks.ModelCheckpoint(
        str(tmp_path / "sub" / "c-{epoch}-{batch}-{loss:.4f}.keras"), save_freq=2)])
    # 5 batches an epoch: saved after batches 2 and 4, then 1 (the 6th), 3 and 5.
    saved = [(1, 2), (1, 4), (2, 1), (2, 3), (2, 5)]
    expected = {f"c-{e}-{b}-{losses[(e - 1) * 5 + b - 1]['loss']:.4f}.keras"
                for e, b in saved}
    assert set(os.listdir(tmp_path / "sub")) == expected
    last = keras.models.load_model(str(tmp_path / "sub" / sorted(expected)[-1]))
    assert same(last.get_weights(), model.get_weights())


def test_checkpoint_save_best_only(tmp_path):
    model = make_model()
    numbered = callbacks.ModelCheckpoint(str(tmp_path / "a" / "best-{epoch}"),
                                         save_best_only=True, verbose=1)
    drive(numbered, model, [1.0, 0.8, 0.9, 0.7, 0.75])
    assert sorted(os.listdir(tmp_path / "a")) == ["best-1", "best-2", "best-4"]

    weights = {}
    fixed = callbacks.ModelCheckpoint(str(tmp_path / "b" / "best.weights.h5"),
                                      monitor="val_acc", mode="max", save_best_only=True,
                                      save_weights_only=True)
    fixed.set_model(model)
    for epoch, value in enumerate([0.2, 0.5, 0.4]):
        model.set_weights([w + 1.0 for w in model.get_weights()])
        weights[value] = model.get_weights()
        fixed.on_epoch_end(epoch, {"val_acc": value})
    restored = make_model()
    restored.load_weights(str(tmp_path / "b" / "best.weights.h5"))
    assert same(restored.get_weights(), weights[0.5])

    threshold = callbacks.ModelCheckpoint(str(tmp_path / "c" / "t-{epoch}.h5"),
                                          save_best_only=True, initial_value_threshold=0.75)
    drive(threshold, model, [1.0, 0.8, 0.9, 0.7, 0.75])
    assert os.listdir(tmp_path / "c") == ["t-4.h5"]

    missing = callbacks.ModelCheckpoint(str(tmp_path / "d" / "m.h5"), save_best_only=True)
    with pytest.warns(UserWarning, match="Can save best model only with val_loss"):
        drive(missing, model, [1.0], key="other")
    assert os.listdir(tmp_path / "d") == ["m.h5"]


def test_checkpoint_filepath_that_does_not_format_names_the_file(tmp_path, capsys):
    model = make_model()
    missing = callbacks.ModelCheckpoint(str(tmp_path / "m-{val_acc:.2f}.keras"))
    with pytest.raises(KeyError, match=r"m-\{val_acc:.2f\}.keras'.*'val_acc'.*epoch, loss"):
        drive(missing, model, [1.0])
    wrong_format = callbacks.ModelCheckpoint(str(tmp_path / "f-{loss:d}.keras"))
    with pytest.raises(ValueError, match=r"f-\{loss:d\}.keras'.*Unknown format code 'd'"):
        drive(wrong_format, model, [1.0])
    assert os.listdir(tmp_path) == []
    # the progress lines are Keras 3.15's, "from None" before a first value included
    # (Keras 2 printed inf)
    verbose = callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True,
                                        verbose=1)
    capsys.readouterr()
    drive(verbose, model, [0.5, 0.7])
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines == [f"Epoch 1: val_loss improved from None to 0.50000, saving model to "
                     f"{tmp_path / 'best.keras'}", "Epoch 2: val_loss did not improve from 0.50000"]


def test_checkpoint_faq_block_saves_then_restores(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    x = RNG.random((3200, 3), dtype=np.float32)  # 100 batches of 32 an epoch
    y = x.sum(axis=1, keepdims=True)
    code = block("regularly save Keras models", 0).replace(
        "model.fit(train_data, epochs=10,", "model.fit(x, y, epochs=2, verbose=0,")
    assert "x, y, epochs=2" in code and "from kgraph import keras" in code
    ns = {"x": x, "y": y}
    exec(code, ns)
    assert "Creating a new model" in capsys.readouterr().out
    names = os.listdir("ckpt")
    assert names and all(n.startswith("ckpt-loss=") for n in names)
    first = ns["model"]
    assert int(first.optimizer.iterations.numpy()) == 200

    ns2 = {"x": x, "y": y}
    exec(code, ns2)
    out = capsys.readouterr().out
    latest = max(["./ckpt/" + n for n in names], key=os.path.getctime)
    assert f"Restoring from {latest}" in out
    second = ns2["model"]
    assert second is not first
    # It resumed from the checkpoint (optimizer state included) and trained 200 more steps.
    assert int(second.optimizer.iterations.numpy()) == 400
    assert second.evaluate(x, y, verbose=0) < first.evaluate(x, y, verbose=0)


# -- learning rate ------------------------------------------------------------------------
def frozen_from(recorder, epoch):
    """Whether the weights moved in every epoch before `epoch` and in none from it on
    (`recorder.weights[i]`: the weights at the end of epoch i)."""
    w = recorder.weights
    moving = all(not same(w[i], w[i + 1]) for i in range(epoch - 1))
    frozen = all(same(w[i], w[i + 1]) for i in range(epoch - 1, len(w) - 1))
    return len(w) > epoch and moving and frozen


def test_learning_rate_scheduler_sets_the_rate_used_by_training():
    model = make_model()
    recorder = WeightRecorder()
    seen = []

    def schedule(epoch, lr):
        seen.append(lr)
        return 0.1 if epoch < 2 else 0.0

    hist = model.fit(X, Y, epochs=4, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(schedule, verbose=1), recorder])
    assert seen[0] == pytest.approx(0.05) and seen[1] == pytest.approx(0.1)
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.0, 0.0])
    assert model.optimizer.learning_rate == 0.0
    assert frozen_from(recorder, 2)  # epochs 0, 1 train (weights move), then none


def test_learning_rate_scheduler_keras2_schedule_and_bad_output():
    model = make_model()
    model.fit(X, Y, epochs=2, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))])
    assert model.optimizer.learning_rate == pytest.approx(0.02)
    with pytest.raises(ValueError, match="should be a float. Got: 'fast'"):
        model.fit(X, Y, verbose=0,
                  callbacks=[callbacks.LearningRateScheduler(lambda e, lr: "fast")])


def test_learning_rate_scheduler_docstring_example():
    def scheduler(epoch, lr):
        return lr if epoch < 10 else lr * np.exp(-0.1)

    model = keras.models.Sequential([keras.layers.Dense(10)])
    model.compile(keras.optimizers.SGD(), loss="mse")
    assert round(model.optimizer.learning_rate, 5) == 0.01
    # float32 (5, 1) data: kgraph neither promotes int64 inputs nor expands a (5,) target
    model.fit(np.arange(100, dtype="float32").reshape(5, 20), np.zeros((5, 1), "float32"),
              epochs=15, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(scheduler)])
    assert round(model.optimizer.learning_rate, 5) == 0.00607


def test_reduce_lr_on_plateau_scripted():
    model = make_model(keras.optimizers.SGD(1.0))
    reduce = callbacks.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.1)
    lrs = []
    reduce.set_model(model)
    reduce.on_train_begin()
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6]):
        logs = {"val_loss": value}
        reduce.on_epoch_end(epoch, logs)
        lrs.append(model.optimizer.learning_rate)
        assert logs["learning_rate"] == pytest.approx(lrs[-2] if epoch else 1.0)
    # Reduced at epochs 1, 3, 5 and 7: patience 1, and the cooldown counter of 2 is counted
    # down at the start of each epoch end (Keras), so it skips one epoch; never below 0.1.
    assert lrs == pytest.approx([1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.1, 0.1, 0.1])
    for epoch in range(10, 14):
        reduce.on_epoch_end(epoch, {"val_loss": 0.6})
    assert model.optimizer.learning_rate == pytest.approx(0.1)


def test_reduce_lr_on_plateau_in_fit():
    model = make_model(keras.optimizers.SGD(0.1))
    recorder = WeightRecorder()
    plateau = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: logs.update(flat=1.0))
    reduce = callbacks.ReduceLROnPlateau(monitor="flat", factor=0.0, patience=1, verbose=1)
    hist = model.fit(X, Y, epochs=4, verbose=0, callbacks=[plateau, reduce, recorder])
    assert hist.history["learning_rate"] == pytest.approx([0.1, 0.1, 0.0, 0.0])
    assert frozen_from(recorder, 2)  # the rate went to 0 at the end of epoch 1
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        model.fit(X, Y, verbose=0, callbacks=[callbacks.ReduceLROnPlateau()])


# -- CSVLogger, LambdaCallback, TerminateOnNaN ---------------------------------------------
def read_csv(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger(tmp_path):
    path = str(tmp_path / "log.csv")
    model = make_model(metrics=["mae"])
    hist = model.fit(X, Y, epochs=3, validation_split=0.25, verbose=0,
                     callbacks=[callbacks.CSVLogger(path)])
    rows = read_csv(path)
    assert rows[0] == ["epoch", "loss", "mae", "val_loss", "val_mae"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    assert [float(r[1]) for r in rows[1:]] == hist.history["loss"]
    assert open(path, newline="").read().count("\r\n") == 4  # Keras writes excel rows

    model.fit(X, Y, epochs=2, validation_split=0.25, verbose=0,
              callbacks=[callbacks.CSVLogger(path, append=True)])
    rows = read_csv(path)
    assert len(rows) == 6 and rows.count(rows[0]) == 1
    model.fit(X, Y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, separator=";")])
    assert read_csv(path, ";")[0] == ["epoch", "loss", "mae"]
    assert len(read_csv(path, ";")) == 3


def test_lambda_callback_and_logs_argument():
    events = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append(("train_begin", logs)),
        on_epoch_begin=lambda epoch, logs: events.append(("epoch_begin", epoch, logs)),
        on_train_batch_begin=lambda batch, logs: events.append(("batch", batch)),
        on_epoch_end=lambda epoch, logs: events.append(("epoch_end", epoch, sorted(logs))),
        on_test_end=lambda logs: events.append(("test_end", sorted(logs or {}))),
        on_train_end=lambda logs: events.append(("train_end",)),
        note="kept")
    assert cb.note == "kept"

    class Plain(callbacks.Callback):  # hooks with a required `logs`, as users write them
        def on_train_begin(self, logs):
            events.append(("plain_begin", logs))

        def on_epoch_begin(self, epoch, logs):
            events.append(("plain_epoch", epoch, logs))

    make_model().fit(X, Y, epochs=2, batch_size=10, validation_split=0.5, verbose=0,
                     callbacks=[cb, Plain()])
    assert events[:2] == [("train_begin", {}), ("plain_begin", {})]  # Keras 3 passes {}
    assert ("epoch_begin", 1, {}) in events and ("plain_epoch", 1, {}) in events
    assert [e for e in events if e[0] == "batch"] == [("batch", 0)] * 2
    assert ("test_end", ["loss"]) in events
    assert ("epoch_end", 0, ["loss", "val_loss"]) in events and events[-1] == ("train_end",)


def test_terminate_on_nan(capsys):
    y = Y.copy()
    y[9] = np.nan  # in the third batch of 4
    batches = []
    log = callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: batches.append(b))
    model = make_model()
    hist = model.fit(X, y, epochs=5, batch_size=4, shuffle=False, verbose=0,
                     callbacks=[callbacks.TerminateOnNaN(), log])
    assert batches == [0, 1, 2] and len(hist.history["loss"]) == 1
    assert "Batch 2: Invalid loss, terminating training" in capsys.readouterr().out
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        make_model().fit(X, y, epochs=1, batch_size=4, shuffle=False, verbose=0,
                  callbacks=[callbacks.TerminateOnNaN(raise_error=True)])


# -- argument checks ----------------------------------------------------------------------
@pytest.mark.parametrize("make, quoted", [
    (lambda: callbacks.EarlyStopping(mode="bogus"), "'bogus'"),
    (lambda: callbacks.EarlyStopping(patience=-1), "-1"),
    (lambda: callbacks.EarlyStopping(start_from_epoch=1.5), "1.5"),
    (lambda: callbacks.ModelCheckpoint("m.keras", mode="bogus"), "'bogus'"),
    (lambda: callbacks.ModelCheckpoint("m.keras", save_freq="batch"), "'batch'"),
    (lambda: callbacks.ModelCheckpoint("m.keras", save_freq=0), "0"),
    (lambda: callbacks.ModelCheckpoint("m.keras", save_weights_only=True), "'m.keras'"),
    (lambda: callbacks.ModelCheckpoint("m-{}.keras"), "filepath='m-{}.keras'"),
    (lambda: callbacks.ModelCheckpoint("m-{0}.keras"), "filepath='m-{0}.keras'"),
    (lambda: callbacks.ModelCheckpoint("m-{loss.keras"), "filepath='m-{loss.keras'"),
    (lambda: callbacks.ReduceLROnPlateau(factor=1.0), "factor=1.0"),
    (lambda: callbacks.ReduceLROnPlateau(factor=-0.5), "factor=-0.5"),
    (lambda: callbacks.ReduceLROnPlateau(mode="bogus"), "'bogus'"),
    (lambda: callbacks.ReduceLROnPlateau(cooldown=-2), "-2"),
    (lambda: callbacks.ReduceLROnPlateau(min_lr=-1.0), "-1.0"),
    (lambda: callbacks.ReduceLROnPlateau(patience=3, bogus=1), "bogus"),
    (lambda: callbacks.LearningRateScheduler(0.1), "0.1"),
    (lambda: callbacks.CSVLogger("log.csv", separator=",,"), "',,'"),
    (lambda: callbacks.LambdaCallback(on_epoch_end=3), "3"),
])
def test_bad_arguments_raise(make, quoted):
    with pytest.raises(ValueError) as info:
        make()
    assert quoted in str(info.value)


def test_import_paths():
    import kgraph as tf
    from kgraph.keras.callbacks import EarlyStopping, ModelCheckpoint  # noqa: F401

    assert tf.keras.callbacks.EarlyStopping is EarlyStopping
    assert keras.callbacks.ModelCheckpoint is ModelCheckpoint
    assert issubclass(callbacks.ReduceLROnPlateau, callbacks.Callback)


def test_progress_bar_learns_an_unsized_input_length_after_the_first_epoch(capsys):
    import kgraph as tf

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 3), dtype=np.float32), rng.random((40, 1), dtype=np.float32)

    def batches():
        for i in range(0, 40, 10):
            yield x[i:i + 10], y[i:i + 10]

    dataset = tf.data.Dataset.from_generator(batches)  # no length: unknown on epoch 1
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(dataset, epochs=2, verbose=1)
    out = capsys.readouterr().out
    second = out.split("Epoch 2/2")[1]
    assert "4/4" in second  # the first epoch counted 4 batches; the second shows N/4
