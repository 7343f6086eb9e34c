"""keras.io example "Few-Shot learning with Reptile" (examples/vision/reptile.py).

The example's code as written (its stored text, the TensorFlow-era one: last modified
2020/05/30) with `import tensorflow as tf; from tensorflow import keras; from tensorflow.keras
import layers` swapped for kgraph: the Omniglot `ds.map(extraction)` with
`tf.image.convert_image_dtype`, `tf.image.rgb_to_grayscale` and `tf.image.resize`, items read
with `.numpy()`, few-shot `tf.data.Dataset.from_tensor_slices(...).shuffle.batch.repeat`
mini-datasets, a conv-BN model `compile()`d without arguments, eager `tf.GradientTape` steps
with `keras.losses.sparse_categorical_crossentropy` and `optimizer.apply_gradients(zip(...))`,
the Reptile meta step on `get_weights`/`set_weights`, `model.predict` and
`tf.argmax(test_preds).numpy()` (TensorFlow's axis 0, as written), and the smoothing of the
accuracy curves.

`tfds.load("omniglot", ...)` (a download; its `urllib3.disable_warnings()` is left out) is a
stand-in returning a `tf.data.Dataset` of random uint8 (105, 105, 3) images and int64 labels,
Omniglot's element spec; 8 train and 6 test characters of 4 drawings each (the example draws
with `random.choices`, so any count works). Sizes cut: meta_iters 2000 -> 2, inner_iters
4 -> 2, eval_iters 5 -> 2 (the batches stay 25: 2 x (8 + 2 x 2) + 2 eager tape steps). The
matplotlib figures are left out; the arrays they show are computed.
"""

import random
import types

import numpy as np


def omniglot_load(name, split, as_supervised, shuffle_files):
    """Stand-in for `tfds.load("omniglot", as_supervised=True)`: (image, label) pairs."""
    from kgraph import data

    assert name == "omniglot" and as_supervised
    rng = np.random.default_rng(0 if split == "train" else 1)
    characters = 8 if split == "train" else 6
    labels = np.repeat(np.arange(characters, dtype=np.int64), 4)
    images = rng.integers(0, 256, (len(labels), 105, 105, 3), dtype=np.uint8)
    return data.Dataset.from_tensor_slices((images, labels))


