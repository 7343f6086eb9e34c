"""keras.ops calls on KerasTensors in functional model configs, as Keras 3 writes them.

Keras 3 records `x * 2.0`, `x[:, :3]` or `ops.concatenate([a, b], axis=-1)` on a functional
model's tensors as operation nodes: `{"module": "keras.src.ops.numpy", "class_name":
"Multiply", "config": {"name": ..., <constructor arguments>}, "name": ..., "inbound_nodes":
[{"args": [<call arguments>], "kwargs": {}}]}`. Which of an op's arguments go to `config` (its
class's constructor) and which to the node (its call) is Keras' own split, kept as data in
keras_ops.json (written from Keras by tools/gen_keras_ops_table.py).

Writing: an op layer (kgraph.keras.layers.core._OpLayer) whose function has a Keras op's
name is written that way. Reading: such an entry calls the kgraph op of that name (looked up
in the table, never imported from the file) on the node's arguments, which makes the same
op layer again under the saved name.
"""
from __future__ import annotations

import functools
import inspect
import json
import os

from kgraph.keras.saving.errors import InvalidConfigError, NotSerializableError

MODULE = "keras.src.ops."


@functools.lru_cache(maxsize=1)
def _table():
    with open(os.path.join(os.path.dirname(__file__), "keras_ops.json")) as f:
        return json.load(f)["ops"]


def _family(fn) -> str:
    """The keras.ops family a kgraph op function belongs to (its entry in the table)."""
    module = fn.__module__ or ""
    for family in ("image", "linalg", "math", "nn"):
        if module.startswith(f"kgraph.ops.{family}"):
            return family
    return "numpy"


def _spec(layer):
    """(family, table entry) of an op layer's function, or None if Keras has no such op."""
    entries = _table().get(layer.fn.__name__)
    if not entries:
        return None
    family = _family(layer.fn)
    if family not in entries:
        family = "numpy" if "numpy" in entries else sorted(entries)[0]
    return family, entries[family]


def is_keras_op(layer) -> bool:
    """Whether `layer` is an op layer (`x * 2`, `ops.exp(x)`) of an op Keras has."""
    from kgraph.keras.layers.core import _OpLayer

    return isinstance(layer, _OpLayer) and _spec(layer) is not None


def op_entry(layer, node_args, convert) -> dict:
    """The config entry of an op layer whose one call had `node_args` ((args, kwargs) with
    its KerasTensors); `convert` writes a value (tensor references, slices, arrays)."""
    family, entry = _spec(layer)
    args, kwargs = node_args
    try:
        bound = inspect.signature(layer.fn).bind(*args, **kwargs)
    except TypeError as e:
        raise NotSerializableError(f"Op layer {layer.name!r} ({layer.fn.__name__}) cannot be "
                                   f"written as Keras' op: {e}") from None
    config, call = {"name": layer.name}, []
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if name in entry["init"]:
            config[name] = convert(value)
        elif kind == inspect.Parameter.VAR_POSITIONAL:
            call.extend(convert(v) for v in value)
        elif kind == inspect.Parameter.VAR_KEYWORD:
            raise NotSerializableError(f"Op layer {layer.name!r} was called with keyword "
                                       f"arguments Keras' {entry['class_name']} does not take: "
                                       f"{sorted(value)}")
        else:
            call.append(convert(value))
    return {"module": MODULE + family, "class_name": entry["class_name"], "config": config,
            "registered_name": entry["class_name"], "name": layer.name,
            "inbound_nodes": [{"args": call, "kwargs": {}}]}


class SavedOp:
    """A Keras op entry of a config while the model is rebuilt: calling it on the node's
    arguments runs the kgraph op of that name (an op layer named as saved)."""

    def __init__(self, data):
        module, class_name = data.get("module") or "", data.get("class_name")
        family = module[len(MODULE):]
        matches = [name for name, entries in _table().items()
                   if entries.get(family, {}).get("class_name") == class_name]
        fn = _kgraph_op(matches[0], family) if matches else None
        if fn is None:
            raise InvalidConfigError(f"Unknown Keras op {module}.{class_name} in the model "
                                     f"config (kgraph rebuilds keras.ops calls it implements)")
        config = dict(data.get("config") or {})
        self.name = data.get("name") or config.get("name") or matches[0]
        config.pop("name", None)
        self.fn, self.config, self._inbound_nodes = fn, config, []

    def __call__(self, *args, **kwargs):
        from kgraph.keras.layers.base import KerasTensor
        from kgraph.keras.tree import flatten

        out = self.fn(*args, **{**self.config, **kwargs})
        outputs = flatten(out)
        for tensor in outputs:
            if isinstance(tensor, KerasTensor):
                tensor._keras_history[0].name = self.name
                break
        self._inbound_nodes.append(_Node(outputs))
        return out


class _Node:
    def __init__(self, outputs):
        self.outputs = outputs


def is_op_entry(data) -> bool:
    return isinstance(data, dict) and str(data.get("module") or "").startswith(MODULE)


def _kgraph_op(name, family):
    from kgraph import ops
    from kgraph.keras.layers import tensors

    if name == "get_item":  # a config's key is a JSON list: the index tuple of `x[...]`
        return tensors.get_item
    namespace = getattr(ops, family, None) if family in ("image", "linalg", "nn") else None
    fn = getattr(namespace, name, None) if namespace is not None else None
    fn = fn or getattr(ops, name, None)
    return fn if callable(fn) else None
