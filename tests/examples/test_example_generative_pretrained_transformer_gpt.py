"""keras.io example "Generative Pretrained Transformer(GPT)"
(examples/nlp/Generative_Pretrained_Transformer(GPT).py).

The example's code as written (Karpathy's character-level GPT in TensorFlow/Keras) with
`import tensorflow as tf; import keras; from keras import layers, models, optimizers` swapped
for kgraph: character vocabulary and `encode`/`decode`, `get_batch` generators wrapped by
`tf.data.Dataset.from_generator(output_signature=(tf.TensorSpec(...), ...))`, the `FeedForward`
layer around a `Sequential`, `Block` (`MultiHeadAttention(..., use_causal_mask=True)` on
`ln1(x)` twice), the subclassed `BigramLanguageModel` whose `call(idx, targets=None)` reads
`B, T = idx.shape`, embeds `tf.range(T)[tf.newaxis, :]` and returns `(logits, loss)`, its
`train_step`/`test_step` returning `{"loss": loss}` with `compile(optimizer)` only,
`model.build((batch_size, block_size))` and `count_params()`, `fit` with `steps_per_epoch`,
`validation_data` and `validation_steps` on the endless generators, and `generate`
(`idx[:, -block_size:]`, `tf.random.categorical`, `tf.concat`) decoded with `.numpy()`.

The Tiny Shakespeare download (`wget input.txt`, read from the working directory) is replaced
by a generated text file in a temporary working directory; max_iters 5000 -> 2 and
eval_interval 100 -> 2 (1 epoch of 2 steps), eval_iters 200 -> 2, n_layer 4 -> 2 and 2000
generated characters -> 2 (each context length is a new eager program). Checked: the
parameter count (embeddings, blocks, head) against the
formula once fit has built the model (0 after `model.build`, as Keras 3 prints: the
subclassed model has no `build` of its own), a loss near log(vocab_size) at the start, the generated text's length and alphabet.
"""

import numpy as np


