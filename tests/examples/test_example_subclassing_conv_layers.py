"""keras.io example "Customizing the convolution operation of a Conv2D layer"
(examples/keras_recipes/subclassing_conv_layers.py).

The code as written, `import tensorflow as tf; import tensorflow.keras as keras; import
keras.layers as layers` swapped for kgraph's. The example's two TensorFlow calls are spelled
with their `keras.ops` equivalents (kgraph has no `tf.nn`): `tf.nn.moments` is
`keras.ops.moments` and `tf.nn.conv2d(..., padding="VALID", strides=...)` is
`keras.ops.conv(..., padding="valid", strides=...)`; `tf.sqrt` is kgraph's. MNIST (a download)
is replaced by random digits of its shapes (256 train, 64 test), epochs 5 -> 1.

Both custom layers (one overriding `convolution_op`, one calling it from `call`) are checked
against numpy: the kernel standardized over its first three axes, then a valid convolution.
"""
import numpy as np

from example_datasets import mnist_load_data


def _standardized_layers():
    import kgraph as tf
    from kgraph import keras
    from kgraph.keras import layers

    class StandardizedConv2DWithOverride(layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            mean, var = keras.ops.moments(kernel, axes=[0, 1, 2], keepdims=True)
            return keras.ops.conv(
                inputs,
                (kernel - mean) / tf.sqrt(var + 1e-10),
                padding="valid",
                strides=list(self.strides),
            )

    class StandardizedConv2DWithCall(layers.Conv2D):
        def call(self, inputs):
            mean, var = keras.ops.moments(self.kernel, axes=[0, 1, 2], keepdims=True)
            result = self.convolution_op(
                inputs, (self.kernel - mean) / tf.sqrt(var + 1e-10)
            )
            if self.use_bias:
                result = result + self.bias
            return result

    return StandardizedConv2DWithOverride, StandardizedConv2DWithCall


def _np_standardized_conv(x, kernel, bias):
    kernel = kernel.astype("float64")
    kernel = (kernel - kernel.mean((0, 1, 2))) / np.sqrt(kernel.var((0, 1, 2)) + 1e-10)
    kh, kw = kernel.shape[:2]
    oh, ow = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = sum(x[:, i : i + oh, j : j + ow, :] @ kernel[i, j] for i in range(kh) for j in range(kw))
    return out + bias


def test_standardized_convolutions_match_numpy():
    with_override, with_call = _standardized_layers()
    x = np.random.default_rng(0).normal(size=(2, 9, 8, 3)).astype("float32")
    for cls in (with_override, with_call):
        layer = cls(4, kernel_size=(3, 3), activation="relu")
        layer(x)
        rng = np.random.default_rng(1)
        layer.set_weights([rng.normal(size=w.shape).astype("float32")
                           for w in layer.get_weights()])
        want = _np_standardized_conv(x, *layer.get_weights())
        if cls is with_override:  # Conv2D's `call`: the bias, then the activation
            want = np.maximum(want, 0)
        # (the example's `call` override adds the bias and applies no activation)
        np.testing.assert_allclose(layer(x), want, rtol=1e-4, atol=1e-4)


def test_subclassing_conv_layers():
    from kgraph import keras
    from kgraph.keras import layers

    StandardizedConv2DWithOverride, StandardizedConv2DWithCall = _standardized_layers()

    # Model / data parameters
    num_classes = 10
    input_shape = (28, 28, 1)

    # the data, split between train and test sets
    (x_train, y_train), (x_test, y_test) = mnist_load_data()

    # Scale images to the [0, 1] range
    x_train = x_train.astype("float32") / 255
    x_test = x_test.astype("float32") / 255
    # Make sure images have shape (28, 28, 1)
    x_train = np.expand_dims(x_train, -1)
    x_test = np.expand_dims(x_test, -1)
    print("x_train shape:", x_train.shape)
    print(x_train.shape[0], "train samples")
    print(x_test.shape[0], "test samples")

    # convert class vectors to binary class matrices
    y_train = keras.utils.to_categorical(y_train, num_classes)
    y_test = keras.utils.to_categorical(y_test, num_classes)

    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=input_shape),
            StandardizedConv2DWithCall(32, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            StandardizedConv2DWithOverride(64, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(num_classes, activation="softmax"),
        ]
    )

    model.summary()

    batch_size = 128
    epochs = 1

    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs,
                        validation_split=0.1)

    # the same 34,826 parameters as the example's plain mnist_convnet
    assert model.count_params() == 34826
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.isfinite(history.history["loss"]).all()
    probabilities = model.predict(x_test[:8])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
