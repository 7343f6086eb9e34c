"""Model configs in the Keras 3 form (keras-formats.md §3), and readers that also accept the
Keras 2 form (list-form `inbound_nodes`, `batch_input_shape`, no `module`).

Functional: `{name, trainable, layers: [{module, class_name, config, registered_name,
build_config, name, inbound_nodes: [{args, kwargs}]}], input_layers, output_layers}`, where a
tensor in `args` is `{"class_name": "__keras_tensor__", "config": {shape, dtype,
keras_history: [layer, node, tensor]}}` and node indices count only this model's nodes.
Sequential: `{name, trainable, dtype, layers: [InputLayer, ...], build_input_shape}`.
"""
from __future__ import annotations

import json

import numpy as np

from kgraph.keras import saving_safety
from kgraph.keras.layers.base import KerasTensor, Layer
from kgraph.keras.saving import op_nodes
from kgraph.keras.saving import serialization_lib as slib
from kgraph.keras.saving.errors import InvalidConfigError, NotSerializableError, UnsafeFileError

ARRAY_KINDS = "biufcSU"  # numbers, booleans and strings; never objects, records or sub-arrays
ARRAY_BYTES_PER_VALUE = 16  # complex128: the most an array may hold per value in the config


# -- writing ------------------------------------------------------------------------------
def serialize_model(model) -> dict:
    """What `model.to_json()` writes: `serialize_keras_object(model)` plus the compile
    config of a compiled model."""
    from kgraph.keras.saving.compile_config import get_compile_config

    out = slib.serialize_keras_object(model)
    compile_config = get_compile_config(model)
    if compile_config is not None:
        out["compile_config"] = compile_config
    return out


def layer_entry(layer) -> dict:
    """A layer as it appears inside a model config. A layer's own input shape is left out:
    the model's InputLayer carries it (Keras 3 layers reject `batch_shape`)."""
    from kgraph.keras.layers.core import InputLayer

    config = layer.get_config()
    if not isinstance(layer, InputLayer):
        config.pop("batch_shape", None)
    return slib.serialize_keras_object(layer, config)


def sequential_config(model) -> dict:
    # a graph built after leading host-side layers starts from their output, an input the
    # config does not record: the reloaded model rebuilds from its first data, as it was built
    own_input = model._input_layer is not None and not getattr(model, "_host_depth", 0)
    layers = ([model._input_layer] if own_input else []) + model._stack
    config = {"name": model.name, "trainable": model.trainable,
              "dtype": Layer.get_config(model)["dtype"],
              "layers": [layer_entry(layer) for layer in layers]}
    if model._graph is not None and own_input:
        config["build_input_shape"] = list(model._input_layer.batch_shape)
    return config


def functional_config(model) -> dict:
    
    own = {id(node) for node in model._order}
    layers = []
    for layer in list(model.layers):  # Keras' order, so configs list layers as Keras does
        nodes = [n for n in layer._inbound_nodes if id(n) in own]
        if op_nodes.is_keras_op(layer) and len(nodes) == 1:  # `x * 2`, `ops.exp(x)`, ...
            layers.append(op_nodes.op_entry(layer, layer.arguments(nodes[0].args),
                                            lambda x: _walk(x, _converter(layer, own))))
            continue
        entry = layer_entry(layer)
        entry["name"] = layer.name
        nodes = [serialize_node(n, own) for n in nodes]
        entry["inbound_nodes"] = [n for n in nodes if n is not None]
        layers.append(entry)
    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": _tensor_refs(model._inputs_struct, own),
            "output_layers": _tensor_refs(model._outputs_struct, own)}


def own_node_index(layer, node_index, own) -> int:
    """`node_index` counted over the nodes that belong to the model being serialized."""
    return sum(1 for node in layer._inbound_nodes[:node_index] if id(node) in own)


def _tensor_refs(structure, own):
    def ref(t):
        layer, node_index, tensor_index = t._keras_history
        offset = 1 if slib.is_functional(layer) else 0  # Keras' built-in Functional node
        return [layer.name, offset + own_node_index(layer, node_index, own), tensor_index]

    if isinstance(structure, KerasTensor):
        return ref(structure)
    if isinstance(structure, dict):
        return {k: _tensor_refs(v, own) for k, v in structure.items()}
    return [_tensor_refs(v, own) for v in structure]


def _converter(owner, own):
    """Writes one value of a call of layer `owner`: a KerasTensor as a reference to the node
    that made it, anything else as `serialize_value` does."""
    def convert(x):
        if isinstance(x, KerasTensor):
            layer, node_index, tensor_index = x._keras_history
            history = [layer.name, own_node_index(layer, node_index, own), tensor_index]
            return {"class_name": "__keras_tensor__",
                    "config": {"shape": list(x.shape), "dtype": str(x.dtype),
                               "keras_history": history}}
        return serialize_value(x, owner.name)
    return convert


