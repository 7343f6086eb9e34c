"""keras.io example "Timeseries forecasting for weather prediction"
(examples/timeseries/timeseries_weather_forecasting.py).

The example's model, data windows and training as written, `import tensorflow as tf; from
tensorflow import keras` swapped for kgraph's: `keras.preprocessing.timeseries_dataset_from_array`
with `sampling_rate=6` over 120-step windows, an LSTM(32) on (120, 7), EarlyStopping and a
weights-only, best-only ModelCheckpoint on `val_loss` (`model_checkpoint.h5`), `take(1)`/`take(5)`
and `model.predict` on validation windows. The Jena climate CSV (a download, read with pandas,
which is not a dependency) is replaced by the arrays its pandas code yields: 6,000 rows of 14
random features, the 7 selected columns normalised with the training rows' statistics, the
temperature column shifted by `past + future` as targets. Epochs 10 -> 2; plots left out.
"""
import numpy as np


def test_weather_forecasting(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from kgraph import keras

    rows = 6000
    raw = np.random.default_rng(0).normal(size=(rows, 14)).cumsum(axis=0).astype("float32")
    split_fraction = 0.715
    train_split = int(split_fraction * int(raw.shape[0]))
    step = 6
    past = 720
    future = 72
    learning_rate = 0.001
    batch_size = 256
    epochs = 2

    def normalize(data, train_split):
        data_mean = data[:train_split].mean(axis=0)
        data_std = data[:train_split].std(axis=0)
        return (data - data_mean) / data_std

    features = normalize(raw[:, [0, 1, 5, 7, 8, 10, 11]], train_split)  # df[selected].values
    train_data = features[0:train_split]
    val_data = features[train_split:]

    start = past + future
    end = start + train_split
    x_train = train_data[:, range(7)]
    y_train = features[start:end][:, [1]]
    sequence_length = int(past / step)

    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train, y_train, sequence_length=sequence_length, sampling_rate=step,
        batch_size=batch_size)

    x_end = len(val_data) - past - future
    label_start = train_split + past + future
    x_val = val_data[:x_end][:, range(7)]
    y_val = features[label_start:][:, [1]]
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val, y_val, sequence_length=sequence_length, sampling_rate=step,
        batch_size=batch_size)

    for batch in dataset_train.take(1):
        inputs, targets = batch
    assert inputs.numpy().shape == (256, 120, 7) and targets.numpy().shape == (256, 1)

    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    assert model.count_params() == 5_153

    path_checkpoint = "model_checkpoint.h5"
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(
        monitor="val_loss", filepath=path_checkpoint, verbose=0, save_weights_only=True,
        save_best_only=True)
    history = model.fit(dataset_train, epochs=epochs, validation_data=dataset_val,
                        callbacks=[es_callback, modelckpt_callback], verbose=0)
    assert set(history.history) == {"loss", "val_loss"} and len(history.history["loss"]) == 2
    assert np.isfinite(history.history["val_loss"]).all()

    best = keras.Model(inputs=inputs, outputs=outputs)
    best.load_weights(path_checkpoint)  # the best epoch's weights, written by the checkpoint
    for x, y in dataset_val.take(5):
        plot_data = [x[0][:, 1].numpy(), y[0].numpy(), model.predict(x, verbose=0)[0]]
        assert plot_data[0].shape == (120,) and plot_data[2].shape == (1,)
        assert np.isfinite(best.predict(x, verbose=0)).all()
