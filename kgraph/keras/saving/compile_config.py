"""`compile()` arguments in files: Keras 3 `compile_config` (`.keras`, `to_json`) and the legacy
`training_config` of whole-model `.h5` files (keras-formats.md §2), and optimizer state."""
from __future__ import annotations

import inspect
import warnings

from kgraph.keras import losses as klosses
from kgraph.keras import metrics as kmetrics
from kgraph.keras import optimizers as koptimizers

# Keras 3 optimizer config keys that tf-keras optimizers reject; left out when unset
_KERAS3_ONLY_OPTIMIZER_KEYS = ("loss_scale_factor", "gradient_accumulation_steps")


def _serialize_spec(spec, module, table):
    """Loss/metric arguments of compile(): names as they are, objects as Keras dicts."""
    if spec is None or isinstance(spec, (str, bool, int, float)):
        return spec
    if isinstance(spec, (list, tuple)):
        return [_serialize_spec(s, module, table) for s in spec]
    if isinstance(spec, dict):
        return {k: _serialize_spec(v, module, table) for k, v in spec.items()}
    if hasattr(spec, "get_config") and not inspect.isclass(spec):
        cls = type(spec)
        builtin = getattr(table, cls.__name__, None) is cls
        return {"module": module if builtin else cls.__module__, "class_name": cls.__name__,
                "config": spec.get_config(), "registered_name": None if builtin else cls.__name__}
    name = getattr(spec, "__name__", None)
    if name is None:
        raise ValueError(f"Cannot save the compile() argument {spec!r}")
    return name


def get_compile_config(model):
    """The Keras 3 `compile_config` of a compiled model, else None."""
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        return None
    args = getattr(model, "_compile_config", None) or {}
    return {"optimizer": koptimizers.serialize(model.optimizer),
            "loss": _serialize_spec(args.get("loss"), "keras.losses", klosses),
            "loss_weights": args.get("loss_weights"),
            "metrics": _serialize_spec(args.get("metrics"), "keras.metrics", kmetrics),
            "weighted_metrics": _serialize_spec(args.get("weighted_metrics"), "keras.metrics",
                                                kmetrics),
            "run_eagerly": bool(args.get("run_eagerly", False)),
            "steps_per_execution": args.get("steps_per_execution", 1),
            "jit_compile": False}


def get_training_config(model):
    """The legacy `.h5` `training_config` (Keras 3 keys, `optimizer_config` as
    `{class_name, config}`), else None."""
    config = get_compile_config(model)
    if config is None:
        return None
    optimizer = config.pop("optimizer")
    inner = {k: v for k, v in optimizer["config"].items()
             if not (k in _KERAS3_ONLY_OPTIMIZER_KEYS and v is None)}
    config["optimizer_config"] = {"class_name": optimizer["class_name"], "config": inner}
    return config


def _is_object_dict(x):
    return isinstance(x, dict) and "class_name" in x and "config" in x


def _deserialize_spec(spec, getter):
    if _is_object_dict(spec):
        if spec["class_name"] == "function":
            return spec["config"]
        if spec["class_name"] == "MeanMetricWrapper":  # tf-keras wraps metric names
            inner = spec["config"]
            name = inner.get("name")
            return name if name in ("accuracy", "acc") else inner.get("fn", name)
        return getter(spec)
    if isinstance(spec, list):
        return [_deserialize_spec(s, getter) for s in spec]
    if isinstance(spec, dict):
        return {k: _deserialize_spec(v, getter) for k, v in spec.items()}
    return spec


def compile_from_config(model, config, custom_objects=None, label=None) -> bool:
    """Compile `model` with a Keras 3 `compile_config` or a legacy `training_config`.
    A config kgraph cannot honour gives a warning and an uncompiled model."""
    if not config:
        return False
    config = dict(config)
    try:
        optimizer = config.pop("optimizer", None) or config.pop("optimizer_config", None)
        if isinstance(optimizer, dict):
            optimizer = koptimizers.deserialize(optimizer, custom_objects)
        metrics = config.get("metrics")
        if isinstance(metrics, list) and len(metrics) == 1 and isinstance(metrics[0], list):
            config["metrics"] = metrics[0]  # tf-keras: one list per output
        config["loss"] = _deserialize_spec(config.get("loss"), klosses.get)
        for key in ("metrics", "weighted_metrics"):
            config[key] = _deserialize_spec(config.get(key), kmetrics.get)
        accepted = inspect.signature(model.compile).parameters
        args = {k: v for k, v in config.items() if k in accepted and k != "jit_compile"}
        model.compile(optimizer=optimizer or "rmsprop", **args)
        if model.built and hasattr(model.optimizer, "build"):  # slots in Keras' order
            model.optimizer.build(model.trainable_weights)
        return True
    except Exception as e:  # noqa: BLE001 - a file's training setup must not block loading
        warnings.warn(f"{label or 'load_model'}: the model could not be compiled from the saved "
                      f"training configuration ({type(e).__name__}: {e}); it is returned "
                      f"uncompiled. Call model.compile() yourself.", stacklevel=3)
        return False


def set_optimizer_values(optimizer, values, label) -> bool:
    """Restore optimizer state by position; a count or shape mismatch warns and leaves a
    fresh optimizer (state does not carry across tf-keras and Keras 3). `values` may be
    HDF5 datasets: they are read only after all shapes are checked."""
    from kgraph.keras.saving.h5_safe import read_dataset

    variables = list(optimizer.variables)
    problem = None
    if len(values) != len(variables):
        problem = (f"the file holds {len(values)} optimizer variables but the optimizer has "
                   f"{len(variables)}")
    else:
        for var, value in zip(variables, values):
            if tuple(value.shape) != tuple(var.shape):
                problem = (f"optimizer variable {var.path!r} has shape {tuple(var.shape)}, the "
                           f"file has {tuple(value.shape)}")
                break
    if problem:
        warnings.warn(f"{label}: optimizer state not restored ({problem}); training will "
                      f"continue with a fresh optimizer.", stacklevel=3)
        return False
    for var, value in zip(variables, values):
        var.assign(read_dataset(value, label))
    return True
