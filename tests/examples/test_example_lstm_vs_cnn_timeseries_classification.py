"""keras.io example "Timeseries Classification with LSTM and CNN Models"
(examples/timeseries/lstm_vs_cnn_timeseries_classification.py).

The Keras 3 code as written, only the imports changed: the two-layer LSTM (`dropout` and
`recurrent_dropout`) and the Conv1D/BatchNormalization/MaxPooling1D CNN, both trained by
`train_model` with a best-only `.keras` `ModelCheckpoint` on `val_loss` and `EarlyStopping(
restore_best_weights=True)`, the best model reloaded with `load_model` and evaluated. The FordA
TSV downloads read by `readucr` are replaced by random series (labels -1/1; 48 train, 16
test) cut from 500 steps to 60: the first fit of the two LSTMs with `recurrent_dropout` over
500 steps took about 2 minutes here (18 s without `recurrent_dropout`, 3 s at 60 steps);
epochs 100 -> 2; the plots are left out. Checked: parameter
counts as real Keras 3 counts them, history keys the plots read, the reloaded model's
evaluation equal to the restored model's. Marked slow (~6 s).
"""

import numpy as np
import pytest
from example_datasets import forda_readucr


@pytest.mark.slow
def test_lstm_vs_cnn_timeseries_classification(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kgraph import keras
    from kgraph.keras import layers

    x_train, y_train = forda_readucr(48, 0)
    x_test, y_test = forda_readucr(16, 1)
    x_train, x_test = x_train[:, :60], x_test[:, :60]  # 500 steps -> 60 (see above)

    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))

    # Standardize labels: map {-1, 1} to {0, 1}
    y_train = np.where(y_train == -1, 0, y_train)
    y_test = np.where(y_test == -1, 0, y_test)

    # Shuffle training data for validation split
    idx = np.random.permutation(len(x_train))
    x_train = x_train[idx]
    y_train = y_train[idx]

    num_classes = len(np.unique(y_train))

    def build_lstm_model(input_shape, num_classes):
        """Build an LSTM-based model for timeseries classification."""
        model = keras.Sequential([
            layers.Input(shape=input_shape),
            layers.LSTM(64, return_sequences=True, dropout=0.3, recurrent_dropout=0.3),
            layers.LSTM(32, dropout=0.3, recurrent_dropout=0.3),
            layers.Dense(16, activation="relu"),
            layers.Dense(num_classes, activation="softmax")
        ])
        return model

    def build_cnn_model(input_shape, num_classes):
        """Build a 1D CNN-based model for timeseries classification."""
        model = keras.Sequential([
            layers.Input(shape=input_shape),
            layers.Conv1D(filters=64, kernel_size=7, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling1D(pool_size=2),
            layers.Dropout(0.3),
            layers.Conv1D(filters=128, kernel_size=5, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling1D(pool_size=2),
            layers.Dropout(0.3),
            layers.GlobalAveragePooling1D(),
            layers.Dense(16, activation="relu"),
            layers.Dense(num_classes, activation="softmax")
        ])
        return model

    input_shape = x_train.shape[1:]
    lstm_model = build_lstm_model(input_shape, num_classes)
    cnn_model = build_cnn_model(input_shape, num_classes)
    # as real Keras 3 counts them
    assert lstm_model.count_params() == 16_896 + 12_416 + 528 + 34
    assert cnn_model.count_params() == 512 + 256 + 41_088 + 512 + 2_064 + 34

    epochs = 2
    batch_size = 32
    restored = {}

    def train_model(model, model_name, x_train, y_train, x_test, y_test):
        """Train and evaluate a model, return history and test metrics."""
        model.compile(
            optimizer="adam",
            loss="sparse_categorical_crossentropy",
            metrics=["sparse_categorical_accuracy"]
        )

        history = model.fit(
            x_train,
            y_train,
            epochs=epochs,
            batch_size=batch_size,
            validation_split=0.2,
            callbacks=[
                keras.callbacks.ModelCheckpoint(
                    f"best_{model_name}_model.keras",
                    save_best_only=True,
                    monitor="val_loss"
                ),
                keras.callbacks.EarlyStopping(
                    monitor="val_loss",
                    patience=20,
                    restore_best_weights=True
                )
            ],
            verbose=1
        )

        # Load best model for evaluation
        best_model = keras.models.load_model(f"best_{model_name}_model.keras")
        test_loss, test_acc = best_model.evaluate(x_test, y_test, verbose=0)
        print(f"{model_name} Test Accuracy: {test_acc:.4f}, Loss: {test_loss:.4f}")
        restored[model_name] = model.evaluate(x_test, y_test, verbose=0)

        return history, test_acc, test_loss

    # Train LSTM model
    print("Training LSTM model...")
    lstm_history, lstm_test_acc, lstm_test_loss = train_model(lstm_model, "LSTM", x_train, y_train, x_test, y_test)  # noqa: E501

    # Train CNN model
    print("Training CNN model...")
    cnn_history, cnn_test_acc, cnn_test_loss = train_model(cnn_model, "CNN", x_train, y_train, x_test, y_test)  # noqa: E501

    for history in (lstm_history, cnn_history):
        assert {"sparse_categorical_accuracy", "val_sparse_categorical_accuracy", "loss",
                "val_loss"} <= set(history.history)
    # the best checkpoint is the best epoch EarlyStopping restored
    np.testing.assert_allclose([lstm_test_loss, lstm_test_acc], restored["LSTM"], rtol=1e-5)
    np.testing.assert_allclose([cnn_test_loss, cnn_test_acc], restored["CNN"], rtol=1e-5)

    print("\nModel Comparison:")
    print(f"LSTM Test Accuracy: {lstm_test_acc:.4f}, Loss: {lstm_test_loss:.4f}")
    print(f"CNN Test Accuracy: {cnn_test_acc:.4f}, Loss: {cnn_test_loss:.4f}")
