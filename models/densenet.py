"""DenseNet121, DenseNet169 and DenseNet201 ("Densely Connected Convolutional Networks"):
dense blocks whose every layer (BN-ReLU-1x1 conv to 128 channels, BN-ReLU-3x3 conv to 32)
concatenates its 32 new channels to its input, and transitions (BN-ReLU-1x1 conv halving the
channels, 2x2 average pooling) between them, with Keras Applications' layer names, so Keras
weight files load. The three depths differ only in the number of layers per block.
"""
from __future__ import annotations

from kgraph.applications import imagenet_utils

WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/densenet/"
BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32),
          "densenet201": (6, 12, 48, 32)}
GROWTH_RATE = 32
_EPSILON = 1.001e-5


def _bn_relu(x, name):
    """BatchNormalization `{name}_bn` + ReLU `{name}_relu`."""
    from kgraph.keras import layers

    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), epsilon=_EPSILON,
                                  name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def conv_block(x, growth_rate, name):
    """One dense layer: `{name}_0` BN-ReLU, 1x1 conv `{name}_1_conv` (4 * growth_rate),
    `{name}_1` BN-ReLU, 3x3 conv `{name}_2_conv` (growth_rate), concatenated to `x`."""
    from kgraph.keras import layers

    new = _bn_relu(x, f"{name}_0")
    new = layers.Conv2D(4 * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(new)
    new = _bn_relu(new, f"{name}_1")
    new = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False,
                        name=f"{name}_2_conv")(new)
    return layers.Concatenate(axis=imagenet_utils.channel_axis(),
                              name=f"{name}_concat")([x, new])


def transition_block(x, reduction, name):
    """BN-ReLU, a 1x1 conv keeping `reduction` of the channels, 2x2 average pooling."""
    from kgraph.keras import layers

    channels = x.shape[imagenet_utils.channel_axis()]
    x = _bn_relu(x, name)
    x = layers.Conv2D(int(channels * reduction), 1, use_bias=False, name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def DenseNet(model_name, include_top=True, weights="imagenet", input_tensor=None,
             input_shape=None, pooling=None, classes=1000, classifier_activation="softmax",
             name=None):
    """Build the DenseNet `model_name` names ("densenet121", "densenet169", "densenet201");
    the public builders below document the arguments."""
    from kgraph.keras import layers

    if model_name not in BLOCKS:
        raise ValueError(f"Unknown DenseNet. Received: model_name={model_name!r}; expected "
                         f"one of {sorted(BLOCKS)}")
    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    shape = imagenet_utils.input_shape_for(input_shape, 224, 32, include_top, weights)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)))(inputs)
    x = layers.Conv2D(64, 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = _bn_relu(x, "conv1")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for stage, count in enumerate(BLOCKS[model_name]):
        for i in range(count):
            x = conv_block(x, GROWTH_RATE, name=f"conv{stage + 2}_block{i + 1}")
        if stage < 3:
            x = transition_block(x, 0.5, name=f"pool{stage + 2}")
    x = layers.BatchNormalization(axis=imagenet_utils.channel_axis(), epsilon=_EPSILON,
                                  name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = imagenet_utils.classifier_or_pooling(x, include_top, pooling, classes,
                                             classifier_activation)
    suffix = "" if include_top else "_notop"
    file_name = f"{model_name}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    return imagenet_utils.finish(inputs, x, name or model_name, weights, file_name,
                                 WEIGHTS_URL + file_name)


_DOC = """Instantiate the {name} architecture (Keras Applications' layer names and parameter
    count: {params:,} with the top). Its inputs are scaled as torchvision's
    (`preprocess_input`: [0, 1], then the ImageNet mean and standard deviation).

    Args:
        include_top: whether to include the GlobalAveragePooling2D + Dense "predictions" top.
        weights: None (random), "imagenet" (reads `$KGRAPH_HOME/models/{file}` and says so
            when it is missing), or the path of a Keras weight file.
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape (at least 32x32); without it and without the top the size
            is left open, as in Keras.
        pooling: with `include_top=False`: None (4D feature map), "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).
        name: the model's name.

    Returns:
        A `keras.Model`.

    Example:
    >>> model = {name}(weights=None, include_top=False, input_shape=(32, 32, 3), pooling="avg")
    >>> model.output_shape[-1] > 0
    True
    """


def DenseNet121(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet121"):
    return DenseNet("densenet121", include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name)


def DenseNet169(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet169"):
    return DenseNet("densenet169", include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name)


def DenseNet201(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
                pooling=None, classes=1000, classifier_activation="softmax",
                name="densenet201"):
    return DenseNet("densenet201", include_top, weights, input_tensor, input_shape, pooling,
                    classes, classifier_activation, name)


for _builder, _params in ((DenseNet121, 8_062_504), (DenseNet169, 14_307_880),
                          (DenseNet201, 20_242_984)):
    _builder.__doc__ = _DOC.format(
        name=_builder.__name__, params=_params,
        file=f"{_builder.__name__.lower()}_weights_tf_dim_ordering_tf_kernels.h5")


def preprocess_input(x, data_format=None):
    """Scale pixels to [0, 1], then normalize each channel by the ImageNet mean and standard
    deviation ("torch" mode)."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="torch")


decode_predictions = imagenet_utils.decode_predictions
