"""Confusion-matrix metrics: TruePositives & co, Precision, Recall and AUC.

Counts are accumulated per threshold: a prediction is positive at threshold `t` when
`y_pred > t`, a label is positive when it is non-zero. With evenly spaced thresholds (AUC's
default) the comparison follows Keras' bucketed form exactly: `y_pred` clipped to [0, 1] and
scaled by `num_thresholds - 1` is compared with the threshold's index.
"""
from __future__ import annotations

import numpy as np

from kgraph import config, ops
from kgraph.keras.losses import convert, div_no_nan, squeeze_or_expand_to_same_rank
from kgraph.keras.metrics.base import Metric

NEG_INF = -1e10
TP, FP, TN, FN = "true_positives", "false_positives", "true_negatives", "false_negatives"


def parse_thresholds(thresholds, default):
    """A list of thresholds, each checked to lie in [0, 1]."""
    if thresholds is None:
        return [default]
    thresholds = list(thresholds) if isinstance(thresholds, (list, tuple)) else [thresholds]
    bad = [t for t in thresholds if t is None or not 0 <= t <= 1]
    if bad:
        raise ValueError(f"Threshold values must be in [0, 1]. Received: {bad}")
    return [float(t) for t in thresholds]


def evenly_distributed(thresholds):
    """Whether `thresholds` are `[0, 1/(n-1), ..., 1]` (n >= 3), up to epsilon."""
    n = len(thresholds)
    return n >= 3 and bool(np.allclose(thresholds, np.arange(n) / (n - 1),
                                       atol=config.epsilon()))


def top_k_mask(x, k):
    """1.0 for the `k` largest entries along the last axis (earlier index first on ties)."""
    n = x.shape[-1]
    later = ops.expand_dims(x, -2)  # [..., i, j] compares entry j ...
    this = ops.expand_dims(x, -1)  # ... with entry i
    earlier_index = np.tril(np.ones((n, n), dtype=bool), -1)  # j < i
    ahead = ops.logical_or(ops.greater(later, this),
                           ops.logical_and(ops.equal(later, this), earlier_index))
    return ops.cast(ops.less(ops.sum(ops.cast(ahead, "int64"), axis=-1), np.int64(k)), x.dtype)


def _filter_top_k(x, k):
    mask = top_k_mask(x, k)
    return x * mask + (1.0 - mask) * NEG_INF


def _predicted_positive(pred, thresholds, evenly):
    """(N, L) predictions against T thresholds -> (N, T, L) booleans."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if evenly:
        index = np.arange(len(thresholds), dtype=np.float64)
        if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
            index[0] = -1.0  # the -epsilon endpoint counts every prediction as positive
        pred = ops.clip(pred, 0.0, 1.0) * float(len(thresholds) - 1)
        thresholds = index
    reference = thresholds.astype(str(pred.dtype)).reshape(-1, 1)
    return ops.greater(ops.expand_dims(pred, 1), reference)


def _prepare(y_true, y_pred, sample_weight, dtype, top_k, class_id):
    y_true, y_pred = convert(y_true, dtype), convert(y_pred, dtype)
    y_pred, y_true = squeeze_or_expand_to_same_rank(y_pred, y_true)
    if sample_weight is not None:
        sample_weight = ops.expand_dims(convert(sample_weight, dtype), -1)
        _, sample_weight = squeeze_or_expand_to_same_rank(y_true, sample_weight,
                                                          expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if len(y_pred.shape) == 1:
            raise ValueError("When class_id is provided, y_pred must be a 2D array with shape "
                             f"(num_samples, num_classes). Received: shape={y_pred.shape}")
        y_true = y_true[..., class_id:class_id + 1]
        y_pred = y_pred[..., class_id:class_id + 1]
    return y_true, y_pred, sample_weight


def update_confusion_matrix_variables(variables, y_true, y_pred, thresholds, top_k=None,
                                      class_id=None, sample_weight=None, multi_label=False,
                                      label_weights=None, thresholds_distributed_evenly=False):
    """Add the weighted confusion counts of one batch to `variables`.

    Args:
        variables: Dict from `TP`, `FP`, `TN`, `FN` to variables of shape `(T,)` (or `(T, L)`
            when `multi_label`).
        y_true, y_pred: Labels (cast to bool) and predictions of the same shape.
        thresholds: List of T thresholds.
        top_k, class_id: Restrict predictions to the top k / labels and predictions to one
            class (last axis).
        sample_weight: Optional weights broadcastable to `y_true`.
        multi_label: Keep the last axis of 2-D data as separate labels instead of flattening.
        label_weights: Optional per-label weights (flattened case only).
        thresholds_distributed_evenly: Use the bucketed comparison (see module docstring).
    """
    dtype = next(iter(variables.values())).dtype
    y_true, y_pred, sample_weight = _prepare(y_true, y_pred, sample_weight, dtype, top_k,
                                             class_id)
    weights = None
    if sample_weight is not None:
        weights = ops.broadcast_like(sample_weight, y_pred)
    if label_weights is not None and not multi_label:
        label_weights = ops.broadcast_like(np.asarray(label_weights, dtype=dtype), y_pred)
        weights = label_weights if weights is None else weights * label_weights
    flat = (lambda x: x) if multi_label else (lambda x: ops.reshape(x, (-1, 1)))
    positive = _predicted_positive(flat(y_pred), thresholds, thresholds_distributed_evenly)
    label = ops.expand_dims(ops.not_equal(flat(y_true), 0.0), 1)
    weights = None if weights is None else ops.expand_dims(flat(weights), 1)
    cases = {TP: (label, positive), FP: (ops.logical_not(label), positive),
             TN: (ops.logical_not(label), ops.logical_not(positive)),
             FN: (label, ops.logical_not(positive))}
    for key, var in variables.items():
        hits = ops.cast(ops.logical_and(*cases[key]), dtype)
        if weights is not None:
            hits = hits * weights
        counts = ops.sum(hits, axis=0)
        var.assign(var.value + (counts if multi_label else ops.reshape(counts, (-1,))))


class _ConfusionMatrixConditionCount(Metric):
    """Weighted count of one confusion-matrix condition at each threshold."""

    _condition = None

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds = thresholds
        self.thresholds = parse_thresholds(thresholds, 0.5)
        self._evenly = evenly_distributed(self.thresholds)
        self.accumulator = self.add_variable((len(self.thresholds),), name="accumulator")

    def update_state(self, y_true, y_pred, sample_weight=None):
        update_confusion_matrix_variables(
            {self._condition: self.accumulator}, y_true, y_pred, self.thresholds,
            sample_weight=sample_weight, thresholds_distributed_evenly=self._evenly)

    def result(self):
        value = self.accumulator.value
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds}


class TruePositives(_ConfusionMatrixConditionCount):
    """Weighted number of true positives (label != 0 and `y_pred > threshold`).

    Args:
        thresholds: A float or list of floats in [0, 1]. Defaults to 0.5.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    _condition = TP


