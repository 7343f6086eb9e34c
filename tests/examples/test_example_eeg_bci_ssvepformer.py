"""keras.io example "Electroencephalogram Signal Classification for Brain-Computer Interface"
(examples/timeseries/eeg_bci_ssvepformer.py).

The example's code as written (Keras 3 source) with `from keras import backend as K; from keras
import layers; import keras; import tensorflow as tf` swapped for kgraph: `scipy.io.loadmat`
of each subject's recording, the zero-phase band-pass (`scipy.signal.butter`/`filtfilt`) and
segmentation, `K.set_image_data_format("channels_first")` (so the Conv1D layers run on
channels-first data), the SSVEPFormer layers (`ComplexSpectrum`: `keras.ops.rfft` with
`fft_length` returning (real, imag); `ChannelComb`/`ConvAttention`: Conv1D with
`RandomNormal` kernels, LayerNormalization, gelu, Dropout, residuals; `ChannelMLP`: one Dense
applied per channel with a `layers.Reshape` made inside `call` and a `Concatenate(axis=1)`;
`MlpHead`), the Sequential, `model.summary()`, `tf.data` pipelines, SGD with momentum and
weight decay compiled with `jit_compile=True`, fit and evaluate per left-out subject.

The cca_ssvep download is replaced by ten generated `s{n}.mat` files (`scipy.io.savemat`) of
the recording's layout (targets x channels x samples x blocks) holding noisy sines at the
twelve stimulus frequencies; sizes cut: 400 samples per recording (1,114), 2 blocks (15),
EPOCHS 100 -> 1, BATCH_SIZE 128 -> 32, the leave-one-subject-out loop to its first
subject. The plots are left out. Checked: the spectrum layer against numpy's rfft, the data
shapes the example prints. Marked slow (~9 s: the summary model and one fit of the 16-channel
model with its per-channel loop).
"""

import os

import numpy as np
import pytest
from scipy.io import loadmat, savemat
from scipy.signal import butter, filtfilt


