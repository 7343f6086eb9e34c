"""keras.io example "FixRes: Fixing train-test resolution discrepency" (examples/vision/fixres.py).

The example's code as written (its stored text is the TensorFlow-era one: `from tensorflow
import keras; from tensorflow.keras import layers; import tensorflow as tf`, swapped for
kgraph): `cardinality()`, the `make_dataset` maps (training: `tf.image.sample_distorted_bounding_box`
on `tf.shape(image)` with an empty `tf.zeros([0, 0, 4])` box list, `tf.slice` of the drawn box,
`image.set_shape([None, None, channels])`, `tf.image.resize`, `tf.image.random_flip_left_right`;
fine-tuning: a `CenterCrop` layer called on `image[None, ...]` inside the map), the
`ResNet50V2(include_top=False, weights=None, pooling="avg")` classifier on
`Input((None, None, 3))` trained at the small resolution, its base frozen but for "post_bn"
and fine-tuned at the big one with `Adam(1e-4)`, and the vanilla model trained at the big
resolution from scratch.

Replaced: `tfds.load("tf_flowers", split=["train[:90%]", "train[90%:]"])` by `tf.data`
datasets of random uint8 images and labels (12 + 4). Sizes cut: batch_size 128 -> 4,
smaller/bigger sizes 128/224 -> 32/48 (resize to 72, center crop 48), epochs 30/10/30 -> 1. The
matplotlib grids are left out (`visualize_dataset` keeps its batch-shape print; the grid shows
25 images, the batch has 4).

Checked: batch shapes of the three pipelines; the crops `sample_distorted_bounding_box` draws
lie inside the image with an area in `area_range`; fine-tuning leaves every frozen base layer
unchanged and moves "post_bn". Marked slow (~20 s: ResNet50V2 trained at two sizes, three
times).
"""

import numpy as np
import pytest


def _tf_flowers(tf, count, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 60, 80, 3), dtype=np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, rng.integers(0, 5, count)))


