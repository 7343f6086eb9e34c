"""keras.io example "Video Classification with Transformers" (examples/vision/
video_transformers.py).

The stored source (TensorFlow-era: `from tensorflow.keras import layers; from tensorflow import
keras; import tensorflow as tf`) with those imports swapped for kgraph, as written: the
`CenterCrop` of each frame (`layer(frame[None, ...]).numpy().squeeze()`), `load_video` over
`cv2.VideoCapture` with the BGR -> RGB flip, the DenseNet121 feature extractor (`pooling="avg"`)
behind `densenet.preprocess_input` in a functional model, the `StringLookup` label processor on
`np.unique` of the tags, `PositionalEmbedding` (`tf.range` positions, a `compute_mask` of
`tf.reduce_any(tf.cast(inputs, "bool"), axis=-1)`), the `TransformerEncoder` (mask expanded
with `tf.newaxis` into `MultiHeadAttention`, `tf.nn.gelu` projection), the model on
`keras.Input(shape=(None, None))` (frames and features both open), `ModelCheckpoint(
save_weights_only=True, save_best_only=True)` with `validation_split`, `load_weights`,
`evaluate`, and `predict_action` (per-frame `feature_extractor.predict` for the frames whose mean
is positive, then the classifier's `predict` and `np.argsort`).

Changes: the UCF101 subset and its prepared feature arrays are downloads: the videos are
generated `.npy` frame stacks read by a stand-in `cv2.VideoCapture` and pandas' `read_csv` a
stand-in with the columns read (both from test_example_video_classification.py), the
`*_data.npy`/`*_labels.npy` feature arrays random arrays of their shapes written where the
example loads them; DenseNet121's `weights="imagenet"` is `None`; the checkpoint path
"/tmp/video_classifier" is "video_classifier.weights.h5" (Keras 3 needs the ending); the GIF
(`imageio`, `tensorflow_docs`) and plots are left out. Sizes: IMG_SIZE 128 -> 32,
MAX_SEQ_LENGTH 20 -> 3 (every generated video has at least 3 frames: the example's padding
branch, `np.concatenate(frames, padding)`, passes the padding as the axis and fails in
TensorFlow too), 5 epochs -> 1; NUM_FEATURES stays 1024 (DenseNet121's width). Checked: the
centre crop and colour flip of `load_video`, the label lookup, the frame mask of a padded
video, the checkpoint reloads the best weights, probabilities of `predict_action`. Marked
slow (~5 s).
"""
import os
import types

import numpy as np
import pytest

from test_example_video_classification import _read_csv, _VideoCapture, _write_ucf101


