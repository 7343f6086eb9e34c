"""`Attention` (Luong-style dot-product) and `AdditiveAttention` (Bahdanau-style), Keras 3
names, arguments, weights (`scale`, `concat_score_weight`) and mask rules: the value mask
(and `use_causal_mask`) keeps positions out of the softmax, the query mask zeroes outputs."""
from __future__ import annotations

from kgraph import ops
from kgraph import random as krandom
from kgraph.keras.layers.base import Layer

__all__ = ["AdditiveAttention", "Attention"]


class Attention(Layer):
    """Dot-product attention layer, a.k.a. Luong-style attention.

    Called on `[query, value]` or `[query, value, key]` (`(batch, Tq, dim)`,
    `(batch, Tv, dim)`, `(batch, Tv, dim)`): scores `query . key` (or, with
    `score_mode="concat"`, `sum(tanh(query + key))`), softmax over `Tv`, then the weighted
    sum of `value`.

    Args:
        use_scale: create a scalar weight `scale` that multiplies the scores.
        score_mode: `"dot"` or `"concat"`.
        dropout: fraction of the attention weights dropped in training.
        seed: seed of the dropout.

    Call arguments:
        inputs: `[query, value]` or `[query, value, key]`.
        mask: optional `[query_mask, value_mask]` (taken from the inputs' Keras masks when
            not given).
        return_attention_scores: also return the `(batch, Tq, Tv)` weights.
        training: apply dropout.
        use_causal_mask: position i attends only to positions j <= i.

    Example:
        >>> Attention()([np.ones((1, 2, 3), "float32"), np.ones((1, 4, 3), "float32")]).shape
        (1, 2, 3)
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.use_scale, self.score_mode, self.dropout, self.seed = \
            use_scale, score_mode, dropout, seed
        if self.dropout > 0:
            self.seed_generator = krandom.SeedGenerator(seed=seed)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode}")
        self.supports_masking = True

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        self.scale = self.add_weight(name="scale", shape=(), initializer="ones") \
            if self.use_scale else None
        self.concat_score_weight = self.add_weight(
            name="concat_score_weight", shape=(), initializer="ones") \
            if self.score_mode == "concat" else None
        self.built = True

    def _calculate_scores(self, query, key):
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)))
            return scores * self.scale if self.scale is not None else scores
        summed = ops.expand_dims(query, -2) + ops.expand_dims(key, -3)
        if self.scale is not None:
            summed = self.scale * summed
        return self.concat_score_weight * ops.sum(ops.tanh(summed), axis=-1)

    def _apply_scores(self, scores, value, scores_mask=None, training=False):
        if scores_mask is not None:
            padding = ops.cast(ops.logical_not(scores_mask), scores.dtype)
            scores = scores - (65504.0 if scores.dtype == "float16" else 1.0e9) * padding
        weights = ops.softmax(scores, axis=-1)
        if training and self.dropout > 0:
            weights = ops.dropout(weights, self.dropout, krandom.graph_key(),
                                  self.seed_generator.seed)
        return ops.matmul(weights, value), weights

    def _calculate_score_mask(self, scores, value_mask, use_causal_mask):
        from kgraph.keras.layers.multi_head_attention import causal_mask

        value_mask = None if value_mask is None else ops.expand_dims(
            ops.cast(value_mask, "bool"), -2)  # (batch, 1, Tv)
        if not use_causal_mask:
            return value_mask
        causal = causal_mask(scores, ops.transpose(scores, (0, 2, 1)))
        return causal if value_mask is None else ops.logical_and(value_mask, causal)

    def call(self, inputs, mask=None, training=False, return_attention_scores=False,
             use_causal_mask=False):
        self._validate_inputs(inputs, mask)
        query, value = inputs[0], inputs[1]
        key = inputs[2] if len(inputs) > 2 else value
        query_mask, value_mask = (mask[0], mask[1]) if mask else (None, None)
        scores = self._calculate_scores(query, key)
        scores_mask = self._calculate_score_mask(scores, value_mask, use_causal_mask)
        result, weights = self._apply_scores(scores, value, scores_mask, training)
        if query_mask is not None:
            result = result * ops.cast(ops.expand_dims(query_mask, -1), result.dtype)
        return (result, weights) if return_attention_scores else result

    def compute_mask(self, inputs, mask=None):
        if not mask or mask[0] is None:
            return None
        return mask[0]

    def compute_output_shape(self, input_shape):
        return (*input_shape[0][:-1], input_shape[1][-1])

    def _validate_inputs(self, inputs, mask=None):
        name = type(self).__name__
        if not isinstance(inputs, list):
            raise ValueError(f"{name} layer must be called on a list of inputs, namely "
                             f"[query, value] or [query, value, key]. Received: inputs={inputs}.")
        if not 2 <= len(inputs) <= 3:
            raise ValueError(f"{name} layer accepts inputs list of length 2 or 3, namely "
                             f"[query, value] or [query, value, key]. "
                             f"Received length: {len(inputs)}.")
        if mask is not None and (not isinstance(mask, list) or not 2 <= len(mask) <= 3):
            raise ValueError(f"{name} layer mask must be a list of length 2 or 3, namely "
                             f"[query_mask, value_mask]. Received: mask={mask}.")

    def get_config(self):
        return {**super().get_config(), "use_scale": self.use_scale,
                "score_mode": self.score_mode, "dropout": self.dropout}


class AdditiveAttention(Attention):
    """Additive attention layer, a.k.a. Bahdanau-style attention: scores are
    `sum(scale * tanh(query + key), axis=-1)`, with `scale` a trainable vector of the
    feature size (when `use_scale`).

    Args:
        use_scale: create the `scale` weight (shape `(dim,)`, glorot-uniform).
        dropout: fraction of the attention weights dropped in training.

    Call arguments: as `Attention`.

    Example:
        >>> AdditiveAttention()([np.ones((1, 2, 3), "float32"),
        ...                      np.ones((1, 4, 3), "float32")]).shape
        (1, 2, 3)
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        self._validate_inputs(input_shape)
        self.scale = self.add_weight(name="scale", shape=(input_shape[0][-1],),
                                     initializer="glorot_uniform") if self.use_scale else None
        self.built = True

    def _calculate_scores(self, query, key):
        summed = ops.tanh(ops.expand_dims(query, -2) + ops.expand_dims(key, -3))
        return ops.sum(summed * self.scale if self.use_scale else summed, axis=-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config
