"""What every ImageNet application shares: input-shape checks, the classifier or pooling top,
weight files (no network: `weights="imagenet"` reads `$KGRAPH_HOME/models/<file>`),
`preprocess_input` and `decode_predictions`.
"""
from __future__ import annotations

import json
import os

import numpy as np

CLASS_INDEX_FILE = "imagenet_class_index.json"
CLASS_INDEX_URL = ("https://storage.googleapis.com/download.tensorflow.org/data/"
                   "imagenet_class_index.json")
_CLASS_INDEX = {}  # path -> {"0": ["n01440764", "tench"], ...}
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class WeightsNotFoundError(FileNotFoundError):
    """A pre-trained weight file (or the ImageNet class index) is not on this machine; the
    message names the exact file to place and where to download it on a connected machine."""


def models_dir() -> str:
    """`$KGRAPH_HOME/models`, where pre-trained weight files and the class index live."""
    from kgraph import config

    return os.path.join(config.kgraph_home(), "models")


def local_file(file_name, url, what) -> str:
    """The path of `file_name` in `models_dir()`; raises `WeightsNotFoundError` naming it."""
    path = os.path.join(models_dir(), file_name)
    if not os.path.isfile(path):
        raise WeightsNotFoundError(
            f"{what} needs the file {path!r}, which does not exist. kgraph never downloads: "
            f"fetch {url} on a connected machine and copy it to that exact path (or set "
            f"KGRAPH_HOME to the directory whose models/ folder holds it).")
    return path


def check_arguments(weights, include_top, classes, pooling, classifier_activation):
    """Keras' argument rules shared by every application (errors quote the bad value)."""
    if not (weights in ("imagenet", None) or (isinstance(weights, (str, os.PathLike))
                                              and os.path.exists(weights))):
        raise ValueError(f"The `weights` argument should be either None (random "
                         f"initialization), 'imagenet' (pre-training on ImageNet), or the path "
                         f"to the weights file to be loaded. Received: weights={weights!r}")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"If using `weights='imagenet'` with `include_top=True`, `classes` "
                         f"should be 1000. Received: classes={classes!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(f"`pooling` must be None, 'avg' or 'max'. Received: pooling={pooling!r}")
    if weights is not None and include_top and classifier_activation not in (None, "softmax"):
        raise ValueError(f"Only `None` and `softmax` activations are allowed for the "
                         f"`classifier_activation` argument when using pretrained weights. "
                         f"Received: classifier_activation={classifier_activation!r}")


def input_shape_for(input_shape, default_size, min_size, include_top, weights,
                    open_size=True):
    """The image shape of the model's Input (Keras' `obtain_input_shape`, channels_last or
    channels_first from `keras.config.image_data_format()`). Without `input_shape` and without
    the top, the height and width are left open (None), as Keras leaves them, when `open_size`
    (the model runs at any size); otherwise the default size is used."""
    from kgraph import config

    first = config.image_data_format() == "channels_first"
    default = (3, default_size, default_size) if first else (default_size, default_size, 3)
    if weights == "imagenet" and include_top:
        if input_shape is not None and tuple(input_shape) != default:
            raise ValueError(f"When setting `include_top=True` and loading `imagenet` weights, "
                             f"`input_shape` should be {default}. Received: "
                             f"input_shape={input_shape!r}")
        return default
    if input_shape is None:
        if open_size and not include_top:
            return (3, None, None) if first else (None, None, 3)
        # strided 'same' convolutions and 'same' pooling need static image sizes in kgraph,
        # so the models that have them are built at the default size
        return default
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be a tuple of three integers. Received: "
                         f"input_shape={input_shape!r}")
    channels, spatial = (input_shape[0], input_shape[1:]) if first else \
        (input_shape[-1], input_shape[:2])
    if weights == "imagenet" and channels != 3:
        raise ValueError(f"The input must have 3 channels. Received: input_shape={input_shape!r}")
    if any(size is not None and size < min_size for size in spatial):
        raise ValueError(f"Input size must be at least {min_size}x{min_size}. Received: "
                         f"input_shape={input_shape!r}")
    if include_top and None in input_shape:
        raise ValueError(f"If `include_top` is True, you should specify a static `input_shape`. "
                         f"Received: input_shape={input_shape!r}")
    return input_shape


def image_input(input_tensor, input_shape):
    """`keras.Input(shape=input_shape)`, or the given `input_tensor`."""
    from kgraph import keras

    return keras.Input(shape=input_shape) if input_tensor is None else input_tensor


def channel_axis() -> int:
    from kgraph import config

    return 1 if config.image_data_format() == "channels_first" else -1


def correct_pad(x, kernel_size):
    """Padding ((top, bottom), (left, right)) before a stride-2 'valid' convolution that
    matches TensorFlow's 'same' (more padding after than before on even sizes)."""
    axis = 2 if channel_axis() == 1 else 1
    size = tuple(x.shape[axis:axis + 2])
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    half = kernel_size // 2
    return ((half - adjust[0], half), (half - adjust[1], half))


