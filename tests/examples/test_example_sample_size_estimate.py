"""keras.io example "Estimating required sample size for model training"
(examples/keras_recipes/sample_size_estimate.py, Keras 3 version).

The code as written with `import tensorflow as tf; import keras; from keras import layers`
swapped for kgraph: `keras.utils.set_random_seed`, `dataset_to_array` over
`as_numpy_iterator()` with `tf.image.resize(...).numpy()` and `tf.one_hot`, the augmentation
Sequential (RandomFlip, RandomRotation, `RandomZoom(height_factor=(-0.1, -0))`,
RandomContrast) called eagerly on the image array, `build_model` (Rescaling into
`keras.applications.MobileNetV2(include_top=False, input_tensor=x)`, frozen, a new top on
`model.output`), `compile_and_train` (its default metric list, EarlyStopping on `val_auc`
restoring the best weights, `validation_split=0.1`), `unfreeze` from "block_10" on, skipping
BatchNormalization, `train_model` evaluated on the test set, and `fit_and_predict`: the
learning curve `a * x**b` of two `tf.Variable`s (`x` a Python list) fitted by an eager
`tf.GradientTape` loop with `assign_sub`, read with `.numpy()`, the MAE of the fit.

Replaced: `tfds.load("tf_flowers", as_supervised=True, with_info=True)` (a download) by
`tf.data` datasets of random (uint8 40x48 image, label) pairs and an info stand-in (5 classes,
their names); MobileNetV2's `weights="imagenet"` (a download) by `weights=None`. The plots
are left out. Sizes cut: image_size 224 -> 32, 50 images, the example's 10 + 20 epochs in
`train_model` -> 1 + 1, the curve fit's 5000 steps -> 300. `train_iteratively` is defined
and not called, as in the example. Marked slow.
"""
import types

import numpy as np
import pytest


def flowers_load(name, split, shuffle_files, as_supervised, with_info):
    """Stand-in for tfds.load("tf_flowers", split=["train[:90%]", "train[90%:]"], ...)."""
    from kgraph import data

    assert name == "tf_flowers" and as_supervised and with_info
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 40, 48, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, 50)
    sets = (data.Dataset.from_tensor_slices((images[:45], labels[:45])),
            data.Dataset.from_tensor_slices((images[45:], labels[45:])))
    label = types.SimpleNamespace(num_classes=5, names=["dandelion", "daisy", "tulips",
                                                        "sunflowers", "roses"])
    return sets, types.SimpleNamespace(features={"label": label})


