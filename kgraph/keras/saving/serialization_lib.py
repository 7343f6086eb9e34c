"""Turning layers and models into Keras 3 config dicts and back, safely.

Classes are found by name, never by importing the module a config names: first in the
custom objects (`custom_objects=`, `CustomObjectScope`, `register_keras_serializable`), then
in `kgraph.keras.layers` / `kgraph.keras.models` when the config's module is a Keras package
(or absent, as in Keras 2 configs). A module outside Keras is refused
(`DisallowedModuleError`, the CVE-2025-1550 class of attack), and so is any `__lambda__`
object or marshalled Lambda function while safe mode is on.
"""
from __future__ import annotations

import contextlib
import inspect
import re
import threading

from kgraph.keras import saving_safety
from kgraph.keras.saving.errors import (DisallowedModuleError, InvalidConfigError,
                                        NotSerializableError, SavingError, UnknownObjectError)
from kgraph.keras import serialization as kserialization
from kgraph.keras.serialization import GLOBAL_CUSTOM_OBJECTS, CustomObjectScope

KERAS_PACKAGES = ("keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp", "tensorflow.keras")
FUNCTIONAL_MODULE = "keras.src.models.functional"
_state = threading.local()
MAX_NESTING = 64  # layers inside models inside models ...: building recurses per level
MAX_CONFIG_DEPTH = 4 * MAX_NESTING + 64  # JSON levels: about 3 per model level, plus nodes


# -- names --------------------------------------------------------------------------------
def to_snake_case(name: str) -> str:
    """Keras' `naming.to_snake_case` exactly: "Conv2D" -> "conv2d", "ReLU" -> "re_lu"."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def register_keras_serializable(package="Custom", name=None):
    """Decorator registering a class or function as `"package>name"` (Keras API)."""
    if ">" in package:
        raise ValueError(f"`package` may not contain '>'. Received: package={package!r}")

    def decorator(obj):
        key = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError(f"Cannot register {obj!r}: classes must implement get_config()")
        GLOBAL_CUSTOM_OBJECTS[key] = obj
        return obj

    return decorator


def get_registered_name(obj) -> str:
    """`"package>name"` of a registered object, else its `__name__` (Keras API)."""
    for key, value in GLOBAL_CUSTOM_OBJECTS.items():
        if value is obj and ">" in key:
            return key
    return obj.__name__


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object registered or passed under `name`, else None (Keras API)."""
    for table in (kserialization.custom_objects(), custom_objects or {}, module_objects or {}):
        if name in table:
            return table[name]
    return None


# -- class identity -----------------------------------------------------------------------
def is_functional(layer) -> bool:
    """A model built from inputs/outputs (Keras' `Functional`), not Sequential/subclassed."""
    from kgraph.keras.models.model import Model
    from kgraph.keras.models.sequential import Sequential

    return isinstance(layer, Model) and not isinstance(layer, Sequential) and \
        getattr(layer, "_graph", None) is not None


def class_identity(obj):
    """(module, class_name, registered_name) as Keras 3 writes them."""
    from kgraph.keras import layers as klayers
    from kgraph.keras.models.model import Model
    from kgraph.keras.models.sequential import Sequential

    cls = type(obj)
    if cls is Sequential:
        return "keras", "Sequential", None
    if cls is Model:
        return FUNCTIONAL_MODULE, "Functional", "Functional"
    if getattr(klayers, cls.__name__, None) is cls:
        return "keras.layers", cls.__name__, None
    identity = cls.__dict__.get("_keras_identity")  # Keras layers outside keras.layers
    if identity is not None:
        return identity[0], cls.__name__, identity[1]
    public = _public_module(cls)
    if public is not None:
        return public, cls.__name__, None
    if cls.__name__.startswith("_"):
        raise NotSerializableError(
            f"Layer {getattr(obj, 'name', obj)!r} of internal class {cls.__name__} cannot be "
            f"saved in a config (it comes from arithmetic or indexing on symbolic tensors). "
            f"Use layers such as keras.layers.Add/Multiply instead.")
    module = None if cls.__module__ == "__main__" else cls.__module__
    return module, cls.__name__, get_registered_name(cls)


_OBJECT_PACKAGES = ("regularizers", "initializers", "constraints", "losses", "metrics",
                    "optimizers")


