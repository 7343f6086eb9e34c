"""keras.io example "Video Classification with a CNN-RNN Architecture"
(examples/vision/video_classification.py).

The Keras 3 code as written (`import keras`): `load_video` (center square crops, resize, BGR to
RGB by `frame[:, :, [2, 1, 0]]`), an InceptionV3 feature extractor (`include_top=False,
pooling="avg"`) behind `inception_v3.preprocess_input` on a model Input, a `StringLookup(
num_oov_indices=0, vocabulary=np.unique(...))` of the tags read with
`keras.ops.convert_to_numpy(label_processor(labels[..., None]))`, per-frame `predict` into
padded feature arrays with bool frame masks, the sequence model (`GRU(16,
return_sequences=True)(features, mask=mask_input)` with a bool mask `Input`, GRU, Dropout,
Dense), a best-only `ModelCheckpoint("...ckpt.weights.h5")` read back with `load_weights`,
`validation_split`, evaluate, and `sequence_prediction` on one test video.

Replaced: the UCF101 subset (`ucf101_top5.tar.gz`) by generated `.npy` frame stacks; OpenCV's
`cv2.VideoCapture`/`cv2.resize` (not installed) by a stand-in `cv2` object with those two names
(frames from the `.npy` file, resized with Pillow), so `load_video` runs as written; pandas'
`read_csv` by a stand-in with the columns the example reads (`len`, `df[col].values`,
`sample`); `weights="imagenet"` by `None`; imageio's GIF by Pillow's; IPython display left out.
Sizes cut: IMG_SIZE 224 -> 75 (InceptionV3's smallest), MAX_SEQ_LENGTH 20 -> 4, EPOCHS 10 ->
1, 6 training and 3 test videos of 3 or 6 frames.

Checked: the frame masks follow each video's length (padding masked); masked time steps do not
change the GRU model's prediction (the padded features replaced by noise give the same
probabilities); the checkpoint's weights equal the trained ones after `load_weights`.
"""

import csv
import os
import types

import numpy as np


class _Column:
    def __init__(self, values):
        self.values = np.asarray(values)

    def __array__(self, dtype=None, copy=None):  # np.unique(df["tag"])
        return self.values if dtype is None else self.values.astype(dtype)


