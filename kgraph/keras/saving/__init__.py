"""`keras.saving`: `.keras` archives, `.weights.h5`, legacy HDF5 and JSON configs, read
safely and written atomically (keras-formats.md)."""
from kgraph.keras.saving.errors import (DisallowedModuleError, InvalidConfigError,  # noqa: F401
                                        InvalidFileError, NotSerializableError, SavingError,
                                        UnknownObjectError, UnsafeFileError,
                                        WeightMismatchError)
from kgraph.keras.saving.saving_api import (load_model, load_weights, save_model,  # noqa: F401
                                            save_weights)
from kgraph.keras.saving.serialization_lib import (get_registered_name,  # noqa: F401
                                                   get_registered_object,
                                                   register_keras_serializable)
from kgraph.keras.serialization import CustomObjectScope, custom_object_scope  # noqa: F401
from kgraph.keras.saving_safety import UnsafeDeserializationError  # noqa: F401


def get_custom_objects() -> dict:
    """The global registry of custom objects (`keras.saving.get_custom_objects`)."""
    from kgraph.keras.serialization import GLOBAL_CUSTOM_OBJECTS

    return GLOBAL_CUSTOM_OBJECTS


def serialize_keras_object(obj):
    """Keras 3 dict of a layer or model (`keras.saving.serialize_keras_object`)."""
    from kgraph.keras.models.config import serialize_model
    from kgraph.keras.models.model import Model
    from kgraph.keras.saving.serialization_lib import serialize_keras_object as serialize

    return serialize_model(obj) if isinstance(obj, Model) else serialize(obj)


def deserialize_keras_object(config, custom_objects=None, safe_mode=True):
    """A layer or model from its Keras dict (`keras.saving.deserialize_keras_object`)."""
    from kgraph.keras.models.config import deserialize_model

    return deserialize_model(config, custom_objects, safe_mode)
