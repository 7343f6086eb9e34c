"""`keras.metrics`: stateful metrics whose state variables are updated inside compiled steps,
the stateless metric functions, and `get` / `serialize` / `deserialize`.

`resolve_accuracy` implements the rule `compile(metrics=["accuracy"])` uses to pick binary,
sparse categorical or categorical accuracy from the loss and the shapes of the data.
"""
from __future__ import annotations

from kgraph.keras import losses as _losses
from kgraph.keras.losses import (binary_crossentropy, binary_focal_crossentropy,  # noqa: F401
                                 categorical_crossentropy, categorical_focal_crossentropy,
                                 categorical_hinge, hinge, huber, kl_divergence, log_cosh,
                                 mean_absolute_error, mean_absolute_percentage_error,
                                 mean_squared_error, mean_squared_logarithmic_error, poisson,
                                 sparse_categorical_crossentropy, squared_hinge)
from kgraph.keras.metrics.accuracy import (Accuracy, BinaryAccuracy,  # noqa: F401
                                           CategoricalAccuracy, SparseCategoricalAccuracy,
                                           SparseTopKCategoricalAccuracy,
                                           TopKCategoricalAccuracy, accuracy, binary_accuracy,
                                           categorical_accuracy, in_top_k,
                                           sparse_categorical_accuracy,
                                           sparse_top_k_categorical_accuracy,
                                           top_k_categorical_accuracy)
from kgraph.keras.metrics.base import (Mean, MeanMetricWrapper, Metric,  # noqa: F401
                                       Sum, reduce_to_samplewise_values)
from kgraph.keras.metrics.confusion import (AUC, FalseNegatives, FalsePositives,  # noqa: F401
                                            Precision, Recall, TrueNegatives, TruePositives,
                                            update_confusion_matrix_variables)
from kgraph.keras.metrics.correlation import (ConcordanceCorrelation,  # noqa: F401
                                              PearsonCorrelation, R2Score,
                                              concordance_correlation, pearson_correlation)
from kgraph.keras.metrics.f_score import F1Score, FBetaScore  # noqa: F401
from kgraph.keras.metrics.iou import (IoU, BinaryIoU, MeanIoU, OneHotIoU,  # noqa: F401
                                      OneHotMeanIoU)
from kgraph.keras.metrics.sensitivity_specificity import (  # noqa: F401
    PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity)
from kgraph.keras.metrics.regression import (BinaryCrossentropy,  # noqa: F401
                                             CategoricalCrossentropy, CategoricalHinge,
                                             CosineSimilarity, Hinge, KLDivergence,
                                             LogCoshError, MeanAbsoluteError,
                                             MeanAbsolutePercentageError, MeanSquaredError,
                                             MeanSquaredLogarithmicError, Poisson,
                                             RootMeanSquaredError, SparseCategoricalCrossentropy,
                                             SquaredHinge)
from kgraph.keras.serialization import CustomObjectScope, lookup, snake_case

mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error

CLASSES = {c.__name__: c for c in (
    Metric, Mean, Sum, MeanMetricWrapper, MeanSquaredError, RootMeanSquaredError,
    MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
    CosineSimilarity, LogCoshError, AUC, FalseNegatives, FalsePositives, Precision, Recall,
    TrueNegatives, TruePositives, Hinge, SquaredHinge, CategoricalHinge, KLDivergence, Poisson,
    BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, Accuracy,
    BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU,
    FBetaScore, F1Score, PearsonCorrelation, ConcordanceCorrelation, R2Score,
    SensitivityAtSpecificity, SpecificityAtSensitivity, PrecisionAtRecall, RecallAtPrecision)}
# Keras 3: a metric string names a class, by its name, its snake_case name or an alias
STRINGS = {**{snake_case(name): cls for name, cls in CLASSES.items()},
           "bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
           "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
           "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
           "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError,
           "acc": Accuracy, "kld": KLDivergence, "logcosh": LogCoshError}