@pytest.mark.slow
def test_sample_size_estimate():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    tfds = types.SimpleNamespace(load=flowers_load)

    # Define seed and fixed variables
    seed = 42
    keras.utils.set_random_seed(seed)
    AUTO = tf.data.AUTOTUNE  # noqa: F841

    # Specify dataset parameters
    dataset_name = "tf_flowers"
    batch_size = 64
    image_size = (32, 32)

    # Load data from tfds and split 10% off for a test set
    (train_data, test_data), ds_info = tfds.load(
        dataset_name,
        split=["train[:90%]", "train[90%:]"],
        shuffle_files=True,
        as_supervised=True,
        with_info=True,
    )

    # Extract number of classes and list of class names
    num_classes = ds_info.features["label"].num_classes
    class_names = ds_info.features["label"].names

    print(f"Number of classes: {num_classes}")
    print(f"Class names: {class_names}")

    # Convert datasets to NumPy arrays
    def dataset_to_array(dataset, image_size, num_classes):
        images, labels = [], []
        for img, lab in dataset.as_numpy_iterator():
            images.append(tf.image.resize(img, image_size).numpy())
            labels.append(tf.one_hot(lab, num_classes))
        return np.array(images), np.array(labels)

    img_train, label_train = dataset_to_array(train_data, image_size, num_classes)
    img_test, label_test = dataset_to_array(test_data, image_size, num_classes)

    num_train_samples = len(img_train)
    print(f"Number of training samples: {num_train_samples}")
    assert img_train.shape == (45, 32, 32, 3) and label_train.shape == (45, 5)
    for n in range(5):  # the plot titles
        np.array(class_names)[label_test[n] == True][0]  # noqa: E712

    # Define image augmentation model
    image_augmentation = keras.Sequential(
        [
            layers.RandomFlip(mode="horizontal"),
            layers.RandomRotation(factor=0.1),
            layers.RandomZoom(height_factor=(-0.1, -0)),
            layers.RandomContrast(factor=0.1),
        ],
    )

    # Apply the augmentations to the training images and plot a few examples
    img_train = image_augmentation(img_train).numpy()
    assert img_train.shape == (45, 32, 32, 3)

    def build_model(num_classes, img_size=image_size[0], top_dropout=0.3):
        # Create input and pre-processing layers for MobileNetV2
        inputs = layers.Input(shape=(img_size, img_size, 3))
        x = layers.Rescaling(scale=1.0 / 127.5, offset=-1)(inputs)
        model = keras.applications.MobileNetV2(
            include_top=False, weights=None, input_tensor=x
        )

        # Freeze the pretrained weights
        model.trainable = False

        # Rebuild top
        x = layers.GlobalAveragePooling2D(name="avg_pool")(model.output)
        x = layers.Dropout(top_dropout)(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        model = keras.Model(inputs, outputs)

        print("Trainable weights:", len(model.trainable_weights))
        print("Non_trainable weights:", len(model.non_trainable_weights))
        return model

    def compile_and_train(
        model,
        training_data,
        training_labels,
        metrics=[keras.metrics.AUC(name="auc"), "acc"],
        optimizer=keras.optimizers.Adam(),
        patience=5,
        epochs=5,
    ):
        stopper = keras.callbacks.EarlyStopping(
            monitor="val_auc",
            mode="max",
            min_delta=0,
            patience=patience,
            verbose=1,
            restore_best_weights=True,
        )

        model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=metrics)

        history = model.fit(
            x=training_data,
            y=training_labels,
            batch_size=batch_size,
            epochs=epochs,
            validation_split=0.1,
            callbacks=[stopper],
            verbose=0,
        )
        return history

    def unfreeze(model, block_name, verbose=0):
        # Unfreeze from block_name onwards
        set_trainable = False

        for layer in model.layers:
            if block_name in layer.name:
                set_trainable = True
            if set_trainable and not isinstance(layer, layers.BatchNormalization):
                layer.trainable = True
                if verbose == 1:
                    print(layer.name, "trainable")
            else:
                if verbose == 1:
                    print(layer.name, "NOT trainable")
        print("Trainable weights:", len(model.trainable_weights))
        print("Non-trainable weights:", len(model.non_trainable_weights))
        return model

    counts = []

    def train_model(training_data, training_labels):
        model = build_model(num_classes)
        counts.append(len(model.trainable_weights))

        # Compile and train top layers
        history = compile_and_train(
            model,
            training_data,
            training_labels,
            metrics=[keras.metrics.AUC(name="auc"), "acc"],
            optimizer=keras.optimizers.Adam(),
            patience=3,
            epochs=1,
        )

        # Unfreeze model from block 10 onwards
        model = unfreeze(model, "block_10")
        counts.append(len(model.trainable_weights))

        # Compile and train for 20 epochs with a lower learning rate
        fine_tune_epochs = 1
        total_epochs = history.epoch[-1] + fine_tune_epochs

        history_fine = compile_and_train(  # noqa: F841
            model,
            training_data,
            training_labels,
            metrics=[keras.metrics.AUC(name="auc"), "acc"],
            optimizer=keras.optimizers.Adam(learning_rate=1e-4),
            patience=5,
            epochs=total_epochs,
        )

        # Calculate model accuracy on the test set
        _, _, acc = model.evaluate(img_test, label_test, verbose=0)
        return np.round(acc, 4)

    # Running the above function produces the following outputs
    train_acc = [
        [0.8202, 0.7466, 0.8011, 0.8447, 0.8229],
        [0.861, 0.8774, 0.8501, 0.8937, 0.891],
        [0.891, 0.9237, 0.8856, 0.9101, 0.891],
        [0.8937, 0.9373, 0.9128, 0.8719, 0.9128],
    ]

    sample_sizes = [165, 330, 825, 1651]
    fitted = {}

    def fit_and_predict(train_acc, sample_sizes, pred_sample_size):
        x = sample_sizes
        mean_acc = tf.convert_to_tensor([np.mean(i) for i in train_acc])
        error = [np.std(i) for i in train_acc]  # noqa: F841

        # Define mean squared error cost and exponential curve fit functions
        mse = keras.losses.MeanSquaredError()

        def exp_func(x, a, b):
            return a * x**b

        # Define variables, learning rate and number of epochs for fitting with TF
        a = tf.Variable(0.0)
        b = tf.Variable(0.0)
        learning_rate = 0.01
        training_epochs = 300

        # Fit the exponential function to the data
        for epoch in range(training_epochs):
            with tf.GradientTape() as tape:
                y_pred = exp_func(x, a, b)
                cost_function = mse(y_pred, mean_acc)
            # Get gradients and compute adjusted weights
            gradients = tape.gradient(cost_function, [a, b])
            a.assign_sub(gradients[0] * learning_rate)
            b.assign_sub(gradients[1] * learning_rate)
        print(f"Curve fit weights: a = {a.numpy()} and b = {b.numpy()}.")

        # We can now estimate the accuracy for pred_sample_size
        max_acc = exp_func(pred_sample_size, a, b).numpy()

        print(f"A model accuracy of {max_acc} is predicted for {pred_sample_size} samples.")
        x_cont = np.linspace(x[0], pred_sample_size, 100)
        exp_func(x_cont, a, b)  # (the plotted curve)

        mae = keras.losses.MeanAbsoluteError()
        print(f"The mae for the curve fit is {mae(mean_acc, exp_func(x, a, b)).numpy()}.")
        fitted.update(a=float(a.numpy()), b=float(b.numpy()), max_acc=float(max_acc))

    # We use the whole training set to predict the model accuracy
    fit_and_predict(train_acc, sample_sizes, pred_sample_size=num_train_samples)

    # Now train the model with full dataset to get the actual accuracy
    accuracy = train_model(img_train, label_train)
    print(f"A model accuracy of {accuracy} is reached on {num_train_samples} images!")

    assert 0.0 <= accuracy <= 1.0
    # Frozen base: the new Dense's kernel and bias; unfrozen from block_10 (BN excluded).
    assert counts[0] == 2 and counts[1] > counts[0]
    # The curve fit follows plain gradient descent on the MSE of a * x**b (float64 numpy).
    xs, mean = np.array(sample_sizes, float), np.array([np.mean(i) for i in train_acc])
    a, b = 0.0, 0.0
    for _ in range(300):
        residual = a * xs ** b - mean
        grad_a = np.mean(2 * residual * xs ** b)
        grad_b = np.mean(2 * residual * a * xs ** b * np.log(xs))
        a, b = a - 0.01 * grad_a, b - 0.01 * grad_b
    np.testing.assert_allclose([fitted["a"], fitted["b"]], [a, b], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(fitted["max_acc"], a * num_train_samples ** b, rtol=1e-3)
