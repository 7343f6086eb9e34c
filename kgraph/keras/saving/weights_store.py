"""The Keras 3 weights layout: `.weights.h5` files and `model.weights.h5` inside `.keras`
archives (keras-formats.md §4).

Objects are found by walking the model the way Keras' `_save_state` does: a Sequential or
Functional model visits `layers` first, then the public attributes in sorted order, then the
`_private` ones. Items of a list/dict are named `snake_case(ClassName)`, `_1`, `_2`, ... in
container order (never by `layer.name`), attributes by their attribute name. Each object is
visited once and stores its own variables as `<path>/vars/<i>`, with attr `name`.
"""
from __future__ import annotations

import warnings

import h5py

from kgraph.keras.layers.base import Layer
from kgraph.keras.optimizers.base import Optimizer
from kgraph.keras.saving import h5_safe
from kgraph.keras.saving.compile_config import set_optimizer_values
from kgraph.keras.saving.errors import InvalidFileError, WeightMismatchError
from kgraph.keras.saving.serialization_lib import is_functional, to_snake_case

# attributes of kgraph's base classes that hold layers but are not children in Keras' walk
_SKIP_ATTRS = {"_layers", "_stack", "_input_layer", "_inbound_nodes", "_loss_tracker",
               "optimizer", "_order", "_graph", "_inputs_struct", "_outputs_struct",
               "compiled_loss", "compiled_metrics", "history"}


def _is_saveable(x) -> bool:
    return isinstance(x, (Layer, Optimizer))


def _name_key(name: str) -> str:
    return "~" + name if name.startswith("_") else name  # private attributes last


def _has_saveables(x, depth=0) -> bool:
    if not isinstance(x, (list, tuple, dict)) or depth > 32:
        return False
    items = x.values() if isinstance(x, dict) else x
    return any(_is_saveable(i) or _has_saveables(i, depth + 1) for i in items)


def _children(obj):
    if isinstance(obj, Layer) and getattr(obj, "_graph", None) is not None:
        yield "layers", list(obj.layers)
    attrs = {k: v for k, v in vars(obj).items()
             if not k.startswith("__") and k not in _SKIP_ATTRS and v is not obj}
    if isinstance(getattr(obj, "optimizer", None), Optimizer):
        attrs["optimizer"] = obj.optimizer
    for name in sorted(attrs, key=_name_key):
        value = attrs[name]
        if _is_saveable(value) or _has_saveables(value):
            yield name, value


def container_name(obj) -> str:
    cls_name = "Functional" if is_functional(obj) and type(obj).__name__ == "Model" \
        else type(obj).__name__
    return to_snake_case(cls_name)


def _unique(name, used) -> str:
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _container_items(container):
    """(name, item) for the saveables and nested containers of a list/tuple/dict."""
    used: dict = {}
    items = container.values() if isinstance(container, dict) else container
    for item in items:
        if _is_saveable(item):
            yield _unique(container_name(item), used), item
        elif isinstance(item, (list, tuple, dict)):
            yield _unique("container", used), item


def walk(obj, path="", seen=None):
    """(object, path) for `obj` and every saveable under it, each object once."""
    seen = set() if seen is None else seen
    if _is_saveable(obj):
        # Only saveables are deduplicated: containers are often temporary lists (e.g.
        # `list(model.layers)`), and a freed list's id can be reused by the next one.
        if id(obj) in seen:
            return
        seen.add(id(obj))
        yield obj, path
        children = _children(obj)
    else:  # a container
        children = _container_items(obj)
    for name, child in children:
        yield from walk(child, f"{path}/{name}" if path else name, seen)


def own_variables(obj) -> list:
    if isinstance(obj, Optimizer):
        return list(obj.variables)
    return list(obj._trainable_variables) + list(obj._non_trainable_variables)


# -- writing ------------------------------------------------------------------------------
def save_weights_to_h5(model, h5file) -> None:
    """Write the variables of `model` (and of its optimizer, if any) into an open file."""
    for obj, path in walk(model):
        group = h5file.require_group(f"{path}/vars" if path else "vars")
        group.attrs["name"] = obj.name
        for i, var in enumerate(own_variables(obj)):
            h5_safe.write_dataset(group, str(i), var.numpy())


