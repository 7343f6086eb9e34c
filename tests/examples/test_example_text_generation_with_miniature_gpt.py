"""keras.io example "Text generation with a miniature GPT"
(examples/generative/text_generation_with_miniature_gpt.py).

The Keras 3 code as written: `causal_attention_mask(batch_size, n_dest, n_src, dtype)` built
from `ops.shape(inputs)` of the traced batch (`ops.arange`, `ops.reshape`, and `ops.tile` by
`ops.concatenate([ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])], 0)`), the
`TransformerBlock` around `MultiHeadAttention(attention_mask=...)`, the
`TokenAndPositionEmbedding` over `ops.arange(0, maxlen, 1)`, the two-output model compiled with
`loss=[loss_fn, None]` and the `TextGenerator` callback sampling with `ops.top_k`. Imports
swapped for kgraph. The IMDB download and its `TextVectorization` (whose standardization is
`tf.strings.lower`/`regex_replace`) are replaced by the arrays they yield: rows of
`maxlen + 1` token ids (the shifted `x`/`y` pairs come from the example's own slicing) and a
vocabulary list. Sizes cut for a 2-core machine: vocab 20000 -> 200, maxlen 80 -> 12,
embed_dim/feed_forward_dim 256 -> 16, batch 128 -> 16 (52 rows: a last batch of 4), 40
generated tokens -> 4, epochs 25 -> 1.
"""

import numpy as np