@pytest.mark.slow
def test_video_transformers(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    _write_ucf101(str(tmp_path), np.random.default_rng(0))
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)
    cv2 = types.SimpleNamespace(VideoCapture=_VideoCapture)
    pd = types.SimpleNamespace(read_csv=_read_csv)

    MAX_SEQ_LENGTH = 3  # 20
    NUM_FEATURES = 1024
    IMG_SIZE = 32  # 128

    EPOCHS = 1  # 5

    train_df = pd.read_csv("train.csv")
    test_df = pd.read_csv("test.csv")
    assert (len(train_df), len(test_df)) == (6, 3)

    center_crop_layer = layers.CenterCrop(IMG_SIZE, IMG_SIZE)

    def crop_center(frame):
        cropped = center_crop_layer(frame[None, ...])
        cropped = cropped.numpy().squeeze()
        return cropped

    def load_video(path, max_frames=0):
        cap = cv2.VideoCapture(path)
        frames = []
        try:
            while True:
                ret, frame = cap.read()
                if not ret:
                    break
                frame = crop_center(frame)
                frame = frame[:, :, [2, 1, 0]]
                frames.append(frame)

                if len(frames) == max_frames:
                    break
        finally:
            cap.release()
        return np.array(frames)

    with open("test/" + test_df["video_name"].values[0], "rb") as f:
        raw = np.load(f)
    loaded = load_video(os.path.join("test", test_df["video_name"].values[0]))
    np.testing.assert_allclose(loaded, raw[:, 4:36, 9:41, ::-1])  # 40x50 frames cropped

    def build_feature_extractor():
        feature_extractor = keras.applications.DenseNet121(
            weights=None,  # "imagenet"
            include_top=False,
            pooling="avg",
            input_shape=(IMG_SIZE, IMG_SIZE, 3),
        )
        preprocess_input = keras.applications.densenet.preprocess_input

        inputs = keras.Input((IMG_SIZE, IMG_SIZE, 3))
        preprocessed = preprocess_input(inputs)

        outputs = feature_extractor(preprocessed)
        return keras.Model(inputs, outputs, name="feature_extractor")

    feature_extractor = build_feature_extractor()

    label_processor = keras.layers.StringLookup(
        num_oov_indices=0, vocabulary=np.unique(train_df["tag"]), mask_token=None
    )
    print(label_processor.get_vocabulary())
    assert label_processor.get_vocabulary() == sorted(set(train_df["tag"].values))

    # the prepared-features download: random arrays of its shapes (padded frames are zeros)
    rng = np.random.default_rng(1)
    for split, count in (("train", 12), ("test", 4)):
        data = rng.normal(size=(count, MAX_SEQ_LENGTH, NUM_FEATURES)).astype("float32")
        data[::2, -1] = 0.0  # a shorter video: its last frame is padding
        np.save(f"{split}_data.npy", data)
        np.save(f"{split}_labels.npy", rng.integers(0, 5, (count, 1)))

    train_data, train_labels = np.load("train_data.npy"), np.load("train_labels.npy")
    test_data, test_labels = np.load("test_data.npy"), np.load("test_labels.npy")

    class PositionalEmbedding(layers.Layer):
        def __init__(self, sequence_length, output_dim, **kwargs):
            super().__init__(**kwargs)
            self.position_embeddings = layers.Embedding(
                input_dim=sequence_length, output_dim=output_dim
            )
            self.sequence_length = sequence_length
            self.output_dim = output_dim

        def call(self, inputs):
            length = tf.shape(inputs)[1]
            positions = tf.range(start=0, limit=length, delta=1)
            embedded_positions = self.position_embeddings(positions)
            return inputs + embedded_positions

        def compute_mask(self, inputs, mask=None):
            mask = tf.reduce_any(tf.cast(inputs, "bool"), axis=-1)
            return mask

    class TransformerEncoder(layers.Layer):
        def __init__(self, embed_dim, dense_dim, num_heads, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim = embed_dim
            self.dense_dim = dense_dim
            self.num_heads = num_heads
            self.attention = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim, dropout=0.3
            )
            self.dense_proj = keras.Sequential(
                [layers.Dense(dense_dim, activation=tf.nn.gelu), layers.Dense(embed_dim),]
            )
            self.layernorm_1 = layers.LayerNormalization()
            self.layernorm_2 = layers.LayerNormalization()

        def call(self, inputs, mask=None):
            if mask is not None:
                mask = mask[:, tf.newaxis, :]

            attention_output = self.attention(inputs, inputs, attention_mask=mask)
            proj_input = self.layernorm_1(inputs + attention_output)
            proj_output = self.dense_proj(proj_input)
            return self.layernorm_2(proj_input + proj_output)

    def get_compiled_model():
        sequence_length = MAX_SEQ_LENGTH
        embed_dim = NUM_FEATURES
        dense_dim = 4
        num_heads = 1
        classes = len(label_processor.get_vocabulary())

        inputs = keras.Input(shape=(None, None))
        x = PositionalEmbedding(
            sequence_length, embed_dim, name="frame_position_embedding"
        )(inputs)
        x = TransformerEncoder(embed_dim, dense_dim, num_heads, name="transformer_layer")(x)
        x = layers.GlobalMaxPooling1D()(x)
        x = layers.Dropout(0.5)(x)
        outputs = layers.Dense(classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs)

        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        return model

    saved = {}

    def run_experiment():
        filepath = "video_classifier.weights.h5"  # "/tmp/video_classifier"
        checkpoint = keras.callbacks.ModelCheckpoint(
            filepath, save_weights_only=True, save_best_only=True, verbose=1
        )

        model = get_compiled_model()
        history = model.fit(
            train_data,
            train_labels,
            validation_split=0.15,
            epochs=EPOCHS,
            callbacks=[checkpoint],
        )
        saved["history"] = history.history
        saved["trained"] = [w.numpy() for w in model.weights]

        model.load_weights(filepath)
        _, accuracy = model.evaluate(test_data, test_labels)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")

        return model

    trained_model = run_experiment()
    assert set(saved["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for w, want in zip(trained_model.weights, saved["trained"]):  # one epoch: the best
        np.testing.assert_array_equal(w.numpy(), want)
    # a padded (all-zero) frame is masked out of the attention's keys
    video = np.array(test_data[:1])
    video[0, -1] = 0.0
    embedding = trained_model.get_layer("frame_position_embedding")
    np.testing.assert_array_equal(embedding.compute_mask(video), [[True, True, False]])
    np.testing.assert_allclose(trained_model.predict(video, verbose=0).sum(-1), 1.0, rtol=1e-5)

    def prepare_single_video(frames):
        frame_featutes = np.zeros(shape=(1, MAX_SEQ_LENGTH, NUM_FEATURES), dtype="float32")

        if len(frames) < MAX_SEQ_LENGTH:
            diff = MAX_SEQ_LENGTH - len(frames)
            padding = np.zeros((diff, IMG_SIZE, IMG_SIZE, 3))
            frames = np.concatenate(frames, padding)

        frames = frames[None, ...]

        for i, batch in enumerate(frames):
            video_length = batch.shape[1]
            length = min(MAX_SEQ_LENGTH, video_length)
            for j in range(length):
                if np.mean(batch[j, :]) > 0.0:
                    frame_featutes[i, j, :] = feature_extractor.predict(batch[None, j, :])
                else:
                    frame_featutes[i, j, :] = 0.0

        return frame_featutes

    printed = []

    def predict_action(path):
        class_vocab = label_processor.get_vocabulary()

        frames = load_video(os.path.join("test", path))
        frame_features = prepare_single_video(frames)
        probabilities = trained_model.predict(frame_features)[0]

        for i in np.argsort(probabilities)[::-1]:
            print(f"  {class_vocab[i]}: {probabilities[i] * 100:5.2f}%")
            printed.append(class_vocab[i])
        assert abs(float(probabilities.sum()) - 1.0) < 1e-5
        return frames

    test_video = np.random.choice(test_df["video_name"].values.tolist())
    print(f"Test video path: {test_video}")
    test_frames = predict_action(test_video)
    assert test_frames.shape[1:] == (32, 32, 3) and sorted(printed) == sorted(
        label_processor.get_vocabulary())
