"""F-scores: `FBetaScore` and `F1Score`, from weighted true positive, false positive and false
negative counts per class (or in total with `average="micro"`), as Keras 3 computes them."""
from __future__ import annotations

from kgraph import config, ops
from kgraph.keras.losses import convert
from kgraph.keras.metrics.base import Metric, require_2d_inputs

AVERAGES = (None, "micro", "macro", "weighted")


class FBetaScore(Metric):
    """F-beta score `(1 + beta^2) * precision * recall / (beta^2 * precision + recall)`.

    Predictions are made binary first: above `threshold`, or, without a threshold, the
    highest score of each sample (when it is not 0). The state is built on the first update,
    from the number of classes (`y_pred`'s last dimension).

    Args:
        average: None (one score per class), "micro" (from the total counts), "macro" (the
            mean of the class scores) or "weighted" (weighted by each class's true count).
        beta: A Python float > 0. Defaults to 1.0.
        threshold: A Python float in (0, 1], or None (see above).
        name: Name of the metric instance.
        dtype: Dtype of the state and result.

    Example:
    >>> m = FBetaScore(beta=2.0, threshold=0.5)
    >>> m.update_state([[1, 1, 1], [1, 0, 0], [1, 1, 0]],
    ...                [[0.2, 0.6, 0.7], [0.2, 0.6, 0.6], [0.6, 0.8, 0.0]])
    >>> m.result()
    array([0.3846154, 0.90909094, 0.8333334], dtype=float32)
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score",
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in AVERAGES:
            raise ValueError("Invalid `average` argument value. Expected one of: "
                             f"{{None, 'micro', 'macro', 'weighted'}}. Received: "
                             f"average={average!r}")
        if not isinstance(beta, float):
            raise ValueError("Invalid `beta` argument value. It should be a Python float. "
                             f"Received: beta={beta!r} of type '{type(beta)}'")
        if beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be > 0. Received: "
                             f"beta={beta!r}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError("Invalid `threshold` argument value. It should be a Python "
                                 f"float. Received: threshold={threshold!r} of type "
                                 f"'{type(threshold)}'")
            if not 0.0 < threshold <= 1.0:
                raise ValueError("Invalid `threshold` argument value. It should verify "
                                 f"0 < threshold <= 1. Received: threshold={threshold!r}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        require_2d_inputs("FBetaScore", y_true_shape, y_pred_shape)
        shape = () if self.average == "micro" else (y_pred_shape[-1],)
        for name in ("true_positives", "false_positives", "false_negatives",
                     "intermediate_weights"):
            setattr(self, name, self.add_variable(shape, name=name))
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = convert(y_true, self.dtype), convert(y_pred, self.dtype)
        if not self._built:
            self._build(tuple(y_true.shape), tuple(y_pred.shape))
        if self.threshold is None:
            top = ops.max(y_pred, axis=-1, keepdims=True)
            y_pred = ops.logical_and(ops.greater_equal(y_pred, top),
                                     ops.greater(ops.abs(y_pred), 1e-9))
        else:
            y_pred = ops.greater(y_pred, self.threshold)
        y_pred = ops.cast(y_pred, self.dtype)
        if sample_weight is not None:
            sample_weight = ops.expand_dims(convert(sample_weight, self.dtype), 1)

        def weighted_sum(values):
            if sample_weight is not None:
                values = values * sample_weight
            return ops.sum(values, axis=self.axis)

        for var, values in ((self.true_positives, y_pred * y_true),
                            (self.false_positives, y_pred * (1.0 - y_true)),
                            (self.false_negatives, (1.0 - y_pred) * y_true),
                            (self.intermediate_weights, y_true)):
            var.assign(var.value + weighted_sum(values))

    def result(self):
        eps = config.epsilon()
        tp = self.true_positives.value
        precision = tp / (tp + self.false_positives.value + eps)
        recall = tp / (tp + self.false_negatives.value + eps)
        beta2 = self.beta ** 2
        score = precision * recall / (beta2 * precision + recall + eps) * (1.0 + beta2)
        if self.average == "weighted":
            weights = self.intermediate_weights.value
            return ops.sum(score * (weights / (ops.sum(weights) + eps)))
        if self.average is not None:  # micro, macro
            return ops.mean(score)
        return score

    def reset_state(self):
        if self._built:
            super().reset_state()

    def get_config(self):
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score, the harmonic mean of precision and recall: `FBetaScore` with `beta=1.0`.

    Args:
        average, threshold, name, dtype: As `FBetaScore` (name defaults to "f1_score").
    """

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name,
                         dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config