def serialize_node(node, own):
    """`{"args": [...], "kwargs": {...}}` of one layer call; None for calls without inputs."""
    if not node.inputs:
        return None
    convert = _converter(node.layer, own)
    return {"args": [_walk(a, convert) for a in node.args],
            "kwargs": {k: _walk(v, convert) for k, v in node.kwargs.items()}}


def _walk(x, leaf):
    if isinstance(x, (list, tuple)):
        return [_walk(i, leaf) for i in x]
    if isinstance(x, dict):
        return {k: _walk(v, leaf) for k, v in x.items()}
    return leaf(x)


def serialize_value(x, owner):
    if x is None or isinstance(x, (str, bool, int, float)):
        return x
    if isinstance(x, np.ndarray) and x.ndim > 0:
        return {"class_name": "__numpy__", "config": {"value": x.tolist(), "dtype": str(x.dtype)}}
    if isinstance(x, np.generic) or isinstance(x, np.ndarray):
        return x.item()
    if isinstance(x, bytes):
        return {"class_name": "__bytes__", "config": {"value": x.decode("utf-8")}}
    if isinstance(x, slice):
        return {"class_name": "__slice__", "config": {"start": x.start, "stop": x.stop,
                                                      "step": x.step}}
    if x is Ellipsis:
        return {"class_name": "__ellipsis__", "config": {}}
    raise NotSerializableError(f"Layer {owner!r} was called with an argument of type "
                               f"{type(x).__name__} ({x!r}) that cannot be written to a config")


# -- reading ------------------------------------------------------------------------------
class _NotReady(Exception):
    """The node a tensor comes from has not been rebuilt yet."""


def sequential_from_config(cls, config, custom_objects=None):
    if isinstance(config, list):  # Keras 1: the config is the list of layers
        config = {"layers": config}
    layers = [slib.deserialize_keras_object(c, custom_objects) for c in config["layers"]]
    kwargs = {k: config[k] for k in ("name", "trainable") if k in config}
    model = cls(layers=layers, **kwargs)
    shape = config.get("build_input_shape")
    if model._graph is None and isinstance(shape, (list, tuple)) and shape:
        model.build(tuple(shape))
    return model


def functional_from_config(cls, config, custom_objects=None):
    created, pending = {}, []
    for data in config["layers"]:
        layer = op_nodes.SavedOp(data) if op_nodes.is_op_entry(data) else \
            slib.deserialize_keras_object(data, custom_objects)
        name = data.get("name") or layer.name
        created[name] = layer
        pending.append((layer, [n for n in data.get("inbound_nodes") or [] if n]))
    _replay_nodes(pending, created)
    try:
        inputs = _unpack_single(_tensors_from_refs(config["input_layers"], created))
        outputs = _unpack_single(_tensors_from_refs(config["output_layers"], created))
    except _NotReady:
        raise InvalidConfigError(f"Invalid model config: input_layers/output_layers refer to "
                                 f"a layer call that does not exist: "
                                 f"{str([config['input_layers'], config['output_layers']])[:200]}"
                                 ) from None
    kwargs = {k: config[k] for k in ("name", "trainable") if config.get(k) is not None}
    return cls(inputs=inputs, outputs=outputs, **kwargs)


def _replay_nodes(pending, created):
    """Call each layer on its saved inputs, in config order, retrying calls whose inputs do
    not exist yet (a layer shared at different depths)."""
    while any(nodes for _, nodes in pending):
        progress = False
        for layer, nodes in pending:
            while nodes:
                try:
                    args, kwargs = deserialize_node(nodes[0], created)
                except _NotReady:
                    break
                layer(*args, **kwargs)
                nodes.pop(0)
                progress = True
        if not progress:
            stuck = [layer.name for layer, nodes in pending if nodes]
            raise InvalidConfigError(f"Invalid model config: the inputs of layers {stuck} "
                                     f"can never be computed (a cycle or a missing node)")


def deserialize_node(node_data, created):
    """(args, kwargs) of one saved layer call, Keras 3 `{args, kwargs}` or Keras 2 list form."""
    if isinstance(node_data, dict) and "args" in node_data:
        args = _walk_back(node_data["args"], created)
        kwargs = _walk_back(node_data.get("kwargs") or {}, created)
        return list(args), kwargs
    if isinstance(node_data, list):
        tensors, kwargs = [], {}
        for item in node_data:
            if not (isinstance(item, list) and len(item) in (3, 4) and isinstance(item[0], str)):
                raise InvalidConfigError(f"Invalid inbound node entry: {item!r}")
            if item[0] == "_CONSTANT_VALUE":
                tensors.append(item[2])
            else:
                tensors.append(_tensor(created, item[0], item[1], item[2], legacy=True))
            kwargs = _walk_back(item[3], created) if len(item) == 4 and item[3] else kwargs
        return [_unpack_single(tensors)], kwargs
    raise InvalidConfigError(f"Invalid inbound node: {str(node_data)[:200]}")


