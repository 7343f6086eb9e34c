"""keras.io example "Class Attention image transformers with LayerScale" (examples/vision/
cait.py), partly.

The stored source (`import tensorflow as tf; from tensorflow import keras`) with those imports
swapped for kgraph, as written: `LayerScale` (a `tf.Variable` made in `__init__`),
`StochasticDepth` (`tf.shape(x)[0]` and `len(tf.shape(x))` in a Python shape tuple,
`tf.random.uniform`, `tf.floor`), `ClassAttn` and `TalkingHeadAttn` (run-time `B, N, C` from
`tf.shape` into `tf.reshape`, `tf.transpose(perm=...)`, `tf.matmul(transpose_b=True)`,
`tf.nn.softmax`, dropout called with a positional `training`), the `mlp` helper
(`activation=tf.nn.gelu`), the two functional block builders (open token counts, two outputs),
the subclassed `CaiT` model (Conv2D patches reshaped by a Sequential, `tf.Variable` CLS token
and position embeddings, blocks in lists, `tf.tile` of the CLS token by the run-time batch,
dicts of attention scores returned next to the logits), `get_config`, the model instantiated
and called on `tf.ones`, `summary(expand_nested=True)`, the inference preprocessing
(`tf.image.resize(method="bicubic")`, `CenterCrop`, `Normalization(mean, variance)`,
`.numpy()`), `predict` returning (logits, dict, dict), the label lookup, and
`get_cls_attention_map` (numpy reshapes of the class-attention scores, a bicubic resize) for
the heads and the saliency map.

Not run as written: the pretrained CaiT is a TensorFlow SavedModel on Google Cloud Storage
(`keras.models.load_model("gs://tfhub-modules/...")`), so the inference part runs on the model
defined above with random parameters assigned (a zero-initialized CLS token would give uniform
class attention and a 0/0 saliency map); `ml_collections`
(not a dependency) is replaced by a minimal `ConfigDict` stand-in (attributes, `lock`,
`unlocked`, deepcopy); the image URL (`requests`) by a generated Pillow image and the
ImageNet label file (`get_file`) by a generated one in its cache. Sizes: 224x224 images and
16x16 patches -> 32x32 and 8x8 (so the example's `patch_size = 16` is 8), projection_dim
192 -> 16, 24 SA blocks -> 2, heads 4 -> 2. Checked: output shapes and attention-score keys,
class-attention rows summing to one, the LayerScale initial values, the saliency map in
[0, 1]. Plots left out.
"""
import copy
from contextlib import contextmanager

import numpy as np
import pytest


class ConfigDict:
    """The part of `ml_collections.ConfigDict` the example uses."""

    def __init__(self):
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_locked", False)

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        if self._locked and name not in self._values:
            raise AttributeError(f"locked ConfigDict: cannot add {name!r}")
        self._values[name] = value

    def __deepcopy__(self, memo):
        other = ConfigDict()
        object.__setattr__(other, "_values", copy.deepcopy(self._values, memo))
        object.__setattr__(other, "_locked", self._locked)
        return other

    def lock(self):
        object.__setattr__(self, "_locked", True)
        return self

    @contextmanager
    def unlocked(self):
        locked = self._locked
        object.__setattr__(self, "_locked", False)
        try:
            yield self
        finally:
            object.__setattr__(self, "_locked", locked)


