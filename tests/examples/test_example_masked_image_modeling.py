"""keras.io example "Masked image modeling with Autoencoders"
(examples/vision/masked_image_modeling.py).

The example's code as written (its stored text is the TensorFlow-era one: `from tensorflow.keras
import layers; from tensorflow import keras; import tensorflow as tf`, swapped for kgraph):
tf.data pipelines of images alone, the augmentation Sequentials (Rescaling, Resizing,
RandomCrop, RandomFlip; one also mapped over a batched dataset), the `Patches` layer
(`tf.image.extract_patches` with TensorFlow's arguments, a Reshape sublayer;
`reconstruct_from_patch` with `tf.reshape`/`tf.split`/`tf.unstack`/`tf.concat`), the
`PatchEncoder` (a `tf.Variable` mask token from `tf.random.normal`, `build` unpacking the
input shape and creating sublayers, `tf.range`/`tf.tile` of a traced batch,
`tf.argsort` of `tf.random.uniform` for the random masking, `tf.gather(..., axis=1,
batch_dims=1)`, `tf.repeat` by the traced batch, a `downstream` flag switched after training),
ViT encoder/decoder functional models (`Input((None, dim))`, MultiHeadAttention,
`activation=tf.nn.gelu`), the `MaskedAutoencoder` with `self.compiled_loss`/`compiled_metrics`,
a gradient over a list of variable lists applied as a list of `(g, v)` tuples, the
`TrainMonitor` callback (eager sublayer calls, `generate_masked_image`), the `WarmUpCosine`
schedule (`tf.cos`, `tf.where(..., name=...)`) called on Python steps and used by AdamW and
SGD, and linear probing on a frozen Sequential of the pretrained layers.

Replaced: CIFAR-10 by random arrays (`example_datasets.cifar10_load_data`: 32 train, 16
validation, 16 test images); TensorFlow Addons' AdamW by `keras.optimizers.AdamW`. Sizes cut:
BATCH_SIZE 256 -> 16, IMAGE_SIZE 48 -> 24 (16 patches of 6x6), projection dims 128/64 -> 32/16,
3 -> 2 encoder blocks, 100 and 50 epochs -> 1. The matplotlib figures are left out (what they
show is computed and checked).

Checked: `reconstruct_from_patch` gives back the image; the patch encoder's outputs against
numpy (gathers of the projected patches plus positions by the returned indices, which split a
permutation of the patches 12 / 4); the learning-rate schedule against its formula; the probe
leaves the frozen encoder unchanged. Marked slow (~8 s).
"""

import numpy as np
import pytest

from example_datasets import cifar10_load_data


