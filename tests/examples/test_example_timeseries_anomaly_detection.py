"""keras.io example "Timeseries anomaly detection using an Autoencoder"
(examples/timeseries/timeseries_anomaly_detection.py).

The Keras 3 model, training and detection code as written; only the imports
changed. The NAB csv downloads and their pandas frames are replaced by the
value columns they hold (a noisy daily cycle of 5-minute samples; 400 train,
400 test values, an anomaly spike in the test part), epochs cut from 50 to 2.
"""

import numpy as np


def _values(n, seed, spike=False):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 20 + 5 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 0.3, n)
    if spike:
        values[300:310] += 40
    return values.reshape(-1, 1)


def test_timeseries_anomaly_detection():
    from kgraph import keras
    from kgraph.keras import layers

    df_small_noise = _values(400, 0)
    df_daily_jumpsup = _values(400, 1, spike=True)

    # Normalize and save the mean and std we get,
    # for normalizing test data.
    training_mean = df_small_noise.mean()
    training_std = df_small_noise.std()
    df_training_value = (df_small_noise - training_mean) / training_std
    print("Number of training samples:", len(df_training_value))

    TIME_STEPS = 288

    # Generated training sequences for use in the model.
    def create_sequences(values, time_steps=TIME_STEPS):
        output = []
        for i in range(len(values) - time_steps + 1):
            output.append(values[i : (i + time_steps)])
        return np.stack(output)

    x_train = create_sequences(df_training_value)
    print("Training input shape: ", x_train.shape)

    model = keras.Sequential(
        [
            layers.Input(shape=(x_train.shape[1], x_train.shape[2])),
            layers.Conv1D(
                filters=32, kernel_size=7, padding="same", strides=2, activation="relu"
            ),
            layers.Dropout(rate=0.2),
            layers.Conv1D(
                filters=16, kernel_size=7, padding="same", strides=2, activation="relu"
            ),
            layers.Conv1DTranspose(
                filters=16, kernel_size=7, padding="same", strides=2, activation="relu"
            ),
            layers.Dropout(rate=0.2),
            layers.Conv1DTranspose(
                filters=32, kernel_size=7, padding="same", strides=2, activation="relu"
            ),
            layers.Conv1DTranspose(filters=1, kernel_size=7, padding="same"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    model.summary()

    history = model.fit(
        x_train,
        x_train,
        epochs=2,
        batch_size=128,
        validation_split=0.1,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, mode="min")
        ],
    )

    # Get train MAE loss.
    x_train_pred = model.predict(x_train)
    train_mae_loss = np.mean(np.abs(x_train_pred - x_train), axis=1)

    # Get reconstruction loss threshold.
    threshold = np.max(train_mae_loss)
    print("Reconstruction error threshold: ", threshold)

    df_test_value = (df_daily_jumpsup - training_mean) / training_std

    # Create sequences from test values.
    x_test = create_sequences(df_test_value)
    print("Test input shape: ", x_test.shape)

    # Get test MAE loss.
    x_test_pred = model.predict(x_test)
    test_mae_loss = np.mean(np.abs(x_test_pred - x_test), axis=1)
    test_mae_loss = test_mae_loss.reshape((-1))

    # Detect all the samples which are anomalies.
    anomalies = test_mae_loss > threshold
    print("Number of anomaly samples: ", np.sum(anomalies))

    assert x_train.shape == (113, 288, 1) and x_train_pred.shape == x_train.shape
    assert len(history.history["val_loss"]) == 2
    assert test_mae_loss.shape == (113,) and np.isfinite(threshold)
