"""MobileNetV2 ("Inverted Residuals and Linear Bottlenecks") with Keras Applications' layer
names (`Conv1`, `block_{i}_expand`, `expanded_conv_depthwise`, ...), so Keras weight files
load."""
from __future__ import annotations

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
# (filters, stride, expansion) of the 17 inverted residual blocks
BLOCKS = ((16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6),
          (64, 2, 6), (64, 1, 6), (64, 1, 6), (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6),
          (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6))
ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
SIZES = (96, 128, 160, 192, 224)


def make_divisible(value, divisor=8):
    """`value` rounded to a multiple of `divisor`, never more than 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _bn_relu6(x, name, relu_name=None):
    from kgraph.keras import layers

    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), epsilon=1e-3,
                                  momentum=0.999, name=name)(x)
    return layers.ReLU(6.0, name=relu_name)(x) if relu_name else x


def inverted_res_block(inputs, expansion, stride, alpha, filters, block_id):
    """Expand (1x1) -> depthwise 3x3 -> project (1x1, linear), with a residual Add when the
    shape allows. Block 0 has no expansion and the prefix `expanded_conv_`."""
    from kgraph.keras import layers

    in_channels = inputs.shape[imagenet_utils.channel_axis()]
    out_channels = make_divisible(int(filters * alpha), 8)
    prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
    x = inputs
    if block_id:
        x = layers.Conv2D(expansion * in_channels, 1, padding="same", use_bias=False,
                          name=f"{prefix}expand")(x)
        x = _bn_relu6(x, f"{prefix}expand_BN", f"{prefix}expand_relu")
    if stride == 2:
        x = layers.ZeroPadding2D(padding=imagenet_utils.correct_pad(x, 3), name=f"{prefix}pad")(x)
    x = layers.DepthwiseConv2D(3, strides=stride, use_bias=False,
                               padding="same" if stride == 1 else "valid",
                               name=f"{prefix}depthwise")(x)
    x = _bn_relu6(x, f"{prefix}depthwise_BN", f"{prefix}depthwise_relu")
    x = layers.Conv2D(out_channels, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = _bn_relu6(x, f"{prefix}project_BN")
    if in_channels == out_channels and stride == 1:
        return layers.Add(name=f"{prefix}add")([inputs, x])
    return x


def _default_size(input_shape):
    if input_shape is None:
        return 224
    rows, cols = (input_shape[1], input_shape[2]) if imagenet_utils.channel_axis() == 1 else \
        (input_shape[0], input_shape[1])
    return rows if rows == cols and rows in SIZES else 224


def MobileNetV2(input_shape=None, alpha=1.0, include_top=True, weights="imagenet",
                input_tensor=None, pooling=None, classes=1000, classifier_activation="softmax",
                name=None):
    """Instantiate MobileNetV2 (3,538,984 parameters at alpha=1.0 with the top, as Keras).

    Args:
        input_shape: image shape, at least 32x32; (224, 224, 3) by default.
        alpha: width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 have ImageNet weights).
        include_top: whether to include the GlobalAveragePooling2D + Dense top.
        weights: None, "imagenet" (reads `$KGRAPH_HOME/models/
            mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{alpha}_{rows}[_no_top].h5`) or
            the path of a Keras weight file.
        input_tensor: optional `keras.Input` to use as the image input.
        pooling: with `include_top=False`: None, "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).
        name: model name (default `mobilenetv2_{alpha:.2f}_{rows}`).

    Returns:
        A `keras.Model`.

    Example:
    >>> MobileNetV2(weights=None, input_shape=(32, 32, 3), classes=10).output_shape
    (None, 10)
    """
    from kgraph.keras import layers

    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    if weights == "imagenet" and alpha not in ALPHAS:
        raise ValueError(f"If imagenet weights are being loaded, alpha must be one of {ALPHAS}. "
                         f"Received: alpha={alpha!r}")
    shape = imagenet_utils.input_shape_for(input_shape, _default_size(input_shape), 32,
                                           include_top, weights, open_size=False)
    rows = _default_size(shape)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = layers.Conv2D(make_divisible(32 * alpha, 8), 3, strides=2, padding="same",
                      use_bias=False, name="Conv1")(inputs)
    x = _bn_relu6(x, "bn_Conv1", "Conv1_relu")
    for block_id, (filters, stride, expansion) in enumerate(BLOCKS):
        x = inverted_res_block(x, expansion, stride, alpha, filters, block_id)
    last = make_divisible(1280 * alpha, 8) if alpha > 1.0 else 1280
    x = layers.Conv2D(last, 1, use_bias=False, name="Conv_1")(x)
    x = _bn_relu6(x, "Conv_1_bn", "out_relu")
    x = imagenet_utils.classifier_or_pooling(
        x, include_top, pooling, classes, classifier_activation,
        pool_names=("global_average_pooling2d", "global_max_pooling2d"))
    suffix = "" if include_top else "_no_top"
    file_name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_{rows}{suffix}.h5"
    return imagenet_utils.finish(inputs, x, name or f"mobilenetv2_{alpha:0.2f}_{rows}", weights,
                                 file_name, WEIGHTS_URL + file_name)


def preprocess_input(x, data_format=None):
    """Scale pixels from [0, 255] to [-1, 1] ("tf" mode)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
