"""keras.io example "Compact Convolutional Transformers" (examples/vision/cct.py).

The example's code as written (its latest stored text, the TensorFlow-era one), with
`from tensorflow.keras import layers; from tensorflow import keras; import tensorflow as tf`
swapped for kgraph: the tokenizer's `tf.reshape`/`tf.shape`, the `positional_embedding` dummy
call on `tf.ones`, `StochasticDepth` with `tf.random.uniform`/`tf.floor`, `tf.nn.gelu`, and the
sequence pooling's `tf.nn.softmax`/`tf.matmul(transpose_a=True)`/`tf.squeeze` on the functional
model's tensors. Two changes the Keras 3 port of the example makes too: TensorFlow Addons'
`tfa.optimizers.AdamW` is `keras.optimizers.AdamW`, and the weights-only checkpoint file ends
in `.weights.h5` (here under pytest's tmp_path). CIFAR-10 is replaced by random uint8 images of
its shapes (160 train, 32 test); sizes cut for a 2-core machine: the tokenizer's
num_output_channels [64, 128] -> [16, 32] and projection_dim 128 -> 32 (they must agree),
batch_size 128 -> 32, num_epochs 30 -> 1. The matplotlib figure is left out; the history it
plots is checked.
"""

import numpy as np
from example_datasets import cifar10_load_data


