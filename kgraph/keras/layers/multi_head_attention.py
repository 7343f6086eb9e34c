"""`MultiHeadAttention` (Keras 3 names, arguments, sublayers and weight order).

The query/key/value/output projections are `EinsumDense` sublayers named `query`, `key`,
`value` and `attention_output` (kernel then bias each), built in that order as in Keras, so
weight lists and `.weights.h5` files line up. Masks: an explicit `attention_mask`, the Keras
masks that travel with `query` / `value` / `key` (e.g. from `Embedding(mask_zero=True)`), and
`use_causal_mask` are and-ed together, as Keras' `_compute_attention_mask` does.
"""
from __future__ import annotations

import functools
import inspect
import math
import string

import numpy as np

from kgraph import ops
from kgraph.keras import constraints, initializers, regularizers
from kgraph.keras.layers.activation import Softmax
from kgraph.keras.layers.base import Layer
from kgraph.keras.layers.core import Dropout
from kgraph.keras.layers.einsum_dense import EinsumDense

__all__ = ["MultiHeadAttention"]  # ProjectedAttention: shared with GroupedQueryAttention

_CALL_TENSORS = ("query", "value", "key")


def _letter(i):
    return string.ascii_lowercase[i]


@functools.lru_cache(maxsize=None)
def _takes_return_attention_scores(compute_attention):
    """Whether a `_compute_attention` (possibly a user override) takes a sixth argument,
    `return_attention_scores`. Overrides written against Keras 3.0 (the keras.io "ViT on small
    datasets" LSA layer) take `(query, key, value, attention_mask, training)` only and always
    return `(output, scores)`."""
    try:
        parameters = list(inspect.signature(compute_attention).parameters.values())
    except (TypeError, ValueError):
        return True
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return True
    names = [p.name for p in parameters]
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
    return "return_attention_scores" in names or len(positional) >= 7  # self + 6


def build_attention_equation(rank, attn_axes):
    """The query-key dot product and the score-value combination as einsum equations over
    projected tensors `(batch, <non-attention dims>, <attention dims>, heads, channels)`.

    Returns:
        (dot_product_equation, combine_equation, rank of the scores).
    """
    target = "".join(_letter(i) for i in range(rank))
    batch_dims = tuple(np.delete(range(rank), attn_axes + (rank - 1,)))
    offset, source = rank, ""
    for i in range(rank):
        if i in batch_dims or i == rank - 1:
            source += target[i]
        else:
            source += _letter(offset)
            offset += 1
    product = "".join([target[i] for i in batch_dims] + [target[i] for i in attn_axes]
                      + [source[i] for i in attn_axes])
    return f"{source},{target}->{product}", f"{product},{source}->{target}", len(product)


def build_projection_equation(free_dims, bound_dims, output_dims):
    """An einsum equation (and its bias axes and output rank) for a projection that keeps
    `free_dims` axes, contracts `bound_dims` and makes `output_dims` new ones."""
    free = "".join(_letter(i) for i in range(free_dims))
    bound = "".join(_letter(free_dims + i) for i in range(bound_dims))
    out = "".join(_letter(free_dims + bound_dims + i) for i in range(output_dims))
    return f"{free}{bound},{bound}{out}->{free}{out}", out, len(free) + len(out)


def projection_output_shape(output_rank, known_last_dims):
    return [None] * (output_rank - len(known_last_dims)) + list(known_last_dims)


def and_masks(*masks):
    """Logical and of the masks that are not None (None when all are)."""
    out = None
    for mask in masks:
        if mask is not None:
            mask = ops.cast(mask, "bool")
            out = mask if out is None else ops.logical_and(out, mask)
    return out


MAX_DYNAMIC_CAUSAL_LENGTH = 1 << 14  # longest sequence of unknown length a causal mask covers


def causal_mask(query, value):
    """`(1, T, S)` lower-triangular keep mask. With unknown sequence lengths, positions are
    run-time slices of a constant range (no Range primitive), up to
    `MAX_DYNAMIC_CAUSAL_LENGTH`."""
    t, s = query.shape[1], value.shape[1]
    if t is not None and s is not None:
        return np.tril(np.ones((t, s), dtype=bool))[None]
    rows, cols = _positions(query), _positions(value)
    return ops.expand_dims(ops.greater_equal(ops.expand_dims(rows, 1),
                                             ops.expand_dims(cols, 0)), 0)


