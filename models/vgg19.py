"""VGG19 (VGG16 with four convolutions in each of the last three blocks), Keras Applications'
layer names (`block{i}_conv{j}`, `block{i}_pool`, `fc1`, `fc2`, `predictions`) and weight
files."""
from __future__ import annotations

from kgraph.applications import imagenet_utils
from kgraph.applications.vgg16 import build_vgg

STAGES = ((64, 2), (128, 2), (256, 4), (512, 4), (512, 4))  # (filters, convolutions)


def VGG19(include_top=True, weights="imagenet", input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name="vgg19"):
    """Instantiate VGG19 (143,667,240 parameters with the top, 20,024,384 without, as Keras).

    Args:
        include_top: whether to include the Flatten + fc1 + fc2 + predictions top (then the
            input must be 224x224).
        weights: None, "imagenet" (reads `$KGRAPH_HOME/models/
            vgg19_weights_tf_dim_ordering_tf_kernels[_notop].h5`) or a Keras weight file path.
        input_tensor: optional `keras.Input` to use as the image input.
        input_shape: image shape ((224, 224, 3) by default), at least 32x32.
        pooling: with `include_top=False`: None, "avg" or "max".
        classes: number of classes of the top.
        classifier_activation: activation of the top (None for logits).
        name: model name.

    Returns:
        A `keras.Model`.

    Example:
    >>> VGG19(weights=None, include_top=False, input_shape=(32, 32, 3)).output_shape
    (None, 1, 1, 512)
    """
    return build_vgg(STAGES, "vgg19", include_top, weights, input_tensor, input_shape, pooling,
                     classes, classifier_activation, name)


preprocess_input = imagenet_utils.caffe_preprocess_input


decode_predictions = imagenet_utils.decode_predictions
