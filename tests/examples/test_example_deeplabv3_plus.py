"""keras.io example "Multiclass semantic segmentation using DeepLabV3+"
(examples/vision/deeplabv3_plus.py).

The Keras 3 code as written (last modified 2024/01/05; `import keras; from keras import layers;
from keras import ops; from tensorflow import image as tf_image, data as tf_data`, swapped for
kgraph): globbed image/mask file lists, a `tf_data` pipeline mapping `read_image` (`set_shape`,
`tf_image.resize`) with `num_parallel_calls` and `batch(drop_remainder=True)`, the DeepLabV3+
model (`keras.applications.resnet50.preprocess_input` on the model Input,
`ResNet50(include_top=False, input_tensor=...)`, intermediate outputs by `get_layer(...).output`,
Dilated Spatial Pyramid Pooling with an `AveragePooling2D` over the whole map, dilated 'same'
convolutions (rates 6, 12, 18), `ops.nn.relu` on KerasTensors, bilinear `UpSampling2D` sized
from `.shape`), sparse categorical cross-entropy from logits, and inference with the colormap
from a `.mat` file (`scipy.io.loadmat`), `decode_segmentation_masks` and `get_overlay`.

Replaced: the CIHP download by random JPEG images and grayscale PNG masks written with Pillow
and a generated `human_colormap.mat`; `tf_io.read_file` + `tf_image.decode_png` (TensorFlow
string tensors) by `keras.utils.load_img` + `img_to_array`; `weights="imagenet"` by `None`;
`cv2.addWeighted(image, 0.35, colored_mask, 0.65, 0)` (OpenCV is not installed) by its numpy
definition. Sizes cut: IMAGE_SIZE 512 -> 64, 1000/50 images -> 8/4, 25 epochs -> 1, inference
on 2 images each. The matplotlib figures are left out.

Checked: the output shape (64, 64, 20) per image; the model's parameter count as real Keras
counts it (11,857,236 at 512x512 and at 64x64: no layer's weights depend on the image size); the decoded
mask colours against the colormap. Marked slow (~9 s).
"""

import os
from glob import glob

import numpy as np
import pytest


def _write_cihp(root, rng):
    from PIL import Image
    from scipy.io import savemat

    base = os.path.join(root, "instance-level_human_parsing", "instance-level_human_parsing")
    for folder in ("Images", "Category_ids"):
        os.makedirs(os.path.join(base, "Training", folder))
    for i in range(12):
        image = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
        Image.fromarray(image).save(os.path.join(base, "Training", "Images", f"{i:07d}.jpg"))
        mask = rng.integers(0, 20, (50, 40), dtype=np.uint8)
        Image.fromarray(mask).save(os.path.join(base, "Training", "Category_ids", f"{i:07d}.png"))
    savemat(os.path.join(base, "human_colormap.mat"),
            {"colormap": rng.uniform(0, 1, (20, 3)).round(2)})


