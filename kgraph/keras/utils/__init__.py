"""`keras.utils`."""
import random as _python_random

import numpy as _np

from kgraph.keras.serialization import CustomObjectScope, custom_object_scope  # noqa: F401
from kgraph.keras.utils.progbar import Progbar  # noqa: F401


def set_random_seed(seed):
    """Seed Python's, numpy's and kgraph's generators in one call (`keras.utils`)."""
    from kgraph import random as krandom

    _python_random.seed(seed)
    _np.random.seed(seed)
    krandom.set_seed(seed)


def to_categorical(y, num_classes=None, dtype="float32"):
    y = _np.asarray(y, dtype="int64")
    shape = y.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = shape[:-1]
    y = y.reshape(-1)
    num_classes = num_classes or int(y.max()) + 1
    out = _np.zeros((y.size, num_classes), dtype=dtype)
    out[_np.arange(y.size), y] = 1
    return out.reshape(shape + (num_classes,))
