"""Integer-category layers inside the graph: `CategoryEncoding` and `Discretization` (Keras 3
names, arguments, output modes and shapes)."""
from __future__ import annotations

import numpy as np

from kgraph import ops
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.preprocessing.adapt_data import iterate_batches

__all__ = ["CategoryEncoding", "Discretization"]

OUTPUT_MODES = ("int", "one_hot", "multi_hot", "count")


def encode_categorical(inputs, output_mode, depth, dtype="float32", count_weights=None):
    """Keras' `encode_categorical_inputs`: integer ids to `one_hot` / `multi_hot` / `count`
    vectors of length `depth` (a rank-1 input is one sample for multi_hot and count)."""
    if output_mode == "int":
        return ops.cast(inputs, dtype)
    if len(inputs.shape) == 0:
        inputs = ops.expand_dims(inputs, -1)
    if output_mode == "one_hot":
        if len(inputs.shape) > 1 and inputs.shape[-1] == 1:
            inputs = ops.squeeze(inputs, -1)
        return ops.one_hot(ops.cast(inputs, "int64"), depth, dtype=dtype)
    encoded = ops.one_hot(ops.cast(inputs, "int64"), depth, dtype=dtype)
    axis = 1 if len(inputs.shape) > 1 else 0
    if output_mode == "multi_hot":
        return ops.max(encoded, axis=axis)
    if count_weights is not None:
        encoded = encoded * ops.expand_dims(ops.cast(count_weights, dtype), -1)
    return ops.sum(encoded, axis=axis)


def encoded_shape(input_shape, output_mode, depth):
    """The output shape of `encode_categorical` (Keras' `compute_output_shape`)."""
    input_shape = tuple(input_shape)
    if output_mode == "int":
        return input_shape
    if not input_shape:
        return (depth,)
    if output_mode == "one_hot" and (input_shape[-1] != 1 or len(input_shape) == 1):
        return input_shape + (depth,)
    return input_shape[:-1] + (depth,)


