"""keras.io example "English-to-Spanish translation with a sequence-to-sequence Transformer"
(examples/nlp/neural_machine_translation_with_transformer.py).

The Keras 3 code as written: `TransformerEncoder`, `PositionalEmbedding` (positions from
`ops.arange(0, ops.shape(inputs)[-1], 1)`) and `TransformerDecoder`, whose causal mask is built
from `ops.shape(inputs)` of `Input(shape=(None,))` tokens, both the batch and the length unknown
while tracing (`ops.arange`, `ops.reshape(mask, (1, input_shape[1], input_shape[1]))`,
`ops.tile` by a concatenation of the batch and `[1, 1]`); the encoder and decoder models
joined into the transformer, `fit` on a `tf.data` pipeline of dict inputs, and the greedy
`decode_sequence` loop. Imports swapped for kgraph. The spa-eng download and the two
`TextVectorization` layers (the Spanish one standardizes with `tf.strings`) are replaced by
what they yield: zero-padded token-id rows of `sequence_length` (English) and
`sequence_length + 1` (Spanish) and a Spanish vocabulary, with a small word-lookup stand-in for
`spa_vectorization` in the decoding loop. Sizes cut for a 2-core machine: vocab 15000 -> 120,
embed_dim 256 -> 16, latent_dim 2048 -> 32, num_heads 8 -> 2, batch 64 -> 16 (40 training
pairs: a last batch of 8), 2 sentences decoded instead of 30.
"""

import numpy as np


def _token_rows(rng, n, length, vocab_size, start=None, end=None):
    """Zero-padded rows of token ids, as `TextVectorization(output_sequence_length=length)`
    gives; Spanish rows open with `start` and close with `end`."""
    rows = np.zeros((n, length), np.int64)
    for row, words in zip(rows, rng.integers(2, length - 1, n)):
        body = rng.integers(4, vocab_size, words)
        if start is not None:
            body = np.concatenate([[start], body, [end]])
        row[:len(body)] = body
    return rows


