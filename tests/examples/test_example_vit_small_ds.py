"""keras.io example "Train a Vision Transformer on small datasets"
(examples/vision/vit_small_ds.py).

The Keras 3 code as written (last modified 2022/01/10, ported to `keras.ops`) with `import
keras; from keras import ops; from keras import layers; import tensorflow as tf` swapped for
kgraph: `Normalization.adapt` inside the augmentation Sequential (with RandomRotation and
RandomZoom), the `ShiftedPatchTokenization` layer (`tf.image.crop_to_bounding_box`,
`pad_to_bounding_box` and `extract_patches`, returning a `(tokens, patches)` tuple), called
eagerly on a resized image and its patches reshaped as the example's plots do, a
`PatchEncoder` whose positions are an `ops.arange` made in `__init__`, the
`MultiHeadAttentionLSA` subclass (a `tf.Variable` temperature and an override of
`_compute_attention` written against Keras 3.0's signature, using `_dot_product_equation`,
`_masked_softmax`, `_dropout_layer`, `_combine_equation`) with the int8 diagonal
`attention_mask` of batch 1, and both experiments (vanilla ViT, then SPT + LSA) with AdamW
and top-5 accuracy. The `WarmUpCosine` schedule is built and, as in the example, never used
(its `ops.where(..., name=...)` would fail on Keras 3 too: `keras.ops.where` takes no name).

Keras 3.15 itself fails on this example once the LSA layer runs on data (its
`MultiHeadAttention.call` passes `return_attention_scores` as a sixth argument to
`_compute_attention`, which the override does not take); kgraph passes it only to overrides
that take it, so code written for Keras 3.0 runs.

CIFAR-100 is replaced by random arrays of its shapes (`example_datasets.cifar100_load_data`,
20 train, 8 test); sizes cut: BATCH_SIZE 256 -> 16, EPOCHS 50 -> 1, IMAGE_SIZE 72 -> 36 (36
patches of 6x6), TRANSFORMER_LAYERS 8 -> 2, MLP_HEAD_UNITS [2048, 1024] -> [32, 16]. The
`os.environ["KERAS_BACKEND"]` line and the matplotlib figures are left out (the reshaped
patches the figures show are computed and checked against numpy shifts).
"""

import numpy as np
from example_datasets import cifar100_load_data


def _shift(image, down, right):
    """numpy: the image moved by (down, right) pixels (negative: up/left), zeros filling."""
    h, w, _ = image.shape
    out = np.zeros_like(image)
    out[max(down, 0):h + min(down, 0), max(right, 0):w + min(right, 0)] = \
        image[max(-down, 0):h - max(down, 0), max(-right, 0):w - max(right, 0)]
    return out


