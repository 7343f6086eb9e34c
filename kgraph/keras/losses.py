"""`keras.losses`: loss functions (per-sample values) and `Loss` classes (reduced, weighted).

Reductions follow Keras 3: "sum_over_batch_size" divides the weighted sum by the number of
elements of the per-sample loss (not by the sum of the weights).
"""
from __future__ import annotations

from kgraph import config, ops
from kgraph.keras.serialization import lookup

REDUCTIONS = ("sum_over_batch_size", "sum", "none", None, "mean", "mean_with_sample_weight")


def _float(y_true, y_pred):
    return ops.cast(y_true, y_pred.dtype) if y_true.dtype != y_pred.dtype else y_true


def mean_squared_error(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    return ops.mean(ops.square(y_pred - y_true), axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_true = _float(y_true, y_pred)
    return ops.mean(ops.abs(y_pred - y_true), axis=-1)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


class Loss:
    """Base class: `call(y_true, y_pred)` gives per-sample losses; `__call__` reduces them."""

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in REDUCTIONS:
            raise ValueError(f"Invalid value for argument `reduction`. Expected one of "
                             f"{REDUCTIONS}. Received: reduction={reduction!r}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype or config.floatx()

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        losses = self.call(y_true, y_pred)
        return reduce_weighted(losses, sample_weight, self.reduction)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def reduce_weighted(losses, sample_weight, reduction):
    if sample_weight is not None:
        sample_weight = ops.cast(sample_weight, losses.dtype)
        while len(sample_weight.shape) > len(losses.shape):
            sample_weight = ops.squeeze(sample_weight, -1)
        while len(sample_weight.shape) < len(losses.shape):
            sample_weight = ops.expand_dims(sample_weight, -1)
        losses = losses * sample_weight
    if reduction in ("none", None):
        return losses
    total = ops.sum(losses)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and sample_weight is not None:
        return total / ops.sum(sample_weight + losses * 0.0)
    return total / ops.cast(ops.count(losses, tuple(range(len(losses.shape)))), losses.dtype)


def _snake(name):
    from kgraph.keras.serialization import snake_case

    return snake_case(name)


class LossFunctionWrapper(Loss):
    def __init__(self, fn, name=None, reduction="sum_over_batch_size", dtype=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.fn, self.fn_kwargs = fn, kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def get_config(self):
        return {**super().get_config(), **self.fn_kwargs}


class MeanSquaredError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)


CLASSES = {"MeanSquaredError": MeanSquaredError, "MeanAbsoluteError": MeanAbsoluteError}
FUNCTIONS = {"mean_squared_error": mean_squared_error, "mse": mean_squared_error,
             "MSE": mean_squared_error, "mean_absolute_error": mean_absolute_error,
             "mae": mean_absolute_error, "MAE": mean_absolute_error}


def get(identifier):
    """Resolve a loss name, config, function or Loss instance to a `Loss`."""
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if callable(identifier) and not isinstance(identifier, type):
        return LossFunctionWrapper(identifier, name=getattr(identifier, "__name__", "loss"))
    try:
        found = lookup("loss", identifier, {**CLASSES, **FUNCTIONS})
    except ValueError:
        raise ValueError(f"Could not interpret loss identifier: {identifier!r}. Known losses: "
                         f"{sorted(FUNCTIONS)}") from None
    if isinstance(found, Loss):
        return found
    if isinstance(found, type):
        return found()
    return LossFunctionWrapper(found, name=found.__name__)


def serialize(loss):
    if isinstance(loss, LossFunctionWrapper) and type(loss) is LossFunctionWrapper:
        return loss.fn.__name__
    return {"module": "keras.losses", "class_name": type(loss).__name__,
            "config": loss.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    return get(config)