def test_neural_machine_translation_with_transformer():
    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers, ops

    keras.utils.set_random_seed(0)  # the batch shuffle and the initial weights: one outcome
    vocab_size = 120
    sequence_length = 20
    batch_size = 16

    rng = np.random.default_rng(0)
    spa_vocab = ["", "[UNK]", "[start]", "[end]"] + [f"palabra{i}" for i in range(4, vocab_size)]
    pairs = [(_token_rows(rng, n, sequence_length, vocab_size),
              _token_rows(rng, n, sequence_length + 1, vocab_size, start=2, end=3))
             for n in (40, 12)]

    def spa_vectorization(texts):
        """Stand-in for the adapted Spanish `TextVectorization` on the decoding loop's strings."""
        index = {word: i for i, word in enumerate(spa_vocab)}
        out = np.zeros((len(texts), sequence_length + 1), np.int64)
        for row, text in zip(out, texts):
            ids = [index.get(word, 1) for word in text.split()][:sequence_length + 1]
            row[:len(ids)] = ids
        return out

    def format_dataset(eng, spa):
        return (
            {
                "encoder_inputs": eng,
                "decoder_inputs": spa[:, :-1],
            },
            spa[:, 1:],
        )

    def make_dataset(pairs):
        eng_texts, spa_texts = pairs
        dataset = tf_data.Dataset.from_tensor_slices((eng_texts, spa_texts))
        dataset = dataset.batch(batch_size)
        dataset = dataset.map(format_dataset)
        return dataset.cache().shuffle(2048).prefetch(16)

    train_ds = make_dataset(pairs[0])
    val_ds = make_dataset(pairs[1])

    for inputs, targets in train_ds.take(1):
        print(f'inputs["encoder_inputs"].shape: {inputs["encoder_inputs"].shape}')
        print(f'inputs["decoder_inputs"].shape: {inputs["decoder_inputs"].shape}')
        print(f"targets.shape: {targets.shape}")
    # (shuffled batches: the first may be the partial last one)
    assert inputs["decoder_inputs"].shape == targets.shape
    assert targets.shape[1:] == (sequence_length,) and targets.shape[0] <= batch_size

    class TransformerEncoder(layers.Layer):
        def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim = embed_dim
            self.dense_dim = dense_dim
            self.num_heads = num_heads
            self.attention = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim
            )
            self.dense_proj = keras.Sequential(
                [
                    layers.Dense(dense_dim, activation="relu"),
                    layers.Dense(embed_dim),
                ]
            )
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, mask=None):
            if mask is not None:
                padding_mask = ops.cast(mask[:, None, :], dtype="int32")
            else:
                padding_mask = None

            attention_output = self.attention(
                query=inputs, value=inputs, key=inputs, attention_mask=padding_mask
            )
            proj_input = self.layernorm_1(inputs + attention_output)
            proj_output = self.dense_proj(proj_input)
            return self.layernorm_2(proj_input + proj_output)

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "embed_dim": self.embed_dim,
                    "dense_dim": self.dense_dim,
                    "num_heads": self.num_heads,
                }
            )
            return config

    class PositionalEmbedding(layers.Layer):
        def __init__(self, sequence_length, vocab_size, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.token_embeddings = layers.Embedding(
                input_dim=vocab_size, output_dim=embed_dim
            )
            self.position_embeddings = layers.Embedding(
                input_dim=sequence_length, output_dim=embed_dim
            )
            self.sequence_length = sequence_length
            self.vocab_size = vocab_size
            self.embed_dim = embed_dim

        def call(self, inputs):
            length = ops.shape(inputs)[-1]
            positions = ops.arange(0, length, 1)
            embedded_tokens = self.token_embeddings(inputs)
            embedded_positions = self.position_embeddings(positions)
            return embedded_tokens + embedded_positions

        def compute_mask(self, inputs, mask=None):
            if mask is None:
                return None
            else:
                return ops.not_equal(inputs, 0)

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "sequence_length": self.sequence_length,
                    "vocab_size": self.vocab_size,
                    "embed_dim": self.embed_dim,
                }
            )
            return config

    class TransformerDecoder(layers.Layer):
        def __init__(self, embed_dim, latent_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim = embed_dim
            self.latent_dim = latent_dim
            self.num_heads = num_heads
            self.attention_1 = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim
            )
            self.attention_2 = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim
            )
            self.dense_proj = keras.Sequential(
                [
                    layers.Dense(latent_dim, activation="relu"),
                    layers.Dense(embed_dim),
                ]
            )
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()
            self.layernorm_3 = layers.LayerNormalization()
            self.supports_masking = True

        def call(self, inputs, encoder_outputs, mask=None):
            causal_mask = self.get_causal_attention_mask(inputs)
            if mask is not None:
                padding_mask = ops.cast(mask[:, None, :], dtype="int32")
                padding_mask = ops.minimum(padding_mask, causal_mask)
            else:
                padding_mask = None

            attention_output_1 = self.attention_1(
                query=inputs, value=inputs, key=inputs, attention_mask=causal_mask
            )
            out_1 = self.layernorm_1(inputs + attention_output_1)

            attention_output_2 = self.attention_2(
                query=out_1,
                value=encoder_outputs,
                key=encoder_outputs,
                attention_mask=padding_mask,
            )
            out_2 = self.layernorm_2(out_1 + attention_output_2)

            proj_output = self.dense_proj(out_2)
            return self.layernorm_3(out_2 + proj_output)

        def get_causal_attention_mask(self, inputs):
            input_shape = ops.shape(inputs)
            batch_size, sequence_length = input_shape[0], input_shape[1]
            i = ops.arange(sequence_length)[:, None]
            j = ops.arange(sequence_length)
            mask = ops.cast(i >= j, dtype="int32")
            mask = ops.reshape(mask, (1, input_shape[1], input_shape[1]))
            mult = ops.concatenate(
                [ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])],
                axis=0,
            )
            return ops.tile(mask, mult)

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "embed_dim": self.embed_dim,
                    "latent_dim": self.latent_dim,
                    "num_heads": self.num_heads,
                }
            )
            return config

    embed_dim = 16
    latent_dim = 32
    num_heads = 2

    encoder_inputs = keras.Input(shape=(None,), dtype="int64", name="encoder_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(encoder_inputs)
    encoder_outputs = TransformerEncoder(embed_dim, latent_dim, num_heads)(x)
    encoder = keras.Model(encoder_inputs, encoder_outputs)

    decoder_inputs = keras.Input(shape=(None,), dtype="int64", name="decoder_inputs")
    encoded_seq_inputs = keras.Input(shape=(None, embed_dim), name="decoder_state_inputs")
    x = PositionalEmbedding(sequence_length, vocab_size, embed_dim)(decoder_inputs)
    x = TransformerDecoder(embed_dim, latent_dim, num_heads)(x, encoded_seq_inputs)
    x = layers.Dropout(0.5)(x)
    decoder_outputs = layers.Dense(vocab_size, activation="softmax")(x)
    decoder = keras.Model([decoder_inputs, encoded_seq_inputs], decoder_outputs)

    decoder_outputs = decoder([decoder_inputs, encoder_outputs])
    transformer = keras.Model(
        [encoder_inputs, decoder_inputs], decoder_outputs, name="transformer"
    )

    epochs = 1  # This should be at least 30 for convergence

    transformer.summary()
    transformer.compile(
        "rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history = transformer.fit(train_ds, epochs=epochs, validation_data=val_ds)

    spa_index_lookup = dict(zip(range(len(spa_vocab)), spa_vocab))
    max_decoded_sentence_length = 20

    def decode_sequence(tokenized_input_sentence):
        decoded_sentence = "[start]"
        for i in range(max_decoded_sentence_length):
            tokenized_target_sentence = spa_vectorization([decoded_sentence])[:, :-1]
            predictions = transformer([tokenized_input_sentence, tokenized_target_sentence])

            # ops.argmax(predictions[0, i, :]) is not a concrete value for jax here
            sampled_token_index = ops.convert_to_numpy(
                ops.argmax(predictions[0, i, :])
            ).item(0)
            sampled_token = spa_index_lookup[sampled_token_index]
            decoded_sentence += " " + sampled_token

            if sampled_token == "[end]":
                break
        return decoded_sentence

    test_eng_texts = pairs[1][0]
    for input_sentence in test_eng_texts[:2]:
        translated = decode_sequence(input_sentence[None, :])
        words = translated.split(" ")  # an untrained model may sample the padding token ""
        assert words[0] == "[start]" and 2 <= len(words) <= max_decoded_sentence_length + 1
        assert set(words) <= set(spa_vocab)

    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(history.history["loss"][0])
    # both sequence lengths are run-time sizes: the decoder's outputs for a prefix of the
    # target equal the full sequence's outputs there (the causal mask), at a batch and a
    # length other than the training ones
    eng, spa = pairs[1][0][:3], pairs[1][1][:3, :-1]
    full = transformer.predict([eng, spa], verbose=0)
    prefix = transformer.predict([eng[:, :11], spa[:, :7]], verbose=0)
    assert full.shape == (3, sequence_length, vocab_size) and prefix.shape == (3, 7, vocab_size)
    np.testing.assert_allclose(prefix, transformer.predict([eng[:, :11], spa], verbose=0)[:, :7],
                               rtol=1e-5, atol=1e-6)
    assert encoder.predict(eng[:, :5], verbose=0).shape == (3, 5, embed_dim)
