"""`GroupQueryAttention` (Keras 3's `GroupedQueryAttention` class): queries in
`num_query_heads` heads, keys and values in `num_key_value_heads` heads repeated to match.
Same sublayers (`query`, `key`, `value`, `attention_output`), masks and dropout as
`MultiHeadAttention`."""
from __future__ import annotations

import math

from kgraph import ops
from kgraph.keras.layers.einsum_dense import EinsumDense
from kgraph.keras.layers.multi_head_attention import ProjectedAttention

__all__ = ["GroupQueryAttention", "GroupedQueryAttention"]


class GroupedQueryAttention(ProjectedAttention):
    """Grouped-query attention (Ainslie et al., 2023): `num_key_value_heads=1` is multi-query
    attention, `num_key_value_heads=num_query_heads` is multi-head attention.

    Args:
        head_dim: size of each attention head.
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads (divides `num_query_heads`).
        dropout: dropout rate on the attention scores (training only).
        use_bias: whether the projections have biases.
        flash_attention: accepted for compatibility.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: for the projections.
        seed: seed of the dropout.

    Call arguments: as `MultiHeadAttention` (query, value, key, attention_mask,
    return_attention_scores, training, use_causal_mask).

    Example:
        >>> gqa = GroupQueryAttention(head_dim=4, num_query_heads=4, num_key_value_heads=2)
        >>> gqa(np.zeros((1, 3, 8), "float32"), np.zeros((1, 5, 8), "float32")).shape
        (1, 3, 8)
    """

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0,
                 use_bias=True, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True
        if num_query_heads % num_key_value_heads != 0:
            raise ValueError(f"`num_query_heads` must be divisible by `num_key_value_heads`. "
                             f"Received: num_query_heads={num_query_heads}, "
                             f"num_key_value_heads={num_key_value_heads}")
        self.head_dim, self.num_query_heads = head_dim, num_query_heads
        self.num_key_value_heads = num_key_value_heads
        self.num_repeats = num_query_heads // num_key_value_heads
        self.dropout, self.use_bias, self.seed = dropout, use_bias, seed
        self._flash_attention = flash_attention
        self._store_projection_args(kernel_initializer, bias_initializer, kernel_regularizer,
                                    bias_regularizer, activity_regularizer, kernel_constraint,
                                    bias_constraint)
        self._scale = 1.0 / math.sqrt(float(head_dim))
        self._dropout_rate, self._key_first, self._attention_axes = dropout, False, (1,)
        self._dot_product_equation = "bquh,bkuh->buqk"
        self._combine_equation = "buqk,bkuh->bquh"

    kernel_initializer = property(lambda self: self._kernel_initializer)
    bias_initializer = property(lambda self: self._bias_initializer)

    def _dense(self, equation, last_dims, bias_axes, name, input_shape):
        dense = EinsumDense(equation, output_shape=(None,) + tuple(last_dims),
                            bias_axes=bias_axes if self.use_bias else None, name=name,
                            **self._sublayer_kwargs())
        dense.build(tuple(input_shape))
        return dense

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        self.feature_dim = query_shape[-1]
        kv = (self.num_key_value_heads, self.head_dim)
        self.query_dense = self._dense("bqm,muh->bquh", (self.num_query_heads, self.head_dim),
                                       "uh", "query", query_shape)
        self.key_dense = self._dense("bkm,mvh->bkvh", kv, "vh", "key", key_shape)
        self.value_dense = self._dense("bkm,mvh->bkvh", kv, "vh", "value", value_shape)
        self._build_softmax_and_dropout(-1, self.dropout, self.seed)
        self.output_dense = self._dense("bquh,uhm->bqm", (self.feature_dim,), "m",
                                        "attention_output",
                                        (None, None, self.num_query_heads, self.head_dim))
        self.built = True

    def _project(self, query, value, key):
        query, key, value = super()._project(query, value, key)
        return (query, ops.repeat(key, self.num_repeats, axis=2),
                ops.repeat(value, self.num_repeats, axis=2))

    def get_config(self):
        return {**super().get_config(), "head_dim": self.head_dim,
                "num_query_heads": self.num_query_heads,
                "num_key_value_heads": self.num_key_value_heads, "use_bias": self.use_bias,
                "dropout": self.dropout, **self._projection_config(), "seed": self.seed}


GroupQueryAttention = GroupedQueryAttention