def test_vit_small_ds():
    import math
    import numpy as np
    from kgraph import keras
    from kgraph.keras import ops
    from kgraph.keras import layers
    import kgraph as tf

    # Setting seed for reproducibiltiy
    SEED = 42
    keras.utils.set_random_seed(SEED)

    NUM_CLASSES = 100
    INPUT_SHAPE = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar100_load_data(n_train=20, n_test=8)

    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    # DATA
    BUFFER_SIZE = 512
    BATCH_SIZE = 16

    # AUGMENTATION
    IMAGE_SIZE = 36
    PATCH_SIZE = 6
    NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2

    # OPTIMIZER
    LEARNING_RATE = 0.001
    WEIGHT_DECAY = 0.0001

    # TRAINING
    EPOCHS = 1

    # ARCHITECTURE
    LAYER_NORM_EPS = 1e-6
    TRANSFORMER_LAYERS = 2
    PROJECTION_DIM = 64
    NUM_HEADS = 4
    TRANSFORMER_UNITS = [
        PROJECTION_DIM * 2,
        PROJECTION_DIM,
    ]
    MLP_HEAD_UNITS = [32, 16]

    data_augmentation = keras.Sequential(
        [
            layers.Normalization(),
            layers.Resizing(IMAGE_SIZE, IMAGE_SIZE),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(factor=0.02),
            layers.RandomZoom(height_factor=0.2, width_factor=0.2),
        ],
        name="data_augmentation",
    )
    # Compute the mean and the variance of the training data for normalization.
    data_augmentation.layers[0].adapt(x_train)

    class ShiftedPatchTokenization(layers.Layer):
        def __init__(
            self,
            image_size=IMAGE_SIZE,
            patch_size=PATCH_SIZE,
            num_patches=NUM_PATCHES,
            projection_dim=PROJECTION_DIM,
            vanilla=False,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.vanilla = vanilla  # Flag to swtich to vanilla patch extractor
            self.image_size = image_size
            self.patch_size = patch_size
            self.half_patch = patch_size // 2
            self.flatten_patches = layers.Reshape((num_patches, -1))
            self.projection = layers.Dense(units=projection_dim)
            self.layer_norm = layers.LayerNormalization(epsilon=LAYER_NORM_EPS)

        def crop_shift_pad(self, images, mode):
            # Build the diagonally shifted images
            if mode == "left-up":
                crop_height = self.half_patch
                crop_width = self.half_patch
                shift_height = 0
                shift_width = 0
            elif mode == "left-down":
                crop_height = 0
                crop_width = self.half_patch
                shift_height = self.half_patch
                shift_width = 0
            elif mode == "right-up":
                crop_height = self.half_patch
                crop_width = 0
                shift_height = 0
                shift_width = self.half_patch
            else:
                crop_height = 0
                crop_width = 0
                shift_height = self.half_patch
                shift_width = self.half_patch

            # Crop the shifted images and pad them
            crop = tf.image.crop_to_bounding_box(
                images,
                offset_height=crop_height,
                offset_width=crop_width,
                target_height=self.image_size - self.half_patch,
                target_width=self.image_size - self.half_patch,
            )
            shift_pad = tf.image.pad_to_bounding_box(
                crop,
                offset_height=shift_height,
                offset_width=shift_width,
                target_height=self.image_size,
                target_width=self.image_size,
            )
            return shift_pad

        def call(self, images):
            if not self.vanilla:
                # Concat the shifted images with the original image
                images = ops.concatenate(
                    [
                        images,
                        self.crop_shift_pad(images, mode="left-up"),
                        self.crop_shift_pad(images, mode="left-down"),
                        self.crop_shift_pad(images, mode="right-up"),
                        self.crop_shift_pad(images, mode="right-down"),
                    ],
                    axis=-1,
                )
            # Patchify the images and flatten it
            patches = tf.image.extract_patches(
                images=images,
                sizes=[1, self.patch_size, self.patch_size, 1],
                strides=[1, self.patch_size, self.patch_size, 1],
                rates=[1, 1, 1, 1],
                padding="VALID",
            )
            flat_patches = self.flatten_patches(patches)
            if not self.vanilla:
                # Layer normalize the flat patches and linearly project it
                tokens = self.layer_norm(flat_patches)
                tokens = self.projection(tokens)
            else:
                # Linearly project the flat patches
                tokens = self.projection(flat_patches)
            return (tokens, patches)

    # Get a random image from the training dataset
    # and resize the image
    image = x_train[np.random.choice(range(x_train.shape[0]))]
    resized_image = ops.cast(
        ops.image.resize(ops.convert_to_tensor([image]), size=(IMAGE_SIZE, IMAGE_SIZE)),
        dtype="float32",
    )

    # Vanilla patch maker: This takes an image and divides into
    # patches as in the original ViT paper
    (token, patch) = ShiftedPatchTokenization(vanilla=True)(resized_image / 255.0)
    (token, patch) = (token[0], patch[0])
    n = patch.shape[0]
    count = 1
    vanilla_patches = []  # what the example's plt.imshow shows, one patch a subplot
    for row in range(n):
        for col in range(n):
            count = count + 1
            image = ops.reshape(patch[row][col], (PATCH_SIZE, PATCH_SIZE, 3))
            vanilla_patches.append(np.asarray(image))
    assert token.shape == (NUM_PATCHES, PROJECTION_DIM) and n == IMAGE_SIZE // PATCH_SIZE
    picture = np.asarray(resized_image[0]) / np.float32(255.0)
    np.testing.assert_allclose(vanilla_patches[n + 2], picture[6:12, 12:18], rtol=1e-6)

    # Shifted Patch Tokenization: This layer takes the image, shifts it
    # diagonally and then extracts patches from the concatinated images
    (token, patch) = ShiftedPatchTokenization(vanilla=False)(resized_image / 255.0)
    (token, patch) = (token[0], patch[0])
    n = patch.shape[0]
    shifted_images = ["ORIGINAL", "LEFT-UP", "LEFT-DOWN", "RIGHT-UP", "RIGHT-DOWN"]
    shown = {}
    for index, name in enumerate(shifted_images):
        print(name)
        count = 1
        tiles = []
        for row in range(n):
            for col in range(n):
                count = count + 1
                image = ops.reshape(patch[row][col], (PATCH_SIZE, PATCH_SIZE, 5 * 3))
                tiles.append(np.asarray(image[..., 3 * index : 3 * index + 3]))
        # the example's n x n subplot grid, put back together
        shown[name] = np.asarray(tiles).reshape(n, n, PATCH_SIZE, PATCH_SIZE, 3).transpose(
            0, 2, 1, 3, 4).reshape(IMAGE_SIZE, IMAGE_SIZE, 3)
    assert token.shape == (NUM_PATCHES, PROJECTION_DIM)
    half = PATCH_SIZE // 2
    for name, (down, right) in {"ORIGINAL": (0, 0), "LEFT-UP": (-half, -half),
                                "LEFT-DOWN": (half, -half), "RIGHT-UP": (-half, half),
                                "RIGHT-DOWN": (half, half)}.items():
        np.testing.assert_allclose(shown[name], _shift(picture, down, right), rtol=1e-6,
                                   err_msg=name)

    class PatchEncoder(layers.Layer):
        def __init__(
            self, num_patches=NUM_PATCHES, projection_dim=PROJECTION_DIM, **kwargs
        ):
            super().__init__(**kwargs)
            self.num_patches = num_patches
            self.position_embedding = layers.Embedding(
                input_dim=num_patches, output_dim=projection_dim
            )
            self.positions = ops.arange(start=0, stop=self.num_patches, step=1)

        def call(self, encoded_patches):
            encoded_positions = self.position_embedding(self.positions)
            encoded_patches = encoded_patches + encoded_positions
            return encoded_patches

    class MultiHeadAttentionLSA(layers.MultiHeadAttention):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            # The trainable temperature term. The initial value is
            # the square root of the key dimension.
            self.tau = tf.Variable(math.sqrt(float(self._key_dim)), trainable=True)

        def _compute_attention(self, query, key, value, attention_mask=None, training=None):
            query = ops.multiply(query, 1.0 / self.tau)
            attention_scores = ops.einsum(self._dot_product_equation, key, query)
            attention_scores = self._masked_softmax(attention_scores, attention_mask)
            attention_scores_dropout = self._dropout_layer(
                attention_scores, training=training
            )
            attention_output = ops.einsum(
                self._combine_equation, attention_scores_dropout, value
            )
            return attention_output, attention_scores

    def mlp(x, hidden_units, dropout_rate):
        for units in hidden_units:
            x = layers.Dense(units, activation="gelu")(x)
            x = layers.Dropout(dropout_rate)(x)
        return x

    # Build the diagonal attention mask
    diag_attn_mask = 1 - ops.eye(NUM_PATCHES)
    diag_attn_mask = ops.cast([diag_attn_mask], dtype="int8")

    # Locality self-attention masks each token's own score: numpy check on one layer
    lsa = MultiHeadAttentionLSA(num_heads=2, key_dim=8)
    tokens = np.random.default_rng(0).normal(size=(2, NUM_PATCHES, 16)).astype("float32")
    output, scores = lsa(tokens, tokens, attention_mask=diag_attn_mask,
                         return_attention_scores=True)
    scores = np.asarray(scores)
    assert output.shape == (2, NUM_PATCHES, 16) and scores.shape == (2, 2, NUM_PATCHES,
                                                                     NUM_PATCHES)
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.diagonal(scores, axis1=-2, axis2=-1) == 0.0)
    q = np.einsum("btd,dnh->btnh", tokens, lsa.query_dense.kernel.numpy()) + \
        lsa.query_dense.bias.numpy()
    k = np.einsum("btd,dnh->btnh", tokens, lsa.key_dense.kernel.numpy()) + \
        lsa.key_dense.bias.numpy()
    logits = np.einsum("bsnh,btnh->bnts", k, q / np.sqrt(8.0))
    logits = np.where(np.eye(NUM_PATCHES, dtype=bool), -np.inf, logits)
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(scores, expected / expected.sum(-1, keepdims=True),
                               rtol=1e-4, atol=1e-6)

    def create_vit_classifier(vanilla=False):
        inputs = layers.Input(shape=INPUT_SHAPE)
        # Augment data.
        augmented = data_augmentation(inputs)
        # Create patches.
        (tokens, _) = ShiftedPatchTokenization(vanilla=vanilla)(augmented)
        # Encode patches.
        encoded_patches = PatchEncoder()(tokens)

        # Create multiple layers of the Transformer block.
        for _ in range(TRANSFORMER_LAYERS):
            # Layer normalization 1.
            x1 = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
            # Create a multi-head attention layer.
            if not vanilla:
                attention_output = MultiHeadAttentionLSA(
                    num_heads=NUM_HEADS, key_dim=PROJECTION_DIM, dropout=0.1
                )(x1, x1, attention_mask=diag_attn_mask)
            else:
                attention_output = layers.MultiHeadAttention(
                    num_heads=NUM_HEADS, key_dim=PROJECTION_DIM, dropout=0.1
                )(x1, x1)
            # Skip connection 1.
            x2 = layers.Add()([attention_output, encoded_patches])
            # Layer normalization 2.
            x3 = layers.LayerNormalization(epsilon=1e-6)(x2)
            # MLP.
            x3 = mlp(x3, hidden_units=TRANSFORMER_UNITS, dropout_rate=0.1)
            # Skip connection 2.
            encoded_patches = layers.Add()([x3, x2])

        # Create a [batch_size, projection_dim] tensor.
        representation = layers.LayerNormalization(epsilon=1e-6)(encoded_patches)
        representation = layers.Flatten()(representation)
        representation = layers.Dropout(0.5)(representation)
        # Add MLP.
        features = mlp(representation, hidden_units=MLP_HEAD_UNITS, dropout_rate=0.5)
        # Classify outputs.
        logits = layers.Dense(NUM_CLASSES)(features)
        # Create the Keras model.
        model = keras.Model(inputs=inputs, outputs=logits)
        return model

    # Some code is taken from:
    # https://www.kaggle.com/ashusma/training-rfcx-tensorflow-tpu-effnet-b2.
    class WarmUpCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(
            self, learning_rate_base, total_steps, warmup_learning_rate, warmup_steps
        ):
            super().__init__()

            self.learning_rate_base = learning_rate_base
            self.total_steps = total_steps
            self.warmup_learning_rate = warmup_learning_rate
            self.warmup_steps = warmup_steps
            self.pi = tf.constant(np.pi)

        def __call__(self, step):
            if self.total_steps < self.warmup_steps:
                raise ValueError("Total_steps must be larger or equal to warmup_steps.")

            cos_annealed_lr = ops.cos(
                self.pi
                * (ops.cast(step, dtype="float32") - self.warmup_steps)
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
                warmup_rate = (
                    slope * ops.cast(step, dtype="float32") + self.warmup_learning_rate
                )
                learning_rate = ops.where(
                    step < self.warmup_steps, warmup_rate, learning_rate
                )
            return ops.where(
                step > self.total_steps, 0.0, learning_rate, name="learning_rate"
            )

    results = []

    def run_experiment(model):
        total_steps = int((len(x_train) / BATCH_SIZE) * EPOCHS)
        warmup_epoch_percentage = 0.10
        warmup_steps = int(total_steps * warmup_epoch_percentage)
        scheduled_lrs = WarmUpCosine(
            learning_rate_base=LEARNING_RATE,
            total_steps=total_steps,
            warmup_learning_rate=0.0,
            warmup_steps=warmup_steps,
        )

        optimizer = keras.optimizers.AdamW(
            learning_rate=LEARNING_RATE, weight_decay=WEIGHT_DECAY
        )

        model.compile(
            optimizer=optimizer,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
                keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
            ],
        )

        history = model.fit(
            x=x_train,
            y=y_train,
            batch_size=BATCH_SIZE,
            epochs=EPOCHS,
            validation_split=0.1,
        )
        _, accuracy, top_5_accuracy = model.evaluate(x_test, y_test, batch_size=BATCH_SIZE)
        print(f"Test accuracy: {round(accuracy * 100, 2)}%")
        print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")
        results.append((accuracy, top_5_accuracy))

        return history

    # Run experiments with the vanilla ViT
    vit = create_vit_classifier(vanilla=True)
    history = run_experiment(vit)

    # Run experiments with the Shifted Patch Tokenization and
    # Locality Self Attention modified ViT
    vit_sl = create_vit_classifier(vanilla=False)
    tau_before = [layer.tau.numpy() for layer in vit_sl.layers
                  if isinstance(layer, MultiHeadAttentionLSA)]
    history = run_experiment(vit_sl)

    assert set(history.history) == {"loss", "accuracy", "top-5-accuracy", "val_loss",
                                    "val_accuracy", "val_top-5-accuracy"}
    for accuracy, top_5_accuracy in results:
        assert 0.0 <= accuracy <= top_5_accuracy <= 1.0
    # as real Keras 3 counts these models (the LSA temperatures as keras.Variables): SPT adds
    # a LayerNormalization over 5 x 108 patch values and a wider projection
    assert vit.count_params() == 251_803
    assert vit_sl.count_params() == 251_803 + 2 * 540 + (540 - 108) * 64 + 2
    # the temperature is trained (tf.Variable is a tracked, trainable variable)
    tau_after = [layer.tau.numpy() for layer in vit_sl.layers
                 if isinstance(layer, MultiHeadAttentionLSA)]
    assert len(tau_before) == 2 and not np.allclose(tau_before, tau_after)
