"""keras.io example "Image classification with EANet (External Attention Transformer)"
(examples/vision/eanet.py).

The example's code as written (its latest stored text, the TensorFlow-era one), with
`import tensorflow as tf; from tensorflow import keras; from tensorflow.keras import layers`
swapped for kgraph: `tf.image.extract_patches` with `tf.shape(images)[0]` and `tf.reshape`
inside a layer, `tf.range` positions, and the external attention's `tf.reshape`/
`tf.transpose`/`tf.reduce_sum` on the functional model's tensors. One change the Keras 3 port
of the example makes too: TensorFlow Addons' `tfa.optimizers.AdamW` is
`keras.optimizers.AdamW`. CIFAR-100 is replaced by random uint8 images of its shapes (96
train, 32 test); sizes cut for a 2-core machine: embedding_dim 64 -> 32, mlp_dim 64 -> 32,
num_transformer_blocks 8 -> 2, batch_size 128 -> 32, num_epochs 50 -> 1. The matplotlib
figure is left out; the history it plots is checked.
"""

import numpy as np
from example_datasets import cifar100_load_data


def test_eanet():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    num_classes = 100
    input_shape = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar100_load_data(n_train=96, n_test=32)
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)
    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    weight_decay = 0.0001
    learning_rate = 0.001
    label_smoothing = 0.1
    validation_split = 0.2
    batch_size = 32
    num_epochs = 1
    patch_size = 2  # Size of the patches to be extracted from the input images.
    num_patches = (input_shape[0] // patch_size) ** 2  # Number of patch
    embedding_dim = 32  # Number of hidden units.
    mlp_dim = 32
    dim_coefficient = 4
    num_heads = 4
    attention_dropout = 0.2
    projection_dropout = 0.2
    num_transformer_blocks = 2  # Number of repetitions of the transformer layer

    print(f"Patch size: {patch_size} X {patch_size} = {patch_size ** 2} ")
    print(f"Patches per image: {num_patches}")

    data_augmentation = keras.Sequential(
        [
            layers.Normalization(),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(factor=0.1),
            layers.RandomContrast(factor=0.1),
            layers.RandomZoom(height_factor=0.2, width_factor=0.2),
        ],
        name="data_augmentation",
    )
    # Compute the mean and the variance of the training data for normalization.
    data_augmentation.layers[0].adapt(x_train)

    class PatchExtract(layers.Layer):
        def __init__(self, patch_size, **kwargs):
            super(PatchExtract, self).__init__(**kwargs)
            self.patch_size = patch_size

        def call(self, images):
            batch_size = tf.shape(images)[0]
            patches = tf.image.extract_patches(
                images=images,
                sizes=(1, self.patch_size, self.patch_size, 1),
                strides=(1, self.patch_size, self.patch_size, 1),
                rates=(1, 1, 1, 1),
                padding="VALID",
            )
            patch_dim = patches.shape[-1]
            patch_num = patches.shape[1]
            return tf.reshape(patches, (batch_size, patch_num * patch_num, patch_dim))

    class PatchEmbedding(layers.Layer):
        def __init__(self, num_patch, embed_dim, **kwargs):
            super(PatchEmbedding, self).__init__(**kwargs)
            self.num_patch = num_patch
            self.proj = layers.Dense(embed_dim)
            self.pos_embed = layers.Embedding(input_dim=num_patch, output_dim=embed_dim)

        def call(self, patch):
            pos = tf.range(start=0, limit=self.num_patch, delta=1)
            return self.proj(patch) + self.pos_embed(pos)

    def external_attention(
        x, dim, num_heads, dim_coefficient=4, attention_dropout=0, projection_dropout=0
    ):
        _, num_patch, channel = x.shape
        assert dim % num_heads == 0
        num_heads = num_heads * dim_coefficient

        x = layers.Dense(dim * dim_coefficient)(x)
        # create tensor [batch_size, num_patches, num_heads, dim*dim_coefficient//num_heads]
        x = tf.reshape(
            x, shape=(-1, num_patch, num_heads, dim * dim_coefficient // num_heads)
        )
        x = tf.transpose(x, perm=[0, 2, 1, 3])
        # a linear layer M_k
        attn = layers.Dense(dim // dim_coefficient)(x)
        # normalize attention map
        attn = layers.Softmax(axis=2)(attn)
        # dobule-normalization
        attn = attn / (1e-9 + tf.reduce_sum(attn, axis=-1, keepdims=True))
        attn = layers.Dropout(attention_dropout)(attn)
        # a linear layer M_v
        x = layers.Dense(dim * dim_coefficient // num_heads)(attn)
        x = tf.transpose(x, perm=[0, 2, 1, 3])
        x = tf.reshape(x, [-1, num_patch, dim * dim_coefficient])
        # a linear layer to project original dim
        x = layers.Dense(dim)(x)
        x = layers.Dropout(projection_dropout)(x)
        return x

    def mlp(x, embedding_dim, mlp_dim, drop_rate=0.2):
        x = layers.Dense(mlp_dim, activation=tf.nn.gelu)(x)
        x = layers.Dropout(drop_rate)(x)
        x = layers.Dense(embedding_dim)(x)
        x = layers.Dropout(drop_rate)(x)
        return x

    def transformer_encoder(
        x,
        embedding_dim,
        mlp_dim,
        num_heads,
        dim_coefficient,
        attention_dropout,
        projection_dropout,
        attention_type="external_attention",
    ):
        residual_1 = x
        x = layers.LayerNormalization(epsilon=1e-5)(x)
        if attention_type == "external_attention":
            x = external_attention(
                x,
                embedding_dim,
                num_heads,
                dim_coefficient,
                attention_dropout,
                projection_dropout,
            )
        elif attention_type == "self_attention":
            x = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=embedding_dim, dropout=attention_dropout
            )(x, x)
        x = layers.add([x, residual_1])
        residual_2 = x
        x = layers.LayerNormalization(epsilon=1e-5)(x)
        x = mlp(x, embedding_dim, mlp_dim)
        x = layers.add([x, residual_2])
        return x

    def get_model(attention_type="external_attention"):
        inputs = layers.Input(shape=input_shape)
        # Image augment
        x = data_augmentation(inputs)
        # Extract patches.
        x = PatchExtract(patch_size)(x)
        # Create patch embedding.
        x = PatchEmbedding(num_patches, embedding_dim)(x)
        # Create Transformer block.
        for _ in range(num_transformer_blocks):
            x = transformer_encoder(
                x,
                embedding_dim,
                mlp_dim,
                num_heads,
                dim_coefficient,
                attention_dropout,
                projection_dropout,
                attention_type,
            )

        x = layers.GlobalAvgPool1D()(x)
        outputs = layers.Dense(num_classes, activation="softmax")(x)
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    model = get_model(attention_type="external_attention")

    model.compile(
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        optimizer=keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay
        ),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(5, name="top-5-accuracy"),
        ],
    )

    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=num_epochs,
        validation_split=validation_split,
    )

    # the plot reads these
    assert len(history.history["loss"]) == len(history.history["val_loss"]) == num_epochs
    assert np.isfinite(history.history["loss"] + history.history["val_loss"]).all()

    loss, accuracy, top_5_accuracy = model.evaluate(x_test, y_test)
    print(f"Test loss: {round(loss, 2)}")
    print(f"Test accuracy: {round(accuracy * 100, 2)}%")
    print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")

    assert np.isfinite(loss) and 0.0 <= accuracy <= top_5_accuracy <= 1.0
    probabilities = model.predict(x_test, verbose=0)
    assert probabilities.shape == (32, num_classes)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    # the patches: 16 x 16 windows of 2 x 2 x 3 values each
    patches = PatchExtract(patch_size)(x_test[:2].astype("float32"))
    assert tuple(patches.shape) == (2, num_patches, 12)
    np.testing.assert_array_equal(patches[1, 17], x_test[1, 2:4, 2:4].reshape(-1))
