"""keras.io example "Image classification with Vision Transformer"
(examples/vision/image_classification_with_vision_transformer.py).

The Keras 3 code as written; only the imports changed, CIFAR-100 replaced by random uint8
images of its shapes (96 train, 32 test), sizes cut for a 2-core machine: images resized to 24
instead of 72 (16 patches of 6x6), projection_dim 64 -> 16, num_heads 4 -> 2,
transformer_layers 8 -> 2, mlp_head_units [2048, 1024] -> [64, 32], batch_size 256 -> 32,
num_epochs 10 -> 1; the checkpoint goes to pytest's tmp_path instead of /tmp. The matplotlib
figures are left out; the patch display's ops (resize, Patches, reshape, convert_to_numpy) kept.
"""

import numpy as np
from example_datasets import cifar100_load_data


def test_image_classification_with_vision_transformer(tmp_path):
    from kgraph import keras
    from kgraph.keras import layers, ops

    num_classes = 100
    input_shape = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar100_load_data(n_train=96, n_test=32)

    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    learning_rate = 0.001
    weight_decay = 0.0001
    batch_size = 32
    num_epochs = 1
    image_size = 24  # We'll resize input images to this size
    patch_size = 6  # Size of the patches to be extract from the input images
    num_patches = (image_size // patch_size) ** 2
    projection_dim = 16
    num_heads = 2
    hidden_dim = projection_dim * num_heads
    transformer_units = [
        hidden_dim * 2,
        hidden_dim,
    ]  # Size of the transformer layers
    transformer_layers = 2
    mlp_head_units = [
        64,
        32,
    ]  # Size of the dense layers of the final classifier

    data_augmentation = keras.Sequential(
        [
            layers.Normalization(),
            layers.Resizing(image_size, image_size),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(factor=0.02),
            layers.RandomZoom(height_factor=0.2, width_factor=0.2),
        ],
        name="data_augmentation",
    )
    # Compute the mean and the variance of the training data for normalization.
    data_augmentation.layers[0].adapt(x_train)

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation=keras.activations.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    class Patches(layers.Layer):
        def __init__(self, patch_size):
            super().__init__()
            self.patch_size = patch_size

        def call(self, images):
            input_shape = ops.shape(images)
            batch_size = input_shape[0]
            height = input_shape[1]
            width = input_shape[2]
            channels = input_shape[3]
            num_patches_h = height // self.patch_size
            num_patches_w = width // self.patch_size
            patches = keras.ops.image.extract_patches(images, size=self.patch_size)
            patches = ops.reshape(
                patches,
                (
                    batch_size,
                    num_patches_h * num_patches_w,
                    self.patch_size * self.patch_size * channels,
                ),
            )
            return patches

        def get_config(self):
            config = super().get_config()
            config.update({"patch_size": self.patch_size})
            return config

    image = x_train[np.random.choice(range(x_train.shape[0]))]

    resized_image = ops.image.resize(
        ops.convert_to_tensor([image], dtype="float32"), size=(image_size, image_size)
    )
    patches = Patches(patch_size)(resized_image)
    print(f"Image size: {image_size} X {image_size}")
    print(f"Patch size: {patch_size} X {patch_size}")
    print(f"Patches per image: {patches.shape[1]}")
    print(f"Elements per patch: {patches.shape[-1]}")

    n = int(np.sqrt(patches.shape[1]))
    patch_images = []
    for i, patch in enumerate(patches[0]):
        patch_img = ops.reshape(patch, (patch_size, patch_size, 3))
        patch_images.append(ops.convert_to_numpy(patch_img).astype("uint8"))
    # the n x n patches tile the resized image back, row by row
    assert n == 4 and patches.shape == (1, 16, 108)
    tiled = np.concatenate([np.concatenate(patch_images[r * n:(r + 1) * n], axis=1)
                            for r in range(n)], axis=0)
    np.testing.assert_array_equal(
        tiled, ops.convert_to_numpy(resized_image[0]).astype("uint8"))

    class PatchEncoder(layers.Layer):
        def __init__(self, num_patches, projection_dim):
            super().__init__()
            self.num_patches = num_patches
            self.projection = layers.Dense(units=projection_dim)
            self.position_embedding = layers.Embedding(
                input_dim=num_patches, output_dim=projection_dim
            )

        def call(self, patch):
            positions = ops.expand_dims(
                ops.arange(start=0, stop=self.num_patches, step=1), axis=0
            )
            projected_patches = self.projection(patch)
            encoded = projected_patches + self.position_embedding(positions)
            return encoded

        def get_config(self):
            config = super().get_config()
            config.update({"num_patches": self.num_patches})
            return config

    def create_vit_classifier():
        inputs = keras.Input(shape=input_shape)
        # Augment data.
        augmented = data_augmentation(inputs)
        # Create patches.
        patches = Patches(patch_size)(augmented)
        # Encode patches.
        encoded_patches = PatchEncoder(num_patches, hidden_dim)(patches)

        # Create multiple layers of the Transformer block.
        for _ in range(transformer_layers):
            # Layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
            # Create a multi-head attention layer.
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=projection_dim, dropout=0.1
            )(x1, x1)
            # Skip connection 1.
            x2 = layers.Add()([attention_output, encoded_patches])
            # Layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            # MLP.
            x3 = mlp(x3, hidden_units=transformer_units, dropout_rate=0.1)
            # Skip connection 2.
            encoded_patches = layers.Add()([x3, x2])

        # Create a [batch_size, projection_dim] tensor.
        representation = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
        representation = layers.Flatten()(representation)
        representation = layers.Dropout(0.5)(representation)
        # Add MLP.
        features = mlp(representation, hidden_units=mlp_head_units, dropout_rate=0.5)
        # Classify outputs.
        logits = layers.Dense(num_classes)(features)
        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=logits)
        return model

    def run_experiment(model):
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay
        )

        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
            ],
        )

        checkpoint_filepath = str(tmp_path / "checkpoint.weights.h5")
        checkpoint_callback = keras.callbacks.ModelCheckpoint(
            checkpoint_filepath,
            monitor="val_accuracy",
            save_best_only=True,
            save_weights_only=True,
        )

        history = model.fit(
            x=x_train,
            y=y_train,
            batch_size=batch_size,
            epochs=num_epochs,
            validation_split=0.1,
            callbacks=[checkpoint_callback],
        )

        model.load_weights(checkpoint_filepath)
        _, accuracy, top_5_accuracy = model.evaluate(x_test, y_test)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")

        assert 0.0 <= accuracy <= top_5_accuracy <= 1.0
        return history

    vit_classifier = create_vit_classifier()
    history = run_experiment(vit_classifier)

    # plot_history("loss"), plot_history("top-5-accuracy") read these
    for item in ("loss", "top-5-accuracy"):
        assert len(history.history[item]) == len(history.history["val_" + item]) == 1
        assert np.isfinite(history.history[item]).all()
    assert vit_classifier.predict(x_test, verbose=0).shape == (32, num_classes)
