"""keras.io example "Neural Style Transfer with AdaIN" (examples/generative/adain.py).

The Keras 3 source (TensorFlow backend) with the imports swapped for kgraph: the
`StyleContentPyDataset` (a `keras.utils.PyDataset` yielding `((style, content),)` with
`load_img`/`img_to_array`, `on_epoch_end` reshuffling), the path listing and splits, the VGG19
encoder cut at `block4_conv1` and the four-output loss network (both frozen, wrapped in new
functional models), `get_mean_std` with `keras.ops.moments(axes=[1, 2], keepdims=True)`, `ada_in`,
the UpSampling2D decoder on `InputLayer((None, None, 512))`, the `NeuralStyleTransfer` model
(a dict output, a four-argument `compute_loss` override feeding three `Mean` trackers, a
`metrics` property), `fit(steps_per_epoch=..., validation_steps=...)` with the `TrainMonitor`
callback and the inference loop (their matplotlib figures left out). Changes: the Kaggle/VOC
folders are generated JPEG folders (the example's own fallback writes CIFAR-10 images to
/tmp, a download), `weights="imagenet"` is `None` (a download); sizes: IMAGE_SIZE 224 -> 32,
BATCH_SIZE 64 -> 4, 12 images of each kind. Checked: `ada_in` against numpy, only the decoder
training, the tracked losses adding up. Marked slow (~6 s: two VGG19 networks in the step).
"""

import os

import numpy as np
import pytest


def _write_images(folder, prefix, n, seed):
    from PIL import Image

    os.makedirs(folder)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(
            os.path.join(folder, f"{prefix}_{i:04d}.jpg"))


