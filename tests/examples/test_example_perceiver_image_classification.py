"""keras.io example "Image Classification with Perceiver"
(examples/vision/perceiver_image_classification.py).

The example's code as written (its latest stored text, the TensorFlow-era one), with
`import tensorflow as tf; from tensorflow import keras; from tensorflow.keras import layers`
swapped for kgraph: `tf.image.extract_patches` + `tf.reshape` patches, a dict-input
cross-attention model (`layers.Attention(use_scale=True)` from a `(1, latent, dim)` latent
array to a batch of encoded images), a functional Transformer module, and the `Perceiver`
subclassed model that builds them in `build()` and applies them `num_iterations` times with
shared weights. One change the Keras 3 port of the example makes too: TensorFlow Addons'
`tfa.optimizers.LAMB(learning_rate=..., weight_decay_rate=...)` is
`keras.optimizers.Lamb(learning_rate=..., weight_decay=...)`. CIFAR-100 is replaced by random
uint8 images of its shapes (96 train, 32 test); sizes cut for a 2-core machine: image_size
64 -> 16 (64 patches of 2x2), latent_dim 256 -> 16, projection_dim 256 -> 16, num_heads 8 -> 2,
num_transformer_blocks 4 -> 1, batch_size 64 -> 32, num_epochs 50 -> 2.
"""

import numpy as np
import pytest
from example_datasets import cifar100_load_data


