"""keras.io example "Timeseries forecasting with LSTM for temperature prediction"
(examples/timeseries/timeseries_forecasting_with_lstm_for_temperature_prediction.py).

The stored source (TensorFlow-era: `from tensorflow import keras; from tensorflow.keras import
layers; import tensorflow as tf`) with those imports swapped for kgraph: the
`tf.keras.preprocessing.timeseries_dataset_from_array` windows (sequence_length 10, the
validation set as one batch of `X_validation.shape[0] - 10`), the peek at the first batch with
`.numpy()`, the LSTM(20) + Dense(1) model fitted on the dataset with `validation_data`,
`next(iter(dataset_validation))` and `predict`. The Austin weather CSV (a download) and its
pandas preparation (`to_datetime`, `.dt.month`/`.dt.day`, `shift(-10)`, `dropna`, the year
splits) are replaced by the arrays they yield for generated daily temperatures from
2013-12-21 to 2017-07-31; epochs 200 -> 2; plots left out. Checked: what the example points
out, that the last day of a sample's window is the day before the previous sample's target
(the target is the temperature 10 days after each window's first day), and the summary's
1,941 parameters.
"""

import numpy as np


def _austin_weather_like(seed=0):
    """The example's pandas columns as arrays: Date, TempAvgF, month, day, Target."""
    dates = np.arange(np.datetime64("2013-12-21"), np.datetime64("2017-08-01"))
    day_of_year = (dates - dates.astype("datetime64[Y]")).astype(int)
    rng = np.random.default_rng(seed)
    temp = 70 + 15 * np.sin(2 * np.pi * (day_of_year - 100) / 365) + rng.normal(0, 3, len(dates))
    temp = np.round(temp)
    month = dates.astype("datetime64[M]").astype(int) % 12 + 1
    day = (dates - dates.astype("datetime64[M]")).astype(int) + 1
    year = dates.astype("datetime64[Y]").astype(int) + 1970
    # data_df["Target"] = df["TempAvgF"].shift(-10); data_df.dropna(inplace=True)
    keep = slice(0, len(dates) - 10)
    target = temp[10:]
    return year[keep], np.stack([temp[keep], month[keep], day[keep]], 1), target


def test_timeseries_forecasting_with_lstm_for_temperature_prediction():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    year, features, target = _austin_weather_like()
    # Train and validation split
    train, validation = year < 2016, year > 2016
    X_train = features[train]
    y_train = target[train]
    X_validation = features[validation]
    y_validation = target[validation]

    dataset_train = tf.keras.preprocessing.timeseries_dataset_from_array(
        X_train, y_train, sequence_length=10, sequence_stride=1
    )
    dataset_validation = tf.keras.preprocessing.timeseries_dataset_from_array(
        X_validation,
        y_validation,
        sequence_length=10,
        batch_size=X_validation.shape[0] - 10,
        sequence_stride=1,
    )

    # A sneak peek at the data
    for batch in dataset_train:
        inputs, targets = batch
        break
    inp_arr = inputs.numpy()
    print("Input shape:  {}".format(inp_arr.shape))
    print("Target shape: {}".format(targets.numpy().shape))

    print("Sample of input:")
    print(inp_arr[0], "\n\n", inp_arr[1])
    print("Targets: \n {}".format(targets))

    assert inp_arr.shape == (128, 10, 3) and targets.numpy().shape == (128,)
    # "the last temperature on the last timestamp of sample 2 (11th day) is the target for
    # sample 1": the target is the temperature 10 days after the window's first day
    np.testing.assert_array_equal(inp_arr[1:, -1, 0], targets.numpy()[:-1])
    np.testing.assert_array_equal(targets.numpy(), X_train[10:138, 0])

    model = keras.Sequential(
        [
            layers.Input(shape=(inputs.shape[1], inputs.shape[2])),
            # Uncomment below line if you want to use intermediate layers.
            # layers.LSTM(20, return_sequences=True),
            layers.LSTM(20, return_sequences=False),
            layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    model.summary()
    assert model.count_params() == 1_941  # 4 * (20 * (3 + 20) + 20) + 21

    history = model.fit(dataset_train, epochs=2, validation_data=dataset_validation)
    assert len(history.history["val_loss"]) == 2

    input_validation, target_validation = next(iter(dataset_validation))
    output_validation = model.predict(input_validation)
    # one batch of X_validation.shape[0] - 10 windows (of the N - 9 there are)
    assert output_validation.shape == (X_validation.shape[0] - 10, 1)
    assert target_validation.numpy().shape == (X_validation.shape[0] - 10,)
