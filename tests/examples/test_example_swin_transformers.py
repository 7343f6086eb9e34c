"""keras.io example "Image Classification with Swin Transformers"
(examples/vision/swin_transformers.py).

The example's code as written (its stored text is the TensorFlow-era one: `import tensorflow as
tf; from tensorflow import keras; from tensorflow.keras import layers; from
tensorflow.python.keras.layers.pooling import GlobalAveragePooling1D`, swapped for kgraph — the
last, a TensorFlow-internal path, is `from kgraph.keras.layers import GlobalAveragePooling1D`):
`window_partition`/`window_reverse` with `x.get_shape().as_list()`, `tf.reshape`,
`tf.transpose`; `DropPath` (`len(tf.shape(x))`, `tf.random.uniform(shape, dtype=x.dtype)`,
`tf.floor`, `tf.math.divide`); the `Mlp` Sequential; `WindowAttention` (`add_weight` with
`tf.initializers.Zeros()`, a non-trainable int `tf.Variable` relative-position index made in
`build` with numpy, `tf.gather` of the bias table by it, `x_qkv[0]` on a traced tensor, `@`,
`keras.activations.softmax(axis=-1)`, the shifted-window mask added); `SwinTransformer` (a
numpy mask built with `slice` objects in `build`, `tf.where(attn_mask != 0, -100.0, ...)`,
`tf.Variable(attn_mask, trainable=False)`, `tf.roll` by `[-shift, -shift]` on axes [1, 2]);
`PatchExtract` (`tf.image.extract_patches`), `PatchEmbedding`, `PatchMerging` (strided
slices `x[:, 0::2, 0::2, :]`, `tf.concat`); `to_categorical`, Adam with `clipvalue`, top-5
accuracy, `validation_split`, `evaluate` unpacked into three values.

Replaced: CIFAR-100 by random arrays (`example_datasets.cifar100_load_data`, 64 + 16 images).
Sizes cut: batch_size 32 -> 16, num_epochs 20 -> 1. The matplotlib figures are left out.

Checked: `window_reverse` undoes `window_partition`; the shifted block's attention mask against
numpy; `PatchMerging` against numpy; `WindowAttention` without a mask against numpy (q, k, v
heads, relative position bias, softmax); the parameter count layer by layer (162,996 trainable;
keras.io's text says "152K").
"""

import numpy as np

from example_datasets import cifar100_load_data


