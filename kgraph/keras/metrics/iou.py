"""Intersection-over-union metrics: IoU, MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU.

They accumulate a `(num_classes, num_classes)` confusion matrix (rows: true class, columns:
predicted class) in a state variable of the metric's dtype, int32 by default as in Keras 3
(float sample weights are then truncated to integers, as Keras casts them). The matrix of a
batch is `one_hot(y_true)^T @ (one_hot(y_pred) * weight)`: one matmul that runs traced with
an open batch size, computed in float32 and cast to the state dtype.
"""
from __future__ import annotations

import numpy as np

from kgraph import config, ops
from kgraph.keras.losses import convert
from kgraph.keras.metrics.base import Metric


def confusion_matrix(labels, predictions, num_classes, weights, dtype):
    """Weighted counts `[i, j]` of (label i, prediction j) pairs, as `dtype`."""
    rows = ops.one_hot(labels, num_classes, dtype="float32")
    cols = ops.one_hot(predictions, num_classes, dtype="float32")
    cols = cols * ops.expand_dims(ops.cast(weights, "float32"), -1)
    return ops.cast(ops.matmul(ops.transpose(rows), cols), dtype)


class _IoUBase(Metric):
    """The confusion-matrix state and its update, shared by the IoU metrics."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(name=name, dtype=dtype or "int32")
        self.num_classes, self.ignore_class, self.axis = num_classes, ignore_class, axis
        self.sparse_y_true, self.sparse_y_pred = sparse_y_true, sparse_y_pred
        self.total_cm = self.add_variable((num_classes, num_classes),
                                          name="total_confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = convert(y_true), convert(y_pred)
        if not self.sparse_y_true:
            y_true = ops.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = ops.argmax(y_pred, axis=self.axis)
        y_true = ops.reshape(ops.cast(y_true, self.dtype), (-1,))
        y_pred = ops.reshape(ops.cast(y_pred, self.dtype), (-1,))
        if sample_weight is None:
            weights = ops.ones_like(y_true)
        else:
            weights = ops.cast(convert(sample_weight), self.dtype)
            if len(weights.shape) > 1:
                weights = ops.reshape(weights, (-1,))
            weights = ops.broadcast_like(weights, y_true)
        # class ids outside [0, num_classes) and the ignored class count nowhere
        n = np.asarray(self.num_classes, dtype=self.dtype)
        zero = np.asarray(0, dtype=self.dtype)
        keep = ops.logical_and(
            ops.logical_and(ops.greater_equal(y_true, zero), ops.less(y_true, n)),
            ops.logical_and(ops.greater_equal(y_pred, zero), ops.less(y_pred, n)))
        if self.ignore_class is not None:
            ignored = np.asarray(self.ignore_class, dtype=self.dtype)
            keep = ops.logical_and(keep, ops.not_equal(y_true, ignored))
        y_true, y_pred = ops.where(keep, y_true, zero), ops.where(keep, y_pred, zero)
        weights = ops.where(keep, weights, ops.zeros_like(weights))
        batch = confusion_matrix(ops.cast(y_true, "int32"), ops.cast(y_pred, "int32"),
                                 self.num_classes, weights, self.dtype)
        self.total_cm.assign(self.total_cm.value + batch)


class IoU(_IoUBase):
    """Intersection over union `TP / (TP + FP + FN)` per class, averaged over
    `target_class_ids` (classes never seen as label nor prediction count as absent).

    Args:
        num_classes: Number of classes (the confusion matrix is `num_classes` square).
        target_class_ids: Class ids whose IoU is averaged.
        name: Name of the metric instance.
        dtype: Dtype of the confusion matrix. Defaults to "int32".
        ignore_class: Optional class id whose labels are left out.
        sparse_y_true: Whether labels are class ids (else one-hot / scores: argmax on `axis`).
        sparse_y_pred: Whether predictions are class ids (else scores: argmax on `axis`).
        axis: The class axis for the argmax. Defaults to -1.

    Example:
    >>> m = IoU(num_classes=2, target_class_ids=[0])
    >>> m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
    >>> m.result()
    0.33333334
    """

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None,
                 ignore_class=None, sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, name, dtype, ignore_class, sparse_y_true, sparse_y_pred,
                         axis)
        target_class_ids = list(target_class_ids)
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which "
                             f"is [0, {num_classes}). Received: "
                             f"target_class_ids={target_class_ids}")
        self.target_class_ids = target_class_ids

    def result(self):
        cm = ops.cast(self.total_cm.value, "float32")
        true_positives = ops.sum(cm * np.eye(self.num_classes, dtype=np.float32), axis=1)
        denominator = ops.sum(cm, axis=0) + ops.sum(cm, axis=1) - true_positives
        ids = np.asarray(self.target_class_ids, dtype=np.int64)
        true_positives, denominator = ops.take(true_positives, ids), ops.take(denominator, ids)
        valid = ops.greater(denominator, 1e-9)
        iou = ops.where(valid, true_positives / (denominator + config.epsilon()), 0.0)
        count = ops.sum(ops.cast(valid, "float32"))
        return ops.sum(iou, axis=self.axis) / (count + config.epsilon())

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes,
                "target_class_ids": self.target_class_ids, "ignore_class": self.ignore_class,
                "sparse_y_true": self.sparse_y_true, "sparse_y_pred": self.sparse_y_pred,
                "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary labels and predictions thresholded at `threshold` (`y_pred >=
    threshold` is class 1).

    Args:
        target_class_ids: Classes (among 0 and 1) whose IoU is averaged. Defaults to (0, 1).
        threshold: Predictions at or above it are class 1. Defaults to 0.5.
        name: Name of the metric instance.
        dtype: Dtype of the confusion matrix. Defaults to "int32".
    """

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        super().__init__(num_classes=2, target_class_ids=target_class_ids, name=name,
                         dtype=dtype)
        self.threshold = threshold

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.greater_equal(ops.cast(convert(y_pred), "float32"),
                                   np.float32(self.threshold))
        super().update_state(convert(y_true), ops.cast(y_pred, self.dtype), sample_weight)

    def get_config(self):
        return {"target_class_ids": self.target_class_ids, "threshold": self.threshold,
                "name": self.name, "dtype": self.dtype}


class MeanIoU(IoU):
    """IoU averaged over all `num_classes` classes. Arguments as `IoU`, without
    `target_class_ids`.

    Example:
    >>> m = MeanIoU(num_classes=2)
    >>> m.update_state([0, 0, 1, 1], [0, 1, 0, 1])
    >>> m.result()
    0.33333334
    """

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_true=True, sparse_y_pred=True, axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name, dtype, ignore_class,
                         sparse_y_true, sparse_y_pred, axis)

    def get_config(self):
        config = super().get_config()
        del config["target_class_ids"]
        return config


class OneHotIoU(IoU):
    """IoU of one-hot labels and class scores (both reduced by argmax on `axis`). Arguments
    as `IoU`, without `sparse_y_true`; `sparse_y_pred` defaults to False."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None,
                 ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, target_class_ids, name, dtype, ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config


class OneHotMeanIoU(MeanIoU):
    """Mean IoU of one-hot labels and class scores. Arguments as `MeanIoU`, without
    `sparse_y_true`; `sparse_y_pred` defaults to False."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None,
                 sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name, dtype, ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        config = super().get_config()
        del config["sparse_y_true"]
        return config
