"""keras.io example "Image segmentation with a U-Net-like architecture"
(examples/vision/oxford_pets_image_segmentation.py).

The example's code as written, `from tensorflow import keras` (and `tensorflow.keras.layers`,
`tensorflow.keras.preprocessing.image.load_img`) swapped for kgraph: the sorted `images/*.jpg`
and `annotations/trimaps/*.png` path lists, the `keras.utils.Sequence` that loads batches with
`load_img(..., target_size=...)` and `color_mode="grayscale"` and shifts the trimap labels
1..3 to 0..2, the Xception-style U-Net (SeparableConv2D down blocks, Conv2DTranspose and
UpSampling2D up blocks, residual projections), `keras.backend.clear_session()`, the seeded
`random.Random(1337)` split, RMSprop with sparse categorical crossentropy, `ModelCheckpoint`
to `oxford_segmentation.h5` with `save_best_only`, prediction over the validation Sequence and
the argmax mask turned into an image with `array_to_img`. The Oxford Pets download is replaced
by 12 JPEGs of random pixels and 12 PNG trimaps of random labels 1..3 (varied sizes, resized by
`load_img`) written with Pillow; 160x160 as written; batch_size 32 -> 4, val_samples 1000 -> 4,
15 epochs -> 1. The IPython `display` calls are left out (the images they show are built).
Marked slow.
"""
import os

import numpy as np
import pytest


