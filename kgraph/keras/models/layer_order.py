"""The order of a functional model's layers as Keras computes it (`ops/function.py::
map_graph`): by depth from the outputs, deepest (inputs) first, ties broken by first
traversal order of a depth-first walk from the outputs.

`Model.layers` keeps this order, and through it `weights`, `get_weights`, optimizer slot
order and every file layout (`.weights.h5` container names, legacy `layer_names`, the layer
list of a config), so files from kgraph and from Keras are interchangeable.
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
