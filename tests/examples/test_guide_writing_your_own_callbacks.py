"""keras.io guide "Writing your own callbacks"
(guides/writing_your_own_callbacks.py).

The guide's callbacks (every hook, loss printing, early stopping at the
minimum loss with best weights, a learning-rate schedule) on its one-Dense
model; the MNIST download is random arrays of its shapes, epochs are cut.
"""

import numpy as np

from kgraph import keras


def get_model():
    model = keras.Sequential()
    model.add(keras.layers.Dense(1))
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.1),
                  loss="mean_squared_error", metrics=["mean_absolute_error"])
    return model


def _data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 784)).astype("float32") / 255.0
    return x, rng.integers(0, 10, (n,)).astype("float32")


class RecordingCallback(keras.callbacks.Callback):
    """The guide's CustomCallback, recording (hook, keys of logs) instead of printing."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def _record(self, hook, logs):
        self.calls.append((hook, sorted(logs.keys())))

    def on_train_begin(self, logs=None):
        self._record("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._record("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._record("on_epoch_begin", logs)

    def on_epoch_end(self, epoch, logs=None):
        self._record("on_epoch_end", logs)

    def on_test_begin(self, logs=None):
        self._record("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._record("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._record("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._record("on_predict_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._record("on_train_batch_begin", logs)

    def on_train_batch_end(self, batch, logs=None):
        self._record("on_train_batch_end", logs)

    def on_test_batch_begin(self, batch, logs=None):
        self._record("on_test_batch_begin", logs)

    def on_test_batch_end(self, batch, logs=None):
        self._record("on_test_batch_end", logs)

    def on_predict_batch_begin(self, batch, logs=None):
        self._record("on_predict_batch_begin", logs)

    def on_predict_batch_end(self, batch, logs=None):
        self._record("on_predict_batch_end", logs)


def test_every_hook_with_logs_dicts():
    x_train, y_train = _data()
    model = get_model()
    callback = RecordingCallback()
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0,
              validation_split=0.5, callbacks=[callback])
    model.evaluate(x_train, y_train, batch_size=128, verbose=0, callbacks=[callback])
    model.predict(x_train, batch_size=128, callbacks=[callback])
    hooks = [hook for hook, _ in callback.calls]
    assert hooks[0] == "on_train_begin" and "on_train_end" in hooks
    for hook in ("on_epoch_end", "on_test_batch_end", "on_predict_batch_end"):
        assert hook in hooks
    epoch_keys = dict(callback.calls)["on_epoch_end"]
    assert {"loss", "mean_absolute_error", "val_loss"} <= set(epoch_keys)


class LossAndErrorPrintingCallback(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(f"Up to batch {batch}, the average loss is {logs['loss']:7.2f}.")

    def on_test_batch_end(self, batch, logs=None):
        print(f"Up to batch {batch}, the average loss is {logs['loss']:7.2f}.")

    def on_epoch_end(self, epoch, logs=None):
        print(f"The average loss for epoch {epoch} is {logs['loss']:7.2f} "
              f"and mean absolute error is {logs['mean_absolute_error']:7.2f}.")


def test_loss_printing_callback(capsys):
    x_train, y_train = _data()
    model = get_model()
    model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=0,
              callbacks=[LossAndErrorPrintingCallback()])
    model.evaluate(x_train, y_train, batch_size=64, verbose=0,
                   callbacks=[LossAndErrorPrintingCallback()])
    out = capsys.readouterr().out
    assert "The average loss for epoch 1 is" in out
    assert out.count("Up to batch 1,") == 3


class EarlyStoppingAtMinLoss(keras.callbacks.Callback):
    def __init__(self, patience=0):
        super().__init__()
        self.patience = patience
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = np.inf

    def on_epoch_end(self, epoch, logs=None):
        current = logs.get("loss")
        if np.less(current, self.best):
            self.best = current
            self.wait = 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = epoch
                self.model.stop_training = True
                self.model.set_weights(self.best_weights)


def test_early_stopping_at_min_loss_restores_best():
    x_train, y_train = _data()
    model = get_model()
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=5.0), loss="mse")
    stopper = EarlyStoppingAtMinLoss()
    history = model.fit(x_train, y_train, batch_size=64, epochs=30, verbose=0,
                        callbacks=[stopper])
    assert stopper.stopped_epoch > 0 and len(history.history["loss"]) == stopper.stopped_epoch + 1
    for best, now in zip(stopper.best_weights, model.get_weights()):
        np.testing.assert_array_equal(best, now)


LR_SCHEDULE = [(3, 0.05), (6, 0.01), (9, 0.005), (12, 0.001)]


def lr_schedule(epoch, lr):
    if epoch < LR_SCHEDULE[0][0] or epoch > LR_SCHEDULE[-1][0]:
        return lr
    for i in range(len(LR_SCHEDULE)):
        if epoch == LR_SCHEDULE[i][0]:
            return LR_SCHEDULE[i][1]
    return lr


class CustomLearningRateScheduler(keras.callbacks.Callback):
    def __init__(self, schedule):
        super().__init__()
        self.schedule = schedule

    def on_epoch_begin(self, epoch, logs=None):
        if not hasattr(self.model.optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        lr = self.model.optimizer.learning_rate
        scheduled_lr = self.schedule(epoch, lr)
        self.model.optimizer.learning_rate = scheduled_lr
        self.seen = getattr(self, "seen", []) + [float(np.asarray(scheduled_lr))]


def test_custom_learning_rate_scheduler():
    x_train, y_train = _data(64)
    model = get_model()
    scheduler = CustomLearningRateScheduler(lr_schedule)
    model.fit(x_train, y_train, batch_size=64, epochs=7, verbose=0, callbacks=[scheduler])
    np.testing.assert_allclose(scheduler.seen, [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.01],
                               rtol=1e-6)
    np.testing.assert_allclose(float(np.asarray(model.optimizer.learning_rate)), 0.01,
                               rtol=1e-6)
