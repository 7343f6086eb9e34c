"""Loss functions (one value per sample and position), the helpers they share with
the metrics, and the Keras 3 reductions."""
from __future__ import annotations

import math

import numpy as np

from kgraph import config, ops
from kgraph.keras.serialization import CustomObjectScope, lookup, snake_case


REDUCTIONS = ("sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight")


# -- helpers shared with kgraph.keras.metrics --------------------------------------------------
def convert(x, dtype=None):
    """A tensor for `x`: Values and arrays pass through; Python lists/scalars become numpy
    (Python floats as floatx, as Keras' `convert_to_tensor`). Cast to `dtype` when given."""
    from kgraph.variables import Variable

    if isinstance(x, Variable):
        x = x.value
    if not (hasattr(x, "shape") and hasattr(x, "dtype")):
        x = np.asarray(x)
        if x.dtype == np.float64:
            x = x.astype(config.floatx())
    return x if dtype is None else ops.cast(x, dtype)


def _is_float(x):
    return str(x.dtype) in ("float16", "bfloat16", "float32", "float64")


def _y_pair(y_true, y_pred):
    """Convert `y_pred` (to a float dtype) and cast `y_true` to its dtype."""
    y_pred = convert(y_pred)
    if not _is_float(y_pred):
        y_pred = ops.cast(y_pred, config.floatx())
    return convert(y_true, y_pred.dtype), y_pred


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Squeeze or expand the last dim when the ranks differ by exactly one (Keras' rule)."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, -1)
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, -1)
    return x1, x2


def div_no_nan(a, b):
    """`a / b`, and 0 where the tensor `b` is 0 (gradient-safe: the divisor is never 0)."""
    # masks instead of `where(..., 0.0, ...)`: keeps the dtype of 0-d numpy operands
    zero = ops.cast(ops.equal(b, 0.0), b.dtype)
    return a / (b + zero) * (1.0 - zero)


def num_elements(x):
    """Number of elements of `x`: a Python int when static, else an int64 scalar tensor."""
    n = ops.count(x, tuple(range(len(x.shape))))
    return int(n) if isinstance(n, np.ndarray) else n


def _num_classes(x, axis=-1):
    n = x.shape[axis]
    return float(n) if n is not None else ops.cast(ops.count(x, (axis % len(x.shape),)), x.dtype)


# -- regression losses -------------------------------------------------------------------------
def mean_squared_error(y_true, y_pred):
    """Mean squared error: `mean(square(y_true - y_pred), axis=-1)`.

    Example:
    >>> mean_squared_error([[0.0, 1.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]])
    array([0.5, 0.5], dtype=float32)
    """
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    return ops.mean(ops.square(y_true - y_pred), axis=-1)


def mean_absolute_error(y_true, y_pred):
    """Mean absolute error: `mean(abs(y_true - y_pred), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    return ops.mean(ops.abs(y_true - y_pred), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    """`100 * mean(abs((y_true - y_pred) / max(abs(y_true), epsilon)), axis=-1)`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    diff = ops.abs((y_true - y_pred) / ops.maximum(ops.abs(y_true), config.epsilon()))
    return ops.mean(diff, axis=-1) * 100.0


