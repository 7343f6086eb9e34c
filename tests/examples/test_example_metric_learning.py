"""keras.io example "Metric learning for image similarity search"
(examples/vision/metric_learning.py).

The example's code as written, `import tensorflow as tf; from tensorflow import keras` (and
`tensorflow.keras.layers`) swapped for kgraph: the class -> indices lookup, a
`keras.utils.Sequence` of `(anchor, positive)` batches (one pair per class), an
`EmbeddingModel` whose `train_step` embeds both with a `tf.GradientTape`, takes
`tf.einsum("ae,pe->ap", ...)` similarities over a temperature and
`self.compiled_loss(tf.range(num_classes), similarities)`, applies the gradients and updates
`self.compiled_metrics`; a small convnet whose embeddings go through `tf.nn.l2_normalize` on a
KerasTensor; then near neighbours from `np.einsum` over `model.predict(x_test)`, the collages
drawn with Pillow and the neighbour confusion matrix. CIFAR-10 is replaced by random images of
its shapes and dtypes (200 train, 100 test); the collage sampler's `np.random.randint(0, 50000)`
follows to 200, 1000 batches to 20, 20 epochs to 2. matplotlib and sklearn's
`ConfusionMatrixDisplay` (display only) are left out.
"""
import random
from collections import defaultdict

import numpy as np


def test_metric_learning():
    from PIL import Image

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    rng = np.random.default_rng(0)
    (x_train, y_train), (x_test, y_test) = (
        (rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8),
         rng.integers(0, 10, (200, 1), dtype=np.uint8)),
        (rng.integers(0, 256, (100, 32, 32, 3), dtype=np.uint8),
         rng.integers(0, 10, (100, 1), dtype=np.uint8)))
    random.seed(0)

    x_train = x_train.astype("float32") / 255.0
    y_train = np.squeeze(y_train)
    x_test = x_test.astype("float32") / 255.0
    y_test = np.squeeze(y_test)

    height_width = 32

    def show_collage(examples):
        box_size = height_width + 2
        num_rows, num_cols = examples.shape[:2]

        collage = Image.new(
            mode="RGB",
            size=(num_cols * box_size, num_rows * box_size),
            color=(250, 250, 250),
        )
        for row_idx in range(num_rows):
            for col_idx in range(num_cols):
                array = (np.array(examples[row_idx, col_idx]) * 255).astype(np.uint8)
                collage.paste(
                    Image.fromarray(array), (col_idx * box_size, row_idx * box_size)
                )

        collage = collage.resize((2 * num_cols * box_size, 2 * num_rows * box_size))
        return collage

    sample_idxs = np.random.randint(0, 200, size=(5, 5))
    examples = x_train[sample_idxs]
    assert show_collage(examples).size == (340, 340)

    class_idx_to_train_idxs = defaultdict(list)
    for y_train_idx, y in enumerate(y_train):
        class_idx_to_train_idxs[y].append(y_train_idx)

    class_idx_to_test_idxs = defaultdict(list)
    for y_test_idx, y in enumerate(y_test):
        class_idx_to_test_idxs[y].append(y_test_idx)

    num_classes = 10

    class AnchorPositivePairs(keras.utils.Sequence):
        def __init__(self, num_batchs):
            self.num_batchs = num_batchs

        def __len__(self):
            return self.num_batchs

        def __getitem__(self, _idx):
            x = np.empty((2, num_classes, height_width, height_width, 3), dtype=np.float32)
            for class_idx in range(num_classes):
                examples_for_class = class_idx_to_train_idxs[class_idx]
                anchor_idx = random.choice(examples_for_class)
                positive_idx = random.choice(examples_for_class)
                while positive_idx == anchor_idx:
                    positive_idx = random.choice(examples_for_class)
                x[0, class_idx] = x_train[anchor_idx]
                x[1, class_idx] = x_train[positive_idx]
            return x

    examples = next(iter(AnchorPositivePairs(num_batchs=1)))
    assert examples.shape == (2, 10, 32, 32, 3)
    show_collage(examples)

    class EmbeddingModel(keras.Model):
        def train_step(self, data):
            # Note: Workaround for open issue, to be removed.
            if isinstance(data, tuple):
                data = data[0]
            anchors, positives = data[0], data[1]

            with tf.GradientTape() as tape:
                anchor_embeddings = self(anchors, training=True)
                positive_embeddings = self(positives, training=True)

                similarities = tf.einsum(
                    "ae,pe->ap", anchor_embeddings, positive_embeddings
                )

                temperature = 0.2
                similarities /= temperature

                sparse_labels = tf.range(num_classes)
                loss = self.compiled_loss(sparse_labels, similarities)

            gradients = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))

            self.compiled_metrics.update_state(sparse_labels, similarities)
            return {m.name: m.result() for m in self.metrics}

    inputs = layers.Input(shape=(height_width, height_width, 3))
    x = layers.Conv2D(filters=32, kernel_size=3, strides=2, activation="relu")(inputs)
    x = layers.Conv2D(filters=64, kernel_size=3, strides=2, activation="relu")(x)
    x = layers.Conv2D(filters=128, kernel_size=3, strides=2, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    embeddings = layers.Dense(units=8, activation=None)(x)
    embeddings = tf.nn.l2_normalize(embeddings, axis=-1)

    model = EmbeddingModel(inputs, embeddings)

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )

    history = model.fit(AnchorPositivePairs(num_batchs=20), epochs=2, verbose=0)
    losses = history.history["loss"]
    # cross-entropy over 10 classes from unit-length embeddings at temperature 0.2
    assert len(losses) == 2 and all(0.0 < v < 10.0 for v in losses)

    near_neighbours_per_example = 10

    embeddings = model.predict(x_test, verbose=0)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=-1), 1.0, rtol=1e-5)
    gram_matrix = np.einsum("ae,be->ab", embeddings, embeddings)
    near_neighbours = np.argsort(gram_matrix.T)[:, -(near_neighbours_per_example + 1) :]

    num_collage_examples = 5

    examples = np.empty(
        (
            num_collage_examples,
            near_neighbours_per_example + 1,
            height_width,
            height_width,
            3,
        ),
        dtype=np.float32,
    )
    for row_idx in range(num_collage_examples):
        examples[row_idx, 0] = x_test[row_idx]
        anchor_near_neighbours = reversed(near_neighbours[row_idx][:-1])
        for col_idx, nn_idx in enumerate(anchor_near_neighbours):
            examples[row_idx, col_idx + 1] = x_test[nn_idx]

    show_collage(examples)

    confusion_matrix = np.zeros((num_classes, num_classes))

    for class_idx in range(num_classes):
        example_idxs = class_idx_to_test_idxs[class_idx][:10]
        for y_test_idx in example_idxs:
            for nn_idx in near_neighbours[y_test_idx][:-1]:
                nn_class_idx = y_test[nn_idx]
                confusion_matrix[class_idx, nn_class_idx] += 1

    counted = sum(min(len(class_idx_to_test_idxs[c]), 10) for c in range(num_classes))
    assert confusion_matrix.sum() == counted * near_neighbours_per_example
