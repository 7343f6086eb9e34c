"""`keras.backend` (the few functions Keras code commonly reaches for)."""
from kgraph.config import (epsilon, floatx, image_data_format, set_epsilon,  # noqa: F401
                           set_floatx, set_image_data_format)
from kgraph.keras.layers.base import reset_names as clear_session  # noqa: F401


def backend():
    """The name of the framework running Keras code: always "kgraph" (the executor it compiles
    for is `keras.config.backend()`)."""
    return "kgraph"
