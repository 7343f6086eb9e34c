"""keras.io example "Learning to tokenize in Vision Transformers"
(examples/vision/token_learner.py).

The Keras 3 code as written (last modified 2023/08/14) with `import keras; from keras import
layers; from keras import ops; from tensorflow import data as tf_data` swapped for kgraph: a
tf.data pipeline (`shuffle`/`batch`/`prefetch(AUTO)`), the augmentation Sequential
(Rescaling, Resizing 52x52, RandomCrop 48x48, RandomFlip) inside the model, patches from a
strided Conv2D reshaped by `projected_patches.shape`, a `PatchEncoder` adding an
`Embedding(ops.arange)`, four Transformer blocks (`MultiHeadAttention`, Dense with
`activation=ops.gelu`), and the TokenLearner in the middle: a Sequential of four Conv2D with
`Reshape((-1, tokens))` and `Permute((2, 1))`, `ops.expand_dims(attention_maps, -1) * inputs`
and `ops.mean(axis=2)`; AdamW, sparse top-5 accuracy, a best-only weights checkpoint reloaded
before `evaluate`.

CIFAR-10 is replaced by random arrays of its shapes (`example_datasets.cifar10_load_data`,
24 train split 16/8 as the example splits 40000/10000, 8 test); sizes cut: BATCH_SIZE
256 -> 8, EPOCHS 20 -> 1. The architecture is kept (its weights do not depend on the data
size: 1,349,946 parameters, as real Keras 3 counts for this code). The checkpoint path
"/tmp/checkpoint.weights.h5" is under pytest's tmp_path; the matplotlib import is left out
(the example plots nothing).
"""

import numpy as np
from example_datasets import cifar10_load_data