def _positions(x):
    from kgraph.ops import movement

    if x.shape[1] is not None:
        return np.arange(x.shape[1], dtype=np.int32)
    return movement.dynamic_slice(np.arange(MAX_DYNAMIC_CAUSAL_LENGTH, dtype=np.int32),
                                  np.asarray(0, np.int64), movement.count(x, (1,)), 0)


class ProjectedAttention(Layer):
    """What `MultiHeadAttention` and `GroupedQueryAttention` share: query/value/key given
    by keyword, build from the three shapes, projection sublayers, masks (explicit, the
    inputs' Keras masks, causal), masked softmax, dropout on the scores. Subclasses set
    `_dot_product_equation`, `_combine_equation`, `_scores_operands` and `_scale`."""

    def _store_projection_args(self, kernel_initializer, bias_initializer, kernel_regularizer,
                               bias_regularizer, activity_regularizer, kernel_constraint,
                               bias_constraint):
        self._kernel_initializer = initializers.get(kernel_initializer)
        self._bias_initializer = initializers.get(bias_initializer)
        self._kernel_regularizer = regularizers.get(kernel_regularizer)
        self._bias_regularizer = regularizers.get(bias_regularizer)
        self._activity_regularizer = regularizers.get(activity_regularizer)
        self._kernel_constraint = constraints.get(kernel_constraint)
        self._bias_constraint = constraints.get(bias_constraint)

    def _projection_config(self):
        return {"kernel_initializer": initializers.serialize(self._kernel_initializer),
                "bias_initializer": initializers.serialize(self._bias_initializer),
                "kernel_regularizer": regularizers.serialize(self._kernel_regularizer),
                "bias_regularizer": regularizers.serialize(self._bias_regularizer),
                "activity_regularizer": regularizers.serialize(self._activity_regularizer),
                "kernel_constraint": constraints.serialize(self._kernel_constraint),
                "bias_constraint": constraints.serialize(self._bias_constraint)}

    def __call__(self, *args, **kwargs):
        args = list(args)  # query/value/key given by keyword become positional (for build)
        for name in _CALL_TENSORS[len(args):]:
            if name not in kwargs:
                break
            args.append(kwargs.pop(name))
        return super().__call__(*args, **kwargs)

    def _maybe_build(self, args):
        if not self.built:
            shapes = [tuple(a.shape) for a in args[:3] if a is not None]
            self._build_input_shape = shapes[0]
            # Keras' build_config of a layer built from several shapes (real Keras calls
            # build(**shapes_dict) when it loads the file)
            self._build_shapes_dict = dict(zip(("query_shape", "value_shape", "key_shape"),
                                               shapes))
            self.build(*shapes)
            self.built = True

    def _sublayer_kwargs(self):
        # fresh initializer objects per sublayer, so each projection draws its own values
        return dict(kernel_initializer=type(self._kernel_initializer).from_config(
                        self._kernel_initializer.get_config()),
                    bias_initializer=type(self._bias_initializer).from_config(
                        self._bias_initializer.get_config()),
                    kernel_regularizer=self._kernel_regularizer,
                    bias_regularizer=self._bias_regularizer,
                    activity_regularizer=self._activity_regularizer,
                    kernel_constraint=self._kernel_constraint,
                    bias_constraint=self._bias_constraint, dtype=self.dtype_policy)

    def _build_softmax_and_dropout(self, axis, rate, seed):
        self._softmax = Softmax(axis=axis, dtype=self.dtype_policy)
        self._dropout_layer = Dropout(rate=rate, dtype=self.dtype_policy, seed=seed)

    def _masked_softmax(self, scores, attention_mask=None):
        if attention_mask is not None:
            axis = -len(self._attention_axes) * 2 - 1  # the heads axis
            for _ in range(len(scores.shape) - len(attention_mask.shape)):
                attention_mask = ops.expand_dims(attention_mask, axis)
        return self._softmax(scores, mask=attention_mask)

    def _compute_attention(self, query, key, value, attention_mask=None, training=None,
                           return_attention_scores=False):
        """Scaled dot-product attention on projected `(B, T, N, H)` tensors: returns the
        `(B, T, N, H)` output and the `(B, N, T, S)` scores (before dropout). Without scores
        to return or dropout to apply, rank-4 tensors take `dot_product_attention` as Keras'
        fused path does (a fully masked row then averages the values instead of giving 0)."""
        dropping = self._dropout_rate > 0 and bool(training)
        if not (dropping or return_attention_scores or len(query.shape) != 4):
            mask = attention_mask
            while mask is not None and len(mask.shape) < 4:
                mask = ops.expand_dims(mask, -3)
            return ops.dot_product_attention(query, key, value, mask=mask,
                                             scale=self._scale), None
        query = query * self._scale
        scores = ops.einsum(self._dot_product_equation,
                            *((key, query) if self._key_first else (query, key)))
        scores = self._masked_softmax(scores, attention_mask)
        dropped = self._dropout_layer(scores, training=training) if self._dropout_rate > 0 \
            else scores
        return ops.einsum(self._combine_equation, dropped, value), scores

    def compute_attention_mask(self, query, value, query_mask=None, value_mask=None,
                               key_mask=None, attention_mask=None, use_causal_mask=False):
        """The boolean `(B, T, S)` mask that the inputs' Keras masks, the causal mask and
        `attention_mask` make together (None when there is none)."""
        expand = lambda m, axis: None if m is None else ops.expand_dims(  # noqa: E731
            ops.cast(m, "bool"), axis)
        causal = causal_mask(query, value) if use_causal_mask else None
        auto = and_masks(expand(query_mask, -1), expand(value_mask, -2), expand(key_mask, -2),
                         causal)
        return and_masks(attention_mask, auto)

    def _input_masks(self, query, value, key, query_mask, value_mask, key_mask):
        """The masks given, else the Keras masks the tensors carry (a key's only when it is
        a tensor of its own)."""
        query_mask = query_mask if query_mask is not None else getattr(query, "_keras_mask",
                                                                       None)
        value_mask = value_mask if value_mask is not None else getattr(value, "_keras_mask",
                                                                       None)
        if key_mask is None and key is not None and key is not value:
            key_mask = getattr(key, "_keras_mask", None)
        return query_mask, value_mask, key_mask

    def _project(self, query, value, key):
        """Projected (query, key, value) heads."""
        return self.query_dense(query), self.key_dense(key), self.value_dense(value)

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
             attention_mask=None, return_attention_scores=False, training=None,
             use_causal_mask=False):
        masks = self._input_masks(query, value, key, query_mask, value_mask, key_mask)
        key = value if key is None else key
        attention_mask = self.compute_attention_mask(query, value, *masks, attention_mask,
                                                     use_causal_mask)
        extra = (return_attention_scores,) if _takes_return_attention_scores(
            type(self)._compute_attention) else ()
        output, scores = self._compute_attention(*self._project(query, value, key),
                                                 attention_mask, training, *extra)
        output = self.output_dense(output)
        return (output, scores) if return_attention_scores else output

    def compute_mask(self, inputs, mask=None):
        return mask  # the query's mask (Keras sets it on the output)


