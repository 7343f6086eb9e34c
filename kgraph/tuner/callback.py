"""`PruningCallback`: reports a trial's objective to Optuna after every epoch and stops the
fit when the study's pruner decides the trial is not promising."""
from __future__ import annotations

import math

from kgraph.keras.callbacks.callback import Callback


def objective_value(history, objective):
    """The best epoch's value of `objective.name` in a `History.history` dict."""
    if objective.name not in history:
        from kgraph.tuner.errors import FatalKeyError

        raise FatalKeyError(f"The objective {objective.name!r} is not among the metrics fit() "
                       f"logged: {sorted(history)}. Pass validation data for 'val_*' "
                       f"objectives, or choose one of those names.")
    values = [v for v in history[objective.name] if not math.isnan(v)]
    if not values:
        return float("nan")
    return max(values) if objective.direction == "max" else min(values)


class PruningCallback(Callback):
    """Report `monitor` to an Optuna `trial` at the end of each epoch; when
    `trial.should_prune()` the fit stops (`model.stop_training`) and `pruned` is set, so the
    tuner ends the trial as pruned.

    Args:
        trial: the `optuna.Trial` being run.
        monitor: the metric reported (a key of the epoch logs, e.g. "val_loss").

    Example:
        model.fit(x, y, validation_split=0.2, callbacks=[PruningCallback(trial, "val_loss")])
    """

    def __init__(self, trial, monitor):
        super().__init__()
        self.trial, self.monitor = trial, monitor
        self.pruned, self.pruned_at = False, None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        self.trial.report(float(value), step=epoch)
        if self.trial.should_prune():
            self.pruned, self.pruned_at = True, epoch
            self.model.stop_training = True
