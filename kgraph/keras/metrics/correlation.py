"""Correlation metrics: `pearson_correlation`, `concordance_correlation` (one value per
sample, along `axis`) and their `Mean` wrappers, and `R2Score` (the coefficient of
determination over everything seen), with Keras 3's numerics."""
from __future__ import annotations

import warnings

from kgraph import config, ops
from kgraph.ir.graph import current_graph
from kgraph.keras.losses import _y_pair, convert, num_elements, squeeze_or_expand_to_same_rank
from kgraph.keras.metrics.base import MeanMetricWrapper, Metric, require_2d_inputs


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson correlation coefficient of `y_true` and `y_pred` along `axis`.

    Example:
    >>> pearson_correlation([[0.0, 1.0, 2.0]], [[0.0, 2.0, 4.5]])
    array([0.99705446], dtype=float32)
    """
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    y_true = y_true - ops.mean(y_true, axis=axis, keepdims=True)
    y_pred = y_pred - ops.mean(y_pred, axis=axis, keepdims=True)
    y_true = y_true / ops.std(y_true, axis=axis, keepdims=True)
    y_pred = y_pred / ops.std(y_pred, axis=axis, keepdims=True)
    return ops.mean(y_true * y_pred, axis=axis)


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation coefficient along `axis`, as Keras 3.15 computes it:
    `mean(2 * (y_true - mean(y_pred)) * (y_pred - mean(y_pred)) / (var(y_true) + var(y_pred)
    + (mean(y_true) - mean(y_pred))^2 + epsilon))` (Keras centres `y_true` on `y_pred`'s mean
    in the covariance term; kept for equal results)."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    true_mean = ops.mean(y_true, axis=axis, keepdims=True)
    pred_mean = ops.mean(y_pred, axis=axis, keepdims=True)
    true_var = ops.var(y_true - true_mean, axis=axis, keepdims=True)
    pred_var = ops.var(y_pred - pred_mean, axis=axis, keepdims=True)
    covariance = (y_true - pred_mean) * (y_pred - pred_mean)
    norm = true_var + pred_var + ops.square(true_mean - pred_mean)
    return ops.mean(2.0 * covariance / (norm + config.epsilon()), axis=axis)


class _CorrelationMean(MeanMetricWrapper):
    """A `Mean` of `_function(y_true, y_pred, axis)`; Keras' config (name, dtype, axis)."""

    def __init__(self, name=None, dtype=None, axis=-1):
        super().__init__(type(self)._function, name=name, dtype=dtype, axis=axis)
        self.axis = axis

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "axis": self.axis}


class PearsonCorrelation(_CorrelationMean):
    """Mean over samples of `pearson_correlation` along `axis`.

    Args:
        name: Defaults to "pearson_correlation".
        dtype: Dtype of the state and result.
        axis: The axis the correlation runs along. Defaults to -1.
    """

    _function = staticmethod(pearson_correlation)

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(name, dtype, axis)


class ConcordanceCorrelation(_CorrelationMean):
    """Mean over samples of `concordance_correlation` along `axis`. Arguments as
    `PearsonCorrelation` (name defaults to "concordance_correlation")."""

    _function = staticmethod(concordance_correlation)

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(name, dtype, axis)


class R2Score(Metric):
    """Coefficient of determination `1 - SS_res / SS_tot` per output column, over all data
    seen; 2-D inputs `(batch, outputs)`; the state is built on the first update.

    Args:
        class_aggregation: "uniform_average" (default: the mean of the column scores),
            "variance_weighted_average" (weighted by each column's total sum of squares) or
            None (one score per column).
        num_regressors: Number of regressors, for the adjusted R2 `1 - (1 - R2) (n - 1) /
            (n - p - 1)`, `n` counting every element seen (as Keras does); 0 (default) gives
            the plain score, as does `p >= n - 1` (with a warning, when computed eagerly).
        name: Defaults to "r2_score".
        dtype: Dtype of the state and result.

    Example:
    >>> m = R2Score()
    >>> m.update_state([[1], [4], [3]], [[2], [4], [4]])
    >>> m.result()
    0.57142854
    """

    def __init__(self, class_aggregation="uniform_average", num_regressors=0,
                 name="r2_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        allowed = (None, "uniform_average", "variance_weighted_average")
        if class_aggregation not in allowed:
            raise ValueError("Invalid value for argument `class_aggregation`. Expected one of "
                             f"{allowed}. Received: class_aggregation={class_aggregation!r}")
        if num_regressors < 0:
            raise ValueError("Invalid value for argument `num_regressors`. Expected a value "
                             f">= 0. Received: num_regressors={num_regressors!r}")
        self.class_aggregation, self.num_regressors = class_aggregation, num_regressors
        self.num_samples = self.add_variable(name="num_samples")
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        require_2d_inputs("R2Score", y_true_shape, y_pred_shape)
        columns = (y_pred_shape[-1],)
        self.squared_sum = self.add_variable(columns, name="squared_sum")
        self.sum = self.add_variable(columns, name="sum")
        self.total_mse = self.add_variable(columns, name="residual")
        self.count = self.add_variable(columns, name="count")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = convert(y_true, self.dtype), convert(y_pred, self.dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        if not self._built:
            self._build(tuple(y_true.shape), tuple(y_pred.shape))
        weights = convert(1.0 if sample_weight is None else sample_weight, self.dtype)
        if len(weights.shape) == 1:
            weights = ops.expand_dims(weights, 1)
        weights = ops.broadcast_like(weights, y_true)
        weighted_true = y_true * weights
        self.sum.assign(self.sum.value + ops.sum(weighted_true, axis=0))
        self.squared_sum.assign(self.squared_sum.value + ops.sum(y_true * weighted_true, axis=0))
        self.total_mse.assign(self.total_mse.value
                              + ops.sum(ops.square(y_true - y_pred) * weights, axis=0))
        self.count.assign(self.count.value + ops.sum(weights, axis=0))
        size = num_elements(y_true)
        size = float(size) if isinstance(size, int) else ops.cast(size, self.dtype)
        self.num_samples.assign(self.num_samples.value + size)

    def result(self):
        mean = self.sum.value / self.count.value
        total = self.squared_sum.value - self.sum.value * mean
        raw = 1.0 - self.total_mse.value / total
        raw = ops.where(ops.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = ops.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = ops.sum(total * raw) / ops.sum(total)
        else:
            score = raw
        if not self.num_regressors:
            return score
        n, p = self.num_samples.value, float(self.num_regressors)
        if current_graph() is None:
            if p > float(n) - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 "
                              "score. Falling back to standard R2 score.", stacklevel=2)
            elif p == float(n) - 1:
                warnings.warn("Division by zero in Adjusted R2 score. Falling back to "
                              "standard R2 score.", stacklevel=2)
        adjusted = 1.0 - (1.0 - score) * (n - 1.0) / ops.maximum(n - p - 1.0, 1.0)
        return ops.where(ops.less(p, n - 1.0), adjusted, score)

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}
