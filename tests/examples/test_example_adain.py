"""keras.io example "Neural Style Transfer with AdaIN" (examples/generative/adain.py).

The Keras 3 code as written (`import tensorflow as tf; import keras; from keras import layers`,
swapped for kgraph): the `StyleContentPyDataset` (a `keras.utils.PyDataset` whose items are
`((style, content),)`: inputs only), path listing and splitting, its fallback that writes
CIFAR-10 images as JPEG style/content folders, a VGG19 encoder cut at "block4_conv1" and a loss
network with four intermediate outputs (both frozen), AdaIN from `keras.ops.moments(axes=[1,
2], keepdims=True)`, the decoder Sequential on `InputLayer((None, None, 512))` (UpSampling2D
over open sizes), the `NeuralStyleTransfer` model whose `call` returns a dict and whose
`compute_loss(x, y, y_pred, sample_weight)` override builds the content and style losses and
updates three `Mean` trackers (a `metrics` property), its own `compile(optimizer, loss_fn)`,
the `TrainMonitor` callback calling the encoder/decoder eagerly, `fit` with
`steps_per_epoch`/`validation_steps`, and the inference loop.

Replaced: `keras.datasets.cifar10.load_data()` (a download) by
`example_datasets.cifar10_load_data` (20 images) and the fallback folders "/tmp/adain_data/..."
by folders under the test's tmp_path; `weights="imagenet"` by `None` for both VGG19s. Sizes
cut: IMAGE_SIZE 224 -> 32, BATCH_SIZE 64 -> 4. The matplotlib figures are left out.

Checked: `ada_in` against numpy (the content's per-channel statistics replaced by the
style's); the logs hold the three trackers; the encoder and loss network stay frozen while the
decoder trains. Marked slow (~4-6 s).
"""

import os

import numpy as np
import pytest

from example_datasets import cifar10_load_data


@pytest.mark.slow
def test_adain(tmp_path, monkeypatch):
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    monkeypatch.setattr(keras.datasets.cifar10, "load_data",
                        lambda: cifar10_load_data(20, 4))
    keras.utils.set_random_seed(0)
    np.random.seed(0)

    # Defining the global variables.
    IMAGE_SIZE = (32, 32)  # (224, 224)
    BATCH_SIZE = 4  # 64
    # Training for single epoch for time constraint.
    # Please use atleast 30 epochs to see good results.
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

    def ensure_fallback_image_dirs(style_root, content_root, image_size):
        if os.path.isdir(style_root) and os.path.isdir(content_root):
            if os.listdir(style_root) and os.listdir(content_root):
                return style_root, content_root

        fallback_style = str(tmp_path / "adain_data" / "style")  # "/tmp/adain_data/style"
        fallback_content = str(tmp_path / "adain_data" / "content")
        os.makedirs(fallback_style, exist_ok=True)
        os.makedirs(fallback_content, exist_ok=True)

        (x_train, _), _ = keras.datasets.cifar10.load_data()
        x_train = x_train[:1000]

        for i, image in enumerate(x_train):
            pil_img = keras.utils.array_to_img(image)
            pil_img = pil_img.resize((image_size[1], image_size[0]))
            if i % 2 == 0:
                pil_img.save(os.path.join(fallback_style, f"style_{i:04d}.jpg"))
            else:
                pil_img.save(os.path.join(fallback_content, f"content_{i:04d}.jpg"))

        print(
            "Using fallback local data at /tmp/adain_data because /content paths were not found."
        )
        return fallback_style, fallback_content

    # Dataset roots
    style_root = "/content/artwork/resized"
    content_root = "/content/VOCdevkit/VOC2012/JPEGImages"
    style_root, content_root = ensure_fallback_image_dirs(
        style_root, content_root, IMAGE_SIZE
    )

    # Build path lists
    style_paths = list_image_paths(style_root)
    content_paths = list_image_paths(content_root)

    # Split style/content paths
    train_style, val_style, test_style = split_paths(style_paths)
    train_content, val_content, test_content = split_paths(content_paths)

    # Build PyDataset objects
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

    ((style, content),) = next(iter(train_ds))  # shown with matplotlib in the example

    def get_encoder():
        vgg19 = keras.applications.VGG19(
            include_top=False,
            weights=None,  # "imagenet"
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
        """Computes the AdaIn feature map."""
        content_mean, content_std = get_mean_std(content)
        style_mean, style_std = get_mean_std(style)
        t = style_std * (content - content_mean) / content_std + style_mean
        return t

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
            include_top=False, weights=None, input_shape=(*IMAGE_SIZE, 3)  # "imagenet"
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

            # Plot the Style, Content and the NST image (left out: the images are made).
            monitored.append([keras.utils.array_to_img(test_style[0]),
                              keras.utils.array_to_img(test_content[0]),
                              keras.utils.array_to_img(test_reconstructed_image[0])])

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

    frozen = [w.numpy().copy() for w in encoder.weights + loss_net.weights]
    decoder_before = [w.numpy().copy() for w in decoder.weights]
    history = model.fit(
        train_ds,
        epochs=EPOCHS,
        steps_per_epoch=train_steps,
        validation_data=val_ds,
        validation_steps=val_steps,
        callbacks=[TrainMonitor()],
    )

    for ((style, content),) in test_ds:
        style_encoded = model.encoder(style)
        content_encoded = model.encoder(content)
        t = ada_in(style=style_encoded, content=content_encoded)
        reconstructed_image = model.decoder(t)
        break

    assert (len(style_paths), len(content_paths)) == (10, 10)
    assert set(history.history) >= {"style_loss", "content_loss", "total_loss"}
    assert len(monitored) == 1 and monitored[0][2].size == (32, 32)
    assert reconstructed_image.shape == (1, 32, 32, 3)
    for w, before in zip(encoder.weights + loss_net.weights, frozen):
        np.testing.assert_array_equal(w.numpy(), before)
    assert any(not np.allclose(w.numpy(), b) for w, b in zip(decoder.weights, decoder_before))

    # AdaIN in numpy: the content's per-channel statistics replaced by the style's
    rng = np.random.default_rng(3)
    s, c = rng.normal(size=(2, 2, 3, 3, 4)).astype("float32")
    out = np.asarray(ada_in(style=s, content=c))

    def stats(x):
        return x.mean(axis=(1, 2), keepdims=True), np.sqrt(x.var(axis=(1, 2), keepdims=True) + 1e-5)

    (cm, cs), (sm, ss) = stats(c), stats(s)
    np.testing.assert_allclose(out, ss * (c - cm) / cs + sm, rtol=1e-4, atol=1e-5)
