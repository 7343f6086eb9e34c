"""`keras.metrics`: stateful metrics whose state variables are updated inside compiled steps."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.serialization import lookup, snake_case
from kgraph.variables import Variable


class Metric:
    def __init__(self, name=None, dtype=None):
        self.name = name or snake_case(type(self).__name__)
        self.dtype = dtype or "float32"
        self._variables: list[Variable] = []

    def add_variable(self, shape=(), initializer="zeros", dtype=None, name=None):
        from kgraph.keras import initializers

        var = Variable(initializers.get(initializer), shape=tuple(shape),
                       dtype=dtype or self.dtype, trainable=False, name=name,
                       path=f"{self.name}/{name}")
        var._initializer = initializers.get(initializer)
        self._variables.append(var)
        return var

    add_weight = add_variable

    @property
    def variables(self):
        return list(self._variables)

    def reset_state(self):
        for v in self._variables:
            v.assign(v._initializer(v.shape, v.dtype))

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Reduce(Metric):
    def __init__(self, reduction="mean", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.reduction = reduction
        self.total = self.add_variable(name="total")
        self.count = self.add_variable(name="count")

    def update_state(self, values, sample_weight=None):
        values = _per_sample(ops.cast(_tensor(values, self.dtype), self.dtype))
        if sample_weight is None:
            weight = _num_elements(values)
        else:
            sw = _per_sample(ops.cast(_tensor(sample_weight, self.dtype), self.dtype))
            values = values * sw
            weight = ops.sum(sw + values * 0.0)  # broadcast to the values' shape, then count
        self.total.assign(self.total.value + ops.sum(values))
        self.count.assign(self.count.value + weight)

    def result(self):
        if self.reduction == "sum":
            return self.total.value
        return _div_no_nan(self.total.value, self.count.value)


def _tensor(x, dtype):
    return x if hasattr(x, "dtype") and hasattr(x, "shape") else np.asarray(x, dtype=dtype)


def _per_sample(x):
    """Mean over all axes but the first (Keras' reduce_to_samplewise_values)."""
    return ops.mean(x, axis=tuple(range(1, len(x.shape)))) if len(x.shape) > 1 else x


def _num_elements(x):
    shape = getattr(x, "shape", ())
    if not shape:
        return np.float32(1.0)
    return ops.cast(ops.count(x, tuple(range(len(shape)))), "float32")


def _match_rank(sw, values):
    while len(sw.shape) > len(values.shape):
        sw = ops.squeeze(sw, -1)
    while len(sw.shape) < len(values.shape):
        sw = ops.expand_dims(sw, -1)
    return sw


def _div_no_nan(a, b):
    return ops.where(ops.equal(b, 0.0), 0.0, a / ops.where(ops.equal(b, 0.0), 1.0, b))


class Mean(Reduce):
    def __init__(self, name="mean", dtype=None):
        super().__init__("mean", name=name, dtype=dtype)


class Sum(Reduce):
    def __init__(self, name="sum", dtype=None):
        super().__init__("sum", name=name, dtype=dtype)


class MeanMetricWrapper(Mean):
    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", "metric"), dtype=dtype)
        self._fn, self._fn_kwargs = fn, kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight)

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _mse(y_true, y_pred):
    from kgraph.keras.losses import mean_squared_error

    return mean_squared_error(y_true, y_pred)


def _mae(y_true, y_pred):
    from kgraph.keras.losses import mean_absolute_error

    return mean_absolute_error(y_true, y_pred)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(_mse, name=name, dtype=dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(_mae, name=name, dtype=dtype)


CLASSES = {"Mean": Mean, "Sum": Sum, "MeanSquaredError": MeanSquaredError,
           "MeanAbsoluteError": MeanAbsoluteError}
STRINGS = {"mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
           "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError}


def get(identifier, y_true_hint=None):
    """Resolve a metric name, config, function or Metric instance to a `Metric`."""
    if isinstance(identifier, Metric):
        return identifier
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", "metric"))
    try:
        found = lookup("metric", identifier, {**CLASSES, **STRINGS})
    except ValueError:
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}. Known "
                         f"metrics: {sorted(STRINGS)}") from None
    if isinstance(found, type):
        metric = found()
        if isinstance(identifier, str) and identifier in STRINGS:
            metric.name = identifier
        return metric
    return found if isinstance(found, Metric) else MeanMetricWrapper(found)


def serialize(metric):
    return {"module": "keras.metrics", "class_name": type(metric).__name__,
            "config": metric.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    return get(config)