def test_text_generation_with_miniature_gpt(capsys):
    import kgraph as tf
    from kgraph import data as tf_data
    from kgraph import keras
    from kgraph.keras import layers, ops

    def causal_attention_mask(batch_size, n_dest, n_src, dtype):
        """
        Mask the upper half of the dot product matrix in self attention.
        This prevents flow of information from future tokens to current token.
        1's in the lower triangle, counting from the lower right corner.
        """
        i = ops.arange(n_dest)[:, None]
        j = ops.arange(n_src)
        m = i >= j - n_src + n_dest
        mask = ops.cast(m, dtype)
        mask = ops.reshape(mask, [1, n_dest, n_src])
        mult = ops.concatenate(
            [ops.expand_dims(batch_size, -1), ops.convert_to_tensor([1, 1])], 0
        )
        return ops.tile(mask, mult)

    class TransformerBlock(layers.Layer):
        def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1):
            super().__init__()
            self.att = layers.MultiHeadAttention(num_heads, embed_dim)
            self.ffn = keras.Sequential(
                [
                    layers.Dense(ff_dim, activation="relu"),
                    layers.Dense(embed_dim),
                ]
            )
            self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
            self.dropout1 = layers.Dropout(rate)
            self.dropout2 = layers.Dropout(rate)

        def call(self, inputs):
            input_shape = ops.shape(inputs)
            batch_size = input_shape[0]
            seq_len = input_shape[1]
            causal_mask = causal_attention_mask(batch_size, seq_len, seq_len, "bool")
            attention_output = self.att(inputs, inputs, attention_mask=causal_mask)
            attention_output = self.dropout1(attention_output)
            out1 = self.layernorm1(inputs + attention_output)
            ffn_output = self.ffn(out1)
            ffn_output = self.dropout2(ffn_output)
            return self.layernorm2(out1 + ffn_output)

    class TokenAndPositionEmbedding(layers.Layer):
        def __init__(self, maxlen, vocab_size, embed_dim):
            super().__init__()
            self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
            self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

        def call(self, x):
            maxlen = ops.shape(x)[-1]
            positions = ops.arange(0, maxlen, 1)
            positions = self.pos_emb(positions)
            x = self.token_emb(x)
            return x + positions

    vocab_size = 200  # Only consider the top 20k words
    maxlen = 12  # Max sequence size
    embed_dim = 16  # Embedding size for each token
    num_heads = 2  # Number of attention heads
    feed_forward_dim = 16  # Hidden layer size in feed forward network inside transformer

    def create_model():
        inputs = layers.Input(shape=(maxlen,), dtype="int32")
        embedding_layer = TokenAndPositionEmbedding(maxlen, vocab_size, embed_dim)
        x = embedding_layer(inputs)
        transformer_block = TransformerBlock(embed_dim, num_heads, feed_forward_dim)
        x = transformer_block(x)
        outputs = layers.Dense(vocab_size)(x)
        model = keras.Model(inputs=inputs, outputs=[outputs, x])
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model.compile(
            "adam",
            loss=[loss_fn, None],
        )  # No loss and optimization based on word embeddings from transformer block
        return model

    batch_size = 16

    # The IMDB reviews as `vectorize_layer` gives them: maxlen + 1 token ids per line
    # (0 pads short lines), and its vocabulary
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, maxlen + 2, 52)
    tokens = rng.integers(2, vocab_size, (52, maxlen + 1))
    tokens[np.arange(maxlen + 1)[None, :] >= lengths[:, None]] = 0
    vocab = ["", "[UNK]", "this", "movie", "is"] + [f"w{i}" for i in range(5, vocab_size)]
    text_ds = tf_data.Dataset.from_tensor_slices(tokens.astype("int64"))
    text_ds = text_ds.shuffle(buffer_size=256)
    text_ds = text_ds.batch(batch_size)

    def prepare_lm_inputs_labels(tokenized_sentences):
        """
        Shift word sequences by 1 position so that the target for position (i) is
        word at position (i+1). The model will use all words up till position (i)
        to predict the next word.
        """
        x = tokenized_sentences[:, :-1]
        y = tokenized_sentences[:, 1:]
        return x, y

    text_ds = text_ds.map(prepare_lm_inputs_labels, num_parallel_calls=tf_data.AUTOTUNE)
    text_ds = text_ds.prefetch(tf_data.AUTOTUNE)

    class TextGenerator(keras.callbacks.Callback):
        """A callback to generate text from a trained model.
        1. Feed some starting prompt to the model
        2. Predict probabilities for the next token
        3. Sample the next token and add it to the next input

        Arguments:
            max_tokens: Integer, the number of tokens to be generated after prompt.
            start_tokens: List of integers, the token indices for the starting prompt.
            index_to_word: List of strings, obtained from the TextVectorization layer.
            top_k: Integer, sample from the `top_k` token predictions.
            print_every: Integer, print after this many epochs.
        """

        def __init__(
            self, max_tokens, start_tokens, index_to_word, top_k=10, print_every=1
        ):
            self.max_tokens = max_tokens
            self.start_tokens = start_tokens
            self.index_to_word = index_to_word
            self.print_every = print_every
            self.k = top_k

        def sample_from(self, logits):
            logits, indices = ops.top_k(logits, k=self.k, sorted=True)
            indices = np.asarray(indices).astype("int32")
            preds = keras.activations.softmax(ops.expand_dims(logits, 0))[0]
            preds = np.asarray(preds).astype("float32")
            return np.random.choice(indices, p=preds)

        def detokenize(self, number):
            return self.index_to_word[number]

        def on_epoch_end(self, epoch, logs=None):
            start_tokens = [_ for _ in self.start_tokens]
            if (epoch + 1) % self.print_every != 0:
                return
            num_tokens_generated = 0
            tokens_generated = []
            while num_tokens_generated <= self.max_tokens:
                pad_len = maxlen - len(start_tokens)
                sample_index = len(start_tokens) - 1
                if pad_len < 0:
                    x = start_tokens[:maxlen]
                    sample_index = maxlen - 1
                elif pad_len > 0:
                    x = start_tokens + [0] * pad_len
                else:
                    x = start_tokens
                x = np.array([x])
                y, _ = self.model.predict(x, verbose=0)
                sample_token = self.sample_from(y[0][sample_index])
                tokens_generated.append(sample_token)
                start_tokens.append(sample_token)
                num_tokens_generated = len(tokens_generated)
            txt = " ".join(
                [self.detokenize(_) for _ in self.start_tokens + tokens_generated]
            )
            print(f"generated text:\n{txt}\n")

    # Tokenize starting prompt
    word_to_index = {}
    for index, word in enumerate(vocab):
        word_to_index[word] = index

    start_prompt = "this movie is"
    start_tokens = [word_to_index.get(_, 1) for _ in start_prompt.split()]
    num_tokens_generated = 4
    text_gen_callback = TextGenerator(num_tokens_generated, start_tokens, vocab)

    model = create_model()

    history = model.fit(text_ds, verbose=2, epochs=1, callbacks=[text_gen_callback])

    # the callback generated 5 tokens after the prompt and printed them
    printed = capsys.readouterr().out.split("generated text:\n")[1].split("\n")[0]
    assert printed.split()[:3] == ["this", "movie", "is"] and len(printed.split()) == 8
    assert np.isfinite(history.history["loss"][0])
    # embeddings, attention (query/key/value/output with key_dim = embed_dim), the
    # feed-forward Sequential, two layer norms and the vocabulary head
    attention = 3 * (embed_dim * num_heads * embed_dim + num_heads * embed_dim) + (
        num_heads * embed_dim * embed_dim + embed_dim)
    ffn = 2 * (embed_dim * feed_forward_dim) + feed_forward_dim + embed_dim
    assert model.count_params() == (vocab_size + maxlen) * embed_dim + attention + ffn + (
        4 * embed_dim) + embed_dim * vocab_size + vocab_size

    # the traced batch is a run-time size: the mask tiles to each batch given
    mask_of = tf.function(lambda x: causal_attention_mask(
        ops.shape(x)[0], ops.shape(x)[1], ops.shape(x)[1], "int32"),
        input_signature=[tf.TensorSpec((None, 5), "int32")])
    for batch in (1, 3):
        np.testing.assert_array_equal(mask_of(np.zeros((batch, 5), "int32")),
                                      np.tile(np.tril(np.ones((5, 5), "int32")), (batch, 1, 1)))

    # causal: changing the tokens after position 5 leaves the outputs up to it unchanged, at
    # a batch size other than the training one
    x = tokens[:3, :-1].copy()
    later = x.copy()
    later[:, 6:] = rng.integers(2, vocab_size, (3, maxlen - 6))
    logits, _ = model.predict(x, verbose=0)
    logits_later, _ = model.predict(later, verbose=0)
    np.testing.assert_allclose(logits[:, :6], logits_later[:, :6], rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits[:, 6:], logits_later[:, 6:])
