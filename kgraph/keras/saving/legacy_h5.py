"""Legacy HDF5 weights (keras-formats.md §1): the file `save_weights('x.h5')` writes in
tf-keras, and the `model_weights` group of whole-model `.h5` files.

Layout: root attrs `layer_names`, `backend`, `keras_version`; one group per layer holding
attr `weight_names` and a dataset per name ('/' in a name makes sub-groups);
`top_level_model_weights` for the model's own variables. Values are always read through
`weight_names`, never by building names.
"""
from __future__ import annotations

import warnings

from kgraph.keras.saving import h5_safe
from kgraph.keras.saving.errors import InvalidFileError, WeightMismatchError

BACKEND = "tensorflow"  # kernels are HWIO / channels_last, as tf-keras expects


def _keras_version():
    from kgraph import keras

    return keras.__version__


def _weight_names(weights) -> list:
    """tf-keras style names (`dense/kernel:0`), unique within the group."""
    names, used = [], set()
    for var in weights:
        base = var.path if var.path.endswith(":0") else f"{var.path}:0"
        name, n = base, 0
        while name in used:
            n += 1
            name = base.replace(":0", f"_{n}:0")
        used.add(name)
        names.append(name)
    return names


def _write_group(group, weights) -> None:
    names = _weight_names(weights)
    h5_safe.write_string_list(group, "weight_names", names)
    for name, var in zip(names, weights):
        h5_safe.write_dataset(group, name, var.numpy())


def save_weights_to_group(group, model) -> None:
    """Write `model`'s weights in the legacy layout into an open (root) group."""
    layers = list(model.layers)
    h5_safe.write_string_list(group, "layer_names", [layer.name for layer in layers])
    group.attrs["backend"] = BACKEND
    group.attrs["keras_version"] = _keras_version()
    for layer in sorted(layers, key=lambda layer: layer.name):  # "avoid prefix issues"
        _write_group(group.create_group(layer.name), layer.weights)
    own = list(model._trainable_variables) + list(model._non_trainable_variables)
    _write_group(group.create_group("top_level_model_weights"), own)


# -- reading ------------------------------------------------------------------------------
def weights_root(h5file, label):
    """The group holding `layer_names`: the root of a weights file, or `model_weights`."""
    if h5_safe.has_string_list(h5file, "layer_names"):
        return h5file
    group = h5_safe.child(h5file, "model_weights", label)
    if group is not None and h5_safe.has_string_list(group, "layer_names"):
        return group
    raise InvalidFileError(f"{label}: not a legacy Keras weights file (no 'layer_names' "
                           f"attribute and no 'model_weights' group)")


def _saved_values(root, name, label):
    group = h5_safe.child(root, name, label)
    if group is None:
        raise InvalidFileError(f"{label}: layer_names lists {name!r} but the file has no "
                               f"such group")
    values = []
    for weight_name in h5_safe.read_string_list(group, "weight_names"):
        ds = h5_safe.child(group, weight_name, label)
        if ds is None:
            raise InvalidFileError(f"{label}: weight {weight_name!r} of layer {name!r} is "
                                   f"listed in weight_names but missing")
        h5_safe.check_dataset(ds, label)
        values.append(ds)  # read once its shape is known to fit
    return values


def _assign(variables, values, what, label, skip_mismatch):
    if len(values) != len(variables):
        message = (f"{label}: {what} expects {len(variables)} weights, but the saved weights "
                   f"have {len(values)} elements")
        if skip_mismatch:
            warnings.warn(f"{message}; skipping it.", stacklevel=4)
            return
        raise WeightMismatchError(message)
    for var, value in zip(variables, values):
        if tuple(value.shape) != tuple(var.shape):
            message = (f"{label}: shape mismatch in {what}, weight {var.path!r}: the model "
                       f"expects {tuple(var.shape)}, the file has {tuple(value.shape)}")
            if skip_mismatch:
                warnings.warn(f"{message}; skipping this weight.", stacklevel=4)
                continue
            raise WeightMismatchError(message)
        var.assign(h5_safe.read_dataset(value, label))


def _load_top_level(root, model, label, skip_mismatch):
    if h5_safe.child(root, "top_level_model_weights", label) is None:
        return
    values = _saved_values(root, "top_level_model_weights", label)
    own = list(model._trainable_variables) + list(model._non_trainable_variables)
    _assign(own, values, "the top-level model", label, skip_mismatch)


def load_weights_from_group(root, model, label, skip_mismatch=False) -> None:
    """Topological loading: layers with weights, in order, against saved layers with
    weights, in order."""
    saved = []
    for name in h5_safe.read_string_list(root, "layer_names"):
        values = _saved_values(root, name, label)
        if values:
            saved.append((name, values))
    layers = [layer for layer in list(model.layers) if layer.weights]
    if len(saved) != len(layers):
        raise WeightMismatchError(
            f"{label}: layer count mismatch: the model has {len(layers)} layers with weights "
            f"{[layer.name for layer in layers]}, the file has {len(saved)} "
            f"{[name for name, _ in saved]}. To load into a different architecture use "
            f"load_weights(..., by_name=True).")
    for layer, (name, values) in zip(layers, saved):
        weights = layer.weights
        if len(values) != len(weights):  # Keras: fatal even with skip_mismatch
            raise WeightMismatchError(
                f"{label}: weight count mismatch for layer {layer.name!r} (saved as {name!r}): "
                f"it expects {len(weights)} weights, the file has {len(values)}")
        _assign(weights, values, f"layer {layer.name!r} (saved as {name!r})", label,
                skip_mismatch)
    _load_top_level(root, model, label, skip_mismatch)


def load_weights_from_group_by_name(root, model, label, skip_mismatch=False) -> None:
    """Load every saved layer into all top-level layers of the same name; other layers are
    left alone."""
    index: dict = {}
    for layer in list(model.layers):
        index.setdefault(layer.name, []).append(layer)
    for name in h5_safe.read_string_list(root, "layer_names"):
        targets = index.get(name, [])
        if not targets:
            continue
        values = _saved_values(root, name, label)
        for layer in targets:
            _assign(layer.weights, values, f"layer {name!r}", label, skip_mismatch)
    _load_top_level(root, model, label, skip_mismatch)
