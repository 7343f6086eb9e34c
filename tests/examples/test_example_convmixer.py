"""keras.io example "Image classification with ConvMixer" (examples/vision/convmixer.py).

The example's code as written (its latest stored text, DepthwiseConv2D mixer blocks), with
`from tensorflow.keras import layers; from tensorflow import keras; import tensorflow as tf`
swapped for kgraph: the tf.data pipeline (shuffle, batch, a mapped augmentation with
tf.data.AUTOTUNE, prefetch) runs on kgraph.data. Two changes the Keras 3 port of the example
makes too: TensorFlow Addons' `tfa.optimizers.AdamW` is `keras.optimizers.AdamW`, and the
weights-only checkpoint file ends in `.weights.h5` (here under pytest's tmp_path). CIFAR-10 is
replaced by random uint8 images of its shapes (160 train, 32 test); ConvMixer-256/8 cut to
filters 32, depth 2; batch_size 128 -> 32, num_epochs 10 -> 1; the kernel shown is the last
depthwise one (index 12: the model has 2 blocks, not 8); the matplotlib figures are left out,
the weights they show are read and normalized.
"""

import numpy as np


def test_convmixer(tmp_path):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    learning_rate = 0.001
    weight_decay = 0.0001
    batch_size = 32
    num_epochs = 1

    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (160, 32, 32, 3), dtype=np.uint8)
    y_train = rng.integers(0, 10, (160, 1)).astype(np.uint8)
    x_test = rng.integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    y_test = rng.integers(0, 10, (32, 1)).astype(np.uint8)
    val_split = 0.1

    val_indices = int(len(x_train) * val_split)
    new_x_train, new_y_train = x_train[val_indices:], y_train[val_indices:]
    x_val, y_val = x_train[:val_indices], y_train[:val_indices]

    print(f"Training data samples: {len(new_x_train)}")
    print(f"Validation data samples: {len(x_val)}")
    print(f"Test data samples: {len(x_test)}")

    image_size = 32
    auto = tf.data.AUTOTUNE

    data_augmentation = keras.Sequential(
        [layers.RandomCrop(image_size, image_size), layers.RandomFlip("horizontal"),],
        name="data_augmentation",
    )

    def make_datasets(images, labels, is_train=False):
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if is_train:
            dataset = dataset.shuffle(batch_size * 10)
        dataset = dataset.batch(batch_size)
        if is_train:
            dataset = dataset.map(
                lambda x, y: (data_augmentation(x), y), num_parallel_calls=auto
            )
        return dataset.prefetch(auto)

    train_dataset = make_datasets(new_x_train, new_y_train, is_train=True)
    val_dataset = make_datasets(x_val, y_val)
    test_dataset = make_datasets(x_test, y_test)

    def activation_block(x):
        x = layers.Activation("gelu")(x)
        return layers.BatchNormalization()(x)

    def conv_stem(x, filters: int, patch_size: int):
        x = layers.Conv2D(filters, kernel_size=patch_size, strides=patch_size)(x)
        return activation_block(x)

    def conv_mixer_block(x, filters: int, kernel_size: int):
        # Depthwise convolution.
        x0 = x
        x = layers.DepthwiseConv2D(kernel_size=kernel_size, padding="same")(x)
        x = layers.Add()([activation_block(x), x0])  # Residual.

        # Pointwise convolution.
        x = layers.Conv2D(filters, kernel_size=1)(x)
        x = activation_block(x)

        return x

    def get_conv_mixer_256_8(
        image_size=32, filters=32, depth=2, kernel_size=5, patch_size=2, num_classes=10
    ):
        """ConvMixer-256/8: https://openreview.net/pdf?id=TVHS5Y4dNvM.
        The hyperparameter values are taken from the paper.
        """
        inputs = keras.Input((image_size, image_size, 3))
        x = layers.Rescaling(scale=1.0 / 255)(inputs)

        # Extract patch embeddings.
        x = conv_stem(x, filters, patch_size)

        # ConvMixer blocks.
        for _ in range(depth):
            x = conv_mixer_block(x, filters, kernel_size)

        # Classification block.
        x = layers.GlobalAvgPool2D()(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)

        return keras.Model(inputs, outputs)

    def run_experiment(model):
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay
        )

        model.compile(
            optimizer=optimizer,
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )

        checkpoint_filepath = str(tmp_path / "checkpoint.weights.h5")
        checkpoint_callback = keras.callbacks.ModelCheckpoint(
            checkpoint_filepath,
            monitor="val_accuracy",
            save_best_only=True,
            save_weights_only=True,
        )

        history = model.fit(
            train_dataset,
            validation_data=val_dataset,
            epochs=num_epochs,
            callbacks=[checkpoint_callback],
        )

        model.load_weights(checkpoint_filepath)
        _, accuracy = model.evaluate(test_dataset)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")

        assert 0.0 <= accuracy <= 1.0
        return history, model

    conv_mixer_model = get_conv_mixer_256_8()
    history, conv_mixer_model = run_experiment(conv_mixer_model)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(history.history["loss"]).all()

    def visualization_plot(weights, idx=1):
        # First, apply min-max normalization to the
        # given weights to avoid isotrophic scaling.
        p_min, p_max = weights.min(), weights.max()
        weights = (weights - p_min) / (p_max - p_min)

        # Visualize all the filters.
        num_filters = 32
        shown = []
        for i in range(num_filters):
            current_weight = weights[:, :, :, i]
            if current_weight.shape[-1] == 1:
                current_weight = current_weight.squeeze()
            shown.append(current_weight)
            idx += 1
        return shown

    # We first visualize the learned patch embeddings.
    patch_embeddings = conv_mixer_model.layers[2].get_weights()[0]
    shown = visualization_plot(patch_embeddings)
    assert patch_embeddings.shape == (2, 2, 3, 32) and shown[0].shape == (2, 2, 3)
    assert min(w.min() for w in shown) == 0.0 and max(w.max() for w in shown) == 1.0

    # First, print the indices of the convolution layers that are not
    # pointwise convolutions.
    depthwise = []
    for i, layer in enumerate(conv_mixer_model.layers):
        if isinstance(layer, layers.DepthwiseConv2D):
            if layer.get_config()["kernel_size"] == (5, 5):
                print(i, layer)
                depthwise.append(i)
    # the functional model lists its layers in Keras' order: stem, then 7 per block
    assert depthwise == [5, 12]

    idx = 12  # Taking a kernel from the middle of the network.

    kernel = conv_mixer_model.layers[idx].get_weights()[0]
    kernel = np.expand_dims(kernel.squeeze(), axis=2)
    shown = visualization_plot(kernel)
    assert kernel.shape == (5, 5, 1, 32) and shown[0].shape == (5, 5)
