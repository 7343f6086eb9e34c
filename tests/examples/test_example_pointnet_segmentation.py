"""keras.io example "Point cloud segmentation with PointNet"
(examples/vision/pointnet_segmentation.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras; from tensorflow.keras import layers, losses, initializers,
optimizers, callbacks, regularizers`, swapped for kgraph): `keras.utils.get_file(fname=
"shapenet.zip", ..., extract=True, cache_dir="datasets")`, the metadata JSON, `.pts`/`.seg`
files read with `np.loadtxt` over tqdm, `to_categorical` part labels (clouds without labels kept
as test clouds through the `KeyError`), random point sampling and normalization, tf.data maps
with `set_shape` and a float64 `tf.random.uniform(tf.shape(...))` jitter sliced `[:, :, :3]`,
the segmentation PointNet on `Input(shape=(None, 3))` (T-nets with the custom
`OrthogonalRegularizer` using `tf.tensordot`, `layers.Dot(axes=(2, 1))`, a
`MaxPool1D(pool_size=num_points)` over the open length, `tf.tile` of a KerasTensor, a 6-way
`Concatenate`), the `LRStepDecay` schedule in a `LearningRateScheduler`, a best-only weights
`ModelCheckpoint` read back with `load_weights`, and `predict` on a validation batch.

Replaced: the ShapeNet download by a zip generated in the place `get_file` caches it (it is
found there and extracted, no network); the extracted "/tmp/.keras/datasets/PartAnnotation"
prefix (the Colab Keras cache) by `get_file`'s extraction directory; the checkpoint path
"/tmp/checkpoint" by "checkpoint.weights.h5" under the test's folder (Keras 3 wants that
suffix); pandas/plotly/matplotlib visualizations left out (the schedule's values are computed).
Sizes cut: N_SAMPLE_POINTS 1024 -> 64, BATCH_SIZE 32 -> 4, 10 labelled clouds (+1 unlabelled),
60 epochs -> 1.

Checked: the one-hot labels follow the `.seg` files (last class: no part); sampled clouds are
centred with unit maximum norm; the learning rates the scheduler set; predictions are per-point
distributions; the checkpoint reloads into the model.
"""

import json
import os
import random
import zipfile
from glob import glob

import numpy as np


