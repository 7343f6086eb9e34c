"""keras.io example "Audio Classification with the STFTSpectrogram layer" (examples/audio/stft.py).

The example's code as written (Keras 3 source) with `import keras; from keras import layers`
swapped for kgraph, up to the 2D model: `scipy.io.wavfile.read` + `scipy.signal.resample` to
16 kHz, `layers.STFTSpectrogram` called eagerly on one clip (the single spectrogram, and three
`padding="same"`, `expand_dims=True` bandwidths concatenated with numpy, as the plot functions
compute them), then the 1D model: a Sequential from `InputLayer((None, 1))` (an open signal
length) through a non-trainable log `STFTSpectrogram`, Conv1D/LayerNormalization/MaxPooling1D,
GlobalMaxPooling1D and Dense layers, `summary`, fit with `EarlyStopping(restore_best_weights)`
and evaluate on the test fold.

Not run (so "partly"): the 2D model. Its three trainable `STFTSpectrogram(padding="same")` on
`Input((None, 1))` need a strided "same" convolution over an open length (kgraph pads from
static lengths) and it uses `keras.applications.MobileNet` (v1, not in kgraph).

The ESC-50 download and its pandas frame are replaced by a generated `meta/esc50.csv` (ESC-10
rows for 10 classes in 5 folds plus non-ESC-10 rows) and 8 kHz WAV clips of 2.5 s (5 s in
ESC-50) read with the csv module in place of pandas; EPOCHS 200 -> 1. The plots are left out.
Checked: the layer's shapes and its log magnitude against numpy's STFT of the same frames.
Marked slow (~6 s: the 1D model's 2.1M-parameter first convolution over 164 frames).
"""

import csv
import os

import numpy as np
import pytest
import scipy.io.wavfile
from scipy.signal import resample


