"""keras.io example "OCR model for reading Captchas" (examples/vision/captcha_ocr.py).

The Keras 3 source with `import kgraph as tf` and `from kgraph import keras` (`ops`,
`layers`); as written: the file listing and labels from the PNG names, the character set and
max length, `StringLookup` char maps (and the inverse), `split_data` (`ops.arange`,
`keras.random.shuffle` whose result the example drops, numpy fancy indexing), the
`ops.image.resize` and `ops.transpose` steps of `encode_single_sample`, `tf.data` batches of
`{"image", "label"}` dicts, the CTC endpoint layer (`ops.shape` of the traced batch cast to
int64 into `ops.ones`, `add_loss`), the conv + bidirectional LSTM model on
`Input(shape=(None,), dtype="float32")` labels, `EarlyStopping(restore_best_weights=True)`,
the prediction model from `model.input[0]`, and `decode_batch_predictions` with
`ops.ctc_decode(pred, sequence_lengths=..., strategy="greedy")` on a validation batch.

Replaced: the captcha download by generated PNGs named by their 5-character labels; in
`encode_single_sample`, `tf.io.read_file` + `decode_png` + `convert_image_dtype` by Pillow
(grayscale, /255) and `tf.strings.unicode_split` by `list(label)`; the example's own
`ctc_batch_cost` (TensorFlow's `tf.compat.v1.nn.ctc_loss` on a `SparseTensor` from
`ctc_label_dense_to_sparse`, with `tf.compat.v1.scan`/`boolean_mask`/`gather_nd`) by
`keras.backend.ctc_batch_cost`, the tf.keras 2 helper it copies (log of the softmax plus
epsilon, blank last); `tf.sparse.to_dense` of the already dense decoded paths (it fails on a
dense tensor in TensorFlow too) left out, its result unused; `tf.strings.reduce_join` by a
join of the looked-up characters. Plots left out. 64 images of 100x24 (200x50 halved: 25 CTC
steps), epochs 100 -> 1. Marked slow (~10 s).
"""
import os

import numpy as np
import pytest

CHARS = "2345678bcdefgmnpwxy"