@pytest.mark.slow
def test_adain(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    from kgraph import keras
    from kgraph.keras import layers

    keras.utils.set_random_seed(0)
    IMAGE_SIZE = (32, 32)
    BATCH_SIZE = 4
    EPOCHS = 1

    class StyleContentPyDataset(keras.utils.PyDataset):
        def __init__(
            self, style_paths, content_paths, batch_size, image_size, shuffle=True
        ):
            super().__init__()
            self.style_paths = style_paths
            self.content_paths = content_paths
            self.batch_size = batch_size
            self.image_size = image_size
            self.shuffle = shuffle

            self.num_style = len(self.style_paths)
            self.num_content = len(self.content_paths)
            self.num_samples = max(self.num_style, self.num_content)

            self.indices = np.arange(self.num_samples)
            if self.shuffle:
                np.random.shuffle(self.indices)

        def __len__(self):
            return int(np.ceil(self.num_samples / self.batch_size))

        def on_epoch_end(self):
            if self.shuffle:
                np.random.shuffle(self.indices)

        def _load_image(self, image_path):
            image = keras.utils.load_img(image_path, target_size=self.image_size)
            image = keras.utils.img_to_array(image).astype("float32") / 255.0
            return image

        def __getitem__(self, index):
            start = index * self.batch_size
            end = min(start + self.batch_size, self.num_samples)
            batch_indices = self.indices[start:end]

            style_batch = [
                self._load_image(self.style_paths[i % self.num_style])
                for i in batch_indices
            ]
            content_batch = [
                self._load_image(self.content_paths[i % self.num_content])
                for i in batch_indices
            ]

            # Return x only as a length-1 tuple so fit() treats (style, content) as model input.
            return ((np.stack(style_batch), np.stack(content_batch)),)

    def list_image_paths(image_root):
        valid_exts = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
        image_paths = [
            os.path.join(image_root, name)
            for name in os.listdir(image_root)
            if os.path.isfile(os.path.join(image_root, name))
            and name.lower().endswith(valid_exts)
        ]
        image_paths.sort()

        if not image_paths:
            raise ValueError(f"No images found under: {image_root}")
        return image_paths

    def split_paths(paths):
        total = len(paths)
        train_end = max(1, int(0.8 * total))
        val_end = max(train_end + 1, int(0.9 * total))

        train = paths[:train_end]
        val = paths[train_end:val_end]
        test = paths[val_end:]

        # Ensure no split is empty for very small fallback datasets.
        if not val:
            val = train[: min(len(train), 1)]
        if not test:
            test = train[: min(len(train), 1)]

        return train, val, test

    # Dataset roots (generated in place of the Kaggle artworks and Pascal VOC images)
    style_root = str(tmp_path / "artwork" / "resized")
    content_root = str(tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages")
    _write_images(style_root, "style", 12, 0)
    _write_images(content_root, "content", 12, 1)

    style_paths = list_image_paths(style_root)
    content_paths = list_image_paths(content_root)

    train_style, val_style, test_style = split_paths(style_paths)
    train_content, val_content, test_content = split_paths(content_paths)
    assert (len(train_style), len(val_style), len(test_style)) == (9, 1, 2)

    train_ds = StyleContentPyDataset(
        train_style,
        train_content,
        batch_size=BATCH_SIZE,
        image_size=IMAGE_SIZE,
        shuffle=True,
    )
    val_ds = StyleContentPyDataset(
        val_style, val_content, batch_size=BATCH_SIZE, image_size=IMAGE_SIZE, shuffle=True
    )
    test_ds = StyleContentPyDataset(
        test_style, test_content, batch_size=BATCH_SIZE, image_size=IMAGE_SIZE, shuffle=True
    )

    ((style, content),) = next(iter(train_ds))
    assert style.shape == content.shape == (BATCH_SIZE, 32, 32, 3)

    def get_encoder():
        vgg19 = keras.applications.VGG19(
            include_top=False,
            weights=None,
            input_shape=(*IMAGE_SIZE, 3),
        )
        vgg19.trainable = False
        mini_vgg19 = keras.Model(vgg19.input, vgg19.get_layer("block4_conv1").output)

        inputs = layers.Input([*IMAGE_SIZE, 3])
        mini_vgg19_out = mini_vgg19(inputs)
        return keras.Model(inputs, mini_vgg19_out, name="mini_vgg19")

    def get_mean_std(x, epsilon=1e-5):
        axes = [1, 2]

        # Compute the mean and standard deviation of a tensor.
        mean, variance = keras.ops.moments(x, axes=axes, keepdims=True)
        standard_deviation = keras.ops.sqrt(variance + epsilon)
        return mean, standard_deviation

    def ada_in(style, content):
        content_mean, content_std = get_mean_std(content)
        style_mean, style_std = get_mean_std(style)
        t = style_std * (content - content_mean) / content_std + style_mean
        return t

    rng = np.random.default_rng(2)
    fs, fc = rng.normal(size=(2, 2, 3, 4, 5)).astype("float32")
    mu_s, sd_s = fs.mean((1, 2), keepdims=True), np.sqrt(fs.var((1, 2), keepdims=True) + 1e-5)
    mu_c, sd_c = fc.mean((1, 2), keepdims=True), np.sqrt(fc.var((1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(ada_in(style=fs, content=fc), sd_s * (fc - mu_c) / sd_c + mu_s,
                               rtol=1e-4, atol=1e-5)

    def get_decoder():
        config = {"kernel_size": 3, "strides": 1, "padding": "same", "activation": "relu"}
        decoder = keras.Sequential(
            [
                layers.InputLayer((None, None, 512)),
                layers.Conv2D(filters=512, **config),
                layers.UpSampling2D(),
                layers.Conv2D(filters=256, **config),
                layers.Conv2D(filters=256, **config),
                layers.Conv2D(filters=256, **config),
                layers.Conv2D(filters=256, **config),
                layers.UpSampling2D(),
                layers.Conv2D(filters=128, **config),
                layers.Conv2D(filters=128, **config),
                layers.UpSampling2D(),
                layers.Conv2D(filters=64, **config),
                layers.Conv2D(
                    filters=3,
                    kernel_size=3,
                    strides=1,
                    padding="same",
                    activation="sigmoid",
                ),
            ]
        )
        return decoder

    def get_loss_net():
        vgg19 = keras.applications.VGG19(
            include_top=False, weights=None, input_shape=(*IMAGE_SIZE, 3)
        )
        vgg19.trainable = False
        layer_names = ["block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1"]
        outputs = [vgg19.get_layer(name).output for name in layer_names]
        mini_vgg19 = keras.Model(vgg19.input, outputs)

        inputs = layers.Input([*IMAGE_SIZE, 3])
        mini_vgg19_out = mini_vgg19(inputs)
        return keras.Model(inputs, mini_vgg19_out, name="loss_net")

    class NeuralStyleTransfer(keras.Model):
        def __init__(self, encoder, decoder, loss_net, style_weight, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.loss_net = loss_net
            self.style_weight = style_weight

            self.style_loss_tracker = keras.metrics.Mean(name="style_loss")
            self.content_loss_tracker = keras.metrics.Mean(name="content_loss")
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")

        def compile(self, optimizer, loss_fn, **kwargs):
            super().compile(optimizer=optimizer, **kwargs)
            self.loss_fn = loss_fn

        def call(self, inputs, training=False):
            style, content = inputs

            # Encode style and content, then construct AdaIN target.
            style_encoded = self.encoder(style, training=False)
            content_encoded = self.encoder(content, training=False)
            target_features = ada_in(style=style_encoded, content=content_encoded)

            # Decode back into image space.
            reconstructed_image = self.decoder(target_features, training=training)

            return {
                "reconstructed_image": reconstructed_image,
                "target_features": target_features,
                "style": style,
            }

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None):
            # Loss content comes from target AdaIN features vs reconstructed features.
            reconstructed_vgg_features = self.loss_net(
                y_pred["reconstructed_image"], training=False
            )
            style_vgg_features = self.loss_net(y_pred["style"], training=False)

            loss_content = self.loss_fn(
                y_pred["target_features"], reconstructed_vgg_features[-1]
            )

            # Style loss matches means/variances at each VGG feature level.
            loss_style = 0.0
            for inp, out in zip(style_vgg_features, reconstructed_vgg_features):
                mean_inp, std_inp = get_mean_std(inp)
                mean_out, std_out = get_mean_std(out)
                loss_style += self.loss_fn(mean_inp, mean_out) + self.loss_fn(
                    std_inp, std_out
                )
            loss_style = self.style_weight * loss_style

            total_loss = loss_content + loss_style

            # Update trackers for progress logs.
            self.style_loss_tracker.update_state(loss_style)
            self.content_loss_tracker.update_state(loss_content)
            self.total_loss_tracker.update_state(total_loss)

            return total_loss

        @property
        def metrics(self):
            return [
                self.style_loss_tracker,
                self.content_loss_tracker,
                self.total_loss_tracker,
            ]

    ((test_style, test_content),) = next(iter(test_ds))
    monitored = []

    class TrainMonitor(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            # Encode the style and content image.
            test_style_encoded = self.model.encoder(test_style)
            test_content_encoded = self.model.encoder(test_content)

            # Compute the AdaIN features.
            test_t = ada_in(style=test_style_encoded, content=test_content_encoded)
            test_reconstructed_image = self.model.decoder(test_t)
            # (the three-panel figure is left out)
            monitored.append(keras.utils.array_to_img(test_reconstructed_image[0]).size)

    optimizer = keras.optimizers.Adam(learning_rate=1e-5)
    loss_fn = keras.losses.MeanSquaredError()

    encoder = get_encoder()
    loss_net = get_loss_net()
    decoder = get_decoder()

    model = NeuralStyleTransfer(
        encoder=encoder, decoder=decoder, loss_net=loss_net, style_weight=4.0
    )

    model.compile(optimizer=optimizer, loss_fn=loss_fn)

    train_steps = min(50, len(train_ds))
    val_steps = min(50, len(val_ds))

    frozen = [np.array(w) for w in encoder.weights + loss_net.weights]
    decoder_before = [np.array(w) for w in decoder.weights]
    history = model.fit(
        train_ds,
        epochs=EPOCHS,
        steps_per_epoch=train_steps,
        validation_data=val_ds,
        validation_steps=val_steps,
        callbacks=[TrainMonitor()],
    )
    logs = history.history
    assert logs["total_loss"][0] == pytest.approx(
        logs["style_loss"][0] + logs["content_loss"][0], rel=1e-4)
    assert "val_total_loss" in logs and monitored == [(32, 32)]
    # only the decoder trains
    for before, after in zip(frozen, encoder.weights + loss_net.weights):
        np.testing.assert_array_equal(before, np.asarray(after))
    assert any(not np.array_equal(b, np.asarray(a))
               for b, a in zip(decoder_before, decoder.weights))

    for ((style, content),) in test_ds:
        style_encoded = model.encoder(style)
        content_encoded = model.encoder(content)
        t = ada_in(style=style_encoded, content=content_encoded)
        reconstructed_image = model.decoder(t)
        assert np.asarray(reconstructed_image).shape == (2, 32, 32, 3)
        break