def _walk_back(x, created):
    if isinstance(x, list):
        return [_walk_back(i, created) for i in x]
    if not isinstance(x, dict):
        return x
    special = x.get("class_name")
    if special == "__keras_tensor__":
        history = x["config"].get("keras_history")
        if not history:
            raise InvalidConfigError(f"A saved tensor has no keras_history: {x!r}")
        return _tensor(created, *history[:3], legacy=False)
    if special in ("__numpy__", "__tensor__"):
        return array_from_config(x["config"], special)
    if special == "__bytes__":
        return x["config"]["value"].encode("utf-8")
    if special == "__ellipsis__":
        return Ellipsis
    if special == "__slice__":
        c = x["config"]
        return slice(c.get("start"), c.get("stop"), c.get("step"))
    return {k: _walk_back(v, created) for k, v in x.items()}


def array_from_config(config, special="__numpy__") -> np.ndarray:
    """The array a `__numpy__` entry stores, checked before it is allocated: a plain dtype
    (no object, structured or sub-array dtype: "(1000,1000)f8" makes each value a 7.6 MiB
    block), and no more than `ARRAY_BYTES_PER_VALUE` bytes per value present in the config."""
    dtype_spec = config.get("dtype")
    try:
        dtype = np.dtype(dtype_spec) if isinstance(dtype_spec, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in ARRAY_KINDS or dtype.subdtype is not None:
        raise UnsafeFileError(f"A {special} entry has dtype {str(dtype_spec)[:100]!r}; only "
                              f"plain numeric, boolean and string dtypes are loaded")
    count, present = _count_values(config.get("value"))
    nbytes = count * dtype.itemsize
    if nbytes > ARRAY_BYTES_PER_VALUE * max(present, 1):
        raise UnsafeFileError(f"A {special} entry of dtype {dtype_spec!r} would take "
                              f"{nbytes} bytes for {count} values ({present} bytes of data) in "
                              f"the config; refused")
    saving_safety.charge(nbytes, f"a {special} entry of {count} {dtype_spec} values")
    return np.array(config["value"], dtype=dtype)


def _count_values(value):
    """(values, bytes of data) in a nested list, counted without recursion: a string
    counts its length, any other value one byte."""
    count, present, stack = 0, 0, [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            count += 1
            present += max(len(item), 1) if isinstance(item, (str, bytes)) else 1
    return count, present


def _tensor(created, layer_name, node_index, tensor_index, legacy):
    layer = created.get(layer_name)
    if layer is None:
        raise InvalidConfigError(f"Invalid model config: a node refers to unknown layer "
                                 f"{layer_name!r}")
    if legacy and slib.is_functional(layer):
        node_index -= 1  # Keras 2 Functional models start with a built-in node
    if not isinstance(node_index, int) or node_index < 0:
        raise InvalidConfigError(f"Invalid node index {node_index!r} for layer {layer_name!r}")
    if node_index >= len(layer._inbound_nodes):
        raise _NotReady()
    outputs = layer._inbound_nodes[node_index].outputs
    if not 0 <= tensor_index < len(outputs):
        raise InvalidConfigError(f"Invalid tensor index {tensor_index!r} for layer "
                                 f"{layer_name!r} (it has {len(outputs)} outputs)")
    return outputs[tensor_index]


def _tensors_from_refs(refs, created):
    if isinstance(refs, list) and len(refs) == 3 and isinstance(refs[0], str):
        layer_name, node_index, tensor_index = refs
        if slib.is_functional(created.get(layer_name)):
            node_index -= 1  # Keras' built-in Functional node
        return _tensor(created, layer_name, node_index, tensor_index, legacy=False)
    if isinstance(refs, dict):
        return {k: _tensors_from_refs(v, created) for k, v in refs.items()}
    if isinstance(refs, list):
        return [_tensors_from_refs(v, created) for v in refs]
    raise InvalidConfigError(f"Invalid input_layers/output_layers entry: {refs!r}")


def _unpack_single(x):
    return x[0] if isinstance(x, list) and len(x) == 1 else x


# -- entry points -------------------------------------------------------------------------
def deserialize_model(config, custom_objects=None, safe_mode=True):
    """A model (uncompiled) from a top-level config dict of either Keras form. What it
    allocates (weights, arrays in the config) counts against the load limit
    (`KGRAPH_MAX_LOAD_BYTES`, 4 GiB by default for a config without a file)."""
    slib.check_config_safety(config, safe_mode)
    with saving_safety.load_budget(), slib.object_sharing_scope():
        return slib.deserialize_keras_object(config, custom_objects, what="model")


def model_from_json(json_string, custom_objects=None):
    """Rebuild a model from `model.to_json()` output (Keras 3 or Keras 2 JSON).

    Args:
        json_string: The JSON text.
        custom_objects: Optional dict mapping names to custom classes or functions.

    Returns:
        An uncompiled model with freshly initialized weights.

    Example:
        >>> model = keras.models.model_from_json(model.to_json())
    """
    try:
        config = json.loads(json_string)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidConfigError(f"model_from_json: the argument is not valid JSON ({e})") \
            from None
    return deserialize_model(config, custom_objects)
