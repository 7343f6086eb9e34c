"""EfficientNetB0 ("Rethinking Model Scaling for Convolutional Neural Networks") with Keras
Applications' layer names (`stem_conv`, `block1a_dwconv`, `block2b_se_reduce`, `top_conv`,
...). The larger variants differ only in the width/depth coefficients and input size passed
to `EfficientNet`.

Preprocessing is part of the model (Rescaling(1/255) + Normalization), so the model takes
pixels in [0, 255] and `preprocess_input` is the identity, as in Keras.
"""
from __future__ import annotations

import math

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/"
IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
# (kernel_size, repeats, filters_in, filters_out, expand_ratio, strides) per stage;
# every block has an identity skip where shapes allow and squeeze-excitation ratio 0.25
BLOCKS = ((3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2),
          (3, 3, 40, 80, 6, 2), (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2),
          (3, 1, 192, 320, 6, 1))
CONV_INITIALIZER = {"class_name": "VarianceScaling",
                    "config": {"scale": 2.0, "mode": "fan_out",
                               "distribution": "truncated_normal"}}
DENSE_INITIALIZER = {"class_name": "VarianceScaling",
                     "config": {"scale": 1.0 / 3.0, "mode": "fan_out",
                                "distribution": "uniform"}}


def _conv(x, filters, kernel_size, name, **kwargs):
    from kgraph.keras import layers

    return layers.Conv2D(filters, kernel_size, padding=kwargs.pop("padding", "same"),
                         use_bias=kwargs.pop("use_bias", False),
                         kernel_initializer=CONV_INITIALIZER, name=name, **kwargs)(x)


def _bn_act(x, name, activation_name=None, activation="swish"):
    from kgraph.keras import layers

    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), name=name)(x)
    return layers.Activation(activation, name=activation_name)(x) if activation_name else x


def _squeeze_excite(x, filters, filters_in, name, activation):
    from kgraph.keras import layers

    squeezed = max(1, int(filters_in * 0.25))
    se = layers.GlobalAveragePooling2D(name=f"{name}se_squeeze")(x)
    shape = (filters, 1, 1) if imagenet_utils.channel_axis() == 1 else (1, 1, filters)
    se = layers.Reshape(shape, name=f"{name}se_reshape")(se)
    se = _conv(se, squeezed, 1, f"{name}se_reduce", activation=activation, use_bias=True)
    se = _conv(se, filters, 1, f"{name}se_expand", activation="sigmoid", use_bias=True)
    return layers.multiply([x, se], name=f"{name}se_excite")


def block(inputs, activation, drop_rate, name, filters_in, filters_out, kernel_size, strides,
          expand_ratio):
    """Inverted residual block: expand (1x1) -> depthwise -> squeeze-excite -> project (1x1),
    with drop-connect (Dropout over whole samples) and an Add when shapes allow."""
    from kgraph.keras import layers

    filters = filters_in * expand_ratio
    x = inputs
    if expand_ratio != 1:
        x = _conv(x, filters, 1, f"{name}expand_conv")
        x = _bn_act(x, f"{name}expand_bn", f"{name}expand_activation", activation)
    if strides == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, kernel_size),
                                 name=f"{name}dwconv_pad")(x)
    x = layers.DepthwiseConv2D(kernel_size, strides=strides, use_bias=False,
                               padding="valid" if strides == 2 else "same",
                               depthwise_initializer=CONV_INITIALIZER, name=f"{name}dwconv")(x)
    x = _bn_act(x, f"{name}bn", f"{name}activation", activation)
    x = _squeeze_excite(x, filters, filters_in, name, activation)
    x = _conv(x, filters_out, 1, f"{name}project_conv")
    x = _bn_act(x, f"{name}project_bn")
    if strides == 1 and filters_in == filters_out:
        if drop_rate > 0:
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}drop")(x)
        x = layers.add([x, inputs], name=f"{name}add")
    return x


