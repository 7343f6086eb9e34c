"""The `Metric` base class and the reduction metrics `Mean`, `Sum` and `MeanMetricWrapper`.

Metric state lives in non-trainable `Variable`s. `update_state` is written with `kgraph.ops`
and `var.assign(var.value + ...)`, so it runs eagerly on numpy values and, traced inside a
compiled step, becomes part of the step's graph (the variables become its inputs/outputs).
"""
from __future__ import annotations

import functools

from kgraph import config, ops
from kgraph.ir.graph import Value, current_graph
from kgraph.keras.losses import convert, div_no_nan, squeeze_or_expand_to_same_rank
from kgraph.keras.serialization import snake_case
from kgraph.variables import Variable


class Metric:
    """Base class of stateful metrics.

    Subclasses create their state with `add_variable` in `__init__` and implement
    `update_state(y_true, y_pred, sample_weight=None)` and `result()`.

    Args:
        name: Name of the metric instance.
        dtype: Dtype of the metric state and result. Defaults to `kgraph.config.floatx()`.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "update_state" in cls.__dict__:
            cls.update_state = _eager_values_first(cls.__dict__["update_state"])
        if "result" in cls.__dict__:
            cls.result = _eager_tensor_results(cls.__dict__["result"])

    def __init__(self, name=None, dtype=None):
        self.name = name or snake_case(type(self).__name__)
        self.dtype = dtype or config.floatx()
        self._variables: list[Variable] = []

    def add_variable(self, shape=(), initializer="zeros", dtype=None, name=None):
        """Create a non-trainable state variable (reset to `initializer` by `reset_state`)."""
        from kgraph.keras import initializers

        init = initializers.get(initializer)
        var = Variable(init, shape=tuple(shape), dtype=dtype or self.dtype, trainable=False,
                       name=name, path=f"{self.name}/{name}")
        var._initializer = init
        self._variables.append(var)
        return var

    add_weight = add_variable

    @property
    def variables(self):
        return list(self._variables)

    def reset_state(self):
        """Reset every state variable to its initial value (eagerly)."""
        for v in self._variables:
            v.assign(v._initializer(v.shape, v.dtype))

    def reset_states(self):
        """tf.keras 2's name of `reset_state` (the keras.io researchers' guide calls it)."""
        self.reset_state()

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement `update_state`")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement `result`")

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def _eager_values_first(update_state):
    """`update_state` that, called eagerly with values recorded under a GradientTape (the
    guide's `metric.update_state(y, logits)`), reads their arrays first: the update then runs
    eagerly on them, as in TensorFlow, instead of being recorded into the tape's graph around
    the state read as a constant (a new program every step)."""
    @functools.wraps(update_state)
    def update(self, *args, **kwargs):
        if current_graph() is None:
            args = [_eager(a) for a in args]
            kwargs = {k: _eager(v) for k, v in kwargs.items()}
        return update_state(self, *args, **kwargs)
    return update


def _eager_tensor_results(result):
    """`result` whose eager arrays come back as eager tensors with `.numpy()`, as Keras'
    (`metric.result().numpy()` in a callback); traced values pass through."""
    from kgraph.keras.layers.tensors import as_eager_tensor

    @functools.wraps(result)
    def eager_result(self):
        out = result(self)
        if isinstance(out, dict):
            return {k: as_eager_tensor(v) for k, v in out.items()}
        return as_eager_tensor(out)
    return eager_result


def _eager(x):
    if isinstance(x, Value) and x.graph.captures is not None:
        return x.numpy()
    return x


def require_2d_inputs(metric, y_true_shape, y_pred_shape):
    """Raise unless both shapes are `(batch_size, output_dim)` with `output_dim` known (the
    metrics that size their state from the first batch: FBetaScore, R2Score)."""
    if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
        raise ValueError(f"{metric} expects 2D inputs with shape (batch_size, output_dim). "
                         f"Received input shapes: y_pred.shape={y_pred_shape} and "
                         f"y_true.shape={y_true_shape}.")
    if y_pred_shape[-1] is None or y_true_shape[-1] is None:
        raise ValueError(f"{metric} expects 2D inputs with shape (batch_size, output_dim), "
                         "with output_dim fully defined (not None). Received input shapes: "
                         f"y_pred.shape={y_pred_shape} and y_true.shape={y_true_shape}.")


def reduce_to_samplewise_values(values, sample_weight, reduce_fn, dtype):
    """Weight `values` and reduce them to one value per sample (Keras 3's rule): values are
    first reduced to the weights' rank, the weights broadcast to them, and both reduced over
    all axes but the first. Returns `(values, sample_weight)`."""
    values = convert(values, dtype)
    if sample_weight is not None:
        sample_weight = convert(sample_weight, dtype)
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        weight_rank, value_rank = len(sample_weight.shape), len(values.shape)
        if value_rank > weight_rank:
            values = reduce_fn(values, axis=tuple(range(weight_rank, value_rank)))
        sample_weight = ops.broadcast_like(sample_weight, values)
        values = values * sample_weight
        if weight_rank > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, weight_rank)))
    if len(values.shape) > 1:
        values = reduce_fn(values, axis=tuple(range(1, len(values.shape))))
    return values, sample_weight


class Sum(Metric):
    """The (weighted) sum of the given values.

    Example:
    >>> m = Sum()
    >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    >>> m.result()
    4.0
    """

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(name="total")

    def update_state(self, values, sample_weight=None):
        values, _ = reduce_to_samplewise_values(values, sample_weight, ops.sum, self.dtype)
        self.total.assign(self.total.value + ops.sum(values))

    def result(self):
        return self.total.value


class Mean(Metric):
    """The (weighted) mean of the given values: `total / count`.

    Each sample counts with its weight (the mean of its weights when they have more than one
    dimension); without weights each sample counts once.

    Example:
    >>> m = Mean()
    >>> m.update_state([1, 3, 5, 7], sample_weight=[1, 1, 0, 0])
    >>> m.result()
    2.0
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(name="total")
        self.count = self.add_variable(name="count")

    def update_state(self, values, sample_weight=None):
        values, sample_weight = reduce_to_samplewise_values(
            values, sample_weight, ops.mean, self.dtype)
        self.total.assign(self.total.value + ops.sum(values))
        if sample_weight is not None:
            num_samples = ops.sum(sample_weight)
        elif len(values.shape) >= 1:
            num_samples = ops.cast(ops.count(values, (0,)), self.dtype)
        else:
            num_samples = 1.0
        self.count.assign(self.count.value + num_samples)

    def result(self):
        return div_no_nan(self.total.value, self.count.value)


class MeanMetricWrapper(Mean):
    """Wrap a stateless metric function `fn(y_true, y_pred, **kwargs)` (one value per sample)
    into a `Mean` metric.

    Args:
        fn: The metric function, or the name of a built-in metric/loss function.
        name: Name of the metric; defaults to `fn.__name__`.
        dtype: Dtype of the state and result.
        **kwargs: Keyword arguments passed on to `fn`.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        if isinstance(fn, str):
            from kgraph.keras.metrics import metric_function

            fn = metric_function(fn)
        super().__init__(name=name or getattr(fn, "__name__", "metric"), dtype=dtype)
        self._fn, self._fn_kwargs = fn, kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        super().update_state(values, sample_weight=sample_weight)

    def get_config(self):
        config = {**super().get_config(), **self._fn_kwargs}
        if type(self) is MeanMetricWrapper:
            config["fn"] = getattr(self._fn, "__name__", repr(self._fn))
        return config
