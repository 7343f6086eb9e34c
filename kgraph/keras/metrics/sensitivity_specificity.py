"""Metrics that read one rate where another is held at a target, over `num_thresholds`
evenly spaced thresholds: SensitivityAtSpecificity, SpecificityAtSensitivity,
PrecisionAtRecall, RecallAtPrecision. The counts are those of `confusion.py`."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.losses import div_no_nan
from kgraph.keras.metrics.base import Metric
from kgraph.keras.metrics.confusion import FN, FP, TN, TP, update_confusion_matrix_variables


class _RateAtRate(Metric):
    """Confusion counts at `num_thresholds` thresholds; `result` is the best `_dependent`
    rate among the thresholds whose `_constrained` rate reaches `value`."""

    _value_name = None  # the constructor argument holding the target rate
    _constrained = _dependent = None  # names of rates, see `_rates`

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0 <= value <= 1:
            raise ValueError(f"Argument `{self._value_name}` must be in the range [0, 1]. "
                             f"Received: {self._value_name}={value!r}")
        if num_thresholds <= 0:
            raise ValueError("Argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds!r}")
        super().__init__(name=name, dtype=dtype)
        self.value, self.num_thresholds, self.class_id = value, num_thresholds, class_id
        setattr(self, self._value_name, value)
        if num_thresholds == 1:
            self.thresholds, self._evenly = [0.5], False
        else:
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self.thresholds, self._evenly = [0.0] + inner + [1.0], True
        for key in (TP, FP, TN, FN):
            setattr(self, key, self.add_variable((len(self.thresholds),), name=key))

    def update_state(self, y_true, y_pred, sample_weight=None):
        update_confusion_matrix_variables(
            {key: getattr(self, key) for key in (TP, TN, FP, FN)}, y_true, y_pred,
            self.thresholds, class_id=self.class_id, sample_weight=sample_weight,
            thresholds_distributed_evenly=self._evenly)

    def _rates(self):
        tp, fp, tn, fn = (getattr(self, key).value for key in (TP, FP, TN, FN))
        recall = div_no_nan(tp, tp + fn)
        return {"sensitivity": recall, "recall": recall,
                "specificity": div_no_nan(tn, tn + fp), "precision": div_no_nan(tp, tp + fp)}

    def result(self):
        rates = self._rates()
        feasible = ops.greater_equal(rates[self._constrained], self.value)
        best = ops.max(ops.where(feasible, rates[self._dependent], 0.0))
        return ops.maximum(best, 0.0)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id,
                "num_thresholds": self.num_thresholds, self._value_name: self.value}


class SensitivityAtSpecificity(_RateAtRate):
    """The best sensitivity (recall) among the thresholds whose specificity is at least
    `specificity`.

    Args:
        specificity: The target specificity, in [0, 1].
        num_thresholds: Number of thresholds (evenly spaced on [0, 1]; 1 means 0.5).
            Defaults to 200.
        class_id: Only this class (last axis) is considered.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.

    Example:
    >>> m = SensitivityAtSpecificity(0.5)
    >>> m.update_state([0, 0, 0, 1, 1], [0, 0.3, 0.8, 0.3, 0.8])
    >>> m.result()
    0.5
    """

    _value_name, _constrained, _dependent = "specificity", "specificity", "sensitivity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)


class SpecificityAtSensitivity(_RateAtRate):
    """The best specificity among the thresholds whose sensitivity is at least
    `sensitivity`. Arguments as `SensitivityAtSpecificity`."""

    _value_name, _constrained, _dependent = "sensitivity", "sensitivity", "specificity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)


class PrecisionAtRecall(_RateAtRate):
    """The best precision among the thresholds whose recall is at least `recall`. Arguments
    as `SensitivityAtSpecificity`."""

    _value_name, _constrained, _dependent = "recall", "recall", "precision"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)


class RecallAtPrecision(_RateAtRate):
    """The best recall among the thresholds whose precision is at least `precision`.
    Arguments as `SensitivityAtSpecificity`."""

    _value_name, _constrained, _dependent = "precision", "precision", "recall"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)
