"""`keras.losses`: loss functions (per-sample values) and `Loss` classes (reduced, weighted).

Numerics follow Keras 3: probabilities are clipped to `[epsilon, 1 - epsilon]` (epsilon from
`kgraph.config.epsilon()`, 1e-7), categorical crossentropy renormalises `y_pred` first, and the
`from_logits` forms use `log_softmax` / `softplus`. Reductions follow Keras 3 too:
"sum_over_batch_size" divides the weighted sum by the number of loss elements (not by the sum
of the weights); "mean_with_sample_weight" divides by the sum of the sample weights.

Loss functions take `y_true`, `y_pred` of shape `(batch_size, d0, .. dN)` and return one value
per sample and position, shape `(batch_size, d0, .. dN-1)`. Everything is written with
`kgraph.ops`, so the same code runs eagerly on numpy arrays and traced inside compiled steps
(where shapes may hold `None`).
"""
from __future__ import annotations

import math

import numpy as np

from kgraph import config, ops
from kgraph.keras.serialization import CustomObjectScope, lookup, snake_case

from kgraph.keras.losses.functions import *  # noqa: F401,F403
from kgraph.keras.losses.functions import (_is_float, _y_pair, _num_classes, _binary_crossentropy_elements, _categorical_log_prob, _move_axis_last, _check_axis, _to_plus_minus_one, _match_weight_rank, _check_reduction)  # noqa: F401
from kgraph.keras.losses.classes import *  # noqa: F401,F403
from kgraph.keras.losses.classes import (_function)  # noqa: F401
from kgraph.keras.losses.overlap_circle_gce import (  # noqa: F401
    CategoricalGeneralizedCrossEntropy, Circle, Dice, Tversky,
    categorical_generalized_cross_entropy, circle, dice, tversky)


CLASSES = {c.__name__: c for c in (
    Loss, LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
    MeanSquaredLogarithmicError, CosineSimilarity, Huber, LogCosh, KLDivergence, Poisson,
    Hinge, SquaredHinge, CategoricalHinge, BinaryCrossentropy, CategoricalCrossentropy,
    SparseCategoricalCrossentropy, BinaryFocalCrossentropy, CategoricalFocalCrossentropy, CTC,
    Dice, Tversky, Circle, CategoricalGeneralizedCrossEntropy)}
FUNCTIONS = {f.__name__: f for f in (
    mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
    mean_squared_logarithmic_error, cosine_similarity, huber, log_cosh, kl_divergence, poisson,
    hinge, squared_hinge, categorical_hinge, binary_crossentropy, categorical_crossentropy,
    sparse_categorical_crossentropy, binary_focal_crossentropy,
    categorical_focal_crossentropy, ctc, dice, tversky, circle,
    categorical_generalized_cross_entropy)}
FUNCTIONS.update({"mse": mse, "MSE": mse, "mae": mae, "MAE": mae, "mape": mape, "MAPE": mape,
                  "msle": msle, "MSLE": msle, "kld": kld, "KLD": kld, "bce": bce, "BCE": bce,
                  "kullback_leibler_divergence": kld, "logcosh": log_cosh})
ALL_OBJECTS = {**CLASSES, **FUNCTIONS}


def get(identifier):
    """Resolve a loss identifier to a `Loss` instance.

    Args:
        identifier: A name (`"mse"`, `"categorical_crossentropy"`, `"Huber"`), a config dict
            (`{"class_name": "Huber", "config": {...}}`), a loss function, a `Loss` class or
            instance, or None.

    Returns:
        A `Loss` (functions are wrapped in `LossFunctionWrapper`), or None for None.

    Raises:
        ValueError: if the identifier cannot be interpreted.
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier):
        return LossFunctionWrapper(identifier, name=getattr(identifier, "__name__", "loss"))
    if not isinstance(identifier, (str, dict)):
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
    try:
        found = lookup("loss", identifier, ALL_OBJECTS)
    except ValueError:
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Known losses: "
                         f"{sorted(ALL_OBJECTS)}") from None
    if isinstance(found, Loss):
        return found
    if isinstance(found, type):
        return found()
    if callable(found):
        return LossFunctionWrapper(found, name=found.__name__)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")


def serialize(loss):
    """A loss function's name, or a `Loss` instance's `{"class_name", "config"}` dict."""
    if not isinstance(loss, Loss):
        return loss.__name__
    if type(loss) is LossFunctionWrapper and not loss.fn_kwargs:
        return loss.fn.__name__
    return {"module": "keras.losses", "class_name": type(loss).__name__,
            "config": loss.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    """The inverse of `serialize`: a `Loss` instance."""
    with CustomObjectScope(custom_objects or {}):
        return get(config)
