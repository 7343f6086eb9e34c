"""Embedding, Masking and TimeDistributed (Keras 3 names, arguments, defaults and configs).

`Embedding` is a row lookup (`ops.take` along axis 0), so its gradient is a scatter-add of the
output gradient into the rows that were looked up (kgraph/ops/gather.py). `Masking` and
`Embedding(mask_zero=True)` make the masks that travel with tensors to the layers whose `call`
takes `mask`. `TimeDistributed` applies one layer to every time step by folding time into the
batch: (batch, time, ...) -> (batch * time, ...) -> layer -> (batch, time, ...).
"""
from __future__ import annotations

import warnings

import numpy as np

from kgraph import ops
from kgraph.keras import constraints, initializers, regularizers
from kgraph.keras.layers.base import Layer

__all__ = ["Embedding", "Masking", "TimeDistributed"]


def _positive_int(arg, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={value!r} "
                         f"(of type {type(value).__name__}).")
    return int(value)


class Embedding(Layer):
    """Turns non-negative integers (indexes) into dense vectors of fixed size.

    e.g. `[[4], [20]] -> [[0.25, 0.1], [0.6, -0.2]]`

    Args:
        input_dim: Integer. Size of the vocabulary, i.e. maximum integer index + 1.
        output_dim: Integer. Dimension of the dense embedding.
        embeddings_initializer: Initializer for the `embeddings` matrix (default `"uniform"`:
            uniform in [-0.05, 0.05]).
        embeddings_regularizer: Regularizer applied to the `embeddings` matrix.
        embeddings_constraint: Constraint applied to the `embeddings` matrix.
        mask_zero: Boolean. When `True`, index 0 is padding: the output mask is
            `inputs != 0` and layers downstream that take `mask` receive it.
        weights: Optional `(input_dim, output_dim)` matrix (or a one-element list of it): the
            initial embeddings.
        input_length: Ignored (Keras 2 argument, accepted for compatibility).

    Input shape:
        Integer tensor of any rank, e.g. `(batch_size, input_length)`. Float inputs are cast
        to int32 (truncated), as in Keras.

    Output shape:
        `input_shape + (output_dim,)`.

    Example:

    >>> layer = Embedding(1000, 64)
    >>> layer(np.random.randint(1000, size=(32, 10))).shape
    (32, 10, 64)
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, lora_alpha=None, quantization_config=None,
                 **kwargs):
        input_dim = _positive_int("input_dim", input_dim)
        output_dim = _positive_int("output_dim", output_dim)
        if kwargs.pop("input_length", None) is not None:
            warnings.warn("Argument `input_length` is deprecated. Just remove it.", stacklevel=2)
        if lora_rank or quantization_config is not None:
            raise NotImplementedError(
                f"Embedding: LoRA and quantization are not supported by kgraph. Received: "
                f"lora_rank={lora_rank!r}, quantization_config={quantization_config!r}")
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = input_dim, output_dim
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = bool(mask_zero)
        self.supports_masking = self.mask_zero
        if weights is not None:
            self.build()
            if not (isinstance(weights, list) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    def build(self, input_shape=None):
        if self.built:
            return
        self._build_input_shape = input_shape
        self.embeddings = self.add_weight(
            shape=(self.input_dim, self.output_dim), initializer=self.embeddings_initializer,
            name="embeddings", regularizer=self.embeddings_regularizer,
            constraint=self.embeddings_constraint, trainable=True)
        self.built = True

    def call(self, inputs):
        if inputs.dtype not in ("int32", "int64"):
            inputs = ops.cast(inputs, "int32")
        return ops.take(self.embeddings, inputs, axis=0)

    def _eager_call(self, args, kwargs):
        from kgraph.keras.input_checks import check_range

        # Inside the graph an index of -1 reads the last row; check arrays called on directly
        check_range(args[0], 0, self.input_dim, f"The indices fed to Embedding layer "
                                                f"{self.name!r}")
        return super()._eager_call(args, kwargs)

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return ops.not_equal(inputs, 0)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim,
                "output_dim": self.output_dim,
                "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                "embeddings_regularizer": regularizers.serialize(self.embeddings_regularizer),
                "activity_regularizer": regularizers.serialize(self.activity_regularizer),
                "embeddings_constraint": constraints.serialize(self.embeddings_constraint),
                "mask_zero": self.mask_zero, "quantization_config": None}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["embeddings_initializer"] = initializers.get(
            config.get("embeddings_initializer", "uniform"))
        for key in ("embeddings_regularizer", "activity_regularizer"):
            config[key] = regularizers.get(config.get(key))
        config["embeddings_constraint"] = constraints.get(config.get("embeddings_constraint"))
        return cls(**config)


def _any_not_equal(inputs, value, keepdims):
    """`ops.any(inputs != value, axis=-1)`: a max over the last axis of the 0/1 indicator."""
    hit = ops.cast(ops.not_equal(inputs, value), "float32")
    return ops.greater(ops.max(hit, axis=-1, keepdims=keepdims), 0.0)


class Masking(Layer):
    """Masks a sequence by using a mask value to skip timesteps.

    A timestep whose features all equal `mask_value` is masked (mask `False`) in all
    downstream layers that take a mask, and its output features are set to zero:
    `output = where(any(inputs != mask_value, axis=-1, keepdims=True), inputs, 0)`.

    Args:
        mask_value: The value that marks a padded feature (default 0.0).

    Example:

    >>> x = np.ones((1, 3, 2), "float32"); x[0, 1] = 0.0
    >>> Masking()(x)[0, :, 0]
    array([1., 0., 1.], dtype=float32)
    """

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = mask_value
        self.supports_masking = True

    def call(self, inputs):
        return ops.where(_any_not_equal(inputs, self.mask_value, True), inputs, 0)

    def compute_mask(self, inputs, mask=None):
        return _any_not_equal(inputs, self.mask_value, False)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


def _reshape(x, static, runtime_pieces):
    """Reshape `x` to `static` (None = unknown): a static reshape when at most one dim is
    unknown, else to a runtime shape concatenated from `runtime_pieces()` (int64 tensors)."""
    if static.count(None) <= 1:
        return ops.reshape_to(x, static)
    target = ops.concatenate(runtime_pieces(), axis=0)
    return ops.apply("Reshape", x, target, shape=static)


def _minus_one():
    # graph.constant, not a bare array: inside a GradientTape a bare array becomes a fed capture
    from kgraph.ir.graph import current_graph

    return current_graph().constant(np.asarray([-1], np.int64))


def _dims(x, start, end):
    """Dims `start:end` of the runtime shape of `x`, as an int64 tensor."""
    return ops.slice_axis(ops.apply("Shape", x), start, end, 0)


class TimeDistributed(Layer):
    """Applies a layer to every temporal slice of an input.

    Every input must be at least 3-D, `(batch, time, ...)`; dimension 1 is time. The same
    layer (and the same weights) runs on every time step: time is folded into the batch,
    `(batch * time, ...)`, the layer is applied once, and the result is unfolded back to
    `(batch, time, ...)`. The batch size may be unknown until run time.

    Args:
        layer: a `keras.layers.Layer` instance.

    Call arguments:
        inputs: tensor of shape `(batch, time, ...)`.
        training: passed to the wrapped layer.
        mask: boolean tensor of shape `(batch, time, ...)`, folded like the inputs and passed
            to the wrapped layer when its `call` takes `mask`. The mask passes through to
            the output.

    Example:

    >>> layer = TimeDistributed(Dense(8))
    >>> layer(np.zeros((32, 10, 16), "float32")).shape
    (32, 10, 8)
    """

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Please initialize `TimeDistributed` layer with a "
                             f"`keras.layers.Layer` instance. Received: {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer
        self.supports_masking = True

    @staticmethod
    def _child_input_shape(input_shape):
        if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 3:
            raise ValueError(f"`TimeDistributed` Layer should be passed an `input_shape` with "
                             f"at least 3 dimensions, received: {input_shape}")
        return (input_shape[0], *input_shape[2:])

    def build(self, input_shape):
        child = self._child_input_shape(tuple(input_shape))
        if not self.layer.built:
            self.layer._build_input_shape = child
            self.layer.build(child)
            self.layer.built = True
        self.built = True

    def call(self, inputs, training=None, mask=None):
        shape = tuple(inputs.shape)
        self._child_input_shape(shape)
        batch, time, rest = shape[0], shape[1], shape[2:]
        folded = None if batch is None or time is None else batch * time
        x = _reshape(inputs, (folded,) + rest,
                     lambda: [_minus_one(), _dims(inputs, 2, len(shape))])
        kwargs = {"training": training}
        if mask is not None and self.layer._accepts("mask"):
            mshape = tuple(mask.shape)
            if len(mshape) < 2 or any(m is not None and s is not None and m != s
                                      for m, s in zip(mshape[:2], shape[:2])):
                raise ValueError(f"The `mask` passed to the `TimeDistributed` layer has a shape "
                                 f"{mshape} that is incompatible with the input shape {shape}.")
            kwargs["mask"] = _reshape(mask, (folded,) + mshape[2:], lambda: [
                _minus_one(), _dims(mask, 2, len(mshape))])
        y = self.layer(x, **kwargs)
        out_rest = tuple(y.shape[1:])
        return _reshape(y, (batch, time) + out_rest,
                        lambda: [_dims(inputs, 0, 2), _dims(y, 1, len(y.shape))])

    def compute_output_shape(self, input_shape):
        child = self.layer.compute_output_shape(self._child_input_shape(tuple(input_shape)))
        return (child[0], input_shape[1], *child[1:])

    def get_config(self):
        from kgraph.keras.saving.serialization_lib import serialize_keras_object

        return {**super().get_config(), "layer": serialize_keras_object(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from kgraph.keras.saving.serialization_lib import deserialize_keras_object

        config = dict(config)
        layer = deserialize_keras_object(config.pop("layer"), custom_objects=custom_objects)
        return cls(layer, **config)