@pytest.mark.slow
def test_perceiver_image_classification():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    num_classes = 100
    input_shape = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar100_load_data(n_train=96, n_test=32)

    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    learning_rate = 0.001
    weight_decay = 0.0001
    batch_size = 32
    num_epochs = 2
    dropout_rate = 0.2
    image_size = 16  # We'll resize input images to this size.
    patch_size = 2  # Size of the patches to be extract from the input images.
    num_patches = (image_size // patch_size) ** 2  # Size of the data array.
    latent_dim = 16  # Size of the latent array.
    projection_dim = 16  # Embedding size of each element in the data and latent arrays.
    num_heads = 2  # Number of Transformer heads.
    ffn_units = [
        projection_dim,
        projection_dim,
    ]  # Size of the Transformer Feedforward network.
    num_transformer_blocks = 1
    num_iterations = 2  # Repetitions of the cross-attention and Transformer modules.
    classifier_units = [
        projection_dim,
        num_classes,
    ]  # Size of the Feedforward network of the final classifier.

    print(f"Image size: {image_size} X {image_size} = {image_size ** 2}")
    print(f"Patch size: {patch_size} X {patch_size} = {patch_size ** 2} ")
    print(f"Patches per image: {num_patches}")
    print(f"Elements per patch (3 channels): {(patch_size ** 2) * 3}")
    print(f"Latent array shape: {latent_dim} X {projection_dim}")
    print(f"Data array shape: {num_patches} X {projection_dim}")

    data_augmentation = keras.Sequential(
        [
            layers.Normalization(),
            layers.Resizing(image_size, image_size),
            layers.RandomFlip("horizontal"),
            layers.RandomZoom(height_factor=0.2, width_factor=0.2),
        ],
        name="data_augmentation",
    )
    # Compute the mean and the variance of the training data for normalization.
    data_augmentation.layers[0].adapt(x_train)

    def create_ffn(hidden_units, dropout_rate):
        ffn_layers = []
        for units in hidden_units[:-1]:
            ffn_layers.append(layers.Dense(units, activation=tf.nn.gelu))

        ffn_layers.append(layers.Dense(units=hidden_units[-1]))
        ffn_layers.append(layers.Dropout(dropout_rate))

        ffn = keras.Sequential(ffn_layers)
        return ffn

    class Patches(layers.Layer):
        def __init__(self, patch_size):
            super(Patches, self).__init__()
            self.patch_size = patch_size

        def call(self, images):
            batch_size = tf.shape(images)[0]
            patches = tf.image.extract_patches(
                images=images,
                sizes=[1, self.patch_size, self.patch_size, 1],
                strides=[1, self.patch_size, self.patch_size, 1],
                rates=[1, 1, 1, 1],
                padding="VALID",
            )
            patch_dims = patches.shape[-1]
            patches = tf.reshape(patches, [batch_size, -1, patch_dims])
            return patches

    class PatchEncoder(layers.Layer):
        def __init__(self, num_patches, projection_dim):
            super(PatchEncoder, self).__init__()
            self.num_patches = num_patches
            self.projection = layers.Dense(units=projection_dim)
            self.position_embedding = layers.Embedding(
                input_dim=num_patches, output_dim=projection_dim
            )

        def call(self, patches):
            positions = tf.range(start=0, limit=self.num_patches, delta=1)
            encoded = self.projection(patches) + self.position_embedding(positions)
            return encoded

    def create_cross_attention_module(
        latent_dim, data_dim, projection_dim, ffn_units, dropout_rate
    ):

        inputs = {
            # Recieve the latent array as an input of shape [1, latent_dim, projection_dim].
            "latent_array": layers.Input(shape=(latent_dim, projection_dim)),
            # Recieve the data_array (encoded image) as an input of shape [batch_size, data_dim, projection_dim].
            "data_array": layers.Input(shape=(data_dim, projection_dim)),
        }

        # Apply layer norm to the inputs
        latent_array = layers.LayerNormalization(epsilon=1e-6)(inputs["latent_array"])
        data_array = layers.LayerNormalization(epsilon=1e-6)(inputs["data_array"])

        # Create query tensor: [1, latent_dim, projection_dim].
        query = layers.Dense(units=projection_dim)(latent_array)
        # Create key tensor: [batch_size, data_dim, projection_dim].
        key = layers.Dense(units=projection_dim)(data_array)
        # Create value tensor: [batch_size, data_dim, projection_dim].
        value = layers.Dense(units=projection_dim)(data_array)

        # Generate cross-attention outputs: [batch_size, latent_dim, projection_dim].
        attention_output = layers.Attention(use_scale=True, dropout=0.1)(
            [query, key, value], return_attention_scores=False
        )
        # Skip connection 1.
        attention_output = layers.Add()([attention_output, latent_array])

        # Apply layer norm.
        attention_output = layers.LayerNormalization(epsilon=1e-6)(attention_output)
        # Apply Feedforward network.
        ffn = create_ffn(hidden_units=ffn_units, dropout_rate=dropout_rate)
        outputs = ffn(attention_output)
        # Skip connection 2.
        outputs = layers.Add()([outputs, attention_output])

        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=outputs)
        return model

    def create_transformer_module(
        latent_dim,
        projection_dim,
        num_heads,
        num_transformer_blocks,
        ffn_units,
        dropout_rate,
    ):

        # input_shape: [1, latent_dim, projection_dim]
        inputs = layers.Input(shape=(latent_dim, projection_dim))

        x0 = inputs
        # Create multiple layers of the Transformer block.
        for _ in range(num_transformer_blocks):
            # Apply layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=1e-6)(x0)
            # Create a multi-head self-attention layer.
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=projection_dim, dropout=0.1
            )(x1, x1)
            # Skip connection 1.
            x2 = layers.Add()([attention_output, x0])
            # Apply layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            # Apply Feedforward network.
            ffn = create_ffn(hidden_units=ffn_units, dropout_rate=dropout_rate)
            x3 = ffn(x3)
            # Skip connection 2.
            x0 = layers.Add()([x3, x2])

        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=x0)
        return model

    class Perceiver(keras.Model):
        def __init__(
            self,
            patch_size,
            data_dim,
            latent_dim,
            projection_dim,
            num_heads,
            num_transformer_blocks,
            ffn_units,
            dropout_rate,
            num_iterations,
            classifier_units,
        ):
            super(Perceiver, self).__init__()

            self.latent_dim = latent_dim
            self.data_dim = data_dim
            self.patch_size = patch_size
            self.projection_dim = projection_dim
            self.num_heads = num_heads
            self.num_transformer_blocks = num_transformer_blocks
            self.ffn_units = ffn_units
            self.dropout_rate = dropout_rate
            self.num_iterations = num_iterations
            self.classifier_units = classifier_units

        def build(self, input_shape):
            # Create latent array.
            self.latent_array = self.add_weight(
                shape=(self.latent_dim, self.projection_dim),
                initializer="random_normal",
                trainable=True,
            )

            # Create patching module.
            self.patcher = Patches(self.patch_size)

            # Create patch encoder.
            self.patch_encoder = PatchEncoder(self.data_dim, self.projection_dim)

            # Create cross-attenion module.
            self.cross_attention = create_cross_attention_module(
                self.latent_dim,
                self.data_dim,
                self.projection_dim,
                self.ffn_units,
                self.dropout_rate,
            )

            # Create Transformer module.
            self.transformer = create_transformer_module(
                self.latent_dim,
                self.projection_dim,
                self.num_heads,
                self.num_transformer_blocks,
                self.ffn_units,
                self.dropout_rate,
            )

            # Create global average pooling layer.
            self.global_average_pooling = layers.GlobalAveragePooling1D()

            # Create a classification head.
            self.classification_head = create_ffn(
                hidden_units=self.classifier_units, dropout_rate=self.dropout_rate
            )

            super(Perceiver, self).build(input_shape)

        def call(self, inputs):
            # Augment data.
            augmented = data_augmentation(inputs)
            # Create patches.
            patches = self.patcher(augmented)
            # Encode patches.
            encoded_patches = self.patch_encoder(patches)
            # Prepare cross-attention inputs.
            cross_attention_inputs = {
                "latent_array": tf.expand_dims(self.latent_array, 0),
                "data_array": encoded_patches,
            }
            # Apply the cross-attention and the Transformer modules iteratively.
            for _ in range(self.num_iterations):
                # Apply cross-attention from the latent array to the data array.
                latent_array = self.cross_attention(cross_attention_inputs)
                # Apply self-attention Transformer to the latent array.
                latent_array = self.transformer(latent_array)
                # Set the latent array of the next iteration.
                cross_attention_inputs["latent_array"] = latent_array

            # Apply global average pooling to generate a [batch_size, projection_dim] repesentation tensor.
            representation = self.global_average_pooling(latent_array)
            # Generate logits.
            logits = self.classification_head(representation)
            return logits

    def run_experiment(model):

        # Create LAMB optimizer with weight decay.
        optimizer = keras.optimizers.Lamb(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
        )

        # Compile the model.
        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="acc"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5-acc"),
            ],
        )

        # Create a learning rate scheduler callback.
        reduce_lr = keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=0.2, patience=3
        )

        # Create an early stopping callback.
        early_stopping = tf.keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=15, restore_best_weights=True
        )

        # Fit the model.
        history = model.fit(
            x=x_train,
            y=y_train,
            batch_size=batch_size,
            epochs=num_epochs,
            validation_split=0.1,
            callbacks=[early_stopping, reduce_lr],
        )

        _, accuracy, top_5_accuracy = model.evaluate(x_test, y_test)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")

        assert 0.0 <= accuracy <= top_5_accuracy <= 1.0
        # Return history to plot learning curves.
        return history

    perceiver_classifier = Perceiver(
        patch_size,
        num_patches,
        latent_dim,
        projection_dim,
        num_heads,
        num_transformer_blocks,
        ffn_units,
        dropout_rate,
        num_iterations,
        classifier_units,
    )

    history = run_experiment(perceiver_classifier)

    assert len(history.history["loss"]) == num_epochs
    assert np.isfinite(history.history["loss"] + history.history["val_loss"]).all()
    logits = perceiver_classifier.predict(x_test, verbose=0)
    assert logits.shape == (32, num_classes) and np.isfinite(logits).all()
    # the modules are shared across iterations: one cross-attention, one Transformer
    assert perceiver_classifier.cross_attention.count_params() > 0
    weights = perceiver_classifier.trainable_weights
    assert len({id(w) for w in weights}) == len(weights)
