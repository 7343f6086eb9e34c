"""`ReversibleEmbedding`: an `Embedding` that can also project hidden states back to the
vocabulary (`reverse=True`), by the transposed embeddings (tied, the default) or by its own
`reverse_embeddings` `(output_dim, input_dim)` weight; Keras 3 names, arguments and configs
(no quantization: kgraph's `Embedding` has none)."""
from __future__ import annotations

from kgraph import ops
from kgraph.keras.layers.base import Layer, _set_mask
from kgraph.keras.layers.embedding import Embedding

__all__ = ["ReversibleEmbedding"]


class ReversibleEmbedding(Embedding):
    """An embedding layer which can project backwards to the input dim.

    Args:
        input_dim, output_dim, embeddings_initializer, embeddings_regularizer,
            embeddings_constraint, mask_zero: as `Embedding`.
        tie_weights: bool (default True): the reverse projection uses the transposed
            `embeddings`; False gives it its own trainable `reverse_embeddings`.
        reverse_dtype: dtype of the reverse projection (default the compute dtype).
        logit_soft_cap: if set, reverse logits become `tanh(logits / cap) * cap`.

    Call arguments:
        inputs: token ids, or hidden states `(..., output_dim)` with `reverse=True`.
        reverse: bool, project hidden states to `(..., input_dim)` logits.

    Example:
        >>> embedding = ReversibleEmbedding(100, 32)
        >>> hidden = embedding(np.random.randint(100, size=(2, 5)))   # (2, 5, 32)
        >>> embedding(hidden, reverse=True).shape                     # (2, 5, 100)
    """

    def __init__(self, input_dim, output_dim, tie_weights=True, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 reverse_dtype=None, logit_soft_cap=None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer,
                         embeddings_constraint=embeddings_constraint, mask_zero=mask_zero,
                         **kwargs)
        self.tie_weights = tie_weights
        self.reverse_dtype = reverse_dtype
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape=None):
        if self.built:
            return
        super().build(input_shape)
        if not self.tie_weights:
            self.built = False
            self.reverse_embeddings = self.add_weight(
                shape=(self.output_dim, self.input_dim), name="reverse_embeddings",
                initializer=self.embeddings_initializer, trainable=True)
            self.built = True

    def call(self, inputs, reverse=False):
        if not reverse:
            result = super().call(inputs)
            _set_mask(result, Embedding.compute_mask(self, inputs))
            return result
        kernel = ops.transpose(self.embeddings) if self.tie_weights else \
            self.reverse_embeddings.value
        if self.reverse_dtype is not None:
            inputs, kernel = ops.cast(inputs, self.reverse_dtype), \
                ops.cast(kernel, self.reverse_dtype)
        logits = ops.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            logits = ops.tanh(logits / self.logit_soft_cap) * self.logit_soft_cap
        return logits

    def _eager_call(self, args, kwargs):
        if kwargs.get("reverse"):  # hidden states, not ids: no index range to check
            return Layer._eager_call(self, args, kwargs)
        return super()._eager_call(args, kwargs)

    def compute_mask(self, inputs, mask=None):
        return None  # set in `call`, only on the forward lookup (as Keras)

    def compute_output_shape(self, input_shape, reverse=False):
        shape = list(input_shape)
        if reverse:
            shape[-1] = self.input_dim
        else:
            shape += [self.output_dim]
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights,
                "reverse_dtype": self.reverse_dtype, "logit_soft_cap": self.logit_soft_cap}
