"""Losses Keras 3 added after the classic set: the overlap losses `dice` and `tversky`
(segmentation), the pair-based `circle` loss (metric learning) and the noise-robust
`categorical_generalized_cross_entropy`, each with its `Loss` class. Numerics are Keras 3.15's.
"""
from __future__ import annotations

from kgraph import config, ops
from kgraph.keras.losses.classes import LossFunctionWrapper
from kgraph.keras.losses.functions import _y_pair


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis  # a config's JSON list


def dice(y_true, y_pred, axis=None):
    """Dice loss `1 - 2 * sum(y_true * y_pred) / (sum(y_true) + sum(y_pred) + epsilon)`.

    Args:
        y_true: Targets.
        y_pred: Predictions, same shape.
        axis: The axes the sums run over; None (default) sums everything, giving one scalar
            for the whole batch.

    Returns:
        The loss, reduced over `axis`.

    Example:
    >>> dice([[1.0, 1.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]], axis=1)
    array([0.5, 1.0], dtype=float32)
    """
    y_true, y_pred = _y_pair(y_true, y_pred)
    axis = _axis(axis)
    intersection = ops.sum(y_true * y_pred, axis=axis)
    total = ops.sum(y_true, axis=axis) + ops.sum(y_pred, axis=axis) + config.epsilon()
    return 1.0 - 2.0 * intersection / total


def tversky(y_true, y_pred, alpha=0.5, beta=0.5, axis=None):
    """Tversky loss (Salehi et al. 2017): `1 - TP / (TP + alpha * FP + beta * FN + epsilon)`
    with soft counts `TP = sum(y_true * y_pred)`, `FP = sum((1 - y_pred) * y_true)`,
    `FN = sum(y_pred * (1 - y_true))` over `axis` (Keras 3's naming of FP and FN). With
    `alpha = beta = 0.5` it is the Dice loss.

    Args:
        y_true: Targets.
        y_pred: Predictions, same shape.
        alpha: Weight of the false positives. Defaults to 0.5.
        beta: Weight of the false negatives. Defaults to 0.5.
        axis: The axes the sums run over; None (default) sums everything.

    Returns:
        The loss, reduced over `axis`.
    """
    y_true, y_pred = _y_pair(y_true, y_pred)
    axis = _axis(axis)
    true_pos = ops.sum(y_true * y_pred, axis=axis)
    false_pos = ops.sum((1.0 - y_pred) * y_true, axis=axis)
    false_neg = ops.sum(y_pred * (1.0 - y_true), axis=axis)
    total = true_pos + false_pos * alpha + false_neg * beta + config.epsilon()
    return 1.0 - true_pos / total


def _column(labels):
    return ops.reshape(labels, (-1, 1)) if len(labels.shape) == 1 else labels


def _row_index(column):
    """0, 1, .. n-1 as a (n, 1) column, n the rows of `column` (known at run time only when
    traced with an open batch)."""
    return ops.expand_dims(ops.arange(ops.shape(column)[0], dtype="int32"), 1)


def _masked_logsumexp(logits, keep):
    """`logsumexp` over axis 1 of the `keep` entries. Keras fills the others with -inf (a row
    of -inf only then gives -inf, and its query a loss of 0); a fill of half the dtype's
    lowest value gives the same losses while keeping the gradient of such a row finite (0,
    where -inf gives 0 * inf = NaN through the `where`)."""
    lowest = -3.0e4 if str(logits.dtype) in ("float16", "bfloat16") else -1.0e30
    return ops.logsumexp(ops.where(keep, logits, lowest), axis=1)


def circle(y_true, y_pred, ref_labels=None, ref_embeddings=None, remove_diagonal=True,
           gamma=80, margin=0.4):
    """Circle loss (Sun et al. 2020) of L2-normalized embeddings and integer labels.

    Each query embedding is compared with every reference embedding (the batch itself by
    default) through the cosine distance `d = max(1 - q . r, 0)`; same-label pairs are
    positives, the others negatives. The loss of a query is
    `softplus(logsumexp(-gamma * max(margin + d, 0) * (margin - d)) over positives
    + logsumexp(gamma * max(1 + margin - d, 0) * (1 - margin - d)) over negatives)`.
    A query without a positive or a negative has loss 0 and is left out of the mean:
    `circle.output_mask` (the loss > 0) is applied by the `Loss` reduction, as Keras' mask.

    Args:
        y_true: Integer labels, shape `(batch,)` or `(batch, 1)`.
        y_pred: L2-normalized embeddings, shape `(batch, dim)`.
        ref_labels: Labels of the reference embeddings; defaults to `y_true`.
        ref_embeddings: Reference embeddings; defaults to `y_pred`.
        remove_diagonal: Whether a query is not its own positive. Defaults to True.
        gamma: Scale of the similarities. Defaults to 80.
        margin: Relaxation margin. Defaults to 0.4.

    Returns:
        One loss per query, shape `(batch,)`.
    """
    y_true, y_pred = _y_pair(y_true, y_pred)
    labels = _column(ops.cast(y_true, "int32"))
    refs = y_pred if ref_embeddings is None else ops.cast(ref_embeddings, y_pred.dtype)
    ref_labels = labels if ref_labels is None else _column(ops.cast(ref_labels, "int32"))
    distance = ops.maximum(1.0 - ops.matmul(y_pred, ops.transpose(refs)), 0.0)
    positive = ops.equal(labels, ops.transpose(ref_labels))
    negative = ops.logical_not(positive)
    if remove_diagonal:
        diagonal = ops.equal(_row_index(labels), ops.transpose(_row_index(ref_labels)))
        positive = ops.logical_and(positive, ops.logical_not(diagonal))
    dtype = distance.dtype
    pos_weights = ops.maximum((margin + distance) * ops.cast(positive, dtype), 0.0)
    neg_weights = ops.maximum((1.0 + margin - distance) * ops.cast(negative, dtype), 0.0)
    pos_logits = -gamma * pos_weights * (margin - distance)
    neg_logits = gamma * neg_weights * (1.0 - margin - distance)
    pos_loss = _masked_logsumexp(pos_logits, positive)
    neg_loss = _masked_logsumexp(neg_logits, negative)
    return ops.softplus(pos_loss + neg_loss)