class FalsePositives(_ConfusionMatrixConditionCount):
    """Weighted number of false positives. Arguments as `TruePositives`."""

    _condition = FP


class TrueNegatives(_ConfusionMatrixConditionCount):
    """Weighted number of true negatives. Arguments as `TruePositives`."""

    _condition = TN


class FalseNegatives(_ConfusionMatrixConditionCount):
    """Weighted number of false negatives. Arguments as `TruePositives`."""

    _condition = FN


class _PrecisionOrRecall(Metric):
    """`tp / (tp + other)` per threshold, `other` being false positives or negatives."""

    _other = None

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.init_thresholds, self.top_k, self.class_id = thresholds, top_k, class_id
        self.thresholds = parse_thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._evenly = evenly_distributed(self.thresholds)
        self.true_positives = self.add_variable((len(self.thresholds),), name=TP)
        setattr(self, self._other, self.add_variable((len(self.thresholds),), name=self._other))

    def update_state(self, y_true, y_pred, sample_weight=None):
        update_confusion_matrix_variables(
            {TP: self.true_positives, self._other: getattr(self, self._other)}, y_true, y_pred,
            self.thresholds, top_k=self.top_k, class_id=self.class_id,
            sample_weight=sample_weight, thresholds_distributed_evenly=self._evenly)

    def result(self):
        tp = self.true_positives.value
        value = div_no_nan(tp, tp + getattr(self, self._other).value)
        return value[0] if len(self.thresholds) == 1 else value

    def get_config(self):
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionOrRecall):
    """Precision `tp / (tp + fp)` of the predictions with respect to the labels.

    Args:
        thresholds: A float or list of floats in [0, 1]; a prediction above it is positive.
            Defaults to 0.5 (or to "top-k only" when `top_k` is set).
        top_k: Only the top-k predictions of each sample count as positive.
        class_id: Only this class (last axis) is considered.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.

    Example:
    >>> m = Precision()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    >>> m.result()
    0.6666667
    """

    _other = FP


class Recall(_PrecisionOrRecall):
    """Recall `tp / (tp + fn)` of the predictions with respect to the labels. Arguments as
    `Precision`.

    Example:
    >>> m = Recall()
    >>> m.update_state([0, 1, 1, 1], [1, 0, 1, 1])
    >>> m.result()
    0.6666667
    """

    _other = FN