class _Frame:
    """The part of a pandas DataFrame the example reads."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, column):
        return _Column([row[column] for row in self.rows])

    def sample(self, n):
        return self.rows[:n]


def _read_csv(path):  # pd.read_csv
    with open(path) as f:
        return _Frame(list(csv.DictReader(f)))


class _VideoCapture:
    """cv2.VideoCapture over a `.npy` stack of BGR frames."""

    def __init__(self, path):
        self.frames = list(np.load(path))

    def read(self):
        return (True, self.frames.pop(0)) if self.frames else (False, None)

    def release(self):
        self.frames = []


def _resize(frame, size):  # cv2.resize(frame, (width, height))
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.BILINEAR))


def _write_ucf101(root, rng):
    tags = ["CricketShot", "PlayingCello", "Punch", "ShavingBeard", "TennisSwing"]
    for split, count in (("train", 6), ("test", 3)):
        os.makedirs(os.path.join(root, split))
        with open(os.path.join(root, f"{split}.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["video_name", "tag"])
            for i in range(count):
                name = f"v_{tags[i % 5]}_g0{i}_c01.avi"
                frames = rng.integers(0, 256, (3 + 3 * (i % 2), 40, 50, 3), dtype=np.uint8)
                with open(os.path.join(root, split, name), "wb") as video:
                    np.save(video, frames)
                writer.writerow([name, tags[i % 5]])


def test_video_classification(tmp_path, monkeypatch):
    from PIL import Image

    from kgraph import keras

    _write_ucf101(str(tmp_path), np.random.default_rng(0))
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    cv2 = types.SimpleNamespace(VideoCapture=_VideoCapture, resize=_resize)
    pd = types.SimpleNamespace(read_csv=_read_csv)

    IMG_SIZE = 75  # 224
    BATCH_SIZE = 64
    EPOCHS = 1  # 10

    MAX_SEQ_LENGTH = 4  # 20
    NUM_FEATURES = 2048

    train_df = pd.read_csv("train.csv")
    test_df = pd.read_csv("test.csv")

    print(f"Total videos for training: {len(train_df)}")
    print(f"Total videos for testing: {len(test_df)}")

    train_df.sample(10)

    def crop_center_square(frame):
        y, x = frame.shape[0:2]
        min_dim = min(y, x)
        start_x = (x // 2) - (min_dim // 2)
        start_y = (y // 2) - (min_dim // 2)
        return frame[start_y : start_y + min_dim, start_x : start_x + min_dim]

    def load_video(path, max_frames=0, resize=(IMG_SIZE, IMG_SIZE)):
        cap = cv2.VideoCapture(path)
        frames = []
        try:
            while True:
                ret, frame = cap.read()
                if not ret:
                    break
                frame = crop_center_square(frame)
                frame = cv2.resize(frame, resize)
                frame = frame[:, :, [2, 1, 0]]
                frames.append(frame)

                if len(frames) == max_frames:
                    break
        finally:
            cap.release()
        return np.array(frames)

    def build_feature_extractor():
        feature_extractor = keras.applications.InceptionV3(
            weights=None,  # "imagenet"
            include_top=False,
            pooling="avg",
            input_shape=(IMG_SIZE, IMG_SIZE, 3),
        )
        preprocess_input = keras.applications.inception_v3.preprocess_input

        inputs = keras.Input((IMG_SIZE, IMG_SIZE, 3))
        preprocessed = preprocess_input(inputs)

        outputs = feature_extractor(preprocessed)
        return keras.Model(inputs, outputs, name="feature_extractor")

    feature_extractor = build_feature_extractor()

    label_processor = keras.layers.StringLookup(
        num_oov_indices=0, vocabulary=np.unique(train_df["tag"])
    )
    print(label_processor.get_vocabulary())

    def prepare_all_videos(df, root_dir):
        num_samples = len(df)
        video_paths = df["video_name"].values.tolist()
        labels = df["tag"].values
        labels = keras.ops.convert_to_numpy(label_processor(labels[..., None]))

        # `frame_masks` and `frame_features` are what we will feed to our sequence model.
        # `frame_masks` will contain a bunch of booleans denoting if a timestep is
        # masked with padding or not.
        frame_masks = np.zeros(shape=(num_samples, MAX_SEQ_LENGTH), dtype="bool")
        frame_features = np.zeros(
            shape=(num_samples, MAX_SEQ_LENGTH, NUM_FEATURES), dtype="float32"
        )

        # For each video.
        for idx, path in enumerate(video_paths):
            # Gather all its frames and add a batch dimension.
            frames = load_video(os.path.join(root_dir, path))
            frames = frames[None, ...]

            # Initialize placeholders to store the masks and features of the current video.
            temp_frame_mask = np.zeros(
                shape=(
                    1,
                    MAX_SEQ_LENGTH,
                ),
                dtype="bool",
            )
            temp_frame_features = np.zeros(
                shape=(1, MAX_SEQ_LENGTH, NUM_FEATURES), dtype="float32"
            )

            # Extract features from the frames of the current video.
            for i, batch in enumerate(frames):
                video_length = batch.shape[0]
                length = min(MAX_SEQ_LENGTH, video_length)
                for j in range(length):
                    temp_frame_features[i, j, :] = feature_extractor.predict(
                        batch[None, j, :]
                    )
                temp_frame_mask[i, :length] = 1  # 1 = not masked, 0 = masked

            frame_features[idx,] = temp_frame_features.squeeze()
            frame_masks[idx,] = temp_frame_mask.squeeze()

        return (frame_features, frame_masks), labels

    train_data, train_labels = prepare_all_videos(train_df, "train")
    test_data, test_labels = prepare_all_videos(test_df, "test")

    print(f"Frame features in train set: {train_data[0].shape}")
    print(f"Frame masks in train set: {train_data[1].shape}")

    def get_sequence_model():
        class_vocab = label_processor.get_vocabulary()

        frame_features_input = keras.Input((MAX_SEQ_LENGTH, NUM_FEATURES))
        mask_input = keras.Input((MAX_SEQ_LENGTH,), dtype="bool")

        x = keras.layers.GRU(16, return_sequences=True)(
            frame_features_input, mask=mask_input
        )
        x = keras.layers.GRU(8)(x)
        x = keras.layers.Dropout(0.4)(x)
        x = keras.layers.Dense(8, activation="relu")(x)
        output = keras.layers.Dense(len(class_vocab), activation="softmax")(x)

        rnn_model = keras.Model([frame_features_input, mask_input], output)

        rnn_model.compile(
            loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"]
        )
        return rnn_model

    def run_experiment():
        filepath = str(tmp_path / "video_classifier" / "ckpt.weights.h5")  # /tmp/...
        checkpoint = keras.callbacks.ModelCheckpoint(
            filepath, save_weights_only=True, save_best_only=True, verbose=1
        )

        seq_model = get_sequence_model()
        history = seq_model.fit(
            [train_data[0], train_data[1]],
            train_labels,
            validation_split=0.3,
            epochs=EPOCHS,
            callbacks=[checkpoint],
        )

        trained = [w.numpy().copy() for w in seq_model.weights]
        seq_model.load_weights(filepath)
        for w, t in zip(seq_model.weights, trained):  # one epoch: the best is the last
            np.testing.assert_array_equal(w.numpy(), t)
        _, accuracy = seq_model.evaluate([test_data[0], test_data[1]], test_labels)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")

        return history, seq_model

    _, sequence_model = run_experiment()

    def prepare_single_video(frames):
        frames = frames[None, ...]
        frame_mask = np.zeros(
            shape=(
                1,
                MAX_SEQ_LENGTH,
            ),
            dtype="bool",
        )
        frame_features = np.zeros(shape=(1, MAX_SEQ_LENGTH, NUM_FEATURES), dtype="float32")

        for i, batch in enumerate(frames):
            video_length = batch.shape[0]
            length = min(MAX_SEQ_LENGTH, video_length)
            for j in range(length):
                frame_features[i, j, :] = feature_extractor.predict(batch[None, j, :])
            frame_mask[i, :length] = 1  # 1 = not masked, 0 = masked

        return frame_features, frame_mask

    printed = []

    def sequence_prediction(path):
        class_vocab = label_processor.get_vocabulary()

        frames = load_video(os.path.join("test", path))
        frame_features, frame_mask = prepare_single_video(frames)
        probabilities = sequence_model.predict([frame_features, frame_mask])[0]

        for i in np.argsort(probabilities)[::-1]:
            print(f"  {class_vocab[i]}: {probabilities[i] * 100:5.2f}%")
            printed.append(class_vocab[i])
        return frames

    def to_gif(images):  # imageio.mimsave in the example
        converted_images = images.astype(np.uint8)
        frames = [Image.fromarray(f) for f in converted_images]
        frames[0].save("animation.gif", save_all=True, append_images=frames[1:], duration=100)
        return "animation.gif"

    test_video = np.random.choice(test_df["video_name"].values.tolist())
    print(f"Test video path: {test_video}")
    test_frames = sequence_prediction(test_video)
    to_gif(test_frames[:MAX_SEQ_LENGTH])

    # masks: the first min(length, 4) steps of each video
    lengths = [3 + 3 * (i % 2) for i in range(6)]
    np.testing.assert_array_equal(train_data[1],
                                  [[j < min(n, 4) for j in range(4)] for n in lengths])
    assert train_labels.reshape(-1).tolist() == [0, 1, 2, 3, 4, 0]  # (N, 1), as Keras
    assert sorted(printed) == sorted(label_processor.get_vocabulary())
    assert test_frames.shape == (3, 75, 75, 3) and os.path.exists("animation.gif")
    # masked steps do not count: noise in the padding leaves the prediction unchanged
    features, masks = test_data[0][:1].copy(), test_data[1][:1]
    noisy = features.copy()
    noisy[0, 3] = np.random.default_rng(1).normal(size=NUM_FEATURES)
    np.testing.assert_allclose(sequence_model.predict([noisy, masks], verbose=0),
                               sequence_model.predict([features, masks], verbose=0),
                               rtol=1e-5, atol=1e-6)
