"""keras.io example "Video Vision Transformer" (examples/vision/vivit.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras; from tensorflow.keras import layers`, swapped for kgraph): the
medmnist `.npz` read with `np.load` after `keras.utils.get_file(origin=..., md5_hash=...)`, a
`@tf.function` `preprocess` (`tf.image.convert_image_dtype(frames[..., tf.newaxis], tf.float32)`,
`tf.cast`) mapped over `from_tensor_slices` datasets, the `TubeletEmbedding` layer (a strided
Conv3D with `padding="VALID"` and a `Reshape((-1, dim))` sublayer), the `PositionalEncoder`
(`build` unpacking the token count, an Embedding of `tf.range` positions made in `build`), the
spatio-temporal transformer (MultiHeadAttention, a Sequential MLP with `activation=tf.nn.gelu`,
`GlobalAvgPool1D`), Adam with sparse top-k accuracy, `evaluate` unpacked into three values, and
the inference loop (`testsample.numpy()`, `tf.expand_dims`, `label.numpy().astype("int")`).

Replaced: the medmnist package's `INFO["organmnist3d"]` and the dataset download by a generated
`.npz` of random uint8 28x28x28 volumes (16/8/8) in `$KGRAPH_HOME/datasets`, found there by
`get_file` from its origin URL and checked against its MD5; the GIFs made with imageio (not installed) by Pillow's GIF writer; the
ipywidgets grid left out (its captions are built). Sizes cut: BATCH_SIZE 32 -> 8, EPOCHS 60 ->
1, PROJECTION_DIM 128 -> 32, NUM_HEADS 8 -> 4, NUM_LAYERS 8 -> 2, 25 samples shown -> 8.

Checked: the tubelet embedding equals the flattened 8x8x8 patches times the Conv3D kernel in
numpy (27 tokens), the positional encoder adds row i of its embedding to token i, and the
parameter count as real Keras counts the same layers (30,635 at these sizes). Marked slow (~4 s).
"""

import hashlib
import io
import os

import numpy as np
import pytest

ORIGIN = "https://zenodo.org/records/10519652/files/organmnist3d.npz?download=1"


