"""keras.io example "Next-Frame Video Prediction with Convolutional LSTMs"
(examples/vision/conv_lstm.py).

The example's model and loops as written, `import tensorflow as tf; from tensorflow import
keras` swapped for kgraph's: an `Input` with an open number of frames, three ConvLSTM2D
(5x5, 3x3, 1x1, 64 filters, relu, `return_sequences`) with BatchNormalization, a Conv3D
sigmoid head, `keras.losses.binary_crossentropy`, EarlyStopping and ReduceLROnPlateau on
validation data, then the frame-by-frame prediction loop that feeds each predicted frame back
(every new length is a new sequence length: compiled once each). Moving MNIST (a download,
20 frames of 64x64) is replaced by 10 random videos of 6 frames of 16x16; 20 epochs -> 1, the
prediction loop 10 frames -> 3; plots and GIFs (imageio, ipywidgets) left out. Marked slow.
"""
import numpy as np
import pytest


@pytest.mark.slow
def test_conv_lstm_next_frame_prediction():
    from kgraph import keras
    from kgraph.keras import layers

    dataset = np.random.default_rng(0).integers(0, 256, (6, 10, 16, 16)).astype("uint8")
    dataset = np.swapaxes(dataset, 0, 1)  # (frames, samples) -> (samples, frames) as written
    dataset = dataset[:1000, ...]
    dataset = np.expand_dims(dataset, axis=-1)
    indexes = np.arange(dataset.shape[0])
    np.random.shuffle(indexes)
    train_index = indexes[: int(0.9 * dataset.shape[0])]
    val_index = indexes[int(0.9 * dataset.shape[0]):]
    train_dataset = dataset[train_index]
    val_dataset = dataset[val_index]
    train_dataset = train_dataset / 255
    val_dataset = val_dataset / 255

    def create_shifted_frames(data):
        x = data[:, 0: data.shape[1] - 1, :, :]
        y = data[:, 1: data.shape[1], :, :]
        return x, y

    x_train, y_train = create_shifted_frames(train_dataset)
    x_val, y_val = create_shifted_frames(val_dataset)
    assert x_train.shape == (9, 5, 16, 16, 1) and y_val.shape == (1, 5, 16, 16, 1)

    inp = layers.Input(shape=(None, *x_train.shape[2:]))
    x = layers.ConvLSTM2D(filters=64, kernel_size=(5, 5), padding="same",
                          return_sequences=True, activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(filters=64, kernel_size=(3, 3), padding="same",
                          return_sequences=True, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(filters=64, kernel_size=(1, 1), padding="same",
                          return_sequences=True, activation="relu")(x)
    x = layers.Conv3D(filters=1, kernel_size=(3, 3, 3), activation="sigmoid",
                      padding="same")(x)
    model = keras.models.Model(inp, x)
    model.compile(loss=keras.losses.binary_crossentropy, optimizer=keras.optimizers.Adam())
    # ConvLSTM2D: (k*k*in + k*k*64) * 256 + 256 each (416,256 / 295,168 / 33,024), two
    # BatchNormalizations of 256, Conv3D 27*64 + 1
    assert model.count_params() == 746_689

    early_stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=10)
    reduce_lr = keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=5)
    epochs = 1
    batch_size = 5
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                        validation_data=(x_val, y_val), callbacks=[early_stopping, reduce_lr],
                        verbose=0)
    assert np.isfinite(history.history["loss"] + history.history["val_loss"]).all()

    example = val_dataset[np.random.choice(range(len(val_dataset)), size=1)[0]]
    frames = example[:3, ...]
    original_frames = example[3:, ...]
    for _ in range(3):
        new_prediction = model.predict(np.expand_dims(frames, axis=0), verbose=0)
        new_prediction = np.squeeze(new_prediction, axis=0)
        predicted_frame = np.expand_dims(new_prediction[-1, ...], axis=0)
        frames = np.concatenate((frames, predicted_frame), axis=0)
    assert frames.shape == (6, 16, 16, 1) and original_frames.shape == (3, 16, 16, 1)
    assert ((frames[3:] > 0) & (frames[3:] < 1)).all()  # sigmoid frames