def test_token_learner(tmp_path):
    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras import ops
    from kgraph import data as tf_data

    import math

    keras.utils.set_random_seed(0)

    # DATA
    BATCH_SIZE = 8
    AUTO = tf_data.AUTOTUNE
    INPUT_SHAPE = (32, 32, 3)
    NUM_CLASSES = 10

    # OPTIMIZER
    LEARNING_RATE = 1e-3
    WEIGHT_DECAY = 1e-4

    # TRAINING
    EPOCHS = 1

    # AUGMENTATION
    IMAGE_SIZE = 48  # We will resize input images to this size.
    PATCH_SIZE = 6  # Size of the patches to be extracted from the input images.
    NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2

    # ViT ARCHITECTURE
    LAYER_NORM_EPS = 1e-6
    PROJECTION_DIM = 128
    NUM_HEADS = 4
    NUM_LAYERS = 4
    MLP_UNITS = [
        PROJECTION_DIM * 2,
        PROJECTION_DIM,
    ]

    # TOKENLEARNER
    NUM_TOKENS = 4

    # Load the CIFAR-10 dataset.
    (x_train, y_train), (x_test, y_test) = cifar10_load_data(n_train=24, n_test=8)
    (x_train, y_train), (x_val, y_val) = (
        (x_train[:16], y_train[:16]),
        (x_train[16:], y_train[16:]),
    )
    print(f"Training samples: {len(x_train)}")
    print(f"Validation samples: {len(x_val)}")
    print(f"Testing samples: {len(x_test)}")

    # Convert to tf.data.Dataset objects.
    train_ds = tf_data.Dataset.from_tensor_slices((x_train, y_train))
    train_ds = train_ds.shuffle(BATCH_SIZE * 100).batch(BATCH_SIZE).prefetch(AUTO)

    val_ds = tf_data.Dataset.from_tensor_slices((x_val, y_val))
    val_ds = val_ds.batch(BATCH_SIZE).prefetch(AUTO)

    test_ds = tf_data.Dataset.from_tensor_slices((x_test, y_test))
    test_ds = test_ds.batch(BATCH_SIZE).prefetch(AUTO)

    data_augmentation = keras.Sequential(
        [
            layers.Rescaling(1 / 255.0),
            layers.Resizing(INPUT_SHAPE[0] + 20, INPUT_SHAPE[0] + 20),
            layers.RandomCrop(IMAGE_SIZE, IMAGE_SIZE),
            layers.RandomFlip("horizontal"),
        ],
        name="data_augmentation",
    )

    class PatchEncoder(layers.Layer):
        def __init__(self, num_patches, projection_dim):
            super().__init__()
            self.num_patches = num_patches
            self.position_embedding = layers.Embedding(
                input_dim=num_patches, output_dim=projection_dim
            )

        def call(self, patch):
            positions = ops.expand_dims(
                ops.arange(start=0, stop=self.num_patches, step=1), axis=0
            )
            encoded = patch + self.position_embedding(positions)
            return encoded

        def get_config(self):
            config = super().get_config()
            config.update({"num_patches": self.num_patches})
            return config

    def mlp(x, dropout_rate, hidden_units):
        # Iterate over the hidden units and
        # add Dense => Dropout.
        for units in hidden_units:
            x = layers.Dense(units, activation=ops.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    def token_learner(inputs, number_of_tokens=NUM_TOKENS):
        # Layer normalize the inputs.
        x = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(inputs)  # (B, H, W, C)

        # Applying Conv2D => Reshape => Permute
        # The reshape and permute is done to help with the next steps of
        # multiplication and Global Average Pooling.
        attention_maps = keras.Sequential(
            [
                # 3 layers of conv with gelu activation as suggested
                # in the paper.
                layers.Conv2D(
                    filters=number_of_tokens,
                    kernel_size=(3, 3),
                    activation=ops.gelu,
                    padding="same",
                    use_bias=False,
                ),
                layers.Conv2D(
                    filters=number_of_tokens,
                    kernel_size=(3, 3),
                    activation=ops.gelu,
                    padding="same",
                    use_bias=False,
                ),
                layers.Conv2D(
                    filters=number_of_tokens,
                    kernel_size=(3, 3),
                    activation=ops.gelu,
                    padding="same",
                    use_bias=False,
                ),
                # This conv layer will generate the attention maps
                layers.Conv2D(
                    filters=number_of_tokens,
                    kernel_size=(3, 3),
                    activation="sigmoid",  # Note sigmoid for [0, 1] output
                    padding="same",
                    use_bias=False,
                ),
                # Reshape and Permute
                layers.Reshape((-1, number_of_tokens)),  # (B, H*W, num_of_tokens)
                layers.Permute((2, 1)),
            ]
        )(
            x
        )  # (B, num_of_tokens, H*W)

        # Reshape the input to align it with the output of the conv block.
        num_filters = inputs.shape[-1]
        inputs = layers.Reshape((1, -1, num_filters))(inputs)  # inputs == (B, 1, H*W, C)

        # Element-Wise multiplication of the attention maps and the inputs
        attended_inputs = (
            ops.expand_dims(attention_maps, axis=-1) * inputs
        )  # (B, num_tokens, H*W, C)

        # Global average pooling the element wise multiplication result.
        outputs = ops.mean(attended_inputs, axis=2)  # (B, num_tokens, C)
        return outputs

    def transformer(encoded_patches):
        # Layer normalization 1.
        x1 = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(encoded_patches)

        # Multi Head Self Attention layer 1.
        attention_output = layers.MultiHeadAttention(
            num_heads=NUM_HEADS, key_dim=PROJECTION_DIM, dropout=0.1
        )(x1, x1)

        # Skip connection 1.
        x2 = layers.Add()([attention_output, encoded_patches])

        # Layer normalization 2.
        x3 = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x2)

        # MLP layer 1.
        x4 = mlp(x3, hidden_units=MLP_UNITS, dropout_rate=0.1)

        # Skip connection 2.
        encoded_patches = layers.Add()([x4, x2])
        return encoded_patches

    def create_vit_classifier(use_token_learner=True, token_learner_units=NUM_TOKENS):
        inputs = layers.Input(shape=INPUT_SHAPE)  # (B, H, W, C)

        # Augment data.
        augmented = data_augmentation(inputs)

        # Create patches and project the pathces.
        projected_patches = layers.Conv2D(
            filters=PROJECTION_DIM,
            kernel_size=(PATCH_SIZE, PATCH_SIZE),
            strides=(PATCH_SIZE, PATCH_SIZE),
            padding="VALID",
        )(augmented)
        _, h, w, c = projected_patches.shape
        projected_patches = layers.Reshape((h * w, c))(
            projected_patches
        )  # (B, number_patches, projection_dim)

        # Add positional embeddings to the projected patches.
        encoded_patches = PatchEncoder(
            num_patches=NUM_PATCHES, projection_dim=PROJECTION_DIM
        )(
            projected_patches
        )  # (B, number_patches, projection_dim)
        encoded_patches = layers.Dropout(0.1)(encoded_patches)

        # Iterate over the number of layers and stack up blocks of
        # Transformer.
        for i in range(NUM_LAYERS):
            # Add a Transformer block.
            encoded_patches = transformer(encoded_patches)

            # Add TokenLearner layer in the middle of the
            # architecture. The paper suggests that anywhere
            # between 1/2 or 3/4 will work well.
            if use_token_learner and i == NUM_LAYERS // 2:
                _, hh, c = encoded_patches.shape
                h = int(math.sqrt(hh))
                encoded_patches = layers.Reshape((h, h, c))(
                    encoded_patches
                )  # (B, h, h, projection_dim)
                encoded_patches = token_learner(
                    encoded_patches, token_learner_units
                )  # (B, num_tokens, c)

        # Layer normalization and Global average pooling.
        representation = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(encoded_patches)
        representation = layers.GlobalAvgPool1D()(representation)

        # Classify outputs.
        outputs = layers.Dense(NUM_CLASSES, activation="softmax")(representation)

        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    results = {}

    def run_experiment(model):
        # Initialize the AdamW optimizer.
        optimizer = keras.optimizers.AdamW(
            learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY
        )

        # Compile the model with the optimizer, loss function
        # and the metrics.
        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
            ],
        )

        # Define callbacks
        checkpoint_filepath = str(tmp_path / "checkpoint.weights.h5")
        checkpoint_callback = keras.callbacks.ModelCheckpoint(
            checkpoint_filepath,
            monitor="val_accuracy",
            save_best_only=True,
            save_weights_only=True,
        )

        # Train the model.
        _ = model.fit(
            train_ds,
            epochs=EPOCHS,
            validation_data=val_ds,
            callbacks=[checkpoint_callback],
        )
        results["history"] = _.history

        model.load_weights(checkpoint_filepath)
        _, accuracy, top_5_accuracy = model.evaluate(test_ds)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")
        results["accuracy"], results["top_5_accuracy"] = accuracy, top_5_accuracy

    vit_token_learner = create_vit_classifier()
    run_experiment(vit_token_learner)

    assert vit_token_learner.count_params() == 1349946  # real Keras 3 for the same code
    assert set(results["history"]) == {
        "loss", "accuracy", "top-5-accuracy", "val_loss", "val_accuracy", "val_top-5-accuracy"}
    assert 0.0 <= results["accuracy"] <= results["top_5_accuracy"] <= 1.0
    assert vit_token_learner.output.shape == (None, NUM_CLASSES)
    probs = vit_token_learner.predict(x_test[:4], verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    # The TokenLearner alone: (B, h, h, c) -> (B, NUM_TOKENS, c), the attention-weighted mean
    # of the h*h inputs, checked against numpy on the module's own sublayers.
    grid = keras.Input((8, 8, PROJECTION_DIM))
    learner = keras.Model(grid, token_learner(grid))
    norm, attention = (layer for layer in learner.layers
                       if isinstance(layer, (layers.LayerNormalization, keras.Sequential)))
    x = np.random.default_rng(1).normal(size=(2, 8, 8, PROJECTION_DIM)).astype("float32")
    maps = np.asarray(attention(norm(x)))  # (2, NUM_TOKENS, 64)
    expected = (maps[..., None] * x.reshape(2, 1, 64, PROJECTION_DIM)).mean(axis=2)
    tokens = learner.predict(x, verbose=0)
    assert learner.output.shape == (None, NUM_TOKENS, PROJECTION_DIM)
    np.testing.assert_allclose(tokens, expected, rtol=1e-4, atol=1e-5)