def _write_shapenet_zip(path, rng):
    labels = ["wing", "body", "tail", "engine"]
    metadata = {"Airplane": {"directory": "02691156", "lables": labels,
                             "colors": ["blue", "red", "green", "pink"]}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("PartAnnotation/metadata.json", json.dumps(metadata))
        for i in range(11):
            n = int(rng.integers(70, 90))
            points = rng.normal(size=(n, 3))
            name = f"{i:04d}"
            archive.writestr(f"PartAnnotation/02691156/points/{name}.pts",
                             "\n".join(" ".join(f"{v:.5f}" for v in p) for p in points))
            if i == 10:
                continue  # no labels: a test cloud
            part = rng.integers(0, 5, n)  # 4: none of the parts
            for k, label in enumerate(labels):
                archive.writestr(f"PartAnnotation/02691156/points_label/{label}/{name}.seg",
                                 "\n".join(str(int(p == k)) for p in part))


def test_pointnet_segmentation(tmp_path, monkeypatch):
    from tqdm import tqdm

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import (
        layers,
        losses,
        initializers,
        optimizers,
        callbacks,
        regularizers,
    )

    monkeypatch.chdir(tmp_path)
    os.makedirs("datasets/datasets")
    _write_shapenet_zip("datasets/datasets/shapenet.zip", np.random.default_rng(0))
    keras.utils.set_random_seed(0)
    random.seed(0)

    dataset_url = "https://git.io/JiY4i"

    dataset_path = keras.utils.get_file(
        fname="shapenet.zip",
        origin=dataset_url,
        cache_subdir="datasets",
        hash_algorithm="auto",
        extract=True,
        archive_format="auto",
        cache_dir="datasets",
    )
    keras_cache = dataset_path  # "/tmp/.keras/datasets" in the example's Colab

    with open(f"{keras_cache}/PartAnnotation/metadata.json") as json_file:
        metadata = json.load(json_file)

    points_dir = (keras_cache + "/PartAnnotation/{}/points").format(
        metadata["Airplane"]["directory"]
    )
    labels_dir = (keras_cache + "/PartAnnotation/{}/points_label").format(
        metadata["Airplane"]["directory"]
    )
    LABELS = metadata["Airplane"]["lables"]
    COLORS = metadata["Airplane"]["colors"]
    VAL_SPLIT = 0.2
    N_SAMPLE_POINTS = 64  # 1024
    BATCH_SIZE = 4  # 32
    INITIAL_LR = 1e-3

    point_clouds, test_point_clouds = [], []
    point_cloud_labels, all_labels = [], []

    points_files = glob(os.path.join(points_dir, "*.pts"))
    for point_file in tqdm(points_files):
        point_cloud = np.loadtxt(point_file)
        if point_cloud.shape[0] < N_SAMPLE_POINTS:
            continue

        # Get the file-id of the current point cloud for parsing its
        # labels.
        file_id = point_file.split("/")[-1].split(".")[0]
        label_data, num_labels = {}, 0
        for label in LABELS:
            label_file = os.path.join(labels_dir, label, file_id + ".seg")
            if os.path.exists(label_file):
                label_data[label] = np.loadtxt(label_file).astype("float32")
                num_labels = len(label_data[label])

        # Point clouds having labels will be our training samples.
        try:
            label_map = ["none"] * num_labels
            for label in LABELS:
                for i, data in enumerate(label_data[label]):
                    label_map[i] = label if data == 1 else label_map[i]
            label_data = [
                LABELS.index(label) if label != "none" else len(LABELS)
                for label in label_map
            ]
            # Apply one-hot encoding to the dense label representation.
            label_data = keras.utils.to_categorical(label_data, num_classes=len(LABELS) + 1)

            point_clouds.append(point_cloud)
            point_cloud_labels.append(label_data)
            all_labels.append(label_map)
        except KeyError:
            test_point_clouds.append(point_cloud)

    for _ in range(5):
        i = random.randint(0, len(point_clouds) - 1)
        print(f"point_clouds[{i}].shape:", point_clouds[0].shape)
        print(f"point_cloud_labels[{i}].shape:", point_cloud_labels[0].shape)

    for index in tqdm(range(len(point_clouds))):
        current_point_cloud = point_clouds[index]
        current_label_cloud = point_cloud_labels[index]
        current_labels = all_labels[index]
        n_points = len(current_point_cloud)
        # Randomly sampling respective indices.
        sampled_indices = random.sample(list(range(n_points)), N_SAMPLE_POINTS)
        # Sampling points corresponding to sampled indices.
        sampled_point_cloud = np.array([current_point_cloud[i] for i in sampled_indices])
        # Sampling corresponding one-hot encoded labels.
        sampled_label_cloud = np.array([current_label_cloud[i] for i in sampled_indices])
        # Sampling corresponding labels for visualization.
        sampled_labels = np.array([current_labels[i] for i in sampled_indices])
        # Normalizing sampled point cloud.
        norm_point_cloud = sampled_point_cloud - np.mean(sampled_point_cloud, axis=0)
        norm_point_cloud /= np.max(np.linalg.norm(norm_point_cloud, axis=1))
        point_clouds[index] = norm_point_cloud
        point_cloud_labels[index] = sampled_label_cloud
        all_labels[index] = sampled_labels

    def load_data(point_cloud_batch, label_cloud_batch):
        point_cloud_batch.set_shape([N_SAMPLE_POINTS, 3])
        label_cloud_batch.set_shape([N_SAMPLE_POINTS, len(LABELS) + 1])
        return point_cloud_batch, label_cloud_batch

    def augment(point_cloud_batch, label_cloud_batch):
        noise = tf.random.uniform(
            tf.shape(label_cloud_batch), -0.005, 0.005, dtype=tf.float64
        )
        point_cloud_batch += noise[:, :, :3]
        return point_cloud_batch, label_cloud_batch

    def generate_dataset(point_clouds, label_clouds, is_training=True):
        dataset = tf.data.Dataset.from_tensor_slices((point_clouds, label_clouds))
        dataset = dataset.shuffle(BATCH_SIZE * 100) if is_training else dataset
        dataset = dataset.map(load_data, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.batch(batch_size=BATCH_SIZE)
        dataset = (
            dataset.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
            if is_training
            else dataset
        )
        return dataset

    split_index = int(len(point_clouds) * (1 - VAL_SPLIT))
    train_point_clouds = point_clouds[:split_index]
    train_label_cloud = point_cloud_labels[:split_index]

    val_point_clouds = point_clouds[split_index:]
    val_label_cloud = point_cloud_labels[split_index:]

    print("Num train point clouds:", len(train_point_clouds))
    print("Num val point clouds:", len(val_point_clouds))

    train_dataset = generate_dataset(train_point_clouds, train_label_cloud)
    val_dataset = generate_dataset(val_point_clouds, val_label_cloud, is_training=False)

    def conv_block(x: tf.Tensor, filters: int, name: str) -> tf.Tensor:
        x = layers.Conv1D(filters, kernel_size=1, padding="valid", name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=0.0, name=f"{name}_batch_norm")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    def mlp_block(x: tf.Tensor, filters: int, name: str) -> tf.Tensor:
        x = layers.Dense(filters, name=f"{name}_dense")(x)
        x = layers.BatchNormalization(momentum=0.0, name=f"{name}_batch_norm")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    class OrthogonalRegularizer(regularizers.Regularizer):
        """Reference: https://keras.io/examples/vision/pointnet/#build-a-model"""

        def __init__(self, num_features, l2reg=0.001):
            self.num_features = num_features
            self.l2reg = l2reg
            self.identity = tf.eye(num_features)

        def __call__(self, x):
            x = tf.reshape(x, (-1, self.num_features, self.num_features))
            xxt = tf.tensordot(x, x, axes=(2, 2))
            xxt = tf.reshape(xxt, (-1, self.num_features, self.num_features))
            return tf.reduce_sum(self.l2reg * tf.square(xxt - self.identity))

    def transformation_net(inputs: tf.Tensor, num_features: int, name: str) -> tf.Tensor:
        x = conv_block(inputs, filters=64, name=f"{name}_1")
        x = conv_block(x, filters=128, name=f"{name}_2")
        x = conv_block(x, filters=1024, name=f"{name}_3")
        x = layers.GlobalMaxPooling1D()(x)
        x = mlp_block(x, filters=512, name=f"{name}_1_1")
        x = mlp_block(x, filters=256, name=f"{name}_2_1")
        return layers.Dense(
            num_features * num_features,
            kernel_initializer="zeros",
            bias_initializer=initializers.Constant(np.eye(num_features).flatten()),
            activity_regularizer=OrthogonalRegularizer(num_features),
            name=f"{name}_final",
        )(x)

    def transformation_block(inputs: tf.Tensor, num_features: int, name: str) -> tf.Tensor:
        transformed_features = transformation_net(inputs, num_features, name=name)
        transformed_features = layers.Reshape((num_features, num_features))(
            transformed_features
        )
        return layers.Dot(axes=(2, 1), name=f"{name}_mm")([inputs, transformed_features])

    def get_shape_segmentation_model(num_points: int, num_classes: int) -> keras.Model:
        input_points = keras.Input(shape=(None, 3))

        # PointNet Classification Network.
        transformed_inputs = transformation_block(
            input_points, num_features=3, name="input_transformation_block"
        )
        features_64 = conv_block(transformed_inputs, filters=64, name="features_64")
        features_128_1 = conv_block(features_64, filters=128, name="features_128_1")
        features_128_2 = conv_block(features_128_1, filters=128, name="features_128_2")
        transformed_features = transformation_block(
            features_128_2, num_features=128, name="transformed_features"
        )
        features_512 = conv_block(transformed_features, filters=512, name="features_512")
        features_2048 = conv_block(features_512, filters=2048, name="pre_maxpool_block")
        global_features = layers.MaxPool1D(pool_size=num_points, name="global_features")(
            features_2048
        )
        global_features = tf.tile(global_features, [1, num_points, 1])

        # Segmentation Head.
        segmentation_input = layers.Concatenate(name="segmentation_input")(
            [
                features_64,
                features_128_1,
                features_128_2,
                transformed_features,
                features_512,
                global_features,
            ]
        )
        segmentation_features = conv_block(
            segmentation_input, filters=128, name="segmentation_features"
        )
        outputs = layers.Conv1D(
            num_classes, kernel_size=1, activation="softmax", name="segmentation_head"
        )(segmentation_features)
        return keras.Model(input_points, outputs)

    x, y = next(iter(train_dataset))

    num_points = x.shape[1]
    num_classes = y.shape[-1]

    segmentation_model = get_shape_segmentation_model(num_points, num_classes)
    segmentation_model.summary()

    class LRStepDecay:
        def __init__(self, initial_lr: float, drop_every: int, decay_factor: float) -> None:
            super().__init__()
            self.initial_lr = initial_lr
            self.drop_every = drop_every
            self.decay_factor = decay_factor

        def __call__(self, epoch: int) -> float:
            exp = np.floor((1 + epoch) / self.drop_every)
            new_lr = self.initial_lr * (self.decay_factor ** exp)
            return new_lr

    step_decay_scheduler = LRStepDecay(INITIAL_LR, 15, 0.5)
    lrs = [step_decay_scheduler(i) for i in range(60)]  # step_decay_scheduler.plot(60)

    lr_callback = tf.keras.callbacks.LearningRateScheduler(
        lambda epoch: step_decay_scheduler(epoch), verbose=True
    )

    def run_experiment(epochs):

        segmentation_model = get_shape_segmentation_model(num_points, num_classes)
        segmentation_model.compile(
            optimizer=optimizers.Adam(learning_rate=INITIAL_LR),
            loss=losses.CategoricalCrossentropy(),
            metrics=["accuracy"],
        )

        checkpoint_filepath = "checkpoint.weights.h5"  # "/tmp/checkpoint"
        checkpoint_callback = callbacks.ModelCheckpoint(
            checkpoint_filepath,
            monitor="val_loss",
            save_best_only=True,
            save_weights_only=True,
        )

        history = segmentation_model.fit(
            train_dataset,
            validation_data=val_dataset,
            epochs=epochs,
            callbacks=[checkpoint_callback, lr_callback],
        )

        segmentation_model.load_weights(checkpoint_filepath)
        return segmentation_model, history

    segmentation_model, history = run_experiment(epochs=1)  # 60

    validation_batch = next(iter(val_dataset))
    val_predictions = segmentation_model.predict(validation_batch[0])
    print(f"Validation prediction shape: {val_predictions.shape}")

    assert len(point_clouds) == 10 and len(test_point_clouds) == 1
    for labels, hot in zip(all_labels, point_cloud_labels):
        assert hot.shape == (64, 5)
        np.testing.assert_array_equal(
            hot.argmax(1), [LABELS.index(k) if k != "none" else 4 for k in labels])
    for cloud in point_clouds:
        np.testing.assert_allclose(cloud.mean(axis=0), 0.0, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(cloud, axis=1).max(), 1.0)
    assert lrs[13] == 1e-3 and lrs[14] == 5e-4 and lrs[29] == 2.5e-4
    np.testing.assert_allclose(history.history["learning_rate"], [1e-3], rtol=1e-6)
    assert val_predictions.shape == (2, 64, 5)
    np.testing.assert_allclose(val_predictions.sum(-1), 1.0, rtol=1e-5)
    assert x.shape == (4, 64, 3) and COLORS[0] == "blue"
