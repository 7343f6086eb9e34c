"""The host prefix of a functional model: the host nodes (StringLookup, TextVectorization,
Hashing, HashedCrossing, FeatureSpace, string shape ops) between its `Input`s and the rest.

A model built on `keras.Input(dtype="string")` splits when it is built into (a) this prefix,
run eagerly in numpy on every batch (`fit`/`evaluate`/`predict`, the `*_on_batch` methods,
`model(x)`), and (b) the compiled part, whose inputs are the prefix's `boundary`: the model
inputs and host-node outputs that compiled layers (or the model's outputs) read. The
compiled graph therefore never sees a string; an artifact or ONNX file, which has no host
prefix, is refused (`check_exportable`).
"""
from __future__ import annotations

import numpy as np

from kgraph.keras.layers.preprocessing.host_layer import (
    HostLayer,
    StringInputError,
    as_host_array,
    string_input_error,
)
from kgraph.keras.tree import flatten, map_structure


class HostPrefix:
    """The host nodes of a functional model, in graph order, and the boundary tensors."""

    def __init__(self, model, host_nodes):
        self.model = model
        self.nodes = host_nodes
        host_ids = {id(node) for node in host_nodes}
        known = {id(t): t for t in model.inputs}
        for node in host_nodes:
            known.update({id(t): t for t in node.outputs})
        read = {id(t) for node in model._order if id(node) not in host_ids
                for t in node.inputs}
        read |= {id(t) for t in model.outputs}
        # the nodes the compiled part runs: neither host nodes nor `Input`s (fed or unread)
        self.compiled_order = [node for node in model._order
                               if id(node) not in host_ids and node.inputs]
        self.boundary = [t for key, t in known.items() if key in read]
        for t in self.boundary:
            if t.dtype == "string":
                raise string_input_error(f"The compiled part of model {model.name!r} (an "
                                         f"output, or a layer after the host layers)", t)

    def run(self, inputs):
        """The boundary values (a list of numpy arrays) of a batch of the model's inputs."""
        from kgraph.keras.models.model import _given_inputs

        flat_inputs = self.model.inputs
        given = _given_inputs(flat_inputs, self.model._inputs_struct, inputs)
        if len(given) != len(flat_inputs):
            raise ValueError(f"Model {self.model.name!r} expects {len(flat_inputs)} input(s), "
                             f"but it received {len(given)} input tensors.")
        env = {id(kt): _input_array(kt, value) for kt, value in zip(flat_inputs, given)}
        def value(a):
            return env.get(id(a), a)

        for node in self.nodes:  # args may nest tensors (HashedCrossing's list, dicts)
            args = [map_structure(value, a) for a in node.args]
            out = node.layer(*args, **node.kwargs)
            for tensor, array in zip(node.outputs, flatten(out)):
                env[id(tensor)] = np.asarray(array)
        return [env[id(t)] for t in self.boundary]


def _input_array(kt, value):
    """A batch for one model input: strings as object arrays, with Keras' rank adjustment
    (`(N,)` strings into `Input(shape=(1,))`)."""
    array = as_host_array(value) if kt.dtype == "string" else np.asarray(value)
    if array.dtype.kind in "OUS" and kt.dtype != "string":
        array = as_host_array(array)
    if array.ndim == len(kt.shape) - 1 and kt.shape and kt.shape[-1] == 1:
        array = array[..., None]
    elif array.ndim == len(kt.shape) + 1 and array.shape[-1] == 1:
        array = array[..., 0]
    return array


def split(model):
    """The model's `HostPrefix`, or None when no host node follows its inputs."""
    fed = {id(t) for t in model.inputs}  # a host node whose output is a model input is not run
    host_nodes = [node for node in model._order
                  if (isinstance(node.layer, HostLayer) or getattr(node, "runs_on_host", False))
                  and not any(id(t) in fed for t in node.outputs)]
    if not host_nodes:
        return None
    return HostPrefix(model, host_nodes)


def check_exportable(model):
    """Raise when `model` has a host prefix: an ONNX file or a compiled artifact holds only
    the compiled part, so it could not take the model's inputs."""
    prefix = getattr(model, "_host_prefix", None)
    if prefix is None:
        return
    strings = [t.name for t in model.inputs if t.dtype == "string"]
    what = (f"the string input(s) {strings}" if strings else
            f"inputs read by host layers {[node.layer.name for node in prefix.nodes]}")
    from kgraph.compiler.export import ExportError

    raise ExportError(
        f"Model {model.name!r} cannot be exported or compiled into an artifact: {what} run "
        f"on the host, in numpy, before the compiled graph, and the deployable artifact has "
        f"no host part. Export the model of the compiled part instead, e.g. "
        f"`keras.Model(<the host layers' outputs as Inputs>, outputs)`, and apply the "
        f"preprocessing layers to the data before it.")


__all__ = ["HostPrefix", "StringInputError", "check_exportable", "split"]
