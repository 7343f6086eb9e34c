"""The layer graph of a model as plain records: what `plot_model` draws and what the
TensorBoard callback writes to the graph tab."""
from __future__ import annotations

from typing import NamedTuple


class LayerNode(NamedTuple):
    """One layer of a drawn model.

    `name` is unique in the drawing (a layer of an expanded nested model is
    `"outer/inner"`); `inputs` are the names of the nodes it reads; `cluster` is the name of
    the nested model that holds it, or None."""

    name: str
    class_name: str
    inputs: tuple
    input_shapes: tuple
    output_shapes: tuple
    dtype: str
    cluster: str | None = None


def _shapes(tensors):
    return tuple(tuple(t.shape) for t in tensors)


def _dtype(tensors):
    return str(tensors[0].dtype) if tensors else "?"


def layer_nodes(model, expand_nested=False, prefix="", cluster=None) -> list:
    """The layers of `model` in topological order, as `LayerNode`s.

    Functional and Sequential models give their graph's edges; a subclassed model (no layer
    graph) gives its layers in order, unconnected. With `expand_nested`, a nested model
    becomes its own layers, grouped in a cluster named after it."""
    order = getattr(model, "_order", None) if getattr(model, "_graph", None) is not None \
        else None
    if order is None:
        return [LayerNode(prefix + layer.name, type(layer).__name__, (), (), (), "?", cluster)
                for layer in model.layers]
    graph, nodes, exits = model._graph, [], {}
    for call in order:
        parents = [exits.get(id(p), (prefix + p.layer.name,)) for p in graph.predecessors(call)]
        inputs = tuple(name for names in parents for name in names)
        layer = call.layer
        if expand_nested and getattr(layer, "_graph", None) is not None:
            inner = layer_nodes(layer, True, f"{prefix}{layer.name}/", prefix + layer.name)
            if inner:
                first = inner[0]
                inner[0] = first._replace(inputs=first.inputs + inputs)
                nodes += inner
                exits[id(call)] = (inner[-1].name,)
                continue
        nodes.append(LayerNode(prefix + layer.name, type(layer).__name__, inputs,
                               _shapes(call.inputs), _shapes(call.outputs),
                               _dtype(call.outputs), cluster))
    return nodes
