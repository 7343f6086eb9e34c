"""keras.io example "Low-light image enhancement using MIRNet" (examples/vision/mirnet.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras; from tensorflow.keras import layers`, swapped for kgraph):
globbed LOL file lists, a tf.data map of `load_data` (`set_shape`, `tf.cast`, the paired
`random_crop` with `tf.random.uniform(shape=(), maxval=tf.shape(...)[1] - IMAGE_SIZE + 1,
dtype=tf.int32)` offsets used as slice bounds) batched with `drop_remainder`, the MIRNet
functional model on `Input(shape=[None, None, 3])` (selective kernel feature fusion with
`tf.reshape` of a KerasTensor and softmax 1x1 convolutions, dual attention units with
`tf.reduce_max`/`tf.reduce_mean`/`tf.expand_dims`/`tf.nn.sigmoid` on KerasTensors,
MaxPooling2D/UpSampling2D residual resizing modules, recursive residual groups), the
Charbonnier loss (`tf.sqrt(tf.square(...) + tf.square(1e-3))`) and a `tf.image.psnr` metric,
`ReduceLROnPlateau(monitor="val_peak_signal_noise_ratio", mode="max")`, and `infer` on
`Image.open` test images with `ImageOps.autocontrast`.

Replaced: the LOL download (gdown) by random PNG pairs written with Pillow in its layout;
`tf.io.read_file` + `tf.image.decode_png` (TensorFlow string tensors) by `keras.utils.load_img`
+ `img_to_array`; `cv2` (imported, unused; not installed) left out. Sizes cut: IMAGE_SIZE 128 ->
32, 485 training pairs -> 12 (MAX_TRAIN_IMAGES 300 -> 8), 15 test pairs -> 3, num_rrg/num_mrb/
channels 3/2/64 -> 1/1/16, epochs 50 -> 1, 6 inference images -> 2. The matplotlib figures are
left out.

Checked: the crops of a pair are the same window (the enhanced image is the low one plus a
constant here); the model keeps the test images' size (not the training crops'); history keys
include the PSNR metric; the Charbonnier loss against numpy.
"""

import os
import random
from glob import glob

import numpy as np


def _write_lol(root, rng):
    from PIL import Image

    for split, count in (("our485", 12), ("eval15", 3)):
        for kind in ("low", "high"):
            os.makedirs(os.path.join(root, "lol_dataset", split, kind))
        for i in range(count):
            low = rng.integers(0, 60, (40, 48, 3), dtype=np.uint8)
            for kind, pixels in (("low", low), ("high", low + 100)):
                Image.fromarray(pixels).save(
                    os.path.join(root, "lol_dataset", split, kind, f"{i + 1}.png"))


