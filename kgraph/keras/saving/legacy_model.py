"""Legacy whole-model HDF5 (keras-formats.md §2): root attrs `model_config` (Keras 2 style
JSON), `training_config`, `keras_version`, `backend`; groups `model_weights` (the §1 layout)
and `optimizer_weights`.

The config is written in the Keras 2 form for the widest compatibility: layer entries are
`{class_name, config}`, InputLayers carry `batch_input_shape`, dtypes are plain names, and
calls with one tensor (or one list of tensors) use the list form of `inbound_nodes`.
"""
from __future__ import annotations

import json
import warnings

from kgraph.keras.saving import h5_safe, legacy_h5
from kgraph.keras.saving import serialization_lib as slib
from kgraph.keras.saving.compile_config import (compile_from_config, get_training_config,
                                                set_optimizer_values)
from kgraph.keras.saving.errors import InvalidFileError


# -- Keras 2 config -----------------------------------------------------------------------
def legacy_model_config(model) -> dict:
    return _to_legacy(slib.serialize_keras_object(model))


def _is_functional_config(config) -> bool:
    return isinstance(config, dict) and "layers" in config and "input_layers" in config


def _to_legacy(entry) -> dict:
    config = entry["config"]
    registered = entry.get("registered_name") or ""
    class_name = registered if ">" in registered else entry["class_name"]
    if _is_functional_config(config):
        config = _legacy_functional(config)
    elif "layers" in config and isinstance(config["layers"], list):
        config = {**_legacy_layer_config(entry["class_name"], config),
                  "layers": [_to_legacy(layer) for layer in config["layers"]]}
    else:
        config = _legacy_layer_config(entry["class_name"], config)
    return {"class_name": class_name, "config": config}


def _legacy_layer_config(class_name, config) -> dict:
    config = dict(config)
    if class_name == "InputLayer" and "batch_shape" in config:
        config = {"batch_input_shape": config.pop("batch_shape"), **config}
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        config["dtype"] = (dtype.get("config") or {}).get("name", "float32")
    return config


def _legacy_functional(config) -> dict:
    functional = {layer["name"] for layer in config["layers"]
                  if _is_functional_config(layer.get("config"))}
    layers = []
    for layer in config["layers"]:
        entry = _to_legacy(layer)
        entry["name"] = layer["name"]
        entry["inbound_nodes"] = [_legacy_node(n, functional) for n in layer["inbound_nodes"]]
        layers.append(entry)

    def refs(x):  # tf-keras always writes a list of [layer, node, tensor]
        return [x] if isinstance(x, list) and len(x) == 3 and isinstance(x[0], str) else x

    return {**config, "layers": layers, "input_layers": refs(config["input_layers"]),
            "output_layers": refs(config["output_layers"])}


def _is_tensor(x) -> bool:
    return isinstance(x, dict) and x.get("class_name") == "__keras_tensor__"


def _has_tensor(x) -> bool:
    if isinstance(x, dict):
        return _is_tensor(x) or any(_has_tensor(v) for v in x.values())
    return isinstance(x, list) and any(_has_tensor(v) for v in x)


def _legacy_node(node, functional):
    """List form `[[layer, node, tensor, kwargs], ...]` when it can express the call (one
    tensor, or one list of 2+ tensors, and no tensors in kwargs); else the Keras 3 form."""
    args, kwargs = node["args"], node.get("kwargs") or {}
    if _has_tensor(kwargs) or len(args) != 1:
        return node
    if _is_tensor(args[0]):
        tensors = [args[0]]
    elif isinstance(args[0], list) and len(args[0]) > 1 and all(map(_is_tensor, args[0])):
        tensors = args[0]
    else:
        return node
    out = []
    for t in tensors:
        name, index, tensor_index = t["config"]["keras_history"]
        out.append([name, index + (1 if name in functional else 0), tensor_index, kwargs])
    return out


# -- whole-model files --------------------------------------------------------------------
def save_legacy_model(model, h5file, include_optimizer=True) -> None:
    h5file.attrs["keras_version"] = legacy_h5._keras_version()
    h5file.attrs["backend"] = legacy_h5.BACKEND
    h5file.attrs["model_config"] = json.dumps(legacy_model_config(model))
    training = get_training_config(model) if include_optimizer else None
    if training is not None:
        h5file.attrs["training_config"] = json.dumps(training)
    legacy_h5.save_weights_to_group(h5file.create_group("model_weights"), model)
    variables = list(model.optimizer.variables) if training is not None else []
    if variables:
        group = h5file.create_group("optimizer_weights")
        names = legacy_h5._weight_names(variables)
        h5_safe.write_string_list(group, "weight_names", names)
        for name, var in zip(names, variables):
            h5_safe.write_dataset(group, name, var.numpy())


def _json_attr(h5file, name, label):
    text = h5_safe.read_string_attr(h5file, name)
    if text is None:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise InvalidFileError(f"{label}: attribute {name!r} is not valid JSON ({e})") from None


def load_legacy_model(h5file, label, custom_objects=None, compile=True, safe_mode=True):
    from kgraph.keras.models.config import deserialize_model

    config = _json_attr(h5file, "model_config", label)
    if config is None:
        raise InvalidFileError(f"{label}: no model config in this HDF5 file; it holds weights "
                               f"only. Build the model in code and call "
                               f"model.load_weights({str(label)!r}).")
    model = deserialize_model(config, custom_objects, safe_mode)
    legacy_h5.load_weights_from_group(legacy_h5.weights_root(h5file, label), model, label)
    if not compile:
        return model
    training = _json_attr(h5file, "training_config", label)
    if training is None:
        warnings.warn(f"{label}: no training configuration found in the file, so the model "
                      f"was *not* compiled. Compile it manually.", stacklevel=3)
        return model
    if compile_from_config(model, training, custom_objects, label):
        _restore_optimizer(h5file, model, label)
    return model


def _restore_optimizer(h5file, model, label):
    group = h5_safe.child(h5file, "optimizer_weights", label)
    if group is None:
        return
    values = []
    for name in h5_safe.read_string_list(group, "weight_names"):
        ds = h5_safe.child(group, name, label)
        if ds is None:
            raise InvalidFileError(f"{label}: optimizer weight {name!r} is listed but missing")
        h5_safe.check_dataset(ds, label)
        values.append(ds)
    set_optimizer_values(model.optimizer, values, label)