def test_generative_pretrained_transformer_gpt(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers, models, optimizers

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    words = ["thou", "art", "king", "HAMLET:", "the", "noble", "lord,", "my", "good", "sir."]
    with open("input.txt", "w", encoding="utf-8") as f:  # wget .../tinyshakespeare/input.txt
        f.write(" ".join(rng.choice(words, 600)) + "\n")

    # hyperparameters
    batch_size = 16  # how many independent sequences will we process in parallel?
    block_size = 32  # what is the maximum context length for predictions?
    max_iters = 2  # 5000 in the example
    eval_interval = 2  # 100

    Epochs = max_iters // eval_interval

    learning_rate = 1e-3
    eval_iters = 2  # 200
    n_embd = 64
    n_head = 4
    n_layer = 2  # 4 in the example
    dropout = 0.0
    keras.utils.set_random_seed(1337)

    with open("input.txt", "r", encoding="utf-8") as f:
        text = f.read()

    chars = sorted(list(set(text)))
    vocab_size = len(chars)

    stoi = {ch: i for i, ch in enumerate(chars)}
    itos = {i: ch for i, ch in enumerate(chars)}
    encode = lambda s: [stoi[c] for c in s]  # noqa: E731
    decode = lambda l: "".join([itos[i] for i in l])  # noqa: E731, E741

    data = np.array(encode(text), dtype=np.int64)
    n = int(0.9 * len(data))
    train_data = data[:n]
    val_data = data[n:]

    def get_batch(split):
        data = train_data if split == "train" else val_data
        ix = np.random.randint(0, len(data) - block_size, batch_size)
        x = np.stack([data[i : i + block_size] for i in ix])
        y = np.stack([data[i + 1 : i + block_size + 1] for i in ix])
        return x, y

    def train_data_generator():
        while True:
            yield get_batch("train")

    def val_data_generator():
        while True:
            yield get_batch("val")

    train_data_generator = tf.data.Dataset.from_generator(
        train_data_generator,
        output_signature=(
            tf.TensorSpec(shape=(batch_size, block_size), dtype=tf.int64),
            tf.TensorSpec(shape=(batch_size, block_size), dtype=tf.int64),
        ),
    )

    val_data_generator = tf.data.Dataset.from_generator(
        val_data_generator,
        output_signature=(
            tf.TensorSpec(shape=(batch_size, block_size), dtype=tf.int64),
            tf.TensorSpec(shape=(batch_size, block_size), dtype=tf.int64),
        ),
    )

    class FeedForward(layers.Layer):
        """A simple linear layer followed by a non-linearity"""

        def __init__(self, n_embd):
            super().__init__()
            self.net = models.Sequential(
                [
                    layers.Dense(4 * n_embd, activation="relu"),
                    layers.Dense(n_embd),
                    layers.Dropout(dropout),
                ]
            )

        def call(self, x):
            return self.net(x)

    class Block(layers.Layer):
        """Transformer block: communication followed by computation"""

        def __init__(self, n_embd, n_head):
            super().__init__()
            self.sa = layers.MultiHeadAttention(
                num_heads=n_head, key_dim=n_embd // n_head, dropout=dropout
            )
            self.ffwd = FeedForward(n_embd)
            self.ln1 = layers.LayerNormalization()
            self.ln2 = layers.LayerNormalization()

        def call(self, x):
            attn_output = self.sa(
                self.ln1(x), self.ln1(x), use_causal_mask=True
            )  # use causal mask to ensure each token can only see previous tokens
            x = x + attn_output
            x = x + self.ffwd(self.ln2(x))
            return x

    class BigramLanguageModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.token_embedding_table = layers.Embedding(vocab_size, n_embd)
            self.position_embedding_table = layers.Embedding(block_size, n_embd)
            self.blocks = [Block(n_embd, n_head) for _ in range(n_layer)]
            self.ln_f = layers.LayerNormalization()
            self.lm_head = layers.Dense(vocab_size)

        def call(self, idx, targets=None):
            B, T = idx.shape
            tok_emb = self.token_embedding_table(idx)  # (B,T,C)
            pos_emb = self.position_embedding_table(
                tf.range(T)[tf.newaxis, :]
            )  # initially (T,C) adding new axis and get # (1,T,C)
            x = tok_emb + pos_emb  # (B,T,C)
            for block in self.blocks:  # (B,T,C)
                x = block(x)
            x = self.ln_f(x)  # (B,T,C)
            logits = self.lm_head(x)  # (B,T,vocab_size)

            if targets is None:
                return logits, None

            logits_flat = tf.reshape(logits, [-1, logits.shape[-1]])
            targets_flat = tf.reshape(targets, [-1])
            loss = keras.losses.sparse_categorical_crossentropy(
                targets_flat, logits_flat, from_logits=True
            )
            return logits, tf.reduce_mean(loss)

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                logits, loss = self(x, y)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            return {"loss": loss}

        def test_step(self, data):
            x, y = data
            logits, loss = self(x, y)
            return {"loss": loss}

        def generate(self, idx, max_new_tokens):
            for _ in range(max_new_tokens):
                idx_cond = idx[:, -block_size:]
                logits, _ = self(idx_cond)
                logits = logits[:, -1, :]  # becomes (B, C)
                idx_next = tf.random.categorical(logits, num_samples=1)  # (B, 1)
                idx = tf.concat([idx, idx_next], axis=1)  # (B, T+1)
            return idx

    model = BigramLanguageModel()
    model.build((batch_size, block_size))
    print("Number of trainable parameters:", model.count_params())
    # Keras 3 too prints 0 here: `build` of a subclassed model without its own `build` only
    # marks it built (with a warning); the weights are made by the first call
    assert model.count_params() == 0

    model.compile(optimizer=optimizers.Adam(learning_rate))

    Hist = model.fit(
        train_data_generator,
        epochs=Epochs,
        steps_per_epoch=eval_interval,
        validation_data=val_data_generator,
        validation_steps=eval_iters,
    )
    assert set(Hist.history) == {"loss", "val_loss"} and len(Hist.history["loss"]) == Epochs
    assert abs(Hist.history["loss"][0] - np.log(vocab_size)) < 1.0  # near-uniform at the start
    C, V = n_embd, vocab_size
    per_block = 4 * (C * C + C) + 2 * 2 * C + (C * 4 * C + 4 * C) + (4 * C * C + C)
    assert model.count_params() == V * C + block_size * C + n_layer * per_block + 2 * C + C * V + V

    context = np.zeros((1, 1), dtype=np.int64)
    generated = model.generate(context, max_new_tokens=2)  # 2000 in the example
    sample = decode(generated[0].numpy().tolist())
    print(sample)
    assert len(sample) == 3 and set(sample) <= set(chars)