def test_cait(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KGRAPH_HOME", str(tmp_path / "home"))
    import os
    import types
    from copy import deepcopy
    from typing import List

    from PIL import Image

    import kgraph as tf
    from kgraph import keras

    mlc = types.SimpleNamespace(ConfigDict=ConfigDict)

    class LayerScale(keras.layers.Layer):
        def __init__(self, config: mlc.ConfigDict, **kwargs):
            super().__init__(**kwargs)
            self.gamma = tf.Variable(config.init_values * tf.ones((config.projection_dim,)))

        def call(self, x):
            return x * self.gamma

    class StochasticDepth(keras.layers.Layer):
        def __init__(self, drop_prop: float, **kwargs):
            super().__init__(**kwargs)
            self.drop_prob = drop_prop

        def call(self, x, training=False):
            if training:
                keep_prob = 1 - self.drop_prob
                shape = (tf.shape(x)[0],) + (1,) * (len(tf.shape(x)) - 1)
                random_tensor = keep_prob + tf.random.uniform(shape, 0, 1)
                random_tensor = tf.floor(random_tensor)
                return (x / keep_prob) * random_tensor
            return x

    class ClassAttn(keras.layers.Layer):
        def __init__(self, config: mlc.ConfigDict, **kwargs):
            super().__init__(**kwargs)
            self.config = config
            head_dim = config.projection_dim // config.num_heads
            self.scale = head_dim**-0.5

            self.q = keras.layers.Dense(config.projection_dim)
            self.k = keras.layers.Dense(config.projection_dim)
            self.v = keras.layers.Dense(config.projection_dim)
            self.attn_drop = keras.layers.Dropout(config.dropout_rate)
            self.proj = keras.layers.Dense(config.projection_dim)
            self.proj_drop = keras.layers.Dropout(config.dropout_rate)

        def call(self, x, training):
            B, N, C = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]

            q = tf.expand_dims(self.q(x[:, 0]), axis=1)
            q = tf.reshape(
                q, (B, 1, self.config.num_heads, C // self.config.num_heads)
            )
            q = tf.transpose(q, perm=[0, 2, 1, 3])
            scale = tf.cast(self.scale, dtype=q.dtype)
            q = q * scale

            k = self.k(x)
            k = tf.reshape(
                k, (B, N, self.config.num_heads, C // self.config.num_heads)
            )
            k = tf.transpose(k, perm=[0, 2, 1, 3])

            v = self.v(x)
            v = tf.reshape(v, (B, N, self.config.num_heads, C // self.config.num_heads))
            v = tf.transpose(v, perm=[0, 2, 1, 3])

            attn = tf.matmul(q, k, transpose_b=True)
            attn = tf.nn.softmax(attn, axis=-1)
            attn = self.attn_drop(attn, training)

            x_cls = tf.matmul(attn, v)
            x_cls = tf.transpose(x_cls, perm=[0, 2, 1, 3])
            x_cls = tf.reshape(x_cls, (B, 1, C))
            x_cls = self.proj(x_cls)
            x_cls = self.proj_drop(x_cls, training)

            return x_cls, attn

    class TalkingHeadAttn(keras.layers.Layer):
        def __init__(self, config: mlc.ConfigDict, **kwargs):
            super().__init__(**kwargs)
            self.config = config

            self.num_heads = self.config.num_heads

            head_dim = self.config.projection_dim // self.num_heads

            self.scale = head_dim**-0.5

            self.qkv = keras.layers.Dense(config.projection_dim * 3)
            self.attn_drop = keras.layers.Dropout(config.dropout_rate)

            self.proj = keras.layers.Dense(config.projection_dim)

            self.proj_l = keras.layers.Dense(config.num_heads)
            self.proj_w = keras.layers.Dense(config.num_heads)

            self.proj_drop = keras.layers.Dropout(config.dropout_rate)

        def call(self, x, training):
            B, N, C = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]

            qkv = self.qkv(x)

            qkv = tf.reshape(qkv, (B, N, 3, self.num_heads, C // self.num_heads))

            qkv = tf.transpose(qkv, perm=[2, 0, 3, 1, 4])
            scale = tf.cast(self.scale, dtype=qkv.dtype)
            q, k, v = qkv[0] * scale, qkv[1], qkv[2]

            attn = tf.matmul(q, tf.transpose(k, perm=[0, 1, 3, 2]))

            attn = self.proj_l(tf.transpose(attn, perm=[0, 2, 3, 1]))

            attn = tf.transpose(attn, perm=[0, 3, 1, 2])
            attn = tf.nn.softmax(attn, axis=-1)

            attn = self.proj_w(tf.transpose(attn, perm=[0, 2, 3, 1]))
            attn = tf.transpose(attn, perm=[0, 3, 1, 2])
            attn = self.attn_drop(attn, training)

            x = tf.matmul(attn, v)
            x = tf.transpose(x, perm=[0, 2, 1, 3])
            x = tf.reshape(x, (B, N, C))

            x = self.proj(x)
            x = self.proj_drop(x, training)

            return x, attn

    def mlp(x: int, dropout_rate: float, hidden_units: List[int]):
        for (idx, units) in enumerate(hidden_units):
            x = keras.layers.Dense(
                units,
                activation=tf.nn.gelu if idx == 0 else None,
                bias_initializer=keras.initializers.RandomNormal(stddev=1e-6),
            )(x)
            x = keras.layers.Dropout(dropout_rate)(x)
        return x

    def LayerScaleBlockClassAttn(config: mlc.ConfigDict, drop_prob: float, name: str):
        x = keras.Input((None, config.projection_dim))
        x_cls = keras.Input((None, config.projection_dim))
        inputs = keras.layers.Concatenate(axis=1)([x_cls, x])

        x1 = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps)(inputs)
        attn_output, attn_scores = ClassAttn(config)(x1)
        attn_output = LayerScale(config)(attn_output) if config.init_values else attn_output
        attn_output = StochasticDepth(drop_prob)(attn_output) if drop_prob else attn_output
        x2 = keras.layers.Add()([x_cls, attn_output])

        x3 = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps)(x2)
        x4 = mlp(x3, hidden_units=config.mlp_units, dropout_rate=config.dropout_rate)
        x4 = LayerScale(config)(x4) if config.init_values else x4
        x4 = StochasticDepth(drop_prob)(x4) if drop_prob else x4
        outputs = keras.layers.Add()([x2, x4])

        return keras.Model([x, x_cls], [outputs, attn_scores], name=name)

    def LayerScaleBlock(config: mlc.ConfigDict, drop_prob: float, name: str):
        encoded_patches = keras.Input((None, config.projection_dim))

        x1 = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps)(encoded_patches)
        attn_output, attn_scores = TalkingHeadAttn(config)(x1)
        attn_output = LayerScale(config)(attn_output) if config.init_values else attn_output
        attn_output = StochasticDepth(drop_prob)(attn_output) if drop_prob else attn_output
        x2 = keras.layers.Add()([encoded_patches, attn_output])

        x3 = keras.layers.LayerNormalization(epsilon=config.layer_norm_eps)(x2)
        x4 = mlp(x3, hidden_units=config.mlp_units, dropout_rate=config.dropout_rate)
        x4 = LayerScale(config)(x4) if config.init_values else x4
        x4 = StochasticDepth(drop_prob)(x4) if drop_prob else x4
        outputs = keras.layers.Add()([x2, x4])

        return keras.Model(encoded_patches, [outputs, attn_scores], name=name)

    class CaiT(keras.Model):
        def __init__(self, config: mlc.ConfigDict, **kwargs):
            super().__init__(**kwargs)
            self.config = config

            self.projection = keras.Sequential(
                [
                    keras.layers.Conv2D(
                        filters=config.projection_dim,
                        kernel_size=(config.patch_size, config.patch_size),
                        strides=(config.patch_size, config.patch_size),
                        padding="VALID",
                        name="conv_projection",
                        kernel_initializer="lecun_normal",
                    ),
                    keras.layers.Reshape(
                        target_shape=(-1, config.projection_dim),
                        name="flatten_projection",
                    ),
                ],
                name="projection",
            )

            self.cls_token = tf.Variable(tf.zeros((1, 1, config.projection_dim)))
            self.pos_embed = tf.Variable(
                tf.zeros((1, config.num_patches, config.projection_dim))
            )

            self.pos_drop = keras.layers.Dropout(
                config.dropout_rate, name="projection_dropout"
            )

            dpr = [config.drop_path_rate for _ in range(config.sa_ffn_layers)]

            self.blocks = [
                LayerScaleBlock(config, name=f"sa_ffn_block_{i}", drop_prob=dpr[i])
                for i in range(config.sa_ffn_layers)
            ]

            ca_config = deepcopy(config)
            with ca_config.unlocked():
                ca_config.dropout_rate = 0.0
            self.blocks_token_only = [
                LayerScaleBlockClassAttn(
                    config=ca_config, name=f"ca_ffn_block_{i}", drop_prob=0.0
                )
                for i in range(config.ca_ffn_layers)
            ]

            self.norm = keras.layers.LayerNormalization(
                epsilon=config.layer_norm_eps, name="head_norm"
            )

            if not config.pre_logits:
                self.head = keras.layers.Dense(
                    config.num_classes, name="classification_head"
                )

        def call(self, x: tf.Tensor):
            x = self.projection(x)
            x = x + self.pos_embed
            x = self.pos_drop(x)

            sa_ffn_attn = {}
            for blk in self.blocks:
                x, attn_scores = blk(x)
                sa_ffn_attn[f"{blk.name}_att"] = attn_scores

            ca_ffn_attn = {}
            cls_tokens = tf.tile(self.cls_token, (tf.shape(x)[0], 1, 1))
            for blk in self.blocks_token_only:
                cls_tokens, attn_scores = blk([x, cls_tokens])
                ca_ffn_attn[f"{blk.name}_att"] = attn_scores

            x = tf.concat([cls_tokens, x], axis=1)
            x = self.norm(x)

            if self.config.global_pool:
                x = (
                    tf.reduce_mean(x[:, 1:], axis=1)
                    if self.config.global_pool == "avg"
                    else x[:, 0]
                )
            return (
                (x, sa_ffn_attn, ca_ffn_attn)
                if self.config.pre_logits
                else (self.head(x), sa_ffn_attn, ca_ffn_attn)
            )

    def get_config(
        model_name: str = "cait_xxs24_224",
        image_size: int = 32,  # 224
        patch_size: int = 8,  # 16
        projection_dim: int = 16,  # 192
        sa_ffn_layers: int = 2,  # 24
        ca_ffn_layers: int = 2,
        num_heads: int = 2,  # 4
        mlp_ratio=4,
        layer_norm_eps=1e-6,
        init_values: float = 1e-5,
        dropout_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        pre_logits: bool = False,
    ) -> mlc.ConfigDict:
        config = mlc.ConfigDict()
        config.model_name = model_name

        config.image_size = image_size
        config.patch_size = patch_size
        config.num_patches = (config.image_size // config.patch_size) ** 2
        config.num_classes = 1000

        config.initializer_range = 0.02
        config.layer_norm_eps = layer_norm_eps
        config.projection_dim = projection_dim
        config.num_heads = num_heads
        config.sa_ffn_layers = sa_ffn_layers
        config.ca_ffn_layers = ca_ffn_layers
        config.mlp_units = [
            config.projection_dim * mlp_ratio,
            config.projection_dim,
        ]
        config.dropout_rate = dropout_rate
        config.init_values = init_values
        config.drop_path_rate = drop_path_rate
        config.global_pool = "token"
        config.pre_logits = pre_logits

        return config.lock()

    config = get_config(model_name="cait_xxs24_224")
    cait_xxs24_224 = CaiT(config)

    dummy_inputs = tf.ones((2, 32, 32, 3))  # (2, 224, 224, 3)
    logits, sa_scores, ca_scores = cait_xxs24_224(dummy_inputs)
    assert tuple(logits.shape) == (2, 1000)
    assert sorted(sa_scores) == ["sa_ffn_block_0_att", "sa_ffn_block_1_att"]
    assert tuple(ca_scores["ca_ffn_block_0_att"].shape) == (2, 2, 1, 17)
    print(cait_xxs24_224.summary(expand_nested=True))
    np.testing.assert_allclose(cait_xxs24_224.blocks[0].layers[3].gamma.numpy(), 1e-5)

    del cait_xxs24_224

    # keras.models.load_model("gs://tfhub-modules/sayakpaul/cait_xxs24_224/1/uncompressed"):
    # a SavedModel on Google Cloud Storage; the model defined above stands in for it
    pretrained_model = CaiT(get_config())
    pretrained_model(tf.ones((1, 32, 32, 3)))  # built, then "loaded" with random parameters
    rng = np.random.default_rng(1)  # (zero CLS/position tokens would give uniform attention)
    for weight in pretrained_model.weights:
        weight.assign(rng.normal(0.0, 0.3, weight.shape).astype("float32"))

    input_resolution = 32  # 224

    crop_layer = keras.layers.CenterCrop(input_resolution, input_resolution)
    norm_layer = keras.layers.Normalization(
        mean=[0.485 * 255, 0.456 * 255, 0.406 * 255],
        variance=[(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2],
    )

    def preprocess_image(image, size=input_resolution):
        image = np.array(image)
        image_resized = tf.expand_dims(image, 0)
        resize_size = int((256 / input_resolution) * size)
        image_resized = tf.image.resize(
            image_resized, (resize_size, resize_size), method="bicubic"
        )
        image_resized = crop_layer(image_resized)
        return norm_layer(image_resized).numpy()

    def load_image_from_url(url):
        # requests.get(url) + Image.open(BytesIO(response.content)): a generated image
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
        preprocessed_image = preprocess_image(image)
        return image, preprocessed_image

    os.makedirs(tmp_path / "home" / "datasets")
    with open(tmp_path / "home" / "datasets" / "ilsvrc2012_wordnet_lemmas.txt", "w") as f:
        f.write("\n".join(f"class_{i}" for i in range(1000)) + "\n")
    imagenet_labels = (
        "https://storage.googleapis.com/bit_models/ilsvrc2012_wordnet_lemmas.txt"
    )
    label_path = tf.keras.utils.get_file(origin=imagenet_labels)

    with open(label_path, "r") as f:
        lines = f.readlines()
    imagenet_int_to_str = [line.rstrip() for line in lines]

    img_url = "https://i.imgur.com/ErgfLTn.jpg"
    image, preprocessed_image = load_image_from_url(img_url)
    assert preprocessed_image.shape == (1, 32, 32, 3)

    logits, sa_atn_score_dict, ca_atn_score_dict = pretrained_model.predict(
        preprocessed_image
    )
    predicted_label = imagenet_int_to_str[int(np.argmax(logits))]
    print(predicted_label)
    assert predicted_label.startswith("class_")

    print(ca_atn_score_dict["ca_ffn_block_0_att"].shape)
    scores = np.asarray(ca_atn_score_dict["ca_ffn_block_0_att"])
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)

    patch_size = 8  # 16

    def get_cls_attention_map(
        attn_score_dict=ca_atn_score_dict,
        block_key="ca_ffn_block_0_att",
        return_saliency=False,
    ):
        w_featmap = preprocessed_image.shape[2] // patch_size
        h_featmap = preprocessed_image.shape[1] // patch_size

        attention_scores = attn_score_dict[block_key]
        nh = attention_scores.shape[1]

        attentions = attention_scores[0, :, 0, 1:].reshape(nh, -1)
        print(attentions.shape)

        attentions = attentions.reshape(nh, w_featmap, h_featmap)

        if not return_saliency:
            attentions = attentions.transpose((1, 2, 0))
            print(attentions.shape)

        else:
            attentions = np.mean(attentions, axis=0)
            attentions = (attentions - attentions.min()) / (
                attentions.max() - attentions.min()
            )
            attentions = np.expand_dims(attentions, -1)
            print(attentions.shape)

        attentions = tf.image.resize(
            attentions,
            size=(h_featmap * patch_size, w_featmap * patch_size),
            method="bicubic",
        )
        print(attentions.shape)

        return attentions

    attentions_ca_block_0 = get_cls_attention_map()
    assert tuple(attentions_ca_block_0.shape) == (32, 32, 2)
    attentions_ca_block_1 = get_cls_attention_map(block_key="ca_ffn_block_1_att")
    assert tuple(attentions_ca_block_1.shape) == (32, 32, 2)

    saliency_attention = get_cls_attention_map(return_saliency=True)

    image = np.array(image)
    image_resized = tf.expand_dims(image, 0)
    resize_size = int((256 / 224) * input_resolution)
    image_resized = tf.image.resize(
        image_resized, (resize_size, resize_size), method="bicubic"
    )
    image_resized = crop_layer(image_resized)
    assert image_resized.numpy().squeeze().astype("int32").shape == (32, 32, 3)
    saliency = saliency_attention.numpy().squeeze()
    assert saliency.shape == (32, 32)
    assert -0.2 <= saliency.min() and saliency.max() <= 1.2  # bicubic overshoots a little
