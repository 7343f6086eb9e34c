"""`keras.callbacks.ModelCheckpoint`."""
from __future__ import annotations

import os
import warnings

import numpy as np

from kgraph.distribute.strategy import is_chief
from kgraph.keras.callbacks.monitor import (BatchCounter, MonitorCallback, check_float,
                                            check_save_freq)


class ModelCheckpoint(MonitorCallback):
    """Save the model or its weights at some frequency during `fit()`.

    Args:
        filepath: string or `PathLike`, where to save. It may hold named formatting options,
            filled with `epoch` (1-based), `batch` (1-based, when saving every N batches)
            and the keys of `logs`: `"ckpt-{epoch:02d}-{val_loss:.2f}.keras"`. The format
            follows the name as in `model.save()`: `.keras` is the Keras 3 archive, any
            other name (`.h5`, or none at all, as in the FAQ's `'ckpt-loss={loss:.2f}'`)
            legacy HDF5. With `save_weights_only=True`, `.weights.h5` is the Keras 3
            weights layout and any other name but `.keras` the legacy one.
        monitor: The metric name to monitor (`"val_"` prefix for validation metrics).
        verbose: 0 (silent) or 1 (print a message when the callback acts).
        save_best_only: Only save when the monitored quantity improved on the best so far
            (then, without formatting options, `filepath` is overwritten by each better
            model).
        save_weights_only: Save with `model.save_weights(filepath)` instead of
            `model.save(filepath)`.
        mode: One of `{"auto", "min", "max"}`: whether improving means a lower or a higher
            monitored value; `"auto"` infers it from the monitored quantity.
        save_freq: `"epoch"` (save at the end of every epoch, with the epoch logs) or an
            integer N (save every N training batches, with that batch's logs; with
            `steps_per_execution`, checked at the end of each execution). Defaults to
            `"epoch"`.
        initial_value_threshold: Initial "best" value of the monitored quantity, for
            `save_best_only=True`: only a better value is saved.

    Raises:
        ValueError: for an unknown `mode`, a `save_freq` that is neither `"epoch"` nor a
            positive integer, or a `.keras` `filepath` with `save_weights_only=True`.

    Example:

    ```python
    checkpoint = keras.callbacks.ModelCheckpoint(
        filepath="/tmp/ckpt/best.keras", monitor="val_loss", save_best_only=True)
    model.fit(x, y, validation_split=0.2, epochs=10, callbacks=[checkpoint])
    model = keras.models.load_model("/tmp/ckpt/best.keras")
    ```
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode, initial_value_threshold)
        check_float("ModelCheckpoint", "initial_value_threshold", initial_value_threshold,
                    allow_none=True)
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        check_save_freq(save_freq)
        self._batches = BatchCounter(save_freq)
        self._current_epoch = 0
        _check_placeholders(self.filepath)
        if save_weights_only and self.filepath.endswith(".keras"):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the "
                             "filepath must not end in `.keras` (use `.weights.h5`). "
                             f"Received: filepath={self.filepath!r}")

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        self._batches.new_epoch()

    def on_train_batch_end(self, batch, logs=None):
        if self._batches.due(batch):
            self._save_model(self._current_epoch, batch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs)

    def _should_save_model(self, epoch, logs, filepath):
        if not self.save_best_only:
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        if self.monitor_op is None:
            # Set up only here, once the model's metrics are built, and only when needed:
            # without save_best_only the monitored quantity plays no part.
            self._set_monitor_op()
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=4)
            return True
        if isinstance(current, np.ndarray) and current.ndim > 0:
            warnings.warn("Can save best model only when `monitor` is a scalar value. "
                          f"Received: {current}. Falling back to `save_best_only=False`.",
                          stacklevel=4)
            return True
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                      f"{current:.5f}, saving model to {filepath}")
            self.best = current
            return True
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save_model(self, epoch, batch, logs):
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        if not self._should_save_model(epoch, logs, filepath) or not is_chief(self.model):
            return  # (only the chief of a multi-worker job writes)
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if os.path.isdir(filepath):
            raise IOError("Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {filepath}")
        if self.save_weights_only:
            self.model.save_weights(filepath, overwrite=True)
        else:
            self.model.save(filepath, overwrite=True)

    def _get_file_path(self, epoch, batch, logs):
        """`filepath` formatted with `epoch` (1-based), `batch` (1-based) and the logs."""
        fields = dict(logs) if batch is None or "batch" in logs else {**logs, "batch": batch + 1}
        fields["epoch"] = epoch + 1
        try:
            return self.filepath.format(**fields)
        except KeyError as e:  # a name the logs do not have (KeyError, as Keras)
            raise KeyError(f"Failed to format this callback filepath: {self.filepath!r}. "
                           f"Reason: no value named {e} (the names are "
                           f"{', '.join(sorted(fields))})") from None
        except ValueError as e:  # a format that does not fit the value (`{loss:d}`)
            raise ValueError(f"Failed to format this callback filepath: {self.filepath!r} "
                             f"with {fields}. Reason: {e}") from None


def _check_placeholders(filepath):
    """Refuse, before training, a `filepath` whose braces do not parse or that has
    positional placeholders (`{}`, `{0}`): only named ones are filled."""
    import string

    try:
        names = [name for _, name, _, _ in string.Formatter().parse(filepath) if name is not None]
    except ValueError as e:
        raise ValueError(f"ModelCheckpoint: `filepath` is not a valid format string ({e}; write "
                         f"a literal brace as '{{{{' or '}}}}'). Received: "
                         f"filepath={filepath!r}") from None
    positional = [name for name in names if name == "" or name.split(".")[0].split("[")[0]
                  .isdigit()]
    if positional:
        raise ValueError(f"ModelCheckpoint: `filepath` placeholders must be named (epoch, "
                         f"batch or a logged metric, e.g. '{{epoch:02d}}'). Received: "
                         f"filepath={filepath!r}")
