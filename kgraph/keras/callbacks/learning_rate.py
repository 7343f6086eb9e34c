"""`keras.callbacks.LearningRateScheduler` and `keras.callbacks.ReduceLROnPlateau`.

Both set `model.optimizer.learning_rate`, a variable that the compiled train step reads, so
the new rate applies from the next step on without recompiling. Both also add the current
rate to the epoch logs as `"learning_rate"` (so it shows in `History`), as Keras does."""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from kgraph.keras.callbacks.callback import Callback
from kgraph.keras.callbacks.monitor import check_float, check_int, check_mode


class LearningRateScheduler(Callback):
    """Set the learning rate at the beginning of every epoch to `schedule(epoch, lr)`.

    Args:
        schedule: A function taking the epoch index (0-based) and the current learning rate
            (float) and returning the new learning rate (float). A function of the epoch
            alone is also accepted (Keras 2).
        verbose: 0 (quiet) or 1 (print a message at each update).

    Example:

    >>> # This function keeps the initial learning rate for the first ten epochs
    >>> # and decreases it exponentially after that.
    >>> def scheduler(epoch, lr):
    ...     if epoch < 10:
    ...         return lr
    ...     else:
    ...         return lr * np.exp(-0.1)
    >>>
    >>> model = keras.models.Sequential([keras.layers.Dense(10)])
    >>> model.compile(keras.optimizers.SGD(), loss='mse')
    >>> round(model.optimizer.learning_rate, 5)
    0.01

    >>> callback = keras.callbacks.LearningRateScheduler(scheduler)
    >>> history = model.fit(np.arange(100).reshape(5, 20), np.zeros(5),
    ...                     epochs=15, callbacks=[callback], verbose=0)
    >>> round(model.optimizer.learning_rate, 5)
    0.00607
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise ValueError("LearningRateScheduler: `schedule` must be a function "
                             f"schedule(epoch, lr). Received: schedule={schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:  # Keras 3: schedule(epoch, lr)
            lr = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # Keras 2: schedule(epoch)
            lr = self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.ndim == 0:
            lr = lr[()]
        if not isinstance(lr, numbers.Real) or isinstance(lr, (bool, np.bool_)):
            raise ValueError("The output of the `schedule` function should be a float. "
                             f"Got: {lr!r}")
        optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                  f"{float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class ReduceLROnPlateau(Callback):
    """Reduce the learning rate when a metric has stopped improving.

    After `patience` epochs without an improvement of more than `min_delta`, the learning
    rate is multiplied by `factor` (never below `min_lr`), then `cooldown` epochs pass before
    the count starts again.

    Args:
        monitor: Quantity to be monitored. Defaults to `"val_loss"`.
        factor: Factor by which the learning rate is reduced: `new_lr = lr * factor`, in
            [0, 1). Defaults to `0.1`.
        patience: Number of epochs with no improvement after which the learning rate is
            reduced. Defaults to `10`.
        verbose: 0 (quiet) or 1 (print a message at each reduction).
        mode: One of `{"auto", "min", "max"}`: reduce when the quantity has stopped
            decreasing (`"min"`) or increasing (`"max"`); `"auto"` maximises a monitored
            name containing `"acc"` and minimises anything else. Defaults to `"auto"`.
        min_delta: Threshold for measuring the new optimum, to only focus on significant
            changes. Defaults to `1e-4`.
        cooldown: Number of epochs to wait before resuming normal operation after the
            learning rate has been reduced. Defaults to `0`.
        min_lr: Lower bound on the learning rate. Defaults to `0.0`.

    Raises:
        ValueError: for `factor >= 1` (or negative), an unknown `mode`, or a negative
            `patience`, `cooldown`, `min_lr` or `min_delta`.

    Example:

    ```python
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor='val_loss', factor=0.2,
                                                  patience=5, min_lr=0.001)
    model.fit(x_train, y_train, callbacks=[reduce_lr])
    ```
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        owner = "ReduceLROnPlateau"
        if "epsilon" in kwargs:
            min_delta = kwargs.pop("epsilon")
            warnings.warn("`epsilon` argument is deprecated and will be removed, use "
                          "`min_delta` instead.", stacklevel=2)
        if kwargs:
            raise ValueError(f"{owner}: argument(s) not recognized: {kwargs}")
        if isinstance(factor, numbers.Real) and not isinstance(factor, bool) and factor >= 1.0:
            raise ValueError("ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor!r}")
        check_float(owner, "factor", factor, low=0.0, high=1.0, high_open=True)
        check_mode(owner, mode)
        check_int(owner, "patience", patience)
        check_int(owner, "cooldown", cooldown)
        check_float(owner, "min_delta", min_delta, low=0.0)
        check_float(owner, "min_lr", min_lr, low=0.0)
        self.monitor = monitor
        self.factor = factor
        self.min_lr = min_lr
        self.min_delta = min_delta
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.mode = mode
        self.cooldown_counter = 0
        self.wait = 0
        self.best = 0
        self.monitor_op = None
        self._reset()

    def _reset(self):
        """Reset the best value and the wait and cooldown counters."""
        if self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor):
            self.monitor_op = lambda a, b: np.less(a, b - self.min_delta)
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: np.greater(a, b + self.min_delta)
            self.best = -np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning "
                              f"rate to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0