def write_recordings(folder, subjects=10, samples=400, blocks=2, fs=256, seed=0):
    """Stand-in for cca_ssvep/s{n}.mat: `eeg` of shape (12 targets, 8 channels, samples,
    blocks), sines at 9.25-14.75 Hz plus noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / fs
    freqs = 9.25 + 0.5 * np.arange(12)
    for subj in range(1, subjects + 1):
        eeg = rng.normal(scale=2.0, size=(12, 8, samples, blocks))
        eeg += 5.0 * np.sin(2 * np.pi * freqs[:, None, None, None] * t[None, None, :, None])
        savemat(os.path.join(folder, f"s{subj}.mat"), {"eeg": eeg})


@pytest.mark.slow
def test_eeg_bci_ssvepformer(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import backend as K
    from kgraph.keras import layers

    monkeypatch.chdir(tmp_path)
    os.makedirs("cca_ssvep")
    write_recordings("cca_ssvep")

    K.set_image_data_format("channels_first")
    try:
        _run_example(tf, keras, layers)
    finally:
        K.set_image_data_format("channels_last")


def _run_example(tf, keras, layers):
    keras.utils.set_random_seed(42)

    def raw_signal(folder, fs=256, duration=1.0, onset=0.135):
        """selecting a 1-second segment of the raw EEG signal for
        subject 1.
        """
        onset = 38 + int(onset * fs)
        end = int(duration * fs)
        data = loadmat(f"{folder}/s1.mat")
        # samples, channels, trials, targets
        eeg = data["eeg"].transpose((2, 1, 3, 0))
        # segment data
        eeg = eeg[onset : onset + end, :, :, :]
        return eeg

    def segment_eeg(
        folder, elecs=None, fs=256, duration=1.0, band=[5.0, 45.0], order=4, onset=0.135
    ):
        """Filtering and segmenting EEG signals for all subjects."""
        n_subejects = 10
        onset = 38 + int(onset * fs)
        end = int(duration * fs)
        X, Y = [], []  # empty data and labels

        for subj in range(1, n_subejects + 1):
            data = loadmat(f"{data_folder}/s{subj}.mat")
            # samples, channels, trials, targets
            eeg = data["eeg"].transpose((2, 1, 3, 0))
            # filter data
            eeg = filter_eeg(eeg, fs=fs, band=band, order=order)
            # segment data
            eeg = eeg[onset : onset + end, :, :, :]
            # reshape labels
            samples, channels, blocks, targets = eeg.shape
            y = np.tile(np.arange(1, targets + 1), (blocks, 1))
            y = y.reshape((1, blocks * targets), order="F")

            X.append(eeg.reshape((samples, channels, blocks * targets), order="F"))
            Y.append(y)

        X = np.array(X, dtype=np.float32, order="F")
        Y = np.array(Y, dtype=np.float32).squeeze()

        return X, Y

    def filter_eeg(data, fs=256, band=[5.0, 45.0], order=4):
        """Filter EEG signal using a zero-phase IIR filter"""
        B, A = butter(order, np.array(band) / (fs / 2), btype="bandpass")
        return filtfilt(B, A, data, axis=0)

    data_folder = os.path.abspath("./cca_ssvep")
    band = [8, 64]  # low-frequency / high-frequency cutoffS
    order = 4  # filter order
    fs = 256  # sampling frequency
    duration = 1.0  # 1 second

    # raw signal
    X_raw = raw_signal(data_folder, fs=fs, duration=duration)
    print(
        f"A single subject raw EEG (X_raw) shape: {X_raw.shape} [Samples x Channels x Blocks x Targets]"
    )

    # segmented signal
    X, Y = segment_eeg(data_folder, band=band, order=order, fs=fs, duration=duration)
    print(
        f"Full training data (X) shape: {X.shape} [Subject x Samples x Channels x Trials]"
    )
    print(f"data labels (Y) shape:        {Y.shape} [Subject x Trials]")
    assert X_raw.shape == (256, 8, 2, 12) and X.shape == (10, 256, 8, 24) and Y.shape == (10, 24)

    class ComplexSpectrum(keras.layers.Layer):
        def __init__(self, nfft=512, fft_start=8, fft_end=64):
            super().__init__()
            self.nfft = nfft
            self.fft_start = fft_start
            self.fft_end = fft_end

        def call(self, x):
            samples = x.shape[-1]
            x = keras.ops.rfft(x, fft_length=self.nfft)
            real = x[0] / samples
            imag = x[1] / samples
            real = real[:, :, self.fft_start : self.fft_end]
            imag = imag[:, :, self.fft_start : self.fft_end]
            x = keras.ops.concatenate((real, imag), axis=-1)
            return x

    class ChannelComb(keras.layers.Layer):
        def __init__(self, n_channels, drop_rate=0.5):
            super().__init__()
            self.conv = layers.Conv1D(
                2 * n_channels,
                1,
                padding="same",
                kernel_initializer=keras.initializers.RandomNormal(
                    mean=0.0, stddev=0.01, seed=None
                ),
            )
            self.normalization = layers.LayerNormalization()
            self.activation = layers.Activation(activation="gelu")
            self.drop = layers.Dropout(drop_rate)

        def call(self, x):
            x = self.conv(x)
            x = self.normalization(x)
            x = self.activation(x)
            x = self.drop(x)
            return x

    class ConvAttention(keras.layers.Layer):
        def __init__(self, n_channels, drop_rate=0.5):
            super().__init__()
            self.norm = layers.LayerNormalization()
            self.conv = layers.Conv1D(
                2 * n_channels,
                31,
                padding="same",
                kernel_initializer=keras.initializers.RandomNormal(
                    mean=0.0, stddev=0.01, seed=None
                ),
            )
            self.activation = layers.Activation(activation="gelu")
            self.drop = layers.Dropout(drop_rate)

        def call(self, x):
            input = x
            x = self.norm(x)
            x = self.conv(x)
            x = self.activation(x)
            x = self.drop(x)
            x = x + input
            return x

    class ChannelMLP(keras.layers.Layer):
        def __init__(self, n_features, drop_rate=0.5):
            super().__init__()
            self.norm = layers.LayerNormalization()
            self.mlp = layers.Dense(
                2 * n_features,
                kernel_initializer=keras.initializers.RandomNormal(
                    mean=0.0, stddev=0.01, seed=None
                ),
            )
            self.activation = layers.Activation(activation="gelu")
            self.drop = layers.Dropout(drop_rate)
            self.cat = layers.Concatenate(axis=1)

        def call(self, x):
            input = x
            channels = x.shape[1]  # x shape : NCF
            x = self.norm(x)
            output_channels = []
            for i in range(channels):
                c = self.mlp(x[:, :, i])
                c = layers.Reshape([1, -1])(c)
                output_channels.append(c)
            x = self.cat(output_channels)
            x = self.activation(x)
            x = self.drop(x)
            x = x + input
            return x

    class Encoder(keras.layers.Layer):
        def __init__(self, n_channels, n_features, drop_rate=0.5):
            super().__init__()
            self.attention1 = ConvAttention(n_channels, drop_rate=drop_rate)
            self.mlp1 = ChannelMLP(n_features, drop_rate=drop_rate)
            self.attention2 = ConvAttention(n_channels, drop_rate=drop_rate)
            self.mlp2 = ChannelMLP(n_features, drop_rate=drop_rate)

        def call(self, x):
            x = self.attention1(x)
            x = self.mlp1(x)
            x = self.attention2(x)
            x = self.mlp2(x)
            return x

    class MlpHead(keras.layers.Layer):
        def __init__(self, n_classes, drop_rate=0.5):
            super().__init__()
            self.flatten = layers.Flatten()
            self.drop = layers.Dropout(drop_rate)
            self.linear1 = layers.Dense(
                6 * n_classes,
                kernel_initializer=keras.initializers.RandomNormal(
                    mean=0.0, stddev=0.01, seed=None
                ),
            )
            self.norm = layers.LayerNormalization()
            self.activation = layers.Activation(activation="gelu")
            self.drop2 = layers.Dropout(drop_rate)
            self.linear2 = layers.Dense(
                n_classes,
                kernel_initializer=keras.initializers.RandomNormal(
                    mean=0.0, stddev=0.01, seed=None
                ),
            )

        def call(self, x):
            x = self.flatten(x)
            x = self.drop(x)
            x = self.linear1(x)
            x = self.norm(x)
            x = self.activation(x)
            x = self.drop2(x)
            x = self.linear2(x)
            return x

    def create_ssvepformer(
        input_shape, fs, resolution, fq_band, n_channels, n_classes, drop_rate
    ):
        nfft = round(fs / resolution)
        fft_start = int(fq_band[0] / resolution)
        fft_end = int(fq_band[1] / resolution) + 1
        n_features = fft_end - fft_start

        model = keras.Sequential(
            [
                keras.Input(shape=input_shape),
                ComplexSpectrum(nfft, fft_start, fft_end),
                ChannelComb(n_channels=n_channels, drop_rate=drop_rate),
                Encoder(n_channels=n_channels, n_features=n_features, drop_rate=drop_rate),
                Encoder(n_channels=n_channels, n_features=n_features, drop_rate=drop_rate),
                MlpHead(n_classes=n_classes, drop_rate=drop_rate),
                layers.Activation(activation="softmax"),
            ]
        )

        return model

    # Training settings same as the original paper
    BATCH_SIZE = 32  # 128 in the example
    EPOCHS = 1  # 100
    LR = 0.001  # learning rate
    WD = 0.001  # weight decay
    MOMENTUM = 0.9
    DROP_RATE = 0.5

    resolution = 0.25

    def concatenate_subjects(x, y, fold):
        X = np.concatenate([x[idx] for idx in fold], axis=-1)
        Y = np.concatenate([y[idx] for idx in fold], axis=-1)
        X = X.transpose((2, 1, 0))  # trials x channels x samples
        return X, Y - 1  # transform labels to values from 0...11

    def evaluate_subject(
        x_train,
        y_train,
        x_val,
        y_val,
        fs=256,
        resolution=0.25,
        band=[8, 64],
        channels=8,
        n_classes=12,
        drop_rate=DROP_RATE,
    ):

        train_dataset = (
            tf.data.Dataset.from_tensor_slices((x_train, y_train))
            .batch(BATCH_SIZE)
            .prefetch(tf.data.AUTOTUNE)
        )

        test_dataset = (
            tf.data.Dataset.from_tensor_slices((x_val, y_val))
            .batch(BATCH_SIZE)
            .prefetch(tf.data.AUTOTUNE)
        )

        model = create_ssvepformer(
            input_shape, fs, resolution, band, channels, n_classes, drop_rate
        )
        sgd = keras.optimizers.SGD(learning_rate=LR, momentum=MOMENTUM, weight_decay=WD)

        model.compile(
            loss="sparse_categorical_crossentropy",
            optimizer=sgd,
            metrics=["accuracy"],
            jit_compile=True,
        )

        history = model.fit(
            train_dataset,
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            validation_data=test_dataset,
            verbose=0,
        )
        assert np.isfinite(history.history["val_loss"]).all()
        loss, acc = model.evaluate(test_dataset)
        return acc * 100

    channels = X.shape[2]
    samples = X.shape[1]
    input_shape = (channels, samples)
    n_classes = 12

    model = create_ssvepformer(
        input_shape, fs, resolution, band, channels, n_classes, DROP_RATE
    )
    model.summary()
    assert model.output_shape == (None, 12)

    # The spectrum layer against numpy: bins 32..256 of a 1024-point rfft, divided by the
    # number of samples, real parts then imaginary parts.
    spectrum = model.layers[0]
    x = np.random.default_rng(1).normal(size=(2, 8, 256)).astype(np.float32)
    full = np.fft.rfft(x, n=1024, axis=-1)[:, :, 32:257] / 256
    np.testing.assert_allclose(np.asarray(spectrum(x)),
                               np.concatenate([full.real, full.imag], -1), atol=2e-5)

    accs = np.zeros(10)

    for subject in range(1):  # range(10) in the example
        print(f"Testing subject: {subject+ 1}")

        # create train / test folds
        folds = np.delete(np.arange(10), subject)
        train_index = folds
        test_index = [subject]

        # create data split for each subject
        x_train, y_train = concatenate_subjects(X, Y, train_index)
        x_val, y_val = concatenate_subjects(X, Y, test_index)
        assert x_train.shape == (216, 8, 256) and set(y_val.tolist()) == set(range(12))

        # train and evaluate a fold and compute the time it takes
        acc = evaluate_subject(x_train, y_train, x_val, y_val)

        accs[subject] = acc

    print(f"\nAccuracy Across Subjects: {accs.mean()} % std: {np.std(accs)}")
    assert 0 <= accs[0] <= 100
