"""Accuracy metrics: per-sample match functions and their `MeanMetricWrapper` classes."""
from __future__ import annotations

import numpy as np

from kgraph import config, ops
from kgraph.keras.losses import convert, squeeze_or_expand_to_same_rank
from kgraph.keras.metrics.base import MeanMetricWrapper


def _matches(a, b):
    return ops.cast(ops.equal(a, b), config.floatx())


def accuracy(y_true, y_pred):
    """How often `y_pred` equals `y_true`, averaged over the last axis."""
    y_pred = convert(y_pred)
    y_true = convert(y_true, y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    return ops.mean(_matches(y_true, y_pred), axis=-1)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """How often `y_pred > threshold` matches the binary `y_true`, averaged over the last
    axis."""
    y_true, y_pred = convert(y_true), convert(y_pred)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    y_pred = ops.cast(ops.greater(y_pred, float(threshold)), y_true.dtype)
    return ops.mean(_matches(y_true, y_pred), axis=-1)


def categorical_accuracy(y_true, y_pred):
    """1.0 where the argmax of `y_pred` is the argmax of the one-hot `y_true`, else 0.0."""
    y_true, y_pred = convert(y_true), convert(y_pred)
    return _matches(ops.argmax(y_true, axis=-1), ops.argmax(y_pred, axis=-1))


def _squeeze_sparse_labels(y_true, y_pred):
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        return ops.squeeze(y_true, -1)
    return y_true


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the argmax of `y_pred` equals the integer label `y_true`, else 0.0."""
    y_true, y_pred = convert(y_true), convert(y_pred)
    y_true = _squeeze_sparse_labels(y_true, y_pred)
    return _matches(y_true, ops.cast(ops.argmax(y_pred, axis=-1), y_true.dtype))


def in_top_k(targets, predictions, k):
    """True where the score of class `targets` is among the `k` largest of `predictions`
    (ties at the boundary count as in, as `tf.math.in_top_k`; a NaN score never is)."""
    num_classes = predictions.shape[-1]
    hit = ops.equal(ops.expand_dims(ops.cast(targets, "int64"), -1),
                    np.arange(num_classes, dtype=np.int64))
    score = ops.sum(ops.where(hit, predictions, 0.0), axis=-1, keepdims=True)
    score = ops.where(ops.isnan(score), -np.inf, score)
    ahead = ops.sum(ops.cast(ops.greater(predictions, score), "int64"), axis=-1)
    return ops.less(ahead, np.int64(k))


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the argmax of the one-hot `y_true` is among the top `k` of `y_pred`."""
    y_true, y_pred = convert(y_true), convert(y_pred)
    return ops.cast(in_top_k(ops.argmax(y_true, axis=-1), y_pred, k), config.floatx())


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the integer label `y_true` is among the top `k` classes of `y_pred`."""
    y_true, y_pred = convert(y_true), convert(y_pred)
    y_true = _squeeze_sparse_labels(y_true, y_pred)
    return ops.cast(in_top_k(y_true, y_pred, k), config.floatx())


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels.

    Example:
    >>> m = Accuracy()
    >>> m.update_state([[1], [2], [3], [4]], [[0], [2], [3], [4]])
    >>> m.result()
    0.75
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(MeanMetricWrapper):
    """How often `y_pred > threshold` matches binary labels.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
        threshold: Float in (0, 1) above which a prediction counts as 1. Defaults to 0.5.

    Example:
    >>> m = BinaryAccuracy()
    >>> m.update_state([[1], [1], [0], [0]], [[0.98], [1], [0], [0.6]])
    >>> m.result()
    0.75
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        if threshold is not None and not 0 < threshold < 1:
            raise ValueError("Invalid value for argument `threshold`. Expected a value in "
                             f"interval (0, 1). Received: threshold={threshold!r}")
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of predictions matches one-hot labels.

    Example:
    >>> m = CategoricalAccuracy()
    >>> m.update_state([[0, 0, 1], [0, 1, 0]], [[0.1, 0.9, 0.8], [0.05, 0.95, 0]])
    >>> m.result()
    0.5
    """

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of predictions matches integer labels.

    Example:
    >>> m = SparseCategoricalAccuracy()
    >>> m.update_state([[2], [1]], [[0.1, 0.6, 0.3], [0.05, 0.95, 0]])
    >>> m.result()
    0.5
    """

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often one-hot targets are in the top `k` predictions.

    Args:
        k: Number of top elements to look at. Defaults to 5.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often integer targets are in the top `k` predictions.

    Args:
        k: Number of top elements to look at. Defaults to 5.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k