@pytest.mark.slow
def test_deeplabv3_plus(tmp_path, monkeypatch):
    from scipy.io import loadmat

    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras import ops
    from kgraph import image as tf_image
    from kgraph import data as tf_data

    _write_cihp(str(tmp_path), np.random.default_rng(0))
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)

    IMAGE_SIZE = 64  # 512
    BATCH_SIZE = 4
    NUM_CLASSES = 20
    DATA_DIR = "./instance-level_human_parsing/instance-level_human_parsing/Training"
    NUM_TRAIN_IMAGES = 8  # 1000
    NUM_VAL_IMAGES = 4  # 50

    train_images = sorted(glob(os.path.join(DATA_DIR, "Images/*")))[:NUM_TRAIN_IMAGES]
    train_masks = sorted(glob(os.path.join(DATA_DIR, "Category_ids/*")))[:NUM_TRAIN_IMAGES]
    val_images = sorted(glob(os.path.join(DATA_DIR, "Images/*")))[
        NUM_TRAIN_IMAGES : NUM_VAL_IMAGES + NUM_TRAIN_IMAGES
    ]
    val_masks = sorted(glob(os.path.join(DATA_DIR, "Category_ids/*")))[
        NUM_TRAIN_IMAGES : NUM_VAL_IMAGES + NUM_TRAIN_IMAGES
    ]

    def decode_png(image_path, channels):
        """Stand-in for `tf_image.decode_png(tf_io.read_file(image_path), channels=...)`: an
        eager uint8 tensor of the file's pixels."""
        import kgraph as tf

        image = keras.utils.load_img(str(image_path),
                                     color_mode="grayscale" if channels == 1 else "rgb")
        return tf.convert_to_tensor(keras.utils.img_to_array(image, dtype="uint8"))

    def read_image(image_path, mask=False):
        if mask:
            image = decode_png(image_path, channels=1)
            image.set_shape([None, None, 1])
            image = tf_image.resize(images=image, size=[IMAGE_SIZE, IMAGE_SIZE])
        else:
            image = decode_png(image_path, channels=3)
            image.set_shape([None, None, 3])
            image = tf_image.resize(images=image, size=[IMAGE_SIZE, IMAGE_SIZE])
        return image

    def load_data(image_list, mask_list):
        image = read_image(image_list)
        mask = read_image(mask_list, mask=True)
        return image, mask

    def data_generator(image_list, mask_list):
        dataset = tf_data.Dataset.from_tensor_slices((image_list, mask_list))
        dataset = dataset.map(load_data, num_parallel_calls=tf_data.AUTOTUNE)
        dataset = dataset.batch(BATCH_SIZE, drop_remainder=True)
        return dataset

    train_dataset = data_generator(train_images, train_masks)
    val_dataset = data_generator(val_images, val_masks)

    print("Train Dataset:", train_dataset)
    print("Val Dataset:", val_dataset)

    def convolution_block(
        block_input,
        num_filters=256,
        kernel_size=3,
        dilation_rate=1,
        use_bias=False,
    ):
        x = layers.Conv2D(
            num_filters,
            kernel_size=kernel_size,
            dilation_rate=dilation_rate,
            padding="same",
            use_bias=use_bias,
            kernel_initializer=keras.initializers.HeNormal(),
        )(block_input)
        x = layers.BatchNormalization()(x)
        return ops.nn.relu(x)

    def DilatedSpatialPyramidPooling(dspp_input):
        dims = dspp_input.shape
        x = layers.AveragePooling2D(pool_size=(dims[-3], dims[-2]))(dspp_input)
        x = convolution_block(x, kernel_size=1, use_bias=True)
        out_pool = layers.UpSampling2D(
            size=(dims[-3] // x.shape[1], dims[-2] // x.shape[2]),
            interpolation="bilinear",
        )(x)

        out_1 = convolution_block(dspp_input, kernel_size=1, dilation_rate=1)
        out_6 = convolution_block(dspp_input, kernel_size=3, dilation_rate=6)
        out_12 = convolution_block(dspp_input, kernel_size=3, dilation_rate=12)
        out_18 = convolution_block(dspp_input, kernel_size=3, dilation_rate=18)

        x = layers.Concatenate(axis=-1)([out_pool, out_1, out_6, out_12, out_18])
        output = convolution_block(x, kernel_size=1)
        return output

    def DeeplabV3Plus(image_size, num_classes):
        model_input = keras.Input(shape=(image_size, image_size, 3))
        preprocessed = keras.applications.resnet50.preprocess_input(model_input)
        resnet50 = keras.applications.ResNet50(
            weights=None, include_top=False, input_tensor=preprocessed  # "imagenet"
        )
        x = resnet50.get_layer("conv4_block6_2_relu").output
        x = DilatedSpatialPyramidPooling(x)

        input_a = layers.UpSampling2D(
            size=(image_size // 4 // x.shape[1], image_size // 4 // x.shape[2]),
            interpolation="bilinear",
        )(x)
        input_b = resnet50.get_layer("conv2_block3_2_relu").output
        input_b = convolution_block(input_b, num_filters=48, kernel_size=1)

        x = layers.Concatenate(axis=-1)([input_a, input_b])
        x = convolution_block(x)
        x = convolution_block(x)
        x = layers.UpSampling2D(
            size=(image_size // x.shape[1], image_size // x.shape[2]),
            interpolation="bilinear",
        )(x)
        model_output = layers.Conv2D(num_classes, kernel_size=(1, 1), padding="same")(x)
        return keras.Model(inputs=model_input, outputs=model_output)

    model = DeeplabV3Plus(image_size=IMAGE_SIZE, num_classes=NUM_CLASSES)
    model.summary()

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.001),
        loss=loss,
        metrics=["accuracy"],
    )

    history = model.fit(train_dataset, validation_data=val_dataset, epochs=1)  # 25

    # Loading the Colormap
    colormap = loadmat(
        "./instance-level_human_parsing/instance-level_human_parsing/human_colormap.mat"
    )["colormap"]
    colormap = colormap * 100
    colormap = colormap.astype(np.uint8)

    def infer(model, image_tensor):
        predictions = model.predict(np.expand_dims((image_tensor), axis=0))
        predictions = np.squeeze(predictions)
        predictions = np.argmax(predictions, axis=2)
        return predictions

    def decode_segmentation_masks(mask, colormap, n_classes):
        r = np.zeros_like(mask).astype(np.uint8)
        g = np.zeros_like(mask).astype(np.uint8)
        b = np.zeros_like(mask).astype(np.uint8)
        for l in range(0, n_classes):
            idx = mask == l
            r[idx] = colormap[l, 0]
            g[idx] = colormap[l, 1]
            b[idx] = colormap[l, 2]
        rgb = np.stack([r, g, b], axis=2)
        return rgb

    def add_weighted(a, alpha, b, beta, gamma):  # cv2.addWeighted: saturating uint8
        mixed = a.astype(np.float64) * alpha + b.astype(np.float64) * beta + gamma
        return np.clip(np.round(mixed), 0, 255).astype(np.uint8)

    def get_overlay(image, colored_mask):
        image = keras.utils.array_to_img(image)
        image = np.array(image).astype(np.uint8)
        overlay = add_weighted(image, 0.35, colored_mask, 0.65, 0)
        return overlay

    results = []

    def plot_predictions(images_list, colormap, model):
        for image_file in images_list:
            image_tensor = read_image(image_file)
            prediction_mask = infer(image_tensor=image_tensor, model=model)
            prediction_colormap = decode_segmentation_masks(prediction_mask, colormap, 20)
            overlay = get_overlay(image_tensor, prediction_colormap)
            results.append((prediction_mask, prediction_colormap, overlay))  # plotted

    plot_predictions(train_images[:2], colormap, model=model)  # [:4]
    plot_predictions(val_images[:2], colormap, model=model)

    assert model.count_params() == 11_857_236
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert model.output_shape == (None, 64, 64, 20)
    for mask, colored, overlay in results:
        assert mask.shape == (64, 64) and colored.shape == overlay.shape == (64, 64, 3)
        np.testing.assert_array_equal(colored, colormap[mask])