def _write_captchas(folder, count=64, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for _ in range(count):
        label = "".join(rng.choice(list(CHARS), 5))
        pixels = rng.integers(0, 256, (50, 200, 4), dtype=np.uint8)  # RGBA, as the dataset
        Image.fromarray(pixels, "RGBA").save(os.path.join(folder, label + ".png"))


@pytest.mark.slow
def test_captcha_ocr(tmp_path, monkeypatch):
    from pathlib import Path

    from PIL import Image

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers, ops

    monkeypatch.chdir(tmp_path)
    _write_captchas("captcha_images_v2")
    keras.utils.set_random_seed(1)

    data_dir = Path("./captcha_images_v2/")
    images = sorted(list(map(str, list(data_dir.glob("*.png")))))
    labels = [img.split(os.path.sep)[-1].split(".png")[0] for img in images]
    characters = set(char for label in labels for char in label)
    characters = sorted(list(characters))

    batch_size = 16
    img_width = 100  # 200 x 50 as written, halved
    img_height = 24
    downsample_factor = 4
    max_length = max([len(label) for label in labels])
    assert downsample_factor == 4 and max_length == 5

    char_to_num = layers.StringLookup(vocabulary=list(characters), mask_token=None)
    num_to_char = layers.StringLookup(
        vocabulary=char_to_num.get_vocabulary(), mask_token=None, invert=True
    )

    def split_data(images, labels, train_size=0.9, shuffle=True):
        size = len(images)
        indices = ops.arange(size)
        if shuffle:
            keras.random.shuffle(indices)
        train_samples = int(size * train_size)
        x_train, y_train = images[indices[:train_samples]], labels[indices[:train_samples]]
        x_valid, y_valid = images[indices[train_samples:]], labels[indices[train_samples:]]
        return x_train, x_valid, y_train, y_valid

    x_train, x_valid, y_train, y_valid = split_data(np.array(images), np.array(labels))
    assert len(x_train) == 57 and len(x_valid) == 7

    def encode_single_sample(img_path, label):
        # stand-in for read_file + decode_png(channels=1) + convert_image_dtype(float32)
        img = np.asarray(Image.open(img_path).convert("L"), "float32")[:, :, None] / 255.0
        img = ops.image.resize(img, [img_height, img_width])
        img = ops.transpose(img, axes=[1, 0, 2])
        label = char_to_num(list(label))  # tf.strings.unicode_split stand-in
        return {"image": img, "label": label}

    def make_dataset(x, y):
        samples = [encode_single_sample(p, label) for p, label in zip(x, y)]
        return tf.data.Dataset.from_tensor_slices(
            {key: np.stack([np.asarray(s[key]) for s in samples]) for key in ("image", "label")})

    train_dataset = (
        make_dataset(x_train, y_train).batch(batch_size).prefetch(buffer_size=tf.data.AUTOTUNE)
    )
    validation_dataset = (
        make_dataset(x_valid, y_valid).batch(batch_size).prefetch(buffer_size=tf.data.AUTOTUNE)
    )

    class CTCLayer(layers.Layer):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.loss_fn = keras.backend.ctc_batch_cost  # the example's own copy of it

        def call(self, y_true, y_pred):
            batch_len = ops.cast(ops.shape(y_true)[0], dtype="int64")
            input_length = ops.cast(ops.shape(y_pred)[1], dtype="int64")
            label_length = ops.cast(ops.shape(y_true)[1], dtype="int64")

            input_length = input_length * ops.ones(shape=(batch_len, 1), dtype="int64")
            label_length = label_length * ops.ones(shape=(batch_len, 1), dtype="int64")

            loss = self.loss_fn(y_true, y_pred, input_length, label_length)
            self.add_loss(loss)
            return y_pred

    def build_model():
        input_img = layers.Input(shape=(img_width, img_height, 1), name="image", dtype="float32")
        labels = layers.Input(name="label", shape=(None,), dtype="float32")
        x = layers.Conv2D(32, (3, 3), activation="relu", kernel_initializer="he_normal",
                          padding="same", name="Conv1")(input_img)
        x = layers.MaxPooling2D((2, 2), name="pool1")(x)
        x = layers.Conv2D(64, (3, 3), activation="relu", kernel_initializer="he_normal",
                          padding="same", name="Conv2")(x)
        x = layers.MaxPooling2D((2, 2), name="pool2")(x)
        new_shape = ((img_width // 4), (img_height // 4) * 64)
        x = layers.Reshape(target_shape=new_shape, name="reshape")(x)
        x = layers.Dense(64, activation="relu", name="dense1")(x)
        x = layers.Dropout(0.2)(x)
        x = layers.Bidirectional(layers.LSTM(128, return_sequences=True, dropout=0.25))(x)
        x = layers.Bidirectional(layers.LSTM(64, return_sequences=True, dropout=0.25))(x)
        x = layers.Dense(
            len(char_to_num.get_vocabulary()) + 1, activation="softmax", name="dense2"
        )(x)
        output = CTCLayer(name="ctc_loss")(labels, x)
        model = keras.models.Model(
            inputs=[input_img, labels], outputs=output, name="ocr_model_v1"
        )
        opt = keras.optimizers.Adam()
        model.compile(optimizer=opt)
        return model

    model = build_model()
    model.summary()
    classes = len(char_to_num.get_vocabulary()) + 1
    # conv 320 + 18,496; dense1 24,640; BiLSTMs 197,632 + 164,352; dense2 129 * classes
    assert model.count_params() == 405_440 + 129 * classes

    epochs = 1
    early_stopping_patience = 10
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=early_stopping_patience, restore_best_weights=True
    )
    history = model.fit(
        train_dataset,
        validation_data=validation_dataset,
        epochs=epochs,
        callbacks=[early_stopping],
    )
    assert np.isfinite(history.history["loss"][0]) and np.isfinite(history.history["val_loss"][0])

    prediction_model = keras.models.Model(
        model.input[0], model.get_layer(name="dense2").output
    )
    prediction_model.summary()

    def decode_batch_predictions(pred):
        input_len = np.ones(pred.shape[0]) * pred.shape[1]
        results = ops.ctc_decode(pred, sequence_lengths=input_len, strategy="greedy")[0][0]
        output_text = []
        for res in results:
            res = "".join(np.asarray(num_to_char(res)).astype(str))  # tf.strings.reduce_join
            output_text.append(res)
        return output_text

    for batch in validation_dataset.take(1):
        batch_images = batch["image"]
        batch_labels = batch["label"]

        preds = prediction_model.predict(batch_images)
        pred_texts = decode_batch_predictions(preds)

        orig_texts = []
        for label in batch_labels:
            label = "".join(np.asarray(num_to_char(label)).astype(str))
            orig_texts.append(label)

    assert preds.shape == (7, img_width // 4, classes)
    assert len(pred_texts) == 7 and orig_texts == list(y_valid)
