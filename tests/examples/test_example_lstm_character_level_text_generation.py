"""keras.io example "Character-level text generation with LSTM"
(examples/generative/lstm_character_level_text_generation.py).

The Keras 3 code as written; only the imports changed, the nietzsche.txt
download replaced by a generated text file (about 900 characters), epochs
cut from 40 to 1, 2 diversities of the 4 and 10 generated characters of 400.
The one-hot `x` and `y` are bool arrays, as written.
"""

import io
import random

import numpy as np


def _write_text(path, seed=0):
    rng = np.random.default_rng(seed)
    words = ["the", "will", "to", "power", "is", "what", "good", "evil", "and", "beyond"]
    lines = [" ".join(rng.choice(words, 12)).capitalize() + "." for _ in range(15)]
    path.write_text("\n".join(lines), encoding="utf-8")


def test_lstm_character_level_text_generation(tmp_path):
    from kgraph import keras
    from kgraph.keras import layers

    path = tmp_path / "nietzsche.txt"
    _write_text(path)
    with io.open(path, encoding="utf-8") as f:
        text = f.read().lower()
    text = text.replace("\n", " ")  # We remove newlines chars for nicer display
    print("Corpus length:", len(text))

    chars = sorted(list(set(text)))
    print("Total chars:", len(chars))
    char_indices = dict((c, i) for i, c in enumerate(chars))
    indices_char = dict((i, c) for i, c in enumerate(chars))

    # cut the text in semi-redundant sequences of maxlen characters
    maxlen = 40
    step = 3
    sentences = []
    next_chars = []
    for i in range(0, len(text) - maxlen, step):
        sentences.append(text[i : i + maxlen])
        next_chars.append(text[i + maxlen])
    print("Number of sequences:", len(sentences))

    x = np.zeros((len(sentences), maxlen, len(chars)), dtype="bool")
    y = np.zeros((len(sentences), len(chars)), dtype="bool")
    for i, sentence in enumerate(sentences):
        for t, char in enumerate(sentence):
            x[i, t, char_indices[char]] = 1
        y[i, char_indices[next_chars[i]]] = 1

    model = keras.Sequential(
        [
            keras.Input(shape=(maxlen, len(chars))),
            layers.LSTM(128),
            layers.Dense(len(chars), activation="softmax"),
        ]
    )
    optimizer = keras.optimizers.RMSprop(learning_rate=0.01)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer)

    def sample(preds, temperature=1.0):
        # helper function to sample an index from a probability array
        preds = np.asarray(preds).astype("float64")
        preds = np.log(preds) / temperature
        exp_preds = np.exp(preds)
        preds = exp_preds / np.sum(exp_preds)
        probas = np.random.multinomial(1, preds, 1)
        return np.argmax(probas)

    epochs = 1
    batch_size = 128

    losses = []
    for epoch in range(epochs):
        history = model.fit(x, y, batch_size=batch_size, epochs=1)
        losses += history.history["loss"]
        print()
        print("Generating text after epoch: %d" % epoch)

        start_index = random.randint(0, len(text) - maxlen - 1)
        for diversity in [0.2, 1.2]:
            print("...Diversity:", diversity)

            generated = ""
            sentence = text[start_index : start_index + maxlen]
            print('...Generating with seed: "' + sentence + '"')

            for i in range(10):
                x_pred = np.zeros((1, maxlen, len(chars)))
                for t, char in enumerate(sentence):
                    x_pred[0, t, char_indices[char]] = 1.0
                preds = model.predict(x_pred, verbose=0)[0]
                next_index = sample(preds, diversity)
                next_char = indices_char[next_index]
                sentence = sentence[1:] + next_char
                generated += next_char

            print("...Generated: ", generated)
            print("-")
            assert len(generated) == 10 and set(generated) <= set(chars)

    assert np.isfinite(losses[0])
    # the bool one-hot input gives what the float one-hot gives
    x_float = x[:4].astype("float32")
    np.testing.assert_allclose(
        model.predict(x[:4], verbose=0), model.predict(x_float, verbose=0), rtol=1e-6
    )
