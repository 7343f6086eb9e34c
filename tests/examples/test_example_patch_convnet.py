"""keras.io example "Augmenting convnets with aggregated attention"
(examples/vision/patch_convnet.py).

The example's code as written (its latest stored text, the TensorFlow-era one), with
`import tensorflow as tf; from tensorflow import keras; from tensorflow.keras import layers`
swapped for kgraph: layers that build their sublayers in `build()` (squeeze-excite, the
residual trunk), `AttentionPooling` with a `tf.Variable` class token repeated per example by
`tf.repeat(..., repeats=tf.shape(x)[0])`, `MultiHeadAttention(return_attention_scores=True)`
and `tf.squeeze`, the `PatchConvNet` model's own `train_step`/`test_step` (`compiled_loss`,
a `tf.GradientTape` over nested per-module variable lists, `compiled_metrics`), the
`WarmUpCosine` schedule and the attention-map inference (`tf.image.resize`,
`image[tf.newaxis, ...]`, `layers.Reshape` of the weights). Changes: TensorFlow Addons'
`tfa.optimizers.AdamW` is `keras.optimizers.AdamW` (as the Keras 3 port); CIFAR-10 is replaced
by random uint8 images of its shapes (64 train split 48/16, 16 test) and the downloaded JPEG
(`keras.utils.get_file` + `tf.io.read_file` + `tf.io.decode_image`) by a random uint8 array
of its shape; the matplotlib figures are left out (the callback's and `plot_attention`'s
tensors are computed and checked), and `TrainMonitor.on_epoch_end` is called once for epoch 4,
the one it acts on, since the test trains one epoch. Sizes cut for a 2-core machine:
BATCH_SIZE 128 -> 16, DIMENSIONS 256 -> 32, TRUNK_DEPTH 2 -> 1, EPOCHS 50 -> 1.
"""

import math

import numpy as np