def _object_classes() -> dict:
    """kgraph's public non-layer classes: {package: {name: class}} (`L1L2`, `Adam` ...)."""
    import importlib

    table = {}
    for package in _OBJECT_PACKAGES:
        module = importlib.import_module(f"kgraph.keras.{package}")
        table[package] = {name: obj for name, obj in vars(module).items()
                          if inspect.isclass(obj) and not name.startswith("_") and
                          obj.__module__.startswith("kgraph.keras.")}
    return table


def _object_class(module, class_name):
    """The class a non-layer config names, in the package its module names ("keras.losses"
    and "keras.metrics" both have `MeanSquaredError`); any package when there is no module."""
    parts = (module or "").split(".")
    package = next((p for p in parts if p in _OBJECT_PACKAGES), None)
    for name, classes in _object_classes().items():
        if package in (None, name) and class_name in classes:
            return classes[class_name]
    return None


def _public_module(cls):
    """"keras.regularizers" for kgraph.keras.regularizers.L1L2 (Keras' public module)."""
    parts = cls.__module__.split(".")
    if parts[:2] == ["kgraph", "keras"] and len(parts) > 2 and parts[2] in _OBJECT_PACKAGES \
            and _object_classes()[parts[2]].get(cls.__name__) is cls:
        return f"keras.{parts[2]}"
    return None


def _serialize_function(fn) -> dict:
    """Keras 3's config of a function (an activation, a registered custom function)."""
    from kgraph.keras import activations

    registered = get_registered_name(fn)
    builtin = activations.ALL.get(fn.__name__) is fn
    return {"module": "keras.activations" if builtin else fn.__module__,
            "class_name": "function", "config": fn.__name__, "registered_name": registered}


def serialize_keras_object(obj, config=None) -> dict:
    """`{module, class_name, config, registered_name[, build_config]}` of a layer, model or
    other Keras object (regularizer, initializer, optimizer ...); a function gives Keras 3's
    `class_name: "function"` form, None and plain values stay as they are."""
    if obj is None or isinstance(obj, (str, int, float, bool, list, dict)):
        return obj
    if inspect.isfunction(obj):
        return _serialize_function(obj)
    module, class_name, registered = class_identity(obj)
    out = {"module": module, "class_name": class_name,
           "config": obj.get_config() if config is None else config,
           "registered_name": registered}
    build = build_config(obj)
    if build is not None:
        out["build_config"] = build
    return out


def build_config(obj):
    from kgraph.keras.models.model import Model
    from kgraph.keras.models.sequential import Sequential

    if isinstance(obj, Sequential):
        layer = getattr(obj, "_input_layer", None)
        shape = list(layer.batch_shape) if layer is not None and obj._graph is not None else None
        return {"input_shape": shape} if shape is not None else None
    if isinstance(obj, Model) and obj._graph is not None:
        return {"input_shape": None}
    if hasattr(type(obj), "build_from_config"):  # FeatureSpace: its own build config
        return obj.get_build_config()
    shapes = getattr(obj, "_build_shapes_dict", None)  # layers built from several shapes
    if shapes is not None:
        return {"shapes_dict": _jsonable_shape(shapes)}
    shape = getattr(obj, "_build_input_shape", None)
    return {"input_shape": _jsonable_shape(shape)} if shape is not None else None


def _jsonable_shape(shape):
    if isinstance(shape, (list, tuple)):
        return [_jsonable_shape(s) for s in shape]
    if isinstance(shape, dict):
        return {k: _jsonable_shape(v) for k, v in shape.items()}
    return None if shape is None else int(shape)


