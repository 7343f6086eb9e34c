"""keras.io example "Focal Modulation Networks" (examples/vision/focal_modulation_network.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras; from tensorflow.keras import layers; from
tensorflow.keras.optimizers.experimental import AdamW`, swapped for kgraph — the last is
`keras.optimizers.AdamW`, as in the other rows): augmentation Sequentials mapped per image over
tf.data, `PatchEmbed` returning `(x, tf.shape(x)[1], tf.shape(x)[2], tf.shape(x)[3])`, the
`MLP` Sequential, the `FocalModulationLayer` (`tf.split` into query/context/gates kept on the
layer as `self.gates`, depthwise `Conv2D(groups=dim)` after `ZeroPadding2D`,
`GlobalAveragePooling2D(keepdims=True)`, `self.modulator`), `DropPath`,
`FocalModulationBlock`/`BasicLayer` called with the run-time height/width/channels as
arguments, the subclassed `FocalModulationNetwork` (`np.linspace` drop-path rates,
downsampling `PatchEmbed`s), the `TrainMonitor` callback reading a block's `gates`/`modulator`
after `self.model(test_images)` and upsampling them bilinearly, `WarmUpCosine`, AdamW.

Replaced: CIFAR-10 by random arrays (`example_datasets.cifar10_load_data`, 48 + 16). Sizes
cut: BATCH_SIZE 1024 -> 16, EPOCHS 50 -> 1, `FocalModulationNetwork()`'s embed_dim 256 -> 32
and depths [2, 3, 2] -> [1, 2, 1] (passed as arguments). `display_grid`'s matplotlib figure is
left out (the images it shows are checked).

Checked: the gates and modulator read after an eager call are eager arrays of the mid stage's
shape; the drop-path rates; the history keys. Marked slow (~3-5 s).
"""

from random import randint

import numpy as np
import pytest

from example_datasets import cifar10_load_data