def test_mirnet(tmp_path, monkeypatch):
    from PIL import Image, ImageOps

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    _write_lol(str(tmp_path), np.random.default_rng(0))
    monkeypatch.chdir(tmp_path)
    keras.utils.set_random_seed(0)

    random.seed(10)

    IMAGE_SIZE = 32  # 128
    BATCH_SIZE = 4
    MAX_TRAIN_IMAGES = 8  # 300

    def read_image(image_path):
        # tf.io.read_file + tf.image.decode_png(image, channels=3) in the example
        image = tf.convert_to_tensor(keras.utils.img_to_array(
            keras.utils.load_img(str(image_path)), dtype="uint8"))
        image.set_shape([None, None, 3])
        image = tf.cast(image, dtype=tf.float32) / 255.0
        return image

    def random_crop(low_image, enhanced_image):
        low_image_shape = tf.shape(low_image)[:2]
        low_w = tf.random.uniform(
            shape=(), maxval=low_image_shape[1] - IMAGE_SIZE + 1, dtype=tf.int32
        )
        low_h = tf.random.uniform(
            shape=(), maxval=low_image_shape[0] - IMAGE_SIZE + 1, dtype=tf.int32
        )
        enhanced_w = low_w
        enhanced_h = low_h
        low_image_cropped = low_image[
            low_h : low_h + IMAGE_SIZE, low_w : low_w + IMAGE_SIZE
        ]
        enhanced_image_cropped = enhanced_image[
            enhanced_h : enhanced_h + IMAGE_SIZE, enhanced_w : enhanced_w + IMAGE_SIZE
        ]
        return low_image_cropped, enhanced_image_cropped

    def load_data(low_light_image_path, enhanced_image_path):
        low_light_image = read_image(low_light_image_path)
        enhanced_image = read_image(enhanced_image_path)
        low_light_image, enhanced_image = random_crop(low_light_image, enhanced_image)
        return low_light_image, enhanced_image

    def get_dataset(low_light_images, enhanced_images):
        dataset = tf.data.Dataset.from_tensor_slices((low_light_images, enhanced_images))
        dataset = dataset.map(load_data, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(BATCH_SIZE, drop_remainder=True)
        return dataset

    train_low_light_images = sorted(glob("./lol_dataset/our485/low/*"))[:MAX_TRAIN_IMAGES]
    train_enhanced_images = sorted(glob("./lol_dataset/our485/high/*"))[:MAX_TRAIN_IMAGES]

    val_low_light_images = sorted(glob("./lol_dataset/our485/low/*"))[MAX_TRAIN_IMAGES:]
    val_enhanced_images = sorted(glob("./lol_dataset/our485/high/*"))[MAX_TRAIN_IMAGES:]

    test_low_light_images = sorted(glob("./lol_dataset/eval15/low/*"))
    test_enhanced_images = sorted(glob("./lol_dataset/eval15/high/*"))

    train_dataset = get_dataset(train_low_light_images, train_enhanced_images)
    val_dataset = get_dataset(val_low_light_images, val_enhanced_images)

    print("Train Dataset:", train_dataset)
    print("Val Dataset:", val_dataset)

    def selective_kernel_feature_fusion(
        multi_scale_feature_1, multi_scale_feature_2, multi_scale_feature_3
    ):
        channels = list(multi_scale_feature_1.shape)[-1]
        combined_feature = layers.Add()(
            [multi_scale_feature_1, multi_scale_feature_2, multi_scale_feature_3]
        )
        gap = layers.GlobalAveragePooling2D()(combined_feature)
        channel_wise_statistics = tf.reshape(gap, shape=(-1, 1, 1, channels))
        compact_feature_representation = layers.Conv2D(
            filters=channels // 8, kernel_size=(1, 1), activation="relu"
        )(channel_wise_statistics)
        feature_descriptor_1 = layers.Conv2D(
            channels, kernel_size=(1, 1), activation="softmax"
        )(compact_feature_representation)
        feature_descriptor_2 = layers.Conv2D(
            channels, kernel_size=(1, 1), activation="softmax"
        )(compact_feature_representation)
        feature_descriptor_3 = layers.Conv2D(
            channels, kernel_size=(1, 1), activation="softmax"
        )(compact_feature_representation)
        feature_1 = multi_scale_feature_1 * feature_descriptor_1
        feature_2 = multi_scale_feature_2 * feature_descriptor_2
        feature_3 = multi_scale_feature_3 * feature_descriptor_3
        aggregated_feature = layers.Add()([feature_1, feature_2, feature_3])
        return aggregated_feature

    def spatial_attention_block(input_tensor):
        average_pooling = tf.reduce_max(input_tensor, axis=-1)
        average_pooling = tf.expand_dims(average_pooling, axis=-1)
        max_pooling = tf.reduce_mean(input_tensor, axis=-1)
        max_pooling = tf.expand_dims(max_pooling, axis=-1)
        concatenated = layers.Concatenate(axis=-1)([average_pooling, max_pooling])
        feature_map = layers.Conv2D(1, kernel_size=(1, 1))(concatenated)
        feature_map = tf.nn.sigmoid(feature_map)
        return input_tensor * feature_map

    def channel_attention_block(input_tensor):
        channels = list(input_tensor.shape)[-1]
        average_pooling = layers.GlobalAveragePooling2D()(input_tensor)
        feature_descriptor = tf.reshape(average_pooling, shape=(-1, 1, 1, channels))
        feature_activations = layers.Conv2D(
            filters=channels // 8, kernel_size=(1, 1), activation="relu"
        )(feature_descriptor)
        feature_activations = layers.Conv2D(
            filters=channels, kernel_size=(1, 1), activation="sigmoid"
        )(feature_activations)
        return input_tensor * feature_activations

    def dual_attention_unit_block(input_tensor):
        channels = list(input_tensor.shape)[-1]
        feature_map = layers.Conv2D(
            channels, kernel_size=(3, 3), padding="same", activation="relu"
        )(input_tensor)
        feature_map = layers.Conv2D(channels, kernel_size=(3, 3), padding="same")(
            feature_map
        )
        channel_attention = channel_attention_block(feature_map)
        spatial_attention = spatial_attention_block(feature_map)
        concatenation = layers.Concatenate(axis=-1)([channel_attention, spatial_attention])
        concatenation = layers.Conv2D(channels, kernel_size=(1, 1))(concatenation)
        return layers.Add()([input_tensor, concatenation])

    def down_sampling_module(input_tensor):
        channels = list(input_tensor.shape)[-1]
        main_branch = layers.Conv2D(channels, kernel_size=(1, 1), activation="relu")(
            input_tensor
        )
        main_branch = layers.Conv2D(
            channels, kernel_size=(3, 3), padding="same", activation="relu"
        )(main_branch)
        main_branch = layers.MaxPooling2D()(main_branch)
        main_branch = layers.Conv2D(channels * 2, kernel_size=(1, 1))(main_branch)
        skip_branch = layers.MaxPooling2D()(input_tensor)
        skip_branch = layers.Conv2D(channels * 2, kernel_size=(1, 1))(skip_branch)
        return layers.Add()([skip_branch, main_branch])

    def up_sampling_module(input_tensor):
        channels = list(input_tensor.shape)[-1]
        main_branch = layers.Conv2D(channels, kernel_size=(1, 1), activation="relu")(
            input_tensor
        )
        main_branch = layers.Conv2D(
            channels, kernel_size=(3, 3), padding="same", activation="relu"
        )(main_branch)
        main_branch = layers.UpSampling2D()(main_branch)
        main_branch = layers.Conv2D(channels // 2, kernel_size=(1, 1))(main_branch)
        skip_branch = layers.UpSampling2D()(input_tensor)
        skip_branch = layers.Conv2D(channels // 2, kernel_size=(1, 1))(skip_branch)
        return layers.Add()([skip_branch, main_branch])

    # MRB Block
    def multi_scale_residual_block(input_tensor, channels):
        # features
        level1 = input_tensor
        level2 = down_sampling_module(input_tensor)
        level3 = down_sampling_module(level2)
        # DAU
        level1_dau = dual_attention_unit_block(level1)
        level2_dau = dual_attention_unit_block(level2)
        level3_dau = dual_attention_unit_block(level3)
        # SKFF
        level1_skff = selective_kernel_feature_fusion(
            level1_dau,
            up_sampling_module(level2_dau),
            up_sampling_module(up_sampling_module(level3_dau)),
        )
        level2_skff = selective_kernel_feature_fusion(
            down_sampling_module(level1_dau), level2_dau, up_sampling_module(level3_dau)
        )
        level3_skff = selective_kernel_feature_fusion(
            down_sampling_module(down_sampling_module(level1_dau)),
            down_sampling_module(level2_dau),
            level3_dau,
        )
        # DAU 2
        level1_dau_2 = dual_attention_unit_block(level1_skff)
        level2_dau_2 = up_sampling_module((dual_attention_unit_block(level2_skff)))
        level3_dau_2 = up_sampling_module(
            up_sampling_module(dual_attention_unit_block(level3_skff))
        )
        # SKFF 2
        skff_ = selective_kernel_feature_fusion(level1_dau_2, level3_dau_2, level3_dau_2)
        conv = layers.Conv2D(channels, kernel_size=(3, 3), padding="same")(skff_)
        return layers.Add()([input_tensor, conv])

    def recursive_residual_group(input_tensor, num_mrb, channels):
        conv1 = layers.Conv2D(channels, kernel_size=(3, 3), padding="same")(input_tensor)
        for _ in range(num_mrb):
            conv1 = multi_scale_residual_block(conv1, channels)
        conv2 = layers.Conv2D(channels, kernel_size=(3, 3), padding="same")(conv1)
        return layers.Add()([conv2, input_tensor])

    def mirnet_model(num_rrg, num_mrb, channels):
        input_tensor = keras.Input(shape=[None, None, 3])
        x1 = layers.Conv2D(channels, kernel_size=(3, 3), padding="same")(input_tensor)
        for _ in range(num_rrg):
            x1 = recursive_residual_group(x1, num_mrb, channels)
        conv = layers.Conv2D(3, kernel_size=(3, 3), padding="same")(x1)
        output_tensor = layers.Add()([input_tensor, conv])
        return keras.Model(input_tensor, output_tensor)

    model = mirnet_model(num_rrg=1, num_mrb=1, channels=16)  # 3, 2, 64

    def charbonnier_loss(y_true, y_pred):
        return tf.reduce_mean(tf.sqrt(tf.square(y_true - y_pred) + tf.square(1e-3)))

    def peak_signal_noise_ratio(y_true, y_pred):
        return tf.image.psnr(y_pred, y_true, max_val=255.0)

    optimizer = keras.optimizers.Adam(learning_rate=1e-4)
    model.compile(
        optimizer=optimizer, loss=charbonnier_loss, metrics=[peak_signal_noise_ratio]
    )

    history = model.fit(
        train_dataset,
        validation_data=val_dataset,
        epochs=1,  # 50
        callbacks=[
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_peak_signal_noise_ratio",
                factor=0.5,
                patience=5,
                verbose=1,
                min_delta=1e-7,
                mode="max",
            )
        ],
    )

    def infer(original_image):
        image = keras.preprocessing.image.img_to_array(original_image)
        image = image.astype("float32") / 255.0
        image = np.expand_dims(image, axis=0)
        output = model.predict(image)
        output_image = output[0] * 255.0
        output_image = output_image.clip(0, 255)
        output_image = output_image.reshape(
            (np.shape(output_image)[0], np.shape(output_image)[1], 3)
        )
        output_image = Image.fromarray(np.uint8(output_image))
        original_image = Image.fromarray(np.uint8(original_image))
        return output_image

    shown = []
    for low_light_image in random.sample(test_low_light_images, 2):  # 6
        original_image = Image.open(low_light_image)
        enhanced_image = infer(original_image)
        shown.append([original_image, ImageOps.autocontrast(original_image), enhanced_image])

    assert set(history.history) >= {"loss", "peak_signal_noise_ratio", "val_loss",
                                     "val_peak_signal_noise_ratio"}
    assert all(row[2].size == (48, 40) for row in shown)  # the model keeps the image size
    low, high = next(iter(train_dataset))
    assert low.shape == (4, 32, 32, 3)
    np.testing.assert_allclose(np.asarray(high) - np.asarray(low), 100 / 255, atol=1e-5)
    y, p = np.random.default_rng(1).uniform(size=(2, 2, 5, 5, 3)).astype("float32")
    np.testing.assert_allclose(charbonnier_loss(y, p),
                               np.mean(np.sqrt((y - p) ** 2 + 1e-6)), rtol=1e-5)
