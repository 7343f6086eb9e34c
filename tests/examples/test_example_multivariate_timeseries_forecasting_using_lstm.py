"""keras.io example "Multivariate Time Series Forecasting using LSTM"
(examples/timeseries/multivariate_timeseries_forecasting_using_lstm.py).

The stored source (TensorFlow-era: `from tensorflow.keras.preprocessing.sequence import
TimeseriesGenerator; import tensorflow as tf`) with those imports swapped for kgraph: tf.keras
2's `TimeseriesGenerator` windows (the printed first window of length 2 and its third-day
target), the three-LSTM model built with `model.add` and `input_shape=`, `LeakyReLU(alpha=0.5)`,
compiled with `tf.losses.MeanSquaredError()`, `tf.optimizers.Adam()` and
`tf.metrics.MeanAbsoluteError()`, fitted on the generators (`shuffle=False`), evaluated and
predicted, the predictions joined to the other columns and inverse-scaled. The GOOG.csv
download and pandas frames are replaced by generated price columns (numpy arrays), sklearn's
`StandardScaler` and `train_test_split(shuffle=False)` by their definitions in numpy; sizes: 400
days, window 60 -> 20, epochs 50 -> 2; plots left out. Checked: the parameter count as real
Keras counts it, 942 -> `len(x_test) - win_length` predictions, the inverse transform.
"""

import numpy as np


class StandardScaler:
    """sklearn.preprocessing.StandardScaler: each column to mean 0, standard deviation 1."""

    def fit_transform(self, x):
        x = np.asarray(x, dtype=np.float64)
        self.mean_, self.scale_ = x.mean(0), x.std(0)
        return (x - self.mean_) / self.scale_

    def inverse_transform(self, x):
        return np.asarray(x) * self.scale_ + self.mean_


def train_test_split(*arrays, test_size, random_state=None, shuffle=True):
    """sklearn.model_selection.train_test_split without shuffling: the last test_size part."""
    assert not shuffle
    cut = len(arrays[0]) - int(np.ceil(test_size * len(arrays[0])))
    return [part for a in arrays for part in (a[:cut], a[cut:])]


def _goog_like(days=400, seed=0):
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, days))
    open_ = close + rng.normal(0, 0.5, days)
    high = np.maximum(open_, close) + rng.uniform(0, 1, days)
    low = np.minimum(open_, close) - rng.uniform(0, 1, days)
    return np.stack([open_, high, low, close, close * 0.98], 1)  # Open ... Adj Close


def test_multivariate_timeseries_forecasting_using_lstm():
    import kgraph as tf
    from kgraph.keras.preprocessing.sequence import TimeseriesGenerator

    df_input = _goog_like()  # df[["Open", "High", "Low", "Close", "Adj Close"]]

    scaler = StandardScaler()
    data_scaled = scaler.fit_transform(df_input)

    features = data_scaled
    target = data_scaled[:, 0]  # Target Column - Open Price

    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=123, shuffle=False
    )
    print(x_train.shape)
    print(x_test.shape)

    # This code block is for the understanding the output of TimeseriesGenerator
    print("Input Features\n", data_scaled[0:3])
    print("\nTimeseriesGenerator")
    first = TimeseriesGenerator(features, target, length=2, sampling_rate=1, batch_size=1)[0]
    print(first)
    # "the opening price of 3rd day is made as the target value for the input features of
    # first two days"
    np.testing.assert_array_equal(first[0], data_scaled[None, 0:2])
    assert first[1][0] == data_scaled[2, 0]

    win_length = 20  # window length
    batch_size = 62
    num_features = 5
    train_generator = TimeseriesGenerator(
        x_train, y_train, length=win_length, sampling_rate=1, batch_size=batch_size
    )
    test_generator = TimeseriesGenerator(
        x_test, y_test, length=win_length, sampling_rate=1, batch_size=batch_size
    )

    model = tf.keras.Sequential()
    model.add(
        tf.keras.layers.LSTM(
            128, input_shape=(win_length, num_features), return_sequences=True
        )
    )
    model.add(tf.keras.layers.LeakyReLU(alpha=0.5))
    model.add(tf.keras.layers.LSTM(128, return_sequences=True))
    model.add(tf.keras.layers.LeakyReLU(alpha=0.5))
    model.add(tf.keras.layers.Dropout(0.3))
    model.add(tf.keras.layers.LSTM(64, return_sequences=False))
    model.add(tf.keras.layers.Dropout(0.3))
    model.add(tf.keras.layers.Dense(1))

    model.summary()
    # 4 * (128 * (5 + 128) + 128) + 4 * (128 * 256 + 128) + 4 * (64 * 192 + 64) + 65
    assert model.count_params() == 68_608 + 131_584 + 49_408 + 65

    model.compile(
        loss=tf.losses.MeanSquaredError(),
        optimizer=tf.optimizers.Adam(),
        metrics=[tf.metrics.MeanAbsoluteError()],
    )

    history = model.fit(
        train_generator, epochs=2, validation_data=test_generator, shuffle=False
    )
    assert len(history.history["val_mean_absolute_error"]) == 2

    test_loss, test_mae = model.evaluate(test_generator, verbose=0)
    print("Test Loss:", test_loss)
    print("Test MAE:", test_mae)

    predictions = model.predict(test_generator)
    print(predictions.shape[0])
    assert predictions.shape == (len(x_test) - win_length, 1)

    # Consider only the values after the first win_length values
    print(x_test[:, 1:][win_length:])
    # pd.concat([pd.DataFrame(predictions), pd.DataFrame(x_test[:, 1:][win_length:])], axis=1)
    df_pred = np.concatenate([predictions, x_test[:, 1:][win_length:]], axis=1)

    # To get the original values, the inverse_transform has to be performed.
    in_trans = scaler.inverse_transform(df_pred)
    print(in_trans)

    df_final = df_input[predictions.shape[0] * -1 :]
    predicted_open = in_trans[:, 0].tolist()
    df_final = np.concatenate([df_final, np.asarray(predicted_open)[:, None]], axis=1)
    # the other columns come back to the original prices
    np.testing.assert_allclose(in_trans[:, 1:], df_final[:, 1:5], rtol=1e-6)
    assert np.isfinite(df_final[:, 5]).all()