def classifier_or_pooling(x, include_top, pooling, classes, classifier_activation,
                          pool_names=("avg_pool", "max_pool"), dense_kwargs=None,
                          dropout=None):
    """The top of an application: GlobalAveragePooling2D (+Dropout) + Dense "predictions"
    when `include_top`, else the `pooling` requested (or none)."""
    from kgraph.keras import layers

    avg_name, max_name = pool_names
    if include_top:
        x = layers.GlobalAveragePooling2D(name=avg_name)(x)
        if dropout:
            x = layers.Dropout(dropout, name="top_dropout")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions",
                            **(dense_kwargs or {}))(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x


def finish(inputs, outputs, name, weights, weight_file, url):
    """The Model, with its weights loaded: `weight_file` from `models_dir()` for
    `weights="imagenet"`, the given path otherwise."""
    from kgraph import keras

    model = keras.Model(inputs, outputs, name=name)
    if weights == "imagenet":
        load_weights(model, local_file(weight_file, url, f"{name}(weights='imagenet')"))
    elif weights is not None:
        load_weights(model, os.fspath(weights))
    return model


def load_weights(model, path):
    """Load a Keras weight file into an application model. Legacy HDF5 files (the Keras
    Applications downloads) load by layer name, and every layer of the model that has weights
    must be in the file; `.weights.h5` and `.keras` files load as `model.load_weights` does."""
    from kgraph.keras.saving import h5_safe
    from kgraph.keras.saving.errors import WeightMismatchError

    legacy_names = None
    if not path.endswith(".keras"):
        with h5_safe.open_h5(path) as f:
            if h5_safe.has_string_list(f, "layer_names"):
                legacy_names = set(h5_safe.read_string_list(f, "layer_names"))
    if legacy_names is None:
        return model.load_weights(path)
    missing = [layer.name for layer in model.layers if layer.weights and
               layer.name not in legacy_names]
    if missing:
        raise WeightMismatchError(
            f"{path}: the file has no weights for {len(missing)} layers of model "
            f"{model.name!r} (first: {missing[:5]}). Is it the file for this architecture, "
            f"with or without the top as built (include_top)?")
    model.load_weights(path, by_name=True)


# -- preprocess_input / decode_predictions -----------------------------------------------
def preprocess_input(x, data_format=None, mode="caffe"):
    """Preprocess a batch of images with values in [0, 255].

    Args:
        x: numpy array or symbolic tensor, 3D or 4D, 3 channels.
        data_format: "channels_last" or "channels_first"; None uses
            `keras.config.image_data_format()`.
        mode: "caffe" (RGB -> BGR, minus the ImageNet mean per channel, no scaling),
            "tf" (scaled to [-1, 1]) or "torch" (scaled to [0, 1], then normalized per
            channel with the ImageNet mean and standard deviation).

    Returns:
        The preprocessed images (float32 for integer numpy input).

    Example:
    >>> preprocess_input(np.full((1, 2, 2, 3), 255.0), mode="tf").max()
    1.0
    """
    from kgraph import config

    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(f"Expected mode to be one of 'caffe', 'tf' or 'torch'. Received: "
                         f"mode={mode!r}")
    data_format = data_format or config.image_data_format()
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(f"Expected data_format to be one of 'channels_first' or "
                         f"'channels_last'. Received: data_format={data_format!r}")
    if isinstance(x, np.ndarray) and not np.issubdtype(x.dtype, np.floating):
        x = x.astype(config.floatx())
    if mode == "tf":
        return x / 127.5 - 1.0
    axis = (0 if len(x.shape) == 3 else 1) if data_format == "channels_first" else -1
    shape = [1] * len(x.shape)
    shape[axis] = 3
    if mode == "torch":
        mean = np.reshape(_TORCH_MEAN, shape).astype("float32")
        return (x / 255.0 - mean) / np.reshape(_TORCH_STD, shape).astype("float32")
    return _flip_channels(x, axis) - np.reshape(_CAFFE_MEAN_BGR, shape).astype("float32")


def caffe_preprocess_input(x, data_format=None):
    """Caffe-style preprocessing of ResNet and VGG (RGB -> BGR, minus the ImageNet channel
    means, no scaling); see `preprocess_input`."""
    return preprocess_input(x, data_format=data_format, mode="caffe")


def _flip_channels(x, axis):
    """RGB <-> BGR for numpy arrays, traced tensors and Keras tensors (the last as an op layer,
    as arithmetic on Keras tensors makes one)."""
    if isinstance(x, np.ndarray):
        return np.flip(x, axis=axis)
    from kgraph import ops
    from kgraph.keras.layers.base import KerasTensor
    from kgraph.keras.layers.core import _op_layer

    if isinstance(x, KerasTensor):
        return _op_layer(lambda t: ops.flip(t, axis=axis), x)
    return ops.flip(x, axis=axis)


def decode_predictions(preds, top=5):
    """Decode ImageNet predictions into `(class_name, class_description, score)` tuples.

    The class index is read from `$KGRAPH_HOME/models/imagenet_class_index.json` (the file
    Keras downloads); kgraph never downloads it and says where to put it when it is missing.

    Args:
        preds: array of shape (samples, 1000).
        top: how many top guesses to return per sample.

    Returns:
        One list of `top` tuples per sample, best first.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(f"`decode_predictions` expects a batch of predictions (i.e. a 2D "
                         f"array of shape (samples, 1000)). Received array with shape: "
                         f"{preds.shape}")
    index = _class_index()
    results = []
    for row in preds:
        best = np.argsort(row)[-top:][::-1]
        results.append([tuple(index[str(i)]) + (row[i],) for i in best])
    return results


def _class_index():
    path = local_file(CLASS_INDEX_FILE, CLASS_INDEX_URL, "decode_predictions()")
    if path not in _CLASS_INDEX:
        with open(path) as f:
            index = json.load(f)
        if not isinstance(index, dict) or any(str(i) not in index for i in range(1000)):
            raise ValueError(f"{path}: expected a JSON object mapping '0'..'999' to "
                             f"[wordnet_id, description]")
        _CLASS_INDEX[path] = index
    return _CLASS_INDEX[path]
