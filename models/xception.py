"""Xception ("Deep Learning with Depthwise Separable Convolutions") with Keras Applications'
layer names (`block1_conv1`, `block{i}_sepconv{j}`, `_bn`, `_act`, `block{i}_pool`,
`avg_pool`, `predictions`); the four strided 1x1 residual convolutions and their
BatchNormalizations are left unnamed, as in Keras."""
from __future__ import annotations

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/xception/"
ENTRY = ((2, 128), (3, 256), (4, 728))  # (block, filters) of the entry flow's downsampling


def Xception(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name="xception"):
    """Instantiate Xception (22,910,480 parameters with the top, 20,861,480 without, as
    Keras). Default input 299x299, at least 71x71.

    Args:
        include_top: whether to include the global-average-pool + `predictions` top.
        weights: None, "imagenet" (reads `$KGRAPH_HOME/models/
            xception_weights_tf_dim_ordering_tf_kernels[_notop].h5`) or a Keras weight file.
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape ((299, 299, 3) by default).
        pooling: with `include_top=False`: None, "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).
        name: model name.

    Returns:
        A `keras.Model`.

    Example:
    >>> Xception(weights=None, include_top=False, input_shape=(71, 71, 3)).output_shape
    (None, 3, 3, 2048)
    """
    from kgraph.keras import layers

    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    shape = imagenet_utils.input_shape_for(input_shape, 299, 71, include_top, weights,
                                           open_size=False)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    axis = imagenet_utils.channel_axis()

    def separable(x, filters, name):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
        return layers.BatchNormalization(axis=axis, name=f"{name}_bn")(x)

    def relu(x, name):
        return layers.Activation("relu", name=name)(x)

    def downsampled(x, filters):  # the residual branch: a strided 1x1 convolution
        x = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
        return layers.BatchNormalization(axis=axis)(x)

    x = layers.Conv2D(32, 3, strides=2, use_bias=False, name="block1_conv1")(inputs)
    x = relu(layers.BatchNormalization(axis=axis, name="block1_conv1_bn")(x), "block1_conv1_act")
    x = layers.Conv2D(64, 3, use_bias=False, name="block1_conv2")(x)
    x = relu(layers.BatchNormalization(axis=axis, name="block1_conv2_bn")(x), "block1_conv2_act")

    for block, filters in ENTRY:  # entry flow
        residual = downsampled(x, filters)
        if block > 2:  # block 2 follows block 1's activation directly
            x = relu(x, f"block{block}_sepconv1_act")
        x = separable(x, filters, f"block{block}_sepconv1")
        x = separable(relu(x, f"block{block}_sepconv2_act"), filters, f"block{block}_sepconv2")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
        x = layers.add([x, residual])

    for block in range(5, 13):  # middle flow: 8 identity blocks
        residual = x
        for conv in (1, 2, 3):
            x = separable(relu(x, f"block{block}_sepconv{conv}_act"), 728,
                          f"block{block}_sepconv{conv}")
        x = layers.add([x, residual])

    residual = downsampled(x, 1024)  # exit flow
    x = separable(relu(x, "block13_sepconv1_act"), 728, "block13_sepconv1")
    x = separable(relu(x, "block13_sepconv2_act"), 1024, "block13_sepconv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block13_pool")(x)
    x = layers.add([x, residual])
    x = relu(separable(x, 1536, "block14_sepconv1"), "block14_sepconv1_act")
    x = relu(separable(x, 2048, "block14_sepconv2"), "block14_sepconv2_act")

    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation)
    suffix = "" if include_top else "_notop"
    file_name = f"xception_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    return imagenet_utils.finish(inputs, x, name, weights, file_name, WEIGHTS_URL + file_name)


def preprocess_input(x, data_format=None):
    """Scale pixels from [0, 255] to [-1, 1] (Keras' "tf" mode)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