def test_patch_convnet():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    # Set seed for reproducibiltiy
    SEED = 42
    keras.utils.set_random_seed(SEED)

    # DATA
    BATCH_SIZE = 16
    BUFFER_SIZE = BATCH_SIZE * 2
    AUTO = tf.data.AUTOTUNE
    INPUT_SHAPE = (32, 32, 3)
    NUM_CLASSES = 10  # for CIFAR 10

    # AUGMENTATION
    IMAGE_SIZE = 48  # We will resize input images to this size.

    # ARCHITECTURE
    DIMENSIONS = 32
    SE_RATIO = 8
    TRUNK_DEPTH = 1

    # OPTIMIZER
    LEARNING_RATE = 1e-3
    WEIGHT_DECAY = 1e-4

    # PRETRAINING
    EPOCHS = 1

    # keras.datasets.cifar10.load_data()
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    y_train = rng.integers(0, 10, (64, 1)).astype(np.uint8)
    x_test = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    y_test = rng.integers(0, 10, (16, 1)).astype(np.uint8)
    (x_train, y_train), (x_val, y_val) = (
        (x_train[:48], y_train[:48]),
        (x_train[48:], y_train[48:]),
    )
    print(f"Training samples: {len(x_train)}")
    print(f"Validation samples: {len(x_val)}")
    print(f"Testing samples: {len(x_test)}")

    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_ds = train_ds.shuffle(BUFFER_SIZE).batch(BATCH_SIZE).prefetch(AUTO)

    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val))
    val_ds = val_ds.batch(BATCH_SIZE).prefetch(AUTO)

    test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    test_ds = test_ds.batch(BATCH_SIZE).prefetch(AUTO)

    def get_preprocessing():
        model = keras.Sequential(
            [
                layers.Rescaling(1 / 255.0),
                layers.Resizing(IMAGE_SIZE, IMAGE_SIZE),
            ],
            name="preprocessing",
        )
        return model

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

    def build_convolutional_stem(dimensions):
        """Build the convolutional stem.

        Args:
            dimensions: The embedding dimension of the patches (d in paper).

        Returs:
            The convolutional stem as a keras seqeuntial
            model.
        """
        config = {
            "kernel_size": (3, 3),
            "strides": (2, 2),
            "activation": tf.nn.gelu,
            "padding": "same",
        }

        convolutional_stem = keras.Sequential(
            [
                layers.Conv2D(filters=dimensions // 2, **config),
                layers.Conv2D(filters=dimensions, **config),
            ],
            name="convolutional_stem",
        )

        return convolutional_stem

    class SqueezeExcite(layers.Layer):
        """Applies squeeze and excitation to input feature maps as seen in
        https://arxiv.org/abs/1709.01507.

        Args:
            ratio: The ratio with which the feature map needs to be reduced in
            the reduction phase.

        Inputs:
            Convolutional features.

        Outputs:
            Attention modified feature maps.
        """

        def __init__(self, ratio, **kwargs):
            super().__init__(**kwargs)
            self.ratio = ratio

        def get_config(self):
            config = super().get_config()
            config.update({"ratio": self.ratio})
            return config

        def build(self, input_shape):
            filters = input_shape[-1]
            self.squeeze = layers.GlobalAveragePooling2D(keepdims=True)
            self.reduction = layers.Dense(
                units=filters // self.ratio,
                activation="relu",
                use_bias=False,
            )
            self.excite = layers.Dense(units=filters, activation="sigmoid", use_bias=False)
            self.multiply = layers.Multiply()

        def call(self, x):
            shortcut = x
            x = self.squeeze(x)
            x = self.reduction(x)
            x = self.excite(x)
            x = self.multiply([shortcut, x])
            return x

    class Trunk(layers.Layer):
        """Convolutional residual trunk as in the https://arxiv.org/abs/2112.13692

        Args:
            depth: Number of trunk residual blocks
            dimensions: Dimnesion of the model (denoted by d in the paper)
            ratio: The Squeeze-Excitation ratio

        Inputs:
            Convolutional features extracted from the conv stem.

        Outputs:
            Flattened patches.
        """

        def __init__(self, depth, dimensions, ratio, **kwargs):
            super().__init__(**kwargs)
            self.ratio = ratio
            self.dimensions = dimensions
            self.depth = depth

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "ratio": self.ratio,
                    "dimensions": self.dimensions,
                    "depth": self.depth,
                }
            )
            return config

        def build(self, input_shape):
            config = {
                "filters": self.dimensions,
                "activation": tf.nn.gelu,
                "padding": "same",
            }

            trunk_block = [
                layers.LayerNormalization(epsilon=1e-6),
                layers.Conv2D(kernel_size=(1, 1), **config),
                layers.Conv2D(kernel_size=(3, 3), **config),
                SqueezeExcite(ratio=self.ratio),
                layers.Conv2D(kernel_size=(1, 1), filters=self.dimensions, padding="same"),
            ]

            self.trunk_blocks = [keras.Sequential(trunk_block) for _ in range(self.depth)]
            self.add = layers.Add()
            self.flatten_spatial = layers.Reshape((-1, self.dimensions))

        def call(self, x):
            # Remember the input.
            shortcut = x
            for trunk_block in self.trunk_blocks:
                output = trunk_block(x)
                shortcut = self.add([output, shortcut])
                x = shortcut
            # Flatten the patches.
            x = self.flatten_spatial(x)
            return x

    class AttentionPooling(layers.Layer):
        """Applies attention to the patches extracted form the
        trunk with the CLS token.

        Args:
            dimensions: The dimension of the whole architecture.
            num_classes: The number of classes in the dataset.

        Inputs:
            Flattened patches from the trunk.

        Outputs:
            The modifies CLS token.
        """

        def __init__(self, dimensions, num_classes, **kwargs):
            super().__init__(**kwargs)
            self.dimensions = dimensions
            self.num_classes = num_classes
            self.cls = tf.Variable(tf.zeros((1, 1, dimensions)))

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "dimensions": self.dimensions,
                    "num_classes": self.num_classes,
                    "cls": self.cls.numpy(),
                }
            )
            return config

        def build(self, input_shape):
            self.attention = layers.MultiHeadAttention(
                num_heads=1,
                key_dim=self.dimensions,
                dropout=0.2,
            )
            self.layer_norm1 = layers.LayerNormalization(epsilon=1e-6)
            self.layer_norm2 = layers.LayerNormalization(epsilon=1e-6)
            self.layer_norm3 = layers.LayerNormalization(epsilon=1e-6)
            self.mlp = keras.Sequential(
                [
                    layers.Dense(units=self.dimensions, activation=tf.nn.gelu),
                    layers.Dropout(0.2),
                    layers.Dense(units=self.dimensions, activation=tf.nn.gelu),
                ]
            )
            self.dense = layers.Dense(units=self.num_classes)
            self.flatten = layers.Flatten()

        def call(self, x):
            batch_size = tf.shape(x)[0]
            # Expand the class token batch number of times.
            class_token = tf.repeat(self.cls, repeats=batch_size, axis=0)
            # Concat the input with the trainable class token.
            x = tf.concat([class_token, x], axis=1)
            # Apply attention to x.
            x = self.layer_norm1(x)
            x, viz_weights = self.attention(
                query=x[:, 0:1], key=x, value=x, return_attention_scores=True
            )
            class_token = class_token + x
            class_token = self.layer_norm2(class_token)
            class_token = self.flatten(class_token)
            class_token = self.layer_norm3(class_token)
            class_token = class_token + self.mlp(class_token)
            # Build the logits
            logits = self.dense(class_token)
            return logits, tf.squeeze(viz_weights)[..., 1:]

    class PatchConvNet(keras.Model):
        def __init__(
            self,
            stem,
            trunk,
            attention_pooling,
            preprocessing_model,
            train_augmentation_model,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.stem = stem
            self.trunk = trunk
            self.attention_pooling = attention_pooling
            self.train_augmentation_model = train_augmentation_model
            self.preprocessing_model = preprocessing_model

        def get_config(self):
            config = super().get_config()
            config.update(
                {
                    "stem": self.stem,
                    "trunk": self.trunk,
                    "attention_pooling": self.attention_pooling,
                    "train_augmentation_model": self.train_augmentation_model,
                    "preprocessing_model": self.preprocessing_model,
                }
            )
            return config

        def _calculate_loss(self, inputs, test=False):
            images, labels = inputs
            # Augment the input images.
            if test:
                augmented_images = self.preprocessing_model(images)
            else:
                augmented_images = self.train_augmentation_model(images)
            # Pass through the stem.
            x = self.stem(augmented_images)
            # Pass through the trunk.
            x = self.trunk(x)
            # Pass through the attention pooling block.
            logits, _ = self.attention_pooling(x)
            # Compute the total loss.
            total_loss = self.compiled_loss(labels, logits)
            return total_loss, logits

        def train_step(self, inputs):
            with tf.GradientTape() as tape:
                total_loss, logits = self._calculate_loss(inputs)
            # Apply gradients.
            train_vars = [
                self.stem.trainable_variables,
                self.trunk.trainable_variables,
                self.attention_pooling.trainable_variables,
            ]
            grads = tape.gradient(total_loss, train_vars)
            trainable_variable_list = []
            for (grad, var) in zip(grads, train_vars):
                for g, v in zip(grad, var):
                    trainable_variable_list.append((g, v))
            self.optimizer.apply_gradients(trainable_variable_list)
            # Report progress.
            _, labels = inputs
            self.compiled_metrics.update_state(labels, logits)
            return {m.name: m.result() for m in self.metrics}

        def test_step(self, inputs):
            total_loss, logits = self._calculate_loss(inputs, test=True)
            # Report progress.
            _, labels = inputs
            self.compiled_metrics.update_state(labels, logits)
            return {m.name: m.result() for m in self.metrics}

        def call(self, images):
            # Augment the input images.
            augmented_images = self.preprocessing_model(images)
            # Pass through the stem.
            x = self.stem(augmented_images)
            # Pass through the trunk.
            x = self.trunk(x)
            # Pass through the attention pooling block.
            logits, viz_weights = self.attention_pooling(x)
            return logits, viz_weights

    # Taking a batch of test inputs to measure model's progress.
    test_images, test_labels = next(iter(test_ds))
    monitored = []

    class TrainMonitor(keras.callbacks.Callback):
        def __init__(self, epoch_interval=None):
            self.epoch_interval = epoch_interval

        def on_epoch_end(self, epoch, logs=None):
            if self.epoch_interval and epoch % self.epoch_interval == 4:
                test_augmented_images = self.model.preprocessing_model(test_images)
                # Pass through the stem.
                test_x = self.model.stem(test_augmented_images)
                # Pass through the trunk.
                test_x = self.model.trunk(test_x)
                # Pass through the attention pooling block.
                _, test_viz_weights = self.model.attention_pooling(test_x)
                # Reshape the vizualization weights
                num_patches = tf.shape(test_viz_weights)[-1]
                height = width = int(math.sqrt(num_patches))
                test_viz_weights = layers.Reshape((height, width))(test_viz_weights)
                # Take a random image and its attention weights.
                index = np.random.randint(low=0, high=tf.shape(test_augmented_images)[0])
                selected_image = test_augmented_images[index]
                selected_weight = test_viz_weights[index]
                # (the two matplotlib panels of the image and its attention map)
                monitored.append((selected_image, selected_weight))

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

    train_augmentation_model = get_train_augmentation_model()
    preprocessing_model = get_preprocessing()
    conv_stem = build_convolutional_stem(dimensions=DIMENSIONS)
    conv_trunk = Trunk(depth=TRUNK_DEPTH, dimensions=DIMENSIONS, ratio=SE_RATIO)
    attention_pooling = AttentionPooling(dimensions=DIMENSIONS, num_classes=NUM_CLASSES)

    patch_conv_net = PatchConvNet(
        stem=conv_stem,
        trunk=conv_trunk,
        attention_pooling=attention_pooling,
        train_augmentation_model=train_augmentation_model,
        preprocessing_model=preprocessing_model,
    )

    # Assemble the callbacks.
    train_callbacks = [TrainMonitor(epoch_interval=5)]
    # Get the optimizer.
    optimizer = keras.optimizers.AdamW(learning_rate=scheduled_lrs, weight_decay=WEIGHT_DECAY)
    # Compile and pretrain the model.
    patch_conv_net.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseTopKCategoricalAccuracy(5, name="top-5-accuracy"),
        ],
    )
    cls_before = attention_pooling.cls.numpy().copy()
    history = patch_conv_net.fit(
        train_ds,
        epochs=EPOCHS,
        validation_data=val_ds,
        callbacks=train_callbacks,
    )

    # Evaluate the model with the test dataset.
    loss, acc_top1, acc_top5 = patch_conv_net.evaluate(test_ds)
    print(f"Loss: {loss:0.2f}")
    print(f"Top 1 test accuracy: {acc_top1*100:0.2f}%")
    print(f"Top 5 test accuracy: {acc_top5*100:0.2f}%")

    assert np.isfinite(loss) and 0.0 <= acc_top1 <= acc_top5 <= 1.0
    assert np.isfinite(history.history["val_top-5-accuracy"]).all()
    # the class token is trained through tf.repeat
    assert not np.array_equal(attention_pooling.cls.numpy(), cls_before)
    train_callbacks[0].on_epoch_end(4)  # the epoch it plots at
    (selected_image, selected_weight), = monitored
    # 48x48 images, two stride-2 convolutions: 12x12 patches, one attention weight each
    assert tuple(selected_image.shape) == (48, 48, 3)
    assert tuple(selected_weight.shape) == (12, 12)

    def plot_attention(image):
        """Plots the attention map on top of the image.

        Args:
            image: A numpy image of arbitrary size.
        """
        # Resize the image to a (32, 32) dim.
        image = tf.image.resize(image, (32, 32))
        image = image[tf.newaxis, ...]
        test_augmented_images = patch_conv_net.preprocessing_model(image)
        # Pass through the stem.
        test_x = patch_conv_net.stem(test_augmented_images)
        # Pass through the trunk.
        test_x = patch_conv_net.trunk(test_x)
        # Pass through the attention pooling block.
        _, test_viz_weights = patch_conv_net.attention_pooling(test_x)
        test_viz_weights = test_viz_weights[tf.newaxis, ...]
        # Reshape the vizualization weights.
        num_patches = tf.shape(test_viz_weights)[-1]
        height = width = int(math.sqrt(num_patches))
        test_viz_weights = layers.Reshape((height, width))(test_viz_weights)
        selected_image = test_augmented_images[0]
        selected_weight = test_viz_weights[0]
        # (the two matplotlib panels)
        return selected_image, selected_weight

    # keras.utils.get_file(fname="image.jpg", origin=url), tf.io.read_file, tf.io.decode_image
    image = rng.integers(0, 256, (427, 640, 3), dtype=np.uint8)
    selected_image, selected_weight = plot_attention(image)
    assert tuple(selected_image.shape) == (48, 48, 3)
    weights = np.asarray(selected_weight)
    assert weights.shape == (12, 12) and np.isfinite(weights).all()
    # the class token's attention over the patches (its weight on itself left out)
    assert 0.0 < weights.sum() <= 1.0 + 1e-5
