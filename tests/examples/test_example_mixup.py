"""keras.io example "MixUp augmentation for image classification" (examples/vision/mixup.py).

The example's code as written, `import tensorflow as tf; from tensorflow.keras import layers`
swapped for `import kgraph as tf; from kgraph.keras import layers`: two shuffled tf.data
pipelines zipped and mapped through `mix_up` (lambda from `tf.random.gamma` draws of a Beta
distribution, `tf.shape`, `tf.reshape`), labels from `tf.one_hot`, the model trained with and
without mixup from the same saved initial weights. Fashion-MNIST is replaced by random digits
of its shapes (192 train, of which 64 are set aside for validation, 32 test); BATCH_SIZE 64 ->
32, EPOCHS 10 -> 1; the initial weights file is named `initial.weights.h5` (Keras 3's
`save_weights` needs that suffix, as the example's Keras 3 port writes it) under tmp_path; the
matplotlib preview is left out (its images and labels are read).
"""

import numpy as np


def test_mixup(tmp_path):
    import kgraph as tf
    from kgraph.keras import layers

    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = (
        (rng.integers(0, 256, (192, 28, 28), dtype=np.uint8),
         rng.integers(0, 10, (192,), dtype=np.uint8)),
        (rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
         rng.integers(0, 10, (32,), dtype=np.uint8)))

    x_train = x_train.astype("float32") / 255.0
    x_train = np.reshape(x_train, (-1, 28, 28, 1))
    y_train = tf.one_hot(y_train, 10)

    x_test = x_test.astype("float32") / 255.0
    x_test = np.reshape(x_test, (-1, 28, 28, 1))
    y_test = tf.one_hot(y_test, 10)

    AUTO = tf.data.AUTOTUNE
    BATCH_SIZE = 32
    EPOCHS = 1

    # Put aside a few samples to create our validation set
    val_samples = 64
    x_val, y_val = x_train[:val_samples], y_train[:val_samples]
    new_x_train, new_y_train = x_train[val_samples:], y_train[val_samples:]

    train_ds_one = (
        tf.data.Dataset.from_tensor_slices((new_x_train, new_y_train))
        .shuffle(BATCH_SIZE * 100)
        .batch(BATCH_SIZE)
    )
    train_ds_two = (
        tf.data.Dataset.from_tensor_slices((new_x_train, new_y_train))
        .shuffle(BATCH_SIZE * 100)
        .batch(BATCH_SIZE)
    )
    # Because we will be mixing up the images and their corresponding labels, we will be
    # combining two shuffled datasets from the same training data.
    train_ds = tf.data.Dataset.zip((train_ds_one, train_ds_two))

    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(BATCH_SIZE)

    test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(BATCH_SIZE)

    def sample_beta_distribution(size, concentration_0=0.2, concentration_1=0.2):
        gamma_1_sample = tf.random.gamma(shape=[size], alpha=concentration_1)
        gamma_2_sample = tf.random.gamma(shape=[size], alpha=concentration_0)
        return gamma_1_sample / (gamma_1_sample + gamma_2_sample)

    def mix_up(ds_one, ds_two, alpha=0.2):
        # Unpack two datasets
        images_one, labels_one = ds_one
        images_two, labels_two = ds_two
        batch_size = tf.shape(images_one)[0]

        # Sample lambda and reshape it to do the mixup
        l = sample_beta_distribution(batch_size, alpha, alpha)  # noqa: E741 - the example's
        x_l = tf.reshape(l, (batch_size, 1, 1, 1))
        y_l = tf.reshape(l, (batch_size, 1))

        # Perform mixup on both images and labels by combining a pair of images/labels
        # (one from each dataset) into one image/label
        images = images_one * x_l + images_two * (1 - x_l)
        labels = labels_one * y_l + labels_two * (1 - y_l)
        return (images, labels)

    # First create the new dataset using our `mix_up` utility
    train_ds_mu = train_ds.map(
        lambda ds_one, ds_two: mix_up(ds_one, ds_two, alpha=0.2), num_parallel_calls=AUTO
    )

    # Let's preview 9 samples from the dataset
    sample_images, sample_labels = next(iter(train_ds_mu))
    for i, (image, label) in enumerate(zip(sample_images[:9], sample_labels[:9])):
        assert image.numpy().squeeze().shape == (28, 28)
        print(label.numpy().tolist())
        # a mixed label is a convex combination of two one-hot rows
        assert abs(sum(label.numpy().tolist()) - 1.0) < 1e-5 and min(label.numpy()) >= 0.0
    assert sample_images.shape == (32, 28, 28, 1)
    assert 0.0 <= float(np.min(sample_images)) and float(np.max(sample_images)) <= 1.0

    def get_training_model():
        model = tf.keras.Sequential(
            [
                layers.Conv2D(16, (5, 5), activation="relu", input_shape=(28, 28, 1)),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Conv2D(32, (5, 5), activation="relu"),
                layers.MaxPooling2D(pool_size=(2, 2)),
                layers.Dropout(0.2),
                layers.GlobalAvgPool2D(),
                layers.Dense(128, activation="relu"),
                layers.Dense(10, activation="softmax"),
            ]
        )
        return model

    initial_weights = str(tmp_path / "initial.weights.h5")
    initial_model = get_training_model()
    initial_model.save_weights(initial_weights)

    model = get_training_model()
    model.load_weights(initial_weights)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    mixed = model.fit(train_ds_mu, validation_data=val_ds, epochs=EPOCHS)
    _, test_acc = model.evaluate(test_ds)
    print("Test accuracy: {:.2f}%".format(test_acc * 100))
    assert 0.0 <= test_acc <= 1.0

    model = get_training_model()
    model.load_weights(initial_weights)
    for start, loaded in zip(initial_model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(start, loaded)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    # Notice that we are NOT using the mixed up dataset here
    plain = model.fit(train_ds_one, validation_data=val_ds, epochs=EPOCHS)
    _, test_acc = model.evaluate(test_ds)
    print("Test accuracy: {:.2f}%".format(test_acc * 100))

    for history in (mixed, plain):
        assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        assert np.isfinite(history.history["loss"]).all()
