"""keras.io example "MobileViT: A mobile-friendly Transformer-based model for image
classification" (examples/vision/mobilevit.py).

The example's code as written (its latest stored text, the TensorFlow-era one), with
`import tensorflow as tf; from tensorflow.keras import layers; from tensorflow import keras;
from keras.applications import imagenet_utils` swapped for kgraph: `tf.nn.swish` as an
activation and on the functional model's tensors, `imagenet_utils.correct_pad` before the
stride-2 depthwise convolutions, `tf.math.equal` on static channel counts, the tf.data
pipeline with `tf.image.resize`/`tf.image.random_crop`/`tf.image.random_flip_left_right` and
`tf.one_hot` in a mapped function (shuffle, batch, prefetch with tf.data.AUTOTUNE). Changes:
`tfds.load("tf_flowers", split=["train[:90%]", "train[90%:]"], as_supervised=True)` is
replaced by two `tf.data.Dataset.from_tensor_slices` of random uint8 images and int64 labels
(every image 96x96 here; tf_flowers' vary in size, which the map's resize absorbs); the
weights-only checkpoint file ends in `.weights.h5` (Keras 3; here under pytest's tmp_path).
Sizes cut for a 2-core machine: image_size 256 -> 64, resize_bigger 280 -> 72, batch_size
64 -> 16, epochs 30 -> 1, 48 training and 16 validation images. Left out: the closing
SavedModel + TFLite conversion (`tf.lite.TFLiteConverter`), TensorFlow-only.
"""

import numpy as np
import pytest