# -- reading ------------------------------------------------------------------------------
def _vars_group(h5file, path, label):
    group = h5_safe.child(h5file, f"{path}/vars" if path else "vars", label)
    if group is None and path and "_layer_checkpoint_dependencies" in h5file:
        legacy = path.replace("layers", "_layer_checkpoint_dependencies")  # Keras 2.13/2.14
        group = h5_safe.child(h5file, f"{legacy}/vars", label)
    return group


def read_vars(h5file, path, label):
    """The datasets stored for the object at `path` (checked, not read yet: shapes are
    compared before any data is loaded), or None when the file has no group."""
    group = _vars_group(h5file, path, label)
    if group is None:
        return None
    keys = list(group.keys())
    if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
        raise InvalidFileError(f"{label}: {group.name} should hold variables named 0..N-1; "
                               f"found {sorted(keys)[:10]}")
    datasets = [group[str(i)] for i in range(len(keys))]
    for ds in datasets:
        if not isinstance(ds, h5py.Dataset):
            raise InvalidFileError(f"{label}: {ds.name} should be a dataset")
        h5_safe.check_dataset(ds, label)
    return datasets


def load_weights_from_h5(model, h5file, label, skip_mismatch=False) -> None:
    """Assign the variables stored in an open Keras 3 weights file to `model`, and warn
    about weights the file holds for objects the model does not have (Keras ignores them
    silently)."""
    used = set()
    for obj, path in walk(model):
        values = read_vars(h5file, path, label)
        if values:
            used.add(values[0].parent.name)
        if isinstance(obj, Optimizer):
            if values is not None:
                set_optimizer_values(obj, values, label)
            continue
        problem = _mismatch(obj, own_variables(obj), values or [])
        if problem is None:
            for var, value in zip(own_variables(obj), values or []):
                var.assign(h5_safe.read_dataset(value, label))
        elif skip_mismatch:
            warnings.warn(f"{label}: skipping weights of layer {obj.name!r} at "
                          f"{path or '/'}: {problem}", stacklevel=3)
        else:
            raise WeightMismatchError(f"{label}: cannot load weights of layer {obj.name!r} "
                                      f"(path {path or '/'!r}): {problem}")
    unused = _unused_groups(h5file, used, isinstance(getattr(model, "optimizer", None),
                                                     Optimizer))
    if unused:
        warnings.warn(f"{label}: the file holds weights for {len(unused)} objects that the "
                      f"model does not have; they were not loaded: {unused[:10]}. Check that "
                      f"the file was saved from this architecture.", stacklevel=3)


def _unused_groups(h5file, used, has_optimizer) -> list:
    """Paths of the `vars` groups holding values that loading did not read. Optimizer state
    loaded into a model without an optimizer, and Keras' random seed state (kgraph keeps
    none), are left out: ignoring them is expected."""
    found = []

    def visit(name, obj):
        parts = name.split("/")
        if parts[-1] != "vars" or not isinstance(obj, h5py.Group) or not len(obj) or \
                obj.name in used or any(p.startswith("seed_generator") for p in parts):
            return
        if parts[0] == "optimizer" and not has_optimizer:
            return
        found.append("/".join(parts[:-1]) or "/")

    h5file.visititems(visit)
    return sorted(found)


def _mismatch(layer, variables, values):
    if len(values) != len(variables):
        hint = "" if layer.built or values == [] else \
            " The layer was never built; build the model (call it on data) before loading."
        return (f"the layer has {len(variables)} variables "
                f"{[v.path for v in variables]}, the file has {len(values)}.{hint}")
    for var, value in zip(variables, values):
        if tuple(value.shape) != tuple(var.shape):
            return (f"variable {var.path!r} has shape {tuple(var.shape)}, the file has "
                    f"{tuple(value.shape)}")
    return None
