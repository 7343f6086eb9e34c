"""`keras.config`."""
from kgraph.config import (backend, epsilon, floatx, image_data_format, set_epsilon,  # noqa: F401
                           set_floatx, set_image_data_format)
from kgraph.keras.saving_safety import enable_unsafe_deserialization  # noqa: F401