@pytest.mark.slow
def test_focal_modulation_network():
    from typing import List, Optional, Tuple

    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras.optimizers import AdamW  # tf.keras.optimizers.experimental

    # Set seed for reproducibility.
    tf.keras.utils.set_random_seed(42)

    # DATA
    TRAIN_SLICE = 32  # 40000
    BUFFER_SIZE = 2048
    BATCH_SIZE = 16  # 1024
    AUTO = tf.data.AUTOTUNE
    INPUT_SHAPE = (32, 32, 3)
    IMAGE_SIZE = 48
    NUM_CLASSES = 10

    # OPTIMIZER
    LEARNING_RATE = 1e-4
    WEIGHT_DECAY = 1e-4

    # TRAINING
    EPOCHS = 1  # 50

    (x_train, y_train), (x_test, y_test) = cifar10_load_data(48, 16)
    (x_train, y_train), (x_val, y_val) = (
        (x_train[:TRAIN_SLICE], y_train[:TRAIN_SLICE]),
        (x_train[TRAIN_SLICE:], y_train[TRAIN_SLICE:]),
    )

    # Build the `train` augmentation pipeline.
    train_aug = keras.Sequential(
        [
            layers.Rescaling(1 / 255.0),
            layers.Resizing(INPUT_SHAPE[0] + 20, INPUT_SHAPE[0] + 20),
            layers.RandomCrop(IMAGE_SIZE, IMAGE_SIZE),
            layers.RandomFlip("horizontal"),
        ],
        name="train_data_augmentation",
    )

    # Build the `val` and `test` data pipeline.
    test_aug = keras.Sequential(
        [
            layers.Rescaling(1 / 255.0),
            layers.Resizing(IMAGE_SIZE, IMAGE_SIZE),
        ],
        name="test_data_augmentation",
    )

    def train_map(image: tf.Tensor, label: tf.Tensor):
        image = train_aug(image)
        return image, label

    def test_map(image: tf.Tensor, label: tf.Tensor):
        image = test_aug(image)
        return image, label

    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    train_ds = (
        train_ds.map(train_map, num_parallel_calls=AUTO)
        .shuffle(BUFFER_SIZE)
        .batch(BATCH_SIZE)
        .prefetch(AUTO)
    )

    val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val))
    val_ds = val_ds.map(test_map, num_parallel_calls=AUTO).batch(BATCH_SIZE).prefetch(AUTO)

    test_ds = tf.data.Dataset.from_tensor_slices((x_test, y_test))
    test_ds = (
        test_ds.map(test_map, num_parallel_calls=AUTO).batch(BATCH_SIZE).prefetch(AUTO)
    )

    class PatchEmbed(layers.Layer):
        """Image patch embedding layer, and also acts as the down-sampling layer."""

        def __init__(
            self,
            image_size: Tuple[int] = (224, 224),
            patch_size: Tuple[int] = (4, 4),
            embed_dim: int = 96,
            norm_layer: tf.keras.layers.Layer = None,
            **kwargs,
        ):
            super().__init__(**kwargs)
            patch_resolution = [
                image_size[0] // patch_size[0],
                image_size[1] // patch_size[1],
            ]
            self.image_size = image_size
            self.patch_size = patch_size
            self.embed_dim = embed_dim
            self.patch_resolution = patch_resolution
            self.num_patches = patch_resolution[0] * patch_resolution[1]
            self.proj = layers.Conv2D(
                filters=embed_dim, kernel_size=patch_size, strides=patch_size
            )
            self.flatten = layers.Reshape(target_shape=(-1, embed_dim))
            self.norm = norm_layer(epsilon=1e-7) if norm_layer is not None else None

        def call(self, x: tf.Tensor) -> Tuple[tf.Tensor, int, int, int]:
            # Project the inputs.
            x = self.proj(x)

            # Obtain the shape from the projected tensor.
            height = tf.shape(x)[1]
            width = tf.shape(x)[2]
            channels = tf.shape(x)[3]

            # B, H, W, C -> B, H*W, C
            x = self.flatten(x)
            if self.norm is not None:
                x = self.norm(x)

            return x, height, width, channels

    def MLP(
        in_features: int,
        hidden_features: Optional[int] = None,
        out_features: Optional[int] = None,
        act_layer=keras.activations.gelu,
        mlp_drop_rate: float = 0.0,
    ):
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        act_layer = act_layer
        mlp_drop_rate = mlp_drop_rate

        return keras.Sequential(
            [
                layers.Dense(units=hidden_features, activation=act_layer),
                layers.Dense(units=out_features),
                layers.Dropout(rate=mlp_drop_rate),
            ]
        )

    class FocalModulationLayer(layers.Layer):
        """The Focal Modulation module includes query projection and context aggregation."""

        def __init__(
            self,
            dim: int,
            focal_window: int,
            focal_level: int,
            focal_factor: int = 2,
            proj_drop_rate: float = 0.0,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.dim = dim
            self.focal_window = focal_window
            self.focal_level = focal_level
            self.focal_factor = focal_factor
            self.proj_drop_rate = proj_drop_rate

            # Project the input feature into a new feature space using a
            # linear layer. Note the `units` used. We will be projecting the input
            # feature all at once and split the projection into query, context,
            # and gates.
            self.initial_proj = layers.Dense(
                units=(2 * self.dim) + (self.focal_level + 1),
                use_bias=True,
            )
            self.focal_layers = list()
            self.kernel_sizes = list()
            for idx in range(self.focal_level):
                kernel_size = (self.focal_factor * idx) + self.focal_window
                depth_gelu_block = keras.Sequential(
                    [
                        layers.ZeroPadding2D(padding=(kernel_size // 2, kernel_size // 2)),
                        layers.Conv2D(
                            filters=self.dim,
                            kernel_size=kernel_size,
                            activation=keras.activations.gelu,
                            groups=self.dim,
                            use_bias=False,
                        ),
                    ]
                )
                self.focal_layers.append(depth_gelu_block)
                self.kernel_sizes.append(kernel_size)
            self.activation = keras.activations.gelu
            self.gap = layers.GlobalAveragePooling2D(keepdims=True)
            self.modulator_proj = layers.Conv2D(
                filters=self.dim,
                kernel_size=(1, 1),
                use_bias=True,
            )
            self.proj = layers.Dense(units=self.dim)
            self.proj_drop = layers.Dropout(self.proj_drop_rate)

        def call(self, x: tf.Tensor, training: Optional[bool] = None) -> tf.Tensor:
            # Apply the linear projecion to the input feature map
            x_proj = self.initial_proj(x)

            # Split the projected x into query, context and gates
            query, context, self.gates = tf.split(
                value=x_proj,
                num_or_size_splits=[self.dim, self.dim, self.focal_level + 1],
                axis=-1,
            )

            # Context aggregation
            context = self.focal_layers[0](context)
            context_all = context * self.gates[..., 0:1]
            for idx in range(1, self.focal_level):
                context = self.focal_layers[idx](context)
                context_all += context * self.gates[..., idx : idx + 1]

            # Build the global context
            context_global = self.activation(self.gap(context))
            context_all += context_global * self.gates[..., self.focal_level :]

            # Focal Modulation
            self.modulator = self.modulator_proj(context_all)
            x_output = query * self.modulator

            # Project the output and apply dropout
            x_output = self.proj(x_output)
            x_output = self.proj_drop(x_output)

            return x_output

    class DropPath(layers.Layer):
        """Drop Path also known as the Stochastic Depth layer."""

        def __init__(self, drop_path_prob: float, **kwargs):
            super().__init__(**kwargs)
            self.drop_path_prob = drop_path_prob

        def call(self, x: tf.Tensor, training: bool = False):
            if training:
                keep_prob = 1 - self.drop_path_prob
                shape = (tf.shape(x)[0],) + (1,) * (len(tf.shape(x)) - 1)
                random_tensor = keep_prob + tf.random.uniform(shape, 0, 1)
                random_tensor = tf.floor(random_tensor)
                return (x / keep_prob) * random_tensor
            return x

    class FocalModulationBlock(layers.Layer):
        """A block of FFN and Focal Modulation Layer."""

        def __init__(
            self,
            dim: int,
            input_resolution: Tuple[int],
            mlp_ratio: float = 4.0,
            drop: float = 0.0,
            drop_path: float = 0.0,
            act_layer=keras.activations.gelu,
            norm_layer=layers.LayerNormalization,
            focal_level: int = 1,
            focal_window: int = 3,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.dim = dim
            self.input_resolution = input_resolution
            self.mlp_ratio = mlp_ratio
            self.focal_level = focal_level
            self.focal_window = focal_window
            self.norm1 = norm_layer(epsilon=1e-5)
            self.modulation = FocalModulationLayer(
                dim=self.dim,
                focal_window=self.focal_window,
                focal_level=self.focal_level,
                proj_drop_rate=drop,
            )
            self.drop_path = (
                DropPath(drop_path_prob=drop_path)
                if drop_path > 0.0
                else layers.Activation("linear")
            )
            mlp_hidden_dim = int(self.dim * self.mlp_ratio)
            self.mlp = MLP(
                in_features=self.dim,
                hidden_features=mlp_hidden_dim,
                act_layer=act_layer,
                mlp_drop_rate=drop,
            )

        def call(self, x: tf.Tensor, height: int, width: int, channels: int) -> tf.Tensor:
            shortcut = x

            # Focal Modulation
            x = tf.reshape(x, shape=(-1, height, width, channels))
            x = self.modulation(x)
            x = tf.reshape(x, shape=(-1, height * width, channels))

            # FFN
            x = shortcut + self.drop_path(x)
            x = x + self.drop_path(self.mlp(self.norm1(x)))
            return x

    class BasicLayer(layers.Layer):
        """A collection of Focal Modulation Blocks."""

        def __init__(
            self,
            dim: int,
            out_dim: int,
            input_resolution: Tuple[int],
            depth: int,
            mlp_ratio: float = 4.0,
            drop: float = 0.0,
            drop_path: float = 0.0,
            norm_layer=layers.LayerNormalization,
            downsample=None,
            focal_level: int = 1,
            focal_window: int = 1,
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.dim = dim
            self.input_resolution = input_resolution
            self.depth = depth
            self.blocks = [
                FocalModulationBlock(
                    dim=dim,
                    input_resolution=input_resolution,
                    mlp_ratio=mlp_ratio,
                    drop=drop,
                    drop_path=drop_path[i] if isinstance(drop_path, list) else drop_path,
                    norm_layer=norm_layer,
                    focal_level=focal_level,
                    focal_window=focal_window,
                )
                for i in range(self.depth)
            ]

            # Downsample layer at the end of the layer
            if downsample is not None:
                self.downsample = downsample(
                    image_size=input_resolution,
                    patch_size=(2, 2),
                    embed_dim=out_dim,
                )
            else:
                self.downsample = None

        def call(
            self, x: tf.Tensor, height: int, width: int, channels: int
        ) -> Tuple[tf.Tensor, int, int, int]:
            # Apply Focal Modulation Blocks
            for block in self.blocks:
                x = block(x, height, width, channels)

            # Except the last Basic Layer, all the layers have
            # downsample at the end of it.
            if self.downsample is not None:
                x = tf.reshape(x, shape=(-1, height, width, channels))
                x, height_o, width_o, channels_o = self.downsample(x)
            else:
                height_o, width_o, channels_o = height, width, channels

            return x, height_o, width_o, channels_o

    class FocalModulationNetwork(keras.Model):
        """The Focal Modulation Network."""

        def __init__(
            self,
            image_size: Tuple[int] = (48, 48),
            patch_size: Tuple[int] = (4, 4),
            num_classes: int = 10,
            embed_dim: int = 256,
            depths: List[int] = [2, 3, 2],
            mlp_ratio: float = 4.0,
            drop_rate: float = 0.1,
            drop_path_rate: float = 0.1,
            norm_layer=layers.LayerNormalization,
            focal_levels=[2, 2, 2],
            focal_windows=[3, 3, 3],
            **kwargs,
        ):
            super().__init__(**kwargs)
            self.num_layers = len(depths)

            # Embedding dimension doubles every stage of the model.
            embed_dim = [embed_dim * (2**i) for i in range(self.num_layers)]

            self.num_classes = num_classes
            self.embed_dim = embed_dim
            self.num_features = embed_dim[-1]
            self.mlp_ratio = mlp_ratio

            self.patch_embed = PatchEmbed(
                image_size=image_size,
                patch_size=patch_size,
                embed_dim=embed_dim[0],
                norm_layer=norm_layer,
            )

            num_patches = self.patch_embed.num_patches
            patches_resolution = self.patch_embed.patch_resolution
            self.patches_resolution = patches_resolution
            self.pos_drop = layers.Dropout(drop_rate)

            # Calculate stochastic depth probabilities.
            dpr = [x for x in np.linspace(start=0, stop=drop_path_rate, num=sum(depths))]

            self.basic_layers = list()
            for i_layer in range(self.num_layers):
                layer = BasicLayer(
                    dim=embed_dim[i_layer],
                    out_dim=embed_dim[i_layer + 1]
                    if (i_layer < self.num_layers - 1)
                    else None,
                    input_resolution=(
                        patches_resolution[0] // (2**i_layer),
                        patches_resolution[1] // (2**i_layer),
                    ),
                    depth=depths[i_layer],
                    mlp_ratio=self.mlp_ratio,
                    drop=drop_rate,
                    drop_path=dpr[sum(depths[:i_layer]) : sum(depths[: i_layer + 1])],
                    norm_layer=norm_layer,
                    downsample=PatchEmbed if (i_layer < self.num_layers - 1) else None,
                    focal_level=focal_levels[i_layer],
                    focal_window=focal_windows[i_layer],
                )
                self.basic_layers.append(layer)

            self.norm = norm_layer(epsilon=1e-7)
            self.avgpool = layers.GlobalAveragePooling1D()
            self.flatten = layers.Flatten()
            self.head = layers.Dense(self.num_classes, activation="softmax")

        def forward_features(self, x: tf.Tensor) -> tf.Tensor:
            # Patch Embed the input images.
            x, height, width, channels = self.patch_embed(x)
            x = self.pos_drop(x)

            for idx, layer in enumerate(self.basic_layers):
                x, height, width, channels = layer(x, height, width, channels)

            x = self.norm(x)
            x = self.avgpool(x)
            x = self.flatten(x)

            return x

        def call(self, x: tf.Tensor) -> tf.Tensor:
            x = self.forward_features(x)
            x = self.head(x)
            return x

    shown = []

    def display_grid(
        test_images: tf.Tensor,
        gates: tf.Tensor,
        modulator: tf.Tensor,
    ):
        # Radomly sample an image from the batch (the matplotlib figure is left out).
        index = randint(0, BATCH_SIZE - 1)
        orig_image = test_images[index]
        gate_image = gates[index]
        modulator_image = modulator[index]
        shown.append((orig_image, gate_image[..., 0], gate_image[..., 1], gate_image[..., 2],
                      tf.math.reduce_mean(modulator_image, axis=-1)))

    # Taking a batch of test inputs to measure model's progress.
    test_images, test_labels = next(iter(test_ds))
    upsampler = tf.keras.layers.UpSampling2D(
        size=(4, 4),
        interpolation="bilinear",
    )

    class TrainMonitor(keras.callbacks.Callback):
        def __init__(self, epoch_interval=None):
            self.epoch_interval = epoch_interval

        def on_epoch_end(self, epoch, logs=None):
            if self.epoch_interval and epoch % self.epoch_interval == 0:
                _ = self.model(test_images)

                # Take the mid layer for visualization
                gates = self.model.basic_layers[1].blocks[-1].modulation.gates
                gates = upsampler(gates)
                modulator = self.model.basic_layers[1].blocks[-1].modulation.modulator
                modulator = upsampler(modulator)

                # Display the grid of gates and modulator.
                display_grid(test_images=test_images, gates=gates, modulator=modulator)

    callbacks = [
        TrainMonitor(epoch_interval=10),
    ]

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

    # FocalModulationNetwork() in the example (embed_dim 256, depths [2, 3, 2])
    focal_mod_net = FocalModulationNetwork(embed_dim=32, depths=[1, 2, 1])
    optimizer = AdamW(learning_rate=scheduled_lrs, weight_decay=WEIGHT_DECAY)

    # Compile and train the model.
    focal_mod_net.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = focal_mod_net.fit(
        train_ds,
        epochs=EPOCHS,
        validation_data=val_ds,
        callbacks=callbacks,
    )

    test_images, test_labels = next(iter(test_ds))
    _ = focal_mod_net(test_images)

    # Take the mid layer for visualization
    gates = focal_mod_net.basic_layers[1].blocks[-1].modulation.gates
    gates = upsampler(gates)
    modulator = focal_mod_net.basic_layers[1].blocks[-1].modulation.modulator
    modulator = upsampler(modulator)

    # Plot the test images with the gates and modulator overlayed.
    for row in range(5):
        display_grid(
            test_images=test_images,
            gates=gates,
            modulator=modulator,
        )

    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # the mid stage: 48 / 4 / 2 = 6x6 maps of 64 channels, 3 gates; upsampled by 4
    assert np.asarray(gates).shape == (16, 24, 24, 3)
    assert np.asarray(modulator).shape == (16, 24, 24, 64)
    assert len(shown) == 6 and all(np.asarray(s[4]).shape == (24, 24) for s in shown)
    np.testing.assert_allclose(
        focal_mod_net.basic_layers[1].blocks[1].drop_path.drop_path_prob, 0.1 * 2 / 3)
