"""`keras.utils`."""
import random as _python_random

import numpy as _np

from kgraph.keras.serialization import CustomObjectScope, custom_object_scope  # noqa: F401
from kgraph.keras.saving.serialization_lib import (  # noqa: F401 - keras.utils exports them too
    deserialize_keras_object, get_registered_name, get_registered_object,
    register_keras_serializable, serialize_keras_object)
from kgraph.keras.utils.plotting import model_to_dot, plot_model  # noqa: F401
from kgraph.keras.utils.progbar import Progbar  # noqa: F401
from kgraph.keras.utils.py_dataset import PyDataset, Sequence  # noqa: F401
from kgraph.keras.utils.dataset_utils import (audio_dataset_from_directory,  # noqa: F401
                                              pack_x_y_sample_weight, split_dataset,
                                              text_dataset_from_directory,
                                              timeseries_dataset_from_array,
                                              unpack_x_y_sample_weight)
from kgraph.keras.utils.file_utils import get_file  # noqa: F401
from kgraph.keras.layers.preprocessing.feature_space import FeatureSpace  # noqa: F401
from kgraph.keras.utils.image_dataset import image_dataset_from_directory  # noqa: F401
from kgraph.keras.utils.image_utils import (array_to_img, img_to_array, load_img,  # noqa: F401
                                            save_img)
from kgraph.keras.utils.config import Config  # noqa: F401
from kgraph.keras.utils import legacy  # noqa: F401
from kgraph.keras.utils.dtype_utils import standardize_dtype  # noqa: F401
from kgraph.keras.utils.global_state import (clear_session,  # noqa: F401
                                             disable_interactive_logging,
                                             enable_interactive_logging,
                                             is_interactive_logging_enabled)


def get_custom_objects():
    """The global dict of custom objects (`keras.utils.get_custom_objects`): entries added to
    it are found by name when configs and files are loaded, as
    `register_keras_serializable` makes them.

    Example:
        >>> keras.utils.get_custom_objects()["MyLayer"] = MyLayer
    """
    from kgraph.keras.serialization import GLOBAL_CUSTOM_OBJECTS

    return GLOBAL_CUSTOM_OBJECTS


def is_keras_tensor(x):
    """True if `x` is a symbolic `KerasTensor` (a functional model's `keras.Input` or what
    layers return on one), not an array or a variable."""
    from kgraph.keras.layers.tensors import KerasTensor

    return isinstance(x, KerasTensor)


def get_source_inputs(tensor):
    """The `keras.Input` tensors that `tensor` was computed from, each once, in the order
    the layer graph reaches them (`keras.utils.get_source_inputs`).

    Args:
        tensor: a KerasTensor. Anything without a layer history is returned as it is.

    Returns:
        A list of KerasTensors.
    """
    if not hasattr(tensor, "_keras_history"):
        return tensor
    layer, node_index, _ = tensor._keras_history or (None, 0, 0)
    if layer is None or not layer._inbound_nodes:
        return [tensor]
    node = layer._inbound_nodes[node_index]
    if not node.inputs:  # an input layer's node
        from kgraph.keras.tree import flatten

        return flatten(node.outputs)
    sources = []
    for parent in node.inputs:
        for source in get_source_inputs(parent):
            if all(source is not known for known in sources):
                sources.append(source)
    return sources


def set_random_seed(seed):
    """Seed Python's, numpy's and kgraph's generators in one call (`keras.utils`)."""
    from kgraph import random as krandom

    _python_random.seed(seed)
    _np.random.seed(seed)
    krandom.set_seed(seed)


def to_categorical(x, num_classes=None):
    """One-hot rows of the class indices `x` (`keras.utils.to_categorical`); a trailing axis
    of size 1 is dropped, as Keras does. Returns float32."""
    y = _np.asarray(x, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    num_classes = int(num_classes) if num_classes is not None else int(y.max()) + 1
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"to_categorical: class indices must be in [0, {num_classes}). "
                         f"Received: min {y.min()}, max {y.max()}")
    out = _np.zeros((y.size, num_classes), dtype="float32")
    out[_np.arange(y.size), y] = 1
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """`x` divided by its `order`-norm along `axis`; zero vectors stay zero (`keras.utils`)."""
    x = _np.asarray(x)
    norm = _np.atleast_1d(_np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / _np.expand_dims(norm, axis)


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or truncate) a list of sequences to one length (`keras.utils.pad_sequences`).

    Args:
        sequences: list of sequences (lists or arrays, possibly of per-step vectors).
        maxlen: the length; default the longest sequence.
        dtype: of the result.
        padding, truncating: `"pre"` or `"post"`: where values are added or removed.
        value: the padding value.

    Returns:
        An array of shape `(len(sequences), maxlen) + step shape`.

    Example:
        >>> pad_sequences([[1, 2], [3]], maxlen=3)  # [[0, 1, 2], [0, 0, 3]]
    """
    for name, where in (("padding", padding), ("truncating", truncating)):
        if where not in ("pre", "post"):
            raise ValueError(f"pad_sequences: {name} must be 'pre' or 'post'. "
                             f"Received: {name}={where!r}")
    rows = [_np.asarray(s) for s in sequences]
    lengths = [len(r) for r in rows]
    maxlen = max(lengths, default=0) if maxlen is None else int(maxlen)
    step = next((r.shape[1:] for r in rows if len(r)), ())
    out = _np.full((len(rows), maxlen) + step, value, dtype=dtype)
    for i, row in enumerate(rows):
        if not len(row) or not maxlen:
            continue
        kept = row[-maxlen:] if truncating == "pre" else row[:maxlen]
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, -len(kept):] = kept
    return out