class AUC(Metric):
    """Approximates the area under the ROC or PR curve with a Riemann sum over thresholds.

    Args:
        num_thresholds: Number of thresholds (> 1) discretizing the curve. Defaults to 200.
        curve: `"ROC"` (default) or `"PR"`.
        summation_method: `"interpolation"` (default: trapezoids for ROC, Davis & Goadrich
            interpolation for PR), `"minoring"` or `"majoring"`.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        thresholds: Optional list of thresholds in [0, 1] used instead of `num_thresholds`
            (the endpoints `-epsilon` and `1 + epsilon` are added).
        multi_label: Compute one AUC per label (last axis of 2-D data) and average them,
            instead of flattening.
        num_labels: Number of labels when `multi_label`; else taken from the first batch.
        label_weights: Optional non-negative weights per label.
        from_logits: Whether predictions are logits (a sigmoid is applied).

    Example:
    >>> m = AUC(num_thresholds=3)
    >>> m.update_state([0, 0, 1, 1], [0, 0.5, 0.3, 0.9])
    >>> m.result()
    0.75
    """

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        self.curve = _choice("curve", curve, ("ROC", "PR"))
        self.summation_method = _choice("summation_method", summation_method,
                                        ("interpolation", "minoring", "majoring"))
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self._evenly = evenly_distributed([0.0] + inner + [1.0])
        else:
            if num_thresholds <= 1:
                raise ValueError("Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds!r}")
            inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self.num_thresholds = len(inner) + 2
        eps = config.epsilon()
        self._thresholds = np.array([0.0 - eps] + inner + [1.0 + eps])
        super().__init__(name=name, dtype=dtype)
        if num_labels and not multi_label:
            raise ValueError("`num_labels` is needed only when `multi_label` is True.")
        self.multi_label, self.num_labels = multi_label, num_labels
        self.label_weights = (None if label_weights is None
                              else np.asarray(label_weights, dtype=self.dtype))
        self.from_logits = from_logits
        self._built = False
        if not multi_label or num_labels:
            self._build(num_labels)

    @property
    def thresholds(self):
        return list(self._thresholds)

    def _build(self, num_labels):
        shape = (self.num_thresholds, num_labels) if self.multi_label else (self.num_thresholds,)
        for key in (TP, FP, TN, FN):
            setattr(self, key, self.add_variable(shape, name=key))
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = convert(y_pred)
        if not self._built:
            if len(y_pred.shape) != 2 or y_pred.shape[-1] is None:
                raise ValueError("`y_pred` must have rank 2 and a known last dimension when "
                                 f"`multi_label=True`. Received: shape={y_pred.shape}")
            self._build(y_pred.shape[-1])
        if self.from_logits:
            y_pred = ops.sigmoid(y_pred)
        update_confusion_matrix_variables(
            {key: getattr(self, key) for key in (TP, TN, FP, FN)}, y_true, y_pred,
            self._thresholds, sample_weight=sample_weight, multi_label=self.multi_label,
            label_weights=None if self.multi_label else self.label_weights,
            thresholds_distributed_evenly=self._evenly)

    def result(self):
        tp, fp, tn, fn = (getattr(self, key).value for key in (TP, FP, TN, FN))
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._average_labels(_interpolate_pr_auc(tp, fp, fn))
        recall = div_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = div_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, div_no_nan(tp, tp + fp)
        left, right = y[:-1], y[1:]
        if self.summation_method == "interpolation":
            heights = (left + right) / 2.0
        elif self.summation_method == "minoring":
            heights = ops.minimum(left, right)
        else:
            heights = ops.maximum(left, right)
        return self._average_labels((x[:-1] - x[1:]) * heights)

    def _average_labels(self, areas):
        if not self.multi_label:
            return ops.sum(areas)
        by_label = ops.sum(areas, axis=0)
        if self.label_weights is None:
            return ops.mean(by_label)
        total_weight = float(self.label_weights.sum())
        return ops.sum(by_label * self.label_weights) / total_weight if total_weight else 0.0

    def reset_state(self):
        if self._built:
            super().reset_state()

    def get_config(self):
        config = {**super().get_config(), "num_thresholds": self.num_thresholds,
                  "curve": self.curve, "summation_method": self.summation_method,
                  "multi_label": self.multi_label, "num_labels": self.num_labels,
                  "label_weights": (None if self.label_weights is None
                                    else self.label_weights.tolist()),
                  "from_logits": self.from_logits}
        if self._init_from_thresholds:
            config["thresholds"] = self.thresholds[1:-1]
        return config


def _choice(arg, value, allowed):
    by_lower = {a.lower(): a for a in allowed}
    found = by_lower.get(str(value).lower()) if isinstance(value, str) else None
    if found is None:
        raise ValueError(f"Invalid value for argument `{arg}`. Expected one of {list(allowed)}. "
                         f"Received: {arg}={value!r}")
    return found


def _interpolate_pr_auc(tp, fp, fn):
    """Area under the PR curve interpolating TP and P = TP + FP linearly between thresholds
    (Davis & Goadrich 2006): per interval `slope * (dTP + intercept * log(P_A / P_B))`
    divided by the positives."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    slope = div_no_nan(dtp, ops.maximum(dp, 0.0))
    intercept = tp[1:] - slope * p[1:]
    both_positive = ops.logical_and(ops.greater(p[:-1], 0.0), ops.greater(p[1:], 0.0))
    ratio = ops.where(both_positive, div_no_nan(p[:-1], ops.maximum(p[1:], 0.0)), 1.0)
    return div_no_nan(slope * (dtp + intercept * ops.log(ratio)),
                      ops.maximum(tp[1:] + fn[1:], 0.0))
