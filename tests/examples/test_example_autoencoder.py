"""keras.io example "Convolutional autoencoder for image denoising"
(examples/vision/autoencoder.py).

The Keras 3 code as written; only the imports changed, MNIST replaced by
random arrays of its shapes (128 train, 64 test), epochs cut from 50/100 to
1; `display` (matplotlib) is left out.
"""

import numpy as np
from example_datasets import mnist_load_data


def preprocess(array):
    """Normalizes the supplied array and reshapes it."""
    array = array.astype("float32") / 255.0
    array = np.reshape(array, (len(array), 28, 28, 1))
    return array


def noise(array):
    """Adds random noise to each image in the supplied array."""
    noise_factor = 0.4
    noisy_array = array + noise_factor * np.random.normal(
        loc=0.0, scale=1.0, size=array.shape
    )

    return np.clip(noisy_array, 0.0, 1.0)


def test_autoencoder():
    from kgraph.keras import layers
    from kgraph.keras.models import Model

    # Since we only need images from the dataset to encode and decode, we
    # won't use the labels.
    (train_data, _), (test_data, _) = mnist_load_data(n_train=128, n_test=64)

    # Normalize and reshape the data
    train_data = preprocess(train_data)
    test_data = preprocess(test_data)

    # Create a copy of the data with added noise
    noisy_train_data = noise(train_data)
    noisy_test_data = noise(test_data)

    input = layers.Input(shape=(28, 28, 1))

    # Encoder
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(input)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)
    x = layers.Conv2D(32, (3, 3), activation="relu", padding="same")(x)
    x = layers.MaxPooling2D((2, 2), padding="same")(x)

    # Decoder
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2DTranspose(32, (3, 3), strides=2, activation="relu", padding="same")(x)
    x = layers.Conv2D(1, (3, 3), activation="sigmoid", padding="same")(x)

    # Autoencoder
    autoencoder = Model(input, x)
    autoencoder.compile(optimizer="adam", loss="binary_crossentropy")
    autoencoder.summary()

    history = autoencoder.fit(
        x=train_data,
        y=train_data,
        epochs=1,
        batch_size=128,
        shuffle=True,
        validation_data=(test_data, test_data),
    )

    predictions = autoencoder.predict(test_data)

    autoencoder.fit(
        x=noisy_train_data,
        y=train_data,
        epochs=1,
        batch_size=128,
        shuffle=True,
        validation_data=(noisy_test_data, test_data),
    )

    denoised = autoencoder.predict(noisy_test_data)

    assert np.isfinite(history.history["val_loss"][0])
    assert predictions.shape == denoised.shape == (64, 28, 28, 1)
    assert ((denoised > 0) & (denoised < 1)).all()
    # conv 320 + 9248, transposed convs 2 * 9248, output conv 289
    assert autoencoder.count_params() == 28_353
