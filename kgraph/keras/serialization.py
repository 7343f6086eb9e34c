"""`get` / `serialize` / `deserialize` for the registries (activations, initializers, losses,
metrics, optimizers, regularizers, constraints), and custom objects."""
from __future__ import annotations

import re
import threading

_custom = threading.local()
GLOBAL_CUSTOM_OBJECTS: dict = {}


def custom_objects() -> dict:
    merged = dict(GLOBAL_CUSTOM_OBJECTS)
    for scope in getattr(_custom, "stack", []):
        merged.update(scope)
    return merged


class CustomObjectScope:
    """`with CustomObjectScope({'AttentionLayer': AttentionLayer}): load_model(...)`."""

    def __init__(self, *scopes):
        self.objects = {}
        for s in scopes:
            self.objects.update(s or {})

    def __enter__(self):
        if not hasattr(_custom, "stack"):
            _custom.stack = []
        _custom.stack.append(self.objects)
        return self

    def __exit__(self, *exc):
        _custom.stack.pop()


custom_object_scope = CustomObjectScope


def snake_case(name: str) -> str:
    """Keras' rule: "Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def lookup(kind: str, identifier, table: dict, extra: dict | None = None):
    """Resolve a string or {class_name, config} dict against `table` and custom objects."""
    objects = {**table, **(extra or {}), **custom_objects()}
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        config = identifier.get("config", {})
        if name == "function":
            name, config = config, None
    else:
        name, config = identifier, None
    target = objects.get(name)
    if target is None and isinstance(name, str):
        target = objects.get(snake_case(name))
    if target is None and isinstance(identifier, dict):  # Keras 3 function configs
        target = objects.get(identifier.get("registered_name"))
    if target is None and isinstance(name, str):  # a registered "package>name" by its name
        target = _registered_by_short_name(name)
    if target is None:
        raise ValueError(f"Unknown {kind}: {identifier!r}. Known: {sorted(k for k in table if not k.startswith('_'))}. "
                         f"Pass custom objects with custom_objects= or CustomObjectScope.")
    if config is not None and isinstance(target, type):
        return target.from_config(config) if hasattr(target, "from_config") else target(**config)
    return target


def _registered_by_short_name(name: str):
    """The object `register_keras_serializable` stored as "package>`name`", when exactly one
    package registered that name (an activation given by name: `Dense(activation="fn")`)."""
    found = [obj for key, obj in custom_objects().items() if key.rpartition(">")[2] == name
             and ">" in key]
    return found[0] if len(found) == 1 else None