def _oxford_pets(count=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    os.makedirs("images")
    os.makedirs(os.path.join("annotations", "trimaps"))
    for i in range(count):
        shape = (120 + 4 * i, 140)
        pixels = rng.integers(0, 256, shape + (3,)).astype("uint8")
        Image.fromarray(pixels).save(os.path.join("images", f"pet_{i}.jpg"))
        trimap = rng.integers(1, 4, shape).astype("uint8")
        Image.fromarray(trimap).save(os.path.join("annotations", "trimaps", f"pet_{i}.png"))
    with open(os.path.join("annotations", "trimaps", "._pet_0.png"), "wb") as f:
        f.write(b"\x00")  # macOS resource fork, skipped by the example's filter


@pytest.mark.slow
def test_oxford_pets_image_segmentation(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    _oxford_pets()

    input_dir = "images/"
    target_dir = "annotations/trimaps/"
    img_size = (160, 160)
    num_classes = 3
    batch_size = 4

    input_img_paths = sorted(
        [
            os.path.join(input_dir, fname)
            for fname in os.listdir(input_dir)
            if fname.endswith(".jpg")
        ]
    )
    target_img_paths = sorted(
        [
            os.path.join(target_dir, fname)
            for fname in os.listdir(target_dir)
            if fname.endswith(".png") and not fname.startswith(".")
        ]
    )
    print("Number of samples:", len(input_img_paths))
    assert len(input_img_paths) == len(target_img_paths) == 12

    from kgraph.keras.preprocessing.image import load_img
    import PIL
    from PIL import ImageOps

    img = PIL.ImageOps.autocontrast(load_img(target_img_paths[9]))
    assert img.mode == "RGB"

    from kgraph import keras
    from kgraph.keras.preprocessing.image import load_img

    class OxfordPets(keras.utils.Sequence):
        """Helper to iterate over the data (as Numpy arrays)."""

        def __init__(self, batch_size, img_size, input_img_paths, target_img_paths):
            self.batch_size = batch_size
            self.img_size = img_size
            self.input_img_paths = input_img_paths
            self.target_img_paths = target_img_paths

        def __len__(self):
            return len(self.target_img_paths) // self.batch_size

        def __getitem__(self, idx):
            """Returns tuple (input, target) correspond to batch #idx."""
            i = idx * self.batch_size
            batch_input_img_paths = self.input_img_paths[i : i + self.batch_size]
            batch_target_img_paths = self.target_img_paths[i : i + self.batch_size]
            x = np.zeros((self.batch_size,) + self.img_size + (3,), dtype="float32")
            for j, path in enumerate(batch_input_img_paths):
                img = load_img(path, target_size=self.img_size)
                x[j] = img
            y = np.zeros((self.batch_size,) + self.img_size + (1,), dtype="uint8")
            for j, path in enumerate(batch_target_img_paths):
                img = load_img(path, target_size=self.img_size, color_mode="grayscale")
                y[j] = np.expand_dims(img, 2)
                # Ground truth labels are 1, 2, 3. Subtract one to make them 0, 1, 2:
                y[j] -= 1
            return x, y

    from kgraph.keras import layers

    def get_model(img_size, num_classes):
        inputs = keras.Input(shape=img_size + (3,))

        x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)

        previous_block_activation = x  # Set aside residual

        for filters in [64, 128, 256]:
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)

            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)

            x = layers.MaxPooling2D(3, strides=2, padding="same")(x)

            residual = layers.Conv2D(filters, 1, strides=2, padding="same")(
                previous_block_activation
            )
            x = layers.add([x, residual])  # Add back residual
            previous_block_activation = x  # Set aside next residual

        for filters in [256, 128, 64, 32]:
            x = layers.Activation("relu")(x)
            x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)

            x = layers.Activation("relu")(x)
            x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)

            x = layers.UpSampling2D(2)(x)

            residual = layers.UpSampling2D(2)(previous_block_activation)
            residual = layers.Conv2D(filters, 1, padding="same")(residual)
            x = layers.add([x, residual])  # Add back residual
            previous_block_activation = x  # Set aside next residual

        outputs = layers.Conv2D(num_classes, 3, activation="softmax", padding="same")(x)

        model = keras.Model(inputs, outputs)
        return model

    keras.backend.clear_session()

    model = get_model(img_size, num_classes)
    model.summary()
    assert model.output_shape == (None, 160, 160, 3)

    import random

    val_samples = 4
    random.Random(1337).shuffle(input_img_paths)
    random.Random(1337).shuffle(target_img_paths)
    train_input_img_paths = input_img_paths[:-val_samples]
    train_target_img_paths = target_img_paths[:-val_samples]
    val_input_img_paths = input_img_paths[-val_samples:]
    val_target_img_paths = target_img_paths[-val_samples:]
    assert [os.path.basename(p)[:-4] for p in val_input_img_paths] == [
        os.path.basename(p)[:-4] for p in val_target_img_paths]

    train_gen = OxfordPets(
        batch_size, img_size, train_input_img_paths, train_target_img_paths
    )
    val_gen = OxfordPets(batch_size, img_size, val_input_img_paths, val_target_img_paths)
    x, y = train_gen[0]
    assert x.shape == (4, 160, 160, 3) and y.shape == (4, 160, 160, 1)
    assert set(np.unique(y)) <= {0, 1, 2}

    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")

    callbacks = [
        keras.callbacks.ModelCheckpoint("oxford_segmentation.h5", save_best_only=True)
    ]

    epochs = 1
    history = model.fit(train_gen, epochs=epochs, validation_data=val_gen,
                        callbacks=callbacks, verbose=0)
    assert set(history.history) == {"loss", "val_loss"}
    assert np.isfinite(history.history["val_loss"][0])
    assert os.path.exists("oxford_segmentation.h5")

    val_gen = OxfordPets(batch_size, img_size, val_input_img_paths, val_target_img_paths)
    val_preds = model.predict(val_gen, verbose=0)
    assert val_preds.shape == (4, 160, 160, 3)
    np.testing.assert_allclose(val_preds.sum(axis=-1), 1.0, rtol=1e-4)

    def display_mask(i):
        """Quick utility to display a model's prediction."""
        mask = np.argmax(val_preds[i], axis=-1)
        mask = np.expand_dims(mask, axis=-1)
        img = PIL.ImageOps.autocontrast(keras.preprocessing.image.array_to_img(mask))
        return img

    i = 3
    img = PIL.ImageOps.autocontrast(load_img(val_target_img_paths[i]))
    assert display_mask(i).size == (160, 160)
