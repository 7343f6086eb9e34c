"""`keras.callbacks.EarlyStopping`."""
from __future__ import annotations

from kgraph.keras.callbacks.monitor import MonitorCallback, check_float, check_int


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored metric has stopped improving.

    At the end of every epoch `logs[monitor]` is compared with the best value so far; after
    `patience` epochs without an improvement of more than `min_delta`, `model.stop_training`
    is set and `fit()` ends after that epoch.

    Args:
        monitor: Quantity to be monitored. Defaults to `"val_loss"`.
        min_delta: Minimum change in the monitored quantity to qualify as an improvement,
            i.e. an absolute change of less than `min_delta` counts as no improvement.
            Defaults to `0`.
        patience: Number of epochs with no improvement after which training is stopped.
            Defaults to `0`.
        verbose: 0 (silent) or 1 (print a message when the callback acts). Defaults to `0`.
        mode: One of `{"auto", "min", "max"}`. In `"min"` mode training stops when the
            quantity has stopped decreasing, in `"max"` mode when it has stopped increasing;
            `"auto"` infers the direction from the monitored quantity. Defaults to `"auto"`.
        baseline: Baseline value for the monitored quantity. If not `None`, training stops
            when the model doesn't show improvement over the baseline. Defaults to `None`.
        restore_best_weights: Whether to restore the model weights from the epoch with the
            best value of the monitored quantity at the end of training (whatever the
            `baseline`). If `False`, the weights of the last step are kept. Defaults to
            `False`.
        start_from_epoch: Number of epochs to wait before starting to monitor improvement
            (a warm-up period). Defaults to `0`.

    Raises:
        ValueError: for an unknown `mode` or a negative `patience` / `start_from_epoch`.

    Example:

    >>> callback = keras.callbacks.EarlyStopping(monitor='loss', patience=3)
    >>> # This callback will stop the training when there is no improvement in
    >>> # the loss for three consecutive epochs.
    >>> model = keras.models.Sequential([keras.layers.Dense(10)])
    >>> model.compile(keras.optimizers.SGD(), loss='mse')
    >>> history = model.fit(np.arange(100).reshape(5, 20), np.zeros(5),
    ...                     epochs=10, batch_size=1, callbacks=[callback],
    ...                     verbose=0)
    >>> len(history.history['loss'])  # Only 4 epochs are run.
    4
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, None, min_delta)
        check_int("EarlyStopping", "patience", patience)
        check_int("EarlyStopping", "start_from_epoch", start_from_epoch)
        check_float("EarlyStopping", "baseline", baseline, allow_none=True)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights = None
        self.best_epoch = 0

    def on_train_begin(self, logs=None):
        # Allow instances to be re-used.
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()  # delayed until the model's metrics are built
        current = self._monitor_value(logs, "Early stopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Until something is better, the current weights are the best.
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch

        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Only restart the wait when both the baseline and the best so far are beaten.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return

        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print("Restoring model weights from the end of the best epoch: "
                      f"{self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs):
        return self._monitor_value(logs, "Early stopping")
