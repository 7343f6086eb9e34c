"""keras.io example "PixelCNN" (examples/generative/pixelcnn.py).

The Keras 3 code as written; only the imports changed. The masked convolution assigns its
masked kernel inside `call` (so in fit's traced step too), and the demonstration samples
4 images pixel by pixel with one `predict` per pixel. MNIST is replaced by random digits of
its shapes (64 train + 32 test images, binarized as written); sizes cut for a 2-core
machine: filters 128 -> 16, n_residual_blocks 5 -> 2, batch_size 128 -> 32, epochs 50 -> 1.
The images are saved under tmp_path; the IPython `display` calls are left out.
"""

import numpy as np
from example_datasets import mnist_load_data


def test_pixelcnn(tmp_path, monkeypatch):
    from tqdm import tqdm

    from kgraph import keras
    from kgraph.keras import layers, ops

    monkeypatch.chdir(tmp_path)

    # Model / data parameters
    num_classes = 10  # noqa: F841 - the example's
    input_shape = (28, 28, 1)
    n_residual_blocks = 2
    # The data, split between train and test sets
    (x, _), (y, _) = mnist_load_data(n_train=64, n_test=32)
    # Concatenate all the images together
    data = np.concatenate((x, y), axis=0)
    # Round all pixel values less than 33% of the max 256 value to 0
    # anything above this value gets rounded up to 1 so that all values are either
    # 0 or 1
    data = np.where(data < (0.33 * 256), 0, 1)
    data = data.astype(np.float32)

    # The first layer is the PixelCNN layer. This layer simply
    # builds on the 2D convolutional layer, but includes masking.
    class PixelConvLayer(layers.Layer):
        def __init__(self, mask_type, **kwargs):
            super().__init__()
            self.mask_type = mask_type
            self.conv = layers.Conv2D(**kwargs)

        def build(self, input_shape):
            # Build the conv2d layer to initialize kernel variables
            self.conv.build(input_shape)
            # Use the initialized kernel to create the mask
            kernel_shape = ops.shape(self.conv.kernel)
            self.mask = np.zeros(shape=kernel_shape)
            self.mask[: kernel_shape[0] // 2, ...] = 1.0
            self.mask[kernel_shape[0] // 2, : kernel_shape[1] // 2, ...] = 1.0
            if self.mask_type == "B":
                self.mask[kernel_shape[0] // 2, kernel_shape[1] // 2, ...] = 1.0

        def call(self, inputs):
            self.conv.kernel.assign(self.conv.kernel * self.mask)
            return self.conv(inputs)

    # Next, we build our residual block layer.
    # This is just a normal residual block, but based on the PixelConvLayer.
    class ResidualBlock(keras.layers.Layer):
        def __init__(self, filters, **kwargs):
            super().__init__(**kwargs)
            self.conv1 = keras.layers.Conv2D(
                filters=filters, kernel_size=1, activation="relu"
            )
            self.pixel_conv = PixelConvLayer(
                mask_type="B",
                filters=filters // 2,
                kernel_size=3,
                activation="relu",
                padding="same",
            )
            self.conv2 = keras.layers.Conv2D(
                filters=filters, kernel_size=1, activation="relu"
            )

        def call(self, inputs):
            x = self.conv1(inputs)
            x = self.pixel_conv(x)
            x = self.conv2(x)
            return keras.layers.add([inputs, x])

    inputs = keras.Input(shape=input_shape)
    x = PixelConvLayer(
        mask_type="A", filters=16, kernel_size=7, activation="relu", padding="same"
    )(inputs)

    for _ in range(n_residual_blocks):
        x = ResidualBlock(filters=16)(x)

    for _ in range(2):
        x = PixelConvLayer(
            mask_type="B",
            filters=16,
            kernel_size=1,
            strides=1,
            activation="relu",
            padding="valid",
        )(x)

    out = keras.layers.Conv2D(
        filters=1, kernel_size=1, strides=1, activation="sigmoid", padding="valid"
    )(x)

    pixel_cnn = keras.Model(inputs, out)
    adam = keras.optimizers.Adam(learning_rate=0.0005)
    pixel_cnn.compile(optimizer=adam, loss="binary_crossentropy")

    pixel_cnn.summary()
    history = pixel_cnn.fit(
        x=data, y=data, batch_size=32, epochs=1, validation_split=0.1, verbose=2
    )
    assert np.isfinite(history.history["loss"]).all() and "val_loss" in history.history

    # the trained kernels stay masked: type A sees only pixels above and to the left
    first = pixel_cnn.layers[1]
    kernel = first.conv.kernel.numpy()
    assert (kernel[3, 3:] == 0).all() and (kernel[4:] == 0).all() and (kernel[:3] != 0).any()
    # so the first pixel's probability depends on no pixel of the image
    probe = np.zeros((2, 28, 28, 1), "float32")
    probe[1] = 1.0
    first_pixel = pixel_cnn.predict(probe, verbose=0)[:, 0, 0, 0]
    np.testing.assert_allclose(first_pixel[0], first_pixel[1], rtol=1e-5)

    # Create an empty array of pixels.
    batch = 4
    pixels = np.zeros(shape=(batch,) + (pixel_cnn.input_shape)[1:])
    batch, rows, cols, channels = pixels.shape

    # Iterate over the pixels because generation has to be done sequentially pixel by pixel.
    for row in tqdm(range(rows)):
        for col in range(cols):
            for channel in range(channels):
                # Feed the whole array and retrieving the pixel value probabilities for the next
                # pixel.
                probs = pixel_cnn.predict(pixels, verbose=0)[:, row, col, channel]
                # Use the probabilities to pick pixel values and append the values to the image
                # frame.
                pixels[:, row, col, channel] = ops.ceil(
                    probs - keras.random.uniform(probs.shape)
                )

    def deprocess_image(x):
        # Stack the single channeled black and white image to rgb values.
        x = np.stack((x, x, x), 2)
        # Undo preprocessing
        x *= 255.0
        # Convert to uint8 and clip to the valid range [0, 255]
        x = np.clip(x, 0, 255).astype("uint8")
        return x

    # Iterate over the generated images and plot them with matplotlib.
    for i, pic in enumerate(pixels):
        keras.utils.save_img(
            "generated_image_{}.png".format(i), deprocess_image(np.squeeze(pic, -1))
        )

    assert set(np.unique(pixels)) <= {0.0, 1.0}
    saved = keras.utils.load_img("generated_image_0.png")
    assert saved.size == (28, 28)
    np.testing.assert_array_equal(keras.utils.img_to_array(saved)[..., 0], pixels[0, ..., 0] * 255)
