"""VGG16 ("Very Deep Convolutional Networks for Large-Scale Image Recognition") with Keras
Applications' layer names (`block{i}_conv{j}`, `block{i}_pool`, `fc1`, `fc2`,
`predictions`)."""
from __future__ import annotations

from kgraph.applications import imagenet_utils

STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convolutions)


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg16"):
    """Instantiate VGG16 (138,357,544 parameters with the top, 14,714,688 without, as Keras).

    Args:
        include_top: whether to include the Flatten + fc1 + fc2 + predictions top (then the
            input must be 224x224).
        weights: None, "imagenet" (reads `$KGRAPH_HOME/models/
            vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5`) or a Keras weight file path.
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape ((224, 224, 3) by default), at least 32x32.
        pooling: with `include_top=False`: None, "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).
        name: model name.

    Returns:
        A `keras.Model`.

    Example:
    >>> VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
    (None, 1, 1, 512)
    """
    return build_vgg(STAGES, "vgg16", include_top, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, name)


def build_vgg(stages, family, include_top, weights, input_tensor, input_shape, pooling,
              classes, classifier_activation, name):
    """A VGG network of `stages` ((filters, convolutions) per block) with Keras' layer names
    and the `{family}_weights_tf_dim_ordering_tf_kernels[_notop].h5` weight files."""
    from kgraph.keras import layers

    imagenet_utils.check_arguments(weights, include_top, classes, pooling,
                                   classifier_activation)
    shape = imagenet_utils.input_shape_for(input_shape, 224, 32, include_top, weights)
    inputs = imagenet_utils.image_input(input_tensor, shape)
    x = inputs
    for stage, (filters, convolutions) in enumerate(stages, start=1):
        for conv in range(1, convolutions + 1):
            x = layers.Conv2D(filters, 3, activation="relu", padding="same",
                              name=f"block{stage}_conv{conv}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{stage}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.classifier_or_pooling(
            x, False, pooling, classes, classifier_activation,
            pool_names=("global_average_pooling2d", "global_max_pooling2d"))
    suffix = "" if include_top else "_notop"
    file_name = f"{family}_weights_tf_dim_ordering_tf_kernels{suffix}.h5"
    url = f"https://storage.googleapis.com/tensorflow/keras-applications/{family}/"
    return imagenet_utils.finish(inputs, x, name, weights, file_name, url + file_name)


preprocess_input = imagenet_utils.caffe_preprocess_input


decode_predictions = imagenet_utils.decode_predictions