class MultiHeadAttention(ProjectedAttention):
    """Multi-head attention as in "Attention is all you need" (Vaswani et al., 2017).

    Projects `query`, `key` and `value` into `num_heads` heads, takes the scaled dot product
    of query and key heads, softmaxes it (masked), averages the value heads with it, and
    projects the concatenated heads back to `output_shape` (default: the query's last dim).

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value (default `key_dim`).
        dropout: dropout rate on the attention scores (training only).
        use_bias: whether the projections have biases.
        output_shape: the output's shape besides batch and sequence dims (int or tuple).
        attention_axes: axes over which attention applies (default: all but batch, heads
            and features).
        flash_attention: accepted for compatibility; kgraph always computes the scores.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: for the projections.
        seed: seed of the dropout.

    Call arguments:
        query: `(B, T, dim)`; value: `(B, S, dim)`; key: optional `(B, S, dim)` (default
        `value`); attention_mask: optional boolean `(B, T, S)` (True = attend);
        return_attention_scores: also return the `(B, heads, T, S)` scores;
        training: apply dropout; use_causal_mask: mask out future positions.

    Example:
        >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
        >>> mha(np.zeros((1, 3, 8), "float32"), np.zeros((1, 5, 8), "float32")).shape
        (1, 3, 8)
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
                 output_shape=None, attention_axes=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        self._num_heads, self._key_dim = num_heads, key_dim
        self._value_dim = value_dim if value_dim else key_dim
        self._dropout, self._use_bias = dropout, use_bias
        if output_shape:
            if isinstance(output_shape, int):
                output_shape = (output_shape,)
            if not isinstance(output_shape, (list, tuple)):
                raise ValueError(f"Invalid `output_shape`: {output_shape}. When specified, the "
                                 f"`output_shape` should be of type tuple, list, or int.")
            output_shape = tuple(output_shape)
        self._output_shape = output_shape
        self._flash_attention = flash_attention
        self._store_projection_args(kernel_initializer, bias_initializer, kernel_regularizer,
                                    bias_regularizer, activity_regularizer, kernel_constraint,
                                    bias_constraint)
        if isinstance(attention_axes, int):
            attention_axes = (attention_axes,)
        elif attention_axes and not isinstance(attention_axes, (list, tuple)):
            raise ValueError(f"`attention_axes` must be an int, list, or tuple. "
                             f"Received: attention_axes={attention_axes}")
        self._attention_axes = attention_axes
        self.seed = seed
        self._inverse_sqrt_key_dim = 1.0 / math.sqrt(float(self._key_dim))
        self._scale, self._dropout_rate, self._key_first = \
            self._inverse_sqrt_key_dim, dropout, True

    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)
    # Keras keeps these as `_query_dense` ...; public names here match its weight-file paths
    _query_dense = property(lambda self: self.query_dense)
    _key_dense = property(lambda self: self.key_dense)
    _value_dense = property(lambda self: self.value_dense)
    _output_dense = property(lambda self: self.output_dense)

    def get_config(self):
        return {**super().get_config(), "num_heads": self._num_heads,
                "key_dim": self._key_dim, "value_dim": self._value_dim,
                "dropout": self._dropout, "use_bias": self._use_bias,
                "output_shape": self._output_shape, "attention_axes": self._attention_axes,
                **self._projection_config(), "seed": self.seed}

    # -- building ---------------------------------------------------------------------------
    def _projection(self, name, input_shape, last_dims, bound_dims=1):
        equation, bias_axes, output_rank = build_projection_equation(
            len(input_shape) - bound_dims, bound_dims, len(last_dims))
        dense = EinsumDense(equation, output_shape=projection_output_shape(
                                output_rank - 1, last_dims),
                            bias_axes=bias_axes if self._use_bias else None, name=name,
                            **self._sublayer_kwargs())
        dense.build(tuple(input_shape))
        return dense

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        if tuple(value_shape[1:-1]) != tuple(key_shape[1:-1]):
            raise ValueError(f"All dimensions of `value` and `key`, except the last one, must "
                             f"be equal. Received: value_shape={value_shape} and "
                             f"key_shape={key_shape}")
        heads = self._num_heads
        self.query_dense = self._projection("query", query_shape, [heads, self._key_dim])
        self.key_dense = self._projection("key", key_shape, [heads, self._key_dim])
        self.value_dense = self._projection("value", value_shape, [heads, self._value_dim])
        self._build_attention(len(query_shape) + 1)
        projected = list(self.query_dense.compute_output_shape(tuple(query_shape)))
        projected[-1] = self._value_dim
        output_shape = self._output_shape or [query_shape[-1]]
        self.output_dense = self._projection("attention_output", projected, output_shape,
                                             bound_dims=2)
        self.built = True

    def _build_attention(self, rank):
        if self._attention_axes is None:
            self._attention_axes = tuple(range(1, rank - 2))
        else:
            self._attention_axes = tuple(a if a >= 0 else (rank - 1) + a
                                         for a in self._attention_axes)
        self._dot_product_equation, self._combine_equation, scores_rank = \
            build_attention_equation(rank, self._attention_axes)
        norm_axes = tuple(range(scores_rank - len(self._attention_axes), scores_rank))
        self._build_softmax_and_dropout(norm_axes, self._dropout, self.seed)
