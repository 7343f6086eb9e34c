"""keras.io example "Image similarity estimation using a Siamese Network with a triplet loss"
(examples/vision/siamese_network.py).

The Keras 3 source (`import tensorflow as tf` for the data pipeline and two ops, `from keras
import applications, layers, losses, ops, optimizers, metrics, Model` and
`from keras.applications import resnet`) with those imports swapped for kgraph, as written:
the anchor/positive folders under `Path.home() / ".keras"`, `tf.io.read_file` +
`tf.image.decode_jpeg` + `convert_image_dtype` + `resize` in a map over a zip of three file
datasets (the negatives shuffled with `np.random.RandomState`), `take`/`skip` split, batches,
`as_numpy_iterator`, a ResNet50 (include_top=False) with a Dense/BatchNormalization head, its
layers frozen up to `conv5_block1_out`, the `DistanceLayer` returning a tuple, the three-input
Siamese model over `resnet.preprocess_input`, the `SiameseModel` with its own `train_step`
(`tf.GradientTape`, triplet loss with `tf.maximum`) and `test_step`, and the
`metrics.CosineSimilarity` comparison of embeddings.

Changes: the Totally Looks Like download (gdown + unzip into ~/.keras) is replaced by 10
generated JPEG pairs in a temporary home; ResNet50's `weights="imagenet"` by `None`. Sizes:
200x200 -> 32x32 images, 10 epochs -> 1; plots left out. Checked: the triplets' shapes, the
layers frozen as written (none before `conv5_block1_out`, all from it), the frozen weights
unchanged and the head's last kernel moved after training (its bias, which cancels in every
distance, not), the distances against numpy, the similarities
in [-1, 1]. Marked slow (a ResNet50 in three towers, ~5 s).
"""
import os

import numpy as np
import pytest