def _stem(inputs, weights, filters, activation):
    from kgraph.keras import layers

    # named as Keras auto-names them in a fresh session, which is how the weight file has them
    x = layers.Rescaling(1.0 / 255.0, name="rescaling")(inputs)
    x = layers.Normalization(axis=imagenet_utils.channel_axis(), name="normalization")(x)
    if weights == "imagenet":  # Keras' fix-up: the file's variance is the stddev
        x = layers.Rescaling([1.0 / math.sqrt(s) for s in IMAGENET_STDDEV_RGB],
                             name="rescaling_1")(x)
    x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name="stem_conv_pad")(x)
    x = _conv(x, filters, 3, "stem_conv", strides=2, padding="valid")
    return _bn_act(x, "stem_bn", "stem_activation", activation)


def EfficientNet(width_coefficient, depth_coefficient, default_size, dropout_rate=0.2,
                 drop_connect_rate=0.2, depth_divisor=8, activation="swish",
                 model_name="efficientnet", include_top=True, weights="imagenet",
                 input_tensor=None, input_shape=None, pooling=None, classes=1000,
                 classifier_activation="softmax"):
    """Build an EfficientNet scaled by `width_coefficient` (channels) and
    `depth_coefficient` (blocks per stage); `EfficientNetB0` documents the arguments."""
    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)

    def round_filters(filters):
        filters *= width_coefficient
        rounded = max(depth_divisor, int(filters + depth_divisor / 2) // depth_divisor *
                      depth_divisor)
        return int(rounded + depth_divisor if rounded < 0.9 * filters else rounded)

    shape = imagenet_utils.input_shape_for(input_shape, default_size, 32, include_top, weights)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = _stem(inputs, weights, round_filters(32), activation)
    repeats = [int(math.ceil(depth_coefficient * stage[1])) for stage in BLOCKS]
    done, total = 0, float(sum(repeats))
    for stage, ((kernel, _, f_in, f_out, expand, strides), count) in enumerate(
            zip(BLOCKS, repeats), start=1):
        f_in, f_out = round_filters(f_in), round_filters(f_out)
        for j in range(count):
            x = block(x, activation, drop_connect_rate * done / total,
                      f"block{stage}{chr(j + 97)}_", f_in if j == 0 else f_out, f_out, kernel,
                      strides if j == 0 else 1, expand)
            done += 1
    x = _conv(x, round_filters(1280), 1, "top_conv")
    x = _bn_act(x, "top_bn", "top_activation", activation)
    x = imagenet_utils.classifier_or_pooling(
        x, include_top, pooling, classes, classifier_activation,
        dense_kwargs={"kernel_initializer": DENSE_INITIALIZER}, dropout=dropout_rate)
    file_name = model_name + (".h5" if include_top else "_notop.h5")
    return imagenet_utils.finish(inputs, x, model_name, weights, file_name,
                                 WEIGHTS_URL + file_name)


def EfficientNetB0(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                   pooling=None, classes=1000, classifier_activation="softmax"):
    """Instantiate EfficientNetB0 (5,330,571 parameters with the top, as Keras).

    Args:
        include_top: whether to include the pooling + Dropout + Dense top.
        weights: None, "imagenet" (reads `$KGRAPH_HOME/models/efficientnetb0[_notop].h5`) or
            the path of a Keras weight file.
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape ((224, 224, 3) by default), at least 32x32.
        pooling: with `include_top=False`: None, "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).

    Returns:
        A `keras.Model` taking pixels in [0, 255].

    Example:
    >>> EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3),
    ...                pooling="avg").output_shape
    (None, 1280)
    """
    return EfficientNet(1.0, 1.0, 224, 0.2, model_name="efficientnetb0",
                        include_top=include_top, weights=weights, input_tensor=input_tensor,
                        input_shape=input_shape, pooling=pooling, classes=classes,
                        classifier_activation=classifier_activation)


def preprocess_input(x, data_format=None):
    """The identity: EfficientNet preprocesses inside the model (Keras keeps this function
    for API compatibility)."""
    return x


decode_predictions = imagenet_utils.decode_predictions
