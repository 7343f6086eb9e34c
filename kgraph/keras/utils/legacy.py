"""`keras.utils.legacy`: tf.keras 2's object configs, `{"class_name", "config"}` without the
`module`/`registered_name` keys of Keras 3's format."""
from __future__ import annotations

import inspect

from kgraph.keras.serialization import CustomObjectScope
from kgraph.keras.serialization import custom_objects as _custom_objects


def serialize_keras_object(instance):
    """tf.keras 2's config of a Keras object: `{"class_name": name, "config": get_config()}`
    (a registered class by its "Package>Name"); a function gives its (registered) name.

    Raises:
        ValueError: `instance` has no `get_config` and no name.

    Example:
        >>> keras.utils.legacy.serialize_keras_object(keras.optimizers.SGD(0.5))["class_name"]
        'SGD'
    """
    from kgraph.keras.saving.serialization_lib import get_registered_name

    if instance is None:
        return None
    if hasattr(instance, "get_config"):
        config = {}
        for key, item in instance.get_config().items():
            if isinstance(item, str):
                config[key] = item
                continue
            try:
                serialized = serialize_keras_object(item)
            except ValueError:
                config[key] = item  # plain values stay as they are
                continue
            if isinstance(serialized, dict) and not isinstance(item, dict):
                serialized["__passive_serialization__"] = True
            config[key] = serialized
        return {"class_name": get_registered_name(type(instance)), "config": config}
    if hasattr(instance, "__name__"):
        return get_registered_name(instance)
    raise ValueError(f"Cannot serialize {instance!r} because it doesn't implement "
                     "`get_config()`.")


def deserialize_keras_object(identifier, module_objects=None, custom_objects=None,
                             printable_module_name="object"):
    """An object from tf.keras 2's config (a `{"class_name", "config"}` dict) or name.

    Names are looked up in `custom_objects`, the global custom objects, then
    `module_objects` (when given) or kgraph's own Keras classes.

    Raises:
        ValueError: the name is unknown or the identifier is neither a dict, a name nor a
            function (the bad value is quoted).

    Example:
        >>> layer = keras.utils.legacy.deserialize_keras_object(
        ...     {"class_name": "Dense", "config": {"units": 2}})
    """
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        cls = _find(identifier.get("class_name"), module_objects, custom_objects,
                    printable_module_name)
        config = identifier.get("config") or {}
        with CustomObjectScope(custom_objects or {}):
            if hasattr(cls, "from_config"):
                return cls.from_config(config)
            return cls(**config)
    if isinstance(identifier, str):
        found = _find(identifier, module_objects, custom_objects, printable_module_name)
        return found() if inspect.isclass(found) else found
    if inspect.isfunction(identifier):
        return identifier
    raise ValueError(f"Could not interpret serialized {printable_module_name}: {identifier!r}")


def _find(name, module_objects, custom_objects, printable_module_name):
    for table in (custom_objects or {}, _custom_objects(), module_objects or {}):
        if name in table:
            return table[name]
    if module_objects is None and isinstance(name, str):
        from kgraph.keras.saving.errors import SavingError
        from kgraph.keras.saving.serialization_lib import resolve_class

        try:
            return resolve_class(name, what=printable_module_name)
        except (SavingError, ValueError):  # reported as Keras' unknown-name error below
            pass
    raise ValueError(f"Unknown {printable_module_name}: {name!r}. Please ensure you are using "
                     "a `keras.utils.custom_object_scope` and that this object is included "
                     "in the scope.")