def _positive_losses(losses):
    return ops.greater(losses, 0.0)


circle.output_mask = _positive_losses  # Keras sets `_keras_mask = circle_loss > 0`


def categorical_generalized_cross_entropy(y_true, y_pred, q):
    """Generalized cross entropy (Zhang & Sabuncu 2018): `(1 - p ** q) / q`, `p` the predicted
    probability of the true class; near CE as `q -> 0`, near MAE as `q -> 1`.

    Args:
        y_true: Integer class ids, shape `(batch,)` or `(batch, 1)`.
        y_pred: Class probabilities, shape `(batch, num_classes)`.
        q: The noise parameter, in (0, 1).

    Returns:
        One loss per sample.
    """
    y_true, y_pred = _y_pair(y_true, y_pred)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        # (batch, 1) labels, as documented; Keras 3.15 one-hot encodes them to (batch, 1, C)
        # and broadcasts that against y_pred into (batch, batch) losses
        y_true = ops.squeeze(y_true, -1)
    one_hot = ops.one_hot(ops.cast(y_true, "int32"), y_pred.shape[-1], dtype=y_pred.dtype)
    probability = ops.sum(y_pred * one_hot, axis=-1)
    return (1.0 - ops.power(probability, q)) / q


# Classes: Keras' constructor arguments in Keras' order; configs as Keras'.
class Dice(LossFunctionWrapper):
    """Dice loss, reduced (see `dice`).

    Args:
        reduction: See `Loss`.
        name: Defaults to "dice".
        axis: The axes the sums run over; None (default): the whole batch at once.
        dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="dice", axis=None, dtype=None):
        super().__init__(dice, reduction, name, dtype, axis=axis)


class Tversky(LossFunctionWrapper):
    """Tversky loss, reduced (see `tversky`).

    Args:
        alpha: Weight of the false positives. Defaults to 0.5.
        beta: Weight of the false negatives. Defaults to 0.5.
        reduction, name, axis, dtype: As `Dice` (name defaults to "tversky").
    """

    def __init__(self, alpha=0.5, beta=0.5, reduction="sum_over_batch_size", name="tversky",
                 axis=None, dtype=None):
        super().__init__(tversky, reduction, name, dtype, alpha=alpha, beta=beta, axis=axis)


class Circle(LossFunctionWrapper):
    """Circle loss of L2-normalized embeddings (a `UnitNormalization` after a linear `Dense`)
    and integer labels, reduced over the queries that have a positive and a negative (see
    `circle`).

    Args:
        gamma: Scale of the similarities. Defaults to 80.0.
        margin: Relaxation margin. Defaults to 0.4.
        remove_diagonal: Whether a query is not its own positive. Defaults to True.
        reduction, name, dtype: See `Loss` (name defaults to "circle").
    """

    def __init__(self, gamma=80.0, margin=0.4, remove_diagonal=True,
                 reduction="sum_over_batch_size", name="circle", dtype=None):
        super().__init__(circle, reduction, name, dtype, gamma=gamma, margin=margin,
                         remove_diagonal=remove_diagonal)


class CategoricalGeneralizedCrossEntropy(LossFunctionWrapper):
    """Generalized cross entropy of integer labels and class probabilities, reduced (see
    `categorical_generalized_cross_entropy`).

    Args:
        q: The noise parameter, in (0, 1). Defaults to 0.5.
        reduction, name, dtype: See `Loss` (name defaults to
            "categorical_generalized_cross_entropy").

    Raises:
        ValueError: if `q` is not in (0, 1).
    """

    def __init__(self, q=0.5, reduction="sum_over_batch_size",
                 name="categorical_generalized_cross_entropy", dtype=None):
        if not 0 < q < 1:
            raise ValueError(f"Argument `q` must be in the interval (0, 1). Received: q={q!r}")
        super().__init__(categorical_generalized_cross_entropy, reduction, name, dtype, q=q)