FUNCTIONS = {f.__name__: f for f in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
    top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, pearson_correlation,
    concordance_correlation)}
FUNCTIONS.update({k: v for k, v in _losses.FUNCTIONS.items() if k not in FUNCTIONS})


def metric_function(name):
    """The stateless metric (or loss) function called `name`."""
    from kgraph.keras.serialization import custom_objects

    fn = {**FUNCTIONS, **custom_objects()}.get(name)
    if not callable(fn) or isinstance(fn, type):
        raise ValueError(f"Unknown metric function: {name!r}. Known: {sorted(FUNCTIONS)}")
    return fn


def get(identifier):
    """Resolve a metric identifier to a `Metric` instance.

    Args:
        identifier: A name (`"mse"`, `"accuracy"`, `"AUC"`, `"precision"`), a config dict
            (`{"class_name": "AUC", "config": {...}}`), a metric function, a `Metric` class or
            instance, or None. A string gives a metric named after the string, as Keras'
            `compile` does. For the shape-dependent meaning of `"accuracy"` in `compile` see
            `resolve_accuracy`.

    Returns:
        A `Metric` (functions are wrapped in `MeanMetricWrapper`), or None for None.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", "metric"))
    if not isinstance(identifier, (str, dict)):
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}")
    try:
        found = lookup("metric", identifier, {**FUNCTIONS, **CLASSES, **STRINGS})
    except ValueError:
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Known "
                         f"metrics: {sorted({**CLASSES, **STRINGS})}") from None
    name = identifier if isinstance(identifier, str) else None
    if isinstance(found, Metric):
        return found
    if isinstance(found, type) and issubclass(found, Metric):
        return found(name=name) if name else found()
    if callable(found):
        return MeanMetricWrapper(found, name=name or found.__name__)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def _is_binary_crossentropy(loss):
    if loss is None:
        return False
    try:
        loss = _losses.get(loss)
    except ValueError:
        return False
    return getattr(loss, "fn", None) is _losses.binary_crossentropy


def resolve_accuracy(identifier, loss=None, y_true_shape=None, y_pred_shape=None):
    """The metric `compile(metrics=[identifier])` uses for one output.

    `"accuracy"` / `"acc"` (any case) become `BinaryAccuracy` when `y_pred`'s last dimension is
    1 or the loss is binary crossentropy, `SparseCategoricalAccuracy` when `y_true` has fewer
    dimensions than `y_pred` (or a last dimension of 1 while `y_pred`'s is > 1), else
    `CategoricalAccuracy`; the metric is named as written. Other identifiers go to `get`.

    Args:
        identifier: The metric identifier given to `compile`.
        loss: The output's loss (name, function or `Loss`), or None.
        y_true_shape: Shape of the targets (dims may be None).
        y_pred_shape: Shape of the predictions (dims may be None).

    Returns:
        A `Metric` instance.
    """
    if not isinstance(identifier, str) or identifier.lower() not in ("accuracy", "acc"):
        return get(identifier)
    y_true_shape, y_pred_shape = tuple(y_true_shape or ()), tuple(y_pred_shape or ())
    pred_last = y_pred_shape[-1] if y_pred_shape else None
    true_last = y_true_shape[-1] if y_true_shape else None
    if pred_last == 1 or _is_binary_crossentropy(loss):
        return BinaryAccuracy(name=identifier)
    more_classes = pred_last is not None and pred_last > 1
    if len(y_true_shape) < len(y_pred_shape) or (true_last == 1 and more_classes):
        return SparseCategoricalAccuracy(name=identifier)
    return CategoricalAccuracy(name=identifier)


def serialize(metric):
    """A `Metric`'s `{"class_name", "config"}` dict (a function's name for functions)."""
    if not isinstance(metric, Metric):
        return metric.__name__
    return {"module": "keras.metrics", "class_name": type(metric).__name__,
            "config": metric.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """The inverse of `serialize`: a `Metric` instance."""
    with CustomObjectScope(custom_objects or {}):
        return get(config)
