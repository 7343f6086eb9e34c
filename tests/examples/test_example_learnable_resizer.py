"""keras.io example "Learning to Resize in Computer Vision"
(examples/vision/learnable_resizer.py).

The example's code as written (its stored text is the TensorFlow-era one: `from
tensorflow.keras import layers; from tensorflow import keras; import tensorflow as tf`, swapped
for kgraph): a tf.data map with `tf.image.resize` and `tf.one_hot(label, depth=2)`, the
learnable resizer (a functional model on `Input(shape=[None, None, 3])`: `Resizing` of the
open-size input and of a feature map, 7x7/1x1 convolutions, `LeakyReLU`, a residual block,
BatchNormalization, skip `Add`s; a default argument `activation=layers.LeakyReLU(0.2)` shared
by every call), eager calls on single images (`image[None, ...]`, `.numpy().squeeze()`),
`keras.applications.DenseNet121(weights=None, include_top=True, classes=2, input_shape=...)`
behind `Rescaling` and the resizer, `CategoricalCrossentropy(label_smoothing=0.1)` with SGD.

Replaced: `tfds.load("cats_vs_dogs", split=["train[:40%]", "train[40%:50%]"])` by two
`tf.data.Dataset`s of random uint8 images and int64 labels (8 and 4). Sizes cut: INP_SIZE
300x300 -> 64x64, TARGET_SIZE 150x150 -> 32x32 (DenseNet121's smallest), BATCH_SIZE 64 -> 4,
EPOCHS 5 -> 1, six sample images -> 2. The matplotlib figures are left out (their resizer
calls are made).

Checked: the model's parameter count (the resizer's 12,163 plus DenseNet121's with two classes,
7,039,554, as real Keras counts); the resizer's output is the bilinear resize of its input plus
what its convolutions add (zero after setting the last convolution to zero). Marked slow (~10 s:
DenseNet121's training graph).
"""

import numpy as np
import pytest


def _cats_vs_dogs(tf, count, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 80, 60, 3), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, rng.integers(0, 2, count)))


@pytest.mark.slow
def test_learnable_resizer():
    from kgraph.keras import layers
    from kgraph import keras
    import kgraph as tf

    keras.utils.set_random_seed(0)

    INP_SIZE = (64, 64)  # (300, 300)
    TARGET_SIZE = (32, 32)  # (150, 150)
    INTERPOLATION = "bilinear"

    AUTO = tf.data.AUTOTUNE
    BATCH_SIZE = 4  # 64
    EPOCHS = 1  # 5

    # tfds.load("cats_vs_dogs", split=["train[:40%]", "train[40%:50%]"], as_supervised=True)
    train_ds, validation_ds = _cats_vs_dogs(tf, 8, 0), _cats_vs_dogs(tf, 4, 1)

    def preprocess_dataset(image, label):
        image = tf.image.resize(image, (INP_SIZE[0], INP_SIZE[1]))
        label = tf.one_hot(label, depth=2)
        return (image, label)

    train_ds = (
        train_ds.shuffle(BATCH_SIZE * 100)
        .map(preprocess_dataset, num_parallel_calls=AUTO)
        .batch(BATCH_SIZE)
        .prefetch(AUTO)
    )
    validation_ds = (
        validation_ds.map(preprocess_dataset, num_parallel_calls=AUTO)
        .batch(BATCH_SIZE)
        .prefetch(AUTO)
    )

    def conv_block(x, filters, kernel_size, strides, activation=layers.LeakyReLU(0.2)):
        x = layers.Conv2D(filters, kernel_size, strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        if activation:
            x = activation(x)
        return x

    def res_block(x):
        inputs = x
        x = conv_block(x, 16, 3, 1)
        x = conv_block(x, 16, 3, 1, activation=None)
        return layers.Add()([inputs, x])

    # Note: User can change num_res_blocks to >1 also if needed
    def get_learnable_resizer(filters=16, num_res_blocks=1, interpolation=INTERPOLATION):
        inputs = layers.Input(shape=[None, None, 3])

        # First, perform naive resizing.
        naive_resize = layers.Resizing(*TARGET_SIZE, interpolation=interpolation)(inputs)

        # First convolution block without batch normalization.
        x = layers.Conv2D(filters=filters, kernel_size=7, strides=1, padding="same")(inputs)
        x = layers.LeakyReLU(0.2)(x)

        # Second convolution block with batch normalization.
        x = layers.Conv2D(filters=filters, kernel_size=1, strides=1, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.BatchNormalization()(x)

        # Intermediate resizing as a bottleneck.
        bottleneck = layers.Resizing(*TARGET_SIZE, interpolation=interpolation)(x)

        # Residual passes.
        # First res_block will get bottleneck output as input
        x = res_block(bottleneck)
        # Remaining res_blocks will get previous res_block output as input
        for _ in range(num_res_blocks - 1):
            x = res_block(x)

        # Projection.
        x = layers.Conv2D(
            filters=filters, kernel_size=3, strides=1, padding="same", use_bias=False
        )(x)
        x = layers.BatchNormalization()(x)

        # Skip connection.
        x = layers.Add()([bottleneck, x])

        # Final resized image.
        x = layers.Conv2D(filters=3, kernel_size=7, strides=1, padding="same")(x)
        final_resize = layers.Add()([naive_resize, x])

        return tf.keras.Model(inputs, final_resize, name="learnable_resizer")

    learnable_resizer = get_learnable_resizer()

    sample_images, _ = next(iter(train_ds))

    shown = []
    for i, image in enumerate(sample_images[:2]):  # [:6]
        image = image / 255
        shown.append(image.numpy().squeeze())  # plt.imshow
        resized_image = learnable_resizer(image[None, ...])
        shown.append(resized_image.numpy().squeeze())
    assert [s.shape for s in shown] == [(64, 64, 3), (32, 32, 3)] * 2

    def get_model():
        backbone = tf.keras.applications.DenseNet121(
            weights=None,
            include_top=True,
            classes=2,
            input_shape=((TARGET_SIZE[0], TARGET_SIZE[1], 3)),
        )
        backbone.trainable = True

        inputs = layers.Input((INP_SIZE[0], INP_SIZE[1], 3))
        x = layers.Rescaling(scale=1.0 / 255)(inputs)
        x = learnable_resizer(x)
        outputs = backbone(x)

        return tf.keras.Model(inputs, outputs)

    model = get_model()
    model.compile(
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        optimizer="sgd",
        metrics=["accuracy"],
    )
    history = model.fit(train_ds, validation_data=validation_ds, epochs=EPOCHS)

    for i, image in enumerate(sample_images[:2]):
        image = image / 255
        resized_image = learnable_resizer(image[None, ...])
        shown.append(resized_image.numpy().squeeze() / 10)

    assert learnable_resizer.count_params() == 12_163
    assert model.count_params() == 12_163 + 7_039_554
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # with its last convolution zeroed the resizer is the bilinear resize of its input
    last = learnable_resizer.layers[-2]
    last.set_weights([np.zeros_like(w) for w in last.get_weights()])
    image = np.asarray(sample_images[:1]) / 255
    np.testing.assert_allclose(learnable_resizer(image),
                               tf.image.resize(image, TARGET_SIZE, method="bilinear"),
                               rtol=1e-5, atol=1e-5)