@pytest.mark.slow
def test_masked_image_modeling():
    from kgraph.keras import layers
    from kgraph import keras
    import kgraph as tf

    import random

    # Setting seeds for reproducibility.
    SEED = 42
    keras.utils.set_random_seed(SEED)
    checks = {}

    # DATA
    BUFFER_SIZE = 1024
    BATCH_SIZE = 16  # 256
    AUTO = tf.data.AUTOTUNE
    INPUT_SHAPE = (32, 32, 3)
    NUM_CLASSES = 10

    # OPTIMIZER
    LEARNING_RATE = 5e-3
    WEIGHT_DECAY = 1e-4

    # PRETRAINING
    EPOCHS = 1  # 100

    # AUGMENTATION
    IMAGE_SIZE = 24  # 48: We will resize input images to this size.
    PATCH_SIZE = 6  # Size of the patches to be extracted from the input images.
    NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2
    MASK_PROPORTION = 0.75  # We have found 75% masking to give us the best results.

    # ENCODER and DECODER
    LAYER_NORM_EPS = 1e-6
    ENC_PROJECTION_DIM = 32  # 128
    DEC_PROJECTION_DIM = 16  # 64
    ENC_NUM_HEADS = 4
    ENC_LAYERS = 2  # 3
    DEC_NUM_HEADS = 4
    DEC_LAYERS = (
        1  # The decoder is lightweight but should be reasonably deep for reconstruction.
    )
    ENC_TRANSFORMER_UNITS = [
        ENC_PROJECTION_DIM * 2,
        ENC_PROJECTION_DIM,
    ]  # Size of the transformer layers.
    DEC_TRANSFORMER_UNITS = [
        DEC_PROJECTION_DIM * 2,
        DEC_PROJECTION_DIM,
    ]

    (x_train, y_train), (x_test, y_test) = cifar10_load_data(48, 16)
    (x_train, y_train), (x_val, y_val) = (
        (x_train[:32], y_train[:32]),  # [:40000]
        (x_train[32:], y_train[32:]),
    )
    print(f"Training samples: {len(x_train)}")
    print(f"Validation samples: {len(x_val)}")
    print(f"Testing samples: {len(x_test)}")

    train_ds = tf.data.Dataset.from_tensor_slices(x_train)
    train_ds = train_ds.shuffle(BUFFER_SIZE).batch(BATCH_SIZE).prefetch(AUTO)

    val_ds = tf.data.Dataset.from_tensor_slices(x_val)
    val_ds = val_ds.batch(BATCH_SIZE).prefetch(AUTO)

    test_ds = tf.data.Dataset.from_tensor_slices(x_test)
    test_ds = test_ds.batch(BATCH_SIZE).prefetch(AUTO)

    def get_train_augmentation_model():
        model = keras.Sequential(
            [
                layers.Rescaling(1 / 255.0),
                layers.Resizing(INPUT_SHAPE[0] + 20, INPUT_SHAPE[0] + 20),
                layers.RandomCrop(IMAGE_SIZE, IMAGE_SIZE),
                layers.RandomFlip("horizontal"),
            ],
            name="train_data_augmentation",
        )
        return model

    def get_test_augmentation_model():
        model = keras.Sequential(
            [layers.Rescaling(1 / 255.0), layers.Resizing(IMAGE_SIZE, IMAGE_SIZE),],
            name="test_data_augmentation",
        )
        return model

    class Patches(layers.Layer):
        def __init__(self, patch_size=PATCH_SIZE, **kwargs):
            super().__init__(**kwargs)
            self.patch_size = patch_size

            # Assuming the image has three channels each patch would be
            # of size (patch_size, patch_size, 3).
            self.resize = layers.Reshape((-1, patch_size * patch_size * 3))

        def call(self, images):
            # Create patches from the input images
            patches = tf.image.extract_patches(
                images=images,
                sizes=[1, self.patch_size, self.patch_size, 1],
                strides=[1, self.patch_size, self.patch_size, 1],
                rates=[1, 1, 1, 1],
                padding="VALID",
            )

            # Reshape the patches to (batch, num_patches, patch_area) and return it.
            patches = self.resize(patches)
            return patches

        def show_patched_image(self, images, patches):
            # This is a utility function which accepts a batch of images and its
            # corresponding patches and help visualize one image and its patches
            # side by side (the plt calls are left out).
            idx = np.random.choice(patches.shape[0])
            print(f"Index selected: {idx}.")

            shown = [keras.utils.array_to_img(images[idx])]
            n = int(np.sqrt(patches.shape[1]))
            for i, patch in enumerate(patches[idx]):
                patch_img = tf.reshape(patch, (self.patch_size, self.patch_size, 3))
                shown.append(keras.utils.img_to_array(patch_img))

            # Return the index chosen to validate it outside the method.
            return idx

        # taken from https://stackoverflow.com/a/58082878/10319735
        def reconstruct_from_patch(self, patch):
            # This utility function takes patches from a *single* image and
            # reconstructs it back into the image. This is useful for the train
            # monitor callback.
            num_patches = patch.shape[0]
            n = int(np.sqrt(num_patches))
            patch = tf.reshape(patch, (num_patches, self.patch_size, self.patch_size, 3))
            rows = tf.split(patch, n, axis=0)
            rows = [tf.concat(tf.unstack(x), axis=1) for x in rows]
            reconstructed = tf.concat(rows, axis=0)
            return reconstructed

    # Get a batch of images.
    image_batch = next(iter(train_ds))

    # Augment the images.
    augmentation_model = get_train_augmentation_model()
    augmented_images = augmentation_model(image_batch)

    # Define the patch layer.
    patch_layer = Patches()

    # Get the patches from the batched images.
    patches = patch_layer(images=augmented_images)

    # Now pass the images and the corresponding patches
    # to the `show_patched_image` method.
    random_index = patch_layer.show_patched_image(images=augmented_images, patches=patches)

    # Chose the same chose image and try reconstructing the patches
    # into the original image.
    image = patch_layer.reconstruct_from_patch(patches[random_index])
    checks["reconstructed"] = (np.asarray(image), np.asarray(augmented_images[random_index]))

    class PatchEncoder(layers.Layer):
        def __init__(
            self,
            patch_size=PATCH_SIZE,
            projection_dim=ENC_PROJECTION_DIM,
            mask_proportion=MASK_PROPORTION,
            downstream=False,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.patch_size = patch_size
            self.projection_dim = projection_dim
            self.mask_proportion = mask_proportion
            self.downstream = downstream

            # This is a trainable mask token initialized randomly from a normal
            # distribution.
            self.mask_token = tf.Variable(
                tf.random.normal([1, patch_size * patch_size * 3]), trainable=True
            )

        def build(self, input_shape):
            (_, self.num_patches, self.patch_area) = input_shape

            # Create the projection layer for the patches.
            self.projection = layers.Dense(units=self.projection_dim)

            # Create the positional embedding layer.
            self.position_embedding = layers.Embedding(
                input_dim=self.num_patches, output_dim=self.projection_dim
            )

            # Number of patches that will be masked.
            self.num_mask = int(self.mask_proportion * self.num_patches)

        def call(self, patches):
            # Get the positional embeddings.
            batch_size = tf.shape(patches)[0]
            positions = tf.range(start=0, limit=self.num_patches, delta=1)
            pos_embeddings = self.position_embedding(positions[tf.newaxis, ...])
            pos_embeddings = tf.tile(
                pos_embeddings, [batch_size, 1, 1]
            )  # (B, num_patches, projection_dim)

            # Embed the patches.
            patch_embeddings = (
                self.projection(patches) + pos_embeddings
            )  # (B, num_patches, projection_dim)

            if self.downstream:
                return patch_embeddings
            else:
                mask_indices, unmask_indices = self.get_random_indices(batch_size)
                # The encoder input is the unmasked patch embeddings. Here we gather
                # all the patches that should be unmasked.
                unmasked_embeddings = tf.gather(
                    patch_embeddings, unmask_indices, axis=1, batch_dims=1
                )  # (B, unmask_numbers, projection_dim)

                # Get the unmasked and masked position embeddings. We will need them
                # for the decoder.
                unmasked_positions = tf.gather(
                    pos_embeddings, unmask_indices, axis=1, batch_dims=1
                )  # (B, unmask_numbers, projection_dim)
                masked_positions = tf.gather(
                    pos_embeddings, mask_indices, axis=1, batch_dims=1
                )  # (B, mask_numbers, projection_dim)

                # Repeat the mask token number of mask times.
                # Mask tokens replace the masks of the image.
                mask_tokens = tf.repeat(self.mask_token, repeats=self.num_mask, axis=0)
                mask_tokens = tf.repeat(
                    mask_tokens[tf.newaxis, ...], repeats=batch_size, axis=0
                )

                # Get the masked embeddings for the tokens.
                masked_embeddings = self.projection(mask_tokens) + masked_positions
                return (
                    unmasked_embeddings,  # Input to the encoder.
                    masked_embeddings,  # First part of input to the decoder.
                    unmasked_positions,  # Added to the encoder outputs.
                    mask_indices,  # The indices that were masked.
                    unmask_indices,  # The indices that were unmaksed.
                )

        def get_random_indices(self, batch_size):
            # Create random indices from a uniform distribution and then split
            # it into mask and unmask indices.
            rand_indices = tf.argsort(
                tf.random.uniform(shape=(batch_size, self.num_patches)), axis=-1
            )
            mask_indices = rand_indices[:, : self.num_mask]
            unmask_indices = rand_indices[:, self.num_mask :]
            return mask_indices, unmask_indices

        def generate_masked_image(self, patches, unmask_indices):
            # Choose a random patch and it corresponding unmask index.
            idx = np.random.choice(patches.shape[0])
            patch = patches[idx]
            unmask_index = unmask_indices[idx]

            # Build a numpy array of same shape as patch.
            new_patch = np.zeros_like(patch)

            # Iterate of the new_patch and plug the unmasked patches.
            count = 0
            for i in range(unmask_index.shape[0]):
                new_patch[unmask_index[i]] = patch[unmask_index[i]]
            return new_patch, idx

    # Create the patch encoder layer.
    patch_encoder = PatchEncoder()

    # Get the embeddings and positions.
    (
        unmasked_embeddings,
        masked_embeddings,
        unmasked_positions,
        mask_indices,
        unmask_indices,
    ) = patch_encoder(patches=patches)
    checks["encoded"] = (patch_encoder, np.asarray(patches), unmasked_embeddings,
                         masked_embeddings,
                         unmasked_positions, np.asarray(mask_indices),
                         np.asarray(unmask_indices))

    # Show a maksed patch image.
    new_patch, random_index = patch_encoder.generate_masked_image(patches, unmask_indices)

    img = patch_layer.reconstruct_from_patch(new_patch)
    shown = keras.utils.array_to_img(img)
    img = augmented_images[random_index]
    shown = keras.utils.array_to_img(img)

    def mlp(x, dropout_rate, hidden_units):
        for units in hidden_units:
            x = layers.Dense(units, activation=tf.nn.gelu)(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    def create_encoder(num_heads=ENC_NUM_HEADS, num_layers=ENC_LAYERS):
        inputs = layers.Input((None, ENC_PROJECTION_DIM))
        x = inputs

        for _ in range(num_layers):
            # Layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x)

            # Create a multi-head attention layer.
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=ENC_PROJECTION_DIM, dropout=0.1
            )(x1, x1)

            # Skip connection 1.
            x2 = layers.Add()([attention_output, x])

            # Layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x2)

            # MLP.
            x3 = mlp(x3, hidden_units=ENC_TRANSFORMER_UNITS, dropout_rate=0.1)

            # Skip connection 2.
            x = layers.Add()([x3, x2])

        outputs = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x)
        return keras.Model(inputs, outputs, name="mae_encoder")

    def create_decoder(
        num_layers=DEC_LAYERS, num_heads=DEC_NUM_HEADS, image_size=IMAGE_SIZE
    ):
        inputs = layers.Input((NUM_PATCHES, ENC_PROJECTION_DIM))
        x = layers.Dense(DEC_PROJECTION_DIM)(inputs)

        for _ in range(num_layers):
            # Layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x)

            # Create a multi-head attention layer.
            attention_output = layers.MultiHeadAttention(
                num_heads=num_heads, key_dim=DEC_PROJECTION_DIM, dropout=0.1
            )(x1, x1)

            # Skip connection 1.
            x2 = layers.Add()([attention_output, x])

            # Layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x2)

            # MLP.
            x3 = mlp(x3, hidden_units=DEC_TRANSFORMER_UNITS, dropout_rate=0.1)

            # Skip connection 2.
            x = layers.Add()([x3, x2])

        x = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)(x)
        x = layers.Flatten()(x)
        pre_final = layers.Dense(units=image_size * image_size * 3, activation="sigmoid")(x)
        outputs = layers.Reshape((image_size, image_size, 3))(pre_final)

        return keras.Model(inputs, outputs, name="mae_decoder")

    class MaskedAutoencoder(keras.Model):
        def __init__(
            self,
            train_augmentation_model,
            test_augmentation_model,
            patch_layer,
            patch_encoder,
            encoder,
            decoder,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.train_augmentation_model = train_augmentation_model
            self.test_augmentation_model = test_augmentation_model
            self.patch_layer = patch_layer
            self.patch_encoder = patch_encoder
            self.encoder = encoder
            self.decoder = decoder

        def calculate_loss(self, images, test=False):
            # Augment the input images.
            if test:
                augmented_images = self.test_augmentation_model(images)
            else:
                augmented_images = self.train_augmentation_model(images)

            # Patch the augmented images.
            patches = self.patch_layer(augmented_images)

            # Encode the patches.
            (
                unmasked_embeddings,
                masked_embeddings,
                unmasked_positions,
                mask_indices,
                unmask_indices,
            ) = self.patch_encoder(patches)

            # Pass the unmaksed patche to the encoder.
            encoder_outputs = self.encoder(unmasked_embeddings)

            # Create the decoder inputs.
            encoder_outputs = encoder_outputs + unmasked_positions
            decoder_inputs = tf.concat([encoder_outputs, masked_embeddings], axis=1)

            # Decode the inputs.
            decoder_outputs = self.decoder(decoder_inputs)
            decoder_patches = self.patch_layer(decoder_outputs)

            loss_patch = tf.gather(patches, mask_indices, axis=1, batch_dims=1)
            loss_output = tf.gather(decoder_patches, mask_indices, axis=1, batch_dims=1)

            # Compute the total loss.
            total_loss = self.compiled_loss(loss_patch, loss_output)

            return total_loss, loss_patch, loss_output

        def train_step(self, images):
            with tf.GradientTape() as tape:
                total_loss, loss_patch, loss_output = self.calculate_loss(images)

            # Apply gradients.
            train_vars = [
                self.train_augmentation_model.trainable_variables,
                self.patch_layer.trainable_variables,
                self.patch_encoder.trainable_variables,
                self.encoder.trainable_variables,
                self.decoder.trainable_variables,
            ]
            grads = tape.gradient(total_loss, train_vars)
            tv_list = []
            for (grad, var) in zip(grads, train_vars):
                for g, v in zip(grad, var):
                    tv_list.append((g, v))
            self.optimizer.apply_gradients(tv_list)

            # Report progress.
            self.compiled_metrics.update_state(loss_patch, loss_output)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, images):
            total_loss, loss_patch, loss_output = self.calculate_loss(images, test=True)

            # Update the trackers.
            self.compiled_metrics.update_state(loss_patch, loss_output)
            return {m.name: m.result() for m in self.metrics}

    train_augmentation_model = get_train_augmentation_model()
    test_augmentation_model = get_test_augmentation_model()
    patch_layer = Patches()
    patch_encoder = PatchEncoder()
    encoder = create_encoder()
    decoder = create_decoder()

    mae_model = MaskedAutoencoder(
        train_augmentation_model=train_augmentation_model,
        test_augmentation_model=test_augmentation_model,
        patch_layer=patch_layer,
        patch_encoder=patch_encoder,
        encoder=encoder,
        decoder=decoder,
    )

    # Taking a batch of test inputs to measure model's progress.
    test_images = next(iter(test_ds))

    class TrainMonitor(keras.callbacks.Callback):
        def __init__(self, epoch_interval=None):
            self.epoch_interval = epoch_interval

        def on_epoch_end(self, epoch, logs=None):
            if self.epoch_interval and epoch % self.epoch_interval == 0:
                test_augmented_images = self.model.test_augmentation_model(test_images)
                test_patches = self.model.patch_layer(test_augmented_images)
                (
                    test_unmasked_embeddings,
                    test_masked_embeddings,
                    test_unmasked_positions,
                    test_mask_indices,
                    test_unmask_indices,
                ) = self.model.patch_encoder(test_patches)
                test_encoder_outputs = self.model.encoder(test_unmasked_embeddings)
                test_encoder_outputs = test_encoder_outputs + test_unmasked_positions
                test_decoder_inputs = tf.concat(
                    [test_encoder_outputs, test_masked_embeddings], axis=1
                )
                test_decoder_outputs = self.model.decoder(test_decoder_inputs)

                # Show a maksed patch image.
                test_masked_patch, idx = self.model.patch_encoder.generate_masked_image(
                    test_patches, test_unmask_indices
                )
                print(f"\nIdx chosen: {idx}")
                original_image = test_augmented_images[idx]
                masked_image = self.model.patch_layer.reconstruct_from_patch(
                    test_masked_patch
                )
                reconstructed_image = test_decoder_outputs[idx]
                checks["monitor"] = (original_image.shape, masked_image.shape,
                                     reconstructed_image.shape)  # the plt panels

    class WarmUpCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(
            self, learning_rate_base, total_steps, warmup_learning_rate, warmup_steps
        ):
            super(WarmUpCosine, self).__init__()

            self.learning_rate_base = learning_rate_base
            self.total_steps = total_steps
            self.warmup_learning_rate = warmup_learning_rate
            self.warmup_steps = warmup_steps
            self.pi = tf.constant(np.pi)

        def __call__(self, step):
            if self.total_steps < self.warmup_steps:
                raise ValueError("Total_steps must be larger or equal to warmup_steps.")

            cos_annealed_lr = tf.cos(
                self.pi
                * (tf.cast(step, tf.float32) - self.warmup_steps)
                / float(self.total_steps - self.warmup_steps)
            )
            learning_rate = 0.5 * self.learning_rate_base * (1 + cos_annealed_lr)

            if self.warmup_steps > 0:
                if self.learning_rate_base < self.warmup_learning_rate:
                    raise ValueError(
                        "Learning_rate_base must be larger or equal to "
                        "warmup_learning_rate."
                    )
                slope = (
                    self.learning_rate_base - self.warmup_learning_rate
                ) / self.warmup_steps
                warmup_rate = slope * tf.cast(step, tf.float32) + self.warmup_learning_rate
                learning_rate = tf.where(
                    step < self.warmup_steps, warmup_rate, learning_rate
                )
            return tf.where(
                step > self.total_steps, 0.0, learning_rate, name="learning_rate"
            )

    total_steps = int((len(x_train) / BATCH_SIZE) * EPOCHS)
    warmup_epoch_percentage = 0.15
    warmup_steps = int(total_steps * warmup_epoch_percentage)
    scheduled_lrs = WarmUpCosine(
        learning_rate_base=LEARNING_RATE,
        total_steps=total_steps,
        warmup_learning_rate=0.0,
        warmup_steps=warmup_steps,
    )

    lrs = [scheduled_lrs(step) for step in range(total_steps)]  # plotted in the example
    checks["lrs"] = (lrs, total_steps, warmup_steps)

    # Assemble the callbacks.
    train_callbacks = [TrainMonitor(epoch_interval=5)]

    # tfa.optimizers.AdamW in the example
    optimizer = keras.optimizers.AdamW(learning_rate=scheduled_lrs, weight_decay=WEIGHT_DECAY)

    # Compile and pretrain the model.
    mae_model.compile(
        optimizer=optimizer, loss=keras.losses.MeanSquaredError(), metrics=["mae"]
    )
    history = mae_model.fit(
        train_ds, epochs=EPOCHS, validation_data=val_ds, callbacks=train_callbacks,
    )

    # Measure its performance.
    loss, mae = mae_model.evaluate(test_ds)
    print(f"Loss: {loss:.2f}")
    print(f"MAE: {mae:.2f}")
    checks["history"] = history

    # Extract the augmentation layers.
    train_augmentation_model = mae_model.train_augmentation_model
    test_augmentation_model = mae_model.test_augmentation_model

    # Extract the patchers.
    patch_layer = mae_model.patch_layer
    patch_encoder = mae_model.patch_encoder
    patch_encoder.downstream = True  # Swtich the downstream flag to True.

    # Extract the encoder.
    encoder = mae_model.encoder

    # Pack as a model.
    downstream_model = keras.Sequential(
        [
            layers.Input((IMAGE_SIZE, IMAGE_SIZE, 3)),
            patch_layer,
            patch_encoder,
            encoder,
            layers.BatchNormalization(),  # Refer to A.1 (Linear probing).
            layers.GlobalAveragePooling1D(),
            layers.Dense(NUM_CLASSES, activation="softmax"),
        ],
        name="linear_probe_model",
    )

    # Only the final classification layer of the `downstream_model` should be trainable.
    for layer in downstream_model.layers[:-1]:
        layer.trainable = False

    downstream_model.summary()

    def prepare_data(images, labels, is_train=True):
        if is_train:
            augmentation_model = train_augmentation_model
        else:
            augmentation_model = test_augmentation_model

        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if is_train:
            dataset = dataset.shuffle(BUFFER_SIZE)

        dataset = dataset.batch(BATCH_SIZE).map(
            lambda x, y: (augmentation_model(x), y), num_parallel_calls=AUTO
        )
        return dataset.prefetch(AUTO)

    train_ds = prepare_data(x_train, y_train)
    val_ds = prepare_data(x_train, y_train, is_train=False)
    test_ds = prepare_data(x_test, y_test, is_train=False)

    linear_probe_epochs = 1  # 50
    linear_prob_lr = 0.1
    warm_epoch_percentage = 0.1
    steps = int((len(x_train) // BATCH_SIZE) * linear_probe_epochs)

    warmup_steps = int(steps * warm_epoch_percentage)
    scheduled_lrs = WarmUpCosine(
        learning_rate_base=linear_prob_lr,
        total_steps=steps,
        warmup_learning_rate=0.0,
        warmup_steps=warmup_steps,
    )

    optimizer = keras.optimizers.SGD(learning_rate=scheduled_lrs, momentum=0.9)
    downstream_model.compile(
        optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    frozen = [w.numpy().copy() for w in encoder.weights]
    downstream_model.fit(train_ds, validation_data=val_ds, epochs=linear_probe_epochs)

    loss, accuracy = downstream_model.evaluate(test_ds)
    accuracy = round(accuracy * 100, 2)
    print(f"Accuracy on the test set: {accuracy}%.")
    checks["probe"] = (downstream_model, encoder, frozen, accuracy)

    # reconstruct_from_patch undoes the patching
    image, original = checks["reconstructed"]
    np.testing.assert_allclose(image, original, rtol=1e-6)

    # the patch encoder in numpy, from its own weights and the indices it drew
    first_encoder, patches, unmasked, masked, unmasked_pos, mask_idx, unmask_idx = \
        checks["encoded"]
    assert mask_idx.shape == (16, 12) and unmask_idx.shape == (16, 4)
    assert (np.sort(np.concatenate([mask_idx, unmask_idx], 1), 1) == np.arange(16)).all()
    kernel, bias = [w.numpy() for w in first_encoder.projection.weights]
    positions = first_encoder.position_embedding.embeddings.numpy()
    embedded = patches @ kernel + bias + positions
    rows = np.arange(16)[:, None]
    np.testing.assert_allclose(unmasked, embedded[rows, unmask_idx], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(unmasked_pos, positions[unmask_idx], rtol=1e-6)
    token = np.asarray(first_encoder.mask_token) @ kernel + bias
    np.testing.assert_allclose(masked, token + positions[mask_idx], rtol=1e-4, atol=1e-5)
    assert checks["monitor"] == ((24, 24, 3), (24, 24, 3), (24, 24, 3))

    lrs, total, warmup = checks["lrs"]
    for step, lr in enumerate(lrs):
        cosine = 0.5 * 5e-3 * (1 + np.cos(np.pi * (step - warmup) / (total - warmup)))
        expected = 5e-3 / warmup * step if warmup and step < warmup else cosine
        np.testing.assert_allclose(float(lr), expected, rtol=1e-5, atol=1e-8)

    assert set(checks["history"].history) == {"loss", "mae", "val_loss", "val_mae"}
    probe, encoder, frozen, accuracy = checks["probe"]
    for w, before in zip(encoder.weights, frozen):
        np.testing.assert_array_equal(w.numpy(), before)
    assert 0 <= accuracy <= 100
