"""keras.io example "Bidirectional LSTM on IMDB" (examples/nlp/bidirectional_lstm_imdb.py).

The Keras 3 code as written; only the imports changed, the IMDB download
replaced by random int sequences of varied length (32 train, 16 validation;
vocabulary as written, `maxlen` 200 cut to 20), epochs cut from 2 to 1.
"""

import numpy as np
from example_datasets import imdb_load_data


def test_bidirectional_lstm_imdb():
    from kgraph import keras
    from kgraph.keras import layers

    max_features = 20000  # Only consider the top 20k words
    maxlen = 20  # Only consider the first 200 words of each movie review

    # Input for variable-length sequences of integers
    inputs = keras.Input(shape=(None,), dtype="int32")
    # Embed each integer in a 128-dimensional vector
    x = layers.Embedding(max_features, 128)(inputs)
    # Add 2 bidirectional LSTMs
    x = layers.Bidirectional(layers.LSTM(64, return_sequences=True))(x)
    x = layers.Bidirectional(layers.LSTM(64))(x)
    # Add a classifier
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.summary()

    (x_train, y_train), (x_val, y_val) = imdb_load_data(
        num_words=max_features, n_train=32, n_val=16
    )
    print(len(x_train), "Training sequences")
    print(len(x_val), "Validation sequences")
    # Use pad_sequence to standardize sequence length:
    # this will truncate sequences longer than 200 words and zero-pad sequences shorter
    # than 200 words.
    x_train = keras.utils.pad_sequences(x_train, maxlen=maxlen)
    x_val = keras.utils.pad_sequences(x_val, maxlen=maxlen)

    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(
        x_train, y_train, batch_size=32, epochs=1, validation_data=(x_val, y_val)
    )

    assert np.isfinite(history.history["val_loss"][0])
    # embedding 20000*128; LSTMs 2 * 4*64*(128+64+1) and 2 * 4*64*(128+64+1); dense 129
    assert model.count_params() == 2_560_000 + 4 * 4 * 64 * 193 + 129