def _write_organmnist3d(home):
    """The `.npz` medmnist serves, already in the cache `get_file` looks in
    (`$KGRAPH_HOME/datasets`)."""
    rng = np.random.default_rng(0)
    splits = {}
    for name, count in (("train", 16), ("val", 8), ("test", 8)):
        splits[f"{name}_images"] = rng.integers(0, 256, (count, 28, 28, 28), dtype=np.uint8)
        splits[f"{name}_labels"] = rng.integers(0, 11, (count, 1))
    folder = os.path.join(home, "datasets")
    os.makedirs(folder)
    path = os.path.join(folder, "organmnist3d.npz")
    np.savez(path, **splits)
    with open(path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    labels = {str(i): name for i, name in enumerate(
        ["bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right",
         "liver", "lung-left", "lung-right", "pancreas", "spleen"])}
    return {"url": ORIGIN, "MD5": md5, "label": labels}


@pytest.mark.slow
def test_vivit(tmp_path, monkeypatch):
    from PIL import Image

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))  # get_file's cache
    organmnist3d_info = _write_organmnist3d(str(tmp_path / "home"))

    # Setting seed for reproducibility
    SEED = 42
    os.environ["TF_CUDNN_DETERMINISTIC"] = "1"
    keras.utils.set_random_seed(SEED)

    # DATA
    DATASET_NAME = "organmnist3d"
    BATCH_SIZE = 8  # 32
    AUTO = tf.data.AUTOTUNE
    INPUT_SHAPE = (28, 28, 28, 1)
    NUM_CLASSES = 11

    # OPTIMIZER
    LEARNING_RATE = 1e-4
    WEIGHT_DECAY = 1e-5

    # TRAINING
    EPOCHS = 1  # 60

    # TUBELET EMBEDDING
    PATCH_SIZE = (8, 8, 8)
    NUM_PATCHES = (INPUT_SHAPE[0] // PATCH_SIZE[0]) ** 2

    # ViViT ARCHITECTURE
    LAYER_NORM_EPS = 1e-6
    PROJECTION_DIM = 32  # 128
    NUM_HEADS = 4  # 8
    NUM_LAYERS = 2  # 8

    def download_and_prepare_dataset(data_info: dict):
        data_path = keras.utils.get_file(origin=data_info["url"], md5_hash=data_info["MD5"])

        with np.load(data_path) as data:
            # Get videos
            train_videos = data["train_images"]
            valid_videos = data["val_images"]
            test_videos = data["test_images"]

            # Get labels
            train_labels = data["train_labels"].flatten()
            valid_labels = data["val_labels"].flatten()
            test_labels = data["test_labels"].flatten()

        return (
            (train_videos, train_labels),
            (valid_videos, valid_labels),
            (test_videos, test_labels),
        )

    # Get the metadata of the dataset
    info = {DATASET_NAME: organmnist3d_info}[DATASET_NAME]  # medmnist.INFO[DATASET_NAME]

    # Get the dataset
    prepared_dataset = download_and_prepare_dataset(info)
    (train_videos, train_labels) = prepared_dataset[0]
    (valid_videos, valid_labels) = prepared_dataset[1]
    (test_videos, test_labels) = prepared_dataset[2]

    @tf.function
    def preprocess(frames: tf.Tensor, label: tf.Tensor):
        """Preprocess the frames tensors and parse the labels"""
        # Preprocess images
        frames = tf.image.convert_image_dtype(
            frames[
                ..., tf.newaxis
            ],  # The new axis is to help for further processing with Conv3D layers
            tf.float32,
        )

        # Parse label
        label = tf.cast(label, tf.float32)
        return frames, label

    def prepare_dataloader(
        videos: np.ndarray,
        labels: np.ndarray,
        loader_type: str = "train",
        batch_size: int = BATCH_SIZE,
    ):
        """Utility function to prepare dataloader"""
        dataset = tf.data.Dataset.from_tensor_slices((videos, labels))

        if loader_type == "train":
            dataset = dataset.shuffle(BATCH_SIZE * 2)

        dataloader = (
            dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )

        return dataloader

    trainloader = prepare_dataloader(train_videos, train_labels, "train")
    validloader = prepare_dataloader(valid_videos, valid_labels, "valid")
    testloader = prepare_dataloader(test_videos, test_labels, "test")

    class TubeletEmbedding(layers.Layer):
        def __init__(self, embed_dim, patch_size, **kwargs):
            super().__init__(**kwargs)
            self.projection = layers.Conv3D(
                filters=embed_dim,
                kernel_size=patch_size,
                strides=patch_size,
                padding="VALID",
            )
            self.flatten = layers.Reshape(target_shape=(-1, embed_dim))

        def call(self, videos):
            projected_patches = self.projection(videos)
            flattened_patches = self.flatten(projected_patches)
            return flattened_patches

    class PositionalEncoder(layers.Layer):
        def __init__(self, embed_dim, **kwargs):
            super().__init__(**kwargs)
            self.embed_dim = embed_dim

        def build(self, input_shape):
            _, num_tokens, _ = input_shape
            self.position_embedding = layers.Embedding(
                input_dim=num_tokens, output_dim=self.embed_dim
            )
            self.positions = tf.range(start=0, limit=num_tokens, delta=1)

        def call(self, encoded_tokens):
            # Encode the positions and add it to the encoded tokens
            encoded_positions = self.position_embedding(self.positions)
            encoded_tokens = encoded_tokens + encoded_positions
            return encoded_tokens

    def create_vivit_classifier(
        tubelet_embedder,
        positional_encoder,
        input_shape=INPUT_SHAPE,
        transformer_layers=NUM_LAYERS,
        num_heads=NUM_HEADS,
        embed_dim=PROJECTION_DIM,
        layer_norm_eps=LAYER_NORM_EPS,
        num_classes=NUM_CLASSES,
    ):

        # Get the input layer
        inputs = layers.Input(shape=input_shape)
        # Create patches.
        patches = tubelet_embedder(inputs)
        # Encode patches.
        encoded_patches = positional_encoder(patches)

        # Create multiple layers of the Transformer block.
        for _ in range(transformer_layers):
            # Layer normalization and MHSA
            x1 = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embed_dim // num_heads, dropout=0.1
            )(x1, x1)

            # Skip connection
            x2 = layers.Add()([attention_output, encoded_patches])

            # Layer Normalization and MLP
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            x3 = keras.Sequential(
                [
                    layers.Dense(units=embed_dim, activation=tf.nn.gelu),
                    layers.Dense(units=embed_dim, activation=tf.nn.gelu),
                ]
            )(x3)

            # Skip connection
            encoded_patches = layers.Add()([x3, x2])

        # Layer normalization and Global average pooling.
        representation = layers.LayerNormalization(epsilon=layer_norm_eps)(encoded_patches)
        representation = layers.GlobalAvgPool1D()(representation)

        # Classify outputs.
        outputs = layers.Dense(units=num_classes, activation="softmax")(representation)

        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    def run_experiment():
        # Initialize model
        model = create_vivit_classifier(
            tubelet_embedder=TubeletEmbedding(
                embed_dim=PROJECTION_DIM, patch_size=PATCH_SIZE
            ),
            positional_encoder=PositionalEncoder(embed_dim=PROJECTION_DIM),
        )

        # Compile the model with the optimizer, loss function
        # and the metrics.
        optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
            ],
        )

        # Train the model.
        _ = model.fit(trainloader, epochs=EPOCHS, validation_data=validloader)

        _, accuracy, top_5_accuracy = model.evaluate(testloader)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")

        return model

    model = run_experiment()

    NUM_SAMPLES_VIZ = 8  # 25
    testsamples, labels = next(iter(testloader))
    testsamples, labels = testsamples[:NUM_SAMPLES_VIZ], labels[:NUM_SAMPLES_VIZ]

    ground_truths = []
    preds = []
    videos = []

    for i, (testsample, label) in enumerate(zip(testsamples, labels)):
        # Generate gif (imageio.mimsave in the example)
        with io.BytesIO() as gif:
            frames = [Image.fromarray(f) for f in
                      (testsample.numpy() * 255).astype("uint8")[..., 0]]
            frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=200)
            videos.append(gif.getvalue())

        # Get model prediction
        output = model.predict(tf.expand_dims(testsample, axis=0))[0]
        pred = np.argmax(output, axis=0)

        ground_truths.append(label.numpy().astype("int"))
        preds.append(pred)

    captions = []
    for i in range(NUM_SAMPLES_VIZ):
        true_class = info["label"][str(ground_truths[i])]
        pred_class = info["label"][str(preds[i])]
        captions.append(f"T: {true_class} | P: {pred_class}")  # the ipywidgets grid

    assert len(captions) == 8 and all(v.startswith(b"GIF8") for v in videos)
    np.testing.assert_array_equal(ground_truths, test_labels[:8])

    # the embedding layers against numpy
    embedder, encoder = model.layers[1], model.layers[2]
    video = np.asarray(testsamples[:2])
    kernel, bias = [w.numpy() for w in embedder.projection.weights]
    patches = video[:, :24, :24, :24].reshape(2, 3, 8, 3, 8, 3, 8, 1)  # VALID: 3 per axis
    patches = patches.transpose(0, 1, 3, 5, 2, 4, 6, 7).reshape(2, 27, 512)
    tokens = patches @ kernel.reshape(512, PROJECTION_DIM) + bias
    np.testing.assert_allclose(embedder(video), tokens, rtol=1e-4, atol=1e-4)
    table = encoder.position_embedding.embeddings.numpy()
    np.testing.assert_allclose(encoder(tokens.astype("float32")), tokens + table, rtol=1e-5,
                               atol=1e-5)
    assert model.count_params() == 30_635
