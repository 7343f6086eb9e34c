"""keras.io example "Semi-supervised image classification using contrastive pretraining with
SimCLR" (examples/vision/semisupervised_simclr.py).

The Keras 3 code as written (TensorFlow backend: `import tensorflow as tf; import keras; from
keras import layers`, swapped for kgraph): the zipped unlabeled/labeled `tf.data` pipeline
(`shuffle`, `batch`, `prefetch(tf.data.AUTOTUNE)`, `tf.data.Dataset.zip`), the
`RandomColorAffine` layer (`tf.shape(images)[0]` of the traced batch into `tf.random.uniform`,
`tf.eye(3, batch_shape=[batch_size, 1])`, `tf.matmul`, `tf.clip_by_value`), the augmenters
(Rescaling, RandomFlip, RandomTranslation, RandomZoom with tuple factors), the strided-conv
encoder, the supervised baseline, the `ContrastiveModel` (its own `compile(contrastive_optimizer,
probe_optimizer)`, a `metrics` property, the NT-Xent loss with `tf.math.l2_normalize`,
`tf.matmul(transpose_b=True)`, `tf.range(batch_size)`, `keras.losses.sparse_categorical_crossentropy`,
two `GradientTape`s and `apply_gradients(zip(...))` per `train_step`, a `test_step` logging
`self.metrics[2:]`), and fine-tuning the pretrained encoder.

Replaced: `tfds.load("stl10", ...)` by `tf.data.Dataset`s of random uint8 96x96x3 images (label
-1 for the unlabelled split, as STL-10's). Sizes cut: 100,000 unlabeled and 5,000 labeled images
-> 40 and 20 (test 16), batch_size 525 -> 20 (3 steps per epoch of 13 + 6 images), width 128 ->
32, num_epochs 20 -> 1. `visualize_augmentations` and the training-curve plots are left out
(their augmenter calls are made and checked). The `resource.setrlimit` call is kept.

Checked: the contrastive loss and the contrastive accuracy against numpy on given projections;
`RandomColorAffine` with no brightness or jitter change is the identity on [0, 1] images and
keeps them in [0, 1] otherwise; fine-tuning trains the pretrained encoder itself. Marked slow
(~6 s: three models, the eager augmentations).
"""

import numpy as np
import pytest


def _stl10_load(tf, split, as_supervised, shuffle_files):
    """Stand-in for `tfds.load("stl10", split=..., as_supervised=True)`: (image, label) pairs."""
    assert as_supervised
    count = {"unlabelled": 40, "train": 20, "test": 16}[split]
    rng = np.random.default_rng(len(split))
    images = rng.integers(0, 256, (count, 96, 96, 3), dtype=np.uint8)
    labels = (np.full(count, -1) if split == "unlabelled" else rng.integers(0, 10, count))
    return tf.data.Dataset.from_tensor_slices((images, labels.astype(np.int64)))