# -- safety ---------------------------------------------------------------------------------
def check_config_safety(config, safe_mode=True) -> None:
    """Check a whole config before anything is built: nested at most `MAX_CONFIG_DEPTH`
    levels (counted here, so the bound never depends on Python's recursion limit), and no
    marshalled Python code: Keras 3 `__lambda__` objects and tf-keras Lambda functions
    (`function_type: "lambda"`), unless `safe_mode=False` with unsafe deserialization
    enabled."""
    refuse_code = safe_mode or not saving_safety._state["unsafe"]
    stack = [(config, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_CONFIG_DEPTH and isinstance(item, (dict, list)):
            raise InvalidConfigError(f"Invalid model config: it is nested more than "
                                     f"{MAX_CONFIG_DEPTH} levels deep; refused")
        if isinstance(item, dict):
            if refuse_code and (item.get("class_name") == "__lambda__" or "lambda" in (
                    item.get("function_type"), item.get("output_shape_type"))):
                raise saving_safety.UnsafeDeserializationError(
                    "Refusing to deserialize a Python lambda stored in the config: it would "
                    "run code from the file. If you trust the file, call "
                    "kgraph.keras.config.enable_unsafe_deserialization() first.")
            stack.extend((value, depth + 1) for value in item.values())
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)


def _is_keras_module(module) -> bool:
    return module is None or any(module == p or module.startswith(p + ".")
                                 for p in KERAS_PACKAGES + ("kgraph.keras",))


def _builtin_classes() -> dict:
    from kgraph.keras import layers as klayers
    from kgraph.keras.layers.base import Layer
    from kgraph.keras.models.model import Model
    from kgraph.keras.models.sequential import Sequential

    table = {name: obj for name, obj in vars(klayers).items()
             if inspect.isclass(obj) and issubclass(obj, Layer) and not name.startswith("_")}
    table.update({"Sequential": Sequential, "Functional": Model, "Model": Model})
    from kgraph.keras.layers.preprocessing import feature_space

    table.update({cls.__name__: cls for cls in (feature_space.FeatureSpace,
                                                feature_space.TFDIdentity,
                                                feature_space.TFDConcat)})
    return table


def resolve_class(class_name, module=None, registered_name=None, what="layer"):
    """The class a config names: custom objects first, then kgraph's Keras classes."""
    if not isinstance(class_name, str):
        raise InvalidConfigError(f"Invalid {what} config: class_name={class_name!r}")
    custom = kserialization.custom_objects()
    for key in (registered_name, class_name):
        if key and key in custom:
            return custom[key]
    if not _is_keras_module(module):
        raise DisallowedModuleError(
            f"Could not deserialize {what} class {class_name!r}: its config names module "
            f"{module!r}, which is not a Keras package, and kgraph never imports modules "
            f"named in a file. If {class_name!r} is your own class, pass it with "
            f"custom_objects={{{class_name!r}: {class_name}}} or inside "
            f"keras.utils.CustomObjectScope.")
    found = _builtin_classes().get(class_name) or _object_class(module, class_name)
    if found is None:
        raise UnknownObjectError(
            f"Unknown {what}: {class_name!r} (module {module!r}). kgraph.keras has no such "
            f"class. If it is a custom class, pass it with custom_objects={{{class_name!r}: "
            f"{class_name}}} or load inside keras.utils.CustomObjectScope({{{class_name!r}: "
            f"{class_name}}}).")
    return found


# -- shared objects -------------------------------------------------------------------------
@contextlib.contextmanager
def object_sharing_scope():
    """Objects with the same `shared_object_id` in one load are built once."""
    outer = getattr(_state, "shared", None)
    _state.shared = {} if outer is None else outer
    try:
        yield
    finally:
        _state.shared = outer


_MALFORMED = (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError,
              MemoryError)


def deserialize_keras_object(config, custom_objects=None, what="layer"):
    """A layer or model from `{class_name, config[, module, registered_name, build_config]}`.

    A config that is malformed (wrong types, missing keys) raises `InvalidConfigError`
    naming the class and the original problem; so does one that nests layers more than
    `MAX_NESTING` levels deep."""
    name = config.get("class_name") if isinstance(config, dict) else None
    depth = getattr(_state, "depth", 0)
    if depth >= MAX_NESTING:
        raise InvalidConfigError(f"Invalid {what} config for class_name={name!r}: layers are "
                                 f"nested more than {MAX_NESTING} levels deep; refused")
    _state.depth = depth + 1
    try:
        return _deserialize(config, custom_objects, what)
    except (SavingError, saving_safety.UnsafeDeserializationError):
        raise
    except _MALFORMED as e:
        raise InvalidConfigError(f"Invalid {what} config for class_name={name!r}: "
                                 f"{type(e).__name__}: {str(e)[:300]}") from None
    finally:
        _state.depth = depth


def _deserialize(config, custom_objects, what):
    if isinstance(config, dict) and config.get("class_name") == "function":
        return _deserialize_function(config, custom_objects)
    if not isinstance(config, dict) or "class_name" not in config:
        raise InvalidConfigError(f"Invalid {what} config (expected a dict with 'class_name'): "
                                 f"{str(config)[:200]}")
    shared = getattr(_state, "shared", None)
    shared_id = config.get("shared_object_id")
    if shared is not None and shared_id is not None and shared_id in shared:
        return shared[shared_id]
    with CustomObjectScope(custom_objects or {}):
        cls = resolve_class(config["class_name"], config.get("module"),
                            config.get("registered_name"), what)
        inner = legacy_layer_config(config["class_name"], config.get("config") or {},
                                    legacy="module" not in config)
        obj = _from_config(cls, inner, custom_objects, config["class_name"])
    _maybe_build(obj, config.get("build_config"))
    if shared is not None and shared_id is not None:
        shared[shared_id] = obj
    return obj


def legacy_layer_config(class_name, config, legacy):
    """Keras 2 spellings Keras 3 still reads: batch_input_shape, one-element axis lists."""
    config = dict(config)
    if class_name == "InputLayer" and "batch_input_shape" in config:
        config.setdefault("batch_shape", config.pop("batch_input_shape"))
    axis = config.get("axis")
    if legacy and isinstance(axis, list) and len(axis) == 1:
        config["axis"] = int(axis[0])
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(value.get("config"), dict):
            config[key] = _drop_unset_unknown_keys(value)
    return config


def _drop_unset_unknown_keys(entry):
    """Newer Keras adds optional keys to initializer configs (3.15: `input_axes` and
    `output_axes`, None by default). Unset ones that kgraph's class does not take are
    dropped; a key with a value still reaches the class (and fails loudly)."""
    from kgraph.keras import initializers

    cls = getattr(initializers, "ALL", {}).get(entry.get("class_name"))
    if cls is None:
        return entry
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return entry
    inner = {k: v for k, v in entry["config"].items() if v is not None or k in params}
    return {**entry, "config": inner}


def _deserialize_function(config, custom_objects):
    """A function by registered name or name: custom objects, then kgraph's activations."""
    from kgraph.keras import activations

    with CustomObjectScope(custom_objects or {}):
        return kserialization.lookup("function", config, activations.ALL)


def _from_config(cls, config, custom_objects, class_name):
    from kgraph.keras.layers.base import Layer

    if inspect.isclass(cls) and any(cls in c.values() for c in _object_classes().values()):
        return cls.from_config(config) if hasattr(cls, "from_config") else cls(**config)
    if not (inspect.isclass(cls) and issubclass(cls, Layer)):
        raise UnknownObjectError(f"{class_name!r} resolves to {cls!r}, which is not a Layer "
                                 f"or Model class")
    try:
        params = inspect.signature(cls.from_config).parameters
        if "custom_objects" in params:
            return cls.from_config(config, custom_objects=custom_objects)
        return cls.from_config(config)
    except (saving_safety.UnsafeDeserializationError, SavingError):
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise InvalidConfigError(f"Could not rebuild {class_name} {config.get('name')!r} from "
                                 f"its config: {e}") from e


def _maybe_build(obj, build_cfg):
    """Create the weights of a model rebuilt from a config: a Sequential without an input
    layer is built from `build_config`, a subclassed model is called once on zeros of that
    shape, a layer with `build_from_config` (FeatureSpace) is given it. Other layers are built
    when the model that holds them calls them."""
    from kgraph.keras.models.model import Model
    from kgraph.keras.models.sequential import Sequential

    if not isinstance(obj, Model) and build_cfg and hasattr(obj, "build_from_config"):
        obj.build_from_config(build_cfg)  # FeatureSpace: its preprocessors' weights
        return
    shape = (build_cfg or {}).get("input_shape")
    if shape is None or not isinstance(obj, Model) or obj._graph is not None:
        return
    if isinstance(obj, Sequential):
        obj.build(_to_tuples(shape))
    elif not obj.weights and _is_flat_shape(shape):
        import math

        import numpy as np

        from kgraph import config as kconfig

        dtype = np.dtype(kconfig.floatx())
        sample = (1,) + tuple(shape[1:])
        saving_safety.charge(math.prod(sample) * dtype.itemsize,
                             f"model {obj.name!r}: a sample of build_config input_shape "
                             f"{shape!r}")
        obj(np.zeros(sample, dtype=dtype))


def _is_flat_shape(shape) -> bool:
    return isinstance(shape, list) and len(shape) > 0 and all(
        isinstance(s, int) or s is None for s in shape) and None not in shape[1:]


def _to_tuples(shape):
    if isinstance(shape, list) and all(isinstance(s, (int, type(None))) for s in shape):
        return tuple(shape)
    if isinstance(shape, list):
        return [_to_tuples(s) for s in shape]
    return shape