def write_esc50(base, rate=8000, seconds=2.5, seed=0):
    """Stand-in for ESC-50-master/: meta/esc50.csv and audio/*.wav."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(base, "meta"))
    os.makedirs(os.path.join(base, "audio"))
    rows = []
    esc10_targets = [0, 1, 10, 11, 12, 20, 21, 38, 40, 41]
    for fold in range(1, 6):
        for target in esc10_targets + [5, 30]:
            name = f"{fold}-{target}-A-0.wav"
            t = np.arange(int(rate * seconds)) / rate
            wave = 0.3 * np.sin(2 * np.pi * (200 + 40 * target) * t) + \
                0.05 * rng.normal(size=t.shape)
            scipy.io.wavfile.write(os.path.join(base, "audio", name), rate,
                                   (wave * 32767).astype(np.int16))
            rows.append([name, fold, target, f"class{target}", target in esc10_targets,
                         f"src{target}", "A"])
    with open(os.path.join(base, "meta", "esc50.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        writer.writerows(rows)


@pytest.mark.slow
def test_stft(tmp_path, monkeypatch):
    from kgraph import keras
    from kgraph.keras import layers

    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(41)

    BASE_DATA_DIR = "./datasets/esc-50_extracted/ESC-50-master/"
    BATCH_SIZE = 16
    NUM_CLASSES = 10
    EPOCHS = 1  # 200 in the example
    SAMPLE_RATE = 16000
    write_esc50(BASE_DATA_DIR)

    # pd.read_csv, the esc10 filter and the target map, with the csv module
    with open(os.path.join(BASE_DATA_DIR, "meta", "esc50.csv")) as f:
        pd_data = [row for row in csv.DictReader(f) if row["esc10"] == "True"]
    targets = sorted({int(row["target"]) for row in pd_data})
    assert len(targets) == NUM_CLASSES
    old_target_to_new_target = {old: new for new, old in enumerate(targets)}
    for row in pd_data:
        row["target"] = old_target_to_new_target[int(row["target"])]

    def read_wav_file(path, target_sr=SAMPLE_RATE):
        sr, wav = scipy.io.wavfile.read(os.path.join(BASE_DATA_DIR, "audio", path))
        wav = wav.astype(np.float32) / 32768.0  # normalize to [-1, 1]
        num_samples = int(len(wav) * target_sr / sr)  # resample to 16 kHz
        wav = resample(wav, num_samples)
        return wav[:, None]  # Add a channel dimension (of size 1)

    def plot_single_spectrogram(sample_wav_data):
        spectrogram = layers.STFTSpectrogram(
            mode="log",
            frame_length=SAMPLE_RATE * 20 // 1000,
            frame_step=SAMPLE_RATE * 5 // 1000,
            fft_length=1024,
            trainable=False,
        )(sample_wav_data[None, ...])[0, ...]
        return spectrogram  # plt.imshow(spectrogram.T, ...) in the example

    def plot_multi_bandwidth_spectrogram(sample_wav_data):
        spectrograms = np.concatenate(
            [
                layers.STFTSpectrogram(
                    mode="log",
                    frame_length=SAMPLE_RATE * x // 1000,
                    frame_step=SAMPLE_RATE * 5 // 1000,
                    fft_length=1024,
                    padding="same",
                    expand_dims=True,
                )(sample_wav_data[None, ...])[0, ...]
                for x in [5, 10, 20]
            ],
            axis=-1,
        ).transpose([1, 0, 2])

        # normalize each color channel for better viewing
        mn = spectrograms.min(axis=(0, 1), keepdims=True)
        mx = spectrograms.max(axis=(0, 1), keepdims=True)
        spectrograms = (spectrograms - mn) / (mx - mn)
        return spectrograms  # plt.imshow(spectrograms, ...) in the example

    sample_wav_data = read_wav_file([row["filename"] for row in pd_data][32])
    assert sample_wav_data.shape == (40000, 1)

    single = np.asarray(plot_single_spectrogram(sample_wav_data))
    assert single.shape == ((40000 - 320) // 80 + 1, 513)
    # log magnitude of frame 3 against numpy's DFT of the Hann-windowed frame
    window = scipy.signal.get_window("hann", 320, False)
    frame = sample_wav_data[3 * 80:3 * 80 + 320, 0] * window / np.sqrt(np.sum(window ** 2))
    power = np.abs(np.fft.rfft(frame, 1024)) ** 2
    want = np.log(np.sqrt(np.maximum(power, 1e-7)))  # Keras floors the power at epsilon
    np.testing.assert_allclose(single[3], want, rtol=1e-3, atol=1e-3)

    multi = plot_multi_bandwidth_spectrogram(sample_wav_data)
    assert multi.shape == (513, 40000 // 80, 3) and multi.min() == 0.0 and multi.max() == 1.0

    def read_dataset(df, folds):
        msk = [int(row["fold"]) in folds for row in df]
        filenames = [row["filename"] for row, m in zip(df, msk) if m]
        targets = np.array([row["target"] for row, m in zip(df, msk) if m])
        waves = np.array([read_wav_file(fil) for fil in filenames], dtype=np.float32)
        return waves, targets

    train_x, train_y = read_dataset(pd_data, [1, 2, 3])
    valid_x, valid_y = read_dataset(pd_data, [4])
    test_x, test_y = read_dataset(pd_data, [5])
    assert train_x.shape == (30, 40000, 1) and test_x.shape == (10, 40000, 1)

    model1d = keras.Sequential(
        [
            layers.InputLayer((None, 1)),
            layers.STFTSpectrogram(
                mode="log",
                frame_length=SAMPLE_RATE * 40 // 1000,
                frame_step=SAMPLE_RATE * 15 // 1000,
                trainable=False,
            ),
            layers.Conv1D(64, 64, activation="relu"),
            layers.Conv1D(128, 16, activation="relu"),
            layers.LayerNormalization(),
            layers.MaxPooling1D(4),
            layers.Conv1D(128, 8, activation="relu"),
            layers.Conv1D(256, 8, activation="relu"),
            layers.Conv1D(512, 4, activation="relu"),
            layers.LayerNormalization(),
            layers.Dropout(0.5),
            layers.GlobalMaxPooling1D(),
            layers.Dense(256, activation="relu"),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="model_1d_non_trainble_stft",
    )
    model1d.compile(
        optimizer=keras.optimizers.Adam(1e-5),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model1d.summary()
    stft_layer = model1d.layers[0]
    assert stft_layer.trainable_weights == [] and len(stft_layer.weights) == 2

    history_model1d = model1d.fit(
        train_x,
        train_y,
        batch_size=BATCH_SIZE,
        validation_data=(valid_x, valid_y),
        epochs=EPOCHS,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=EPOCHS,
                restore_best_weights=True,
            )
        ],
    )
    assert set(history_model1d.history) >= {"accuracy", "val_accuracy", "loss", "val_loss"}

    _, test_acc = model1d.evaluate(test_x, test_y)
    print(f"1D model wit non-trainable STFT -> Test Accuracy: {test_acc * 100:.2f}%")
    assert 0.0 <= test_acc <= 1.0