class CategoryEncoding(Layer):
    """Encodes integer features as one-hot, multi-hot or count vectors.

    Args:
        num_tokens: the number of categories (inputs lie in `[0, num_tokens)`).
        output_mode: `"multi_hot"` (default), `"one_hot"` or `"count"`.
        sparse: must be False (kgraph has no sparse tensors).

    Call arguments:
        inputs: integer tensor, rank 1 or 2.
        count_weights: weights of each input in `"count"` mode.

    Example:
        >>> CategoryEncoding(num_tokens=4, output_mode="one_hot")(np.array([3, 2, 0, 1]))
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in ("count", "one_hot", "multi_hot"):
            raise ValueError(f"Unknown arg for output_mode: {output_mode}")
        if num_tokens is None:
            raise ValueError("num_tokens must be set to use this layer. If the number of "
                             "tokens is not known beforehand, use the IntegerLookup layer "
                             "instead.")
        if num_tokens < 1:
            raise ValueError(f"`num_tokens` must be >= 1. Received: num_tokens={num_tokens}.")
        if sparse:
            raise ValueError("CategoryEncoding: sparse=True is not supported by kgraph.")
        self.num_tokens, self.output_mode, self.sparse = int(num_tokens), output_mode, sparse

    def call(self, inputs, count_weights=None):
        if count_weights is not None and self.output_mode != "count":
            raise ValueError(f"`count_weights` is not used when `output_mode` is not "
                             f"`'count'`. Received `count_weights={count_weights}`.")
        return encode_categorical(inputs, self.output_mode, self.num_tokens,
                                  self.compute_dtype, count_weights)

    def compute_output_shape(self, input_shape):
        return encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens,
                "output_mode": self.output_mode}


def quantile_summary(values, epsilon):
    """Keras' summary of one batch: every `step`-th of the sorted values (`step` = the
    batch size times `epsilon`, at least 1), each weighing `step`."""
    values = np.sort(np.asarray(values, np.float32).reshape(-1))
    step = max(values.size * epsilon, 1)
    picked = values[int(step - 1)::int(step)]
    return np.stack([picked, np.ones_like(picked) * step])


def merge_summaries(summary, previous, epsilon):
    merged = np.concatenate((summary, previous), axis=1)
    return compress_summary(merged[:, np.argsort(merged[0])], epsilon)


def compress_summary(summary, epsilon):
    """At most `1 / epsilon` values: those at cumulative weight fractions epsilon, 2 epsilon,
    ..., 1 (linear interpolation), weighing the weight between them. Smaller summaries stay
    as they are."""
    if summary.shape[1] * epsilon < 1:
        return summary
    fractions = epsilon + np.arange(0.0, 1.0, epsilon)
    cumulative = summary[1].cumsum()
    at = cumulative / cumulative[-1]
    values = np.interp(fractions, at, summary[0])
    weights = np.diff(np.interp(fractions, at, cumulative), prepend=0.0)
    return np.stack((values, weights)).astype(np.float32)


class Discretization(Layer):
    """Buckets continuous values into integer bins: `bin_boundaries=[0., 1., 2.]` makes bins
    `(-inf, 0)`, `[0, 1)`, `[1, 2)`, `[2, inf)`.

    Args:
        bin_boundaries: sorted boundaries (or None, to `adapt` `num_bins` quantile bins).
        num_bins: number of bins that `adapt()` computes.
        epsilon: the precision of `adapt()`'s quantile estimate (Keras' algorithm).
        output_mode: `"int"` (default), `"one_hot"`, `"multi_hot"` or `"count"`.
        sparse: must be False.

    Example:
        >>> Discretization(bin_boundaries=[0.0, 1.0])(np.array([[-1.5, 0.5, 3.0]]))
        [[0, 1, 2]]
    """

    def __init__(self, bin_boundaries=None, num_bins=None, epsilon=0.01, output_mode="int",
                 sparse=False, dtype=None, name=None, **kwargs):
        super().__init__(name=name, dtype=dtype, **kwargs)
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"Invalid value for argument `output_mode`. Expected one of "
                             f"{list(OUTPUT_MODES)}. Received: output_mode={output_mode}")
        if sparse:
            raise ValueError("Discretization: sparse=True is not supported by kgraph.")
        if num_bins is not None and num_bins < 0:
            raise ValueError(f"`num_bins` must be greater than or equal to 0. "
                             f"Received: `num_bins={num_bins}`")
        if num_bins is not None and bin_boundaries is not None:
            raise ValueError(f"Both `num_bins` and `bin_boundaries` should not be set. "
                             f"Received: `num_bins={num_bins}` and "
                             f"`bin_boundaries={bin_boundaries}`")
        self.bin_boundaries = None if bin_boundaries is None else list(bin_boundaries)
        self.num_bins, self.epsilon, self.output_mode, self.sparse = \
            num_bins, epsilon, output_mode, sparse

    def adapt(self, data, steps=None):
        """Set `bin_boundaries` to the `num_bins`-quantiles of `data` (an array, or batches
        from a Dataset or any iterable), estimated as Keras does: each batch is summarized
        by `1 / epsilon` weighted values, summaries merge batch by batch, and the boundaries
        interpolate the cumulative weights (`quantile_summary` below), so they equal Keras'."""
        if self.num_bins is None:
            raise ValueError("Cannot adapt a Discretization layer that has been initialized "
                             "with `bin_boundaries`, use `num_bins` instead.")
        summary = np.zeros((2, 0), np.float32)
        for i, batch in enumerate(iterate_batches(data)):
            if steps is not None and i >= steps:
                break
            summary = merge_summaries(quantile_summary(batch, self.epsilon), summary,
                                      self.epsilon)
        boundaries = compress_summary(summary, 1.0 / self.num_bins)[0, :-1]
        self.bin_boundaries = [float(v) for v in boundaries]

    def call(self, inputs):
        if self.bin_boundaries is None:
            raise ValueError("You need to either pass the `bin_boundaries` argument at "
                             "construction time or call `adapt(dataset)` before you can "
                             "start using the `Discretization` layer.")
        x = ops.expand_dims(ops.cast(inputs, "float32"), -1)
        boundaries = np.asarray(self.bin_boundaries, np.float32)
        indices = ops.sum(ops.cast(ops.greater_equal(x, boundaries), "int64"), axis=-1)
        return encode_categorical(indices, self.output_mode, len(boundaries) + 1,
                                  self.output_dtype)

    @property
    def output_dtype(self):
        """int32 bins in `"int"` mode (as Keras 3), else the compute dtype."""
        return "int32" if self.output_mode == "int" else self.compute_dtype

    def compute_output_shape(self, input_shape):
        depth = len(self.bin_boundaries or []) + 1
        return encoded_shape(input_shape, self.output_mode, depth)

    @classmethod
    def from_config(cls, config):
        """An adapted layer's config holds both `num_bins` and `bin_boundaries`, which
        `__init__` refuses together: the boundaries are set after creation, as in Keras."""
        config = dict(config)
        boundaries = config.pop("bin_boundaries", None)
        if config.get("num_bins") is None:
            return cls(bin_boundaries=boundaries, **config)
        layer = cls(**config)
        layer.bin_boundaries = None if boundaries is None else list(boundaries)
        return layer

    def get_config(self):
        # Keras' keys exactly: its Discretization takes no `trainable` (nor a policy dict)
        return {"bin_boundaries": self.bin_boundaries, "num_bins": self.num_bins,
                "epsilon": self.epsilon, "output_mode": self.output_mode,
                "sparse": self.sparse, "name": self.name, "dtype": str(self.dtype)}
