"""The order of a functional model's layers as Keras computes it (`ops/function.py::
map_graph`): by depth from the outputs, deepest (inputs) first, ties broken by first
traversal order of a depth-first walk from the outputs.

Files key on this order: the `.weights.h5` container names (`dense`, `dense_1`, ...), legacy
`layer_names` and topological loading, and the layer list of a config. Using it for every
file makes files from kgraph and from Keras interchangeable whatever order kgraph keeps
`model.layers` in.
"""
from __future__ import annotations

from kgraph.keras.tree import flatten


def _node_of(tensor):
    layer, node_index, _ = tensor._keras_history
    return layer._inbound_nodes[node_index]


def _traverse(inputs, outputs):
    """Nodes from inputs to outputs (post-order DFS) and each layer's first-visit index."""
    input_ids = {id(t) for t in inputs}
    finished, ordered, index = set(), [], {}
    for output in outputs:
        stack = [(output, False)]
        while stack:
            tensor, expanded = stack.pop()
            node = _node_of(tensor)
            if id(node) in finished:
                continue
            if expanded:
                finished.add(id(node))
                ordered.append(node)
                continue
            if node.inputs and id(tensor) in input_ids:  # an intermediate tensor as input
                finished.add(id(node))
                continue
            index.setdefault(id(node.layer), len(index))
            stack.append((tensor, True))
            stack.extend((t, False) for t in reversed(node.inputs))
    return ordered, index


def keras_layer_order(inputs, outputs) -> list:
    """The layers between `inputs` and `outputs`, in Keras' `Functional.layers` order."""
    inputs, outputs = flatten(inputs), flatten(outputs)
    ordered, index = _traverse(inputs, outputs)
    in_graph = {id(node) for node in ordered}
    node_depth, layer_depth, layers = {}, {}, {}
    for node in reversed(ordered):
        depth = max(node_depth.get(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = depth
        layers[id(node.layer)] = node.layer
        node_depth[id(node)] = depth
        for parent in (_node_of(t) for t in node.inputs):
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    for tensor in inputs:  # inputs not connected to any output
        layer = tensor._keras_history[0]
        if id(layer) not in layer_depth and not _node_of(tensor).inputs:
            layer_depth[id(layer)], index[id(layer)], layers[id(layer)] = 0, -1, layer
    keys = sorted(layer_depth, key=lambda k: (-layer_depth[k], index[k]))
    return [layers[k] for k in keys]


def model_layers(model) -> list:
    """`model.layers` in Keras' order (functional models reordered, others as they are)."""
    from kgraph.keras.saving.serialization_lib import is_functional

    if is_functional(model):
        return keras_layer_order(model._inputs_struct, model._outputs_struct)
    return list(model.layers)


def _sublayers(layer) -> list:
    from kgraph.keras.saving.serialization_lib import is_functional

    if is_functional(layer):
        return keras_layer_order(layer._inputs_struct, layer._outputs_struct)
    return list(getattr(layer, "_layers", []))


def _collect(layer, trainable) -> list:
    """Keras' `trainable_weights` / `non_trainable_weights`, sublayers in Keras order."""
    if trainable:
        out = list(layer._trainable_variables) if layer.trainable else []
    else:
        out = ([] if layer.trainable else list(layer._trainable_variables)) + \
            list(layer._non_trainable_variables)
    if trainable and not layer.trainable:
        return out
    for sub in _sublayers(layer):
        out += [v for v in _collect(sub, trainable) if all(v is not o for o in out)]
    return out


def keras_trainable_weights(layer) -> list:
    return _collect(layer, True)


def keras_weights(layer) -> list:
    """`layer.weights` in the order Keras lists them (trainable, then non-trainable)."""
    return _collect(layer, True) + _collect(layer, False)