@pytest.mark.slow
def test_fixres():
    from kgraph import keras
    from kgraph.keras import layers
    import kgraph as tf

    keras.utils.set_random_seed(0)

    # tfds.load("tf_flowers", split=["train[:90%]", "train[90%:]"], as_supervised=True)
    train_dataset, val_dataset = _tf_flowers(tf, 12, 0), _tf_flowers(tf, 4, 1)

    num_train = train_dataset.cardinality()
    num_val = val_dataset.cardinality()
    print(f"Number of training examples: {num_train}")
    print(f"Number of validation examples: {num_val}")

    batch_size = 4  # 128
    auto = tf.data.AUTOTUNE
    smaller_size = 32  # 128
    bigger_size = 48  # 224

    size_for_resizing = int((bigger_size / smaller_size) * bigger_size)
    central_crop_layer = layers.CenterCrop(bigger_size, bigger_size)
    boxes = []  # (image shape, begin, size) of each drawn crop, for the check

    def make_dataset(
        dataset: tf.data.Dataset,
        train: bool,
        image_size: int = smaller_size,
        fixres: bool = True,
    ):
        def preprocess_initial(image, label):
            if train:
                channels = image.shape[-1]
                begin, size, _ = tf.image.sample_distorted_bounding_box(
                    tf.shape(image),
                    tf.zeros([0, 0, 4], tf.float32),
                    area_range=(0.05, 1.0),
                    min_object_covered=0,
                    use_image_if_no_bounding_boxes=True,
                )
                boxes.append((image.shape, np.asarray(begin), np.asarray(size)))
                image = tf.slice(image, begin, size)

                image.set_shape([None, None, channels])
                image = tf.image.resize(image, [image_size, image_size])
                image = tf.image.random_flip_left_right(image)
            else:
                image = tf.image.resize(image, [image_size, image_size])

            image = (image - 127.5) / 127.5
            return image, label

        def preprocess_finetune(image, label):
            image = tf.image.resize(image, [size_for_resizing, size_for_resizing])
            if train:
                image = tf.image.random_flip_left_right(image)
            image = central_crop_layer(image[None, ...])[0]
            image = (image - 127.5) / 127.5

            return image, label

        if image_size not in [smaller_size, bigger_size]:
            raise ValueError(f"{image_size} resolution is not supported.")

        # Determine which preprocessing function we are using.
        if image_size == smaller_size:
            preprocess_func = preprocess_initial
        elif not fixres and image_size == bigger_size:
            preprocess_func = preprocess_initial
        else:
            preprocess_func = preprocess_finetune

        if train:
            dataset = dataset.shuffle(batch_size * 10)

        return dataset.map(preprocess_func, auto).batch(batch_size).prefetch(auto)

    initial_train_dataset = make_dataset(train_dataset, train=True, image_size=smaller_size)
    initial_val_dataset = make_dataset(val_dataset, train=False, image_size=smaller_size)

    finetune_train_dataset = make_dataset(train_dataset, train=True, image_size=bigger_size)
    finetune_val_dataset = make_dataset(val_dataset, train=False, image_size=bigger_size)

    vanilla_train_dataset = make_dataset(
        train_dataset, train=True, image_size=bigger_size, fixres=False
    )
    vanilla_val_dataset = make_dataset(
        val_dataset, train=False, image_size=bigger_size, fixres=False
    )

    shapes = []

    def visualize_dataset(batch_images):
        # the 5x5 matplotlib grid of `(batch_images[n].numpy() + 1) / 2` is left out
        print(f"Batch shape: {batch_images.shape}.")
        shapes.append(tuple(batch_images.shape))

    # Smaller resolution.
    initial_sample_images, _ = next(iter(initial_train_dataset))
    visualize_dataset(initial_sample_images)

    # Bigger resolution but only for fine-tuning purposes.
    finetune_sample_images, _ = next(iter(finetune_train_dataset))
    visualize_dataset(finetune_sample_images)

    # Bigger resolution with the same augmentation applied as
    # the smaller resolution dataset.
    vanilla_sample_images, _ = next(iter(vanilla_train_dataset))
    visualize_dataset(vanilla_sample_images)

    def get_training_model(num_classes=5):
        inputs = layers.Input((None, None, 3))
        resnet_base = keras.applications.ResNet50V2(
            include_top=False, weights=None, pooling="avg"
        )
        resnet_base.trainable = True

        x = resnet_base(inputs)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        return keras.Model(inputs, outputs)

    def train_and_evaluate(model, datasets, epochs, lr=None, use_es=False):
        if lr:
            optimizer = keras.optimizers.Adam(learning_rate=lr)
        else:
            optimizer = "adam"

        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

        if use_es:
            es_callback = keras.callbacks.EarlyStopping(patience=5)
            callbacks = [es_callback]
        else:
            callbacks = None

        training_dataset = datasets[0]
        validation_dataset = datasets[1]
        model.fit(
            training_dataset,
            validation_data=validation_dataset,
            epochs=epochs,
            callbacks=callbacks,
        )

        _, accuracy = model.evaluate(validation_dataset)
        print(f"Top-1 accuracy on the validation set: {accuracy*100:.2f}%.")
        return model

    epochs = 1  # 30

    smaller_res_model = get_training_model()
    smaller_res_model = train_and_evaluate(
        smaller_res_model, (initial_train_dataset, initial_val_dataset), epochs
    )

    for layer in smaller_res_model.layers[1].layers:
        layer.trainable = False

    smaller_res_model.layers[1].get_layer("post_bn").trainable = True

    epochs = 1  # 10

    base = smaller_res_model.layers[1]
    before = {layer.name: [w.numpy().copy() for w in layer.weights] for layer in base.layers}
    # Use a lower learning rate during fine-tuning.
    bigger_res_model = train_and_evaluate(
        smaller_res_model, (finetune_train_dataset, finetune_val_dataset), epochs, lr=1e-4
    )

    epochs = 1  # 30

    vanilla_bigger_res_model = get_training_model()
    vanilla_bigger_res_model = train_and_evaluate(
        vanilla_bigger_res_model, (vanilla_train_dataset, vanilla_val_dataset), epochs
    )

    assert (int(num_train), int(num_val)) == (12, 4)
    assert shapes == [(4, 32, 32, 3), (4, 48, 48, 3), (4, 48, 48, 3)]
    for shape, begin, size in boxes:
        height, width = shape[:2]
        assert begin[2] == 0 and size[2] == -1
        assert 0 <= begin[0] and begin[0] + size[0] <= height
        assert 0 <= begin[1] and begin[1] + size[1] <= width
        assert 0.05 * 0.9 <= size[0] * size[1] / (height * width) <= 1.0
    for layer in base.layers:
        changed = any(not np.array_equal(w.numpy(), b)
                      for w, b in zip(layer.weights, before[layer.name]))
        assert changed == (layer.name == "post_bn" and bool(layer.weights)), layer.name
