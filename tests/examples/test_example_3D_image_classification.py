"""keras.io example "3D image classification from CT scans"
(examples/vision/3D_image_classification.py).

The Keras 3 code as written (last modified 2024/01/11; `import tensorflow as tf  # for data
preprocessing`, `import keras`, `from keras import layers`) with the imports swapped for
kgraph: the HU normalization and `scipy.ndimage` rotate/zoom resizing, a tf.data pipeline
(`shuffle`/`map`/`batch`/`prefetch`) whose train map rotates each volume by a random angle
and adds the channel with `tf.expand_dims(volume, axis=3)`, the four-block Conv3D /
MaxPool3D / BatchNormalization network with GlobalAveragePooling3D (1,352,897 parameters, as
keras.io prints), `ExponentialDecay` under Adam, `compile(run_eagerly=True)`, a best-only
`.keras` ModelCheckpoint and EarlyStopping on `val_acc`, `model.history.history`, then
`model.load_weights("3d_image_classification.keras")` and a prediction on one scan.

Replaced: the MosMedData download and its nibabel reading (`read_nifti_file` returns a random
HU volume of a small raw shape); the rotation's `tf.numpy_function(scipy_rotate, [volume],
tf.float32)` (a TensorFlow-only facility) calls `scipy_rotate` on the volume's array. Sizes
cut: 128x128x64 volumes -> 46x46x46 (the smallest the four conv/pool blocks take; the weights do
not depend on it), 200 scans -> 4 (2 train, 2 validation: one batch each), epochs 100 -> 1,
files under pytest's tmp_path. The matplotlib slices and curves are left out (the arrays they show are
checked). Marked slow (~4 s: three 3D convolutions over 44^3 voxels per scan).
"""

import os

import numpy as np
import pytest