@pytest.mark.slow
def test_semisupervised_simclr():
    # Make sure we are able to handle large datasets
    import resource

    low, high = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (high, high))

    import math

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)

    # Dataset hyperparameters
    unlabeled_dataset_size = 40  # 100000
    labeled_dataset_size = 20  # 5000
    image_channels = 3

    # Algorithm hyperparameters
    num_epochs = 1  # 20
    batch_size = 20  # 525: corresponds to 200 steps per epoch
    width = 32  # 128
    temperature = 0.1
    # Stronger augmentations for contrastive, weaker ones for supervised training
    contrastive_augmentation = {"min_area": 0.25, "brightness": 0.6, "jitter": 0.2}
    classification_augmentation = {
        "min_area": 0.75,
        "brightness": 0.3,
        "jitter": 0.1,
    }

    def prepare_dataset():
        # Labeled and unlabeled samples are loaded synchronously
        # with batch sizes selected accordingly
        steps_per_epoch = (unlabeled_dataset_size + labeled_dataset_size) // batch_size
        unlabeled_batch_size = unlabeled_dataset_size // steps_per_epoch
        labeled_batch_size = labeled_dataset_size // steps_per_epoch
        print(
            f"batch size is {unlabeled_batch_size} (unlabeled) + {labeled_batch_size} (labeled)"
        )

        # Turning off shuffle to lower resource usage
        unlabeled_train_dataset = (
            _stl10_load(tf, split="unlabelled", as_supervised=True, shuffle_files=False)
            .shuffle(buffer_size=10 * unlabeled_batch_size)
            .batch(unlabeled_batch_size)
        )
        labeled_train_dataset = (
            _stl10_load(tf, split="train", as_supervised=True, shuffle_files=False)
            .shuffle(buffer_size=10 * labeled_batch_size)
            .batch(labeled_batch_size)
        )
        test_dataset = (
            _stl10_load(tf, split="test", as_supervised=True, shuffle_files=True)
            .batch(batch_size)
            .prefetch(buffer_size=tf.data.AUTOTUNE)
        )

        # Labeled and unlabeled datasets are zipped together
        train_dataset = tf.data.Dataset.zip(
            (unlabeled_train_dataset, labeled_train_dataset)
        ).prefetch(buffer_size=tf.data.AUTOTUNE)

        return train_dataset, labeled_train_dataset, test_dataset

    # Load STL10 dataset
    train_dataset, labeled_train_dataset, test_dataset = prepare_dataset()

    # Distorts the color distibutions of images
    class RandomColorAffine(layers.Layer):
        def __init__(self, brightness=0, jitter=0, **kwargs):
            super().__init__(**kwargs)

            self.brightness = brightness
            self.jitter = jitter

        def get_config(self):
            config = super().get_config()
            config.update({"brightness": self.brightness, "jitter": self.jitter})
            return config

        def call(self, images, training=True):
            if training:
                batch_size = tf.shape(images)[0]

                # Same for all colors
                brightness_scales = 1 + tf.random.uniform(
                    (batch_size, 1, 1, 1),
                    minval=-self.brightness,
                    maxval=self.brightness,
                )
                # Different for all colors
                jitter_matrices = tf.random.uniform(
                    (batch_size, 1, 3, 3), minval=-self.jitter, maxval=self.jitter
                )

                color_transforms = (
                    tf.eye(3, batch_shape=[batch_size, 1]) * brightness_scales
                    + jitter_matrices
                )
                images = tf.clip_by_value(tf.matmul(images, color_transforms), 0, 1)
            return images

    # Image augmentation module
    def get_augmenter(min_area, brightness, jitter):
        zoom_factor = 1.0 - math.sqrt(min_area)
        return keras.Sequential(
            [
                layers.Rescaling(1 / 255),
                layers.RandomFlip("horizontal"),
                layers.RandomTranslation(zoom_factor / 2, zoom_factor / 2),
                layers.RandomZoom((-zoom_factor, 0.0), (-zoom_factor, 0.0)),
                RandomColorAffine(brightness, jitter),
            ]
        )

    def visualize_augmentations(num_images):
        # Sample a batch from a dataset
        images = next(iter(train_dataset))[0][0][:num_images]

        # Apply augmentations (plotted in the example)
        return list(zip(
            images,
            get_augmenter(**classification_augmentation)(images),
            get_augmenter(**contrastive_augmentation)(images),
            get_augmenter(**contrastive_augmentation)(images),
        ))

    augmented = visualize_augmentations(num_images=8)

    # Define the encoder architecture
    def get_encoder():
        return keras.Sequential(
            [
                layers.Conv2D(width, kernel_size=3, strides=2, activation="relu"),
                layers.Conv2D(width, kernel_size=3, strides=2, activation="relu"),
                layers.Conv2D(width, kernel_size=3, strides=2, activation="relu"),
                layers.Conv2D(width, kernel_size=3, strides=2, activation="relu"),
                layers.Flatten(),
                layers.Dense(width, activation="relu"),
            ],
            name="encoder",
        )

    # Baseline supervised training with random initialization
    baseline_model = keras.Sequential(
        [
            get_augmenter(**classification_augmentation),
            get_encoder(),
            layers.Dense(10),
        ],
        name="baseline_model",
    )
    baseline_model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )

    baseline_history = baseline_model.fit(
        labeled_train_dataset, epochs=num_epochs, validation_data=test_dataset
    )

    print(
        "Maximal validation accuracy: {:.2f}%".format(
            max(baseline_history.history["val_acc"]) * 100
        )
    )

    # Define the contrastive model with model-subclassing
    class ContrastiveModel(keras.Model):
        def __init__(self):
            super().__init__()

            self.temperature = temperature
            self.contrastive_augmenter = get_augmenter(**contrastive_augmentation)
            self.classification_augmenter = get_augmenter(**classification_augmentation)
            self.encoder = get_encoder()
            # Non-linear MLP as projection head
            self.projection_head = keras.Sequential(
                [
                    keras.Input(shape=(width,)),
                    layers.Dense(width, activation="relu"),
                    layers.Dense(width),
                ],
                name="projection_head",
            )
            # Single dense layer for linear probing
            self.linear_probe = keras.Sequential(
                [layers.Input(shape=(width,)), layers.Dense(10)],
                name="linear_probe",
            )

            self.encoder.summary()
            self.projection_head.summary()
            self.linear_probe.summary()

        def compile(self, contrastive_optimizer, probe_optimizer, **kwargs):
            super().compile(**kwargs)

            self.contrastive_optimizer = contrastive_optimizer
            self.probe_optimizer = probe_optimizer

            # self.contrastive_loss will be defined as a method
            self.probe_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

            self.contrastive_loss_tracker = keras.metrics.Mean(name="c_loss")
            self.contrastive_accuracy = keras.metrics.SparseCategoricalAccuracy(
                name="c_acc"
            )
            self.probe_loss_tracker = keras.metrics.Mean(name="p_loss")
            self.probe_accuracy = keras.metrics.SparseCategoricalAccuracy(name="p_acc")

        @property
        def metrics(self):
            return [
                self.contrastive_loss_tracker,
                self.contrastive_accuracy,
                self.probe_loss_tracker,
                self.probe_accuracy,
            ]

        def contrastive_loss(self, projections_1, projections_2):
            # InfoNCE loss (information noise-contrastive estimation)
            # NT-Xent loss (normalized temperature-scaled cross entropy)

            # Cosine similarity: the dot product of the l2-normalized feature vectors
            projections_1 = tf.math.l2_normalize(projections_1, axis=1)
            projections_2 = tf.math.l2_normalize(projections_2, axis=1)
            similarities = (
                tf.matmul(projections_1, projections_2, transpose_b=True) / self.temperature
            )

            # The similarity between the representations of two augmented views of the
            # same image should be higher than their similarity with other views
            batch_size = tf.shape(projections_1)[0]
            contrastive_labels = tf.range(batch_size)
            self.contrastive_accuracy.update_state(contrastive_labels, similarities)
            self.contrastive_accuracy.update_state(
                contrastive_labels, tf.transpose(similarities)
            )

            # The temperature-scaled similarities are used as logits for cross-entropy
            # a symmetrized version of the loss is used here
            loss_1_2 = keras.losses.sparse_categorical_crossentropy(
                contrastive_labels, similarities, from_logits=True
            )
            loss_2_1 = keras.losses.sparse_categorical_crossentropy(
                contrastive_labels, tf.transpose(similarities), from_logits=True
            )
            return (loss_1_2 + loss_2_1) / 2

        def train_step(self, data):
            (unlabeled_images, _), (labeled_images, labels) = data

            # Both labeled and unlabeled images are used, without labels
            images = tf.concat((unlabeled_images, labeled_images), axis=0)
            # Each image is augmented twice, differently
            augmented_images_1 = self.contrastive_augmenter(images, training=True)
            augmented_images_2 = self.contrastive_augmenter(images, training=True)
            with tf.GradientTape() as tape:
                features_1 = self.encoder(augmented_images_1, training=True)
                features_2 = self.encoder(augmented_images_2, training=True)
                # The representations are passed through a projection mlp
                projections_1 = self.projection_head(features_1, training=True)
                projections_2 = self.projection_head(features_2, training=True)
                contrastive_loss = self.contrastive_loss(projections_1, projections_2)
            gradients = tape.gradient(
                contrastive_loss,
                self.encoder.trainable_weights + self.projection_head.trainable_weights,
            )
            self.contrastive_optimizer.apply_gradients(
                zip(
                    gradients,
                    self.encoder.trainable_weights + self.projection_head.trainable_weights,
                )
            )
            self.contrastive_loss_tracker.update_state(contrastive_loss)

            # Labels are only used in evalutation for an on-the-fly logistic regression
            preprocessed_images = self.classification_augmenter(
                labeled_images, training=True
            )
            with tf.GradientTape() as tape:
                # the encoder is used in inference mode here to avoid regularization
                # and updating the batch normalization paramers if they are used
                features = self.encoder(preprocessed_images, training=False)
                class_logits = self.linear_probe(features, training=True)
                probe_loss = self.probe_loss(labels, class_logits)
            gradients = tape.gradient(probe_loss, self.linear_probe.trainable_weights)
            self.probe_optimizer.apply_gradients(
                zip(gradients, self.linear_probe.trainable_weights)
            )
            self.probe_loss_tracker.update_state(probe_loss)
            self.probe_accuracy.update_state(labels, class_logits)

            return {m.name: m.result() for m in self.metrics}

        def test_step(self, data):
            labeled_images, labels = data

            # For testing the components are used with a training=False flag
            preprocessed_images = self.classification_augmenter(
                labeled_images, training=False
            )
            features = self.encoder(preprocessed_images, training=False)
            class_logits = self.linear_probe(features, training=False)
            probe_loss = self.probe_loss(labels, class_logits)
            self.probe_loss_tracker.update_state(probe_loss)
            self.probe_accuracy.update_state(labels, class_logits)

            # Only the probe metrics are logged at test time
            return {m.name: m.result() for m in self.metrics[2:]}

    # Contrastive pretraining
    pretraining_model = ContrastiveModel()
    pretraining_model.compile(
        contrastive_optimizer=keras.optimizers.Adam(),
        probe_optimizer=keras.optimizers.Adam(),
    )

    pretraining_history = pretraining_model.fit(
        train_dataset, epochs=num_epochs, validation_data=test_dataset
    )
    print(
        "Maximal validation accuracy: {:.2f}%".format(
            max(pretraining_history.history["val_p_acc"]) * 100
        )
    )

    encoder_after_pretraining = [w.numpy().copy() for w in pretraining_model.encoder.weights]

    # Supervised finetuning of the pretrained encoder
    finetuning_model = keras.Sequential(
        [
            get_augmenter(**classification_augmentation),
            pretraining_model.encoder,
            layers.Dense(10),
        ],
        name="finetuning_model",
    )
    finetuning_model.compile(
        optimizer=keras.optimizers.Adam(),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="acc")],
    )

    finetuning_history = finetuning_model.fit(
        labeled_train_dataset, epochs=num_epochs, validation_data=test_dataset
    )
    print(
        "Maximal validation accuracy: {:.2f}%".format(
            max(finetuning_history.history["val_acc"]) * 100
        )
    )

    # the plots' keys
    assert set(pretraining_history.history) == {
        "c_loss", "c_acc", "p_loss", "p_acc", "val_p_loss", "val_p_acc"}
    for history in (baseline_history, finetuning_history):
        assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}
    assert len(augmented) == 8 and all(
        a.shape == (96, 96, 3) and 0 <= float(np.min(a)) and float(np.max(a)) <= 1
        for row in augmented for a in row[1:])
    # fine-tuning trains the pretrained encoder itself (shared, not copied)
    assert any(not np.allclose(w.numpy(), before)
               for w, before in zip(pretraining_model.encoder.weights, encoder_after_pretraining))

    # the NT-Xent loss and the contrastive accuracy against numpy
    rng = np.random.default_rng(3)
    p1, p2 = rng.normal(size=(2, 6, width)).astype("float32")
    pretraining_model.contrastive_accuracy.reset_state()
    loss = pretraining_model.contrastive_loss(p1, p2)

    def unit(p):
        return p / np.linalg.norm(p, axis=1, keepdims=True)

    sims = unit(p1) @ unit(p2).T / temperature

    def xent(logits):
        logits = logits - logits.max(axis=1, keepdims=True)
        return -np.diag(logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)))

    np.testing.assert_allclose(loss, (xent(sims) + xent(sims.T)) / 2, rtol=1e-4, atol=1e-5)
    hits = np.concatenate([sims.argmax(1), sims.T.argmax(1)]) == np.tile(np.arange(6), 2)
    np.testing.assert_allclose(float(pretraining_model.contrastive_accuracy.result()),
                               hits.mean(), rtol=1e-6)

    # RandomColorAffine: identity without brightness or jitter, [0, 1] kept with them
    images = rng.uniform(0, 1, (4, 5, 5, 3)).astype("float32")
    np.testing.assert_allclose(RandomColorAffine(0, 0)(images), images, rtol=1e-6)
    jittered = np.asarray(RandomColorAffine(0.6, 0.2)(images))
    assert jittered.min() >= 0 and jittered.max() <= 1 and not np.allclose(jittered, images)