def test_cct(tmp_path):
    from kgraph.keras import layers
    from kgraph import keras
    import kgraph as tf

    positional_emb = True
    conv_layers = 2
    projection_dim = 32

    num_heads = 2
    transformer_units = [
        projection_dim,
        projection_dim,
    ]
    transformer_layers = 2
    stochastic_depth_rate = 0.1

    learning_rate = 0.001
    weight_decay = 0.0001
    batch_size = 32
    num_epochs = 1
    image_size = 32

    num_classes = 10
    input_shape = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar10_load_data(n_train=160)

    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    class CCTTokenizer(layers.Layer):
        def __init__(
            self,
            kernel_size=3,
            stride=1,
            padding=1,
            pooling_kernel_size=3,
            pooling_stride=2,
            num_conv_layers=conv_layers,
            num_output_channels=[16, 32],
            positional_emb=positional_emb,
            **kwargs,
        ):
            super(CCTTokenizer, self).__init__(**kwargs)

            # This is our tokenizer.
            self.conv_model = keras.Sequential()
            for i in range(num_conv_layers):
                self.conv_model.add(
                    layers.Conv2D(
                        num_output_channels[i],
                        kernel_size,
                        stride,
                        padding="valid",
                        use_bias=False,
                        activation="relu",
                        kernel_initializer="he_normal",
                    )
                )
                self.conv_model.add(layers.ZeroPadding2D(padding))
                self.conv_model.add(
                    layers.MaxPool2D(pooling_kernel_size, pooling_stride, "same")
                )

            self.positional_emb = positional_emb

        def call(self, images):
            outputs = self.conv_model(images)
            # After passing the images through our mini-network the spatial dimensions
            # are flattened to form sequences.
            reshaped = tf.reshape(
                outputs,
                (-1, tf.shape(outputs)[1] * tf.shape(outputs)[2], tf.shape(outputs)[-1]),
            )
            return reshaped

        def positional_embedding(self, image_size):
            # Positional embeddings are optional in CCT. Here, we calculate
            # the number of sequences and initialize an `Embedding` layer to
            # compute the positional embeddings later.
            if self.positional_emb:
                dummy_inputs = tf.ones((1, image_size, image_size, 3))
                dummy_outputs = self.call(dummy_inputs)
                sequence_length = tf.shape(dummy_outputs)[1]
                projection_dim = tf.shape(dummy_outputs)[-1]

                embed_layer = layers.Embedding(
                    input_dim=sequence_length, output_dim=projection_dim
                )
                return embed_layer, sequence_length
            else:
                return None

    # Referred from: github.com:rwightman/pytorch-image-models.
    class StochasticDepth(layers.Layer):
        def __init__(self, drop_prop, **kwargs):
            super(StochasticDepth, self).__init__(**kwargs)
            self.drop_prob = drop_prop

        def call(self, x, training=None):
            if training:
                keep_prob = 1 - self.drop_prob
                shape = (tf.shape(x)[0],) + (1,) * (tf.shape(x).shape[0] - 1)
                random_tensor = keep_prob + tf.random.uniform(shape, 0, 1)
                random_tensor = tf.floor(random_tensor)
                return (x / keep_prob) * random_tensor
            return x

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation=tf.nn.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    # Note the rescaling layer. These layers have pre-defined inference behavior.
    data_augmentation = keras.Sequential(
        [
            layers.Rescaling(scale=1.0 / 255),
            layers.RandomCrop(image_size, image_size),
            layers.RandomFlip("horizontal"),
        ],
        name="data_augmentation",
    )

    def create_cct_model(
        image_size=image_size,
        input_shape=input_shape,
        num_heads=num_heads,
        projection_dim=projection_dim,
        transformer_units=transformer_units,
    ):

        inputs = layers.Input(input_shape)

        # Augment data.
        augmented = data_augmentation(inputs)

        # Encode patches.
        cct_tokenizer = CCTTokenizer()
        encoded_patches = cct_tokenizer(augmented)

        # Apply positional embedding.
        if positional_emb:
            pos_embed, seq_length = cct_tokenizer.positional_embedding(image_size)
            positions = tf.range(start=0, limit=seq_length, delta=1)
            position_embeddings = pos_embed(positions)
            encoded_patches += position_embeddings

        # Calculate Stochastic Depth probabilities.
        dpr = [x for x in np.linspace(0, stochastic_depth_rate, transformer_layers)]

        # Create multiple layers of the Transformer block.
        for i in range(transformer_layers):
            # Layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=1e-5)(encoded_patches)

            # Create a multi-head attention layer.
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=projection_dim, dropout=0.1
            )(x1, x1)

            # Skip connection 1.
            attention_output = StochasticDepth(dpr[i])(attention_output)
            x2 = layers.Add()([attention_output, encoded_patches])

            # Layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=1e-5)(x2)

            # MLP.
            x3 = mlp(x3, hidden_units=transformer_units, dropout_rate=0.1)

            # Skip connection 2.
            x3 = StochasticDepth(dpr[i])(x3)
            encoded_patches = layers.Add()([x3, x2])

        # Apply sequence pooling.
        representation = layers.LayerNormalization(epsilon=1e-5)(encoded_patches)
        attention_weights = tf.nn.softmax(layers.Dense(1)(representation), axis=1)
        weighted_representation = tf.matmul(
            attention_weights, representation, transpose_a=True
        )
        weighted_representation = tf.squeeze(weighted_representation, -2)

        # Classify outputs.
        logits = layers.Dense(num_classes)(weighted_representation)
        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=logits)
        return model

    def run_experiment(model):
        optimizer = keras.optimizers.AdamW(learning_rate=0.001, weight_decay=0.0001)

        model.compile(
            optimizer=optimizer,
            loss=keras.losses.CategoricalCrossentropy(
                from_logits=True, label_smoothing=0.1
            ),
            metrics=[
                keras.metrics.CategoricalAccuracy(name="accuracy"),
                keras.metrics.TopKCategoricalAccuracy(5, name="top-5-accuracy"),
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

    cct_model = create_cct_model()
    history = run_experiment(cct_model)

    # the plot reads these
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == num_epochs
    assert np.isfinite(history.history["loss"]).all()
    assert np.isfinite(history.history["val_loss"]).all()
    # 32x32 -> conv 30 -> pad 32 -> pool 16 -> conv 14 -> pad 16 -> pool 8: 64 tokens
    assert cct_model.predict(x_test, verbose=0).shape == (32, num_classes)
    tokenizer = next(layer for layer in cct_model.layers if isinstance(layer, CCTTokenizer))
    assert tuple(tokenizer(x_test[:2] / 255.0).shape) == (2, 64, projection_dim)
    pos_embed, seq_length = tokenizer.positional_embedding(image_size)
    assert seq_length == 64 and pos_embed.output_dim == projection_dim