@pytest.mark.slow
def test_mobilevit(tmp_path):
    import kgraph as tf

    from kgraph.keras import backend as K  # noqa: F401 - imported, unused, as written
    from kgraph.keras.applications import imagenet_utils
    from kgraph.keras import layers
    from kgraph import keras

    # Values are from table 4.
    patch_size = 4  # 2x2, for the Transformer blocks.
    image_size = 64
    expansion_factor = 2  # expansion factor for the MobileNetV2 blocks.

    def conv_block(x, filters=16, kernel_size=3, strides=2):
        conv_layer = layers.Conv2D(
            filters, kernel_size, strides=strides, activation=tf.nn.swish, padding="same"
        )
        return conv_layer(x)

    # Reference: https://git.io/JKgtC
    def inverted_residual_block(x, expanded_channels, output_channels, strides=1):
        m = layers.Conv2D(expanded_channels, 1, padding="same", use_bias=False)(x)
        m = layers.BatchNormalization()(m)
        m = tf.nn.swish(m)

        if strides == 2:
            m = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(m, 3))(m)
        m = layers.DepthwiseConv2D(
            3, strides=strides, padding="same" if strides == 1 else "valid", use_bias=False
        )(m)
        m = layers.BatchNormalization()(m)
        m = tf.nn.swish(m)

        m = layers.Conv2D(output_channels, 1, padding="same", use_bias=False)(m)
        m = layers.BatchNormalization()(m)

        if tf.math.equal(x.shape[-1], output_channels) and strides == 1:
            return layers.Add()([m, x])
        return m

    # Reference:
    # https://keras.io/examples/vision/image_classification_with_vision_transformer/

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation=tf.nn.swish)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    def transformer_block(x, transformer_layers, projection_dim, num_heads=2):
        for _ in range(transformer_layers):
            # Layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=1e-6)(x)
            # Create a multi-head attention layer.
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=projection_dim, dropout=0.1
            )(x1, x1)
            # Skip connection 1.
            x2 = layers.Add()([attention_output, x])
            # Layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            # MLP.
            x3 = mlp(
                x3,
                hidden_units=[x.shape[-1] * 2, x.shape[-1]],
                dropout_rate=0.1,
            )
            # Skip connection 2.
            x = layers.Add()([x3, x2])

        return x

    def mobilevit_block(x, num_blocks, projection_dim, strides=1):
        # Local projection with convolutions.
        local_features = conv_block(x, filters=projection_dim, strides=strides)
        local_features = conv_block(
            local_features, filters=projection_dim, kernel_size=1, strides=strides
        )

        # Unfold into patches and then pass through Transformers.
        num_patches = int(
            (local_features.shape[1] * local_features.shape[2]) / patch_size
        )
        non_overlapping_patches = layers.Reshape((patch_size, num_patches, projection_dim))(
            local_features
        )
        global_features = transformer_block(
            non_overlapping_patches, num_blocks, projection_dim
        )

        # Fold into conv-like feature-maps.
        folded_feature_map = layers.Reshape(
            (*local_features.shape[1:-1], projection_dim)
        )(global_features)

        # Apply point-wise conv -> concatenate with the input features.
        folded_feature_map = conv_block(
            folded_feature_map, filters=x.shape[-1], kernel_size=1, strides=strides
        )
        local_global_features = layers.Concatenate(axis=-1)([x, folded_feature_map])

        # Fuse the local and global features using a convoluion layer.
        local_global_features = conv_block(
            local_global_features, filters=projection_dim, strides=strides
        )

        return local_global_features

    def create_mobilevit(num_classes=5):
        inputs = keras.Input((image_size, image_size, 3))
        x = layers.Rescaling(scale=1.0 / 255)(inputs)

        # Initial conv-stem -> MV2 block.
        x = conv_block(x, filters=16)
        x = inverted_residual_block(
            x, expanded_channels=16 * expansion_factor, output_channels=16
        )

        # Downsampling with MV2 block.
        x = inverted_residual_block(
            x, expanded_channels=16 * expansion_factor, output_channels=24, strides=2
        )
        x = inverted_residual_block(
            x, expanded_channels=24 * expansion_factor, output_channels=24
        )
        x = inverted_residual_block(
            x, expanded_channels=24 * expansion_factor, output_channels=24
        )

        # First MV2 -> MobileViT block.
        x = inverted_residual_block(
            x, expanded_channels=24 * expansion_factor, output_channels=48, strides=2
        )
        x = mobilevit_block(x, num_blocks=2, projection_dim=64)

        # Second MV2 -> MobileViT block.
        x = inverted_residual_block(
            x, expanded_channels=64 * expansion_factor, output_channels=64, strides=2
        )
        x = mobilevit_block(x, num_blocks=4, projection_dim=80)

        # Third MV2 -> MobileViT block.
        x = inverted_residual_block(
            x, expanded_channels=80 * expansion_factor, output_channels=80, strides=2
        )
        x = mobilevit_block(x, num_blocks=3, projection_dim=96)
        x = conv_block(x, filters=320, kernel_size=1, strides=1)

        # Classification head.
        x = layers.GlobalAvgPool2D()(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)

        return keras.Model(inputs, outputs)

    mobilevit_xxs = create_mobilevit()
    mobilevit_xxs.summary()
    # the summary keras.io prints: Total params: 1,307,621 (2,544 non-trainable)
    assert mobilevit_xxs.count_params() == 1_307_621

    batch_size = 16
    auto = tf.data.AUTOTUNE
    resize_bigger = 72
    num_classes = 5

    def preprocess_dataset(is_training=True):
        def _pp(image, label):
            if is_training:
                # Resize to a bigger spatial resolution and take the random
                # crops.
                image = tf.image.resize(image, (resize_bigger, resize_bigger))
                image = tf.image.random_crop(image, (image_size, image_size, 3))
                image = tf.image.random_flip_left_right(image)
            else:
                image = tf.image.resize(image, (image_size, image_size))
            label = tf.one_hot(label, depth=num_classes)
            return image, label

        return _pp

    def prepare_dataset(dataset, is_training=True):
        if is_training:
            dataset = dataset.shuffle(batch_size * 10)
        dataset = dataset.map(preprocess_dataset(is_training), num_parallel_calls=auto)
        return dataset.batch(batch_size).prefetch(auto)

    # tfds.load("tf_flowers", split=["train[:90%]", "train[90%:]"], as_supervised=True)
    rng = np.random.default_rng(0)
    flowers = rng.integers(0, 256, (64, 96, 96, 3), dtype=np.uint8)
    flower_labels = rng.integers(0, num_classes, (64,)).astype(np.int64)
    train_dataset, val_dataset = (
        tf.data.Dataset.from_tensor_slices((flowers[:48], flower_labels[:48])),
        tf.data.Dataset.from_tensor_slices((flowers[48:], flower_labels[48:])),
    )

    num_train = train_dataset.cardinality()
    num_val = val_dataset.cardinality()
    print(f"Number of training examples: {num_train}")
    print(f"Number of validation examples: {num_val}")
    assert (int(num_train), int(num_val)) == (48, 16)

    train_dataset = prepare_dataset(train_dataset, is_training=True)
    val_dataset = prepare_dataset(val_dataset, is_training=False)

    learning_rate = 0.002
    label_smoothing_factor = 0.1
    epochs = 1

    optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing_factor)

    def run_experiment(epochs=epochs):
        mobilevit_xxs = create_mobilevit(num_classes=num_classes)
        mobilevit_xxs.compile(optimizer=optimizer, loss=loss_fn, metrics=["accuracy"])

        checkpoint_filepath = str(tmp_path / "checkpoint.weights.h5")
        checkpoint_callback = keras.callbacks.ModelCheckpoint(
            checkpoint_filepath,
            monitor="val_accuracy",
            save_best_only=True,
            save_weights_only=True,
        )

        history = mobilevit_xxs.fit(
            train_dataset,
            validation_data=val_dataset,
            epochs=epochs,
            callbacks=[checkpoint_callback],
        )
        mobilevit_xxs.load_weights(checkpoint_filepath)
        _, accuracy = mobilevit_xxs.evaluate(val_dataset)
        print(f"Validation accuracy: {round(accuracy * 100, 2)}%")
        assert 0.0 <= accuracy <= 1.0 and np.isfinite(history.history["loss"]).all()
        return mobilevit_xxs

    mobilevit_xxs = run_experiment()

    images, labels = next(iter(train_dataset))
    assert images.shape == (16, image_size, image_size, 3) and images.dtype == np.float32
    assert labels.shape == (16, num_classes)
    probabilities = mobilevit_xxs.predict(val_dataset, verbose=0)
    assert probabilities.shape == (16, num_classes)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