@pytest.mark.slow
def test_3D_image_classification(tmp_path, monkeypatch):
    import kgraph as tf  # for data preprocessing

    from kgraph import keras
    from kgraph.keras import layers

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)

    def read_nifti_file(filepath):
        """Read and load volume (stand-in: a random scan in Hounsfield units)"""
        return rng.uniform(-1100, 600, (50, 50, 30))

    def normalize(volume):
        """Normalize the volume"""
        min = -1000
        max = 400
        volume[volume < min] = min
        volume[volume > max] = max
        volume = (volume - min) / (max - min)
        volume = volume.astype("float32")
        return volume

    from scipy import ndimage

    def resize_volume(img):
        """Resize across z-axis"""
        # Set the desired depth
        desired_depth = 46
        desired_width = 46
        desired_height = 46
        # Get current depth
        current_depth = img.shape[-1]
        current_width = img.shape[0]
        current_height = img.shape[1]
        # Compute depth factor
        depth = current_depth / desired_depth
        width = current_width / desired_width
        height = current_height / desired_height
        depth_factor = 1 / depth
        width_factor = 1 / width
        height_factor = 1 / height
        # Rotate
        img = ndimage.rotate(img, 90, reshape=False)
        # Resize across z-axis
        img = ndimage.zoom(img, (width_factor, height_factor, depth_factor), order=1)
        return img

    def process_scan(path):
        """Read and resize volume"""
        # Read scan
        volume = read_nifti_file(path)
        # Normalize
        volume = normalize(volume)
        # Resize width, height and depth
        volume = resize_volume(volume)
        return volume

    normal_scan_paths = [os.path.join("MosMedData/CT-0", f"study_{i:04d}.nii.gz")
                         for i in range(2)]
    abnormal_scan_paths = [os.path.join("MosMedData/CT-23", f"study_{i:04d}.nii.gz")
                           for i in range(2)]

    abnormal_scans = np.array([process_scan(path) for path in abnormal_scan_paths])
    normal_scans = np.array([process_scan(path) for path in normal_scan_paths])

    abnormal_labels = np.array([1 for _ in range(len(abnormal_scans))])
    normal_labels = np.array([0 for _ in range(len(normal_scans))])

    # Split data in the ratio 70-30 for training and validation (70 -> 1 per class).
    x_train = np.concatenate((abnormal_scans[:1], normal_scans[:1]), axis=0)
    y_train = np.concatenate((abnormal_labels[:1], normal_labels[:1]), axis=0)
    x_val = np.concatenate((abnormal_scans[1:], normal_scans[1:]), axis=0)
    y_val = np.concatenate((abnormal_labels[1:], normal_labels[1:]), axis=0)
    print(
        "Number of samples in train and validation are %d and %d."
        % (x_train.shape[0], x_val.shape[0])
    )

    import random

    random.seed(0)

    def rotate(volume):
        """Rotate the volume by a few degrees"""

        def scipy_rotate(volume):
            # define some rotation angles
            angles = [-20, -10, -5, 5, 10, 20]
            # pick angles at random
            angle = random.choice(angles)
            # rotate volume
            volume = ndimage.rotate(volume, angle, reshape=False)
            volume[volume < 0] = 0
            volume[volume > 1] = 1
            return volume

        # tf.numpy_function(scipy_rotate, [volume], tf.float32) in the example
        augmented_volume = scipy_rotate(np.array(volume, dtype="float32"))
        return augmented_volume

    def train_preprocessing(volume, label):
        """Process training data by rotating and adding a channel."""
        # Rotate volume
        volume = rotate(volume)
        volume = tf.expand_dims(volume, axis=3)
        return volume, label

    def validation_preprocessing(volume, label):
        """Process validation data by only adding a channel."""
        volume = tf.expand_dims(volume, axis=3)
        return volume, label

    # Define data loaders.
    train_loader = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    validation_loader = tf.data.Dataset.from_tensor_slices((x_val, y_val))

    batch_size = 2
    # Augment the on the fly during training.
    train_dataset = (
        train_loader.shuffle(len(x_train))
        .map(train_preprocessing)
        .batch(batch_size)
        .prefetch(2)
    )
    # Only rescale.
    validation_dataset = (
        validation_loader.shuffle(len(x_val))
        .map(validation_preprocessing)
        .batch(batch_size)
        .prefetch(2)
    )

    data = train_dataset.take(1)
    images, labels = list(data)[0]
    images = images.numpy()
    image = images[0]
    print("Dimension of the CT scan is:", image.shape)
    assert image.shape == (46, 46, 46, 1)
    assert 0.0 <= image.min() and image.max() <= 1.0

    def get_model(width=128, height=128, depth=64):
        """Build a 3D convolutional neural network model."""

        inputs = keras.Input((width, height, depth, 1))

        x = layers.Conv3D(filters=64, kernel_size=3, activation="relu")(inputs)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv3D(filters=64, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv3D(filters=128, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.Conv3D(filters=256, kernel_size=3, activation="relu")(x)
        x = layers.MaxPool3D(pool_size=2)(x)
        x = layers.BatchNormalization()(x)

        x = layers.GlobalAveragePooling3D()(x)
        x = layers.Dense(units=512, activation="relu")(x)
        x = layers.Dropout(0.3)(x)

        outputs = layers.Dense(units=1, activation="sigmoid")(x)

        # Define the model.
        model = keras.Model(inputs, outputs, name="3dcnn")
        return model

    # Build model.
    model = get_model(width=46, height=46, depth=46)
    model.summary()

    # Compile model.
    initial_learning_rate = 0.0001
    lr_schedule = keras.optimizers.schedules.ExponentialDecay(
        initial_learning_rate, decay_steps=100000, decay_rate=0.96, staircase=True
    )
    model.compile(
        loss="binary_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=lr_schedule),
        metrics=["acc"],
        run_eagerly=True,
    )

    # Define callbacks.
    checkpoint_cb = keras.callbacks.ModelCheckpoint(
        "3d_image_classification.keras", save_best_only=True
    )
    early_stopping_cb = keras.callbacks.EarlyStopping(monitor="val_acc", patience=15)

    # Train the model, doing validation at the end of each epoch
    epochs = 1
    model.fit(
        train_dataset,
        validation_data=validation_dataset,
        epochs=epochs,
        shuffle=True,
        verbose=2,
        callbacks=[checkpoint_cb, early_stopping_cb],
    )

    curves = {}
    for i, metric in enumerate(["acc", "loss"]):
        curves[metric] = (model.history.history[metric],
                          model.history.history["val_" + metric])

    # Load best weights.
    model.load_weights("3d_image_classification.keras")
    prediction = model.predict(np.expand_dims(x_val[0], axis=0))[0]
    scores = [1 - prediction[0], prediction[0]]

    class_names = ["normal", "abnormal"]
    for score, name in zip(scores, class_names):
        print(
            "This model is %.2f percent confident that CT scan is %s"
            % ((100 * score), name)
        )

    assert model.count_params() == 1352897  # the example's printed summary
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 1024
    assert all(len(train) == len(val) == 1 for train, val in curves.values())
    np.testing.assert_allclose(sum(scores), 1.0, rtol=1e-6)