def test_reptile():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    tfds = types.SimpleNamespace(load=omniglot_load)
    random.seed(0)
    keras.utils.set_random_seed(0)

    learning_rate = 0.003
    meta_step_size = 0.25

    inner_batch_size = 25
    eval_batch_size = 25

    meta_iters = 2
    eval_iters = 2
    inner_iters = 2

    eval_interval = 1
    train_shots = 20
    shots = 5
    classes = 5

    class Dataset:
        # This class will facilitate the creation of a few-shot dataset
        # from the Omniglot dataset that can be sampled from quickly while also
        # allowing to create new labels at the same time.
        def __init__(self, training):
            # Download the tfrecord files containing the omniglot data and convert to a
            # dataset.
            split = "train" if training else "test"
            ds = tfds.load("omniglot", split=split, as_supervised=True, shuffle_files=False)
            # Iterate over the dataset to get each individual image and its class,
            # and put that data into a dictionary.
            self.data = {}

            def extraction(image, label):
                # This function will shrink the Omniglot images to the desired size,
                # scale pixel values and convert the RGB image to grayscale
                image = tf.image.convert_image_dtype(image, tf.float32)
                image = tf.image.rgb_to_grayscale(image)
                image = tf.image.resize(image, [28, 28])
                return image, label

            for image, label in ds.map(extraction):
                image = image.numpy()
                label = str(label.numpy())
                if label not in self.data:
                    self.data[label] = []
                self.data[label].append(image)
            self.labels = list(self.data.keys())

        def get_mini_dataset(
            self, batch_size, repetitions, shots, num_classes, split=False
        ):
            temp_labels = np.zeros(shape=(num_classes * shots))
            temp_images = np.zeros(shape=(num_classes * shots, 28, 28, 1))
            if split:
                test_labels = np.zeros(shape=(num_classes))
                test_images = np.zeros(shape=(num_classes, 28, 28, 1))

            # Get a random subset of labels from the entire label set.
            label_subset = random.choices(self.labels, k=num_classes)
            for class_idx, class_obj in enumerate(label_subset):
                # Use enumerated index value as a temporary label for mini-batch in
                # few shot learning.
                temp_labels[class_idx * shots : (class_idx + 1) * shots] = class_idx
                # If creating a split dataset for testing, select an extra sample from each
                # label to create the test dataset.
                if split:
                    test_labels[class_idx] = class_idx
                    images_to_split = random.choices(
                        self.data[label_subset[class_idx]], k=shots + 1
                    )
                    test_images[class_idx] = images_to_split[-1]
                    temp_images[
                        class_idx * shots : (class_idx + 1) * shots
                    ] = images_to_split[:-1]
                else:
                    # For each index in the randomly selected label_subset, sample the
                    # necessary number of images.
                    temp_images[
                        class_idx * shots : (class_idx + 1) * shots
                    ] = random.choices(self.data[label_subset[class_idx]], k=shots)

            dataset = tf.data.Dataset.from_tensor_slices(
                (temp_images.astype(np.float32), temp_labels.astype(np.int32))
            )
            dataset = dataset.shuffle(100).batch(batch_size).repeat(repetitions)
            if split:
                return dataset, test_images, test_labels
            return dataset

    train_dataset = Dataset(training=True)
    test_dataset = Dataset(training=False)

    # What the example's 5x5 grid of training images shows (plots left out)
    sample_keys = list(train_dataset.data.keys())
    assert len(sample_keys) == 8 and all(len(v) == 4 for v in train_dataset.data.values())
    first = train_dataset.data[sample_keys[0]][0]
    assert first.shape == (28, 28, 1) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 1.0

    def conv_bn(x):
        x = layers.Conv2D(filters=64, kernel_size=3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    inputs = layers.Input(shape=(28, 28, 1))
    x = conv_bn(inputs)
    x = conv_bn(x)
    x = conv_bn(x)
    x = conv_bn(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(classes, activation="softmax")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile()
    optimizer = keras.optimizers.SGD(learning_rate=learning_rate)
    initial_weights = model.get_weights()

    training = []
    testing = []
    for meta_iter in range(meta_iters):
        frac_done = meta_iter / meta_iters
        cur_meta_step_size = (1 - frac_done) * meta_step_size
        # Temporarily save the weights from the model.
        old_vars = model.get_weights()
        # Get a sample from the full dataset.
        mini_dataset = train_dataset.get_mini_dataset(
            inner_batch_size, inner_iters, train_shots, classes
        )
        for images, labels in mini_dataset:
            with tf.GradientTape() as tape:
                preds = model(images)
                loss = keras.losses.sparse_categorical_crossentropy(labels, preds)
            grads = tape.gradient(loss, model.trainable_weights)
            optimizer.apply_gradients(zip(grads, model.trainable_weights))
        new_vars = model.get_weights()
        # Perform SGD for the meta step.
        for var in range(len(new_vars)):
            new_vars[var] = old_vars[var] + (
                (new_vars[var] - old_vars[var]) * cur_meta_step_size
            )
        # After the meta-learning step, reload the newly-trained weights into the model.
        model.set_weights(new_vars)
        # Evaluation loop
        if meta_iter % eval_interval == 0:
            accuracies = []
            for dataset in (train_dataset, test_dataset):
                # Sample a mini dataset from the full dataset.
                train_set, test_images, test_labels = dataset.get_mini_dataset(
                    eval_batch_size, eval_iters, shots, classes, split=True
                )
                old_vars = model.get_weights()
                # Train on the samples and get the resulting accuracies.
                for images, labels in train_set:
                    with tf.GradientTape() as tape:
                        preds = model(images)
                        loss = keras.losses.sparse_categorical_crossentropy(labels, preds)
                    grads = tape.gradient(loss, model.trainable_weights)
                    optimizer.apply_gradients(zip(grads, model.trainable_weights))
                test_preds = model.predict(test_images)
                test_preds = tf.argmax(test_preds).numpy()
                num_correct = (test_preds == test_labels).sum()
                # Reset the weights after getting the evaluation accuracies.
                model.set_weights(old_vars)
                # The evaluation's fine-tuning is undone: the weights are the meta weights.
                for after, before in zip(model.get_weights(), new_vars):
                    np.testing.assert_array_equal(after, before)
                accuracies.append(num_correct / classes)
            training.append(accuracies[0])
            testing.append(accuracies[1])
            if meta_iter % 100 == 0:
                print(
                    "batch %d: train=%f test=%f" % (meta_iter, accuracies[0], accuracies[1])
                )

    # First, some preprocessing to smooth the training and testing arrays for display.
    window_length = 100
    train_s = np.r_[
        training[window_length - 1 : 0 : -1], training, training[-1:-window_length:-1]
    ]
    test_s = np.r_[
        testing[window_length - 1 : 0 : -1], testing, testing[-1:-window_length:-1]
    ]
    w = np.hamming(window_length)
    train_y = np.convolve(w / w.sum(), train_s, mode="valid")
    test_y = np.convolve(w / w.sum(), test_s, mode="valid")

    train_set, test_images, test_labels = dataset.get_mini_dataset(
        eval_batch_size, eval_iters, shots, classes, split=True
    )
    for images, labels in train_set:
        with tf.GradientTape() as tape:
            preds = model(images)
            loss = keras.losses.sparse_categorical_crossentropy(labels, preds)
        grads = tape.gradient(loss, model.trainable_weights)
        optimizer.apply_gradients(zip(grads, model.trainable_weights))
    test_preds = model.predict(test_images)
    test_preds = tf.argmax(test_preds).numpy()

    titles = [
        "Label : {}, Prediction : {}".format(int(test_labels[i]), test_preds[i])
        for i in range(5)
    ]

    assert model.count_params() == 113733  # as real Keras counts this model
    assert len(training) == len(testing) == meta_iters
    assert all(0.0 <= a <= 1.0 for a in training + testing)
    assert np.all((0.0 <= train_y) & (train_y <= 1.0)) and test_y.shape == train_y.shape
    # tf.argmax's default axis 0: for each of the 5 classes, the test image scored highest
    assert test_preds.shape == (classes,) and set(test_preds) <= set(range(classes))
    assert len(titles) == 5
    # the meta steps moved the weights
    assert any(not np.allclose(a, b) for a, b in zip(model.get_weights(), initial_weights))
