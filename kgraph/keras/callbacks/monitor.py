"""What callbacks that watch a logged quantity share: argument checks, the direction of a
metric ("min" or "max") and the improvement test (Keras 3's `MonitorCallback`)."""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from kgraph.keras.callbacks.callback import Callback

MODES = ("auto", "min", "max")

# Keras 3 gives each built-in metric a `_direction`; kgraph's metrics do not carry one, so it
# is looked up by class here (a metric that has `_direction` wins).
_UP = {"Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
       "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "AUC", "Precision",
       "Recall", "TruePositives", "TrueNegatives", "CosineSimilarity", "F1Score", "FBetaScore",
       "R2Score", "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity",
       "SpecificityAtSensitivity", "MeanIoU", "IoU", "BinaryIoU", "OneHotIoU", "OneHotMeanIoU"}
_DOWN = {"MeanSquaredError", "MeanAbsoluteError", "MeanAbsolutePercentageError",
         "MeanSquaredLogarithmicError", "RootMeanSquaredError", "LogCoshError",
         "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
         "KLDivergence", "Poisson", "Hinge", "SquaredHinge", "CategoricalHinge",
         "FalsePositives", "FalseNegatives"}


def check_mode(owner, mode):
    if mode not in MODES:
        raise ValueError(f"{owner}: `mode` must be one of {MODES}. Received: mode={mode!r}")


def check_int(owner, name, value, low=0):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{owner}: `{name}` must be an integer >= {low}. "
                         f"Received: {name}={value!r}")


def check_float(owner, name, value, low=-math.inf, high=math.inf, high_open=False,
                allow_none=False):
    if value is None and allow_none:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and \
        not math.isnan(value) and value >= low and (value < high if high_open else value <= high)
    if not ok:
        bound = f">= {low}" if high == math.inf else \
            f"in [{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: `{name}` must be a number {bound}. "
                         f"Received: {name}={value!r}")


def metric_direction(model, metric_name):
    """"up", "down" or None for the metric of `model` named `metric_name`."""
    for m in getattr(model, "metrics", None) or []:
        for sub in [m] + list(getattr(m, "metrics", None) or []):
            if getattr(sub, "name", None) != metric_name:
                continue
            direction = getattr(sub, "_direction", None)
            if direction is not None:
                return direction
            for cls in type(sub).__mro__:
                if cls.__name__ in _UP:
                    return "up"
                if cls.__name__ in _DOWN:
                    return "down"
    return None


class MonitorCallback(Callback):
    """Base of callbacks that watch `logs[monitor]` and test it for improvement.

    The direction is fixed at the first `on_epoch_end`, when the model's metrics exist:
    "min"/"max" as given; with "auto", "loss" (or "val_loss", ...) is minimised, and a
    compiled metric goes its own way (accuracy up, errors down). A metric whose direction
    cannot be told raises ValueError, as in Keras: pass `mode='min'` or `mode='max'`.
    """

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        owner = type(self).__name__
        check_mode(owner, mode)
        check_float(owner, "min_delta", min_delta)
        if not isinstance(monitor, str):
            raise ValueError(f"{owner}: `monitor` must be a string. Received: "
                             f"monitor={monitor!r}")
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor.removeprefix("val_")
            direction = "down" if name == "loss" or name.endswith("_loss") else \
                metric_direction(self.model, name)
            if direction is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor!r}, but "
                    "Keras isn't able to automatically determine whether that metric should "
                    "be maximized or minimized. Pass `mode='max'` in order to monitor based "
                    "on the highest metric value, or pass `mode='min'` in order to use the "
                    "lowest value.")
            self.monitor_op = np.greater if direction == "up" else np.less
        if self.monitor_op is np.less:
            self.min_delta = -abs(self.min_delta)

    def _is_improvement(self, monitor_value, reference_value):
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))

    def _monitor_value(self, logs, what):
        """`logs[monitor]`, or None with a warning naming the available keys."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(f"{what} conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}",
                          stacklevel=3)
        return value


def check_save_freq(save_freq):
    """Raise ValueError unless `save_freq` is "epoch" or a positive integer."""
    if save_freq != "epoch" and not (isinstance(save_freq, numbers.Integral)
                                     and not isinstance(save_freq, bool) and save_freq > 0):
        raise ValueError(f"Unrecognized save_freq: {save_freq!r}. Expected save_freq are "
                         "'epoch' or positive integer values")


class BatchCounter:
    """Tells when `save_freq` training batches have run since the last save. Batch indices
    restart every epoch and skip with `steps_per_execution` (and start past 0 in an epoch
    resumed by BackupAndRestore), so the count adds up the distance between indices."""

    def __init__(self, save_freq):
        self.save_freq = save_freq
        self.since_save = 0
        self.last_batch = -1

    def new_epoch(self):
        self.last_batch = -1

    def due(self, batch) -> bool:
        """Count the batches up to index `batch`; True (and restart the count) when a save
        is due."""
        if self.save_freq == "epoch":
            return False
        self.since_save += batch - self.last_batch if batch > self.last_batch else batch + 1
        self.last_batch = batch
        if self.since_save >= self.save_freq:
            self.since_save = 0
            return True
        return False
