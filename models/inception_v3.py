"""InceptionV3 ("Rethinking the Inception Architecture for Computer Vision"): Keras
Applications' architecture and parameter counts, its eleven `mixed0`..`mixed10` blocks named
as Keras names them.

Every convolution is unbiased and followed by a scale-free BatchNormalization and a ReLU.
Keras leaves those layers unnamed (automatic names), so an ImageNet weight file cannot be
matched to them by name: `weights` takes None or a file saved from this model.
"""
from __future__ import annotations

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"


def conv_bn(x, filters, rows, cols, strides=1, padding="same"):
    """Conv2D (no bias) + BatchNormalization (no scale) + ReLU."""
    from kgraph.keras import layers

    x = layers.Conv2D(filters, (rows, cols), strides=strides, padding=padding,
                      use_bias=False)(x)
    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), scale=False)(x)
    return layers.Activation("relu")(x)


def _concat(branches, name=None):
    from kgraph.keras import layers

    return layers.Concatenate(axis=imagenet_utils.channel_axis(), name=name)(branches)


def _pool_branch(x, filters):
    from kgraph.keras import layers

    pooled = layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x)
    return conv_bn(pooled, filters, 1, 1)


def _block_35(x, pool_filters, name):
    """mixed0-2 (35x35): 1x1, 5x5, double 3x3 and pooled branches."""
    five = conv_bn(conv_bn(x, 48, 1, 1), 64, 5, 5)
    double = conv_bn(conv_bn(conv_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3)
    return _concat([conv_bn(x, 64, 1, 1), five, double, _pool_branch(x, pool_filters)], name)


def _block_17(x, width, name):
    """mixed4-7 (17x17): 1x1, factorized 7x7 and double 7x7, and pooled branches."""
    seven = conv_bn(conv_bn(conv_bn(x, width, 1, 1), width, 1, 7), 192, 7, 1)
    double = conv_bn(x, width, 1, 1)
    for filters, (rows, cols) in ((width, (7, 1)), (width, (1, 7)), (width, (7, 1)),
                                  (192, (1, 7))):
        double = conv_bn(double, filters, rows, cols)
    return _concat([conv_bn(x, 192, 1, 1), seven, double, _pool_branch(x, 192)], name)


def _block_8(x, index):
    """mixed9-10 (8x8): 1x1, split 3x3, double split 3x3 and pooled branches."""
    three = conv_bn(x, 384, 1, 1)
    three = _concat([conv_bn(three, 384, 1, 3), conv_bn(three, 384, 3, 1)], f"mixed9_{index}")
    double = conv_bn(conv_bn(x, 448, 1, 1), 384, 3, 3)
    double = _concat([conv_bn(double, 384, 1, 3), conv_bn(double, 384, 3, 1)])
    return _concat([conv_bn(x, 320, 1, 1), three, double, _pool_branch(x, 192)],
                   f"mixed{9 + index}")


def InceptionV3(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax"):
    """Instantiate the InceptionV3 architecture (Keras Applications' parameter count:
    23,851,784 with the top, 21,802,784 without). Its inputs are scaled to [-1, 1]
    (`preprocess_input`).

    Args:
        include_top: whether to include the GlobalAveragePooling2D + Dense "predictions" top.
        weights: None (random) or the path of a weight file saved from this model; Keras'
            ImageNet file cannot be matched to its unnamed layers, so "imagenet" is refused.
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape; only when `include_top=False` may it differ from
            (299, 299, 3) (at least 75x75).
        pooling: with `include_top=False`: None (4D feature map), "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).

    Returns:
        A `keras.Model`.

    Example:
    >>> model = InceptionV3(weights=None, include_top=False, input_shape=(75, 75, 3),
    ...                     pooling="avg")
    >>> model.output_shape
    (None, 2048)
    """
    from kgraph.keras import layers

    if weights == "imagenet":
        raise ValueError("InceptionV3: Keras' ImageNet weight file names most layers "
                         "automatically, so kgraph cannot match it to this model; pass "
                         "weights=None or a file saved from this model. Received: "
                         "weights='imagenet'")
    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    shape = imagenet_utils.input_shape_for(input_shape, 299, 75, include_top, weights)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = conv_bn(inputs, 32, 3, 3, strides=2, padding="valid")
    x = conv_bn(x, 32, 3, 3, padding="valid")
    x = conv_bn(x, 64, 3, 3)
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = conv_bn(x, 80, 1, 1, padding="valid")
    x = conv_bn(x, 192, 3, 3, padding="valid")
    x = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for index, pool_filters in enumerate((32, 64, 64)):
        x = _block_35(x, pool_filters, f"mixed{index}")
    double = conv_bn(conv_bn(conv_bn(x, 64, 1, 1), 96, 3, 3), 96, 3, 3, strides=2,
                     padding="valid")
    x = _concat([conv_bn(x, 384, 3, 3, strides=2, padding="valid"), double,
                 layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], "mixed3")
    for index, width in enumerate((128, 160, 160, 192)):
        x = _block_17(x, width, f"mixed{4 + index}")
    three = conv_bn(conv_bn(x, 192, 1, 1), 320, 3, 3, strides=2, padding="valid")
    seven = conv_bn(x, 192, 1, 1)
    for filters, (rows, cols) in ((192, (1, 7)), (192, (7, 1))):
        seven = conv_bn(seven, filters, rows, cols)
    seven = conv_bn(seven, 192, 3, 3, strides=2, padding="valid")
    x = _concat([three, seven, layers.MaxPooling2D((3, 3), strides=(2, 2))(x)], "mixed8")
    for index in range(2):
        x = _block_8(x, index)
    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation)
    suffix = "" if include_top else "_notop"
    file_name = f"inception_v3_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    return imagenet_utils.finish(inputs, x, "inception_v3", weights, file_name,
                                 WEIGHTS_URL + file_name)


def preprocess_input(x, data_format=None):
    """InceptionV3 preprocessing: images in [0, 255] scaled to [-1, 1] (mode "tf"); see
    `imagenet_utils.preprocess_input`."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
