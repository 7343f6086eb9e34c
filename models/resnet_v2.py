"""ResNet50V2, ResNet101V2 and ResNet152V2 ("Identity Mappings in Deep Residual Networks"):
pre-activation residual blocks (batch norm and ReLU before each convolution, nothing after
the addition), with Keras Applications' layer names, so Keras weight files load.

The three depths differ only in the number of blocks per stage. In each stage the first
block projects the shortcut with a 1x1 convolution and the last block strides (stages 2-4),
its shortcut subsampled by a 1x1 max pooling.
"""
from __future__ import annotations

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
BLOCKS = {"resnet50v2": (3, 4, 6, 3), "resnet101v2": (3, 4, 23, 3),
          "resnet152v2": (3, 8, 36, 3)}
_EPSILON = 1.001e-5


def _bn_relu(x, name):
    """BatchNormalization `name_bn` + ReLU `name_relu`."""
    from kgraph.keras import layers

    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), epsilon=_EPSILON,
                                  name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def preactivation_block(x, filters, strides=1, conv_shortcut=False, name=None):
    """BN-ReLU `{name}_preact`, then 1x1 -> 3x3 (strided) -> 1x1 (4*filters) convolutions,
    added to the shortcut: a 1x1 projection of the pre-activation when `conv_shortcut`, else
    the block input (1x1 max-pooled when strided). Layers `{name}_{0..3}_conv`, `_out`."""
    from kgraph.keras import layers

    preact = _bn_relu(x, f"{name}_preact")
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=strides, name=f"{name}_0_conv")(preact)
    else:
        shortcut = layers.MaxPooling2D(1, strides=strides)(x) if strides > 1 else x
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = _bn_relu(x, f"{name}_1")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"{name}_2_conv")(x)
    x = _bn_relu(x, f"{name}_2")
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def _stage(x, filters, blocks, strides, name):
    x = preactivation_block(x, filters, conv_shortcut=True, name=f"{name}_block1")
    for i in range(2, blocks):
        x = preactivation_block(x, filters, name=f"{name}_block{i}")
    return preactivation_block(x, filters, strides=strides, name=f"{name}_block{blocks}")


def ResNetV2(model_name, include_top=True, weights="imagenet", input_tensor=None,
             input_shape=None, pooling=None, classes=1000, classifier_activation="softmax"):
    """Build a ResNet v2 of the depth `model_name` names ("resnet50v2", "resnet101v2",
    "resnet152v2"); the public builders below document the arguments."""
    from kgraph.keras import layers

    if model_name not in BLOCKS:
        raise ValueError(f"Unknown ResNetV2. Received: model_name={model_name!r}; expected "
                         f"one of {sorted(BLOCKS)}")
    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    shape = imagenet_utils.input_shape_for(input_shape, 224, 32, include_top, weights)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(inputs)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)  # no BN: the blocks pre-activate
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (filters, blocks) in enumerate(zip((64, 128, 256, 512), BLOCKS[model_name])):
        x = _stage(x, filters, blocks, 1 if stage == 3 else 2, f"conv{stage + 2}")
    x = _bn_relu(x, "post")
    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation)
    suffix = "" if include_top else "_notop"
    file_name = f"{model_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    return imagenet_utils.finish(inputs, x, model_name, weights, file_name,
                                 WEIGHTS_URL + file_name)


_DOC = """Instantiate the {name} architecture (Keras Applications' layer names and parameter
    count: {params:,} with the top). Its inputs are scaled to [-1, 1] (`preprocess_input`).

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


def ResNet50V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
               pooling=None, classes=1000, classifier_activation="softmax"):
    return ResNetV2("resnet50v2", include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation)


def ResNet101V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax"):
    return ResNetV2("resnet101v2", include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation)


def ResNet152V2(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax"):
    return ResNetV2("resnet152v2", include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation)


for _builder, _params in ((ResNet50V2, 25_613_800), (ResNet101V2, 44_675_560),
                          (ResNet152V2, 60_380_648)):
    _builder.__doc__ = _DOC.format(
        name=_builder.__name__, params=_params,
        file=f"{_builder.__name__.lower()}_weights_tf_dim_ordering_tf_kernels.h5")


def preprocess_input(x, data_format=None):
    """ResNet v2 preprocessing: images in [0, 255] scaled to [-1, 1] (mode "tf"); see
    `imagenet_utils.preprocess_input`."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


decode_predictions = imagenet_utils.decode_predictions