def _totally_looks_like(cache_dir, n=10, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for side in ("left", "right"):
        os.makedirs(cache_dir / side)
        for i in range(n):
            pixels = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(cache_dir / side / f"{i:05d}.jpg")


@pytest.mark.slow
def test_siamese_network(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from pathlib import Path

    import kgraph as tf
    from kgraph.keras import Model, layers, metrics, ops, optimizers
    from kgraph.keras.applications import resnet

    target_shape = (32, 32)  # (200, 200)

    cache_dir = Path(Path.home()) / ".keras"
    anchor_images_path = cache_dir / "left"
    positive_images_path = cache_dir / "right"
    _totally_looks_like(cache_dir)  # gdown + unzip

    def preprocess_image(filename):
        image_string = tf.io.read_file(filename)
        image = tf.image.decode_jpeg(image_string, channels=3)
        image = tf.image.convert_image_dtype(image, tf.float32)
        image = tf.image.resize(image, target_shape)
        return image

    def preprocess_triplets(anchor, positive, negative):
        return (
            preprocess_image(anchor),
            preprocess_image(positive),
            preprocess_image(negative),
        )

    anchor_images = sorted(
        [str(anchor_images_path / f) for f in os.listdir(anchor_images_path)]
    )

    positive_images = sorted(
        [str(positive_images_path / f) for f in os.listdir(positive_images_path)]
    )

    image_count = len(anchor_images)

    anchor_dataset = tf.data.Dataset.from_tensor_slices(anchor_images)
    positive_dataset = tf.data.Dataset.from_tensor_slices(positive_images)

    rng = np.random.RandomState(seed=42)
    rng.shuffle(anchor_images)
    rng.shuffle(positive_images)

    negative_images = anchor_images + positive_images
    np.random.RandomState(seed=32).shuffle(negative_images)

    negative_dataset = tf.data.Dataset.from_tensor_slices(negative_images)
    negative_dataset = negative_dataset.shuffle(buffer_size=4096)

    dataset = tf.data.Dataset.zip((anchor_dataset, positive_dataset, negative_dataset))
    dataset = dataset.shuffle(buffer_size=1024)
    dataset = dataset.map(preprocess_triplets)

    train_dataset = dataset.take(round(image_count * 0.8))
    val_dataset = dataset.skip(round(image_count * 0.8))

    train_dataset = train_dataset.batch(32, drop_remainder=False)
    train_dataset = train_dataset.prefetch(tf.data.AUTOTUNE)

    val_dataset = val_dataset.batch(32, drop_remainder=False)
    val_dataset = val_dataset.prefetch(tf.data.AUTOTUNE)

    def visualize(anchor, positive, negative):
        assert anchor.shape == positive.shape == negative.shape
        assert anchor.shape[1:] == (32, 32, 3) and 0 <= anchor.min() and anchor.max() <= 1

    visualize(*list(train_dataset.take(1).as_numpy_iterator())[0])
    assert len(list(train_dataset.take(1).as_numpy_iterator())[0][0]) == 8

    base_cnn = resnet.ResNet50(
        weights=None, input_shape=target_shape + (3,), include_top=False  # "imagenet"
    )

    flatten = layers.Flatten()(base_cnn.output)
    dense1 = layers.Dense(512, activation="relu")(flatten)
    dense1 = layers.BatchNormalization()(dense1)
    dense2 = layers.Dense(256, activation="relu")(dense1)
    dense2 = layers.BatchNormalization()(dense2)
    output = layers.Dense(256)(dense2)

    embedding = Model(base_cnn.input, output, name="Embedding")

    trainable = False
    for layer in base_cnn.layers:
        if layer.name == "conv5_block1_out":
            trainable = True
        layer.trainable = trainable

    names = [layer.name for layer in base_cnn.layers]
    first = names.index("conv5_block1_out")
    assert not any(layer.trainable for layer in base_cnn.layers[:first])
    assert all(layer.trainable for layer in base_cnn.layers[first:])

    class DistanceLayer(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)

        def call(self, anchor, positive, negative):
            ap_distance = ops.sum(tf.square(anchor - positive), -1)
            an_distance = ops.sum(tf.square(anchor - negative), -1)
            return (ap_distance, an_distance)

    a, p, n = np.random.default_rng(1).normal(size=(3, 2, 5)).astype("float32")
    ap, an = DistanceLayer()(a, p, n)
    np.testing.assert_allclose(ap, ((a - p) ** 2).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(an, ((a - n) ** 2).sum(-1), rtol=1e-5)

    anchor_input = layers.Input(name="anchor", shape=target_shape + (3,))
    positive_input = layers.Input(name="positive", shape=target_shape + (3,))
    negative_input = layers.Input(name="negative", shape=target_shape + (3,))

    distances = DistanceLayer()(
        embedding(resnet.preprocess_input(anchor_input)),
        embedding(resnet.preprocess_input(positive_input)),
        embedding(resnet.preprocess_input(negative_input)),
    )

    siamese_network = Model(
        inputs=[anchor_input, positive_input, negative_input], outputs=distances
    )

    class SiameseModel(Model):
        def __init__(self, siamese_network, margin=0.5):
            super().__init__()
            self.siamese_network = siamese_network
            self.margin = margin
            self.loss_tracker = metrics.Mean(name="loss")

        def call(self, inputs):
            return self.siamese_network(inputs)

        def train_step(self, data):
            with tf.GradientTape() as tape:
                loss = self._compute_loss(data)

            gradients = tape.gradient(loss, self.siamese_network.trainable_weights)

            self.optimizer.apply_gradients(
                zip(gradients, self.siamese_network.trainable_weights)
            )

            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        def test_step(self, data):
            loss = self._compute_loss(data)

            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        def _compute_loss(self, data):
            ap_distance, an_distance = self.siamese_network(data)

            loss = ap_distance - an_distance
            loss = tf.maximum(loss + self.margin, 0.0)
            return loss

        @property
        def metrics(self):
            return [self.loss_tracker]

    frozen = [w.numpy() for w in base_cnn.layers[first - 1].weights]
    head = [w.numpy() for w in embedding.trainable_weights[-2:]]
    siamese_model = SiameseModel(siamese_network)
    siamese_model.compile(optimizer=optimizers.Adam(0.0001))
    history = siamese_model.fit(train_dataset, epochs=1, validation_data=val_dataset)  # 10
    assert set(history.history) == {"loss", "val_loss"}
    assert np.isfinite(history.history["loss"][0]) and history.history["loss"][0] >= 0
    for before, w in zip(frozen, base_cnn.layers[first - 1].weights):
        np.testing.assert_array_equal(before, w.numpy())
    # the last Dense's kernel moves; its bias cancels in every distance (zero gradient)
    kernel, bias = embedding.trainable_weights[-2:]
    assert not np.array_equal(head[0], kernel.numpy())
    np.testing.assert_array_equal(head[1], bias.numpy())

    sample = next(iter(train_dataset))
    visualize(*sample)

    anchor, positive, negative = sample
    anchor_embedding, positive_embedding, negative_embedding = (
        embedding(resnet.preprocess_input(anchor)),
        embedding(resnet.preprocess_input(positive)),
        embedding(resnet.preprocess_input(negative)),
    )
    assert anchor_embedding.shape == (8, 256)

    cosine_similarity = metrics.CosineSimilarity()

    positive_similarity = cosine_similarity(anchor_embedding, positive_embedding)
    print("Positive similarity:", positive_similarity.numpy())

    negative_similarity = cosine_similarity(anchor_embedding, negative_embedding)
    print("Negative similarity", negative_similarity.numpy())
    assert -1 <= float(negative_similarity.numpy()) <= 1
    # a metric object: the second call reports the mean over both calls
    a_n, a_p = (np.asarray(x) for x in (negative_embedding, positive_embedding))
    a_a = np.asarray(anchor_embedding)

    def cosine(x, y):
        return (x * y).sum(-1) / np.linalg.norm(x, axis=-1) / np.linalg.norm(y, axis=-1)

    np.testing.assert_allclose(float(negative_similarity.numpy()),
                               np.mean(np.concatenate([cosine(a_a, a_p), cosine(a_a, a_n)])),
                               rtol=1e-4, atol=1e-5)
