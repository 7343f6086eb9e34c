"""`Loss` classes: a loss function plus a reduction, configurable and serializable."""
from __future__ import annotations

import math

import numpy as np

from kgraph import config, ops, replay
from kgraph.ir.graph import current_graph
from kgraph.keras.layers.tensors import as_eager_tensor
from kgraph.keras.serialization import CustomObjectScope, lookup, snake_case

from kgraph.keras.losses.functions import (_check_reduction, binary_crossentropy, binary_focal_crossentropy, categorical_crossentropy, categorical_focal_crossentropy, categorical_hinge, convert, cosine_similarity, ctc, hinge, huber, kl_divergence, log_cosh, mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, mean_squared_logarithmic_error, poisson, reduce_weighted_values, sparse_categorical_crossentropy, squared_hinge, squeeze_or_expand_to_same_rank)  # noqa: F401


# -- classes -----------------------------------------------------------------------------------
class Loss:
    """Loss base class: subclasses implement `call(y_true, y_pred)`, which returns per-sample
    losses; `__call__` weights them by `sample_weight` and applies the reduction.

    Args:
        name: Name of the loss instance.
        reduction: One of `"sum_over_batch_size"` (default), `"sum"`, `"mean"`,
            `"mean_with_sample_weight"`, `"none"` or `None`.
        dtype: Dtype of the computation; `y_true` and `y_pred` are cast to it. Defaults to
            `kgraph.config.floatx()`.
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        _check_reduction(reduction)
        self.name = name or snake_case(type(self).__name__)
        self.reduction = reduction
        self.dtype = dtype or config.floatx()

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__} must implement `call`")

    def compute_mask(self, y_true, y_pred):
        """A validity mask for the per-sample losses, or None (all valid)."""
        return None

    def output_mask(self, losses):
        """A validity mask computed from the per-sample losses (Keras' `_keras_mask` on the
        output of `call`), or None; combined with `compute_mask`'s by a logical and."""
        return None

    def __call__(self, y_true, y_pred, sample_weight=None):
        graph = current_graph()
        if graph is not None and graph.captures is not None:  # an eager GradientTape
            return replay.loss_call(self, graph, (y_true, y_pred, sample_weight), self._record)
        out = self._record(y_true, y_pred, sample_weight)
        return as_eager_tensor(out) if graph is None else out  # `.numpy()`, as Keras

    def _record(self, y_true, y_pred, sample_weight=None):
        y_pred, y_true = self._convert(y_pred), self._convert(y_true)
        losses = self.call(y_true, y_pred)
        mask, output_mask = self.compute_mask(y_true, y_pred), self.output_mask(losses)
        if output_mask is not None:
            mask = output_mask if mask is None else ops.logical_and(mask, output_mask)
        return reduce_weighted_values(losses, sample_weight, mask, self.reduction, self.dtype)

    def _convert(self, y):
        """`y` as tensors of the loss dtype, each leaf of a list/tuple/dict (Keras 3 maps the
        structure: the keras.io GauGAN's feature-matching loss of two lists of discriminator
        outputs); a Python bool reaches `call` as it is (tf.keras 2 converts nothing before a
        subclass's `call`, which may branch on it: GauGAN's `DiscriminatorLoss()(y, False)`)."""
        if isinstance(y, bool):
            return y
        if isinstance(y, (list, tuple, dict)):
            from kgraph.keras.tree import flatten, pack_like

            leaves = flatten(y)
            if not all(isinstance(leaf, (int, float)) for leaf in leaves):  # not nested data
                return pack_like(y, [convert(leaf, self.dtype) for leaf in leaves])
        return convert(y, self.dtype)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class LossFunctionWrapper(Loss):
    """Wrap a loss function `fn(y_true, y_pred, **kwargs)` into a `Loss`.

    Args:
        fn: The loss function (or the name of a built-in one).
        reduction: See `Loss`.
        name: Name of the loss; defaults to `fn.__name__`.
        dtype: See `Loss`.
        **kwargs: Keyword arguments passed on to `fn` (also set as attributes).
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        if isinstance(fn, str):
            fn = _function(fn)
        super().__init__(name=name or getattr(fn, "__name__", None), reduction=reduction,
                         dtype=dtype)
        self.fn, self.fn_kwargs = fn, kwargs
        for key, value in kwargs.items():
            if not hasattr(self, key):
                setattr(self, key, value)

    def _convert(self, y):
        return convert(y, self.dtype)  # a list of arrays is one tensor for a built-in loss

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self.fn_kwargs)

    def output_mask(self, losses):
        mask_of = getattr(self.fn, "output_mask", None)  # e.g. `circle`'s: loss > 0
        return None if mask_of is None else mask_of(losses)

    def get_config(self):
        config = {**super().get_config(), **self.fn_kwargs}
        if type(self) is LossFunctionWrapper:
            config["fn"] = getattr(self.fn, "__name__", repr(self.fn))
        return config


def _function(name):
    from kgraph.keras.losses import FUNCTIONS
    from kgraph.keras.serialization import custom_objects

    fn = {**FUNCTIONS, **custom_objects()}.get(name)
    if not callable(fn) or isinstance(fn, type):
        raise ValueError(f"Unknown loss function: {name!r}. Known: {sorted(FUNCTIONS)}")
    return fn


# The classes below take the arguments of their function, then `reduction`, `name`, `dtype`
# (see `Loss`), in Keras' order.
class MeanSquaredError(LossFunctionWrapper):
    """Mean of squares of errors, `mean(square(y_true - y_pred))`."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, reduction, name, dtype)


