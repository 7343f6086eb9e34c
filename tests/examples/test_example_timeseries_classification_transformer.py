"""keras.io example "Timeseries classification with a Transformer model"
(examples/timeseries/timeseries_classification_transformer.py).

The Keras 3 code as written; only the imports changed, the FordA download
replaced by random series of its shape (500 steps; 20 train, 8 test),
epochs cut from 150 to 1.
"""

import numpy as np
import pytest
from example_datasets import forda_readucr as readucr


@pytest.mark.slow
def test_timeseries_classification_transformer():
    from kgraph import keras
    from kgraph.keras import layers

    x_train, y_train = readucr(20, 0)
    x_test, y_test = readucr(8, 1)

    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))

    n_classes = len(np.unique(y_train))

    idx = np.random.permutation(len(x_train))
    x_train = x_train[idx]
    y_train = y_train[idx]

    y_train[y_train == -1] = 0
    y_test[y_test == -1] = 0

    def transformer_encoder(inputs, head_size, num_heads, ff_dim, dropout=0):
        # Attention and Normalization
        x = layers.MultiHeadAttention(
            key_dim=head_size, num_heads=num_heads, dropout=dropout
        )(inputs, inputs)
        x = layers.Dropout(dropout)(x)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        res = x + inputs

        # Feed Forward Part
        x = layers.Conv1D(filters=ff_dim, kernel_size=1, activation="relu")(res)
        x = layers.Dropout(dropout)(x)
        x = layers.Conv1D(filters=inputs.shape[-1], kernel_size=1)(x)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        return x + res

    def build_model(
        input_shape,
        head_size,
        num_heads,
        ff_dim,
        num_transformer_blocks,
        mlp_units,
        dropout=0,
        mlp_dropout=0,
    ):
        inputs = keras.Input(shape=input_shape)
        x = inputs
        for _ in range(num_transformer_blocks):
            x = transformer_encoder(x, head_size, num_heads, ff_dim, dropout)

        x = layers.GlobalAveragePooling1D(data_format="channels_last")(x)
        for dim in mlp_units:
            x = layers.Dense(dim, activation="relu")(x)
            x = layers.Dropout(mlp_dropout)(x)
        outputs = layers.Dense(n_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    input_shape = x_train.shape[1:]

    model = build_model(
        input_shape,
        head_size=256,
        num_heads=4,
        ff_dim=4,
        num_transformer_blocks=4,
        mlp_units=[128],
        mlp_dropout=0.4,
        dropout=0.25,
    )

    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=1e-4),
        metrics=["sparse_categorical_accuracy"],
    )
    model.summary()

    callbacks = [keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)]

    history = model.fit(
        x_train,
        y_train,
        validation_split=0.2,
        epochs=1,
        batch_size=64,
        callbacks=callbacks,
    )

    result = model.evaluate(x_test, y_test, verbose=1)
    assert np.isfinite(history.history["val_loss"][0])
    assert np.isfinite(result[0]) and 0.0 <= result[1] <= 1.0
    # per block: attention 4 * (3 * (1*256 + 256) + 256*1) + 1, two layer norms
    # 2 * 2, convs (1*4 + 4) + (4*1 + 1); head 1*128 + 128 + 128*2 + 2
    per_block = 4 * 3 * 512 + 4 * 256 + 1 + 4 + 8 + 5
    assert model.count_params() == 4 * per_block + 128 + 128 + 258
