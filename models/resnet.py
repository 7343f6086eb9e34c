"""ResNet50, ResNet101 and ResNet152 (v1, "Deep Residual Learning for Image Recognition"),
built by one function with Keras Applications' layer names, so Keras weight files load.

Only the number of bottleneck blocks per stage differs between the three depths.
"""
from __future__ import annotations

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
BLOCKS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3)}
_EPSILON = 1.001e-5


def _conv_bn(x, filters, kernel_size, name, strides=1, padding="valid", relu=True):
    """Conv2D `name_conv` + BatchNormalization `name_bn` (+ ReLU `name_relu`)."""
    from kgraph.keras import layers

    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                      name=f"{name}_conv")(x)
    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), epsilon=_EPSILON,
                                  name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def bottleneck_block(x, filters, strides=1, conv_shortcut=True, name=None):
    """1x1 -> 3x3 -> 1x1 (4*filters) convolutions plus a shortcut (a 1x1 projection when
    `conv_shortcut`), then ReLU. Layers are named `{name}_{0..3}_{conv,bn}`."""
    from kgraph.keras import layers

    shortcut = _conv_bn(x, 4 * filters, 1, f"{name}_0", strides=strides, relu=False) \
        if conv_shortcut else x
    x = _conv_bn(x, filters, 1, f"{name}_1", strides=strides)
    x = _conv_bn(x, filters, 3, f"{name}_2", padding="same")
    x = _conv_bn(x, 4 * filters, 1, f"{name}_3", relu=False)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _stage(x, filters, blocks, strides, name):
    x = bottleneck_block(x, filters, strides=strides, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = bottleneck_block(x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def ResNet(model_name, include_top=True, weights="imagenet", input_tensor=None,
           input_shape=None, pooling=None, classes=1000, classifier_activation="softmax"):
    """Build a ResNet v1 of the depth `model_name` names ("resnet50", "resnet101",
    "resnet152"); the public builders below document the arguments."""
    from kgraph.keras import layers

    if model_name not in BLOCKS:
        raise ValueError(f"Unknown ResNet. Received: model_name={model_name!r}; expected one of "
                         f"{sorted(BLOCKS)}")
    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    shape = imagenet_utils.input_shape_for(input_shape, 224, 32, include_top, weights)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = _conv_bn(x, 64, 7, "conv1", strides=2)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(zip((64, 128, 256, 512), BLOCKS[model_name])):
        x = _stage(x, filters, blocks, 1 if stage == 0 else 2, f"conv{stage + 2}")
    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation)
    suffix = "" if include_top else "_notop"
    file_name = f"{model_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    return imagenet_utils.finish(inputs, x, model_name, weights, file_name,
                                 WEIGHTS_URL + file_name)


_DOC = """Instantiate the {name} architecture (Keras Applications' layer names and parameter
    count: {params:,} with the top).

    Args:
        include_top: whether to include the GlobalAveragePooling2D + Dense "predictions" top.
        weights: None (random), "imagenet" (reads
            `$KGRAPH_HOME/models/{file}` and says so when it is missing), or the path of a
            Keras weight file (legacy `.h5` loads by layer name, `.weights.h5`, `.keras`).
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape; only when `include_top=False` may it differ from
            (224, 224, 3) (at least 32x32).
        pooling: with `include_top=False`: None (4D feature map), "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).

    Returns:
        A `keras.Model`.

    Example:
    >>> model = {name}(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    >>> model.output_shape
    (None, 2048)
    """


def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax"):
    return ResNet("resnet50", include_top, weights, input_tensor, input_shape, pooling, classes,
                  classifier_activation)


def ResNet101(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax"):
    return ResNet("resnet101", include_top, weights, input_tensor, input_shape, pooling,
                  classes, classifier_activation)


def ResNet152(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax"):
    return ResNet("resnet152", include_top, weights, input_tensor, input_shape, pooling,
                  classes, classifier_activation)


for _builder, _params in ((ResNet50, 25_636_712), (ResNet101, 44_707_176),
                          (ResNet152, 60_419_944)):
    _builder.__doc__ = _DOC.format(
        name=_builder.__name__, params=_params,
        file=f"{_builder.__name__.lower()}_weights_tf_dim_ordering_tf_kernels.h5")


preprocess_input = imagenet_utils.caffe_preprocess_input


decode_predictions = imagenet_utils.decode_predictions