class MeanAbsoluteError(LossFunctionWrapper):
    """Mean of absolute errors, `mean(abs(y_true - y_pred))`."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, reduction, name, dtype)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    """Mean absolute percentage error, `100 * mean(abs((y_true - y_pred) / y_true))`."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_percentage_error",
                 dtype=None):
        super().__init__(mean_absolute_percentage_error, reduction, name, dtype)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    """Mean squared logarithmic error, `mean(square(log(y_true + 1) - log(y_pred + 1)))`."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_logarithmic_error",
                 dtype=None):
        super().__init__(mean_squared_logarithmic_error, reduction, name, dtype)


class CosineSimilarity(LossFunctionWrapper):
    """Negative cosine similarity along `axis` (default -1): -1 for the same direction."""

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name="cosine_similarity",
                 dtype=None):
        super().__init__(cosine_similarity, reduction, name, dtype, axis=axis)


class Huber(LossFunctionWrapper):
    """Huber loss: quadratic for `|error| <= delta` (default 1.0), linear beyond."""

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss",
                 dtype=None):
        super().__init__(huber, reduction, name, dtype, delta=delta)


class LogCosh(LossFunctionWrapper):
    """Logarithm of the hyperbolic cosine of the prediction error."""

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, reduction, name, dtype)


class KLDivergence(LossFunctionWrapper):
    """Kullback-Leibler divergence `y_true * log(y_true / y_pred)`, clipped to [eps, 1]."""

    def __init__(self, reduction="sum_over_batch_size", name="kl_divergence", dtype=None):
        super().__init__(kl_divergence, reduction, name, dtype)


class Poisson(LossFunctionWrapper):
    """Poisson loss `y_pred - y_true * log(y_pred)`."""

    def __init__(self, reduction="sum_over_batch_size", name="poisson", dtype=None):
        super().__init__(poisson, reduction, name, dtype)


class Hinge(LossFunctionWrapper):
    """Hinge loss `maximum(1 - y_true * y_pred, 0)`; {0, 1} labels become {-1, 1}."""

    def __init__(self, reduction="sum_over_batch_size", name="hinge", dtype=None):
        super().__init__(hinge, reduction, name, dtype)


class SquaredHinge(LossFunctionWrapper):
    """Squared hinge loss `square(maximum(1 - y_true * y_pred, 0))`."""

    def __init__(self, reduction="sum_over_batch_size", name="squared_hinge", dtype=None):
        super().__init__(squared_hinge, reduction, name, dtype)


class CategoricalHinge(LossFunctionWrapper):
    """Categorical hinge loss `maximum(neg - pos + 1, 0)`."""

    def __init__(self, reduction="sum_over_batch_size", name="categorical_hinge", dtype=None):
        super().__init__(categorical_hinge, reduction, name, dtype)


class BinaryCrossentropy(LossFunctionWrapper):
    """Crossentropy between binary labels and predicted probabilities.

    Args:
        from_logits: Whether `y_pred` holds logits rather than probabilities.
        label_smoothing: Float in [0, 1]; labels are squeezed towards 0.5.
        axis: The axis the mean is taken over. Defaults to -1.
        reduction, name, dtype: See `Loss`.

    Example:
    >>> BinaryCrossentropy(from_logits=True)([[0, 1], [0, 0]], [[-18.6, 0.51], [2.94, -12.8]])
    0.8654
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, reduction, name, dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class CategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy between one-hot labels and predicted class probabilities.

    Args:
        from_logits: Whether `y_pred` holds logits rather than probabilities.
        label_smoothing: Float in [0, 1]; labels become `y * (1 - s) + s / num_classes`.
        axis: The class axis. Defaults to -1.
        reduction, name, dtype: See `Loss`.

    Example:
    >>> CategoricalCrossentropy()([[0, 1, 0], [0, 0, 1]], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    1.1769392
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy", dtype=None):
        super().__init__(categorical_crossentropy, reduction, name, dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class BinaryFocalCrossentropy(LossFunctionWrapper):
    """Binary crossentropy that down-weights easy examples by `(1 - p_t) ** gamma`; with
    `apply_class_balancing`, class 1 is weighted by `alpha` and class 0 by `1 - alpha`.
    Other arguments as `BinaryCrossentropy`."""

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_focal_crossentropy", dtype=None):
        super().__init__(binary_focal_crossentropy, reduction, name, dtype,
                         apply_class_balancing=apply_class_balancing, alpha=alpha, gamma=gamma,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class CategoricalFocalCrossentropy(LossFunctionWrapper):
    """Categorical crossentropy scaled by `alpha * (1 - p) ** gamma` (alpha: a float or one per
    class). Other arguments as `CategoricalCrossentropy`."""

    def __init__(self, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_focal_crossentropy",
                 dtype=None):
        super().__init__(categorical_focal_crossentropy, reduction, name, dtype, alpha=alpha,
                         gamma=gamma, from_logits=from_logits, label_smoothing=label_smoothing,
                         axis=axis)


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy between integer labels and predicted class probabilities.

    Args:
        from_logits: Whether `y_pred` holds logits rather than probabilities.
        ignore_class: Optional class id to leave out: its entries get a loss of 0 and do not
            count in the "sum_over_batch_size" mean.
        reduction, name, dtype: See `Loss`.

    Example:
    >>> SparseCategoricalCrossentropy()([1, 2], [[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
    1.1769392
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, reduction, name, dtype,
                         from_logits=from_logits, ignore_class=ignore_class)

    def compute_mask(self, y_true, y_pred):
        if self.ignore_class is None:
            return None
        if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
            y_true = ops.squeeze(y_true, -1)
        return ops.not_equal(y_true, ops.cast(np.asarray(self.ignore_class), y_true.dtype))


class CTC(LossFunctionWrapper):
    """CTC (Connectionist Temporal Classification) loss (`keras.losses.CTC`): `ctc` reduced.

    Args:
        reduction, name, dtype: See `Loss`.
    """

    def __init__(self, reduction="sum_over_batch_size", name="ctc", dtype=None):
        super().__init__(ctc, reduction, name, dtype)

    def get_config(self):
        return Loss.get_config(self)