def test_swin_transformers():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers
    from kgraph.keras.layers import GlobalAveragePooling1D

    keras.utils.set_random_seed(0)

    num_classes = 100
    input_shape = (32, 32, 3)

    (x_train, y_train), (x_test, y_test) = cifar100_load_data(64, 16)
    x_train, x_test = x_train / 255.0, x_test / 255.0
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)
    print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")
    print(f"x_test shape: {x_test.shape} - y_test shape: {y_test.shape}")

    patch_size = (2, 2)  # 2-by-2 sized patches
    drop_rate = 0.01  # Dropout rate
    num_heads = 8  # Attention heads
    embed_dim = 64  # Embedded dimensions
    num_mlp = 256  # MLP nodes
    qkv_bias = True  # Convert embedded patches to query, key, and values with a learnable additive value
    window_size = 2  # Size of attention window
    shift_size = 1  # Size of shifting

    num_patch_x = input_shape[0] // patch_size[0]
    num_patch_y = input_shape[1] // patch_size[1]

    learning_rate = 1e-4
    clipvalue = 0.5
    batch_size = 16  # 32
    num_epochs = 1  # 20
    validation_split = 0.1

    def window_partition(x, window_size):
        _, H, W, C = x.get_shape().as_list()
        patch_num_H = H // window_size
        patch_num_W = W // window_size
        x = tf.reshape(x, shape=(-1, patch_num_H, window_size, patch_num_W, window_size, C))
        x = tf.transpose(x, (0, 1, 3, 2, 4, 5))
        windows = tf.reshape(x, shape=(-1, window_size, window_size, C))
        return windows

    def window_reverse(windows, window_size, H, W, C):
        patch_num_H = H // window_size
        patch_num_W = W // window_size
        x = tf.reshape(
            windows, shape=(-1, patch_num_H, patch_num_W, window_size, window_size, C)
        )
        x = tf.transpose(x, perm=(0, 1, 3, 2, 4, 5))
        x = tf.reshape(x, shape=(-1, H, W, C))
        return x

    class DropPath(layers.Layer):
        def __init__(self, drop_prob=None, **kwargs):
            super(DropPath, self).__init__(**kwargs)
            self.drop_prob = drop_prob

        def call(self, x):
            input_shape = tf.shape(x)
            batch_num = input_shape[0]
            rank = len(input_shape)
            shape = (batch_num,) + (1,) * (rank - 1)
            random_tensor = (1 - self.drop_prob) + tf.random.uniform(shape, dtype=x.dtype)
            path_mask = tf.floor(random_tensor)
            output = tf.math.divide(x, 1 - self.drop_prob) * path_mask
            return output

    class Mlp(layers.Layer):
        def __init__(self, filter_num, drop=0.0, **kwargs):
            super(Mlp, self).__init__(**kwargs)
            self.net = keras.Sequential(
                [
                    layers.Dense(filter_num[0]),
                    layers.Activation(keras.activations.gelu),
                    layers.Dropout(drop),
                    layers.Dense(filter_num[1]),
                    layers.Dropout(drop),
                ]
            )

        def call(self, x):
            return self.net(x)

    class WindowAttention(tf.keras.layers.Layer):
        def __init__(self, dim, window_size, num_heads, qkv_bias=True, drop_rate=0.0):
            super(WindowAttention, self).__init__()
            self.dim = dim
            self.window_size = window_size
            self.num_heads = num_heads
            self.scale = (dim // num_heads) ** -0.5
            self.qkv = layers.Dense(dim * 3, use_bias=qkv_bias)
            self.dropout = layers.Dropout(drop_rate)
            self.proj = layers.Dense(dim)

        def build(self, input_shape):
            num_window_elements = (2 * self.window_size[0] - 1) * (
                2 * self.window_size[1] - 1
            )
            self.relative_position_bias_table = self.add_weight(
                shape=(num_window_elements, self.num_heads),
                initializer=tf.initializers.Zeros(),
                trainable=True,
            )
            coords_h = np.arange(self.window_size[0])
            coords_w = np.arange(self.window_size[1])
            coords_matrix = np.meshgrid(coords_h, coords_w, indexing="ij")
            coords = np.stack(coords_matrix)
            coords_flatten = coords.reshape(2, -1)
            relative_coords = coords_flatten[:, :, None] - coords_flatten[:, None, :]
            relative_coords = relative_coords.transpose([1, 2, 0])
            relative_coords[:, :, 0] += self.window_size[0] - 1
            relative_coords[:, :, 1] += self.window_size[1] - 1
            relative_coords[:, :, 0] *= 2 * self.window_size[1] - 1
            relative_position_index = relative_coords.sum(-1)

            self.relative_position_index = tf.Variable(
                initial_value=tf.convert_to_tensor(relative_position_index), trainable=False
            )

        def call(self, x, mask=None):
            _, N, C = x.get_shape().as_list()
            head_dim = C // self.num_heads
            x_qkv = self.qkv(x)
            x_qkv = tf.reshape(x_qkv, shape=(-1, N, 3, self.num_heads, head_dim))
            x_qkv = tf.transpose(x_qkv, perm=(2, 0, 3, 1, 4))
            q, k, v = x_qkv[0], x_qkv[1], x_qkv[2]
            q = q * self.scale
            k = tf.transpose(k, perm=(0, 1, 3, 2))
            attn = q @ k

            num_window_elements = self.window_size[0] * self.window_size[1]
            relative_position_index_flat = tf.reshape(
                self.relative_position_index, shape=(-1,)
            )
            relative_position_bias = tf.gather(
                self.relative_position_bias_table, relative_position_index_flat
            )
            relative_position_bias = tf.reshape(
                relative_position_bias, shape=(num_window_elements, num_window_elements, -1)
            )
            relative_position_bias = tf.transpose(relative_position_bias, perm=(2, 0, 1))
            attn = attn + tf.expand_dims(relative_position_bias, axis=0)

            if mask is not None:
                nW = mask.get_shape()[0]
                mask_float = tf.cast(
                    tf.expand_dims(tf.expand_dims(mask, axis=1), axis=0), tf.float32
                )
                attn = tf.reshape(attn, shape=(-1, nW, self.num_heads, N, N)) + mask_float
                attn = tf.reshape(attn, shape=(-1, self.num_heads, N, N))
                attn = keras.activations.softmax(attn, axis=-1)
            else:
                attn = keras.activations.softmax(attn, axis=-1)
            attn = self.dropout(attn)

            x_qkv = attn @ v
            x_qkv = tf.transpose(x_qkv, perm=(0, 2, 1, 3))
            x_qkv = tf.reshape(x_qkv, shape=(-1, N, C))
            x_qkv = self.proj(x_qkv)
            x_qkv = self.dropout(x_qkv)
            return x_qkv

    class SwinTransformer(layers.Layer):
        def __init__(
            self,
            dim,
            num_patch,
            num_heads,
            window_size=7,
            shift_size=0,
            num_mlp=1024,
            qkv_bias=True,
            drop_rate=0.0,
        ):
            super(SwinTransformer, self).__init__()

            self.dim = dim  # number of input dimensions
            self.num_patch = num_patch  # number of embedded patches
            self.num_heads = num_heads  # number of attention heads
            self.window_size = window_size  # size of window
            self.shift_size = shift_size  # size of window shift
            self.num_mlp = num_mlp  # number of MLP nodes

            self.norm1 = layers.LayerNormalization(epsilon=1e-5)
            self.attn = WindowAttention(
                dim,
                window_size=(self.window_size, self.window_size),
                num_heads=num_heads,
                qkv_bias=qkv_bias,
                drop_rate=drop_rate,
            )
            self.drop_path = DropPath(drop_rate)
            self.norm2 = layers.LayerNormalization(epsilon=1e-5)
            self.mlp = Mlp([num_mlp, dim], drop=drop_rate)
            if min(self.num_patch) < self.window_size:
                self.shift_size = 0
                self.window_size = min(self.num_patch)

        def build(self, input_shape):
            if self.shift_size > 0:
                H, W = self.num_patch
                h_slices = (
                    slice(0, -self.window_size),
                    slice(-self.window_size, -self.shift_size),
                    slice(-self.shift_size, None),
                )
                w_slices = (
                    slice(0, -self.window_size),
                    slice(-self.window_size, -self.shift_size),
                    slice(-self.shift_size, None),
                )
                mask_array = np.zeros((1, H, W, 1))
                count = 0
                for h in h_slices:
                    for w in w_slices:
                        mask_array[:, h, w, :] = count
                        count += 1
                mask_array = tf.convert_to_tensor(mask_array)

                # mask array to windows
                mask_windows = window_partition(mask_array, self.window_size)
                mask_windows = tf.reshape(
                    mask_windows, shape=[-1, self.window_size * self.window_size]
                )
                attn_mask = tf.expand_dims(mask_windows, axis=1) - tf.expand_dims(
                    mask_windows, axis=2
                )
                attn_mask = tf.where(attn_mask != 0, -100.0, attn_mask)
                attn_mask = tf.where(attn_mask == 0, 0.0, attn_mask)
                self.attn_mask = tf.Variable(initial_value=attn_mask, trainable=False)
            else:
                self.attn_mask = None

        def call(self, x):
            H, W = self.num_patch
            B, L, C = x.get_shape().as_list()
            x_skip = x
            x = self.norm1(x)
            x = tf.reshape(x, shape=(-1, H, W, C))
            if self.shift_size > 0:
                shifted_x = tf.roll(
                    x, shift=[-self.shift_size, -self.shift_size], axis=[1, 2]
                )
            else:
                shifted_x = x

            x_windows = window_partition(shifted_x, self.window_size)
            x_windows = tf.reshape(
                x_windows, shape=(-1, self.window_size * self.window_size, C)
            )
            attn_windows = self.attn(x_windows, mask=self.attn_mask)

            attn_windows = tf.reshape(
                attn_windows, shape=(-1, self.window_size, self.window_size, C)
            )
            shifted_x = window_reverse(attn_windows, self.window_size, H, W, C)
            if self.shift_size > 0:
                x = tf.roll(
                    shifted_x, shift=[self.shift_size, self.shift_size], axis=[1, 2]
                )
            else:
                x = shifted_x

            x = tf.reshape(x, shape=(-1, H * W, C))
            x = self.drop_path(x)
            x = x_skip + x
            x_skip = x
            x = self.norm2(x)
            x = self.mlp(x)
            x = self.drop_path(x)
            x = x_skip + x
            return x

    class PatchExtract(layers.Layer):
        def __init__(self, patch_size):
            super(PatchExtract, self).__init__()
            self.patch_size_x = patch_size[0]
            self.patch_size_y = patch_size[0]

        def call(self, images):
            batch_size = tf.shape(images)[0]
            patches = tf.image.extract_patches(
                images=images,
                sizes=(1, self.patch_size_x, self.patch_size_y, 1),
                strides=(1, self.patch_size_x, self.patch_size_y, 1),
                rates=(1, 1, 1, 1),
                padding="VALID",
            )
            patch_dim = patches.shape[-1]
            patch_num = patches.shape[1]
            return tf.reshape(patches, (batch_size, patch_num * patch_num, patch_dim))

    class PatchEmbedding(layers.Layer):
        def __init__(self, num_patch, embed_dim):
            super(PatchEmbedding, self).__init__()
            self.num_patch = num_patch
            self.proj = layers.Dense(embed_dim)
            self.pos_embed = layers.Embedding(input_dim=num_patch, output_dim=embed_dim)

        def call(self, patch):
            pos = tf.range(start=0, limit=self.num_patch, delta=1)
            return self.proj(patch) + self.pos_embed(pos)

    class PatchMerging(tf.keras.layers.Layer):
        def __init__(self, num_patch, embed_dim):
            super(PatchMerging, self).__init__()
            self.num_patch = num_patch
            self.embed_dim = embed_dim
            self.linear_trans = layers.Dense(2 * embed_dim, use_bias=False)

        def call(self, x):
            H, W = self.num_patch
            _, _, C = x.get_shape().as_list()
            x = tf.reshape(x, shape=(-1, H, W, C))
            x0 = x[:, 0::2, 0::2, :]
            x1 = x[:, 1::2, 0::2, :]
            x2 = x[:, 0::2, 1::2, :]
            x3 = x[:, 1::2, 1::2, :]
            x = tf.concat((x0, x1, x2, x3), axis=-1)
            x = tf.reshape(x, shape=(-1, (H // 2) * (W // 2), 4 * C))
            return self.linear_trans(x)

    input = layers.Input(input_shape)
    x = PatchExtract(patch_size)(input)
    x = PatchEmbedding(num_patch_x * num_patch_y, embed_dim)(x)
    x = SwinTransformer(
        dim=embed_dim,
        num_patch=(num_patch_x, num_patch_y),
        num_heads=num_heads,
        window_size=window_size,
        shift_size=0,
        num_mlp=num_mlp,
        qkv_bias=qkv_bias,
        drop_rate=drop_rate,
    )(x)
    x = SwinTransformer(
        dim=embed_dim,
        num_patch=(num_patch_x, num_patch_y),
        num_heads=num_heads,
        window_size=window_size,
        shift_size=shift_size,
        num_mlp=num_mlp,
        qkv_bias=qkv_bias,
        drop_rate=drop_rate,
    )(x)
    x = PatchMerging((num_patch_x, num_patch_y), embed_dim=embed_dim)(x)
    x = GlobalAveragePooling1D()(x)
    output = layers.Dense(num_classes, activation="softmax")(x)

    model = keras.Model(input, output)
    model.compile(
        loss=keras.losses.categorical_crossentropy,
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate, clipvalue=clipvalue),
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

    loss, accuracy, top_5_accuracy = model.evaluate(x_test, y_test)
    print(f"Test loss: {round(loss, 2)}")
    print(f"Test accuracy: {round(accuracy * 100, 2)}%")
    print(f"Test top 5 accuracy: {round(top_5_accuracy * 100, 2)}%")

    assert set(history.history) == {"loss", "accuracy", "top-5-accuracy", "val_loss",
                                     "val_accuracy", "val_top-5-accuracy"}
    # patch embedding 17,216, two blocks of 50,056, merging 32,768, head 12,900; the
    # non-trainable int position indices (2 x 16) and the shifted block's mask (1,024)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert (trainable, model.count_params()) == (162_996, 164_052)
    rng = np.random.default_rng(7)

    # window_reverse undoes window_partition
    grid = rng.normal(size=(2, 4, 6, 3)).astype("float32")
    windows = window_partition(tf.convert_to_tensor(grid), 2)
    assert windows.shape == (12, 2, 2, 3)
    np.testing.assert_array_equal(window_reverse(windows, 2, 4, 6, 3), grid)

    # the shifted block's mask: -100 between positions of different regions of a window
    shifted = model.layers[4]
    regions = np.zeros((16, 16))
    for i, h in enumerate((slice(0, -2), slice(-2, -1), slice(-1, None))):
        for j, w in enumerate((slice(0, -2), slice(-2, -1), slice(-1, None))):
            regions[h, w] = 3 * i + j
    cells = regions.reshape(8, 2, 8, 2).transpose(0, 2, 1, 3).reshape(64, 4)
    expected = np.where(cells[:, None, :] != cells[:, :, None], -100.0, 0.0)
    np.testing.assert_array_equal(np.asarray(shifted.attn_mask), expected)

    # PatchMerging: the four interleaved sub-grids concatenated, then the Dense
    merging = model.layers[5]
    tokens = rng.normal(size=(2, 256, 64)).astype("float32")
    grid = tokens.reshape(2, 16, 16, 64)
    parts = [grid[:, 0::2, 0::2], grid[:, 1::2, 0::2], grid[:, 0::2, 1::2], grid[:, 1::2, 1::2]]
    joined = np.concatenate(parts, -1).reshape(2, 64, 256)
    np.testing.assert_allclose(merging(tokens), joined @ merging.linear_trans.kernel.numpy(),
                               rtol=1e-4, atol=1e-4)

    # WindowAttention without a mask, in numpy
    attention = shifted.attn
    x = rng.normal(size=(3, 4, 64)).astype("float32")
    w_qkv, b_qkv = [w.numpy() for w in attention.qkv.weights]
    qkv = (x @ w_qkv + b_qkv).reshape(3, 4, 3, 8, 8).transpose(2, 0, 3, 1, 4)
    table = attention.relative_position_bias_table.numpy()
    bias = table[np.asarray(attention.relative_position_index).reshape(-1)]
    scores = qkv[0] * 8 ** -0.5 @ qkv[1].transpose(0, 1, 3, 2)
    scores = scores + bias.reshape(4, 4, 8).transpose(2, 0, 1)[None]
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    scores /= scores.sum(-1, keepdims=True)
    heads = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(3, 4, 64)
    w_proj, b_proj = [w.numpy() for w in attention.proj.weights]
    np.testing.assert_allclose(attention(x), heads @ w_proj + b_proj, rtol=1e-4, atol=1e-4)
