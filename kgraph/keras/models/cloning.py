"""`keras.models.clone_model`: the same architecture with new layers (and new weights)."""
from __future__ import annotations

from kgraph.keras.tree import flatten, map_structure, pack_like


def _clone_layer(layer):
    """Keras' default `clone_function`: a new layer of the same class from its config. A
    `Lambda` is re-made around its in-memory function: cloning reads no file, so no stored
    code runs (Keras 3 looks the function up by name and fails for an unregistered one;
    tf.keras 2 round-tripped its bytecode, as the keras.io DDIM example's EMA network needs)."""
    from kgraph.keras.layers.core import Lambda

    if type(layer) is Lambda:
        config = {k: v for k, v in layer.get_config().items() if k not in ("function",)}
        return Lambda(layer.function, output_shape=layer._output_shape, **config)
    return layer.__class__.from_config(layer.get_config())


def clone_model(model, input_tensors=None, clone_function=None, call_function=None,
                recursive=False, **kwargs):
    """A new model with the architecture of `model` and freshly initialized weights.

    Args:
        model: a functional or `Sequential` model (a subclassed model is rebuilt from its
            config).
        input_tensors: optional `keras.Input` tensors (a tensor, list or dict like the model's
            inputs) to build the clone on, instead of new inputs of the same specs.
        clone_function: `fn(layer) -> layer`, called once per layer (shared layers stay
            shared); default: `layer.__class__.from_config(layer.get_config())`. Return the
            layer itself to share it with the original model.
        call_function: optional `fn(layer, *args, **kwargs)` that makes each layer call of a
            functional clone (to insert layers or change arguments).
        recursive: also clone the layers of nested functional/Sequential models through
            `clone_function` (by default a nested model is passed to `clone_function` whole).

    Returns:
        The new model (not compiled).

    Example:

    >>> clone = keras.models.clone_model(model)
    >>> clone.set_weights(model.get_weights())
    """
    from kgraph.keras.models.model import Model
    from kgraph.keras.models.sequential import Sequential

    if kwargs:
        raise TypeError(f"clone_model: unknown arguments {sorted(kwargs)}")
    if not isinstance(model, Model):
        raise ValueError(f"clone_model expects a keras Model. Received: model={model!r}")
    clone_function = clone_function or _clone_layer
    if recursive:
        clone_function = _recursing(clone_function, call_function)
    if isinstance(model, Sequential):
        return _clone_sequential(model, input_tensors, clone_function)
    if getattr(model, "_graph", None) is None:
        if input_tensors is not None:
            raise ValueError("clone_model: `input_tensors` needs a functional or Sequential "
                             "model; a subclassed model is rebuilt from its config.")
        return _clone_layer(model)
    return _clone_functional(model, input_tensors, clone_function, call_function)


def _recursing(clone_function, call_function):
    from kgraph.keras.models.model import Model

    def clone(layer):
        if isinstance(layer, Model) and (layer._graph is not None or hasattr(layer, "_stack")):
            return clone_model(layer, clone_function=clone_function,
                               call_function=call_function, recursive=True)
        return clone_function(layer)
    return clone


def _new_inputs(model):
    from kgraph.keras.layers.core import Input

    def make(kt):
        layer = kt._keras_history[0]
        return Input(batch_shape=layer.batch_shape, dtype=layer.dtype, name=layer.name)
    return map_structure(make, model._inputs_struct)


def _clone_functional(model, input_tensors, clone_function, call_function):
    from kgraph.keras.layers.base import KerasTensor
    from kgraph.keras.layers.core import InputLayer
    from kgraph.keras.models.model import Model

    inputs = _new_inputs(model) if input_tensors is None else input_tensors
    old_inputs, new_inputs = flatten(model._inputs_struct), flatten(inputs)
    if len(new_inputs) != len(old_inputs):
        raise ValueError(f"clone_model: the model has {len(old_inputs)} inputs but "
                         f"{len(new_inputs)} input_tensors were given.")
    env = {id(old): new for old, new in zip(old_inputs, new_inputs)}
    clones: dict = {}
    for node in model._order:
        if isinstance(node.layer, InputLayer) or all(id(o) in env for o in node.outputs):
            continue
        layer = clones.get(id(node.layer))
        if layer is None:
            layer = clones[id(node.layer)] = clone_function(node.layer)
        swap = lambda x: env[id(x)] if isinstance(x, KerasTensor) else x  # noqa: E731
        args, kwargs = map_structure(swap, node.args), map_structure(swap, node.kwargs)
        out = call_function(layer, *args, **kwargs) if call_function else layer(*args, **kwargs)
        for old, new in zip(node.outputs, flatten(out)):
            env[id(old)] = new
    outputs = pack_like(model._outputs_struct,
                        [env[id(t)] for t in flatten(model._outputs_struct)])
    return Model(inputs, outputs, name=model.name)


def _clone_sequential(model, input_tensors, clone_function):
    from kgraph.keras.layers.core import Input
    from kgraph.keras.models.sequential import Sequential

    layers = [clone_function(layer) for layer in model._stack]
    first = model._input_layer
    if input_tensors is not None:
        first = flatten(input_tensors)[0]
    elif first is not None:
        first = Input(batch_shape=first.batch_shape, dtype=first.dtype, name=first.name)
    return Sequential(([first] if first is not None else []) + layers, name=model.name)
