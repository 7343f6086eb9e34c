"""keras.io example "Image classification from scratch"
(examples/vision/image_classification_from_scratch.py).

The example's code as written, `import tensorflow as tf; from tensorflow import keras` swapped
for `import kgraph as tf; from kgraph import keras`: the JFIF-header filter over
`PetImages/{Cat,Dog}` (`tf.compat.as_bytes`), `tf.keras.preprocessing.image_dataset_from_directory`
with `subset="both"`, augmentation applied eagerly to a batch and mapped over the dataset
(`num_parallel_calls=tf.data.AUTOTUNE`), prefetching, the small Xception-like model with
SeparableConv2D residual blocks compiled with `jit_compile=True`, `ModelCheckpoint` per epoch,
and inference on one file with `load_img`/`img_to_array`/`tf.expand_dims`. The Cats vs Dogs
download is replaced by 12 JPEGs of random pixels per class written with Pillow (plus one
corrupted file per class, which the filter deletes); 180x180 as written; batch 128 cut to 8 and
25 epochs to 1. Plots are left out. The last print formats `float(predictions[0][0])`: the
example formats the 1-element array `predictions[0]` with `:.2f`, which numpy refuses with
any backend. Marked slow.
"""
import os

import numpy as np
import pytest


def _pet_images(root, per_class=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("Cat", "Dog"):
        os.makedirs(os.path.join(root, folder))
        for i in range(per_class):
            pixels = rng.integers(0, 256, (200 + 10 * i, 190, 3)).astype("uint8")
            Image.fromarray(pixels).save(os.path.join(root, folder, f"{i}.jpg"))
        with open(os.path.join(root, folder, "broken.jpg"), "wb") as f:
            f.write(b"\x00" * 64)  # no JFIF header: deleted by the example's filter


@pytest.mark.slow
def test_image_classification_from_scratch(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    _pet_images("PetImages")
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    num_skipped = 0
    for folder_name in ("Cat", "Dog"):
        folder_path = os.path.join("PetImages", folder_name)
        for fname in os.listdir(folder_path):
            fpath = os.path.join(folder_path, fname)
            try:
                fobj = open(fpath, "rb")
                is_jfif = tf.compat.as_bytes("JFIF") in fobj.peek(10)
            finally:
                fobj.close()
            if not is_jfif:
                num_skipped += 1
                os.remove(fpath)
    assert num_skipped == 2

    image_size = (180, 180)
    batch_size = 8
    train_ds, val_ds = tf.keras.preprocessing.image_dataset_from_directory(
        "PetImages", validation_split=0.2, subset="both", seed=1337, image_size=image_size,
        batch_size=batch_size)

    for images, labels in train_ds.take(1):
        assert images.shape[1:] == (180, 180, 3) and int(labels[0]) in (0, 1)

    data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
                                          layers.RandomRotation(0.1)])
    for images, _ in train_ds.take(1):
        augmented_images = data_augmentation(images)
        assert augmented_images[0].numpy().astype("uint8").shape == (180, 180, 3)

    train_ds = train_ds.prefetch(buffer_size=32)
    val_ds = val_ds.prefetch(buffer_size=32)

    def make_model(input_shape, num_classes):
        inputs = keras.Input(shape=input_shape)
        x = layers.Rescaling(1.0 / 255)(inputs)
        x = layers.Conv2D(32, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2D(64, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        previous_block_activation = x
        for size in [128, 256, 512, 728]:
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(size, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(size, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
            residual = layers.Conv2D(size, 1, strides=2, padding="same")(
                previous_block_activation)
            x = layers.add([x, residual])
            previous_block_activation = x
        x = layers.SeparableConv2D(1024, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.GlobalAveragePooling2D()(x)
        if num_classes == 2:
            activation = "sigmoid"
            units = 1
        else:
            activation = "softmax"
            units = num_classes
        x = layers.Dropout(0.5)(x)
        outputs = layers.Dense(units, activation=activation)(x)
        return keras.Model(inputs, outputs)

    model = make_model(input_shape=image_size + (3,), num_classes=2)
    train_ds = train_ds.map(lambda img, label: (data_augmentation(img), label),
                            num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)

    epochs = 1
    callbacks = [keras.callbacks.ModelCheckpoint("save_at_{epoch}.keras")]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=["accuracy"], jit_compile=True)
    history = model.fit(train_ds, epochs=epochs, callbacks=callbacks, validation_data=val_ds,
                        verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert os.path.exists("save_at_1.keras")

    img = keras.preprocessing.image.load_img("PetImages/Cat/3.jpg", target_size=image_size)
    img_array = keras.preprocessing.image.img_to_array(img)
    img_array = tf.expand_dims(img_array, 0)
    predictions = model.predict(img_array, verbose=0)
    score = float(predictions[0][0])
    message = f"This image is {100 * (1 - score):.2f}% cat and {100 * score:.2f}% dog."
    assert 0.0 <= score <= 1.0 and message.startswith("This image is")
    reloaded = keras.models.load_model("save_at_1.keras")
    np.testing.assert_allclose(reloaded.predict(img_array, verbose=0), predictions, rtol=1e-5,
                               atol=1e-6)