def mean_squared_logarithmic_error(y_true, y_pred):
    """`mean(square(log(y_pred + 1) - log(y_true + 1)), axis=-1)`; values below epsilon are
    replaced by epsilon first."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    eps = config.epsilon()
    first = ops.log(ops.maximum(y_pred, eps) + 1.0)
    second = ops.log(ops.maximum(y_true, eps) + 1.0)
    return ops.mean(ops.square(first - second), axis=-1)


def l2_normalize(x, axis=-1):
    """`x / max(norm(x), epsilon)` (Keras' `normalize`); zero vectors stay zero."""
    eps = config.epsilon()
    # max before sqrt keeps the gradient finite for zero vectors
    return x / ops.sqrt(ops.maximum(ops.sum(ops.square(x), axis, keepdims=True), eps * eps))


def cosine_similarity(y_true, y_pred, axis=-1):
    """Negative cosine similarity, `-sum(l2_norm(y_true) * l2_norm(y_pred), axis)`: -1 means
    the same direction, 0 orthogonal (or a zero vector), so it can be minimised as a loss."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    return -ops.sum(l2_normalize(y_true, axis) * l2_normalize(y_pred, axis), axis=axis)


def huber(y_true, y_pred, delta=1.0):
    """Huber loss: `0.5 * x**2` where `|x| <= delta`, else `delta * |x| - 0.5 * delta**2`,
    with `x = y_pred - y_true`, averaged over the last axis."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    error = y_pred - y_true
    abs_error = ops.abs(error)
    delta = float(delta)
    quadratic = ops.square(error) * 0.5
    linear = abs_error * delta - 0.5 * delta * delta
    return ops.mean(ops.where(abs_error <= delta, quadratic, linear), axis=-1)


def log_cosh(y_true, y_pred):
    """`mean(log(cosh(y_pred - y_true)), axis=-1)`, computed as `x + softplus(-2x) - log 2`."""
    y_true, y_pred = squeeze_or_expand_to_same_rank(*_y_pair(y_true, y_pred))
    x = y_pred - y_true
    return ops.mean(x + ops.softplus(x * -2.0) - math.log(2.0), axis=-1)


# -- probabilistic losses ----------------------------------------------------------------------
def kl_divergence(y_true, y_pred):
    """Kullback-Leibler divergence `sum(y_true * log(y_true / y_pred), axis=-1)`, both clipped
    to `[epsilon, 1]`."""
    y_true, y_pred = _y_pair(y_true, y_pred)
    eps = config.epsilon()
    y_true, y_pred = ops.clip(y_true, eps, 1.0), ops.clip(y_pred, eps, 1.0)
    return ops.sum(y_true * ops.log(y_true / y_pred), axis=-1)


def poisson(y_true, y_pred):
    """Poisson loss `mean(y_pred - y_true * log(y_pred + epsilon), axis=-1)`."""
    y_true, y_pred = _y_pair(y_true, y_pred)
    return ops.mean(y_pred - y_true * ops.log(y_pred + config.epsilon()), axis=-1)


def _binary_crossentropy_elements(target, output, from_logits):
    if from_logits:
        # -t*log(sigmoid(x)) - (1-t)*log(1-sigmoid(x)) == softplus(x) - t*x, stable for any x
        return ops.softplus(output) - output * target
    eps = config.epsilon()
    output = ops.clip(output, eps, 1.0 - eps)
    return -(target * ops.log(output) + (1.0 - target) * ops.log(1.0 - output))


def _categorical_log_prob(output, from_logits, axis):
    if from_logits:
        return ops.log_softmax(output, axis=axis)
    eps = config.epsilon()
    output = output / ops.sum(output, axis, keepdims=True)
    return ops.log(ops.clip(output, eps, 1.0 - eps))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary crossentropy, averaged over `axis`.

    Args:
        y_true: Labels in `[0, 1]`, shape `(batch_size, d0, .. dN)`.
        y_pred: Probabilities (or logits when `from_logits=True`), same shape.
        from_logits: Whether `y_pred` holds logits.
        label_smoothing: Float in `[0, 1]`; labels become `y * (1 - s) + 0.5 * s`.
        axis: The axis the mean is taken over. Defaults to `-1`.

    Example:
    >>> binary_crossentropy([[0, 1], [0, 0]], [[0.6, 0.4], [0.4, 0.6]])
    array([0.9162905, 0.7136694], dtype=float32)
    """
    y_true, y_pred = _y_pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    return ops.mean(_binary_crossentropy_elements(y_true, y_pred, from_logits), axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Categorical crossentropy between one-hot (or soft) labels and predictions.

    Args:
        y_true: One-hot labels, shape `(batch_size, ..., num_classes)`.
        y_pred: Probabilities (renormalised to sum to 1, then clipped) or logits.
        from_logits: Whether `y_pred` holds logits (uses `log_softmax`).
        label_smoothing: Float in `[0, 1]`; labels become `y * (1 - s) + s / num_classes`.
        axis: The class axis. Defaults to `-1`.

    Example:
    >>> categorical_crossentropy([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    array([0.05129331, 2.3025851 ], dtype=float32)
    """
    _check_axis(axis)
    y_true, y_pred = _y_pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / _num_classes(y_true)
    return -ops.sum(y_true * _categorical_log_prob(y_pred, from_logits, axis), axis=axis)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Categorical crossentropy with integer labels (one-hot encoded by comparison).

    Args:
        y_true: Integer class ids, shape `(batch_size, ...)` or `(batch_size, ..., 1)`.
        y_pred: Probabilities or logits, shape `(batch_size, ..., num_classes)`.
        from_logits: Whether `y_pred` holds logits.
        ignore_class: Optional class id whose entries get a loss of 0.
        axis: The class axis of `y_pred`. Defaults to `-1`.

    Returns:
        Loss values: the shape of `y_pred` without the class axis.
    """
    _check_axis(axis)
    y_pred = convert(y_pred)
    if not _is_float(y_pred):
        y_pred = ops.cast(y_pred, config.floatx())
    y_true = convert(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    y_pred = _move_axis_last(y_pred, axis)
    valid = None
    if ignore_class is not None:
        valid = ops.not_equal(y_true, ops.cast(np.asarray(ignore_class), y_true.dtype))
        y_true = ops.where(valid, y_true, ops.cast(np.asarray(0), y_true.dtype))
    # the class count may be known only at run time: a (batch, batch) similarity matrix
    classes = y_pred.shape[-1] if y_pred.shape[-1] is not None else ops.shape(y_pred)[-1]
    target = ops.one_hot(y_true, classes, dtype=y_pred.dtype)
    res = -ops.sum(target * _categorical_log_prob(y_pred, from_logits, -1), axis=-1)
    return res if valid is None else ops.where(valid, res, 0.0)


def _move_axis_last(x, axis):
    axis = axis % len(x.shape)
    if axis == len(x.shape) - 1:
        return x
    perm = [i for i in range(len(x.shape)) if i != axis] + [axis]
    return ops.transpose(x, perm)


def _check_axis(axis):
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis!r} of type "
                         f"{type(axis)}")


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25,
                              gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    """Binary focal crossentropy: binary crossentropy scaled by `(1 - p_t) ** gamma` (and by
    `alpha` / `1 - alpha` for classes 1 / 0 when `apply_class_balancing`), averaged over
    `axis`."""
    y_true, y_pred = _y_pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    bce = _binary_crossentropy_elements(y_true, y_pred, from_logits=False)
    p_t = y_true * y_pred + (1.0 - y_true) * (1.0 - y_pred)
    focal = ops.power(1.0 - p_t, float(gamma)) * bce
    if apply_class_balancing:
        focal = (y_true * alpha + (1.0 - y_true) * (1.0 - alpha)) * focal
    return ops.mean(focal, axis=axis)


def categorical_focal_crossentropy(y_true, y_pred, alpha=0.25, gamma=2.0, from_logits=False,
                                   label_smoothing=0.0, axis=-1):
    """Categorical focal crossentropy: `sum(alpha * (1 - p) ** gamma * -y_true * log(p))` over
    `axis`, with `p` the renormalised, clipped probabilities."""
    _check_axis(axis)
    y_true, y_pred = _y_pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / _num_classes(y_true)
    if from_logits:
        y_pred = ops.softmax(y_pred, axis=axis)
    eps = config.epsilon()
    output = ops.clip(y_pred / ops.sum(y_pred, axis, keepdims=True), eps, 1.0 - eps)
    cce = -y_true * ops.log(output)
    alpha = np.asarray(alpha, dtype=str(y_pred.dtype)) if np.ndim(alpha) else float(alpha)
    return ops.sum(ops.power(1.0 - output, float(gamma)) * alpha * cce, axis=axis)


# -- hinge losses ------------------------------------------------------------------------------
def _to_plus_minus_one(y_true):
    """Labels in {0, 1} become {-1, 1}; any other labels are left as they are."""
    binary = ops.logical_or(ops.equal(y_true, 0.0), ops.equal(y_true, 1.0))
    all_binary = ops.min(ops.cast(binary, y_true.dtype)) > 0.5
    return ops.where(all_binary, y_true * 2.0 - 1.0, y_true)


def hinge(y_true, y_pred):
    """Hinge loss `mean(maximum(1 - y_true * y_pred, 0), axis=-1)`; labels in {0, 1} are
    converted to {-1, 1}."""
    y_true, y_pred = _y_pair(y_true, y_pred)
    y_true = _to_plus_minus_one(y_true)
    return ops.mean(ops.maximum(1.0 - y_true * y_pred, 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    """Squared hinge loss `mean(square(maximum(1 - y_true * y_pred, 0)), axis=-1)`."""
    y_true, y_pred = _y_pair(y_true, y_pred)
    y_true = _to_plus_minus_one(y_true)
    return ops.mean(ops.square(ops.maximum(1.0 - y_true * y_pred, 0.0)), axis=-1)


def categorical_hinge(y_true, y_pred):
    """`maximum(neg - pos + 1, 0)` with `pos = sum(y_true * y_pred)` and
    `neg = max((1 - y_true) * y_pred)` over the last axis."""
    y_true, y_pred = _y_pair(y_true, y_pred)
    pos = ops.sum(y_true * y_pred, axis=-1)
    neg = ops.max((1.0 - y_true) * y_pred, axis=-1)
    return ops.maximum(neg - pos + 1.0, 0.0)



# -- sequences -------------------------------------------------------------------------------
def ctc(y_true, y_pred):
    """CTC loss of integer labels against logits (`keras.losses.ctc`), as Keras 3: class 0 is
    the blank and pads `y_true`, so a row's label length is its count of non-zero entries;
    every `y_pred` step counts.

    Args:
        y_true: `(batch_size, max_length)` integer labels, 0 after each row's labels.
        y_pred: `(batch_size, max_length, num_classes)` logits (not softmax-normalized).

    Returns:
        `(batch_size,)` losses.
    """
    if len(ops.shape(y_true)) != 2:
        raise ValueError("Targets `y_true` are expected to be a tensor of shape "
                         "`(batch_size, max_length)` in integer format. "
                         f"Received: y_true.shape={tuple(y_true.shape)}")
    if len(ops.shape(y_pred)) != 3:
        raise ValueError("Logits `y_pred` are expected to be a tensor of shape "
                         "`(batch_size, max_length, num_classes)`. "
                         f"Received: y_pred.shape={tuple(y_pred.shape)}")
    batch, steps = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
    input_length = steps * ops.ones((batch,), dtype="int32")
    label_length = ops.cast(ops.sum(ops.not_equal(y_true, 0), axis=-1), "int32")
    return ops.ctc_loss(y_true, y_pred, label_length, input_length, mask_index=0)

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh
bce = BCE = binary_crossentropy


# -- reduction ---------------------------------------------------------------------------------
def _match_weight_rank(values, sample_weight):
    values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
    while len(sample_weight.shape) > len(values.shape) and sample_weight.shape[-1] == 1:
        sample_weight = ops.squeeze(sample_weight, -1)
    while len(sample_weight.shape) < len(values.shape):
        sample_weight = ops.expand_dims(sample_weight, -1)  # per-sample weight over the rest
    return values, sample_weight


def apply_mask(sample_weight, mask, dtype, reduction):
    """Merge a validity mask into the sample weights (Keras' `apply_mask`)."""
    if mask is None:
        return sample_weight
    mask = ops.cast(mask, dtype)
    if reduction in ("mean", "sum_over_batch_size"):
        # valid entries get weight total/valid, so the mean is taken over valid entries only
        total = num_elements(mask)
        total = float(total) if isinstance(total, int) else ops.cast(total, dtype)
        mask = mask * div_no_nan(total, ops.sum(mask))
    if sample_weight is None:
        return mask
    mask, sample_weight = squeeze_or_expand_to_same_rank(mask, convert(sample_weight, dtype))
    return sample_weight * mask


def reduce_values(values, sample_weight=None, reduction="sum_over_batch_size"):
    """Reduce already-weighted loss values as Keras 3 does."""
    if reduction in (None, "none") or tuple(values.shape) in ((), (0,)):
        return values
    loss = ops.sum(values)
    if reduction == "sum":
        return loss
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return div_no_nan(loss, ops.sum(sample_weight))
    n = num_elements(values)
    if isinstance(n, int):
        return loss / float(n) if n > 0 else loss * 0.0
    return div_no_nan(loss, ops.cast(n, loss.dtype))


def reduce_weighted_values(values, sample_weight=None, mask=None,
                           reduction="sum_over_batch_size", dtype=None):
    """Weight per-sample loss values by `sample_weight` (and `mask`) and reduce them."""
    _check_reduction(reduction)
    values = convert(values, dtype)
    sample_weight = apply_mask(sample_weight, mask, values.dtype, reduction)
    if sample_weight is not None:
        values, sample_weight = _match_weight_rank(values, convert(sample_weight, values.dtype))
        values = values * sample_weight
    return reduce_values(values, sample_weight, reduction)


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                         f"{REDUCTIONS}. Received: reduction={reduction!r}")
